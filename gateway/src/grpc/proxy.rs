//! [`Proxy`]: one gRPC call forwarded to its agent as it is — the HTTP/2 request with its
//! metadata and streamed body, the response with its streamed body and trailers — through the
//! agent's connections (the registry's balanced channel for unary calls, a lane for streams).
//!
//! What the gateway changes on the way:
//! - the path loses its `/agents/<name>` prefix; `x-switchyard-agent`, `host`, `content-length`
//!   and the hop-by-hop headers are not forwarded (`te: trailers` is set); all other metadata
//!   is, up to [`MAX_METADATA_BYTES`] (more is INVALID_ARGUMENT);
//! - `grpc-timeout` becomes the call's deadline (the client's, capped by `max_timeout`, or
//!   `default_timeout` for a unary call without one; minus `deadline_margin`), which the
//!   gateway also enforces itself;
//! - `traceparent`/`tracestate` carry the gateway's span when OpenTelemetry records it;
//! - a request the gateway refuses while it streams ([`super::frames`]), an agent that cannot
//!   be reached or breaks the connection, and an expired deadline end the call with the
//!   gateway's status in the trailers (or trailers-only before any response);
//! - when the gateway drains, open streams end with UNAVAILABLE (`ErrorInfo` reason
//!   `DRAINING`: resume elsewhere, e.g. `SubscribeToTask` with `last-event-id`); unary calls
//!   finish.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{body::Body, extract::Request, response::Response};
use futures::{FutureExt as _, future::BoxFuture};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use switchyard::{telemetry::span_attributes, trace};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tower::{Service, ServiceExt as _};

use super::{
    Protocol,
    frames::{Frames, Refusal},
    relay::{Outcome, Relay, status_in},
    target::{self, AGENT_HEADER},
};
use crate::{
    app::AppState,
    error::{ApiError, grpc},
    layers::deadline::Deadline,
};

/// Request headers that are not forwarded: hop-by-hop (RFC 9110 §7.6.1), those the hop to the
/// agent sets itself, and the gateway's own routing header.
const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "host",
    "content-length",
    "grpc-timeout",
    "x-timeout-ms",
    AGENT_HEADER,
];

/// Largest metadata (request headers, counted as HTTP/2 does: name + value + 32 each) forwarded
/// to an agent: gRPC's usual limit. The call shares an HTTP/2 connection with other clients'
/// calls, and a header block over the agent's limit can end the whole connection (RFC 9113
/// §10.5.1), so a larger one never leaves the gateway.
const MAX_METADATA_BYTES: usize = 8 * 1024;

/// The service at the bottom of the gRPC front.
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    state: AppState,
}

impl Proxy {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Service<Request> for Proxy {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = self.state.clone();
        async move { Ok(forward(state, req).await) }.boxed()
    }
}

/// A trailers-only answer of the gateway (inside tonic-web, which adapts it for gRPC-Web).
fn refused(error: &ApiError, outcome: Outcome) -> Response {
    crate::error::log(error);
    outcome.finish(error.code() as i32);
    grpc::response(error, grpc::GRPC)
}

