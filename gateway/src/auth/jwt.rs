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

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    use jsonwebtoken::{EncodingKey, Header};
    use ring::{
        rand::SystemRandom,
        signature::{Ed25519KeyPair, KeyPair as _},
    };
    use serde_json::json;

    use super::*;

    fn claims(edit: impl FnOnce(&mut Value)) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut c = json!({"sub": "alice", "aud": "a", "exp": now + 600, "scp": ["x", "y"],
                           "scope": "y z"});
        edit(&mut c);
        c
    }

    /// A verifier over a JWKS file with one Ed25519 key `k1`, and its signing key.
    async fn verifier(dir: &std::path::Path) -> (JwtVerifier, EncodingKey) {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("pkcs8");
        let jwks = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": B64.encode(pair.public_key().as_ref())},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "weird"},
        ]});
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks.to_string()).expect("write");
        let mut config = JwtConfig::new(JwksSource::File(path), vec!["a".into()], None);
        config.refetch_interval = Duration::from_secs(3600);
        let v = JwtVerifier::new(config).await.expect("loads");
        (v, EncodingKey::from_ed_der(doc.as_ref()))
    }

    fn sign(key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, claims, key).expect("sign")
    }

    #[tokio::test]
    async fn tokens_are_verified_and_unusable_keys_skipped() {
        let dir = tempfile_dir();
        let (v, key) = verifier(dir.path()).await;
        assert_eq!(
            v.cache.read().await.keys.len(),
            1,
            "only the Ed25519 key is usable"
        );
        let p = v
            .verify(&sign(&key, Some("k1"), &claims(|_| {})))
            .await
            .expect("valid");
        assert_eq!(p.to_string(), "jwt:alice");
        assert_eq!(p.scopes, ["x", "y", "z"]);
        // Without kid: every key of the type is tried.
        assert!(v.verify(&sign(&key, None, &claims(|_| {}))).await.is_ok());
        let reason = |e: AuthError| e.to_string();
        let now = jsonwebtoken::get_current_timestamp();
        for (edit, want) in [
            (json!({"exp": now - 120}), "expired"),
            (json!({"nbf": now + 120}), "not yet valid"),
            (json!({"aud": "b"}), "another audience"),
            (json!({"sub": ""}), "\"sub\""),
        ] {
            let c = claims(|c| {
                for (k, val) in edit.as_object().expect("object") {
                    c[k] = val.clone();
                }
            });
            let e = v
                .verify(&sign(&key, Some("k1"), &c))
                .await
                .expect_err("refused");
            assert!(reason(e.clone()).contains(want), "{edit}: {e}");
        }
        // Within the leeway.
        let c = claims(|c| c["exp"] = json!(now - 5));
        assert!(v.verify(&sign(&key, Some("k1"), &c)).await.is_ok());
        let e = v
            .verify(&sign(&key, Some("k9"), &claims(|_| {})))
            .await
            .expect_err("kid");
        assert!(reason(e).contains("unknown key"));
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(claims(|_| {}).to_string())
        );
        assert!(v.verify(&none).await.is_err());
        let hs = format!(
            "{}.{}.c2ln",
            B64.encode(r#"{"alg":"HS256","kid":"hmac"}"#),
            B64.encode(claims(|_| {}).to_string())
        );
        let e = v.verify(&hs).await.expect_err("HS256");
        assert!(reason(e).contains("not accepted"));
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let dir = tempfile_dir();
        let (v, _) = verifier(dir.path()).await;
        let other = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(other.as_ref()).expect("pkcs8");
        let key = EncodingKey::from_ed_der(other.as_ref());
        // The first unknown kid fetches (still unknown), the second within the interval does not.
        assert!(
            v.verify(&sign(&key, Some("k2"), &claims(|_| {})))
                .await
                .is_err()
        );
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k2",
                                    "x": B64.encode(pair.public_key().as_ref())}]});
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).expect("write");
        assert!(
            v.verify(&sign(&key, Some("k2"), &claims(|_| {})))
                .await
                .is_err()
        );
        *v.refetch.lock().await = None;
        assert!(
            v.verify(&sign(&key, Some("k2"), &claims(|_| {})))
                .await
                .is_ok()
        );
    }

    fn tempfile_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }
}
