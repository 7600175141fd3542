//! [`TaskEvents`]: how an agent reports progress, artifacts and the outcome of a task.

use std::sync::Arc;

use pbjson_types::Struct;

use crate::{
    pb::a2a::{
        Artifact, Message, Part, Role, StreamResponse, TaskArtifactUpdateEvent, TaskState,
        TaskStatus, TaskStatusUpdateEvent, stream_response,
    },
    runtime::{LiveTask, Origin, Runtime},
    store::StoreError,
    task::{json_to_value, new_id, now_timestamp},
};

/// Metadata key of the progress fraction (0.0 ..= 1.0) on WORKING status updates published with
/// [`TaskEvents::progress`].
pub const PROGRESS_KEY: &str = "switchyard.progress";

/// Largest checkpoint an execution may record ([`TaskEvents::checkpoint`]), in bytes: a
/// checkpoint says where to continue, not what was produced (that is in the events).
pub const MAX_CHECKPOINT_BYTES: usize = 1024 * 1024;

/// A checkpoint's JSON encoding.
fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, EventError> {
    serde_json::to_vec(value)
        .map_err(|e| EventError::Invalid(format!("the checkpoint does not serialize: {e}")))
}

/// Refuses an empty or oversized checkpoint.
pub(crate) fn check_checkpoint(data: &[u8]) -> Result<(), EventError> {
    if data.is_empty() {
        return Err(EventError::Invalid("a checkpoint cannot be empty".into()));
    }
    if data.len() > MAX_CHECKPOINT_BYTES {
        return Err(EventError::Invalid(format!(
            "a checkpoint of {} bytes is over the limit of {MAX_CHECKPOINT_BYTES} bytes",
            data.len()
        )));
    }
    Ok(())
}

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The task no longer accepts events from this execution: it reached `state` (e.g. it was
    /// canceled), or it waits for input, or the execution has ended.
    #[error("task no longer accepts events from this execution (state {state:?})")]
    TaskClosed {
        /// The task's state when the event was refused.
        state: TaskState,
    },
    /// The event breaks the A2A rules (e.g. an artifact without parts).
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The task store failed; the task cannot go on in this process.
    #[error(transparent)]
    Store(#[from] Arc<StoreError>),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The event would take the task past
    /// [`ServeConfig::max_task_bytes`](crate::ServeConfig::max_task_bytes): the stored task
    /// must always fit in one reply. The runtime then fails the task with a clear message.
    #[error("the event of {event_bytes} bytes would take the task past its limit of {limit} bytes")]
    TaskTooLarge {
        /// Encoded size of the refused event, in bytes.
        event_bytes: usize,
        /// The limit, in bytes.
        limit: usize,
    },
}

/// The publisher of one execution's task events.
///
/// Every event gets the task's next sequence number, is folded into the task, persisted (group
/// commit) and then delivered to every subscriber, in the order published. Publishing returns
/// once the event is accepted and ordered; [`flush`](Self::flush) waits until everything
/// published so far is durable. After the task is canceled, or once the execution has ended,
/// events are refused with [`EventError::TaskClosed`].
#[derive(Debug, Clone)]
pub struct TaskEvents {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) task: Arc<LiveTask>,
    pub(crate) execution: u64,
    /// Committed with each event this handle publishes ([`with_checkpoint`](Self::with_checkpoint)).
    pub(crate) checkpoint: Option<Vec<u8>>,
}

