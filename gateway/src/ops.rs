//! `/healthz` (liveness: the process serves HTTP), `/readyz` (readiness: the registry has
//! loaded the agents' cards once, and the gateway is not draining; it names the agents with no
//! available endpoint), `/metrics` (Prometheus).

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use crate::app::AppState;

/// `GET /healthz`: 200 while the process runs, drain included.
pub(crate) async fn healthz() -> impl IntoResponse {
    body(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once the registry is loaded; 503 before, and during a drain.
///
/// The body names the agents that have no available endpoint (`"unavailable"`: every
/// endpoint fails its `grpc.health.v1` checks or is ejected, see
/// [`switchyard::AgentRef::is_available`]), and says `"degraded"` instead of `"ready"` while
/// there are any. The status stays 200 then: the gateway still serves every other agent, and
/// a failing readiness probe would take it out of rotation for all of them.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let agents = state.registry.agents();
    let loaded = agents.iter().filter(|a| a.card().is_some()).count();
    let unavailable: Vec<&str> = agents
        .iter()
        .filter(|a| !a.is_available())
        .map(|a| a.name())
        .collect();
    let (status, word) = if state.draining.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if !state.registry.is_loaded() {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    } else if !unavailable.is_empty() {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    (
        status,
        body(json!({
            "status": word,
            "agents": agents.len(),
            "cardsLoaded": loaded,
            "unavailable": unavailable,
        })),
    )
}

fn body(v: Value) -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
}

/// `GET /metrics`: the process's Prometheus metrics (text format 0.0.4).
pub(crate) async fn metrics() -> impl IntoResponse {
    match switchyard::telemetry::metrics::render() {
        Some(text) => (
            StatusCode::OK,
            [(
                http::header::CONTENT_TYPE,
                switchyard::telemetry::metrics::CONTENT_TYPE,
            )],
            text,
        ),
        None => (
            StatusCode::NOT_FOUND,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "another metrics recorder is installed in this process\n".to_owned(),
        ),
    }
}

/// Counts one open SSE stream or WebSocket session while it lives
/// (`switchyard_http_server_open_streams{protocol}`).
#[derive(Debug)]
pub(crate) struct OpenStream(&'static str);

impl OpenStream {
    pub(crate) fn new(protocol: &'static str) -> Self {
        ::metrics::gauge!(switchyard::telemetry::metrics::HTTP_OPEN_STREAMS, "protocol" => protocol)
            .increment(1.0);
        Self(protocol)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        ::metrics::gauge!(switchyard::telemetry::metrics::HTTP_OPEN_STREAMS, "protocol" => self.0)
            .decrement(1.0);
    }
}
