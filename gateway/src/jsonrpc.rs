//! The A2A JSON-RPC 2.0 binding at `POST /agents/{agent}` (and `/agents/{agent}/`), A2A
//! v1.0 "JSON-RPC binding". Every answer is HTTP 200 — a result, an error object, or (for
//! `SendStreamingMessage` and `SubscribeToTask`) an SSE stream of responses — except the
//! error for an unknown agent, which is HTTP 404.
//!
//! Checks, in order: `Content-Type` (-32005), body size and time (-32600), nesting depth
//! (-32602, [`crate::bounds`]), JSON (-32700), envelope (-32600), method (-32601), params
//! (-32602), `A2A-Version` (-32009), agent (HTTP 404, -32601 naming it and `GET /agents`),
//! id and value bounds (-32602),
//! then the call; agent errors map as in [`crate::error::json_rpc`].

pub(crate) mod envelope;

use axum::{
    Extension,
    body::Body,
    extract::State,
    response::{IntoResponse as _, Response},
};
use http::{HeaderMap, Method as HttpMethod, Uri};
use serde_json::Value;

use crate::{
    app::{AppState, agent_segment},
    call::{Answer, Target, dispatch},
    error::{ApiError, Failure},
    headers,
    layers::body_limit::{MaxBody, read_body},
    method::Method,
    sse::{self, Framing},
    upstream::Forward,
};

/// The JSON-RPC endpoint of one agent.
pub(crate) async fn handle(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    mut forward: Forward,
    max: Option<Extension<MaxBody>>,
    body: Body,
) -> Result<Response, Failure> {
    let null = |e| Failure::json_rpc(Value::Null, e);
    headers::require_json(&headers).map_err(null)?;
    let limit = max.map_or(state.config.max_body_bytes, |m| m.0.0);
    let bytes = read_body(body, limit, state.config.body_read_timeout)
        .await
        .map_err(null)?;
    crate::bounds::check_depth(&bytes).map_err(null)?;
    let request = envelope::parse(&bytes).map_err(|(id, e)| Failure::json_rpc(id, e))?;
    let id = request.id;
    let fail = |e| Failure::json_rpc(id.clone(), e);
    let version = headers::version(&headers, uri.query()).map_err(fail)?;
    forward.set_version(&version);
    let agent = state.agent(agent_segment(uri.path())).map_err(fail)?;
    let last_event_id = match request.call.method() {
        Method::SubscribeToTask => headers::last_event_id(&headers).map_err(fail)?,
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
    match dispatch(&target, request.call, last_event_id).await {
        Ok(Answer::Unary(result)) => Ok((
            [(http::header::CONTENT_TYPE, "application/json")],
            response_text(&id, &result),
        )
            .into_response()),
        Ok(Answer::Stream(stream)) => {
            let framing = Framing::JsonRpc(id.clone());
            sse::respond(target.agent.name(), stream, framing, state.sse())
                .await
                .map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// `{"id":…,"jsonrpc":"2.0","result":…}` around `result`, protobuf JSON text, without parsing
/// it again (members in the order `serde_json` gives an object's keys).
pub(crate) fn response_text(id: &Value, result: &str) -> String {
    let mut out = String::with_capacity(result.len() + 48);
    out.push_str("{\"id\":");
    out.push_str(&id.to_string());
    out.push_str(",\"jsonrpc\":\"2.0\",\"result\":");
    out.push_str(result);
    out.push('}');
    out
}

/// Any other HTTP method on the JSON-RPC endpoint.
pub(crate) async fn wrong_method(method: HttpMethod) -> Failure {
    Failure::rest(ApiError::MethodNotAllowed {
        method,
        allowed: "POST",
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    #[test]
    fn the_response_envelope_is_valid_json_around_the_result() {
        for id in [json!(7), json!("a\"b"), Value::Null, json!(2.5)] {
            let text = super::response_text(&id, r#"{"task":{"id":"t"}}"#);
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(
                v,
                json!({"jsonrpc": "2.0", "id": id, "result": {"task": {"id": "t"}}})
            );
        }
    }
}
