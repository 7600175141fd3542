//! [`Transport`]: the HTTP/2 connection a [`Client`](crate::Client)'s calls go through — a
//! tonic [`Channel`], measured when it belongs to an endpoint the registry balances over.
//!
//! A routed transport is a registered agent's ([`crate::registry`]): each call is balanced
//! over the agent's endpoints, checked for outliers and retried where safe
//! ([`crate::resilience`]).
//!
//! A measured transport records, per call, the time to the response headers (the peak-EWMA
//! latency the balancer compares, see [`crate::registry`]) and the calls in flight, and
//! reports a failed connection (the call got no response at all) so that the endpoint leaves
//! the rotation and its name is resolved again.
//!
//! A transport may also know its endpoint as an in-process one ([`crate::server::in_process`]
//! has the rules): while an agent of this process serves at that address for this client's
//! mesh (or in plain text, for a plain-text client), calls go to its request stack directly
//! instead of over the channel.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{body::Body, transport::Channel};
use tower::{BoxError, Service, util::Oneshot};

use crate::{
    registry::{
        balance::{CallGuard, EndpointLoad},
        route::Router,
    },
    tls::ClientTls,
};

/// A [`Channel`], with an optional load measurement of its endpoint; or the balanced,
/// retrying transport of a registered agent ([`crate::resilience`]).
#[derive(Clone, Debug)]
pub struct Transport {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Channel {
        channel: Channel,
        load: Option<Arc<EndpointLoad>>,
        /// The channel's endpoint, when an agent of this process may serve it, and the
        /// channel's TLS (`None`: plain text).
        in_process: Option<(SocketAddr, Option<ClientTls>)>,
    },
    Routed(Arc<Router>),
}

impl Transport {
    /// An unmeasured transport over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: Inner::Channel {
                channel,
                load: None,
                in_process: None,
            },
        }
    }

    /// A transport whose calls update `load`.
    pub(crate) fn measured(channel: Channel, load: Arc<EndpointLoad>) -> Self {
        Self {
            inner: Inner::Channel {
                channel,
                load: Some(load),
                in_process: None,
            },
        }
    }

    /// This transport, sending its calls to the agent of this process that serves `addr`
    /// (the channel's endpoint, whose TLS is `tls`) whenever one does and would take them
    /// over the network ([`crate::server::in_process`]).
    pub(crate) fn in_process(mut self, addr: SocketAddr, tls: Option<ClientTls>) -> Self {
        if let Inner::Channel { in_process, .. } = &mut self.inner {
            *in_process = Some((addr, tls));
        }
        self
    }

    /// The transport of a registered agent: every call goes through `router`.
    pub(crate) fn routed(router: Arc<Router>) -> Self {
        Self {
            inner: Inner::Routed(router),
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
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.inner {
            Inner::Channel { channel, .. } => channel.poll_ready(cx).map_err(Into::into),
            Inner::Routed(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match &mut self.inner {
            Inner::Channel {
                channel,
                load,
                in_process,
            } => {
                let guard = load.as_ref().map(|l| l.start());
                let local = in_process
                    .as_ref()
                    .and_then(|(addr, tls)| crate::server::in_process::find(*addr, tls.as_ref()));
                if let Some((router, identity)) = local {
                    let mut request = request.map(axum::body::Body::new);
                    // As the listener hands it on: the HTTP/2 request of a gRPC call, with no
                    // extension but the mTLS peer's identity (none crosses the network: a
                    // caller's own would be believed).
                    *request.version_mut() = http::Version::HTTP_2;
                    request.extensions_mut().clear();
                    if let Some(identity) = identity {
                        request.extensions_mut().insert(identity);
                    }
                    return ResponseFuture {
                        inner: Kind::InProcess {
                            inner: Box::new(Oneshot::new(router, request)),
                            guard,
                        },
                    };
                }
                ResponseFuture {
                    inner: Kind::Channel {
                        inner: channel.call(request),
                        guard,
                    },
                }
            }
            Inner::Routed(router) => ResponseFuture {
                inner: Kind::Routed(Box::pin(router.clone().call(request))),
            },
        }
    }
}

/// The response of a [`Transport`] call; completes its measurement.
pub struct ResponseFuture {
    inner: Kind,
}

enum Kind {
    Channel {
        inner: <Channel as Service<http::Request<Body>>>::Future,
        guard: Option<CallGuard>,
    },
    InProcess {
        inner: Box<Oneshot<axum::Router, http::Request<axum::body::Body>>>,
        guard: Option<CallGuard>,
    },
    Routed(Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>>),
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<Body>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Kind::Channel { inner, guard } => {
                let out = std::task::ready!(Pin::new(inner).poll(cx));
                if let Some(guard) = guard.take() {
                    // The call's own deadline expiring says nothing about the endpoint's
                    // health: it counts as a (slow) answer, not as a failed connection.
                    guard.finish(out.as_ref().map_or_else(timed_out, |_| true));
                }
                Poll::Ready(out.map_err(Into::into))
            }
            Kind::InProcess { inner, guard } => {
                let Ok(response) = std::task::ready!(Pin::new(inner).poll(cx));
                if let Some(guard) = guard.take() {
                    guard.finish(true);
                }
                Poll::Ready(Ok(response.map(Body::new)))
            }
            Kind::Routed(f) => f.as_mut().poll(cx),
        }
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
