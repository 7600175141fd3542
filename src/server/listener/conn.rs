//! One accepted connection: the TLS handshake or, on plain TCP, the choice between HTTP/1.1
//! and HTTP/2; then the connection served until it ends, goes idle or the server stops.
//!
//! Memory: the task of a plain connection holds only the protocol it speaks (hyper's
//! `http1` or `http2` connection), not hyper-util's `auto` connection, which holds both
//! inline, nor rustls' state; see bench/RESULTS.md §9.

use std::{
    convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration,
};

use futures::FutureExt as _;
use hyper::server::conn::{http1, http2};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpStream, sync::OwnedSemaphorePermit};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt as _;

use super::{
    ConnectionLimits,
    activity::{Activity, Tracked, Watched},
    event_stream,
};
use crate::identity::PeerIdentity;

/// The HTTP settings of every connection of a listener.
#[derive(Debug)]
pub(super) struct Protocols {
    /// Plain connections that do not open with the HTTP/2 preface.
    pub(super) http1: http1::Builder,
    /// Plain connections that open with the HTTP/2 preface.
    pub(super) http2: http2::Builder<TokioExecutor>,
    /// TLS connections: hyper-util's detection (the settings of the two above).
    pub(super) auto: auto::Builder<TokioExecutor>,
}

/// The HTTP/2 connection preface a client with prior knowledge opens with (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait before looking again at a connection whose first bytes are a strict
/// prefix of [`H2_PREFACE`] (a peek returns the same bytes at once until more arrive).
const SNIFF_RETRY: Duration = Duration::from_millis(5);

/// What a plain connection speaks, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// One accepted connection and what serving it needs.
#[derive(Debug)]
pub(super) struct Connection {
    pub(super) peer: SocketAddr,
    pub(super) router: axum::Router,
    pub(super) protocols: Arc<Protocols>,
    pub(super) stop: CancellationToken,
    pub(super) limits: ConnectionLimits,
}

impl Connection {
    /// Serves a plain TCP connection: HTTP/2 if it opens with the preface, HTTP/1.1 (with
    /// upgrades) otherwise, a first request that accepts an event stream by
    /// [`event_stream`]. A connection that sends nothing within the header read timeout, or
    /// closes first, is dropped. `slot` (the connection's place under the listener's cap) is
    /// held until the connection ends.
    ///
    /// This task only tells the three apart; the connection is then served by a task of its
    /// own on `tasks`, sized for what it speaks: a task is as large as the largest state of
    /// its future, and an idle event stream should not pay for hyper's connection (nor
    /// hyper's for the event stream's); bench/RESULTS.md §9.
    ///
    /// An `async` block that uses its captures in place: an `async fn` keeps a second copy of
    /// its arguments in its future (the task's size, per connection).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps a second copy of its arguments in its future"
    )]
    pub(super) fn plain(
        self,
        stream: TcpStream,
        tasks: TaskTracker,
        slot: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send {
        async move {
            // The first request's deadline runs from here, the detection included.
            let activity = Activity::new();
            let sniffed = tokio::select! {
                s = tokio::time::timeout(self.limits.header_read_timeout, sniff(&stream)) => s,
                () = self.stop.cancelled() => return,
            };
            let protocol = match sniffed {
                Ok(Ok(Some(p))) => p,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "closing an idle connection");
                    return;
                }
            };
            if protocol == Protocol::Http1 {
                // The sniffed bytes are there: the peek looks at what has arrived.
                if let Some(head) = event_stream::peek(&stream) {
                    let peer = self.peer;
                    let served = event_stream::serve(
                        stream,
                        head,
                        self.router,
                        self.limits.header_read_timeout,
                    );
                    // `map`, not an `async` block awaiting it: the block would hold the
                    // future twice (its capture and the awaited copy).
                    tasks.spawn(served.map(move |ended| {
                        if let Err(e) = ended {
                            tracing::debug!(%peer, error = %e, "event stream ended with an error");
                        }
                        drop(slot);
                    }));
                    return;
                }
            }
            tasks.spawn(self.hyper(stream, protocol, activity, slot));
        }
    }

    /// Serves a plain connection with hyper's `http1` (with upgrades) or `http2` connection.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn keeps a second copy of its arguments in its future"
    )]
    fn hyper(
        self,
        stream: TcpStream,
        protocol: Protocol,
        activity: Arc<Activity>,
        slot: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send {
        async move {
            let service = service(self.router.clone(), None, activity.clone());
            let io = TokioIo::new(Watched::new(stream, activity.clone()));
            match protocol {
                Protocol::Http1 => {
                    let conn = self
                        .protocols
                        .http1
                        .serve_connection(io, service)
                        .with_upgrades();
                    tokio::pin!(conn);
                    self.drive(conn, |c| c.graceful_shutdown(), &activity).await;
                }
                Protocol::Http2 => {
                    // Boxed: HTTP/2's state (h2's codec and HPACK tables) is several times
                    // HTTP/1.1's; inline, it would size the task of every HTTP/1.1 connection
                    // (an HTTP/2 connection carries many streams: one box for all of them).
                    let mut conn = Box::pin(self.protocols.http2.serve_connection(io, service));
                    self.drive(conn.as_mut(), |c| c.graceful_shutdown(), &activity)
                        .await;
                }
            }
            drop(slot);
        }
    }

    /// Serves a TLS connection: the handshake (within the header read timeout), the mTLS
    /// peer check if `trust_domain` is set, then HTTP/1.1 or HTTP/2 as hyper-util detects.
    pub(super) async fn tls(
        self,
        stream: TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
        trust_domain: Option<Arc<str>>,
    ) {
        let peer = self.peer;
        let handshake = tokio::select! {
            r = tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream)) => r,
            () = self.stop.cancelled() => return,
        };
        let tls = match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let identity = match trust_domain {
            Some(domain) => match crate::tls::peer_identity(tls.get_ref().1, &domain) {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "mTLS peer refused");
                    return;
                }
            },
            None => None,
        };
        let activity = Activity::new();
        let service = service(self.router.clone(), identity, activity.clone());
        let conn = self.protocols.auto.serve_connection_with_upgrades(
            TokioIo::new(Watched::new(tls, activity.clone())),
            service,
        );
        tokio::pin!(conn);
        self.drive(conn, |c| c.graceful_shutdown(), &activity).await;
    }

    /// Drives `conn` until it ends, goes idle (no request in flight for the limits' time: a
    /// graceful close, then the socket is dropped after the header read timeout) or the
    /// server stops (a graceful close).
    ///
    /// `conn` is borrowed, not moved in: an `async fn` keeps a second copy of its arguments in
    /// its future, and a connection moved in would be held twice.
    async fn drive<C, E>(
        &self,
        mut conn: Pin<&mut C>,
        shutdown: fn(Pin<&mut C>),
        activity: &Activity,
    ) where
        C: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let Self {
            peer,
            ref stop,
            limits,
            ..
        } = *self;
        let idle = activity.idle(limits.header_read_timeout, limits.idle_timeout);
        tokio::pin!(idle);
        // After an idle close begins, the peer has `header_read_timeout` to finish it (an
        // HTTP/2 peer must answer the GOAWAY's PING); then the socket is dropped.
        let hard_close = tokio::time::sleep(Duration::MAX);
        tokio::pin!(hard_close);
        let mut closing = false;
        loop {
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = &mut idle, if !closing => {
                    tracing::debug!(%peer, "closing an idle connection");
                    closing = true;
                    shutdown(conn.as_mut());
                    hard_close
                        .as_mut()
                        .reset(tokio::time::Instant::now() + limits.header_read_timeout);
                }
                () = &mut hard_close => {
                    tracing::debug!(%peer, "dropping an idle connection that did not close");
                    break;
                }
                () = stop.cancelled(), if !closing => {
                    closing = true;
                    shutdown(conn.as_mut());
                }
            }
        }
    }
}

