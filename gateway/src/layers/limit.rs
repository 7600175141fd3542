//! [`ConcurrencyLimitLayer`]: at most N requests at once, counting a request until its
//! response body ends (so open SSE streams count) and WebSocket sessions until they close;
//! beyond N, requests are shed at once with 429 / RESOURCE_EXHAUSTED (never queued).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{body::Body, extract::Request, response::Response};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use switchyard::telemetry::metrics;

use super::{ResponseFuture, refuse};
use crate::error::ApiError;

/// The slot a request holds, as a request extension: a WebSocket session keeps a clone for
/// its lifetime.
#[derive(Clone, Debug)]
pub(crate) struct Slot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Layer of [`ConcurrencyLimit`].
#[derive(Clone, Debug)]
pub(crate) struct ConcurrencyLimitLayer {
    slots: Arc<Semaphore>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` requests at once.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
        }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit {
            inner,
            slots: self.slots.clone(),
        }
    }
}

/// Sheds requests beyond the limit.
#[derive(Clone, Debug)]
pub(crate) struct ConcurrencyLimit<S> {
    inner: S,
    slots: Arc<Semaphore>,
}

impl<S> Service<Request> for ConcurrencyLimit<S>
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
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            ::metrics::counter!(metrics::HTTP_SHED, "reason" => "concurrency").increment(1);
            return refuse(&req, ApiError::Overloaded);
        };
        let slot = Slot(Arc::new(permit));
        req.extensions_mut().insert(slot.clone());
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _held_until_the_body_ends = &slot;
                    frame
                }))
            }))
        })
    }
}
