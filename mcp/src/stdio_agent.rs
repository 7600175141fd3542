//! [`StdioAgent`]: a local process served as a mesh agent over newline-delimited JSON-RPC 2.0
//! with A2A method names and types (A2A v1.0 JSON-RPC binding, one line per message).
//!
//! For each execution of a task the mesh writes one request
//! `{"jsonrpc":"2.0","id":N,"method":"SendStreamingMessage","params":{"message":{…}}}` (the
//! protobuf-JSON `SendMessageRequest`; the message carries `taskId` and `contextId`). The
//! process answers with any number of lines `{"jsonrpc":"2.0","id":N,"result":<StreamResponse>}`
//! — `statusUpdate` and `artifactUpdate` events, exactly as in A2A's SSE binding — and the
//! execution ends with the first status in a terminal or interrupted state (COMPLETED, FAILED,
//! REJECTED, CANCELED, INPUT_REQUIRED, AUTH_REQUIRED). A `{"message": …}` result answers
//! with that message's parts as an artifact and completes the task; an `error` result fails it
//! with the error's message. When the task is canceled the mesh writes the notification
//! `{"jsonrpc":"2.0","method":"CancelTask","params":{"id":"<task id>"}}`.
//!
//! Requests may overlap (one per running task); a process that handles one line at a time is
//! fine. The process is supervised by [`Process`]: restarted with backoff, its stderr in the
//! logs; a line that is not JSON-RPC, or a result that is not a StreamResponse, fails the task
//! with a message saying so.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents,
    pb::a2a::{AgentCard, Artifact, StreamResponse, TaskState, stream_response},
};

use crate::process::{Answer, Gone, Process};

/// How long an execution waits for a (re)starting process before it fails.
const START_WAIT: Duration = Duration::from_secs(15);

/// A local process as a mesh agent (see the module docs).
#[derive(Debug)]
pub struct StdioAgent {
    card: AgentCard,
    process: Process,
}

impl StdioAgent {
    /// An agent described by `card` whose work is done by `process`.
    pub fn new(card: AgentCard, process: Process) -> Self {
        Self { card, process }
    }

    /// The supervised process (to stop it on drain).
    pub fn process(&self) -> &Process {
        &self.process
    }
}

fn failed(why: impl std::fmt::Display) -> AgentError {
    AgentError::failed(why.to_string())
}

#[tonic::async_trait]
impl Agent for StdioAgent {
    fn card(&self) -> AgentCard {
        self.card.clone()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let message = serde_json::to_value(ctx.message()).map_err(AgentError::internal)?;
        let mut call = self
            .process
            .call(
                "SendStreamingMessage",
                json!({ "message": message }),
                START_WAIT,
            )
            .await
            .map_err(failed)?;
        loop {
            let reply = tokio::select! {
                r = call.replies.recv() => r,
                () = ctx.cancelled() => {
                    self.process
                        .notify("CancelTask", json!({ "id": ctx.task_id() }))
                        .await;
                    return Err(AgentError::Canceled);
                }
            };
            let result = match reply {
                Some(Ok(Answer::Result(v))) => v,
                Some(Ok(Answer::Error(e))) => {
                    let text = e
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| e.to_string(), str::to_owned);
                    return Err(failed(format!(
                        "the agent process answered an error: {text}"
                    )));
                }
                Some(Err(gone)) => return Err(failed(gone)),
                None => return Err(failed(Gone::Exited("no more answers".into()))),
            };
            let event: StreamResponse = serde_json::from_value(result.clone()).map_err(|e| {
                let text: String = result.to_string().chars().take(200).collect();
                failed(format!(
                    "the agent process sent a result that is not an A2A StreamResponse ({e}): {text}"
                ))
            })?;
            match event.payload {
                Some(stream_response::Payload::Message(m)) => {
                    if m.parts.is_empty() {
                        return Err(failed("the agent process answered a message without parts"));
                    }
                    events.artifact(Artifact::new("reply", m.parts)).await?;
                    return Ok(());
                }
                Some(stream_response::Payload::StatusUpdate(ref u)) => {
                    let state = u
                        .status
                        .as_ref()
                        .and_then(|s| TaskState::try_from(s.state).ok())
                        .unwrap_or_default();
                    if state == TaskState::Unspecified || state == TaskState::Submitted {
                        continue;
                    }
                    events.publish(event).await?;
                    if state.is_terminal() || state.is_interrupted() {
                        return Ok(());
                    }
                }
                Some(stream_response::Payload::ArtifactUpdate(u)) => {
                    let Some(artifact) = u.artifact else {
                        return Err(failed(
                            "the agent process sent an artifactUpdate without artifact",
                        ));
                    };
                    events
                        .artifact_chunk(artifact, u.append, u.last_chunk)
                        .await?;
                }
                // A task snapshot adds nothing: the runtime owns the task.
                Some(stream_response::Payload::Task(_)) => {}
                None => {
                    return Err(failed(
                        "the agent process sent an empty StreamResponse (no task, message, statusUpdate or artifactUpdate)",
                    ));
                }
            }
        }
    }
}
