//! What one HTTP request passes on to the agent it reaches ([`Forward`]), and the gRPC call
//! itself: metadata, deadline, and the status remaps tonic needs.
//!
//! Forwarded: `A2A-Version` → `a2a-version` (checked by each front first), `A2A-Extensions` →
//! `a2a-extensions`, `Authorization` → `authorization`, `x-request-id`, and W3C trace context
//! (`traceparent`, `tracestate`): the gateway's own span when OpenTelemetry records it, else
//! the caller's headers unchanged. The deadline travels as `grpc-timeout`
//! ([`tonic::Request::set_timeout`]) and is also enforced locally.

use std::{future::Future, time::Duration};

use futures::Stream;

use axum::extract::FromRequestParts;
use http::{HeaderMap, request::Parts};
use switchyard::{
    telemetry,
    trace::{self, TraceHeaders},
};
use tokio::time::Instant;
use tonic::{
    Code, Status,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    error::ApiError,
    layers::{deadline::Deadline, request_id::RequestIdValue},
};

/// HTTP headers forwarded as gRPC metadata of the same name (lower case). With
/// authentication on, `authorization` is gone by then and the principal header carries the
/// caller ([`crate::auth::layer`]).
const FORWARDED: [&str; 4] = [
    "a2a-version",
    "a2a-extensions",
    "authorization",
    switchyard::identity::PRINCIPAL_HEADER,
];

/// Extra time the gateway waits for the agent's own DEADLINE_EXCEEDED before it answers
/// with its own.
const LOCAL_SLACK: Duration = Duration::from_millis(50);

/// The context of one request as the agent will see it; each call made for it gets its trace
/// context from its own client span ([`Within`]).
#[derive(Clone, Debug)]
pub(crate) struct Forward {
    /// The forwarded headers, without trace context.
    metadata: MetadataMap,
    /// The caller's trace context, passed on when the gateway records no span of its own.
    caller: TraceHeaders,
    deadline: Deadline,
}

/// A [`Forward`] under the trace context of one call's `grpc.client` span: what the requests
/// of that call carry. Built per call without copying the forwarded metadata.
#[derive(Debug)]
pub(crate) struct Within<'a> {
    forward: &'a Forward,
    trace: TraceHeaders,
}

impl Forward {
    /// Reads the forwarded headers, the caller's trace context and the deadline.
    pub(crate) fn new(headers: &HeaderMap, request_id: Option<&str>, deadline: Deadline) -> Self {
        let mut metadata = MetadataMap::new();
        for name in FORWARDED {
            if let Some(v) = headers
                .get(name)
                .and_then(|v| MetadataValue::try_from(v.as_bytes()).ok())
            {
                metadata.insert(MetadataKey::from_static(name), v);
            }
        }
        if !metadata.contains_key("a2a-version") {
            metadata.insert(
                "a2a-version",
                MetadataValue::from_static(switchyard::card::PROTOCOL_VERSION),
            );
        }
        if let Some(v) = request_id.and_then(|id| MetadataValue::try_from(id).ok()) {
            metadata.insert("x-request-id", v);
        }
        Self {
            metadata,
            caller: TraceHeaders::from_headers(headers),
            deadline,
        }
    }

    /// A `grpc.client` span for calling `method` of `service` on `agent` at `address`
    /// (OpenTelemetry RPC conventions), and this request under it: its calls carry the
    /// span's trace context, so that the agent's server span becomes the span's child.
    pub(crate) fn client_span(
        &self,
        service: &'static str,
        method: &'static str,
        agent: &str,
        address: &str,
    ) -> (Within<'_>, tracing::Span) {
        self.client_span_of(false, service, method, agent, address)
    }

    /// [`client_span`](Self::client_span) for a call that outlives its HTTP request (a
    /// WebSocket session, after the 101): the request's span is still the client span's
    /// OpenTelemetry parent (same trace, same parent span id in the export) but not its
    /// `tracing` parent, which would keep the request's span open — unexported, its end time
    /// and memory held — until the session ends.
    pub(crate) fn detached_client_span(
        &self,
        service: &'static str,
        method: &'static str,
        agent: &str,
        address: &str,
    ) -> (Within<'_>, tracing::Span) {
        self.client_span_of(true, service, method, agent, address)
    }

