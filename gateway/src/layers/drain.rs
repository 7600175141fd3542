//! [`DrainLayer`]: once the gateway drains, new requests are refused with 503 and
//! `Retry-After` (and `Connection: close`, so HTTP/1.1 clients reconnect elsewhere).

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

use super::{ResponseFuture, refuse};
use crate::error::ApiError;

/// Layer of [`Drain`].
#[derive(Clone, Debug)]
pub(crate) struct DrainLayer {
    draining: CancellationToken,
}

impl DrainLayer {
    /// Refuses requests once `draining` is cancelled.
    pub(crate) fn new(draining: CancellationToken) -> Self {
        Self { draining }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = Drain<S>;

    fn layer(&self, inner: S) -> Drain<S> {
        Drain {
            inner,
            draining: self.draining.clone(),
        }
    }
}

/// Refuses new requests during a drain.
#[derive(Clone, Debug)]
pub(crate) struct Drain<S> {
    inner: S,
    draining: CancellationToken,
}

impl<S> Service<Request> for Drain<S>
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
        if self.draining.is_cancelled() {
            let refused = refuse(&req, ApiError::Draining);
            return Box::pin(async move {
                let mut response = refused.await?;
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                Ok(response)
            });
        }
        Box::pin(self.inner.call(req))
    }
}
