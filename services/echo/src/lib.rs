//! The `echo` agent: answers every message with an artifact holding the same parts (text,
//! files, data, URLs), over every RPC kind of the runtime.
//!
//! Deterministic behaviours for tests are chosen by keys of the message's metadata
//! (`Message.metadata`), applied in this order:
//!
//! | key | value | behaviour |
//! |---|---|---|
//! | `reply` | `"message"` | answers with a message holding the same parts instead of a task ([`Agent::reply`]: nothing is stored; SendMessage returns `{"message": …}`, a stream one message event); other keys are ignored |
//! | `panic` | `true` | panics (the task FAILS with a generic message) |
//! | `reject` | text | rejects the task (REJECTED) with that text |
//! | `fail` | text | fails the task (FAILED) with that text |
//! | `ask` | text | asks for input (INPUT_REQUIRED) with that question; the next message to the task is echoed |
//! | `auth` | text | asks for authentication (AUTH_REQUIRED) |
//! | `delay_ms` | number | waits that long first (stops early when canceled) |
//! | `chunks` | number N | streams N artifact chunks `"1/N"` … `"N/N"` (one artifact, `append`), each after a WORKING progress update, each committed with a checkpoint (`{"chunksDone": i}`): a task resumed after a restart continues after the last committed chunk instead of repeating chunks |
//! | `chunk_delay_ms` | number | waits that long before each chunk |
//! | `ignore_cancel` | `true` | ignores cancellation: keeps waiting and publishing |
//! | `report_deadline` | `true` | adds a data part `{"remaining_ms": N}` (the caller's deadline as the agent saw it; `null` without one) |
#![warn(missing_docs)]

use std::time::Duration;

use serde_json::Value;
use switchyard::{
    Agent, AgentError, MessageContext, TaskContext, TaskEvents,
    card::{self, skill},
    pb::a2a::{AgentCard, Artifact, Message, Part},
};

/// The echo agent.
#[derive(Debug, Clone, Default)]
pub struct Echo;

impl Echo {
    /// Waits `ms`, returning early (false) when the task is canceled, unless cancellation is
    /// ignored.
    async fn wait(ctx: &TaskContext, ms: u64, ignore_cancel: bool) -> bool {
        let sleep = tokio::time::sleep(Duration::from_millis(ms));
        if ignore_cancel {
            sleep.await;
            return true;
        }
        tokio::select! {
            () = sleep => true,
            () = ctx.cancelled() => false,
        }
    }
}

/// The checkpoint's field (`{"chunksDone": n}`): chunks published and committed.
const CHUNKS_DONE: &str = "chunksDone";

fn number(ctx: &TaskContext, key: &str) -> Option<u64> {
    ctx.message_metadata(key).and_then(|v| v.as_u64())
}

fn text(ctx: &TaskContext, key: &str) -> Option<String> {
    match ctx.message_metadata(key)? {
        Value::String(s) => Some(s),
        Value::Bool(true) => Some(key.to_owned()),
        _ => None,
    }
}

#[tonic::async_trait]
impl Agent for Echo {
    fn card(&self) -> AgentCard {
        card::builder(
            "echo",
            "Echoes every message back as an artifact with the same parts. Message metadata \
             selects test behaviours: reply=message (a message instead of a task), delay_ms, \
             chunks, chunk_delay_ms, fail, reject, ask, auth, ignore_cancel, panic.",
        )
        .input_modes(["text/plain", "application/json", "application/octet-stream"])
        .output_modes(["text/plain", "application/json", "application/octet-stream"])
        .skill(skill(
            "echo",
            "Echo",
            "Returns the message's parts unchanged as an artifact named \"echo\".",
            ["echo", "test"],
            ["hello", "{\"any\": \"json\"}"],
        ))
        .skill(skill(
            "stream",
            "Chunked stream",
            "With metadata {\"chunks\": N}, streams N artifact chunks with progress updates.",
            ["streaming", "test"],
            ["hello (metadata: {\"chunks\": 5, \"chunk_delay_ms\": 100})"],
        ))
        .build()
    }

    async fn reply(&self, ctx: &MessageContext) -> Option<Message> {
        let wanted = ctx.message_metadata("reply") == Some(Value::String("message".into()));
        wanted.then(|| ctx.agent_message(ctx.message().parts.clone()))
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let ignore_cancel = ctx.message_metadata("ignore_cancel") == Some(Value::Bool(true));
        if ctx.message_metadata("panic") == Some(Value::Bool(true)) {
            panic!("echo was asked to panic");
        }
        if let Some(why) = text(&ctx, "reject") {
            return Err(AgentError::rejected(why));
        }
        if let Some(why) = text(&ctx, "fail") {
            return Err(AgentError::failed(why));
        }
        if let Some(question) = text(&ctx, "ask") {
            events.input_required(question).await?;
            return Ok(());
        }
        if let Some(why) = text(&ctx, "auth") {
            events.auth_required(why).await?;
            return Ok(());
        }
        if let Some(ms) = number(&ctx, "delay_ms")
            && !Self::wait(&ctx, ms, ignore_cancel).await
        {
            return Err(AgentError::Canceled);
        }
        if let Some(n) = number(&ctx, "chunks") {
            let pause = number(&ctx, "chunk_delay_ms").unwrap_or(0);
            let id = format!("{}-chunks", ctx.task_id());
            // A resumed execution continues after the last chunk the interrupted one
            // committed, so no client sees a chunk twice (issue 13 item 8).
            let done = ctx
                .checkpoint_json::<Value>()
                .ok()
                .flatten()
                .and_then(|c| c.get(CHUNKS_DONE).and_then(Value::as_u64))
                .unwrap_or(0);
            for i in done + 1..=n {
                if pause > 0 && !Self::wait(&ctx, pause, ignore_cancel).await {
                    return Err(AgentError::Canceled);
                }
                let r = events
                    .progress(i as f64 / n as f64, format!("chunk {i} of {n}"))
                    .await;
                if let Err(e) = r {
                    if ignore_cancel {
                        continue;
                    }
                    return Err(e.into());
                }
                let chunk = Artifact {
                    artifact_id: id.clone(),
                    name: "chunks".into(),
                    parts: vec![Part::text(format!("{i}/{n}"))],
                    ..Default::default()
                };
                // The chunk and the checkpoint saying it was sent commit together.
                let done = serde_json::json!({ CHUNKS_DONE: i });
                let with = events.with_checkpoint_json(&done)?;
                if let Err(e) = with.artifact_chunk(chunk, i > 1, i == n).await
                    && !ignore_cancel
                {
                    return Err(e.into());
                }
            }
        }
        let mut parts = ctx.message().parts.clone();
        if ctx.message_metadata("report_deadline") == Some(Value::Bool(true)) {
            let remaining = ctx.remaining().map(|d| d.as_millis() as u64);
            parts.push(Part::data(serde_json::json!({ "remaining_ms": remaining })));
        }
        let mut echo = Artifact::new("echo", parts);
        echo.description = "The parts of the message, unchanged.".into();
        events.artifact(echo).await?;
        Ok(())
    }
}
