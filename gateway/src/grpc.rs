//! The native gRPC and gRPC-Web front: calls to the agents' gRPC services, proxied as they
//! are (no decoding, no re-encoding) on the gateway's one port.
//!
//! | protocol | content type | HTTP | streaming |
//! |---|---|---|---|
//! | gRPC | `application/grpc`, `application/grpc+proto` | HTTP/2 (h2c prior knowledge, or TLS at a proxy) | all four kinds |
//! | gRPC-Web | `application/grpc-web`, `application/grpc-web+proto` | HTTP/1.1 and HTTP/2 | unary, server streaming |
//! | gRPC-Web text | `application/grpc-web-text`, `application/grpc-web-text+proto` (base64) | HTTP/1.1 and HTTP/2 | unary, server streaming |
//!
//! Forwarded services: `lf.a2a.v1.A2AService`, `switchyard.v1.AgentService`,
//! `grpc.health.v1.Health` (the agent's health, not the gateway's: that is `/readyz`) and
//! reflection v1 and v1alpha (grpcurl lists and describes an agent through the gateway). The
//! agent is named by the `x-switchyard-agent` header or the `/agents/<name>` path prefix
//! ([`target`]).
//!
//! Requests are told apart by their `Content-Type` before routing ([`Dispatch`]); CORS
//! preflights, which carry none, by their path (a method of a forwarded service). The layers
//! a gRPC call passes, outermost first: request id, trace (its span is named
//! `<package.Service>/<Method>` and gets `rpc.*` attributes), header checks, CORS (the
//! configured origins; with none configured, gRPC-Web follows the WebSocket origin policy of
//! [`crate::origin`]: same-origin and loopback pages), the entry checks of [`Dispatch`]
//! (native gRPC needs HTTP/2 and POST), `tonic_web::GrpcWebLayer` (translates gRPC-Web to
//! gRPC and back), drain (UNAVAILABLE), concurrency limit (RESOURCE_EXHAUSTED, shared with the
//! HTTP fronts), deadline, and [`proxy::Proxy`], which checks each message's framing and size
//! ([`frames`]). Every refusal is a gRPC status with `ErrorInfo` details
//! ([`crate::error::grpc`]); the `a2a-version` rule is the agent's (the header is forwarded).

mod frames;
mod proxy;
mod relay;
pub(crate) mod target;

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{Router, extract::Request, response::Response};
use futures::{FutureExt as _, future::BoxFuture};
use http::{HeaderValue, Method};
use tower::{Service, ServiceBuilder, ServiceExt as _, util::BoxCloneSyncService};
use tower_http::cors::AllowOrigin;

use crate::{
    app::AppState,
    error::{ApiError, Failure, Front, grpc},
    layers::{deadline::DeadlineLayer, drain::DrainLayer, limit::ConcurrencyLimitLayer},
};

/// Extra time the gateway waits for the agent's own DEADLINE_EXCEEDED before it ends a call
/// with its own.
const LOCAL_SLACK: std::time::Duration = std::time::Duration::from_millis(50);

/// Which protocol a call came in with, as a request extension (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Native gRPC.
    Grpc,
    /// gRPC-Web, binary or text.
    GrpcWeb,
}

impl Protocol {
    /// The `protocol` label of the call metric.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
        }
    }
}

/// The content types tonic-web translates (it matches them exactly).
const GRPC_WEB_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];

/// The gRPC front as one service.
type GrpcService = BoxCloneSyncService<Request, Response, Infallible>;

/// Sends gRPC requests (and their CORS preflights) to the gRPC front, everything else to the
/// HTTP router.
#[derive(Clone, Debug)]
pub(crate) struct Dispatch {
    grpc: GrpcService,
    http: Router,
}

impl Dispatch {
    /// The gRPC front of `state` (sharing `limit` with the HTTP fronts) beside `http`.
    pub(crate) fn new(state: AppState, limit: ConcurrencyLimitLayer, http: Router) -> Self {
        let config = &state.config;
        // With no origins configured, the outer CORS layer is absent: gRPC-Web gets the origin
        // policy of WebSocket sessions (same-origin and loopback pages).
        let cors = config.cors_origins.is_empty().then(|| {
            let public = state.base_url.to_string();
            let policy = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                let origin = String::from_utf8_lossy(origin.as_bytes()).to_ascii_lowercase();
                crate::origin::is_allowed(origin.trim(), &[], &public)
            });
            crate::app::cors_with(policy)
        });
        let grpc = ServiceBuilder::new()
            .option_layer(cors)
            .map_response(|r: http::Response<tonic::body::Body>| r.map(axum::body::Body::new))
            .layer(tonic_web::GrpcWebLayer::new())
            .map_request(|r: http::Request<tonic::body::Body>| r.map(axum::body::Body::new))
            .layer(DrainLayer::new(state.draining.clone()))
            .layer(limit)
            .layer(DeadlineLayer::new(
                config.default_timeout,
                config.max_timeout,
                config.deadline_margin,
            ))
            .service(proxy::Proxy::new(state.clone()));
        Self {
            grpc: BoxCloneSyncService::new(grpc),
            http,
        }
    }
}

