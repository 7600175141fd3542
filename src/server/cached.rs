//! Cacheable JSON documents over HTTP (agent cards, the gateway's directory): a strong `ETag`
//! that is a hash of the body, `Cache-Control: max-age`, and `304 Not Modified` for a client
//! that already holds the document (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2.2.1).

use axum::{body::Body, response::Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The strong `ETag` of `body`: a quoted 16-digit hex FNV-1a 64 hash (stable across
/// processes and releases; a cache key, not a security measure).
pub fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// Whether the request's `If-None-Match` names `etag`: any listed entity tag, compared
/// weakly (a `W/` prefix is ignored), or `*` (RFC 9110 §13.1.2).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// The answer to a `GET` of the JSON document `body` whose tag is `etag` (see [`etag`]):
/// `304` with no body when [`not_modified`], else `200` with `Content-Type:
/// application/json`; both carry `ETag` and `Cache-Control: max-age=<max_age>` (seconds).
pub fn json(headers: &HeaderMap, etag: &str, body: Bytes, max_age: u64) -> Response {
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, format!("max-age={max_age}"));
    let response = if not_modified(headers, etag) {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Body::from(body))
    };
    response.expect("an ETag built by `etag` and a numeric max-age are valid header values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_weakly_and_in_lists() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(not_modified(&h, "\"b\""));
        assert!(!not_modified(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, "\"c\""));
        assert!(!not_modified(&HeaderMap::new(), "\"c\""));
    }

    #[test]
    fn an_etag_is_a_quoted_hash_of_the_body() {
        let tag = etag(b"{}");
        assert_eq!(tag.len(), 18, "{tag}");
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
        assert_eq!(tag, etag(b"{}"));
        assert_ne!(tag, etag(b"{ }"));
    }
}
