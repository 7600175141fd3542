//! [`HeaderCheckLayer`]: request headers that are malformed or too large for the hop to the
//! agent are refused before anything else reads them.
//!
//! - More than one `Host` header, or none on HTTP/1.1: 400 (RFC 9112 §3.2: "A server MUST
//!   respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a
//!   Host header field and to any request message that contains more than one Host header
//!   field line"). Two hosts make routing, logs and the card URLs ambiguous.
//! - A header the gateway forwards to the agent as gRPC metadata (`Authorization`,
//!   `A2A-Version`, `A2A-Extensions`) longer than [`MAX_FORWARDED_HEADER_BYTES`], or repeated,
//!   and `tracestate` lines longer than that together: 400. gRPC metadata travels in HTTP/2 headers on a connection shared with other clients'
//!   calls; an agent may refuse oversized headers, so they never leave the gateway.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use http::HeaderMap;
use tower::{Layer, Service};

use super::{ResponseFuture, refuse};
use crate::error::ApiError;

/// Longest value of a header forwarded to the agent, in bytes.
pub(crate) const MAX_FORWARDED_HEADER_BYTES: usize = 8 * 1024;

/// The headers forwarded as gRPC metadata (see [`crate::upstream`]).
const FORWARDED: [http::HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::HeaderName::from_static("a2a-version"),
    http::HeaderName::from_static("a2a-extensions"),
];

/// `tracestate`, forwarded with `traceparent` (see [`crate::upstream`]).
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// What is wrong with the headers of a request, if anything.
pub(crate) fn problem(version: http::Version, headers: &HeaderMap) -> Option<String> {
    match headers.get_all(http::header::HOST).iter().count() {
        0 if version == http::Version::HTTP_11 => {
            return Some("an HTTP/1.1 request needs a Host header".to_owned());
        }
        0 | 1 => {}
        _ => return Some("the request has more than one Host header".to_owned()),
    }
    for name in FORWARDED {
        let mut values = headers.get_all(&name).iter();
        if let Some(v) = values.next() {
            if values.next().is_some() {
                return Some(format!("the request has more than one {name} header"));
            }
            if v.len() > MAX_FORWARDED_HEADER_BYTES {
                return Some(format!(
                    "the {name} header is {} bytes long; at most {MAX_FORWARDED_HEADER_BYTES}",
                    v.len()
                ));
            }
        }
    }
    // W3C Trace Context §3.3.1: `tracestate` may come in several header lines, so only its
    // combined size is bounded; it is forwarded when the gateway does not trace itself.
    let tracestate: usize = headers
        .get_all(TRACESTATE)
        .iter()
        .map(|v| v.len() + 1)
        .sum();
    if tracestate > MAX_FORWARDED_HEADER_BYTES {
        return Some(format!(
            "the tracestate header is {tracestate} bytes long; at most {MAX_FORWARDED_HEADER_BYTES}"
        ));
    }
    None
}

/// Layer of [`HeaderCheck`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeaderCheckLayer;

impl<S> Layer<S> for HeaderCheckLayer {
    type Service = HeaderCheck<S>;

    fn layer(&self, inner: S) -> HeaderCheck<S> {
        HeaderCheck { inner }
    }
}

/// Refuses requests whose headers [`problem`] finds fault with.
#[derive(Clone, Debug)]
pub(crate) struct HeaderCheck<S> {
    inner: S,
}

impl<S> Service<Request> for HeaderCheck<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> ResponseFuture {
        if let Some(p) = problem(req.version(), req.headers()) {
            return refuse(&req, ApiError::InvalidRequest(p));
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn repeated_or_oversized_headers_are_found() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a"));
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        assert_eq!(problem(http::Version::HTTP_11, &h), None);
        h.append("host", HeaderValue::from_static("b"));
        assert!(
            problem(http::Version::HTTP_11, &h)
                .expect("two hosts")
                .contains("Host")
        );
        let mut h = HeaderMap::new();
        let long = "x".repeat(MAX_FORWARDED_HEADER_BYTES + 1);
        h.insert(
            "a2a-extensions",
            HeaderValue::from_str(&long).expect("ascii"),
        );
        assert!(
            problem(http::Version::HTTP_2, &h)
                .expect("too long")
                .contains("a2a-extensions")
        );
        assert_eq!(problem(http::Version::HTTP_2, &HeaderMap::new()), None);
        assert!(problem(http::Version::HTTP_11, &HeaderMap::new()).is_some());
    }
}