    fn client_span_of(
        &self,
        detached: bool,
        service: &'static str,
        method: &'static str,
        agent: &str,
        address: &str,
    ) -> (Within<'_>, tracing::Span) {
        let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
        let request = tracing::Span::current();
        let parent = if detached { None } else { request.id() };
        let span = tracing::info_span!(
            parent: parent,
            "grpc.client",
            otel.name = tracing::field::Empty,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
            switchyard.agent = tracing::field::Empty,
        );
        if telemetry::record_rpc(&span, service, method) {
            span.record("server.address", host);
            span.record("server.port", port);
            span.record("switchyard.agent", agent);
        }
        if detached && !span.is_disabled() {
            // Before anything starts the span: its parent can be set only until then.
            let _ = span.set_parent(request.context());
        }
        let mut trace = span.in_scope(trace::outgoing);
        if trace.traceparent.is_none() {
            // No span of ours is recorded: the request's context if any, else the caller's.
            trace = trace::outgoing();
            if trace.traceparent.is_none() {
                trace.clone_from(&self.caller);
            }
        }
        (
            Within {
                forward: self,
                trace,
            },
            span,
        )
    }

    /// Overrides the protocol version sent (e.g. from the `A2A-Version` query parameter).
    pub(crate) fn set_version(&mut self, version: &str) {
        if let Ok(v) = MetadataValue::try_from(version) {
            self.metadata.insert("a2a-version", v);
        }
    }

    /// The deadline of a unary call: the client's, else the route default.
    pub(crate) fn unary_deadline(&self) -> Instant {
        self.deadline.unary()
    }

    /// The deadline of a stream: the client's, if it sent one.
    pub(crate) fn stream_deadline(&self) -> Option<Instant> {
        self.deadline.stream()
    }

    /// Runs a unary call to `agent` under the unary deadline, mapping its failure.
    ///
    /// `call` (tonic's future, over a kilobyte) is boxed here, once, before anything else
    /// holds it: the futures of the callers, which are moved as they are built and wrapped,
    /// then carry a pointer instead of copying it at every step.
    pub(crate) fn call<'a, T>(
        &self,
        agent: &'a str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>> + Send + 'a,
    ) -> impl Future<Output = Result<T, ApiError>> + Send + 'a {
        let at = self.unary_deadline() + LOCAL_SLACK;
        let call = tokio::time::timeout_at(at, Box::pin(call));
        async move {
            match call.await {
                Ok(Ok(response)) => Ok(response.into_inner()),
                Ok(Err(status)) => Err(upstream(agent, status)),
                Err(_) => Err(ApiError::DeadlineExceeded),
            }
        }
    }
}

impl Within<'_> {
    /// A gRPC request carrying the forwarded metadata, this call's trace context and
    /// `deadline`.
    pub(crate) fn request<T>(&self, message: T, deadline: Option<Instant>) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        *req.metadata_mut() = self.forward.metadata.clone();
        self.trace.inject(req.metadata_mut());
        if let Some(at) = deadline {
            req.set_timeout(at.saturating_duration_since(Instant::now()));
        }
        req
    }

    /// A unary request under the unary deadline.
    pub(crate) fn unary<T>(&self, message: T) -> tonic::Request<T> {
        self.request(message, Some(self.forward.unary_deadline()))
    }

    /// A streaming request under the client's deadline, if it sent one.
    pub(crate) fn streaming<T>(&self, message: T) -> tonic::Request<T> {
        self.request(message, self.forward.stream_deadline())
    }

    /// [`Forward::call`].
    pub(crate) fn call<'a, T>(
        &self,
        agent: &'a str,
        call: impl Future<Output = Result<tonic::Response<T>, Status>> + Send + 'a,
    ) -> impl Future<Output = Result<T, ApiError>> + Send + 'a {
        self.forward.call(agent, call)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Forward {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .extensions
            .get::<RequestIdValue>()
            .map(RequestIdValue::as_str);
        let deadline = parts
            .extensions
            .get::<Deadline>()
            .cloned()
            .unwrap_or_default();
        Ok(Self::new(&parts.headers, id, deadline))
    }
}

