//! Prometheus metrics of the mesh: the metric names (Prometheus conventions: `snake_case`,
//! base units in the name, `_total` for counters), the process-wide recorder, and the text
//! document served on `/metrics`.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `switchyard_rpc_server_requests_total` | counter | `agent`, `service`, `method`, `code` | gRPC calls served, by final status code name |
//! | `switchyard_rpc_server_duration_seconds` | histogram | `agent`, `service`, `method` | call duration, to the end of the response stream |
//! | `switchyard_rpc_server_active_calls` | gauge | `agent`, `service`, `method` | calls and streams open now |
//! | `switchyard_tasks_created_total` | counter | `agent` | tasks created |
//! | `switchyard_tasks_settled_total` | counter | `agent`, `state` | tasks reaching a terminal or interrupted state |
//! | `switchyard_tasks_live` | gauge | `agent` | tasks in memory (not terminal) |
//! | `switchyard_tasks_swept_total` | counter | `agent` | finished tasks deleted by retention |
//! | `switchyard_tasks_poisoned_total` | counter | `agent` | tasks failed because their owner died more than `max_takeovers` times |
//! | `switchyard_registry_endpoints` | gauge | `agent` | addresses the agent's `dns:///` endpoints resolve to now (in a caller's registry) |
//! | `switchyard_store_commit_duration_seconds` | histogram | `agent` | one group commit of the task store |
//! | `switchyard_store_committed_events_total` | counter | `agent` | task events made durable |
//! | `switchyard_store_commit_failures_total` | counter | `agent` | failed group commits |
//! | `switchyard_push_deliveries_total` | counter | `agent`, `outcome` (`delivered`, `failed`) | push notifications, after retries |
//! | `switchyard_http_server_requests_total` | counter | `route`, `method`, `status` | gateway HTTP requests |
//! | `switchyard_http_server_duration_seconds` | histogram | `route`, `method` | gateway request duration, to the end of the body |
//! | `switchyard_http_server_open_streams` | gauge | `protocol` (`sse`, `websocket`) | streams open now |
//! | `switchyard_http_server_grpc_calls_total` | counter | `service`, `method`, `protocol` (`grpc`, `grpc-web`), `code` | gRPC and gRPC-Web calls proxied by the gateway, by final status code name |
//! | `switchyard_http_server_shed_requests_total` | counter | `reason` | requests refused by load shedding |
//! | `switchyard_client_balancer_picks_total` | counter | `agent`, `endpoint` | calls the balancer sent to each endpoint (a caller's registry) |
//! | `switchyard_client_endpoint_latency_ewma_seconds` | gauge | `agent`, `endpoint` | the peak-EWMA latency the balancer compares |
//! | `switchyard_client_ejections_total` | counter | `agent`, `endpoint` | outlier ejections of an endpoint |
//! | `switchyard_client_endpoint_ejected` | gauge | `agent`, `endpoint` | 1 while the endpoint is ejected |
//! | `switchyard_client_retries_total` | counter | `agent`, `method`, `reason` (`unsent`, `unavailable`, `broken`, `pushback`) | calls made again |
//! | `switchyard_client_retry_budget_exhausted_total` | counter | `agent`, `method` | retries refused by the retry budget |
//! | `switchyard_client_pushback_total` | counter | `agent`, `method`, `retry` (`true`, `false`) | answers carrying `grpc-retry-pushback-ms` |
//! | `switchyard_trace_spans_exported_total` | counter | | spans exported over OTLP |
//! | `switchyard_trace_spans_dropped_total` | counter | | spans dropped because the export queue was full |
//! | `switchyard_trace_export_failed_spans_total` | counter | | spans whose export failed (collector down) |
//!
//! Label values never come from client input (bounded cardinality): `service` and `method` are
//! the names an agent serves, else `unknown`; `route` is a route template; an HTTP `method`
//! other than the standard ones is `_OTHER`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// gRPC calls served.
pub const RPC_SERVER_REQUESTS: &str = "switchyard_rpc_server_requests_total";
/// gRPC call duration.
pub const RPC_SERVER_DURATION: &str = "switchyard_rpc_server_duration_seconds";
/// gRPC calls and streams open now.
pub const RPC_SERVER_ACTIVE: &str = "switchyard_rpc_server_active_calls";
/// Tasks created.
pub const TASKS_CREATED: &str = "switchyard_tasks_created_total";
/// Sends of a message the agent had accepted already (same contextId and messageId),
/// answered with the task it went to instead of a new one.
pub const SENDS_REPEATED: &str = "switchyard_sends_repeated_total";
/// Tasks reaching a terminal or interrupted state.
pub const TASKS_SETTLED: &str = "switchyard_tasks_settled_total";
/// Tasks in memory.
pub const TASKS_LIVE: &str = "switchyard_tasks_live";
/// Finished tasks deleted by retention.
pub const TASKS_SWEPT: &str = "switchyard_tasks_swept_total";
/// Tasks failed as poison: taken over more than `max_takeovers` times.
pub const TASKS_POISONED: &str = "switchyard_tasks_poisoned_total";
/// Addresses an agent's `dns:///` endpoints resolve to now.
pub const REGISTRY_ENDPOINTS: &str = "switchyard_registry_endpoints";
/// Group-commit duration.
pub const STORE_COMMIT_DURATION: &str = "switchyard_store_commit_duration_seconds";
/// Events made durable.
pub const STORE_COMMITTED_EVENTS: &str = "switchyard_store_committed_events_total";
/// Failed group commits.
pub const STORE_COMMIT_FAILURES: &str = "switchyard_store_commit_failures_total";
/// Push-notification deliveries, by outcome.
pub const PUSH_DELIVERIES: &str = "switchyard_push_deliveries_total";
/// Gateway HTTP requests.
pub const HTTP_REQUESTS: &str = "switchyard_http_server_requests_total";
/// Gateway request duration.
pub const HTTP_DURATION: &str = "switchyard_http_server_duration_seconds";
/// Gateway streams open now.
pub const HTTP_OPEN_STREAMS: &str = "switchyard_http_server_open_streams";
/// gRPC and gRPC-Web calls proxied by the gateway, by final status.
pub const HTTP_GRPC_CALLS: &str = "switchyard_http_server_grpc_calls_total";
/// Gateway requests refused by load shedding.
pub const HTTP_SHED: &str = "switchyard_http_server_shed_requests_total";
/// Calls the balancer sent to each endpoint.
pub const BALANCER_PICKS: &str = "switchyard_client_balancer_picks_total";
/// The peak-EWMA latency of an endpoint, in seconds.
pub const BALANCER_EWMA: &str = "switchyard_client_endpoint_latency_ewma_seconds";
/// Outlier ejections of an endpoint.
pub const OUTLIER_EJECTIONS: &str = "switchyard_client_ejections_total";
/// 1 while an endpoint is ejected, else 0.
pub const OUTLIER_EJECTED: &str = "switchyard_client_endpoint_ejected";
/// Calls made again, by reason.
pub const RETRIES: &str = "switchyard_client_retries_total";
/// Retries the retry budget refused.
pub const RETRY_BUDGET_EXHAUSTED: &str = "switchyard_client_retry_budget_exhausted_total";
/// Answers carrying `grpc-retry-pushback-ms`.
pub const PUSHBACK: &str = "switchyard_client_pushback_total";
/// Broken upstream streams the gateway resumed (re-subscribed after the last event it
/// forwarded), by outcome (`resumed`, `gave_up`).
pub const STREAM_RESUMES: &str = "switchyard_gateway_stream_resumes_total";
/// Spans exported.
pub const TRACE_SPANS_EXPORTED: &str = "switchyard_trace_spans_exported_total";
/// Spans dropped at a full export queue.
pub const TRACE_SPANS_DROPPED: &str = "switchyard_trace_spans_dropped_total";
/// Spans whose export failed.
pub const TRACE_EXPORT_FAILED_SPANS: &str = "switchyard_trace_export_failed_spans_total";