/// Forwards one call.
async fn forward(state: AppState, req: Request) -> Response {
    let protocol = req
        .extensions()
        .get::<Protocol>()
        .copied()
        .unwrap_or(Protocol::Grpc);
    let outcome = Outcome::start(req.uri().path(), protocol);
    let target = match target::target(req.uri().path(), req.headers()) {
        Ok(t) => t,
        Err(e) => return refused(&e, outcome),
    };
    if span_attributes() {
        tracing::Span::current().record("switchyard.agent", target.agent.as_str());
    }
    let agent = match state.agent(&target.agent) {
        Ok(a) => a,
        Err(e) => return refused(&e, outcome),
    };
    let deadline = req
        .extensions()
        .get::<Deadline>()
        .cloned()
        .unwrap_or_default();
    let at = if target.streaming {
        deadline.stream()
    } else {
        Some(deadline.unary())
    };
    let (parts, body) = req.into_parts();
    let encoded = parts
        .headers
        .get("grpc-encoding")
        .is_some_and(|v| v.as_bytes() != b"identity");
    let refusal = Arc::new(Refusal::default());
    let body = Frames::new(body, state.config.max_body_bytes, encoded, refusal.clone());
    let mut upstream = http::Request::new(tonic::body::Body::new(body));
    *upstream.method_mut() = http::Method::POST;
    *upstream.version_mut() = http::Version::HTTP_2;
    *upstream.uri_mut() = match target.path.parse() {
        Ok(uri) => uri,
        Err(_) => {
            let e = ApiError::GrpcUnimplemented(format!("{:?} is not a valid path", target.path));
            return refused(&e, outcome);
        }
    };
    *upstream.headers_mut() = match forwarded_headers(&parts.headers, at) {
        Ok(h) => h,
        Err(e) => return refused(&e, outcome),
    };
    let (client, slot) = if target.streaming {
        let (client, slot) = state.lanes.client(&agent);
        (client, Some(slot))
    } else {
        (agent.client(), None)
    };
    let call = client.transport().oneshot(upstream);
    let expiry = async move {
        match at {
            Some(at) => tokio::time::sleep_until(at + super::LOCAL_SLACK).await,
            None => std::future::pending().await,
        }
    };
    let response = tokio::select! {
        biased;
        () = refusal.raised().cancelled() => {
            let e = refusal.take().unwrap_or(ApiError::DeadlineExceeded);
            return refused(&e, outcome);
        }
        () = expiry => return refused(&ApiError::DeadlineExceeded, outcome),
        r = call => r,
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            // The transport may read the whole request body before it answers (to be able to
            // retry it): a framing or size error it met there is the client's, not the agent's.
            if let Some(e) = refusal.take() {
                return refused(&e, outcome);
            }
            let error = transport_error(target.agent, &*e);
            return refused(&error, outcome);
        }
    };
    let (mut parts, body) = response.into_parts();
    for name in ["connection", "keep-alive", "transfer-encoding", "upgrade"] {
        parts.headers.remove(name);
    }
    if let Some(code) = status_in(&parts.headers) {
        outcome.finish(code);
        return Response::from_parts(parts, Body::new(body));
    }
    let draining = target.streaming.then(|| state.draining.clone());
    let relay = Relay::new(body, refusal, at, draining, outcome, slot, target.agent);
    Response::from_parts(parts, Body::new(relay))
}

/// The request headers the agent gets (see the module docs), with the deadline `at`.
///
/// # Errors
/// [`ApiError::InvalidRequest`] when the client's metadata is larger than
/// [`MAX_METADATA_BYTES`].
fn forwarded_headers(headers: &HeaderMap, at: Option<Instant>) -> Result<HeaderMap, ApiError> {
    let mut out = HeaderMap::with_capacity(headers.len() + 2);
    let mut size = 0;
    for (name, value) in headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            size += name.as_str().len() + value.len() + 32;
            out.append(name.clone(), value.clone());
        }
    }
    if size > MAX_METADATA_BYTES {
        return Err(ApiError::InvalidRequest(format!(
            "the request's metadata is {size} bytes (RFC 9113 §6.5.2 sizes); at most \
             {MAX_METADATA_BYTES} are forwarded"
        )));
    }
    out.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(at) = at {
        let left = at.saturating_duration_since(Instant::now());
        let encoded = switchyard::deadline::encode_grpc_timeout(left);
        if let Ok(v) = HeaderValue::try_from(encoded) {
            out.insert(HeaderName::from_static("grpc-timeout"), v);
        }
    }
    let ours = trace::outgoing();
    if ours.traceparent.is_some() {
        let mut md = MetadataMap::new();
        ours.inject(&mut md);
        out.remove(trace::TRACESTATE);
        for (name, value) in md.into_headers() {
            if let Some(name) = name {
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

/// The gateway's error for a call that got no response from `agent`.
fn transport_error(
    agent: String,
    error: &(dyn std::error::Error + Send + Sync + 'static),
) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return ApiError::DeadlineExceeded;
        }
        source = e.source();
    }
    ApiError::Upstream {
        agent,
        status: tonic::Status::unavailable(format!("calling the agent failed: {error}")),
    }
}
