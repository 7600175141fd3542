//! [`TraceLayer`]: one `http.server` span per request, child of the caller's W3C trace
//! context, with the OpenTelemetry HTTP attributes (`http.request.method`, `http.route`,
//! `http.response.status_code`, `server.address`, `server.port`), named `{method} {route}`,
//! lasting until the response body ends; and the request metrics
//! (`switchyard_http_server_requests_total`, `switchyard_http_server_duration_seconds`).
//!
//! A gRPC call (a `application/grpc…` content type) gets the same span named
//! `<package.Service>/<Method>` with the OpenTelemetry RPC attributes (`rpc.system`,
//! `rpc.service`, `rpc.method`; the gRPC front records `rpc.grpc.status_code` and
//! `switchyard.agent`), and the route template `/<package.Service>/<Method>` (or
//! `/agents/{agent}/<package.Service>/<Method>`).

use std::{
    borrow::Cow,
    convert::Infallible,
    fmt,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use switchyard::trace::TraceHeaders;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{ResponseFuture, request_id::RequestIdValue};
use std::time::Instant;
use switchyard::telemetry::{metrics, on_end, span_attributes};

/// Layer of [`Trace`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

/// Runs each request inside its span and records the response status.
#[derive(Clone, Debug)]
pub(crate) struct Trace<S> {
    inner: S,
}

impl<S> Service<Request> for Trace<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> ResponseFuture {
        // Nothing here is copied or formatted unless the span's attributes are recorded
        // (`span_attributes`: spans are exported): its fields borrow from the request, and the
        // labels are static strings.
        let method = method_label(req.method());
        let route = route_template(req.uri().path());
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default();
        let (address, port) = host.rsplit_once(':').unwrap_or((host, ""));
        let id = req
            .extensions()
            .get::<RequestIdValue>()
            .map(RequestIdValue::as_str)
            .unwrap_or_default();
        let rpc = crate::error::grpc::answer_type(req.headers())
            .map(|_| switchyard::server::known_rpc(crate::grpc::target::split(req.uri().path()).1));
        let span = tracing::info_span!(
            "http.server",
            otel.name = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = tracing::field::Empty,
            http.route = tracing::field::Empty,
            url.path = tracing::field::Empty,
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
            request_id = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            a2a.method = tracing::field::Empty,
            a2a.task.id = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            switchyard.agent = tracing::field::Empty,
        );
        let attributes = span_attributes() && !span.is_disabled();
        if attributes {
            span.record(
                "otel.name",
                tracing::field::display(SpanName {
                    rpc,
                    method,
                    route: &route,
                }),
            );
            span.record("http.request.method", method);
            span.record("http.route", &*route);
            span.record("url.path", req.uri().path());
            span.record("server.address", address);
            span.record("server.port", port);
            span.record("request_id", id);
            if let Some((service, rpc_method)) = rpc {
                span.record("rpc.system", "grpc");
                span.record("rpc.service", service);
                span.record("rpc.method", rpc_method);
            }
        }
        if !span.is_disabled() {
            // A span no subscriber records has no parent to set.
            let parent =
                TraceContextPropagator::new().extract(&TraceHeaders::from_headers(req.headers()));
            let _ = span.set_parent(parent);
        }
        let started = Instant::now();
        let future = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let response = future.await?;
                let status = response.status().as_u16();
                let current = tracing::Span::current();
                if attributes {
                    current.record("http.response.status_code", status);
                    if status >= 500 {
                        current.record("otel.status_code", "error");
                    }
                }
                tracing::debug!(status, "answered");
                // The span and the duration cover the whole body (an SSE stream included).
                let (parts, body) = response.into_parts();
                let body = on_end(body, move |_| {
                    let labels = [
                        ("route", route),
                        ("method", Cow::Borrowed(method)),
                        ("status", status_label(status)),
                    ];
                    ::metrics::histogram!(metrics::HTTP_DURATION, &labels[..2])
                        .record(started.elapsed().as_secs_f64());
                    ::metrics::counter!(metrics::HTTP_REQUESTS, &labels).increment(1);
                    drop(current);
                });
                Ok(Response::from_parts(parts, body))
            }
            .instrument(span),
        )
    }
}

