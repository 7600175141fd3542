//! Which web pages may open a WebSocket session (`GET /agents/{agent}/ws`).
//!
//! Browsers do not apply CORS to WebSockets: any page a user visits may open one to any
//! address, the user's loopback gateway included, and only the `Origin` header tells the
//! server who asks (RFC 6455 §4.2.2, §10.2). The gateway decides before the upgrade:
//!
//! - no `Origin`: not a browser (the CLI, SDKs, `websocat`): allowed;
//! - same origin as the gateway (its public URL; not the request's `Host`, which a DNS
//!   rebinding page controls): allowed;
//! - listed in `cors_origins` (`*` allows every origin): allowed;
//! - with no `cors_origins` configured, pages served from loopback (`http://localhost:*`,
//!   `http://127.0.0.1:*`, `http://[::1]:*`, any port, http or https): allowed, so local
//!   development works out of the box while no page from the internet can drive the mesh;
//! - anything else: 403 with `ErrorInfo` reason `ORIGIN_NOT_ALLOWED`.

use http::{HeaderMap, header};

use crate::error::ApiError;

/// `scheme://host[:port]` of a URL, lower case, without path or trailing slash.
fn origin_of(url: &str) -> String {
    let url = url.trim().to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url.as_str()));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

/// Whether `origin` (`scheme://host[:port]`) is a page served from this machine.
fn is_loopback(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().map(|h| format!("[{h}]")),
        None => authority.split(':').next().map(str::to_owned),
    };
    matches!(scheme, "http" | "https")
        && host.is_some_and(|h| {
            h == "localhost"
                || h == "[::1]"
                || h.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// Checks the `Origin` of a WebSocket upgrade against `allowed` (the gateway's
/// `cors_origins`) and the gateway's own origin (`public_url`). The request's `Host` is not
/// trusted: a page that rebinds its own name to the gateway's address sends a `Host` equal to
/// its `Origin`.
///
/// # Errors
/// [`ApiError::OriginNotAllowed`] (403) for a browser page of any other origin.
pub(crate) fn check(
    headers: &HeaderMap,
    allowed: &[String],
    public_url: &str,
) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes())
        .trim()
        .to_ascii_lowercase();
    if is_allowed(&origin, allowed, public_url) {
        Ok(())
    } else {
        Err(ApiError::OriginNotAllowed(origin))
    }
}

/// Whether a page of `origin` (`scheme://host[:port]`, lower case) may call the gateway under
/// the policy above; also the CORS policy of gRPC-Web when no `cors_origins` are configured.
pub(crate) fn is_allowed(origin: &str, allowed: &[String], public_url: &str) -> bool {
    let same_origin = origin == origin_of(public_url);
    let listed = allowed
        .iter()
        .any(|a| a.trim() == "*" || origin_of(a) == origin);
    same_origin || listed || (allowed.is_empty() && is_loopback(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(origin: &'static str, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().expect("ascii"));
        h.insert(header::HOST, host.parse().expect("ascii"));
        h
    }

    #[test]
    fn the_default_allows_same_origin_loopback_pages_and_non_browsers() {
        let public = "http://127.0.0.1:8080";
        assert!(check(&HeaderMap::new(), &[], public).is_ok());
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:5173",
            "https://127.0.0.1:3000",
            "http://[::1]:8000",
        ] {
            assert!(
                check(&from(ok, "127.0.0.1:8080"), &[], public).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.evil.example",
            "null",
            "file://",
        ] {
            assert!(
                check(&from(bad, "127.0.0.1:8080"), &[], public).is_err(),
                "{bad}"
            );
        }
        // DNS rebinding: a page whose name now points at the gateway sends a Host equal to
        // its Origin; that is not the gateway's origin.
        assert!(
            check(
                &from("http://evil.example:8080", "evil.example:8080"),
                &[],
                public
            )
            .is_err()
        );
        // Behind a proxy: the public URL's origin is same-origin whatever the Host says.
        let proxied = from("https://agents.example.com", "10.0.0.7:8080");
        assert!(check(&proxied, &[], "https://agents.example.com/mesh").is_ok());
    }

    #[test]
    fn configured_origins_replace_the_loopback_default() {
        let allowed = ["https://app.example.com/".to_owned()];
        let public = "http://127.0.0.1:8080";
        assert!(check(&from("https://app.example.com", "x"), &allowed, public).is_ok());
        assert!(check(&from("http://localhost:5173", "x"), &allowed, public).is_err());
        assert!(
            check(
                &from("http://127.0.0.1:8080", "127.0.0.1:8080"),
                &allowed,
                public
            )
            .is_ok()
        );
        assert!(check(&from("http://evil.example", "x"), &["*".to_owned()], public).is_ok());
    }
}
