//! Telemetry for every Switchyard process: `tracing` spans exported over OTLP (to Jaeger or an
//! OpenTelemetry Collector), structured logs with trace and span ids, and Prometheus metrics.
//!
//! [`init`] installs it all once per process:
//! - **Logs** to standard error, filtered by `RUST_LOG` (default `info`), as logfmt or JSON
//!   ([`LogFormat`], `SWITCHYARD_LOG_FORMAT`); every line inside a request carries `trace_id`
//!   and `span_id`.
//! - **Traces**: spans always get W3C trace and span ids (so logs and propagation work); they
//!   are exported only when an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
//!   [`TelemetryConfig::otlp_endpoint`]). Without one, nothing reads a span's attributes or
//!   its DEBUG events (log lines print neither), so they are not recorded
//!   ([`span_attributes`]). Export runs on the SDK's own thread with a bounded
//!   queue: a slow or absent collector never blocks or fails a request; spans that do not fit
//!   are dropped and counted (`switchyard_trace_spans_dropped_total`). The standard variables
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
//!   `OTEL_TRACES_SAMPLER_ARG` apply.
//! - **Metrics**: a Prometheus recorder ([`metrics`]); every agent server and the gateway serve
//!   it on `/metrics`.

mod body;
mod export;
mod format;
pub mod metrics;

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

pub use body::{BodyEnd, on_end};
pub use format::LogFormat;

/// Longest [`Telemetry::shutdown`] waits for pending spans to be exported.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Environment variable selecting the log format: `logfmt` (default) or `json`.
pub const LOG_FORMAT_ENV: &str = "SWITCHYARD_LOG_FORMAT";

/// What [`init`] installs.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of exported spans, unless `OTEL_SERVICE_NAME` is set.
    pub service_name: String,
    /// OTLP/gRPC endpoint, e.g. `http://localhost:4317`; `None` reads
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`, and without them
    /// nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// The log line format.
    pub log_format: LogFormat,
    /// Default `RUST_LOG` directives when the variable is unset.
    pub default_filter: String,
    /// Most spans waiting for export; beyond it spans are dropped and counted
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queued_spans: usize,
    /// How long one export may take before it is abandoned.
    pub export_timeout: Duration,
}

impl TelemetryConfig {
    /// Defaults for `service_name`, with the endpoint and log format from the environment.
    pub fn from_env(service_name: &str) -> Self {
        let endpoint = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
        Self {
            service_name: service_name.to_owned(),
            otlp_endpoint: endpoint,
            log_format: std::env::var(LOG_FORMAT_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            default_filter: "info".into(),
            max_queued_spans: std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(2048),
            export_timeout: Duration::from_secs(5),
        }
    }
}

/// Why telemetry could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (e.g. a malformed endpoint).
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// A global `tracing` subscriber is already installed.
    #[error("a tracing subscriber is already installed in this process")]
    AlreadyInstalled,
}

/// Installed telemetry; [`shutdown`](Self::shutdown) flushes pending spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Exports the spans ended so far (waits for the exporter; for tests and tools).
    pub async fn flush(&self) {
        let provider = self.provider.clone();
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    }

    /// Flushes and stops the exporter, waiting at most [`SHUTDOWN_WAIT`]: a hung collector
    /// must not hold the process (the flush runs on its own thread, which the process does not
    /// wait for at exit).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
            let _ = tx.send(());
        });
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, rx).await;
    }
}

/// Whether span attributes are recorded: [`init`] turns them off when it exports nothing.
static SPAN_ATTRIBUTES: AtomicBool = AtomicBool::new(true);

/// Whether spans' attributes (and their status) are worth recording: `false` once [`init`]
/// installed telemetry without an OTLP exporter, where spans serve only for their ids (log
/// lines, propagation) and an attribute would be formatted and copied for nobody. `true`
/// otherwise, including in a process whose subscriber is its own (a library user's exporter).
/// Span fields are recorded behind it (`if span_attributes() { span.record(..) }`).
pub fn span_attributes() -> bool {
    SPAN_ATTRIBUTES.load(Ordering::Relaxed)
}

/// Records the OpenTelemetry RPC attributes of a gRPC span (`otel.name`
/// `<service>/<method>`, `rpc.system` `grpc`, `rpc.service`, `rpc.method`: semantic
/// conventions for RPC spans) when attributes are recorded ([`span_attributes`]) and the span
/// is; returns whether it recorded them, for the caller's own attributes.
pub fn record_rpc(span: &tracing::Span, service: &str, method: &str) -> bool {
    if !span_attributes() || span.is_disabled() {
        return false;
    }
    span.record(
        "otel.name",
        tracing::field::display(format_args!("{service}/{method}")),
    );
    span.record("rpc.system", "grpc");
    span.record("rpc.service", service);
    span.record("rpc.method", method);
    true
}

/// Which end of a gRPC call a span stands for ([`record_rpc_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcSide {
    /// The caller's span.
    Client,
    /// The callee's span.
    Server,
}

