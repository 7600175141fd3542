//! One server span and one set of metrics per gRPC call, for the whole call: the span lives
//! until the response body (a stream, possibly long) ends, and the status code is read where
//! gRPC puts it — the trailers, or the headers of a trailers-only response. A call whose client
//! goes away before the end counts as CANCELLED.
//!
//! Span attributes follow the OpenTelemetry semantic conventions for RPC (`rpc.system`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code`) plus `switchyard.agent` and the A2A
//! attributes the handlers record (`a2a.method`, `a2a.task.id`, `a2a.context.id`,
//! `a2a.task.state`) and `peer.spiffe_id`, the caller's verified SPIFFE ID over mTLS. The parent is the caller's W3C trace context.

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Instant,
};

use ::metrics::{Counter, Gauge, Histogram, Label};
use axum::body::Body;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    client::code_name,
    telemetry::{BodyEnd, RpcSide, metrics, on_end, record_rpc_status},
    trace::TraceHeaders,
};

/// Wraps the gRPC routes of one agent.
#[derive(Clone, Debug)]
pub(crate) struct ObserveLayer {
    agent: Arc<str>,
    metrics: Arc<RpcMetricsTable>,
}

impl ObserveLayer {
    pub(crate) fn new(agent: &str) -> Self {
        Self {
            agent: agent.into(),
            metrics: Arc::new(std::array::from_fn(|_| OnceLock::new())),
        }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            agent: self.agent.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Observe<S> {
    inner: S,
    agent: Arc<str>,
    metrics: Arc<RpcMetricsTable>,
}

impl<S> tower::Service<Request<Body>> for Observe<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let call = Call::start(&self.agent, &self.metrics, &req);
        let fut = self.inner.call(req).instrument(call.span.clone());
        Box::pin(async move {
            let response = fut.await?;
            let (parts, body) = response.into_parts();
            if let Some(code) = grpc_status(&parts.headers) {
                call.finish(code);
                return Ok(Response::from_parts(parts, body));
            }
            let body = on_end(body, move |end| {
                call.finish(match end {
                    BodyEnd::Trailers(t) => grpc_status(t).unwrap_or(tonic::Code::Unknown as i32),
                    BodyEnd::Complete => tonic::Code::Unknown as i32,
                    BodyEnd::Error => tonic::Code::Internal as i32,
                    BodyEnd::Dropped => tonic::Code::Cancelled as i32,
                });
            });
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// Label of a service or method the agent does not serve.
pub const UNKNOWN_RPC: &str = "unknown";
pub(crate) use UNKNOWN_RPC as UNKNOWN;

/// The RPCs an agent serves, by service.
const KNOWN: [(&str, &[&str]); 5] = [
    (
        crate::pb::a2a::a2a_service_server::SERVICE_NAME,
        &[
            "SendMessage",
            "SendStreamingMessage",
            "GetTask",
            "ListTasks",
            "CancelTask",
            "SubscribeToTask",
            "CreateTaskPushNotificationConfig",
            "GetTaskPushNotificationConfig",
            "ListTaskPushNotificationConfigs",
            "DeleteTaskPushNotificationConfig",
            "GetExtendedAgentCard",
        ],
    ),
    (
        crate::pb::agent::agent_service_server::SERVICE_NAME,
        &[
            "SendMessage",
            "SendStreamingMessage",
            "SendMessageParts",
            "Converse",
            "GetAgentCard",
        ],
    ),
    ("grpc.health.v1.Health", &["Check", "Watch", "List"]),
    (
        "grpc.reflection.v1.ServerReflection",
        &["ServerReflectionInfo"],
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        &["ServerReflectionInfo"],
    ),
];

/// The `(service, method)` labels of a gRPC request path (`/package.Service/Method`): the names
/// an agent serves (`lf.a2a.v1.A2AService`, `switchyard.v1.AgentService`,
/// `grpc.health.v1.Health`, reflection v1 and v1alpha), else [`UNKNOWN_RPC`] — a label never
/// holds what a client made up (bounded metric cardinality).
pub fn known_rpc(path: &str) -> (&'static str, &'static str) {
    let (service, method, _) = rpc_slot(path);
    (service, method)
}

/// Number of `(service, method)` label pairs: each known method, [`UNKNOWN_RPC`] for each
/// known service, and `(unknown, unknown)`.
const RPC_SLOTS: usize = {
    let mut n = 1;
    let mut i = 0;
    while i < KNOWN.len() {
        n += KNOWN[i].1.len() + 1;
        i += 1;
    }
    n
};

/// [`known_rpc`]'s labels and their slot (`0..RPC_SLOTS`), one per label pair.
fn rpc_slot(path: &str) -> (&'static str, &'static str, usize) {
    let path = path.trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let mut base = 0;
    for (s, methods) in KNOWN {
        if s == service {
            return match methods.iter().position(|m| *m == method) {
                Some(i) => (s, methods[i], base + i),
                None => (s, UNKNOWN, base + methods.len()),
            };
        }
        base += methods.len() + 1;
    }
    (UNKNOWN, UNKNOWN, base)
}

/// The metric handles of each label pair of one agent, registered with the recorder at the
/// pair's first call: a call then costs a few atomic operations, not a key built, hashed and
/// looked up in the recorder's registry for each of its four metrics.
type RpcMetricsTable = [OnceLock<Arc<RpcMetrics>>; RPC_SLOTS];

/// The handles of one `(agent, service, method)`.
#[derive(Debug)]
struct RpcMetrics {
    labels: [Label; 3],
    active: Gauge,
    duration: Histogram,
    /// `switchyard_rpc_server_requests_total` by status code (`0..=16`), each registered at
    /// its first use.
    requests: [OnceLock<Counter>; 17],
}

impl RpcMetrics {
    fn new(agent: &str, service: &'static str, method: &'static str) -> Self {
        let labels = [
            Label::new("agent", agent.to_owned()),
            Label::from_static_parts("service", service),
            Label::from_static_parts("method", method),
        ];
        Self {
            active: ::metrics::gauge!(metrics::RPC_SERVER_ACTIVE, labels.to_vec()),
            duration: ::metrics::histogram!(metrics::RPC_SERVER_DURATION, labels.to_vec()),
            requests: std::array::from_fn(|_| OnceLock::new()),
            labels,
        }
    }

    /// The request counter of status `code` (out of range: UNKNOWN's).
    fn requests(&self, code: i32) -> &Counter {
        let code = usize::try_from(code)
            .ok()
            .filter(|c| *c < self.requests.len())
            .unwrap_or(tonic::Code::Unknown as usize);
        self.requests[code].get_or_init(|| {
            let name = code_name(tonic::Code::from_i32(code as i32));
            let mut labels = self.labels.to_vec();
            labels.push(Label::from_static_parts("code", name));
            ::metrics::counter!(metrics::RPC_SERVER_REQUESTS, labels)
        })
    }
}

/// The status code of a header map carrying `grpc-status`.
fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// One call in flight: its span, start time and metric handles.
struct Call {
    span: Span,
    start: Instant,
    metrics: Arc<RpcMetrics>,
    done: bool,
}

impl Call {
    fn start(agent: &str, table: &RpcMetricsTable, req: &Request<Body>) -> Self {
        let (service, method, slot) = rpc_slot(req.uri().path());
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            switchyard.agent = tracing::field::Empty,
            a2a.method = tracing::field::Empty,
            a2a.task.id = tracing::field::Empty,
            a2a.context.id = tracing::field::Empty,
            a2a.task.state = tracing::field::Empty,
            peer.spiffe_id = tracing::field::Empty,
        );
        if crate::telemetry::record_rpc(&span, service, method) {
            span.record("switchyard.agent", agent);
            if let Some(peer) = req.extensions().get::<crate::identity::PeerIdentity>() {
                span.record("peer.spiffe_id", peer.0.as_str());
            }
            if service == crate::pb::a2a::a2a_service_server::SERVICE_NAME {
                span.record("a2a.method", method);
            }
        }
        let _ = span.set_parent(TraceHeaders::from_headers(req.headers()).otel_context());
        let metrics = table[slot]
            .get_or_init(|| Arc::new(RpcMetrics::new(agent, service, method)))
            .clone();
        metrics.active.increment(1.0);
        Self {
            span,
            start: Instant::now(),
            metrics,
            done: false,
        }
    }

    fn finish(mut self, code: i32) {
        self.record(code);
    }

    fn record(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        record_rpc_status(&self.span, code, RpcSide::Server);
        let m = &self.metrics;
        m.active.decrement(1.0);
        m.duration.record(self.start.elapsed().as_secs_f64());
        m.requests(code).increment(1);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The client went away before the response ended.
        self.record(tonic::Code::Cancelled as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_known_names_only() {
        assert_eq!(
            known_rpc("/lf.a2a.v1.A2AService/GetTask"),
            ("lf.a2a.v1.A2AService", "GetTask")
        );
        assert_eq!(
            known_rpc("/lf.a2a.v1.A2AService/Nope"),
            ("lf.a2a.v1.A2AService", UNKNOWN)
        );
        assert_eq!(known_rpc("/junk.Service/X"), (UNKNOWN, UNKNOWN));
        assert_eq!(known_rpc("/"), (UNKNOWN, UNKNOWN));
    }

    /// Each label pair has a metrics slot of its own, so no two RPCs share handles.
    #[test]
    fn every_label_pair_has_a_slot_of_its_own() {
        let mut paths = vec!["/junk.Service/X".to_owned()];
        for (service, methods) in KNOWN {
            paths.push(format!("/{service}/Nope"));
            paths.extend(methods.iter().map(|m| format!("/{service}/{m}")));
        }
        let mut seen = std::collections::HashMap::new();
        for path in &paths {
            let (service, method, slot) = rpc_slot(path);
            assert!(slot < RPC_SLOTS, "{path}: slot {slot} of {RPC_SLOTS}");
            if let Some(other) = seen.insert(slot, (service, method)) {
                panic!("{path} ({service}, {method}) shares slot {slot} with {other:?}");
            }
        }
        assert_eq!(seen.len(), RPC_SLOTS, "a slot no label pair uses");
        assert_eq!(
            rpc_slot("/other.Service/Y").2,
            rpc_slot("/junk.Service/X").2
        );
    }
}