/// The name of a request's span, written only when a subscriber records it:
/// `<package.Service>/<Method>` for a gRPC call, else `{method} {route}`.
struct SpanName<'a> {
    rpc: Option<(&'static str, &'static str)>,
    method: &'static str,
    route: &'a str,
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rpc {
            Some((service, method)) => write!(f, "{service}/{method}"),
            None => write!(f, "{} {}", self.method, self.route),
        }
    }
}

/// The `status` label of a response: the code's three digits (static for the codes the
/// gateway answers with).
fn status_label(status: u16) -> Cow<'static, str> {
    Cow::Borrowed(match status {
        200 => "200",
        201 => "201",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return Cow::Owned(status.to_string()),
    })
}

/// The `method` label of a request: the standard methods by name, any other `_OTHER`
/// (OpenTelemetry HTTP conventions; bounded metric cardinality).
pub(crate) fn method_label(method: &http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// The route template of a gateway path, for `http.route` and metric labels (bounded
/// cardinality: agent names, tenants and ids become placeholders). Static, but for gRPC
/// paths.
pub(crate) fn route_template(path: &str) -> Cow<'static, str> {
    if crate::grpc::target::is_grpc_path(path) {
        let (agent, rpc) = crate::grpc::target::split(path);
        let (service, method) = switchyard::server::known_rpc(rpc);
        let prefix = if agent.is_some() {
            "/agents/{agent}"
        } else {
            ""
        };
        return Cow::Owned(format!("{prefix}/{service}/{method}"));
    }
    let Some(below) = path.strip_prefix("/agents/") else {
        return Cow::Borrowed(match path {
            "/agents" => "/agents",
            "/healthz" => "/healthz",
            "/readyz" => "/readyz",
            "/metrics" => "/metrics",
            "/.well-known/agent-card.json" => "/.well-known/agent-card.json",
            _ => "/{*unknown}",
        });
    };
    // The segments after the agent's; no template has more than five.
    let mut segments = [""; 6];
    let mut n = 0;
    for segment in below.split('/').skip(1) {
        if n == segments.len() {
            return Cow::Borrowed("/agents/{agent}/{*rest}");
        }
        segments[n] = segment;
        n += 1;
    }
    Cow::Borrowed(match &segments[..n] {
        [] | [""] => "/agents/{agent}",
        ["ws"] => "/agents/{agent}/ws",
        [".well-known", "agent-card.json"] => "/agents/{agent}/.well-known/agent-card.json",
        segments => rest_template(segments)
            .map(|[plain, _]| plain)
            .or_else(|| rest_template(&segments[1..]).map(|[_, tenant]| tenant))
            .unwrap_or("/agents/{agent}/{*rest}"),
    })
}

