//! W3C trace context (`traceparent`, `tracestate`) on gRPC metadata: continued from callers
//! into the runtime's spans, and passed on when an agent calls another agent.
//!
//! With OpenTelemetry installed in the `tracing` subscriber (`tracing-opentelemetry`), an
//! outgoing call carries the context of the current span, so the callee's spans become its
//! children. Without it, the caller's own trace context is passed on unchanged, so a trace is
//! never broken by a hop that does not record spans.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Name of the W3C trace-parent header / metadata key.
pub const TRACEPARENT: &str = "traceparent";
/// Name of the W3C trace-state header / metadata key.
pub const TRACESTATE: &str = "tracestate";

tokio::task_local! {
    /// The trace context of the task an agent is executing.
    pub(crate) static INCOMING: TraceHeaders;
}

/// The W3C trace-context headers of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    /// `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
    pub traceparent: Option<String>,
    /// `tracestate`: vendor-specific key-value pairs.
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    /// Reads the headers from gRPC metadata; a malformed `traceparent` is ignored
    /// (W3C Trace Context §4.3: a receiver that cannot parse it starts a new trace).
    pub fn from_metadata(md: &MetadataMap) -> Self {
        Self::read(|k| md.get(k).and_then(|v| v.to_str().ok()))
    }

    /// Reads the headers from HTTP headers; a malformed `traceparent` is ignored.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        Self::read(|k| headers.get(k).and_then(|v| v.to_str().ok()))
    }

    fn read<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        let get = |k| get(k).map(str::to_owned);
        let traceparent = get(TRACEPARENT).filter(|t| parse_traceparent(t).is_some());
        let tracestate = traceparent.as_ref().and_then(|_| get(TRACESTATE));
        Self {
            traceparent,
            tracestate,
        }
    }

    /// Writes the headers into gRPC metadata.
    pub fn inject(&self, md: &mut MetadataMap) {
        for (key, value) in [
            (TRACEPARENT, &self.traceparent),
            (TRACESTATE, &self.tracestate),
        ] {
            if let Some(v) = value
                .as_deref()
                .and_then(|v| MetadataValue::try_from(v).ok())
            {
                md.insert(key, v);
            }
        }
    }

    /// The 32-hex-digit trace id of `traceparent`.
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent
            .as_deref()
            .and_then(parse_traceparent)
            .map(|(t, _)| t)
    }

    /// The 16-hex-digit parent span id of `traceparent`.
    pub fn parent_id(&self) -> Option<&str> {
        self.traceparent
            .as_deref()
            .and_then(parse_traceparent)
            .map(|(_, p)| p)
    }

    /// The OpenTelemetry context these headers describe.
    pub(crate) fn otel_context(&self) -> opentelemetry::Context {
        TraceContextPropagator::new().extract(self)
    }
}

impl Extractor for TraceHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// Splits a version-00 `traceparent` into trace id and parent id, checking the W3C rules
/// (lower-case hex, non-zero ids).
fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut it = value.trim().split('-');
    let (version, trace, parent, flags) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    (version == "00"
        && it.next().is_none()
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2))
    .then_some((trace, parent))
}

/// The trace context for a call made now: the current span's context when OpenTelemetry
/// records it, else the context of the task being executed, else none.
pub fn outgoing() -> TraceHeaders {
    let cx = tracing::Span::current().context();
    if opentelemetry::trace::TraceContextExt::span(&cx)
        .span_context()
        .is_valid()
    {
        let mut headers = TraceHeaders::default();
        TraceContextPropagator::new().inject_context(&cx, &mut headers);
        return headers;
    }
    INCOMING.try_with(Clone::clone).unwrap_or_default()
}

/// The propagator writes straight into the two fields; an empty `tracestate` is left out.
impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value).filter(|s| !s.is_empty()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_rules() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(ok),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn outgoing_falls_back_to_the_incoming_context() {
        let incoming = TraceHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("vendor=1".into()),
        };
        let got = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(INCOMING.scope(incoming.clone(), async { outgoing() }));
        assert_eq!(got, incoming);
    }
}
