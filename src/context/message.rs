//! [`MessageContext`]: what an agent knows about a message it may answer directly.

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use crate::{
    pb::a2a::{Message, Part, Role},
    task::new_id,
    trace::TraceHeaders,
};

/// Everything [`Agent::reply`](crate::Agent::reply) gets about a message that names no task:
/// the message (its `context_id` filled in), the caller's metadata, its deadline and trace
/// context.
///
/// There is no task and no cancellation token: when the caller goes away or its deadline
/// passes, the runtime stops polling the reply (the call fails with DEADLINE_EXCEEDED).
#[derive(Debug, Clone)]
pub struct MessageContext {
    pub(crate) message: Message,
    pub(crate) metadata: MetadataMap,
    pub(crate) deadline: Option<Instant>,
    pub(crate) trace: TraceHeaders,
    pub(crate) accepted_output_modes: Vec<String>,
    pub(crate) peer: Option<crate::identity::PeerIdentity>,
}

impl MessageContext {
    /// The context id: the message's, or a fresh one when the caller sent none. A reply
    /// carries it.
    pub fn context_id(&self) -> &str {
        &self.message.context_id
    }

    /// The message to answer (role USER, `context_id` filled in, `task_id` empty).
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The text parts of [`message`](Self::message), joined by newlines.
    pub fn text(&self) -> String {
        self.message.text()
    }

    /// A value of the message's metadata (`Message.metadata`) as JSON.
    pub fn message_metadata(&self, key: &str) -> Option<serde_json::Value> {
        let m = self.message.metadata.as_ref()?;
        m.fields.get(key).map(crate::task::value_to_json)
    }

    /// The caller's workload identity: the SPIFFE ID of the client certificate it presented
    /// over mTLS, verified against the mesh CA ([`crate::tls`]). `None` on a plain-text
    /// server. The end user the call is for (forwarded by a gateway) is another
    /// matter: see [`crate::identity::Principal`].
    pub fn peer_identity(&self) -> Option<&crate::identity::PeerIdentity> {
        self.peer.as_ref()
    }

    /// The caller's gRPC request metadata.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// Media types the caller accepts (`SendMessageConfiguration.accepted_output_modes`);
    /// empty means any.
    pub fn accepted_output_modes(&self) -> &[String] {
        &self.accepted_output_modes
    }

    /// When the caller's deadline expires, if it set one (`grpc-timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until [`deadline`](Self::deadline); `None` without a deadline, zero once it
    /// has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The W3C trace context (`traceparent`, `tracestate`) the caller sent.
    pub fn trace_headers(&self) -> &TraceHeaders {
        &self.trace
    }

    /// An agent message in this context with the given parts and a fresh `message_id`: the
    /// usual reply.
    pub fn agent_message(&self, parts: Vec<Part>) -> Message {
        Message {
            message_id: new_id(),
            context_id: self.message.context_id.clone(),
            role: Role::Agent as i32,
            parts,
            ..Default::default()
        }
    }
}
