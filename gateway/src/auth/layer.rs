//! [`AuthLayer`]: authentication and authorization of every request, on every front.
//!
//! 1. A client-sent [`PRINCIPAL_HEADER`] is always removed (only the gateway sets it).
//! 2. Public routes pass: CORS preflights, `/healthz`, `/readyz`, `/metrics`, the console's page and assets and
//!    `POST /console/render`, the agent cards (`/.well-known/agent-card.json`,
//!    `/agents/{agent}/.well-known/agent-card.json`), the directory `GET /agents`, and gRPC
//!    health checks.
//! 3. When authentication is on, the credentials must prove a [`Principal`]; otherwise the
//!    answer is 401 + `WWW-Authenticate: Bearer …` (RFC 6750 §3) in the front's error shape
//!    (JSON-RPC error object, REST envelope, gRPC UNAUTHENTICATED; a WebSocket handshake or SSE
//!    request gets the HTTP answer before anything is streamed). The principal goes on as a
//!    request extension and as [`PRINCIPAL_HEADER`] to the agent; the credential headers are
//!    not forwarded.
//! 4. When a [`Policy`] exists, the principal must be allowed to call the agent the request is
//!    for; otherwise 403 / PERMISSION_DENIED. `/mcp` reaches every agent in one session: there
//!    each tool call is checked by its agent and skill (`switchyard_mcp::McpConfig::policy`),
//!    a refusal being a tool error `PERMISSION_DENIED: …`.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    response::{IntoResponse as _, Response},
};
use http::{HeaderValue, Method};
use switchyard::{
    authz::{Decision, Policy},
    identity::{PRINCIPAL_HEADER, Principal},
};

use super::{AuthError, Authenticator};
use crate::{
    error::{ApiError, Failure, Front},
    layers::ResponseFuture,
};

/// Authenticates and authorizes requests (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct AuthLayer {
    authenticator: Option<Arc<Authenticator>>,
    policy: Arc<Policy>,
}

impl AuthLayer {
    /// `authenticator`: `None` when authentication is off.
    pub(crate) fn new(authenticator: Option<Arc<Authenticator>>, policy: Arc<Policy>) -> Self {
        Self {
            authenticator,
            policy,
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

/// Whether `request` may be served without credentials.
fn is_public(request: &Request) -> bool {
    let path = request.uri().path();
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        // A CORS preflight carries no credentials; the CORS layer answers it.
        return true;
    }
    if path.starts_with("/grpc.health.v1.Health/") || path == "/console/render" {
        return true;
    }
    if let Some(rest) = path.strip_prefix("/agents/")
        && let Some((_, rpc)) = rest.split_once('/')
        && rpc.starts_with("grpc.health.v1.Health/")
    {
        return true;
    }
    read && (matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/" | "/agents" | "/.well-known/agent-card.json"
    ) || path.starts_with("/console/")
        || path.strip_prefix("/agents/").is_some_and(|rest| {
            rest.ends_with("/.well-known/agent-card.json") && rest.matches('/').count() == 2
        }))
}

/// The agent a request is for, if it names one.
fn agent_of(request: &Request) -> Option<String> {
    let path = request.uri().path();
    if crate::error::grpc::answer_type(request.headers()).is_some() {
        return crate::grpc::target::target(path, request.headers())
            .ok()
            .map(|t| t.agent);
    }
    let agent = crate::app::agent_segment(path);
    (!agent.is_empty()).then(|| agent.to_owned())
}

/// The 401 answer for `error`.
fn unauthenticated(front: Front, error: &AuthError) -> Response {
    let mut challenge = String::from("Bearer realm=\"switchyard\"");
    if error.presented() {
        // RFC 6750 §3: the description is plain ASCII without quotes (ours never has any).
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            error.to_string().replace('"', "'")
        ));
    }
    let mut response = Failure {
        front,
        error: ApiError::Unauthenticated(error.to_string()),
    }
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, v);
    }
    response
}

impl<S> tower::Service<Request> for Auth<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> ResponseFuture {
        request.headers_mut().remove(PRINCIPAL_HEADER);
        let layer = self.layer.clone();
        if (layer.authenticator.is_none() && !layer.policy.is_enabled()) || is_public(&request) {
            return Box::pin(self.inner.call(request));
        }
        // The ready service goes into the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let front = Front::of_request(&request);
            let principal = match &layer.authenticator {
                Some(a) => match a.authenticate(request.headers()).await {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::info!(reason = %e, "request not authenticated");
                        return Ok(unauthenticated(front, &e));
                    }
                },
                None => None,
            };
            if let Some(p) = &principal {
                tracing::debug!(principal = %p, "authenticated");
                let headers = request.headers_mut();
                headers.remove(http::header::AUTHORIZATION);
                headers.remove("x-api-key");
                if let Ok(v) = HeaderValue::from_str(&p.to_header()) {
                    headers.insert(PRINCIPAL_HEADER, v);
                }
                request.extensions_mut().insert(p.clone());
            }
            if layer.policy.is_enabled()
                && let Some(refusal) = authorize(&layer.policy, &request, principal.as_ref())
            {
                return Ok(match refusal {
                    Decision::Unauthenticated => unauthenticated(front, &AuthError::Missing),
                    Decision::Deny(reason) => Failure {
                        front,
                        error: ApiError::PermissionDenied(reason),
                    }
                    .into_response(),
                    Decision::Allow => unreachable!("authorize returns refusals only"),
                });
            }
            inner.call(request).await
        })
    }
}

/// The refusal of the policy for `request`, if any.
fn authorize(
    policy: &Policy,
    request: &Request,
    principal: Option<&Principal>,
) -> Option<Decision> {
    if request.uri().path() == crate::mcp::PATH {
        // One session reaches every agent: each tool call is checked by agent and skill
        // (`McpConfig::policy`), with the principal this layer put in the extensions.
        return principal.is_none().then_some(Decision::Unauthenticated);
    }
    let agent = agent_of(request)?;
    match policy.check("gateway", &agent, None, principal) {
        Decision::Allow => None,
        refusal => Some(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("request")
    }

    #[test]
    fn only_health_cards_and_the_console_are_public() {
        for (m, p) in [
            (Method::GET, "/healthz"),
            (Method::GET, "/.well-known/agent-card.json"),
            (Method::GET, "/agents/echo/.well-known/agent-card.json"),
            (Method::GET, "/agents"),
            (Method::GET, "/console/app.js"),
            (Method::POST, "/grpc.health.v1.Health/Check"),
            (Method::POST, "/agents/echo/grpc.health.v1.Health/Check"),
        ] {
            assert!(is_public(&req(m, p)), "{p}");
        }
        for (m, p) in [
            (Method::POST, "/agents/echo"),
            (Method::GET, "/agents/echo/tasks/1"),
            (Method::GET, "/agents/echo/extendedAgentCard"),
            (Method::GET, "/agents/echo/x/.well-known/agent-card.json"),
            (Method::GET, "/agents/echo/ws"),
            (Method::POST, "/mcp"),
            (Method::POST, "/lf.a2a.v1.A2AService/SendMessage"),
            (Method::POST, "/.well-known/agent-card.json"),
        ] {
            assert!(!is_public(&req(m, p)), "{p}");
        }
    }
}