/// Records a gRPC call's final status `code` (`rpc.grpc.status_code`) on its span and marks
/// the span failed (`otel.status_code` `error`) as OpenTelemetry's semantic conventions for
/// RPC spans say: a client span for every code but OK, a server span for UNKNOWN,
/// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS (the server's own
/// faults). Nothing when attributes are not recorded ([`span_attributes`]).
pub fn record_rpc_status(span: &tracing::Span, code: i32, side: RpcSide) {
    if !span_attributes() {
        return;
    }
    span.record("rpc.grpc.status_code", code);
    let failed = match side {
        RpcSide::Client => code != 0,
        RpcSide::Server => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
    };
    if failed {
        span.record("otel.status_code", "error");
    }
}

/// Installs logging, tracing and the metrics recorder for this process. Call once, early in
/// `main`, inside a Tokio runtime (the OTLP exporter uses tonic).
///
/// # Errors
/// [`TelemetryError::Exporter`] for a bad endpoint; [`TelemetryError::AlreadyInstalled`] when
/// another subscriber was installed first.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    metrics::install();
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(config.service_name.clone())
            .build()
    };
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let exporting = config.otlp_endpoint.is_some();
    if let Some(endpoint) = &config.otlp_endpoint {
        builder = builder.with_span_processor(export::processor(
            endpoint,
            config.max_queued_spans,
            config.export_timeout,
        )?);
    }
    let provider = builder.build();
    subscriber(config, provider.tracer("switchyard"), exporting)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    SPAN_ATTRIBUTES.store(exporting, Ordering::Relaxed);
    if exporting {
        tracing::info!(endpoint = ?config.otlp_endpoint, "exporting traces over OTLP");
    }
    Ok(Telemetry {
        provider,
        exporting,
    })
}

/// The subscriber [`init`] installs: log lines (filtered by `RUST_LOG`, default
/// `config.default_filter`) and OpenTelemetry spans (INFO and above; `switchyard` DEBUG and
/// above when `exporting`, for the milestones exported as span events) from `tracer`. Every
/// layer has a filter of its own, so a callsite no layer wants (h2's and hyper's TRACE spans,
/// say) is disabled where it is, at no cost per call.
fn subscriber(
    config: &TelemetryConfig,
    tracer: opentelemetry_sdk::trace::Tracer,
    exporting: bool,
) -> impl tracing::Subscriber + Send + Sync {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&config.default_filter));
    let slot = format::DispatchSlot::default();
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .fmt_fields(format::NoSpanFields)
        .event_format(format::Structured::new(config.log_format, slot.clone()))
        .with_filter(filter);
    // Spans and events of dependencies (h2, hyper, tonic) below INFO stay out of traces; ours
    // keep their DEBUG milestones (status changes, finished artifacts) when they are exported.
    let ours = if exporting {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let spans = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("switchyard", ours);
    tracing_subscriber::registry()
        .with(logs)
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // No `busy_ns` / `idle_ns` attributes: a clock read at every poll of every
                // instrumented future.
                .with_tracked_inactivity(false)
                // No OpenTelemetry context attached at every poll of every instrumented
                // future: nothing here reads `opentelemetry::Context::current()` (parents
                // come from the `tracing` span tree, outgoing `traceparent` headers from
                // `OpenTelemetrySpanExt::context`, log lines from `get_otel_context`).
                .with_context_activation(false)
                // A span's code location, thread and target are attributes only an exported
                // span shows; without an exporter each span would build and drop them.
                .with_location(exporting)
                .with_threads(exporting)
                .with_target(exporting)
                .with_filter(spans),
        )
        // A layer without a filter of its own would be a global filter that enables every
        // callsite (h2's and hyper's TRACE spans and events included) for the two layers
        // above to discard one by one: about 400k instructions per proxied call
        // (bench/RESULTS.md §8). Filtered to nothing, it only takes part in registration.
        .with(format::RegisterDispatch(slot).with_filter(LevelFilter::OFF))
}

