//! The operations listener ([`ServeConfig::metrics_listen`](super::ServeConfig::metrics_listen)).
//!
//! Plain-text HTTP (HTTP/1.1, or HTTP/2 with prior knowledge) with three routes, and nothing
//! else (no task, card or call goes through it):
//! - `GET /metrics`: the process's Prometheus metrics (text exposition format 0.0.4), as on the
//!   gRPC port;
//! - `GET /healthz`: `200 ok` while the process runs (a liveness probe);
//! - `GET /readyz`: `200 ready` while serving, `503 draining` from the first step of the drain
//!   (a readiness probe: endpoints move traffic away before connections close).
//!
//! An agent under mTLS refuses every connection without a mesh certificate at the handshake,
//! Prometheus's and the kubelet's included: this is the port they reach instead. It stays open
//! through the drain and closes with the gRPC listener.

use std::time::Duration;

use axum::{Router, routing::get};
use http::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::listener::ConnectionLimits;

/// How long the listener's open connections (an idle scraper's keep-alive) may delay the end
/// of the drain.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The routes; `draining` is cancelled when the drain starts.
fn router(draining: CancellationToken) -> Router {
    Router::new()
        .route("/metrics", get(super::metrics_document))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let draining = draining.is_cancelled();
                async move {
                    if draining {
                        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                    } else {
                        (StatusCode::OK, "ready\n")
                    }
                }
            }),
        )
}

/// Serves `listener` within `limits` (those of the gRPC listener: a scraper or a probe that
/// opens a connection and sends nothing, or keeps it idle, is closed like any other client;
/// connections beyond the cap are refused) until `stop`, then gives open connections
/// [`CLOSE_GRACE`] to finish.
pub(super) async fn serve(
    listener: TcpListener,
    draining: CancellationToken,
    stop: CancellationToken,
    limits: ConnectionLimits,
) {
    super::listener::serve(listener, router(draining), stop, CLOSE_GRACE, limits, None).await;
}
