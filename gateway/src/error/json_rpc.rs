//! The JSON-RPC edge: how an [`ApiError`] becomes a JSON-RPC 2.0 error object (A2A v1.0,
//! JSON-RPC binding, "Error handling").
//!
//! | error | code |
//! |---|---|
//! | any error whose `ErrorInfo.reason` is an A2A reason | -32001 … -32009 of that reason |
//! | body not JSON | -32700 |
//! | not a request object, batch, body too large or too slow | -32600 |
//! | unknown method | -32601 |
//! | params that do not fit the method | -32602 |
//! | agent status NOT_FOUND / INVALID_ARGUMENT / UNIMPLEMENTED | -32001 / -32602 / -32004 |
//! | anything else (unknown or down agent, overload, drain, deadline, internal) | -32603 |
//!
//! Every error carries `data`: the `ErrorInfo` (and the agent's `BadRequest`, if any). JSON-RPC
//! errors travel with HTTP 200, as the A2A SDKs expect.

use axum::response::{IntoResponse as _, Response};
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
        ApiError::MethodNotFound(_) | ApiError::MethodNotAllowed { .. } => -32601,
        ApiError::InvalidParams(_) | ApiError::BadRequest(_) => -32602,
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

/// The HTTP answer: 200, `application/json`.
pub(crate) fn response(id: Value, error: &ApiError) -> Response {
    (
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
        assert_eq!(code(&ApiError::UnknownAgent("x".into())), -32603);
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