/// Installs telemetry once per process for tests and tools; later calls return `None`.
pub fn init_once(config: &TelemetryConfig) -> Option<&'static Telemetry> {
    static ONCE: OnceLock<Option<Telemetry>> = OnceLock::new();
    ONCE.get_or_init(|| init(config).ok()).as_ref()
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing::{
        Level, Metadata, Subscriber as _,
        callsite::{Callsite, Identifier},
        field::FieldSet,
        metadata::Kind,
        subscriber::Interest,
    };

    use super::*;

    /// A callsite of its own for each metadata below.
    struct Site(&'static Metadata<'static>);

    impl Callsite for Site {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            self.0
        }
    }

    static H2_SITE: Site = Site(&H2_TRACE_SPAN);
    static H2_TRACE_SPAN: Metadata<'static> = Metadata::new(
        "flush",
        "h2::codec::framed_write",
        Level::TRACE,
        None,
        None,
        None,
        FieldSet::new(&[], Identifier(&H2_SITE)),
        Kind::SPAN,
    );
    static OUR_SITE: Site = Site(&OUR_INFO_SPAN);
    static OUR_INFO_SPAN: Metadata<'static> = Metadata::new(
        "http.server",
        "switchyard_gateway::layers::trace",
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(&[], Identifier(&OUR_SITE)),
        Kind::SPAN,
    );

    static MILESTONE_SITE: Site = Site(&MILESTONE_EVENT);
    static MILESTONE_EVENT: Metadata<'static> = Metadata::new(
        "task status",
        "switchyard::service",
        Level::DEBUG,
        None,
        None,
        None,
        FieldSet::new(&[], Identifier(&MILESTONE_SITE)),
        Kind::EVENT,
    );

    #[test]
    fn debug_milestones_are_recorded_only_when_exported() {
        if std::env::var_os("RUST_LOG").is_some() {
            return; // the log layer may want them then
        }
        let provider = SdkTracerProvider::builder().build();
        let config = TelemetryConfig::from_env("telemetry-test");
        let exported = subscriber(&config, provider.tracer("test"), true);
        assert!(!exported.register_callsite(&MILESTONE_EVENT).is_never());
        let local = subscriber(&config, provider.tracer("test"), false);
        assert!(
            local.register_callsite(&MILESTONE_EVENT).is_never(),
            "a span event nobody exports is recorded"
        );
    }

    /// Keeps every span that ends.
    #[derive(Debug, Default, Clone)]
    struct Collect(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanProcessor for Collect {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    /// Spans of a parent and of a child entered inside it (within a future polled under the
    /// parent, as a request's handler is), with `exporting` as given.
    fn parent_and_child(exporting: bool) -> Vec<opentelemetry_sdk::trace::SpanData> {
        let spans = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(spans.clone())
            .build();
        let config = TelemetryConfig::from_env("telemetry-test");
        let subscriber = subscriber(&config, provider.tracer("test"), exporting);
        tracing::subscriber::with_default(subscriber, || {
            use tracing::Instrument as _;
            let parent = tracing::info_span!("parent");
            let work = async { tracing::info_span!("child").in_scope(|| {}) };
            futures::executor::block_on(work.instrument(parent));
        });
        let spans = spans.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 2, "{spans:?}");
        spans
    }

    #[test]
    fn a_child_span_has_its_parent_without_an_attached_context() {
        for exporting in [true, false] {
            let spans = parent_and_child(exporting);
            let (child, parent) = (&spans[0], &spans[1]);
            assert_eq!((&*child.name, &*parent.name), ("child", "parent"));
            assert_eq!(
                child.span_context.trace_id(),
                parent.span_context.trace_id()
            );
            assert_eq!(child.parent_span_id, parent.span_context.span_id());
            let has = |key: &str| child.attributes.iter().any(|kv| kv.key.as_str() == key);
            // Location, thread and target are built only for an exported span.
            for key in ["code.file.path", "thread.id", "target"] {
                assert_eq!(has(key), exporting, "{key} with exporting = {exporting}");
            }
        }
    }

    #[test]
    fn a_callsite_no_layer_wants_is_never_asked_about_again() {
        let provider = SdkTracerProvider::builder().build();
        let config = TelemetryConfig::from_env("telemetry-test");
        let subscriber = subscriber(&config, provider.tracer("test"), true);
        if std::env::var_os("RUST_LOG").is_none() {
            // "sometimes" would make every hit of the callsite ask every filter again (what
            // an unfiltered layer in the stack did: ~400k instructions per proxied call).
            assert!(
                subscriber.register_callsite(&H2_TRACE_SPAN).is_never(),
                "a dependency's TRACE span is not disabled at its callsite"
            );
        }
        assert!(
            !subscriber.register_callsite(&OUR_INFO_SPAN).is_never(),
            "the gateway's request span is not recorded"
        );
    }
}