/// The templates of an A2A REST path (A2A v1.0, HTTP+JSON routes): without and with the
/// tenant segment.
fn rest_template(segments: &[&str]) -> Option<[&'static str; 2]> {
    Some(match segments {
        ["message:send"] => [
            "/agents/{agent}/message:send",
            "/agents/{agent}/{tenant}/message:send",
        ],
        ["message:stream"] => [
            "/agents/{agent}/message:stream",
            "/agents/{agent}/{tenant}/message:stream",
        ],
        ["tasks"] => ["/agents/{agent}/tasks", "/agents/{agent}/{tenant}/tasks"],
        ["extendedAgentCard"] => [
            "/agents/{agent}/extendedAgentCard",
            "/agents/{agent}/{tenant}/extendedAgentCard",
        ],
        ["tasks", id] => match id.rsplit_once(':').map(|(_, verb)| verb) {
            Some("cancel") => [
                "/agents/{agent}/tasks/{id}:cancel",
                "/agents/{agent}/{tenant}/tasks/{id}:cancel",
            ],
            Some("subscribe") => [
                "/agents/{agent}/tasks/{id}:subscribe",
                "/agents/{agent}/{tenant}/tasks/{id}:subscribe",
            ],
            _ => [
                "/agents/{agent}/tasks/{id}",
                "/agents/{agent}/{tenant}/tasks/{id}",
            ],
        },
        ["tasks", _, "pushNotificationConfigs"] => [
            "/agents/{agent}/tasks/{id}/pushNotificationConfigs",
            "/agents/{agent}/{tenant}/tasks/{id}/pushNotificationConfigs",
        ],
        ["tasks", _, "pushNotificationConfigs", _] => [
            "/agents/{agent}/tasks/{id}/pushNotificationConfigs/{config_id}",
            "/agents/{agent}/{tenant}/tasks/{id}/pushNotificationConfigs/{config_id}",
        ],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::route_template;

    #[test]
    fn routes_have_bounded_templates() {
        for (path, want) in [
            ("/agents", "/agents"),
            ("/agents/echo", "/agents/{agent}"),
            ("/agents/echo/", "/agents/{agent}"),
            ("/agents/echo/ws", "/agents/{agent}/ws"),
            (
                "/agents/echo/tasks/0a-1:cancel",
                "/agents/{agent}/tasks/{id}:cancel",
            ),
            (
                "/agents/echo/acme/tasks/x",
                "/agents/{agent}/{tenant}/tasks/{id}",
            ),
            (
                "/agents/echo/tasks/x/pushNotificationConfigs/y",
                "/agents/{agent}/tasks/{id}/pushNotificationConfigs/{config_id}",
            ),
            ("/agents/echo/no/such/route/here", "/agents/{agent}/{*rest}"),
            (
                "/lf.a2a.v1.A2AService/GetTask",
                "/lf.a2a.v1.A2AService/GetTask",
            ),
            (
                "/agents/echo/switchyard.v1.AgentService/Converse",
                "/agents/{agent}/switchyard.v1.AgentService/Converse",
            ),
            (
                "/agents/echo/grpc.health.v1.Health/Made.Up",
                "/agents/{agent}/grpc.health.v1.Health/unknown",
            ),
            ("/random", "/{*unknown}"),
            ("/agents/echo/message:send", "/agents/{agent}/message:send"),
            (
                "/agents/echo/acme/message:stream",
                "/agents/{agent}/{tenant}/message:stream",
            ),
            (
                "/agents/echo/acme/tasks/x:subscribe",
                "/agents/{agent}/{tenant}/tasks/{id}:subscribe",
            ),
            (
                "/agents/echo/acme/tasks/x/pushNotificationConfigs/y",
                "/agents/{agent}/{tenant}/tasks/{id}/pushNotificationConfigs/{config_id}",
            ),
            ("/agents/echo//tasks", "/agents/{agent}/{tenant}/tasks"),
            (
                "/agents/echo/.well-known/agent-card.json",
                "/agents/{agent}/.well-known/agent-card.json",
            ),
            ("/agents/echo/a/b/c/d/e/f/g", "/agents/{agent}/{*rest}"),
            ("/healthz", "/healthz"),
        ] {
            assert_eq!(route_template(path), want, "{path}");
        }
        let junk = http::Method::from_bytes(b"JUNK42").expect("a token");
        assert_eq!(super::method_label(&junk), "_OTHER");
        assert_eq!(super::method_label(&http::Method::POST), "POST");
    }

    #[test]
    fn status_labels_are_the_codes_digits() {
        for status in 100..=599 {
            assert_eq!(super::status_label(status), status.to_string());
        }
    }

    #[test]
    fn span_names_follow_the_conventions() {
        let name = |rpc, route| {
            super::SpanName {
                rpc,
                method: "POST",
                route,
            }
            .to_string()
        };
        assert_eq!(name(None, "/agents/{agent}"), "POST /agents/{agent}");
        assert_eq!(
            name(Some(("lf.a2a.v1.A2AService", "GetTask")), "/x"),
            "lf.a2a.v1.A2AService/GetTask"
        );
    }
}
