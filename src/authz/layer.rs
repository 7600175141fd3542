//! [`AuthzLayer`]: the agent runtime's enforcement of the [`Policy`], on every
//! gRPC call of the agent server.
//!
//! The caller is the end user whose [`Principal`] a trusted forwarder (a gateway, by its mTLS
//! SPIFFE ID in [`AgentAuthz::forwarders`]) sent in [`PRINCIPAL_HEADER`]; otherwise the mTLS
//! peer itself ([`PeerIdentity`], as a [`PrincipalKind::Spiffe`] principal); otherwise nobody
//! (a plain-text connection, or a forwarded principal from a peer not trusted to forward one:
//! the header is ignored). Health checks, reflection and `AgentService/GetAgentCard` stay open.
//! Refusals are gRPC statuses: UNAUTHENTICATED for nobody, PERMISSION_DENIED for a caller the
//! policy does not allow.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{body::Body, response::Response};

use super::{Decision, Policy};
use crate::identity::{PRINCIPAL_HEADER, PeerIdentity, Principal, PrincipalKind, SpiffeId};

/// What an agent server enforces: the policy, its own name in it, and who may forward
/// end-user principals.
#[derive(Debug, Clone, Default)]
pub struct AgentAuthz {
    /// The mesh's policy; empty: every call allowed.
    pub policy: Arc<Policy>,
    /// The SPIFFE IDs (usually the gateway's) whose [`PRINCIPAL_HEADER`] is trusted.
    pub forwarders: Vec<SpiffeId>,
}

impl AgentAuthz {
    /// The principal a request is for (see the module docs).
    pub fn principal<B>(&self, request: &http::Request<B>) -> Option<Principal> {
        let peer = request.extensions().get::<PeerIdentity>()?;
        if self.forwarders.contains(&peer.0)
            && let Some(forwarded) = request
                .headers()
                .get(PRINCIPAL_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(Principal::from_header)
        {
            return Some(forwarded);
        }
        Some(Principal {
            kind: PrincipalKind::Spiffe,
            name: peer.0.as_str().to_owned(),
            scopes: Vec::new(),
        })
    }
}

/// Paths every caller may use: health, reflection and the card.
fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
        || path == "/switchyard.v1.AgentService/GetAgentCard"
}

/// Enforces [`AgentAuthz`] for the agent `agent` (see the module docs).
#[derive(Debug, Clone)]
pub struct AuthzLayer {
    authz: Arc<AgentAuthz>,
    agent: Arc<str>,
}

impl AuthzLayer {
    /// The layer for the agent named `agent` in the policy.
    pub fn new(authz: Arc<AgentAuthz>, agent: &str) -> Self {
        Self {
            authz,
            agent: agent.into(),
        }
    }
}

impl<S> tower::Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            authz: self.authz.clone(),
            agent: self.agent.clone(),
        }
    }
}

/// The service of [`AuthzLayer`].
#[derive(Debug, Clone)]
pub struct Authz<S> {
    inner: S,
    authz: Arc<AgentAuthz>,
    agent: Arc<str>,
}

/// The future of [`Authz`].
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> tower::Service<http::Request<Body>> for Authz<S>
where
    S: tower::Service<http::Request<Body>, Response = Response, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> ResponseFuture {
        if !self.authz.policy.is_enabled() || is_open(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let principal = self.authz.principal(&request);
        let status = match self
            .authz
            .policy
            .check("agent", &self.agent, None, principal.as_ref())
        {
            Decision::Allow => return Box::pin(self.inner.call(request)),
            Decision::Deny(reason) => tonic::Status::permission_denied(reason),
            Decision::Unauthenticated => tonic::Status::unauthenticated(
                "this agent requires an mTLS peer identity (or a principal forwarded by a trusted gateway)",
            ),
        };
        Box::pin(std::future::ready(Ok(status.into_http())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tower::ServiceExt as _;

    use super::*;
    use crate::authz::AgentPolicyConfig;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).expect("valid")
    }

    fn layer() -> AuthzLayer {
        let mut agents = BTreeMap::new();
        agents.insert(
            "keywords".to_owned(),
            AgentPolicyConfig {
                allow: vec!["spiffe://td/agent/research".into(), "jwt:alice".into()],
                skills: BTreeMap::new(),
            },
        );
        AuthzLayer::new(
            Arc::new(AgentAuthz {
                policy: Arc::new(Policy::from_config(&agents).expect("valid")),
                forwarders: vec![id("spiffe://td/gateway")],
            }),
            "keywords",
        )
    }

    async fn code(peer: Option<&str>, forwarded: Option<&str>, path: &str) -> tonic::Code {
        let service = tower::Layer::layer(
            &layer(),
            tower::service_fn(|_: http::Request<Body>| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }),
        );
        let mut request = http::Request::builder().uri(path);
        if let Some(f) = forwarded {
            request = request.header(PRINCIPAL_HEADER, f);
        }
        let mut request = request.body(Body::empty()).expect("request");
        if let Some(p) = peer {
            request.extensions_mut().insert(PeerIdentity(id(p)));
        }
        let response = service.oneshot(request).await.expect("infallible");
        tonic::Status::from_header_map(response.headers()).map_or(tonic::Code::Ok, |s| s.code())
    }

    #[tokio::test]
    async fn the_runtime_decides_from_the_peer_and_trusted_forwarded_principals() {
        let send = "/lf.a2a.v1.A2AService/SendMessage";
        assert_eq!(code(None, None, send).await, tonic::Code::Unauthenticated);
        // A forwarded principal without a peer identity counts for nothing.
        assert_eq!(
            code(None, Some("jwt:alice"), send).await,
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(Some("spiffe://td/agent/research"), None, send).await,
            tonic::Code::Ok
        );
        assert_eq!(
            code(Some("spiffe://td/agent/other"), None, send).await,
            tonic::Code::PermissionDenied
        );
        // From the trusted gateway the end user decides.
        assert_eq!(
            code(Some("spiffe://td/gateway"), Some("jwt:alice"), send).await,
            tonic::Code::Ok
        );
        assert_eq!(
            code(Some("spiffe://td/gateway"), Some("jwt:bob"), send).await,
            tonic::Code::PermissionDenied
        );
        // An untrusted peer cannot claim to forward alice.
        assert_eq!(
            code(Some("spiffe://td/agent/other"), Some("jwt:alice"), send).await,
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            code(None, None, "/grpc.health.v1.Health/Check").await,
            tonic::Code::Ok
        );
    }
}
