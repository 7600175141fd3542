//! The JSON-RPC edge: how an [`ApiError`] becomes a JSON-RPC 2.0 error object (A2A v1.0,
//! JSON-RPC binding, "Error handling").
//!
//! | error | code |
//! |---|---|
//! | any error whose `ErrorInfo.reason` is an A2A reason | -32001 … -32009 of that reason |
//! | body not JSON | -32700 |
//! | not a request object, batch, body too large or too slow | -32600 |
//! | unknown method | -32601 |
//! | unknown agent (`POST /agents/{agent}` names none; reason AGENT_NOT_FOUND), HTTP 404 | -32601 |
//! | params that do not fit the method | -32602 |
//! | agent status NOT_FOUND / INVALID_ARGUMENT / UNIMPLEMENTED | -32001 / -32602 / -32004 |
//! | anything else (down or failing agent, overload, drain, deadline, internal) | -32603 |
//!
//! Every error carries `data`: the `ErrorInfo` (and the agent's `BadRequest`, if any). JSON-RPC
//! errors travel with HTTP 200, as the A2A SDKs expect — except for an unknown agent: then no
//! JSON-RPC endpoint exists at the URL, so the answer is HTTP 404 (as REST answers), and the
//! code is JSON-RPC 2.0 §5.1's "Method not found" (-32601: the method is not available there;
//! the historical JSON-RPC-over-HTTP mapping pairs it with 404). -32603 would blame the server,
//! and the -32000 … -32099 server range is A2A's (-32001 … -32009).

use axum::response::{IntoResponse as _, Response};
use http::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use super::ApiError;

/// The JSON-RPC error code of `error`.
pub(crate) fn code(error: &ApiError) -> i32 {
    if let Some(kind) = error.a2a_kind() {
        return kind.json_rpc_code();
    }
    match error {
        ApiError::Parse(_) => -32700,
        ApiError::InvalidRequest(_) | ApiError::BodyTooLarge { .. } | ApiError::BodyTimeout(_) => {
            -32600
        }
        ApiError::MethodNotFound(_)
        | ApiError::MethodNotAllowed { .. }
        | ApiError::UnknownAgent(_) => -32601,
        ApiError::InvalidParams(_) | ApiError::BadRequest(_) => -32602,
        // Implementation-defined server errors (JSON-RPC 2.0 §5.1); A2A defines none for
        // authentication, the ErrorInfo reason (UNAUTHENTICATED, PERMISSION_DENIED) tells.
        ApiError::Unauthenticated(_) | ApiError::PermissionDenied(_) => -32000,
        ApiError::Upstream { status, .. } => match status.code() {
            Code::NotFound => -32001,
            Code::InvalidArgument => -32602,
            Code::Unimplemented => -32004,
            _ => -32603,
        },
        _ => -32603,
    }
}

/// `{"code", "message", "data"}`.
pub(crate) fn error_object(error: &ApiError) -> Value {
    json!({
        "code": code(error),
        "message": error.client_message(),
        "data": error.details(),
    })
}

/// The full JSON-RPC response carrying `error` for request `id`.
pub(crate) fn envelope(id: Value, error: &ApiError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error_object(error)})
}

/// The HTTP status a JSON-RPC error travels with: 404 for an unknown agent, 401 and 403 for
/// authentication and authorization refusals, else 200.
pub(crate) fn http_status(error: &ApiError) -> StatusCode {
    match error {
        ApiError::UnknownAgent(_) => StatusCode::NOT_FOUND,
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    }
}

/// The HTTP answer: [`http_status`], `application/json`.
pub(crate) fn response(id: Value, error: &ApiError) -> Response {
    (
        http_status(error),
        [(http::header::CONTENT_TYPE, "application/json")],
        envelope(id, error).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use switchyard::error::{A2aErrorKind, RpcError};
    use tonic::Status;

    use super::*;

    fn upstream(status: Status) -> ApiError {
        ApiError::Upstream {
            agent: "echo".into(),
            status,
        }
    }

    #[test]
    fn a2a_reasons_win_over_status_codes() {
        for kind in A2aErrorKind::ALL {
            let e = upstream(Status::from(RpcError::a2a(kind, "boom")));
            assert_eq!(code(&e), kind.json_rpc_code(), "{kind}");
            let data = &error_object(&e)["data"][0];
            assert_eq!(data["reason"], kind.reason());
            assert_eq!(data["domain"], "a2a-protocol.org");
        }
    }

    #[test]
    fn plain_statuses_map_by_code() {
        assert_eq!(code(&upstream(Status::not_found("x"))), -32001);
        assert_eq!(code(&upstream(Status::invalid_argument("x"))), -32602);
        assert_eq!(code(&upstream(Status::unimplemented("x"))), -32004);
        assert_eq!(code(&upstream(Status::permission_denied("x"))), -32603);
        assert_eq!(code(&ApiError::Parse("x".into())), -32700);
        assert_eq!(code(&ApiError::BodyTooLarge { limit: 1 }), -32600);
    }

    #[test]
    fn an_unknown_agent_is_a_client_error_on_404() {
        let e = ApiError::UnknownAgent("nope".into());
        assert_eq!(code(&e), -32601);
        assert_eq!(http_status(&e), StatusCode::NOT_FOUND);
        let obj = error_object(&e);
        assert_eq!(obj["data"][0]["reason"], "AGENT_NOT_FOUND");
        assert_eq!(obj["data"][0]["metadata"]["agent"], "nope");
        let message = obj["message"].as_str().expect("a message");
        assert!(message.contains("\"nope\"") && message.contains("GET /agents"));
        assert_eq!(http_status(&ApiError::Parse("x".into())), StatusCode::OK);
    }

    #[test]
    fn a_broken_agent_connection_is_a_server_error_without_internals() {
        let mut status = Status::internal("h2 protocol error: error reading a body");
        status.set_source(std::sync::Arc::new(std::io::Error::other("reset")));
        let e = ApiError::AgentFailed {
            agent: "echo".into(),
            status,
        };
        let obj = error_object(&e);
        assert_eq!(obj["code"], -32603);
        assert_eq!(
            obj["message"],
            "agent \"echo\" failed to answer; retry later"
        );
        assert_eq!(obj["data"][0]["reason"], "AGENT_FAILED");
        assert!(e.is_server_side() && e.retry_after());
        assert_eq!(crate::error::rest::http_status(&e), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn field_violations_travel_in_data() {
        let status = Status::from(RpcError::invalid("message.parts", "at least one"));
        let obj = error_object(&upstream(status));
        assert_eq!(obj["code"], -32602);
        assert_eq!(obj["data"][0]["reason"], "INVALID_PARAMS");
        assert_eq!(
            obj["data"][1]["fieldViolations"][0]["field"],
            "message.parts"
        );
    }
}
