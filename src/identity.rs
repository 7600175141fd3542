//! Who is calling: the workload identity a peer proved with its mTLS certificate, and the end
//! user a gateway authenticated and forwards.
//!
//! - [`SpiffeId`]: a SPIFFE ID, `spiffe://<trust-domain>/<path>` (SPIFFE ID standard, §2), as
//!   carried in the URI SAN of an X.509-SVID (X.509-SVID standard, §2: exactly one URI SAN).
//! - [`PeerIdentity`]: the SPIFFE ID of the mTLS peer of one connection. The agent server puts it
//!   in each request's extensions (`tonic::Request::extensions`) once the peer's certificate
//!   chain has been verified against the mesh's CA; it is absent on a plain-text connection.
//! - [`Principal`]: who the call is for, as authenticated by the gateway (API key, JWT) or, for a
//!   call from another agent, by mTLS. The gateway forwards it to agents in the
//!   [`PRINCIPAL_HEADER`] metadata entry; an agent trusts that entry only from a peer whose
//!   [`PeerIdentity`] it trusts to forward principals.

use std::fmt;

/// The metadata entry (gRPC) in which a gateway forwards the end user's [`Principal`] to an
/// agent, in the form of [`Principal::to_header`].
pub const PRINCIPAL_HEADER: &str = "x-switchyard-principal";

/// A SPIFFE ID: `spiffe://<trust-domain>/<path>`.
///
/// The trust domain is lower-case letters, digits, `.`, `-` and `_`; the path is empty or
/// `/`-separated segments of letters, digits, `.`, `-` and `_`, none empty, `.` or `..`
/// (SPIFFE ID standard, §2.1 and §2.2). At most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId(String);

/// Why a string is not a [`SpiffeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SPIFFE ID ({reason}): {shown}")]
pub struct SpiffeIdError {
    reason: &'static str,
    shown: String,
}

impl SpiffeId {
    /// The longest SPIFFE ID accepted, in bytes (SPIFFE ID standard, §2.3).
    pub const MAX_LEN: usize = 2048;

    /// Parses and checks `s`.
    ///
    /// # Errors
    /// [`SpiffeIdError`] naming the rule `s` breaks (scheme, trust domain, path segment,
    /// length), with `s` shortened to 64 characters.
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        let fail = |reason| SpiffeIdError {
            reason,
            shown: s.chars().take(64).collect(),
        };
        if s.len() > Self::MAX_LEN {
            return Err(fail("longer than 2048 bytes"));
        }
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| fail("scheme must be spiffe://"))?;
        let (domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if domain.is_empty() {
            return Err(fail("empty trust domain"));
        }
        if !domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(fail("trust domain allows only a-z, 0-9, '.', '-', '_'"));
        }
        if !path.is_empty() {
            for segment in path[1..].split('/') {
                if segment.is_empty() || segment == "." || segment == ".." {
                    return Err(fail("path segments must not be empty, '.' or '..'"));
                }
                if !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    return Err(fail("path allows only letters, digits, '.', '-', '_'"));
                }
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The ID of a workload `path` (segments joined by `/`) in `trust_domain`, e.g.
    /// `SpiffeId::workload("switchyard.local", &["agent", "echo"])`.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn workload(trust_domain: &str, path: &[&str]) -> Result<Self, SpiffeIdError> {
        let mut s = format!("spiffe://{trust_domain}");
        for segment in path {
            s.push('/');
            s.push_str(segment);
        }
        Self::parse(&s)
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain, e.g. `switchyard.local`.
    pub fn trust_domain(&self) -> &str {
        let rest = &self.0["spiffe://".len()..];
        &rest[..rest.find('/').unwrap_or(rest.len())]
    }

    /// The path, empty or starting with `/`.
    pub fn path(&self) -> &str {
        let rest = &self.0["spiffe://".len()..];
        &rest[rest.find('/').unwrap_or(rest.len())..]
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The verified SPIFFE ID of a connection's mTLS peer; a request extension set by the agent
/// server (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub SpiffeId);

/// How a [`Principal`] was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A named API key (the name, never the key).
    ApiKey,
    /// A bearer JWT (the `sub` claim).
    Jwt,
    /// Another workload, by its mTLS SPIFFE ID.
    Spiffe,
}

impl PrincipalKind {
    /// `api-key`, `jwt` or `spiffe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api-key",
            Self::Jwt => "jwt",
            Self::Spiffe => "spiffe",
        }
    }
}

/// An authenticated caller: how it was authenticated, its name (API key name, JWT subject or
/// SPIFFE ID) and its scopes (a JWT's `scope`/`scp` claim; empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How it was authenticated.
    pub kind: PrincipalKind,
    /// The key's name, the token's subject or the SPIFFE ID. Never a secret.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

impl Principal {
    /// The [`PRINCIPAL_HEADER`] value: `<kind>:<name>` then ` <scope>` per scope, where name and
    /// scopes are percent-encoded so that neither contains a space or a non-visible byte.
    pub fn to_header(&self) -> String {
        let mut s = format!("{}:{}", self.kind.as_str(), encode(&self.name));
        for scope in &self.scopes {
            s.push(' ');
            s.push_str(&encode(scope));
        }
        s
    }

    /// Parses a [`to_header`](Self::to_header) value; `None` when it is not one.
    pub fn from_header(value: &str) -> Option<Self> {
        let mut parts = value.split(' ');
        let (kind, name) = parts.next()?.split_once(':')?;
        let kind = match kind {
            "api-key" => PrincipalKind::ApiKey,
            "jwt" => PrincipalKind::Jwt,
            "spiffe" => PrincipalKind::Spiffe,
            _ => return None,
        };
        let name = decode(name)?;
        if name.is_empty() {
            return None;
        }
        let scopes = parts.map(decode).collect::<Option<Vec<_>>>()?;
        Some(Self { kind, name, scopes })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.name)
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex = [it.next()?, it.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_follow_the_standard() {
        let id = SpiffeId::parse("spiffe://switchyard.local/agent/echo").unwrap();
        assert_eq!(id.trust_domain(), "switchyard.local");
        assert_eq!(id.path(), "/agent/echo");
        assert_eq!(
            SpiffeId::workload("switchyard.local", &["agent", "echo"]).unwrap(),
            id
        );
        assert!(SpiffeId::parse("spiffe://td").is_ok());
        for bad in [
            "http://td/x",
            "spiffe://",
            "spiffe:///x",
            "spiffe://TD/x",
            "spiffe://td/",
            "spiffe://td//x",
            "spiffe://td/./x",
            "spiffe://td/a/..",
            "spiffe://td/a b",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(3000));
        let err = SpiffeId::parse(&long).unwrap_err().to_string();
        assert!(err.contains("2048") && err.len() < 200, "{err}");
    }

    #[test]
    fn principals_round_trip_through_the_header() {
        let p = Principal {
            kind: PrincipalKind::Jwt,
            name: "user 1%é".into(),
            scopes: vec!["agents:call".into(), "read".into()],
        };
        let h = p.to_header();
        assert!(h.is_ascii() && !h.contains("user 1"), "{h}");
        assert_eq!(Principal::from_header(&h), Some(p));
        for bad in ["", "jwt:", "nobody:x", "jwt", "jwt:a%G1", "jwt:a%"] {
            assert_eq!(Principal::from_header(bad), None, "{bad}");
        }
    }
}