/// An agent's status as the gateway's error.
///
/// - tonic's channel reports its own enforcement of `grpc-timeout` as CANCELLED "Timeout
///   expired"; gRPC semantics say DEADLINE_EXCEEDED.
/// - A status that tonic made from a transport error (it carries that error as its
///   [`source`](std::error::Error::source); one read from the agent's `grpc-status` never
///   does) is [`ApiError::AgentFailed`]: tonic maps HTTP/2 reset reasons to codes such as
///   INTERNAL or RESOURCE_EXHAUSTED ("h2 protocol error: …", `Status::from_h2_error`), which
///   would blame the client or leak internals. UNAVAILABLE keeps its meaning (the agent cannot
///   be reached or refused the stream: retry).
pub(crate) fn upstream(agent: &str, status: Status) -> ApiError {
    if status.code() == Code::Cancelled && status.message() == "Timeout expired" {
        return ApiError::DeadlineExceeded;
    }
    if status.code() != Code::Unavailable && std::error::Error::source(&status).is_some() {
        return ApiError::AgentFailed {
            agent: agent.to_owned(),
            status,
        };
    }
    ApiError::Upstream {
        agent: agent.to_owned(),
        status,
    }
}

/// Records the outcome of a gRPC call on its client span (any non-OK code marks a client span
/// as failed).
pub(crate) fn record_outcome(span: &tracing::Span, code: Code) {
    telemetry::record_rpc_status(span, code as i32, telemetry::RpcSide::Client);
}

/// A stream that keeps its client span open until it ends, recording a failure on it.
pub(crate) fn traced<S, T>(
    stream: S,
    span: tracing::Span,
) -> impl Stream<Item = Result<T, Status>> + Send
where
    S: Stream<Item = Result<T, Status>> + Send,
{
    futures::StreamExt::map(stream, move |item| {
        if let Err(status) = &item {
            record_outcome(&span, status.code());
        }
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_the_a2a_headers_and_the_request_id() {
        let mut h = HeaderMap::new();
        h.insert("a2a-version", "1.1".parse().expect("value"));
        h.insert("authorization", "Bearer t".parse().expect("value"));
        h.insert("cookie", "secret=1".parse().expect("value"));
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("value"),
        );
        let f = Forward::new(&h, Some("req-1"), Deadline::default());
        // No span recorded here: the caller's trace context goes on unchanged.
        let (within, _span) = f.client_span("s", "m", "a", "127.0.0.1:1");
        let md = within.request((), None).metadata().clone();
        assert_eq!(md.get("a2a-version").expect("version"), "1.1");
        assert_eq!(md.get("authorization").expect("auth"), "Bearer t");
        assert_eq!(md.get("x-request-id").expect("id"), "req-1");
        assert!(md.get("cookie").is_none());
        assert_eq!(
            md.get("traceparent").expect("trace"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn tonic_timeouts_become_deadline_exceeded() {
        let e = upstream("a", Status::cancelled("Timeout expired"));
        assert!(matches!(e, ApiError::DeadlineExceeded));
        let e = upstream("a", Status::cancelled("by the client"));
        assert!(matches!(e, ApiError::Upstream { .. }));
    }

    #[test]
    fn transport_failures_are_the_agents_not_the_clients() {
        // What tonic makes of an HTTP/2 reset (ENHANCE_YOUR_CALM): the error as its source.
        let mut h2 = Status::resource_exhausted("h2 protocol error: stream reset");
        h2.set_source(std::sync::Arc::new(std::io::Error::other("reset")));
        let e = upstream("a", h2);
        assert!(matches!(e, ApiError::AgentFailed { .. }), "{e:?}");
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(
            e.client_message(),
            "agent \"a\" failed to answer; retry later"
        );
        // The same code from the agent's own grpc-status stays the agent's answer.
        let e = upstream("a", Status::resource_exhausted("quota"));
        assert!(matches!(e, ApiError::Upstream { .. }));
        // A connect error stays UNAVAILABLE (503, "is unavailable").
        let mut down = Status::unavailable("tcp connect error");
        down.set_source(std::sync::Arc::new(std::io::Error::other("refused")));
        assert!(matches!(upstream("a", down), ApiError::Upstream { .. }));
    }
}
