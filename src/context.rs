//! [`TaskContext`]: what an agent knows about the task it is executing; [`MessageContext`]:
//! what it knows about a message it may answer without a task.

mod message;

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

pub use message::MessageContext;

use crate::{
    pb::a2a::{Message, Task},
    trace::TraceHeaders,
};

/// Everything an [`Agent`](crate::Agent) gets about one execution of a task: the message that
/// started or continued it, the task so far, the caller's metadata, the remaining deadline and
/// a cancellation token.
///
/// An execution starts when a message creates a task, when a message continues a task that
/// waits for input, or when the runtime resumes a task that a restart interrupted
/// ([`resumed`](Self::resumed)).
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub(crate) task: Task,
    pub(crate) message: Message,
    pub(crate) metadata: MetadataMap,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: CancellationToken,
    pub(crate) trace: TraceHeaders,
    pub(crate) accepted_output_modes: Vec<String>,
    pub(crate) resumed: bool,
    pub(crate) peer: Option<crate::identity::PeerIdentity>,
    pub(crate) checkpoint: Option<Vec<u8>>,
}

impl TaskContext {
    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task.id
    }

    /// The task's context id.
    pub fn context_id(&self) -> &str {
        &self.task.context_id
    }

    /// The message this execution answers (role USER, task and context ids filled in).
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The task as it was when the execution started; its history ends with
    /// [`message`](Self::message).
    pub fn task(&self) -> &Task {
        &self.task
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

    /// The caller's gRPC request metadata (for a resumed execution: empty).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The caller's workload identity: the SPIFFE ID of the client certificate it presented
    /// over mTLS, verified against the mesh CA ([`crate::tls`]). `None` on a plain-text
    /// server and for a [`resumed`](Self::resumed) execution (the runtime, not a caller, started it). The end user the call is for (forwarded by a gateway) is another
    /// matter: see [`crate::identity::Principal`].
    pub fn peer_identity(&self) -> Option<&crate::identity::PeerIdentity> {
        self.peer.as_ref()
    }

    /// Media types the caller accepts (`SendMessageConfiguration.accepted_output_modes`);
    /// empty means any.
    pub fn accepted_output_modes(&self) -> &[String] {
        &self.accepted_output_modes
    }

    /// When the caller's deadline expires, if it set one (`grpc-timeout`). At that instant the
    /// runtime cancels the task.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until [`deadline`](Self::deadline); `None` without a deadline, zero once it
    /// has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Fires when the task is canceled: by CancelTask, by the caller's deadline, or by the
    /// disconnect of a caller waiting on a unary call.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the task has been canceled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the task is canceled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Whether this execution resumes a task that a restart interrupted.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The last checkpoint the interrupted execution committed
    /// ([`TaskEvents::checkpoint`](crate::TaskEvents::checkpoint)), on a
    /// [`resumed`](Self::resumed) execution that made one; `None` otherwise (a new execution,
    /// or none was made: start from scratch). Every event published before the checkpoint was
    /// committed with it, so an agent that continues from it neither repeats nor skips
    /// anything its clients received.
    pub fn checkpoint(&self) -> Option<&[u8]> {
        self.checkpoint.as_deref()
    }

    /// [`checkpoint`](Self::checkpoint) decoded from JSON (as written by
    /// [`TaskEvents::checkpoint_json`](crate::TaskEvents::checkpoint_json)).
    ///
    /// # Errors
    /// The checkpoint is not JSON of type `T`.
    pub fn checkpoint_json<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<Option<T>, serde_json::Error> {
        self.checkpoint
            .as_deref()
            .map(serde_json::from_slice)
            .transpose()
    }

    /// The W3C trace context (`traceparent`, `tracestate`) the caller sent.
    pub fn trace_headers(&self) -> &TraceHeaders {
        &self.trace
    }
}
