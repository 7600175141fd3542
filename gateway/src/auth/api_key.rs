//! Named API keys, stored as SHA-256 hashes and compared in constant time.
//!
//! A key should be a random, high-entropy string (e.g. 32 random bytes, base64url): then one
//! round of SHA-256 is enough, and the hash in the configuration reveals nothing usable.
//! `printf %s "$KEY" | sha256sum` gives the hash to configure.

use ring::digest;
use subtle::ConstantTimeEq as _;
use switchyard::identity::{Principal, PrincipalKind};

/// A configured API key: its name (what logs, metrics and policies use) and the SHA-256 of
/// the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    name: String,
    sha256: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey").field("name", &self.name).finish()
    }
}

impl ApiKey {
    /// A key named `name` with the hex SHA-256 `sha256_hex` (64 hex digits, any case).
    ///
    /// # Errors
    /// An empty name, or a hash that is not 64 hex digits.
    pub fn from_hash(name: &str, sha256_hex: &str) -> Result<Self, String> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "API key name {name:?} must be non-empty, without spaces"
            ));
        }
        let hex = sha256_hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "the hash of API key {name:?} must be 64 hex digits (SHA-256)"
            ));
        }
        let mut sha256 = [0u8; 32];
        for (i, byte) in sha256.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .expect("checked to be hex digits above");
        }
        Ok(Self {
            name: name.to_owned(),
            sha256,
        })
    }

    /// A key named `name` from the key itself (tests, `switchyard up` development keys).
    pub fn from_key(name: &str, key: &str) -> Result<Self, String> {
        Self::from_hash(name, &hash(key))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The lower-case hex SHA-256 of `key`, the form [`ApiKey::from_hash`] takes.
pub fn hash(key: &str) -> String {
    digest::digest(&digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The configured keys.
#[derive(Debug)]
pub(crate) struct ApiKeys(Vec<ApiKey>);

impl ApiKeys {
    pub(crate) fn new(keys: Vec<ApiKey>) -> Self {
        Self(keys)
    }

    /// The principal of `presented`, if it is one of the keys. Every key is compared (in
    /// constant time), so the time taken does not tell which key nearly matched.
    pub(crate) fn find(&self, presented: &str) -> Option<Principal> {
        if self.0.is_empty() {
            return None;
        }
        let digest = digest::digest(&digest::SHA256, presented.as_bytes());
        let mut found = None;
        for key in &self.0 {
            if bool::from(key.sha256.ct_eq(digest.as_ref())) {
                found = Some(key);
            }
        }
        found.map(|key| Principal {
            kind: PrincipalKind::ApiKey,
            name: key.name.clone(),
            scopes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_and_never_shown() {
        let keys = ApiKeys::new(vec![
            ApiKey::from_key("ci", "s3cret-ci").expect("valid"),
            ApiKey::from_hash("ops", &hash("s3cret-ops").to_uppercase()).expect("valid"),
        ]);
        assert_eq!(keys.find("s3cret-ops").map(|p| p.name), Some("ops".into()));
        assert_eq!(keys.find("s3cret-ci").map(|p| p.name), Some("ci".into()));
        assert_eq!(keys.find("s3cret"), None);
        assert_eq!(keys.find(""), None);
        let shown = format!("{:?}", ApiKey::from_key("ci", "s3cret-ci").expect("valid"));
        assert!(!shown.contains("s3cret") && !shown.contains(&hash("s3cret-ci")[..8]));
        assert!(ApiKey::from_hash("x", "abc").is_err());
        assert!(ApiKey::from_hash("", &hash("k")).is_err());
        assert!(ApiKey::from_hash("x", &"g".repeat(64)).is_err());
    }
}
