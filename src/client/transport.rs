//! [`Transport`]: the HTTP/2 connection a [`Client`](crate::Client)'s calls go through — a
//! tonic [`Channel`], measured when it belongs to an endpoint the registry balances over.
//!
//! A measured transport records, per call, the time to the response headers (the peak-EWMA
//! latency the balancer compares, see [`crate::registry`]) and the calls in flight, and
//! reports a failed connection (the call got no response at all) so that the endpoint leaves
//! the rotation and its name is resolved again.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{body::Body, transport::Channel};
use tower::Service;

use crate::registry::balance::{CallGuard, EndpointLoad};

/// A [`Channel`], with an optional load measurement of its endpoint.
#[derive(Clone, Debug)]
pub struct Transport {
    channel: Channel,
    load: Option<Arc<EndpointLoad>>,
}

impl Transport {
    /// An unmeasured transport over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            load: None,
        }
    }

    /// A transport whose calls update `load`.
    pub(crate) fn measured(channel: Channel, load: Arc<EndpointLoad>) -> Self {
        Self {
            channel,
            load: Some(load),
        }
    }
}

impl From<Channel> for Transport {
    fn from(channel: Channel) -> Self {
        Self::new(channel)
    }
}

impl Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let guard = self.load.as_ref().map(|l| l.start());
        ResponseFuture {
            inner: self.channel.call(request),
            guard,
        }
    }
}

/// The response of a [`Transport`] call; completes its measurement.
pub struct ResponseFuture {
    inner: <Channel as Service<http::Request<Body>>>::Future,
    guard: Option<CallGuard>,
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<Body>, tonic::transport::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if let Some(guard) = self.guard.take() {
            // The call's own deadline expiring says nothing about the endpoint's health: it
            // counts as a (slow) answer, not as a failed connection.
            guard.finish(out.as_ref().map_or_else(timed_out, |_| true));
        }
        Poll::Ready(out)
    }
}

/// Whether `error` is the expiry of the call's own deadline (`grpc-timeout`), which tonic's
/// channel reports as a transport error.
fn timed_out(error: &tonic::transport::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}