/// Histogram buckets for every `_seconds` metric, from 250 µs to 60 s.
const SECONDS_BUCKETS: [f64; 16] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; a no-op when
/// another recorder was installed first, in which case [`render`] returns `None`).
pub fn install() {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .ok()?
            .install_recorder()
            .ok()?;
        describe();
        Some(handle)
    });
}

/// The current metrics as a Prometheus text document (exposition format 0.0.4).
pub fn render() -> Option<String> {
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
}

/// Content type of [`render`]'s document.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        RPC_SERVER_REQUESTS,
        "gRPC calls served, by final status code"
    );
    describe_histogram!(
        RPC_SERVER_DURATION,
        Unit::Seconds,
        "gRPC call duration, to the end of the response"
    );
    describe_gauge!(RPC_SERVER_ACTIVE, "gRPC calls and streams open now");
    describe_counter!(TASKS_CREATED, "tasks created");
    describe_counter!(
        SENDS_REPEATED,
        "sends of an already accepted message, answered with its task"
    );
    describe_counter!(
        TASKS_SETTLED,
        "tasks reaching a terminal or interrupted state"
    );
    describe_gauge!(TASKS_LIVE, "tasks held in memory (not terminal)");
    describe_counter!(
        TASKS_POISONED,
        "tasks failed because their owner died more than max_takeovers times"
    );
    describe_gauge!(
        REGISTRY_ENDPOINTS,
        "addresses an agent's dns:/// endpoints resolve to now"
    );
    describe_histogram!(
        STORE_COMMIT_DURATION,
        Unit::Seconds,
        "duration of one group commit of the task store"
    );
    describe_counter!(STORE_COMMITTED_EVENTS, "task events made durable");
    describe_counter!(STORE_COMMIT_FAILURES, "failed group commits");
    describe_counter!(
        PUSH_DELIVERIES,
        "push notifications, by outcome after retries: delivered, failed, refused (push policy)"
    );
    describe_counter!(HTTP_REQUESTS, "gateway HTTP requests");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "gateway request duration, to the end of the body"
    );
    describe_gauge!(
        HTTP_OPEN_STREAMS,
        "gateway SSE and WebSocket streams open now"
    );
    describe_counter!(
        HTTP_GRPC_CALLS,
        "gRPC and gRPC-Web calls proxied by the gateway, by final status code"
    );
    describe_counter!(HTTP_SHED, "gateway requests refused by load shedding");
    describe_counter!(BALANCER_PICKS, "calls the balancer sent to each endpoint");
    describe_gauge!(
        BALANCER_EWMA,
        Unit::Seconds,
        "peak-EWMA latency of an endpoint, as the balancer compares it"
    );
    describe_counter!(OUTLIER_EJECTIONS, "outlier ejections of an endpoint");
    describe_gauge!(OUTLIER_EJECTED, "1 while the endpoint is ejected");
    describe_counter!(RETRIES, "calls made again, by reason");
    describe_counter!(
        RETRY_BUDGET_EXHAUSTED,
        "retries refused because the retry budget was spent"
    );
    describe_counter!(PUSHBACK, "answers carrying grpc-retry-pushback-ms");
    describe_counter!(
        STREAM_RESUMES,
        "broken upstream streams re-subscribed by the gateway, by outcome"
    );
    describe_counter!(TRACE_SPANS_EXPORTED, "spans exported over OTLP");
    describe_counter!(
        TRACE_SPANS_DROPPED,
        "spans dropped because the export queue was full"
    );
    describe_counter!(TRACE_EXPORT_FAILED_SPANS, "spans whose OTLP export failed");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_recorder_installs_and_renders() {
        super::install();
        metrics::counter!(super::TRACE_SPANS_DROPPED).increment(2);
        let text = super::render().expect("our recorder is installed");
        assert!(
            text.contains("switchyard_trace_spans_dropped_total 2"),
            "{text}"
        );
    }
}
