//! [`BodyLimitLayer`]: request bodies of at most `max` bytes. A `Content-Length` over the
//! limit is refused before anything is read; a body without one is cut off while reading
//! (see [`read_body`]).

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::Request, response::Response};
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tower::{Layer, Service};

use super::{ResponseFuture, refuse};
use crate::error::ApiError;

/// Layer of [`BodyLimit`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimitLayer {
    max: usize,
}

impl BodyLimitLayer {
    /// Bodies of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            max: self.max,
        }
    }
}

/// Enforces the body size limit.
#[derive(Clone, Debug)]
pub(crate) struct BodyLimit<S> {
    inner: S,
    max: usize,
}

/// The limit, as a request extension, so errors can name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaxBody(pub(crate) usize);

impl<S> Service<Request> for BodyLimit<S>
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
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max as u64) {
            return refuse(&req, ApiError::BodyTooLarge { limit: self.max });
        }
        let max = self.max;
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(MaxBody(max));
        let req = Request::from_parts(parts, Body::new(Limited::new(body, max)));
        Box::pin(self.inner.call(req))
    }
}

/// Reads a whole (limited) body within `timeout`.
///
/// # Errors
/// [`ApiError::BodyTooLarge`] past the limit, [`ApiError::BodyTimeout`] when the client is
/// too slow, [`ApiError::InvalidRequest`] when the client broke off.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(ApiError::BodyTimeout(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if s.is::<LengthLimitError>() {
                    return Err(ApiError::BodyTooLarge { limit });
                }
                source = s.source();
            }
            Err(ApiError::InvalidRequest(
                "the request body could not be read".into(),
            ))
        }
    }
}
