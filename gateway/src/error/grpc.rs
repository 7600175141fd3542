//! The gRPC edge (native gRPC and gRPC-Web): an [`ApiError`] as a gRPC status — its code, the
//! client-safe message and `grpc-status-details-bin` (a `google.rpc.Status` holding the
//! `ErrorInfo`, and a `BadRequest` naming invalid fields) — answered *trailers-only* (gRPC over
//! HTTP/2, "Responses": HTTP 200 and the status in the only header block, no body), which
//! gRPC-Web clients read the same way.

use std::collections::HashMap;

use axum::{body::Body, response::Response};
use http::{HeaderMap, HeaderValue, header};
use tonic::Status;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use super::ApiError;

/// The gRPC content type.
pub(crate) const GRPC: &str = "application/grpc";
/// The gRPC-Web content type tonic-web answers binary calls with.
pub(crate) const GRPC_WEB: &str = "application/grpc-web+proto";
/// The gRPC-Web content type tonic-web answers text (base64) calls with.
pub(crate) const GRPC_WEB_TEXT: &str = "application/grpc-web-text+proto";

/// The content type to answer a gRPC request with, from its `Content-Type`: `None` when the
/// request is not gRPC (`application/grpc…`, including every gRPC-Web type).
pub(crate) fn answer_type(headers: &HeaderMap) -> Option<&'static str> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let ct = ct.split(';').next().unwrap_or_default().trim();
    let ct = ct.to_ascii_lowercase();
    if ct.starts_with("application/grpc-web-text") {
        Some(GRPC_WEB_TEXT)
    } else if ct.starts_with("application/grpc-web") {
        Some(GRPC_WEB)
    } else if ct == GRPC || ct.starts_with("application/grpc+") {
        Some(GRPC)
    } else {
        None
    }
}

/// The status a gRPC client gets for `error`.
pub(crate) fn status(error: &ApiError) -> Status {
    let info = error.info();
    let metadata: HashMap<String, String> = info.metadata.into_iter().collect();
    let mut details = ErrorDetails::with_error_info(info.reason, info.domain, metadata);
    if let ApiError::BadRequest(violations) = error {
        details.set_bad_request(
            violations
                .iter()
                .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                .collect::<Vec<_>>(),
        );
    }
    Status::with_error_details(error.code(), error.client_message(), details)
}

/// A trailers-only answer for `error`, with `content_type` (see [`answer_type`]).
pub(crate) fn response(error: &ApiError, content_type: &'static str) -> Response {
    let mut response = status(error).into_http::<Body>();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_content_type_is_recognised() {
        let of = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            answer_type(&h)
        };
        assert_eq!(of("application/grpc"), Some(GRPC));
        assert_eq!(of("application/grpc+proto"), Some(GRPC));
        assert_eq!(of("application/grpc-web"), Some(GRPC_WEB));
        assert_eq!(of("Application/gRPC-Web+proto"), Some(GRPC_WEB));
        assert_eq!(of("application/grpc-web-text"), Some(GRPC_WEB_TEXT));
        assert_eq!(of("application/json"), None);
        assert_eq!(of("application/grpcx"), None);
        assert_eq!(answer_type(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_carry_the_error_info() {
        let r = response(&ApiError::UnknownAgent("nope".into()), GRPC_WEB);
        assert_eq!(r.headers()["grpc-status"], "5");
        assert_eq!(r.headers()[header::CONTENT_TYPE], GRPC_WEB);
        let s = Status::from_header_map(r.headers()).expect("a status");
        let info = s.get_error_details().error_info().cloned().expect("info");
        assert_eq!(info.reason, "AGENT_NOT_FOUND");
        assert_eq!(info.metadata["agent"], "nope");
    }
}
