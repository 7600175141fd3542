//! OTLP export behind a bounded queue whose drops are counted.
//!
//! The SDK's batch processor drops spans when its queue is full but keeps the count to itself.
//! [`Bounded`] admits at most `limit` spans that are not yet handed to the exporter, counts every
//! span it refuses in `switchyard_trace_spans_dropped_total`, and [`Released`] frees the slots
//! as batches reach the exporter.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry::Context;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor},
};

use super::{TelemetryError, metrics};

/// The batch processor over the OTLP/gRPC exporter, behind a bounded, counted queue.
pub(super) fn processor(
    endpoint: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Bounded, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let queued = Arc::new(AtomicUsize::new(0));
    let batch = BatchSpanProcessor::builder(Released {
        inner: exporter,
        queued: queued.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            // Leave the inner queue room: ours is the bound that counts.
            .with_max_queue_size(limit + 64)
            .build(),
    )
    .build();
    Ok(Bounded {
        inner: batch,
        queued,
        limit,
    })
}

/// Admits at most `limit` spans waiting for export.
#[derive(Debug)]
pub(super) struct Bounded {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            ::metrics::counter!(metrics::TRACE_SPANS_DROPPED).increment(1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Frees queue slots when a batch reaches the exporter.
#[derive(Debug)]
struct Released<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Released<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let n = batch.len() as u64;
        self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        async move {
            let result = self.inner.export(batch).await;
            match &result {
                Ok(()) => ::metrics::counter!(metrics::TRACE_SPANS_EXPORTED).increment(n),
                Err(_) => ::metrics::counter!(metrics::TRACE_EXPORT_FAILED_SPANS).increment(n),
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
