//! The A2A protocol version of a call (A2A v1.0.1 §3.6): which versions an agent serves, the
//! check every `lf.a2a.v1.A2AService` and `switchyard.v1.AgentService` call passes, and the
//! `a2a-version` the response carries.
//!
//! The rule (§3.6.2): a request is processed with the semantics of the `Major.Minor` it names
//! (gRPC metadata `a2a-version`, HTTP header or query parameter `A2A-Version`); "Agents MUST
//! interpret empty value as 0.3 version"; a version the interface does not serve gets
//! VersionNotSupported (-32009 / FAILED_PRECONDITION / HTTP 400). Switchyard serves 1.x, so
//! a call without a version is refused on every binding, the same way.

use axum::{extract::Request, middleware::Next, response::Response};
use http::HeaderValue;

use crate::{
    card::PROTOCOL_VERSION,
    error::{A2aErrorKind, RpcError},
    service::A2A_VERSION,
};

/// Longest version string accepted, in bytes (`1.<minor>.<patch>` with a few digits each).
pub const MAX_VERSION_BYTES: usize = 16;

/// Whether Switchyard serves protocol version `v`: `1`, `1.<minor>` or `1.<minor>.<patch>`
/// (patch numbers do not count in negotiation, §3.6), at most [`MAX_VERSION_BYTES`] long.
/// Every 1.x is served with 1.0 semantics.
pub fn serves(v: &str) -> bool {
    // A version is short; a longer value is never forwarded as metadata.
    if v.len() > MAX_VERSION_BYTES {
        return false;
    }
    let mut parts = v.split('.');
    parts.next() == Some("1")
        && parts.clone().count() <= 2
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a requested version (`None` or empty = not sent, i.e. 0.3).
///
/// # Errors
/// VersionNotSupported with a message that says what to send, unless [`serves`] it.
pub fn check(requested: Option<&str>, how_to_send: &str) -> Result<(), RpcError> {
    let v = requested.map(str::trim).unwrap_or_default();
    if serves(v) {
        return Ok(());
    }
    let message = if v.is_empty() {
        format!(
            "no A2A version given, which means A2A 0.3 (A2A §3.6.2); only 1.x is served: \
             send {how_to_send}: {PROTOCOL_VERSION}"
        )
    } else {
        format!(
            "A2A version {v:?} is not supported; only 1.x is served (send {how_to_send}: {PROTOCOL_VERSION})"
        )
    };
    Err(RpcError::a2a(A2aErrorKind::VersionNotSupported, message))
}

/// The gRPC services whose calls are versioned (health and reflection are not A2A).
const VERSIONED: [&str; 2] = [
    crate::pb::a2a::a2a_service_server::SERVICE_NAME,
    crate::pb::agent::agent_service_server::SERVICE_NAME,
];

/// Whether `path` names an RPC of a versioned service. Unknown methods are not checked, so
/// they answer UNIMPLEMENTED whatever the version.
fn is_versioned(path: &str) -> bool {
    let (service, method) = super::observe::known_rpc(path);
    VERSIONED.contains(&service) && method != super::observe::UNKNOWN
}

/// Middleware of the agent's gRPC routes: refuses an A2A or AgentService call (of a method the
/// agent serves) whose `a2a-version` is not served (a trailers-only FAILED_PRECONDITION with
/// the `VERSION_NOT_SUPPORTED` ErrorInfo), and marks every answer of those services with the
/// version it was served with (response metadata `a2a-version: 1.0`).
pub(crate) async fn grpc(request: Request, next: Next) -> Response {
    if !is_versioned(request.uri().path()) {
        return next.run(request).await;
    }
    let requested = request
        .headers()
        .get(A2A_VERSION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut response = match check(requested.as_deref(), "metadata a2a-version") {
        Ok(()) => next.run(request).await,
        Err(e) => tonic::Status::from(e).into_http(),
    };
    response
        .headers_mut()
        .insert(A2A_VERSION, HeaderValue::from_static(PROTOCOL_VERSION));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_x_is_served_and_nothing_else() {
        for ok in ["1", "1.0", "1.5", "1.0.1", " 1.0 "] {
            assert!(check(Some(ok), "x").is_ok(), "{ok}");
        }
        for bad in [
            None,
            Some(""),
            Some("0.3"),
            Some("2.0"),
            Some("1."),
            Some("abc"),
            Some("1.x"),
        ] {
            let e = check(bad, "x").expect_err("refused");
            assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{bad:?}");
        }
    }
}
