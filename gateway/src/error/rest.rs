//! The REST edge: how an [`ApiError`] becomes an HTTP status and the googleapis error
//! envelope `{"error":{"code","status","message","details"}}` (A2A v1.0, HTTP+JSON binding).
//!
//! The HTTP status is the A2A one for A2A errors (TASK_NOT_FOUND 404, INVALID_AGENT_RESPONSE
//! 500, the others 400); 413 for a body over the limit, 408 for a body that arrives too
//! slowly, 405 for a method a route does not take, 502 Bad Gateway (RFC 9110 §15.6.3) for a
//! call whose connection to the agent broke ([`ApiError::AgentFailed`], status UNAVAILABLE);
//! otherwise [`from_code`], the table of `google/rpc/code.proto`.

use axum::response::{IntoResponse as _, Response};
use http::StatusCode;
use serde_json::{Value, json};
use switchyard::client::code_name;
use tonic::Code;

use super::ApiError;

/// The HTTP status of a gRPC code (googleapis `google/rpc/code.proto`).
pub(crate) fn from_code(code: Code) -> StatusCode {
    let n = match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unauthenticated => 401,
    };
    StatusCode::from_u16(n).expect("every value above is a valid status")
}

/// The HTTP status `error` is answered with.
pub(crate) fn http_status(error: &ApiError) -> StatusCode {
    if let Some(kind) = error.a2a_kind() {
        return StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    }
    match error {
        ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::AgentFailed { .. } => StatusCode::BAD_GATEWAY,
        other => from_code(other.code()),
    }
}

/// The error envelope.
pub(crate) fn envelope(error: &ApiError) -> Value {
    json!({"error": {
        "code": http_status(error).as_u16(),
        "status": code_name(error.code()),
        "message": error.client_message(),
        "details": error.details(),
    }})
}

/// The HTTP answer, `application/json`.
pub(crate) fn response(error: &ApiError) -> Response {
    let mut response = (
        http_status(error),
        [(http::header::CONTENT_TYPE, "application/json")],
        envelope(error).to_string(),
    )
        .into_response();
    if let ApiError::MethodNotAllowed { allowed, .. } = error {
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static(allowed));
    }
    response
}

#[cfg(test)]
mod tests {
    use switchyard::error::{A2aErrorKind, RpcError};
    use tonic::Status;

    use super::*;

    #[test]
    fn googleapis_table() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in table {
            assert_eq!(from_code(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn a2a_errors_use_their_own_status() {
        for kind in A2aErrorKind::ALL {
            let e = ApiError::Upstream {
                agent: "a".into(),
                status: Status::from(RpcError::a2a(kind, "m")),
            };
            assert_eq!(http_status(&e).as_u16(), kind.http_status());
            let env = envelope(&e);
            assert_eq!(env["error"]["details"][0]["reason"], kind.reason());
            assert_eq!(env["error"]["status"], code_name(kind.grpc_code()));
        }
    }
}
