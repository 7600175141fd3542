//! The router: routes, shared state and the layer stack (order in [`crate::layers`]).

use std::{ops::Deref, sync::Arc, time::Duration};

use axum::{
    Router,
    middleware::map_response,
    routing::{any, get, post},
};
use http::{HeaderName, HeaderValue, Method};
use switchyard::{AgentRef, Registry};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    GatewayConfig,
    auth::layer::AuthLayer,
    card, console,
    error::{ApiError, Failure},
    grpc::Dispatch,
    jsonrpc,
    lanes::Lanes,
    layers::{
        body_limit::BodyLimitLayer, deadline::DeadlineLayer, drain::DrainLayer,
        header_check::HeaderCheckLayer, limit::ConcurrencyLimitLayer, request_id::RequestIdLayer,
        trace::TraceLayer,
    },
    ops, rest, sse, ws,
};

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) config: GatewayConfig,
    /// Public base URL, without a trailing slash.
    pub(crate) base_url: Arc<str>,
    /// Cancelled when the drain starts.
    pub(crate) draining: CancellationToken,
    /// Connections for long-lived calls.
    pub(crate) lanes: Arc<Lanes>,
    /// When each card and directory document last changed (`Last-Modified`).
    pub(crate) modified: switchyard::server::cached::Modified,
    /// Checks credentials; `None` when authentication is off.
    pub(crate) authenticator: Option<Arc<crate::auth::Authenticator>>,
    /// What the cards served declare about authentication.
    pub(crate) card_security: Arc<card::CardSecurity>,
}

/// The state of the router.
#[derive(Clone, Debug)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// The agent called `name`.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a name longer than an id may be, else
    /// [`ApiError::UnknownAgent`].
    pub(crate) fn agent(&self, name: &str) -> Result<AgentRef, ApiError> {
        crate::bounds::check_agent_name(name)?;
        self.registry
            .agent(name)
            .map_err(|_| ApiError::UnknownAgent(name.to_owned()))
    }

    /// Settings of the SSE streams.
    pub(crate) fn sse(&self) -> sse::Settings {
        sse::Settings {
            keepalive: self.config.sse_keepalive,
            buffer: self.config.sse_buffer_events,
            slow_client: self.config.slow_client_timeout,
            draining: self.draining.clone(),
        }
    }
}

/// The `{agent}` segment of a path under `/agents/` (raw; agent names need no escaping).
pub(crate) fn agent_segment(path: &str) -> &str {
    let below = path.strip_prefix("/agents/").unwrap_or_default();
    below.split('/').next().unwrap_or_default()
}

/// Headers a browser may send cross-origin (gRPC-Web clients add `x-grpc-web`,
/// `x-user-agent` and their metadata).
const ALLOWED_HEADERS: [&str; 16] = [
    "content-type",
    "authorization",
    "a2a-version",
    "a2a-extensions",
    "last-event-id",
    "x-request-id",
    "traceparent",
    "tracestate",
    "grpc-timeout",
    "x-timeout-ms",
    "cache-control",
    "x-grpc-web",
    "x-user-agent",
    "x-switchyard-agent",
    "grpc-encoding",
    "grpc-accept-encoding",
];

/// Headers a browser may read cross-origin (gRPC-Web: the status, also in trailers-only
/// answers).
const EXPOSED_HEADERS: [&str; 8] = [
    "x-request-id",
    "retry-after",
    "etag",
    "a2a-version",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
];

/// The CORS layer for `origins` (`*` allows any), or none when there are none.
///
/// # Errors
/// An origin that is not a valid header value.
pub(crate) fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| HeaderValue::from_str(o.trim_end_matches('/')))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("invalid CORS origin in {origins:?}"))?;
        AllowOrigin::list(list)
    };
    Ok(Some(cors_with(allow)))
}

/// The gateway's CORS settings for the origins `allow`.
pub(crate) fn cors_with(allow: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(600))
}

/// Marks an answer of an A2A route with the protocol version the gateway serves
/// (`A2A-Version: 1.0`; every accepted 1.x is served with 1.0 semantics, A2A v1.0.1 §3.6.2).
async fn served_version(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        HeaderName::from_static("a2a-version"),
        HeaderValue::from_static(switchyard::card::PROTOCOL_VERSION),
    );
    response
}

/// Unmatched paths.
async fn not_found(method: Method, uri: http::Uri) -> Failure {
    Failure::rest(ApiError::MethodNotFound(format!(
        "no route {method} {}",
        uri.path()
    )))
}

/// The full application: the gRPC front beside the HTTP routes ([`crate::grpc::Dispatch`]),
/// under the layers every request passes.
pub(crate) fn router(state: AppState, cors: Option<CorsLayer>) -> Router {
    let config = &state.config;
    let limit = ConcurrencyLimitLayer::new(config.max_concurrent_requests);
    let grpc_state = state.clone();
    let auth = state.clone();
    let api = Router::new()
        .route("/agents", get(card::directory))
        .route("/.well-known/agent-card.json", get(card::gateway_card))
        .route("/console/render", post(console::render))
        .route(
            "/agents/{agent}",
            post(jsonrpc::handle)
                .fallback(jsonrpc::wrong_method)
                .layer(map_response(served_version)),
        )
        .route(
            "/agents/{agent}/",
            post(jsonrpc::handle)
                .fallback(jsonrpc::wrong_method)
                .layer(map_response(served_version)),
        )
        .route(
            "/agents/{agent}/ws",
            any(ws::handle).layer(map_response(served_version)),
        )
        .route(
            "/agents/{agent}/.well-known/agent-card.json",
            get(card::agent_card),
        )
        .route(
            "/agents/{agent}/{*rest}",
            any(rest::handle).layer(map_response(served_version)),
        )
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(DrainLayer::new(state.draining.clone()))
                .layer(limit.clone())
                .layer(BodyLimitLayer::new(config.max_body_bytes))
                .layer(DeadlineLayer::new(
                    config.default_timeout,
                    config.max_timeout,
                    config.deadline_margin,
                )),
        )
        .with_state(state.clone());
    let http = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .merge(crate::mcp::router(&state))
        .with_state(state)
        .merge(api);
    Router::new()
        .fallback_service(Dispatch::new(grpc_state, limit, http))
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer)
                .layer(TraceLayer)
                .layer(AuthLayer::new(
                    auth.authenticator.clone(),
                    auth.config.auth.policy.clone(),
                ))
                .layer(HeaderCheckLayer)
                .option_layer(cors),
        )
}