/// Why a gRPC request cannot enter the front: a native call not on HTTP/2 or not a POST, or
/// a gRPC-Web content type tonic-web does not translate.
fn entry_problem(req: &Request) -> Option<ApiError> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let web = content_type
        .to_ascii_lowercase()
        .starts_with("application/grpc-web");
    if web && !GRPC_WEB_TYPES.contains(&content_type) {
        return Some(ApiError::GrpcUnimplemented(format!(
            "content type {content_type:?} is not served; gRPC-Web takes {}",
            GRPC_WEB_TYPES.join(", ")
        )));
    }
    if req.method() != Method::POST {
        return Some(ApiError::GrpcUnimplemented(format!(
            "gRPC calls are POST requests, not {}",
            req.method()
        )));
    }
    if !web && req.version() != http::Version::HTTP_2 {
        return Some(ApiError::GrpcUnimplemented(
            "native gRPC needs HTTP/2 (h2c with prior knowledge); over HTTP/1.1 use gRPC-Web \
             (application/grpc-web)"
                .into(),
        ));
    }
    None
}

impl Service<Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
            && target::is_grpc_path(req.uri().path());
        let Some(answer) = grpc::answer_type(req.headers()) else {
            return if preflight {
                self.grpc.clone().oneshot(req).boxed()
            } else {
                self.http.clone().oneshot(req).boxed()
            };
        };
        if let Some(problem) = entry_problem(&req) {
            let failure = Failure {
                front: Front::Grpc(answer),
                error: problem,
            };
            return std::future::ready(Ok(axum::response::IntoResponse::into_response(failure)))
                .boxed();
        }
        let protocol = if answer == grpc::GRPC {
            Protocol::Grpc
        } else {
            Protocol::GrpcWeb
        };
        req.extensions_mut().insert(protocol);
        self.grpc.clone().oneshot(req).boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchyard::{Registry, RegistryConfig};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{GatewayConfig, app::Shared};

    /// The gRPC front of a gateway for agent `a` (nothing listens), with `slots` concurrent
    /// calls, drained when `draining` is.
    fn front(draining: CancellationToken, slots: usize) -> Dispatch {
        let registry =
            Registry::new(&RegistryConfig::from_env_value("a=127.0.0.1:9").expect("config"))
                .expect("registry");
        let state = AppState(Arc::new(Shared {
            registry: Arc::new(registry),
            config: GatewayConfig::default(),
            base_url: "http://127.0.0.1:1".into(),
            draining,
            lanes: Default::default(),
            modified: Default::default(),
            authenticator: None,
            card_security: Default::default(),
        }));
        Dispatch::new(state, ConcurrencyLimitLayer::new(slots), Router::new())
    }

    /// The trailers-only status of calling `agent` with `content_type` over `version`.
    async fn status_of(
        front: Dispatch,
        version: http::Version,
        content_type: &'static str,
        agent: &'static str,
    ) -> (String, String) {
        let mut r = request(Method::POST, version, content_type);
        *r.uri_mut() = "/lf.a2a.v1.A2AService/GetTask".parse().expect("path");
        r.headers_mut()
            .insert("x-switchyard-agent", HeaderValue::from_static(agent));
        let response = front.oneshot(r).await.expect("infallible");
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        (header("grpc-status"), header("content-type"))
    }

    #[tokio::test]
    async fn the_layers_refuse_with_grpc_statuses() {
        use http::Version;
        let open = CancellationToken::new();
        let (code, ct) = status_of(front(open.clone(), 4), Version::HTTP_2, grpc::GRPC, "b").await;
        assert_eq!(
            (code.as_str(), ct.as_str()),
            ("5", grpc::GRPC),
            "unknown agent"
        );
        let (code, ct) = status_of(
            front(open.clone(), 0),
            Version::HTTP_11,
            "application/grpc-web-text",
            "a",
        )
        .await;
        assert_eq!(code, "8", "shed at the concurrency limit");
        assert!(ct.starts_with("application/grpc-web"), "{ct}");
        let drained = CancellationToken::new();
        drained.cancel();
        for (version, ct) in [
            (Version::HTTP_2, grpc::GRPC),
            (Version::HTTP_11, "application/grpc-web+proto"),
        ] {
            let (code, _) = status_of(front(drained.clone(), 4), version, ct, "a").await;
            assert_eq!(code, "14", "UNAVAILABLE while draining ({ct})");
        }
    }

    fn request(method: Method, version: http::Version, ct: &'static str) -> Request {
        let mut r = Request::new(axum::body::Body::empty());
        *r.method_mut() = method;
        *r.version_mut() = version;
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        r
    }

    #[test]
    fn native_grpc_needs_http2_and_post() {
        use http::Version;
        let ok = request(Method::POST, Version::HTTP_2, "application/grpc");
        assert!(entry_problem(&ok).is_none());
        let h1 = request(Method::POST, Version::HTTP_11, "application/grpc");
        assert!(
            entry_problem(&h1)
                .expect("h1")
                .to_string()
                .contains("HTTP/2")
        );
        let web = request(Method::POST, Version::HTTP_11, "application/grpc-web-text");
        assert!(entry_problem(&web).is_none());
        let get = request(Method::GET, Version::HTTP_2, "application/grpc");
        assert!(entry_problem(&get).is_some());
        let json = request(Method::POST, Version::HTTP_11, "application/grpc-web+json");
        assert_eq!(
            entry_problem(&json).expect("json").code(),
            tonic::Code::Unimplemented
        );
    }
}
