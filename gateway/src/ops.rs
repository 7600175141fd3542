//! `/healthz` (liveness: the process serves HTTP) and `/readyz` (readiness: the registry has
//! loaded the agents' cards once, and the gateway is not draining).

use axum::{extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use crate::app::AppState;

/// `GET /healthz`: 200 while the process runs, drain included.
pub(crate) async fn healthz() -> impl IntoResponse {
    body(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once the registry is loaded; 503 before, and during a drain.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let agents = state.registry.agents();
    let loaded = agents.iter().filter(|a| a.card().is_some()).count();
    let (status, word) = if state.draining.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if !state.registry.is_loaded() {
        (StatusCode::SERVICE_UNAVAILABLE, "loading")
    } else {
        (StatusCode::OK, "ready")
    };
    (
        status,
        body(json!({"status": word, "agents": agents.len(), "cardsLoaded": loaded})),
    )
}

fn body(v: Value) -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
}