/// Whether `stream` opens with the HTTP/2 preface, from its first bytes (left unread for
/// hyper); `None` if the peer closed before sending any.
async fn sniff(stream: &TcpStream) -> std::io::Result<Option<Protocol>> {
    let mut first = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Ok(None);
        }
        if first[..n] != H2_PREFACE[..n] {
            return Ok(Some(Protocol::Http1));
        }
        if n == H2_PREFACE.len() {
            return Ok(Some(Protocol::Http2));
        }
        tokio::time::sleep(SNIFF_RETRY).await;
    }
}

/// The service of one connection: `router`, every request counted in `activity` until its
/// response body ends, and carrying the mTLS peer's `identity` as an extension.
fn service(
    router: axum::Router,
    identity: Option<PeerIdentity>,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<Tracked>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Tracked>, Infallible>> + Send + 'static,
> + Send
+ 'static {
    hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let request = activity.begin();
        let router = router.clone();
        if let Some(id) = &identity {
            req.extensions_mut().insert(id.clone());
        }
        async move {
            let response = router
                .oneshot(req.map(axum::body::Body::new))
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            Ok::<_, Infallible>(response.map(|inner| Tracked {
                inner,
                _request: request,
            }))
        }
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    /// A connected pair: the client's end and the server's accepted end.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn the_preface_means_http2_and_anything_else_http1() {
        for (sent, expected) in [
            (&H2_PREFACE[..], Some(Protocol::Http2)),
            (&b"POST / HTTP/1.1\r\n"[..], Some(Protocol::Http1)),
            (&b"GET / HTTP/1.1\r\n\r\n"[..], Some(Protocol::Http1)),
            (&b"PRI * HTTP/1.1\r\n"[..], Some(Protocol::Http1)),
        ] {
            let (mut client, server) = pair().await;
            client.write_all(sent).await.expect("write");
            assert_eq!(sniff(&server).await.expect("sniff"), expected, "{sent:?}");
            let mut left = vec![0u8; sent.len()];
            let n = server.peek(&mut left).await.expect("peek");
            assert_eq!(&left[..n], &sent[..n], "the bytes are left for hyper");
        }
    }

    #[tokio::test]
    async fn a_preface_in_pieces_is_waited_for_and_a_close_is_none() {
        let (mut client, server) = pair().await;
        client.write_all(&H2_PREFACE[..3]).await.expect("write");
        let sniffing = tokio::spawn(async move { sniff(&server).await.expect("sniff") });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            !sniffing.is_finished(),
            "three bytes of the preface decide nothing"
        );
        client.write_all(&H2_PREFACE[3..]).await.expect("write");
        assert_eq!(sniffing.await.expect("task"), Some(Protocol::Http2));

        let (client, server) = pair().await;
        drop(client);
        assert_eq!(sniff(&server).await.expect("sniff"), None);
    }
}
