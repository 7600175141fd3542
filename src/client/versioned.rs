//! The generated clients as [`Client`](super::Client) hands them out: every call names the A2A
//! version, as an agent refuses a call without one (A2A v1.0.1 §3.6.2: no version means 0.3).

use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
};

use super::Transport;
use crate::{
    card::PROTOCOL_VERSION,
    pb::{
        a2a::a2a_service_client::A2aServiceClient, agent::agent_service_client::AgentServiceClient,
    },
    service::A2A_VERSION,
};

/// Adds `a2a-version: 1.0` to a call that does not name a version itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Versioned;

impl Interceptor for Versioned {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let md = request.metadata_mut();
        if !md.contains_key(A2A_VERSION) {
            md.insert(A2A_VERSION, MetadataValue::from_static(PROTOCOL_VERSION));
        }
        Ok(request)
    }
}

/// The generated `A2AService` client over a [`Transport`], naming the A2A version on every call.
pub type A2aClient = A2aServiceClient<InterceptedService<Transport, Versioned>>;

/// The generated `AgentService` client over a [`Transport`], naming the A2A version on every call.
pub type AgentClient = AgentServiceClient<InterceptedService<Transport, Versioned>>;
