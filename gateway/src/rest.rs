//! The A2A REST (HTTP+JSON) binding under `/agents/{agent}/…` (A2A v1.0, HTTP+JSON binding;
//! routes in [`route`]). Success bodies are protobuf JSON (`application/a2a+json`); errors are
//! the googleapis envelope with the HTTP status of [`crate::error::rest`].
//!
//! Checks, in order: route (404 / 405), agent (404), `A2A-Version` (400), `Content-Type`
//! (400; for `:cancel` and `:subscribe` only when the body is not empty), body size and time
//! (413 / 408), body and query parameters (400), then the call.

mod request;
pub(crate) mod route;

use axum::{
    Extension,
    body::Body,
    extract::State,
    response::{IntoResponse as _, Response},
};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};

use crate::{
    app::AppState,
    call::{Answer, Target, dispatch},
    error::{ApiError, Failure},
    headers,
    layers::body_limit::{MaxBody, read_body},
    query::parse_query,
    sse::{self, Framing},
    upstream::Forward,
};

/// Media type of REST success bodies (A2A v1.0, HTTP+JSON binding).
const A2A_JSON: &str = "application/a2a+json";

/// Every REST route of one agent.
pub(crate) async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    forward: Forward,
    max: Option<Extension<MaxBody>>,
    body: Body,
) -> Result<Response, Failure> {
    serve(
        state,
        method,
        uri,
        headers,
        forward,
        max.map(|m| m.0.0),
        body,
    )
    .await
    .map_err(Failure::rest)
}

async fn serve(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut forward: Forward,
    max: Option<usize>,
    body: Body,
) -> Result<Response, ApiError> {
    let below = uri.path().strip_prefix("/agents/").unwrap_or_default();
    let (name, rest) = below.split_once('/').unwrap_or((below, ""));
    let path = route::parse(&method, rest)?;
    let agent = state.agent(name)?;
    let version = headers::version(&headers, uri.query())?;
    forward.set_version(&version);
    // `:cancel` and `:subscribe` need no body: an empty one comes with any content type
    // (clients send their default, e.g. aiohttp's `application/octet-stream`).
    let bodyless = matches!(
        path.route,
        route::Route::CancelTask(_) | route::Route::Subscribe(_)
    );
    if !bodyless {
        headers::allow_json(&headers)?;
    }
    let query = parse_query(uri.query().unwrap_or_default())?;
    let bytes = if method == Method::POST {
        let limit = max.unwrap_or(state.config.max_body_bytes);
        read_body(body, limit, state.config.body_read_timeout).await?
    } else {
        Bytes::new()
    };
    if bodyless && !bytes.iter().all(u8::is_ascii_whitespace) {
        headers::allow_json(&headers)?;
    }
    let call = request::call(&path, &query, &bytes)?;
    let last_event_id = match path.route {
        route::Route::Subscribe(_) => headers::last_event_id(&headers)?,
        _ => None,
    };
    let target = Target {
        agent,
        forward,
        base_url: state.base_url.clone(),
        card_security: state.card_security.clone(),
        lanes: state.lanes.clone(),
        resume: state.config.stream_resume,
    };
    match dispatch(&target, call, last_event_id).await? {
        Answer::Unary(value) => {
            Ok(([(http::header::CONTENT_TYPE, A2A_JSON)], value).into_response())
        }
        Answer::Stream(stream) => {
            sse::respond(target.agent.name(), stream, Framing::Rest, state.sse()).await
        }
    }
}
