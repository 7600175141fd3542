//! Cacheable JSON documents over HTTP (agent cards, the gateway's directory): a strong `ETag`
//! that is a hash of the body, `Last-Modified`, `Cache-Control: max-age`, and `304 Not
//! Modified` for a client that already holds the document, by `If-None-Match` or, when that
//! is absent, `If-Modified-Since` (RFC 9110 §8.8.2, §8.8.3, §13.1.2, §13.1.3, §13.2.2;
//! RFC 9111 §5.2.2.1).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

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

/// `t` cut to whole seconds, the resolution of an HTTP date.
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Whether the client's copy is current (RFC 9110 §13.2.2): when the request has
/// `If-None-Match`, whether it names `etag` (any listed entity tag, compared weakly, or `*`;
/// §13.1.2) and `If-Modified-Since` is ignored; otherwise whether `If-Modified-Since` is a
/// valid HTTP date no earlier than `last_modified` (§13.1.3; an invalid date is ignored).
pub fn not_modified(headers: &HeaderMap, etag: &str, last_modified: SystemTime) -> bool {
    if headers.contains_key(header::IF_NONE_MATCH) {
        return headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
        .is_some_and(|since| whole_seconds(last_modified) <= since)
}

/// The answer to a `GET` of the JSON document `body` whose tag is `etag` (see [`etag`]) and
/// that last changed at `last_modified`: `304` with no body when [`not_modified`], else `200`
/// with `Content-Type: application/json`; both carry `ETag`, `Last-Modified` (an HTTP date)
/// and `Cache-Control: max-age=<max_age>` (seconds).
pub fn json(
    headers: &HeaderMap,
    etag: &str,
    last_modified: SystemTime,
    body: Bytes,
    max_age: u64,
) -> Response {
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(whole_seconds(last_modified)),
        )
        .header(header::CACHE_CONTROL, format!("max-age={max_age}"));
    let response = if not_modified(headers, etag, last_modified) {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Body::from(body))
    };
    response.expect("an ETag built by `etag`, an HTTP date and a numeric max-age are valid")
}

/// When each of a set of documents built per request (the gateway's cards and directory)
/// last changed: the first time it was seen with its current `ETag`. One entry per key (a
/// route), so memory is bounded by the number of routes.
#[derive(Debug, Default)]
pub struct Modified {
    seen: Mutex<HashMap<String, (String, SystemTime)>>,
}

impl Modified {
    /// The `Last-Modified` of document `key` whose current tag is `etag`: the time that tag
    /// was first seen for `key` (now, to the second, when it is new).
    pub fn last_modified(&self, key: &str, etag: &str) -> SystemTime {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(key) {
            Some((tag, at)) if tag == etag => *at,
            _ => {
                let now = whole_seconds(SystemTime::now());
                seen.insert(key.to_owned(), (etag.to_owned(), now));
                now
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn etags_match_weakly_and_in_lists() {
        let t = SystemTime::now();
        let h = with(&[(header::IF_NONE_MATCH, "\"a\", W/\"b\"")]);
        assert!(not_modified(&h, "\"b\"", t));
        assert!(!not_modified(&h, "\"c\"", t));
        let h = with(&[(header::IF_NONE_MATCH, "*")]);
        assert!(not_modified(&h, "\"c\"", t));
        assert!(!not_modified(&HeaderMap::new(), "\"c\"", t));
    }

    #[test]
    fn if_modified_since_compares_http_dates_and_yields_to_if_none_match() {
        // 2026-11-30T11:26:56Z plus a fraction: Last-Modified is that second.
        let t = UNIX_EPOCH + Duration::from_millis(1_796_038_016_700);
        let same = "Mon, 30 Nov 2026 11:26:56 GMT";
        let before = "Mon, 30 Nov 2026 11:26:55 GMT";
        assert!(not_modified(
            &with(&[(header::IF_MODIFIED_SINCE, same)]),
            "\"a\"",
            t
        ));
        assert!(!not_modified(
            &with(&[(header::IF_MODIFIED_SINCE, before)]),
            "\"a\"",
            t
        ));
        assert!(!not_modified(
            &with(&[(header::IF_MODIFIED_SINCE, "yesterday")]),
            "\"a\"",
            t
        ));
        // If-None-Match takes precedence: a stale tag means modified, whatever the date says.
        let both = with(&[
            (header::IF_NONE_MATCH, "\"old\""),
            (header::IF_MODIFIED_SINCE, same),
        ]);
        assert!(!not_modified(&both, "\"a\"", t));
    }

    #[test]
    fn a_document_is_modified_when_its_tag_changes() {
        let m = Modified::default();
        let first = m.last_modified("/agents", "\"a\"");
        assert_eq!(m.last_modified("/agents", "\"a\""), first);
        assert_eq!(first, whole_seconds(first));
        assert!(m.last_modified("/agents", "\"b\"") >= first);
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
