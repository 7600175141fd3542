//! The header checks of the A2A HTTP bindings: protocol version, content type and the SSE
//! resume point.

use http::HeaderMap;
use switchyard::error::A2aErrorKind;

use crate::{error::ApiError, query::parse_query};

/// Header (and query parameter) carrying the A2A protocol version.
pub(crate) const A2A_VERSION: &str = "A2A-Version";

/// The requested A2A version: the `A2A-Version` header, else the `A2A-Version` query
/// parameter (A2A v1.0.1 §3.6.1, for clients such as `EventSource` and browser WebSockets
/// that cannot set headers).
///
/// # Errors
/// VersionNotSupported (-32009 / 400) unless it is 1.x; missing or empty means 0.3, which is
/// not served (§3.6.2; the same rule as the agents' gRPC port, [`switchyard::server::version`]).
pub(crate) fn version(headers: &HeaderMap, query: Option<&str>) -> Result<String, ApiError> {
    let from_header = headers
        .get(A2A_VERSION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    let from_query = || {
        parse_query(query.unwrap_or_default())
            .ok()?
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(A2A_VERSION))
            .map(|(_, v)| v.trim().to_owned())
    };
    let v = from_header
        .filter(|v| !v.is_empty())
        .or_else(from_query)
        .unwrap_or_default();
    match switchyard::server::version::check(Some(&v), "header A2A-Version") {
        Ok(()) => Ok(v),
        Err(e) => Err(ApiError::A2a {
            kind: A2aErrorKind::VersionNotSupported,
            message: e.to_string(),
        }),
    }
}

/// The media type of `Content-Type`, lower case, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::CONTENT_TYPE)?;
    let v = String::from_utf8_lossy(v.as_bytes());
    Some(
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Whether a media type is JSON: `application/json`, `application/a2a+json` or any `+json`.
fn is_json(media: &str) -> bool {
    media == "application/json"
        || media
            .split_once('/')
            .is_some_and(|(top, sub)| !top.is_empty() && sub.ends_with("+json"))
}

fn unsupported(found: Option<&str>) -> ApiError {
    ApiError::A2a {
        kind: A2aErrorKind::ContentTypeNotSupported,
        message: match found {
            Some(m) => format!(
                "content type {m:?} is not supported; send application/json or application/a2a+json"
            ),
            None => "the request has no Content-Type; send application/json".to_owned(),
        },
    }
}

/// JSON-RPC: the body must be declared JSON.
///
/// # Errors
/// ContentTypeNotSupported (-32005) otherwise.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(m) if is_json(&m) => Ok(()),
        other => Err(unsupported(other.as_deref())),
    }
}

/// REST: a body, when declared, must be declared JSON (a missing `Content-Type` is accepted,
/// as clients send none on body-less POSTs such as `:subscribe`).
///
/// # Errors
/// ContentTypeNotSupported (400) for another media type.
pub(crate) fn allow_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers) {
        Some(m) if !m.is_empty() && !is_json(&m) => Err(unsupported(Some(&m))),
        _ => Ok(()),
    }
}

/// `Last-Event-ID`: the sequence number a resumed subscription continues after.
///
/// # Errors
/// [`ApiError::InvalidRequest`] when it is not a decimal number.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(v.as_bytes());
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // Digits only: the `id:` of an event is a decimal sequence number; Rust's parser would
    // also take a sign (`+5`).
    let digits = text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .map(Some)
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "Last-Event-ID {text:?} is not a sequence number (the id: of an event)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, http::HeaderValue::from_static(value));
        h
    }

    #[test]
    fn versions() {
        for ok in ["1", "1.0", "1.5", "1.0.1"] {
            assert!(version(&with("a2a-version", ok), None).is_ok(), "{ok}");
        }
        for bad in ["", "0.3", "2.0", "1.", "1.x", "1.0.0.0", "v1"] {
            assert!(version(&with("a2a-version", bad), None).is_err(), "{bad:?}");
        }
        assert!(version(&HeaderMap::new(), None).is_err());
        assert!(version(&HeaderMap::new(), Some("A2A-Version=1.0")).is_ok());
        assert!(version(&HeaderMap::new(), Some("a2a-version=2.0")).is_err());
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/a2a+json",
        ] {
            assert!(require_json(&with("content-type", ok)).is_ok(), "{ok}");
        }
        for bad in ["text/plain", "application/x-www-form-urlencoded", "json"] {
            assert!(require_json(&with("content-type", bad)).is_err(), "{bad}");
            assert!(allow_json(&with("content-type", bad)).is_err(), "{bad}");
        }
        assert!(require_json(&HeaderMap::new()).is_err());
        assert!(allow_json(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn last_event_ids() {
        assert_eq!(
            last_event_id(&with("last-event-id", "42")).expect("ok"),
            Some(42)
        );
        assert_eq!(last_event_id(&HeaderMap::new()).expect("ok"), None);
        for bad in ["abc", "+5", "-1", "5.0", "0x5", "99999999999999999999999"] {
            assert!(last_event_id(&with("last-event-id", bad)).is_err(), "{bad}");
        }
    }
}
