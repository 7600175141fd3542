//! Authentication at the gateway: API keys and bearer JWTs, on every front, and the
//! authorization [`Policy`] checked with the principal found.
//!
//! - [`AuthConfig`]: what is configured; authentication is off unless an API key or a JWKS is.
//! - `api_key`: named keys stored as SHA-256 hashes, compared in constant time.
//! - `jwt`: bearer JWTs verified against a JWKS (file or URL, cached, refetched on an unknown
//!   `kid` at most once per [`JwtConfig::refetch_interval`]).
//! - `layer`: [`AuthLayer`](layer::AuthLayer), the tower layer that answers 401 / 403 (or
//!   UNAUTHENTICATED / PERMISSION_DENIED) in the front's own error shape.
//!
//! Credentials are read from `Authorization: Bearer <token>` (a JWT, or an API key) or
//! `X-API-Key: <key>`. A secret never reaches a log, a span or an error message: keys are
//! logged by name, tokens by subject.

pub(crate) mod api_key;
pub(crate) mod jwt;
pub(crate) mod layer;

use std::{path::PathBuf, sync::Arc, time::Duration};

use http::HeaderMap;
use switchyard::{authz::Policy, identity::Principal};

pub use api_key::ApiKey;

/// Where the JSON Web Key Set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document in a file (read at start and again when a `kid` is unknown).
    File(PathBuf),
    /// An `http://` or `https://` URL (fetched at start, cached, fetched again when a `kid` is
    /// unknown or the copy is older than [`JwtConfig::max_age`]).
    Url(String),
}

/// Bearer JWT settings (RFC 7519; algorithms RS256, ES256 and EdDSA; `alg: none` is refused).
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// The keys.
    pub jwks: JwksSource,
    /// Accepted audiences (`aud`); at least one.
    pub audiences: Vec<String>,
    /// The required issuer (`iss`), if any.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`. Default 30 s.
    pub leeway: Duration,
    /// Fetches of the JWKS triggered by an unknown `kid` are at least this far apart, so a
    /// flood of tokens with made-up key ids cannot hammer the key server. Default 10 s.
    pub refetch_interval: Duration,
    /// A cached JWKS from a URL older than this is fetched again. Default 5 min.
    pub max_age: Duration,
}

impl JwtConfig {
    /// Settings with the default leeway and fetch intervals.
    pub fn new(jwks: JwksSource, audiences: Vec<String>, issuer: Option<String>) -> Self {
        Self {
            jwks,
            audiences,
            issuer,
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
        }
    }
}

/// Authentication and authorization of the gateway. `AuthConfig::default()`: both off.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Named API keys.
    pub api_keys: Vec<ApiKey>,
    /// Bearer JWTs.
    pub jwt: Option<JwtConfig>,
    /// Who may call which agent ([`switchyard::authz`]); empty: every authenticated caller.
    pub policy: Arc<Policy>,
}

impl AuthConfig {
    /// Whether callers must authenticate (an API key or a JWKS is configured).
    pub fn is_enabled(&self) -> bool {
        !self.api_keys.is_empty() || self.jwt.is_some()
    }

    /// Checks the settings.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut names: Vec<&str> = self.api_keys.iter().map(ApiKey::name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("API key name {:?} is configured twice", w[0]));
        }
        if let Some(jwt) = &self.jwt {
            if jwt.audiences.is_empty() {
                return Err("JWT authentication needs at least one audience".into());
            }
            if let JwksSource::Url(url) = &jwt.jwks
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(format!(
                    "JWKS URL {url:?} must start with http:// or https://"
                ));
            }
        }
        Ok(())
    }
}

/// Why a request is not authenticated; the message is safe for clients (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No credentials.
    #[error("authentication required: send Authorization: Bearer <token> or X-API-Key")]
    Missing,
    /// Credentials that cannot be read (a bad header, a token over the size limit).
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// A token that is neither a known API key nor a valid JWT.
    #[error("invalid credentials: {0}")]
    Invalid(String),
}

impl AuthError {
    /// Whether credentials were presented (RFC 6750 §3.1: then `error="invalid_token"`).
    pub(crate) fn presented(&self) -> bool {
        !matches!(self, Self::Missing)
    }
}

/// Checks credentials against [`AuthConfig`].
#[derive(Debug)]
pub(crate) struct Authenticator {
    keys: api_key::ApiKeys,
    jwt: Option<jwt::JwtVerifier>,
}

/// Longest credential read, in bytes (the limit of every header forwarded to agents); a
/// longer one is refused before any parsing. (An HTTP/1.1 request head over 8 KiB in all is
/// refused by the HTTP server with 431 before any layer runs.)
pub(crate) const MAX_CREDENTIAL_BYTES: usize =
    crate::layers::header_check::MAX_FORWARDED_HEADER_BYTES;

