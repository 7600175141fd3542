//! Log lines as logfmt or JSON, each with the OpenTelemetry `trace_id` and `span_id` of the span
//! it was logged in, so a line can be found from a trace and a trace from a line.

use std::{
    fmt,
    str::FromStr,
    sync::{Arc, OnceLock},
};

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Dispatch, Event, Subscriber, dispatcher::WeakDispatch, field::Field, span};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::LookupSpan,
};

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `ts=… level=info target=… msg="…" key=value trace_id=… span_id=…` (default).
    #[default]
    Logfmt,
    /// One JSON object per line with the same keys.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "logfmt" => Ok(Self::Logfmt),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: use logfmt or json")),
        }
    }
}

/// Where the formatter finds its subscriber: inside an event callback the default
/// dispatcher is the no-op one (tracing's reentrancy guard), so the subscriber is captured when
/// it registers ([`RegisterDispatch`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

/// The layer that fills a [`DispatchSlot`].
#[derive(Debug)]
pub(crate) struct RegisterDispatch(pub(crate) DispatchSlot);

impl<S: Subscriber> tracing_subscriber::Layer<S> for RegisterDispatch {
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.0.0.set(dispatch.downgrade());
    }
}

/// The span fields of the log layer: none. [`Structured`] writes an event's own fields and its
/// span's name and ids, never a span's fields, so nothing formats them into text when a span
/// opens or records a value (`tracing_subscriber::fmt`'s default formats every field of every
/// span it sees: about 40k instructions per request through the gateway, bench/RESULTS.md §8).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoSpanFields;

impl<'writer> FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: RecordFields>(&self, _: Writer<'writer>, _: R) -> fmt::Result {
        Ok(())
    }

    fn add_fields(
        &self,
        _: &'writer mut FormattedFields<Self>,
        _: &span::Record<'_>,
    ) -> fmt::Result {
        Ok(())
    }
}

/// The event formatter.
#[derive(Debug)]
pub(crate) struct Structured {
    format: LogFormat,
    dispatch: DispatchSlot,
}

impl Structured {
    pub(crate) fn new(format: LogFormat, dispatch: DispatchSlot) -> Self {
        Self { format, dispatch }
    }
}

/// The fields of one event, as text.
#[derive(Default)]
struct Fields(Vec<(&'static str, String)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_owned()));
    }
}

impl<S, N> FormatEvent<S, N> for Structured
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line: Vec<(&str, String)> = vec![
            ("ts", timestamp()),
            ("level", meta.level().as_str().to_ascii_lowercase()),
            ("target", meta.target().to_owned()),
        ];
        let mut message = None;
        for (k, v) in fields.0 {
            if k == "message" {
                message = Some(v);
            } else {
                line.push((k, v));
            }
        }
        line.insert(3, ("msg", message.unwrap_or_default()));
        // The event's own span: its explicit parent, else the current span.
        if let Some(span) = ctx.event_scope().and_then(|scope| scope.into_iter().next()) {
            line.push(("span", span.name().to_owned()));
            let cx = self
                .dispatch
                .0
                .get()
                .and_then(WeakDispatch::upgrade)
                .and_then(|d| tracing_opentelemetry::get_otel_context(&span.id(), &d));
            if let Some(cx) = cx {
                let sc = cx.span().span_context().clone();
                if sc.is_valid() {
                    line.push(("trace_id", sc.trace_id().to_string()));
                    line.push(("span_id", sc.span_id().to_string()));
                }
            }
        }
        match self.format {
            LogFormat::Json => {
                let object: serde_json::Map<String, serde_json::Value> = line
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                    .collect();
                writeln!(writer, "{}", serde_json::Value::Object(object))
            }
            LogFormat::Logfmt => {
                let mut first = true;
                for (k, v) in line {
                    if !first {
                        writer.write_char(' ')?;
                    }
                    first = false;
                    write!(writer, "{k}={}", logfmt_value(&v))?;
                }
                writeln!(writer)
            }
        }
    }
}

/// RFC 3339 UTC with microseconds.
fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A logfmt value: bare when it has no space, quote or `=`; quoted and escaped otherwise.
fn logfmt_value(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '"', '=', '\n', '\t', '\\']) {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_values_are_quoted_only_when_needed() {
        assert_eq!(logfmt_value("plain"), "plain");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("a b=\"c\"\n"), "\"a b=\\\"c\\\"\\n\"");
    }

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat) -> String {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let buf = Buf::default();
        let writer = buf.clone();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let slot = DispatchSlot::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || writer.clone())
                    .event_format(Structured::new(format, slot.clone())),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(RegisterDispatch(slot));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::info!(answer = 42, "hello there");
            drop(_entered);
            tracing::info!(parent: &span, "explicit parent");
        });
        let out = buf.0.lock().expect("buffer").clone();
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn lines_inside_a_span_carry_trace_and_span_ids() {
        let text = logged(LogFormat::Json);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[2]["span"], "work", "an explicit parent counts");
        assert_eq!(lines[2]["trace_id"], lines[1]["trace_id"]);
        assert!(lines[0].get("trace_id").is_none(), "no ids outside a span");
        let l = &lines[1];
        assert_eq!(l["msg"], "hello there");
        assert_eq!(l["answer"], "42");
        assert_eq!(l["level"], "info");
        assert_eq!(l["span"], "work");
        let hex = |v: &serde_json::Value, n: usize| {
            v.as_str()
                .is_some_and(|s| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        assert!(hex(&l["trace_id"], 32) && hex(&l["span_id"], 16), "{l}");

        let text = logged(LogFormat::Logfmt);
        let line = text.lines().nth(1).expect("second line");
        assert!(line.contains(" level=info target="), "{line}");
        assert!(
            line.contains(" msg=\"hello there\" answer=42 span=work trace_id="),
            "{line}"
        );
        assert!(line.contains(" span_id="), "{line}");
    }

    #[test]
    fn formats_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
