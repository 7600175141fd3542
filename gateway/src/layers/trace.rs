//! [`TraceLayer`]: one `http.server` span per request, child of the caller's W3C trace
//! context, with the OpenTelemetry HTTP attributes.

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
        let span = tracing::info_span!(
            "http.server",
            otel.name = %req.method(),
            otel.kind = "server",
            http.request.method = %req.method(),
            url.path = %req.uri().path(),
            request_id = %id,
            http.response.status_code = tracing::field::Empty,
        );
        let parent =
            TraceContextPropagator::new().extract(&TraceHeaders::from_headers(req.headers()));
        let _ = span.set_parent(parent);
        let future = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let response = future.await?;
                let status = response.status().as_u16();
                tracing::Span::current().record("http.response.status_code", status);
                tracing::debug!(status, "answered");
                Ok(response)
            }
            .instrument(span),
        )
    }
}
