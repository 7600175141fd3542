//! Bearer JWTs (RFC 7519) verified with the `jsonwebtoken` crate against a JWKS (RFC 7517).
//!
//! Accepted algorithms: RS256 (an `RSA` key), ES256 (an `EC` P-256 key) and EdDSA (an `OKP`
//! Ed25519 key); a token's `alg` must fit the key its `kid` names (a token without `kid` is
//! tried against every key of its type). `alg: none` and every other algorithm are refused,
//! as are tokens without `exp`, `sub` or `aud`. `exp` and `nbf` allow [`JwtConfig::leeway`].
//! The principal is the `sub` claim with the scopes of `scope` (space-separated) and `scp`
//! (a string or an array).
//!
//! The key set is cached; a `kid` that is not in it triggers one fetch (file read or HTTP
//! GET), at most once per [`JwtConfig::refetch_interval`]; a copy from a URL older than
//! [`JwtConfig::max_age`] is fetched again when next used.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
};
use serde_json::{Map, Value};
use switchyard::identity::{Principal, PrincipalKind};
use tokio::sync::{Mutex, RwLock};

use super::{AuthError, JwksSource, JwtConfig};

/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One usable key of the set.
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Cache {
    keys: Arc<Vec<Key>>,
    fetched: Option<Instant>,
}

/// Verifies bearer JWTs (see the module docs).
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    config: JwtConfig,
    cache: RwLock<Cache>,
    /// Serializes fetches; holds when the last fetch triggered by an unknown `kid` started.
    refetch: Mutex<Option<Instant>>,
}

impl JwtVerifier {
    /// Loads the key set: a file must be readable and valid; a URL that cannot be fetched now
    /// is logged and fetched again on the first token.
    pub(crate) async fn new(config: JwtConfig) -> Result<Self, String> {
        let verifier = Self {
            config,
            cache: RwLock::default(),
            refetch: Mutex::default(),
        };
        match (verifier.fetch().await, &verifier.config.jwks) {
            (Ok(keys), _) => verifier.store(keys).await,
            (Err(e), JwksSource::File(_)) => return Err(e),
            (Err(e), JwksSource::Url(_)) => {
                tracing::warn!(error = %e, "JWKS not loaded; fetching again on the first token");
            }
        }
        Ok(verifier)
    }

    async fn store(&self, keys: Vec<Key>) {
        let mut cache = self.cache.write().await;
        cache.keys = Arc::new(keys);
        cache.fetched = Some(Instant::now());
    }

    /// Reads the key set from its source.
    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let body = match &self.config.jwks {
            JwksSource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("JWKS file {}: {e}", path.display()))?,
            JwksSource::Url(url) => fetch_url(url).await?,
        };
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("JWKS over {MAX_JWKS_BYTES} bytes"));
        }
        parse_jwks(&body)
    }

    /// The keys for a token with `kid` and `alg`, fetching the set again when the `kid` is
    /// unknown (rate limited) or the copy is stale.
    async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Arc<Vec<Key>> {
        let (keys, fetched) = {
            let cache = self.cache.read().await;
            (cache.keys.clone(), cache.fetched)
        };
        let stale = matches!(self.config.jwks, JwksSource::Url(_))
            && fetched.is_none_or(|t| t.elapsed() > self.config.max_age);
        let known = keys.iter().any(|k| fits(k, kid, alg));
        if known && !stale {
            return keys;
        }
        let mut last = self.refetch.lock().await;
        let due = last.is_none_or(|t| t.elapsed() >= self.config.refetch_interval);
        // Another request may have fetched while this one waited.
        let current = self.cache.read().await.keys.clone();
        if !Arc::ptr_eq(&current, &keys) || !due {
            return current;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(fresh) => {
                tracing::info!(keys = fresh.len(), "JWKS fetched");
                self.store(fresh).await;
            }
            Err(e) => tracing::warn!(error = %e, "JWKS fetch failed; keeping the cached keys"),
        }
        self.cache.read().await.keys.clone()
    }

    /// The principal of a valid `token`.
    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.kind()))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(AuthError::Invalid(format!(
                "JWT algorithm {:?} is not accepted (RS256, ES256, EdDSA)",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let keys = self.keys_for(kid, header.alg).await;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&self.config.audiences);
        if let Some(iss) = &self.config.issuer {
            validation.set_issuer(&[iss]);
        }
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let mut last = AuthError::Invalid("JWT signed by an unknown key".into());
        for key in keys.iter().filter(|k| fits(k, kid, header.alg)) {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return principal(&data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                Err(e) => {
                    last = invalid(e.kind());
                    break;
                }
            }
        }
        Err(last)
    }
}

/// Whether `key` may verify a token with `kid` and `alg`.
fn fits(key: &Key, kid: Option<&str>, alg: Algorithm) -> bool {
    key.alg == alg && (kid.is_none() || key.kid.as_deref() == kid)
}

/// The client-safe reason of a `jsonwebtoken` error.
fn invalid(kind: &ErrorKind) -> AuthError {
    let reason = match kind {
        ErrorKind::ExpiredSignature => "JWT expired",
        ErrorKind::ImmatureSignature => "JWT not yet valid (nbf)",
        ErrorKind::InvalidAudience => "JWT for another audience",
        ErrorKind::InvalidIssuer => "JWT from another issuer",
        ErrorKind::InvalidSignature => "JWT signature invalid",
        ErrorKind::MissingRequiredClaim(c) => {
            return AuthError::Invalid(format!("JWT lacks the {c:?} claim"));
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => "JWT algorithm not accepted",
        ErrorKind::Base64(_) => "JWT is not base64url",
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "JWT header or claims are not valid JSON",
        _ => "malformed JWT",
    };
    AuthError::Invalid(reason.into())
}

/// `sub` and the scopes of `scope` / `scp`.
fn principal(claims: &Map<String, Value>) -> Result<Principal, AuthError> {
    let name = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::Invalid("JWT \"sub\" must be a non-empty string".into()))?
        .to_owned();
    let mut scopes: Vec<String> = Vec::new();
    if let Some(s) = claims.get("scope").and_then(Value::as_str) {
        scopes.extend(s.split_whitespace().map(str::to_owned));
    }
    match claims.get("scp") {
        Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_owned)),
        Some(Value::Array(a)) => {
            scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
    scopes.sort_unstable();
    scopes.dedup();
    Ok(Principal {
        kind: PrincipalKind::Jwt,
        name,
        scopes,
    })
}

async fn fetch_url(url: &str) -> Result<Vec<u8>, String> {
    switchyard::install_crypto_provider();
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default()
    });
    let response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("JWKS {url}: {e}"))?;
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("JWKS {url}: {e}"))?;
    Ok(body.to_vec())
}

/// The usable keys of a JWKS document; keys of other types are skipped (and logged).
fn parse_jwks(body: &[u8]) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set =
        serde_json::from_slice(body).map_err(|e| format!("JWKS is not a key set: {e}"))?;
    let mut out = Vec::new();
    for raw in set.keys {
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "JWKS key skipped");
                continue;
            }
        };
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => {
                tracing::warn!(kid = ?jwk.common.key_id, "JWKS key of an unsupported type skipped");
                continue;
            }
        };
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => out.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            }),
            Err(e) => tracing::warn!(kid = ?jwk.common.key_id, error = %e, "JWKS key skipped"),
        }
    }
    Ok(out)
}