impl TaskEvents {
    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.task.id
    }

    /// The task's context id.
    pub fn context_id(&self) -> &str {
        &self.task.context_id
    }

    /// Publishes a raw event. Its task and context ids are filled in; a `task` or `message`
    /// payload is refused (the runtime owns the task snapshot).
    ///
    /// # Errors
    /// [`EventError`] when the task no longer accepts events, the event is invalid, or the
    /// store failed.
    pub async fn publish(&self, event: StreamResponse) -> Result<(), EventError> {
        self.runtime
            .publish(
                &self.task,
                event,
                Origin::Execution(self.execution),
                self.checkpoint.clone(),
            )
            .await
    }

    /// A publisher whose event carries checkpoint `data`: the event and the checkpoint commit
    /// together, in one transaction, so a client that received the event and a resumed
    /// execution that reads [`TaskContext::checkpoint`](crate::TaskContext::checkpoint) agree
    /// exactly on where the work stands — nothing is published twice or skipped (issue 13
    /// item 8). Publish one event through it, e.g.
    /// `events.with_checkpoint(json)?.artifact_chunk(chunk, true, false).await?`.
    ///
    /// # Errors
    /// [`EventError::Invalid`] for an empty checkpoint or one over [`MAX_CHECKPOINT_BYTES`].
    pub fn with_checkpoint(&self, data: impl Into<Vec<u8>>) -> Result<Self, EventError> {
        let data = data.into();
        check_checkpoint(&data)?;
        Ok(Self {
            checkpoint: Some(data),
            ..self.clone()
        })
    }

    /// [`with_checkpoint`](Self::with_checkpoint) of `value` as JSON.
    ///
    /// # Errors
    /// As [`with_checkpoint`](Self::with_checkpoint); [`EventError::Invalid`] when `value`
    /// does not serialize.
    pub fn with_checkpoint_json(&self, value: &impl serde::Serialize) -> Result<Self, EventError> {
        self.with_checkpoint(to_json(value)?)
    }

    /// Records how far the execution got (between events; to checkpoint an event's effect,
    /// publish it [`with_checkpoint`](Self::with_checkpoint) instead, which commits both at
    /// once), for a resumed execution to continue from
    /// ([`TaskContext::checkpoint`](crate::TaskContext::checkpoint)) instead of starting over
    /// and repeating events its clients already received (issue 13 item 8). It is persisted with
    /// the task, in the same commit as every event published before it; the next checkpoint
    /// replaces it, and a message that continues the task clears it. `data` is opaque to the
    /// runtime (at most [`MAX_CHECKPOINT_BYTES`],
    /// never empty).
    ///
    /// # Errors
    /// [`EventError::TaskClosed`] when this execution no longer runs the task;
    /// [`EventError::Invalid`] for an empty or oversized checkpoint;
    /// [`EventError::ShuttingDown`].
    pub fn checkpoint(&self, data: impl Into<Vec<u8>>) -> Result<(), EventError> {
        self.runtime
            .checkpoint(&self.task, self.execution, data.into())
    }

    /// [`checkpoint`](Self::checkpoint) of `value` as JSON.
    ///
    /// # Errors
    /// As [`checkpoint`](Self::checkpoint); [`EventError::Invalid`] when `value` does not
    /// serialize.
    pub fn checkpoint_json(&self, value: &impl serde::Serialize) -> Result<(), EventError> {
        self.checkpoint(to_json(value)?)
    }

    /// Publishes a status update with an optional agent message.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn status(
        &self,
        state: TaskState,
        message: Option<Message>,
    ) -> Result<(), EventError> {
        self.status_with(state, message, None).await
    }

    async fn status_with(
        &self,
        state: TaskState,
        message: Option<Message>,
        metadata: Option<Struct>,
    ) -> Result<(), EventError> {
        let message = message.map(|m| self.own(m));
        self.publish(StreamResponse {
            payload: Some(stream_response::Payload::StatusUpdate(
                TaskStatusUpdateEvent {
                    task_id: self.task.id.clone(),
                    context_id: self.task.context_id.clone(),
                    status: Some(TaskStatus {
                        state: state as i32,
                        message,
                        timestamp: Some(now_timestamp()),
                    }),
                    metadata,
                },
            )),
        })
        .await
    }

    /// A WORKING update with a text message from the agent.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn working(&self, text: impl Into<String>) -> Result<(), EventError> {
        self.status(TaskState::Working, Some(Message::agent_text(text)))
            .await
    }

    /// A WORKING update reporting progress: `fraction` (clamped to 0.0 ..= 1.0) goes into the
    /// event metadata under [`PROGRESS_KEY`], and the message reads `"<percent>% <text>"`.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn progress(&self, fraction: f64, text: impl AsRef<str>) -> Result<(), EventError> {
        let fraction = fraction.clamp(0.0, 1.0);
        let percent = (fraction * 100.0).round();
        let metadata = Struct {
            fields: [(PROGRESS_KEY.to_owned(), json_to_value(fraction.into()))].into(),
        };
        let text = format!("{percent}% {}", text.as_ref());
        self.status_with(
            TaskState::Working,
            Some(Message::agent_text(text.trim_end())),
            Some(metadata),
        )
        .await
    }

    /// Publishes a whole artifact (`append = false`, `last_chunk = true`).
    ///
    /// # Errors
    /// As [`publish`](Self::publish); [`EventError::Invalid`] for an artifact without id or
    /// parts.
    pub async fn artifact(&self, artifact: Artifact) -> Result<(), EventError> {
        self.artifact_chunk(artifact, false, true).await
    }

    /// Publishes one chunk of an artifact: the first chunk with `append = false`, later ones
    /// with `append = true` and the same `artifact_id`, the final one with `last_chunk = true`.
    ///
    /// # Errors
    /// As [`artifact`](Self::artifact).
    pub async fn artifact_chunk(
        &self,
        artifact: Artifact,
        append: bool,
        last_chunk: bool,
    ) -> Result<(), EventError> {
        self.publish(StreamResponse {
            payload: Some(stream_response::Payload::ArtifactUpdate(
                TaskArtifactUpdateEvent {
                    task_id: self.task.id.clone(),
                    context_id: self.task.context_id.clone(),
                    artifact: Some(artifact),
                    append,
                    last_chunk,
                    metadata: None,
                },
            )),
        })
        .await
    }

    /// Completes the task, with an optional final message.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn complete(&self, text: Option<&str>) -> Result<(), EventError> {
        self.status(TaskState::Completed, text.map(Message::agent_text))
            .await
    }

    /// Fails the task with a message saying why.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn fail(&self, text: impl Into<String>) -> Result<(), EventError> {
        self.status(TaskState::Failed, Some(Message::agent_text(text)))
            .await
    }

    /// Rejects the task with a message saying why.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn reject(&self, text: impl Into<String>) -> Result<(), EventError> {
        self.status(TaskState::Rejected, Some(Message::agent_text(text)))
            .await
    }

    /// Asks the client for input: the task becomes INPUT_REQUIRED and this execution's turn
    /// ends. The client's next message with this task id starts a new execution.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn input_required(&self, question: impl Into<String>) -> Result<(), EventError> {
        self.status(
            TaskState::InputRequired,
            Some(Message::agent_text(question)),
        )
        .await
    }

    /// Asks the client to authenticate: the task becomes AUTH_REQUIRED.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub async fn auth_required(&self, text: impl Into<String>) -> Result<(), EventError> {
        self.status(TaskState::AuthRequired, Some(Message::agent_text(text)))
            .await
    }

    /// An agent message in this task's context with the given parts.
    pub fn message(&self, parts: Vec<Part>) -> Message {
        self.own(Message {
            message_id: new_id(),
            role: Role::Agent as i32,
            parts,
            ..Default::default()
        })
    }

    /// Waits until every event published so far is durable.
    ///
    /// # Errors
    /// [`EventError::Store`] when a commit failed.
    pub async fn flush(&self) -> Result<(), EventError> {
        self.runtime.flush().await
    }

    fn own(&self, mut m: Message) -> Message {
        m.task_id.clone_from(&self.task.id);
        m.context_id.clone_from(&self.task.context_id);
        if m.role == Role::Unspecified as i32 {
            m.role = Role::Agent as i32;
        }
        m
    }
}
