//! [`RequestIdLayer`]: `x-request-id` accepted (when well formed) or made, and echoed.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use http::{HeaderName, HeaderValue};
use tower::{Layer, Service};

use super::ResponseFuture;

/// The request id header.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a client, in bytes.
const MAX_LEN: usize = 128;

/// The request id, as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct RequestIdValue(HeaderValue);

impl RequestIdValue {
    /// The id.
    pub(crate) fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// Whether a client's id is usable: 1–128 visible ASCII characters.
fn well_formed(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| (0x21..=0x7e).contains(c))
}

/// A new request id: a UUID v4 (RFC 9562 §5.4, lower-case hyphenated) from the thread's
/// random generator (no system call per request), written without the formatting machinery.
fn new_id() -> HeaderValue {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut text))
        .expect("a UUID is a valid header value")
}

/// Layer of [`RequestId`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> RequestId<S> {
        RequestId { inner }
    }
}

/// Gives every request an id and echoes it on the response.
#[derive(Clone, Debug)]
pub(crate) struct RequestId<S> {
    inner: S,
}

impl<S> Service<Request> for RequestId<S>
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

    fn call(&mut self, mut req: Request) -> ResponseFuture {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if well_formed(v) => v.clone(),
            _ => new_id(),
        };
        req.headers_mut().insert(X_REQUEST_ID, id.clone());
        req.extensions_mut().insert(RequestIdValue(id.clone()));
        let future = self.inner.call(req);
        Box::pin(async move {
            let mut response = future.await?;
            response.headers_mut().insert(X_REQUEST_ID, id);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_ascii_ids_of_sane_length_are_kept() {
        assert!(well_formed(&HeaderValue::from_static("abc-123")));
        assert!(!well_formed(&HeaderValue::from_static("")));
        assert!(!well_formed(&HeaderValue::from_static("a b")));
        let long = "x".repeat(MAX_LEN + 1);
        assert!(!well_formed(&HeaderValue::from_str(&long).expect("ascii")));
    }

    #[test]
    fn made_ids_are_distinct_uuid_v4s() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        for id in [a, b] {
            let text = id.to_str().expect("ascii");
            let uuid = uuid::Uuid::parse_str(text).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(text, uuid.hyphenated().to_string());
            assert!(well_formed(&id));
        }
    }
}
