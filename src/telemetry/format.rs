//! Log lines as logfmt or JSON, each with the OpenTelemetry `trace_id` and `span_id` of the span
//! it was logged in, so a line can be found from a trace and a trace from a line.

use std::{fmt, str::FromStr};

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Event, Subscriber, field::Field};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
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

/// The event formatter.
#[derive(Debug)]
pub(crate) struct Structured {
    format: LogFormat,
}

impl Structured {
    pub(crate) fn new(format: LogFormat) -> Self {
        Self { format }
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
        if let Some(span) = ctx.lookup_current() {
            line.push(("span", span.name().to_owned()));
            let cx = tracing::dispatcher::get_default(|d| {
                tracing_opentelemetry::get_otel_context(&span.id(), d)
            });
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

    #[test]
    fn formats_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
