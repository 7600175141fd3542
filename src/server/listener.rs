//! The HTTP/2 and HTTP/1.1 accept loop shared by agent servers and the gateway: one task per
//! connection, WebSocket upgrades, graceful shutdown with a deadline.

use std::{net::SocketAddr, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Concurrent HTTP/2 streams per connection: long-lived streams (subscriptions, sessions) must
/// not starve new calls on a shared connection (hyper's default is 200).
const MAX_CONCURRENT_STREAMS: u32 = 4096;
/// Largest HTTP/1.1 read buffer per connection, in bytes (hyper's minimum).
const HTTP1_READ_BUFFER: usize = 8192;
/// An HTTP/1.1 client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 keep-alive ping interval; a peer that does not answer within the timeout is dropped.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `router` on `listener` until `stop` fires, then closes connections gracefully (HTTP/2
/// GOAWAY, in-flight calls finish), waiting at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    stop: CancellationToken,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // hyper's minimum: an idle connection (an SSE stream) keeps one 8 KiB read buffer
        // instead of growing it; bodies are read in chunks of at most this size.
        .max_buf_size(HTTP1_READ_BUFFER);
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
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "connections still open after the drain timeout");
    }
}
