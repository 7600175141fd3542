//! [`Failure`]: an [`ApiError`] on its way to the client, shaped for its [`Front`] — the one
//! `IntoResponse` type through which every handler and layer answers errors.

use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{ApiError, grpc, json_rpc, rest};

/// Which wire shape a client expects its errors in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Front {
    /// JSON-RPC 2.0: HTTP 200 with an error object, echoing the request id.
    JsonRpc(Value),
    /// REST and every other HTTP route: the googleapis error envelope and HTTP status.
    Rest,
    /// Native gRPC and gRPC-Web: a trailers-only answer with this content type.
    Grpc(&'static str),
}

impl Front {
    /// The front of a request before its body is read: `POST /agents/{agent}` (and with a
    /// trailing slash) is JSON-RPC, everything else REST.
    pub(crate) fn of(method: &http::Method, path: &str) -> Self {
        let rest = path.strip_prefix("/agents/").unwrap_or_default();
        let name = rest.strip_suffix('/').unwrap_or(rest);
        if method == http::Method::POST && !name.is_empty() && !name.contains('/') {
            Self::JsonRpc(Value::Null)
        } else {
            Self::Rest
        }
    }

    /// The front of a request before its body is read: gRPC by its content type, else as
    /// [`of`](Self::of).
    pub(crate) fn of_request<B>(request: &http::Request<B>) -> Self {
        match grpc::answer_type(request.headers()) {
            Some(content_type) => Self::Grpc(content_type),
            None => Self::of(request.method(), request.uri().path()),
        }
    }
}

/// Seconds in the `Retry-After` header of 429 and 503 answers, unless the agent's pushback
/// says otherwise ([`ApiError::retry_after_secs`]).
pub(crate) const RETRY_AFTER_SECS: u32 = 1;

/// An error on its way to the client: the one `IntoResponse` type of the gateway.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) front: Front,
    pub(crate) error: ApiError,
}

impl Failure {
    /// A REST-shaped failure.
    pub(crate) fn rest(error: ApiError) -> Self {
        Self {
            front: Front::Rest,
            error,
        }
    }

    /// A JSON-RPC failure answering request `id`.
    pub(crate) fn json_rpc(id: Value, error: ApiError) -> Self {
        Self {
            front: Front::JsonRpc(id),
            error,
        }
    }
}

/// Logs what the client does not see: the full upstream status of server-side failures.
pub(crate) fn log(error: &ApiError) {
    if error.is_server_side() {
        tracing::warn!(error = %error, "request failed");
    } else {
        tracing::debug!(error = %error, "request rejected");
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        log(&self.error);
        let mut response = match self.front {
            Front::JsonRpc(id) => json_rpc::response(id, &self.error),
            Front::Rest => rest::response(&self.error),
            Front::Grpc(content_type) => return grpc::response(&self.error, content_type),
        };
        if self.error.retry_after() {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(self.error.retry_after_secs()),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fronts_are_told_apart_by_method_and_path() {
        let post = http::Method::POST;
        assert!(matches!(
            Front::of(&post, "/agents/echo"),
            Front::JsonRpc(_)
        ));
        assert!(matches!(
            Front::of(&post, "/agents/echo/"),
            Front::JsonRpc(_)
        ));
        assert_eq!(Front::of(&post, "/agents/echo/message:send"), Front::Rest);
        assert_eq!(Front::of(&post, "/agents/"), Front::Rest);
        assert_eq!(Front::of(&http::Method::GET, "/agents/echo"), Front::Rest);
        assert_eq!(Front::of(&post, "/other"), Front::Rest);
    }
}
