//! The HTTP/2 and HTTP/1.1 accept loop shared by agent servers and the gateway: one task per
//! connection, WebSocket upgrades, connection limits ([`ConnectionLimits`]: a cap on open
//! connections, a deadline for the first request, an idle timeout, HTTP/1.1 header and
//! HTTP/2 keep-alive timeouts), graceful shutdown with a deadline, and event streams over
//! HTTP/1.1 served without hyper's connection buffers (an idle SSE client's memory).

mod activity;
mod conn;
mod event_stream;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hyper::server::conn::{http1, http2};
use hyper_util::{
    rt::{TokioExecutor, TokioTimer},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use conn::{Connection, Protocols};

use crate::tls::ServerTls;

/// Concurrent HTTP/2 streams per connection: long-lived streams (subscriptions, sessions) must
/// not starve new calls on a shared connection (hyper's default is 200).
const MAX_CONCURRENT_STREAMS: u32 = 4096;
/// Largest HTTP/1.1 read buffer per connection, in bytes (hyper's minimum).
const HTTP1_READ_BUFFER: usize = 8192;

/// HTTP/2 keep-alive ping interval; a peer that does not answer within the timeout is dropped.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Limits on the connections of one listener, so that idle or slow clients cannot hold the
/// server's file descriptors and memory (HTTP/1.1 and HTTP/2 alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A new connection must deliver its first complete request head within this time (HTTP/1.1
    /// headers, or the HTTP/2 preface and a request's HEADERS), and so must every later
    /// HTTP/1.1 request once it has started; otherwise the connection is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// A connection with no request or stream in flight (a response still streaming counts as
    /// in flight) is closed after this long: HTTP/1.1 keep-alive connections are closed, HTTP/2
    /// connections get GOAWAY. Default 5 min. Once the first bytes of a keep-alive
    /// connection's next request arrive, the header read timeout bounds the wait instead.
    pub idle_timeout: Duration,
    /// Connections open at once. A connection beyond it is accepted and closed at once (the
    /// client sees the connection reset or closed before any response). A connection upgraded
    /// to a WebSocket leaves this count (the gateway bounds sessions with its
    /// `max_concurrent_requests`). Default 10,000.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
        }
    }
}

impl ConnectionLimits {
    /// Longest timeout accepted: about 31 years, far beyond any use and far from the
    /// `Instant` arithmetic overflow of absurd values.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(1_000_000_000);

    /// Checks that every limit is above zero and every timeout at most
    /// [`MAX_TIMEOUT`](Self::MAX_TIMEOUT); the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        for (name, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be longer than zero"));
            }
            if d > Self::MAX_TIMEOUT {
                return Err(format!(
                    "{name} must be at most {} seconds",
                    Self::MAX_TIMEOUT.as_secs()
                ));
            }
        }
        Ok(())
    }
}

/// Serves `router` on `listener` within `limits` until `stop` fires, then closes connections
/// gracefully (HTTP/2 GOAWAY, in-flight calls finish), waiting at most `grace`.
///
/// A plain connection speaks HTTP/2 if it opens with the HTTP/2 connection preface (prior
/// knowledge, RFC 9113 §3.4), HTTP/1.1 otherwise; it must send its first bytes within
/// [`ConnectionLimits::header_read_timeout`]. A plain HTTP/1.1 connection whose first request
/// accepts `text/event-stream` (and has no upgrade, no `Expect`, a body of at most 64 KiB with
/// a `Content-Length`) is served without hyper's per-connection buffers: the response carries
/// `Connection: close`, is written as it comes (`chunked` unless its length is known), and the
/// connection ends with it; its body must arrive within the header read timeout (else `408`).
///
/// With `tls`, every connection first completes a TLS handshake (within
/// [`ConnectionLimits::header_read_timeout`]); a connection that fails it (plain text, a
/// certificate the verifier refuses) is closed and logged at DEBUG. With mTLS
/// ([`ServerTls::peer_trust_domain`]), the client's certificate must carry a SPIFFE ID of the
/// trust domain, and every request of the connection carries its
/// [`PeerIdentity`](crate::identity::PeerIdentity) as an extension.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
    grace: Duration,
    limits: ConnectionLimits,
    tls: Option<ServerTls>,
) {
    let protocols = Arc::new(protocols());
    let acceptor = tls
        .as_ref()
        .map(|t| tokio_rustls::TlsAcceptor::from(t.config.clone()));
    let trust_domain: Option<Arc<str>> = tls
        .as_ref()
        .and_then(|t| t.peer_trust_domain.as_deref())
        .map(Into::into);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = limits.max_connections, "connection refused: at capacity");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            router: router.clone(),
            protocols: protocols.clone(),
            stop: stop.clone(),
            limits,
        };
        match &acceptor {
            Some(acceptor) => {
                let (acceptor, trust_domain) = (acceptor.clone(), trust_domain.clone());
                connections.spawn(async move {
                    connection.tls(stream, acceptor, trust_domain).await;
                    drop(slot);
                });
            }
            None => {
                connections.spawn(connection.plain(stream, connections.clone(), slot));
            }
        }
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "connections still open after the drain timeout");
    }
}

/// The HTTP settings of every connection of a listener.
fn protocols() -> Protocols {
    let mut http1 = http1::Builder::new();
    // No hyper `header_read_timeout`: it would also bound the wait between keep-alive
    // requests; the connection's `Activity` keeps both timeouts (conn.rs, activity.rs).
    http1
        .timer(TokioTimer::new())
        // hyper's minimum: an idle connection (an SSE stream) keeps one 8 KiB read buffer
        // instead of growing it; bodies are read in chunks of at most this size.
        .max_buf_size(HTTP1_READ_BUFFER);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    // TLS connections keep hyper-util's detection (the same settings).
    let mut auto = auto::Builder::new(TokioExecutor::new());
    auto.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    auto.http1()
        .timer(TokioTimer::new())
        .max_buf_size(HTTP1_READ_BUFFER);
    Protocols { http1, http2, auto }
}