impl Authenticator {
    /// Loads the keys (a JWKS file must be readable; a JWKS URL is fetched lazily if it cannot
    /// be reached now).
    pub(crate) async fn new(config: &AuthConfig) -> Result<Self, String> {
        let jwt = match &config.jwt {
            Some(c) => Some(jwt::JwtVerifier::new(c.clone()).await?),
            None => None,
        };
        Ok(Self {
            keys: api_key::ApiKeys::new(config.api_keys.clone()),
            jwt,
        })
    }

    /// The principal the request's credentials prove.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let credential = credential(headers)?;
        match credential {
            Credential::ApiKey(key) => self
                .keys
                .find(key)
                .ok_or_else(|| AuthError::Invalid("unknown API key".into())),
            Credential::Bearer(token) => {
                if let Some(p) = self.keys.find(token) {
                    return Ok(p);
                }
                match &self.jwt {
                    Some(jwt) => jwt.verify(token).await,
                    None => Err(AuthError::Invalid("unknown API key".into())),
                }
            }
        }
    }
}

enum Credential<'a> {
    ApiKey(&'a str),
    Bearer(&'a str),
}

/// The one credential of the request.
fn credential(headers: &HeaderMap) -> Result<Credential<'_>, AuthError> {
    let one = |name: http::HeaderName| -> Result<Option<&str>, AuthError> {
        let mut values = headers.get_all(&name).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthError::Malformed("the header is repeated"));
        }
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(AuthError::Malformed("the credential is too long"));
        }
        value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| AuthError::Malformed("the header is not visible ASCII"))
    };
    let authorization = one(http::header::AUTHORIZATION)?;
    let api_key = one(http::HeaderName::from_static("x-api-key"))?;
    match (authorization, api_key) {
        (Some(_), Some(_)) => Err(AuthError::Malformed(
            "send either Authorization or X-API-Key, not both",
        )),
        (None, Some("")) => Err(AuthError::Malformed("empty X-API-Key")),
        (None, Some(key)) => Ok(Credential::ApiKey(key)),
        (Some(value), None) => {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Malformed(
                    "the Authorization scheme must be Bearer",
                ));
            }
            let token = token.trim();
            if token.is_empty() || token.contains(' ') {
                return Err(AuthError::Malformed("Bearer needs exactly one token"));
            }
            Ok(Credential::Bearer(token))
        }
        (None, None) => Err(AuthError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// Header lines: name and raw value.
    type Lines<'a> = &'a [(&'a str, &'a [u8])];

    fn headers(list: Lines<'_>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in list {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_bytes(value).expect("value"),
            );
        }
        h
    }

    #[tokio::test]
    async fn credentials_are_read_from_one_header_and_bad_ones_are_named() {
        let auth = Authenticator::new(&AuthConfig {
            api_keys: vec![ApiKey::from_key("ci", "k-1").expect("key")],
            ..AuthConfig::default()
        })
        .await
        .expect("config");
        for ok in [
            &[("authorization", b"Bearer k-1".as_slice())][..],
            &[("authorization", b"bearer   k-1 ")],
            &[("x-api-key", b"k-1")],
        ] {
            let p = auth
                .authenticate(&headers(ok))
                .await
                .expect("authenticated");
            assert_eq!(p.to_string(), "api-key:ci");
        }
        let cases: [(Lines<'_>, &str); 9] = [
            (&[], "authentication required"),
            (&[("authorization", b"Basic azox")], "scheme must be Bearer"),
            (&[("authorization", b"Bearer")], "exactly one token"),
            (&[("authorization", b"Bearer a b")], "exactly one token"),
            (&[("authorization", b"Bearer \xff")], "not visible ASCII"),
            (&[("x-api-key", b"")], "empty X-API-Key"),
            (
                &[
                    ("authorization", b"Bearer k-1"),
                    ("authorization", b"Bearer k-1"),
                ],
                "repeated",
            ),
            (
                &[("authorization", b"Bearer k-1"), ("x-api-key", b"k-1")],
                "not both",
            ),
            (&[("x-api-key", b"k-2")], "unknown API key"),
        ];
        for (h, want) in cases {
            let e = auth.authenticate(&headers(h)).await.expect_err("refused");
            assert!(e.to_string().contains(want), "{h:?}: {e}");
            assert!(!e.to_string().contains("k-1"), "{e}");
        }
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_BYTES));
        let e = auth
            .authenticate(&headers(&[("authorization", long.as_bytes())]))
            .await
            .expect_err("too long");
        assert!(e.to_string().contains("too long"), "{e}");
    }

    #[test]
    fn settings_are_checked() {
        let twice = AuthConfig {
            api_keys: vec![
                ApiKey::from_key("ci", "a").expect("key"),
                ApiKey::from_key("ci", "b").expect("key"),
            ],
            ..AuthConfig::default()
        };
        assert!(twice.validate().unwrap_err().contains("twice"));
        let no_aud = AuthConfig {
            jwt: Some(JwtConfig::new(JwksSource::File("x".into()), vec![], None)),
            ..AuthConfig::default()
        };
        assert!(no_aud.validate().unwrap_err().contains("audience"));
        assert!(!AuthConfig::default().is_enabled());
    }
}
