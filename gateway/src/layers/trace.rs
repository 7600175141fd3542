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
    convert::Infallible,
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
use switchyard::telemetry::{metrics, on_end};

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
        let id = req
            .extensions()
            .get::<RequestIdValue>()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        let method = method_label(req.method()).to_owned();
        let route = route_template(req.uri().path());
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default()
            .to_owned();
        let (address, port) = host.rsplit_once(':').unwrap_or((&host, ""));
        let rpc = crate::error::grpc::answer_type(req.headers())
            .map(|_| switchyard::server::known_rpc(crate::grpc::target::split(req.uri().path()).1));
        let name = match rpc {
            Some((service, rpc_method)) => format!("{service}/{rpc_method}"),
            None => format!("{method} {route}"),
        };
        let span = tracing::info_span!(
            "http.server",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = %route,
            url.path = %req.uri().path(),
            server.address = %address,
            server.port = %port,
            request_id = %id,
            http.response.status_code = tracing::field::Empty,
            a2a.method = tracing::field::Empty,
            a2a.task.id = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            switchyard.agent = tracing::field::Empty,
        );
        if let Some((service, rpc_method)) = rpc {
            span.record("rpc.system", "grpc");
            span.record("rpc.service", service);
            span.record("rpc.method", rpc_method);
        }
        let parent =
            TraceContextPropagator::new().extract(&TraceHeaders::from_headers(req.headers()));
        let _ = span.set_parent(parent);
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
                current.record("http.response.status_code", status);
                if status >= 500 {
                    current.record("otel.status_code", "error");
                }
                tracing::debug!(status, "answered");
                // The span and the duration cover the whole body (an SSE stream included).
                let (parts, body) = response.into_parts();
                let body = on_end(body, move |_| {
                    let labels = [
                        ("route", route),
                        ("method", method),
                        ("status", status.to_string()),
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
/// cardinality: agent names, tenants and ids become placeholders).
pub(crate) fn route_template(path: &str) -> String {
    if crate::grpc::target::is_grpc_path(path) {
        let (agent, rpc) = crate::grpc::target::split(path);
        let (service, method) = switchyard::server::known_rpc(rpc);
        let prefix = if agent.is_some() {
            "/agents/{agent}"
        } else {
            ""
        };
        return format!("{prefix}/{service}/{method}");
    }
    let Some(below) = path.strip_prefix("/agents/") else {
        return match path {
            "/agents" | "/healthz" | "/readyz" | "/metrics" | "/.well-known/agent-card.json" => {
                path.to_owned()
            }
            _ => "/{*unknown}".to_owned(),
        };
    };
    let rest: Vec<&str> = below.split('/').skip(1).collect();
    let tail = match rest.as_slice() {
        [] | [""] => String::new(),
        ["ws"] => "/ws".into(),
        [".well-known", "agent-card.json"] => "/.well-known/agent-card.json".into(),
        segments => rest_template(segments)
            .or_else(|| rest_template(&segments[1..]).map(|t| format!("/{{tenant}}{t}")))
            .unwrap_or_else(|| "/{*rest}".into()),
    };
    format!("/agents/{{agent}}{tail}")
}

/// The template of an A2A REST path (A2A v1.0, HTTP+JSON routes).
fn rest_template(segments: &[&str]) -> Option<String> {
    let verb = |s: &str| s.rsplit_once(':').map(|(_, v)| v.to_owned());
    Some(match segments {
        ["message:send"] => "/message:send".into(),
        ["message:stream"] => "/message:stream".into(),
        ["tasks"] => "/tasks".into(),
        ["extendedAgentCard"] => "/extendedAgentCard".into(),
        ["tasks", id] => match verb(id).as_deref() {
            Some(v @ ("cancel" | "subscribe")) => format!("/tasks/{{id}}:{v}"),
            _ => "/tasks/{id}".into(),
        },
        ["tasks", _, "pushNotificationConfigs"] => "/tasks/{id}/pushNotificationConfigs".into(),
        ["tasks", _, "pushNotificationConfigs", _] => {
            "/tasks/{id}/pushNotificationConfigs/{config_id}".into()
        }
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
        ] {
            assert_eq!(route_template(path), want, "{path}");
        }
        let junk = http::Method::from_bytes(b"JUNK42").expect("a token");
        assert_eq!(super::method_label(&junk), "_OTHER");
        assert_eq!(super::method_label(&http::Method::POST), "POST");
    }
}
