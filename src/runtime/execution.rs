//! One execution of a task: runs [`Agent::execute`](crate::Agent::execute) under the task's
//! deadline and cancellation token, and turns its outcome into the task's state.

use std::{
    any::Any,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures::FutureExt as _;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::{
    CallInfo, CancelReason, Origin, Runtime, live::Execution, live::LiveTask, status_event,
};
use crate::{
    AgentError, TaskContext, TaskEvents,
    events::EventError,
    pb::a2a::{Message, Task, TaskState},
    telemetry::span_attributes,
    trace::INCOMING,
};

/// How an execution starts.
#[derive(Debug)]
pub(crate) struct Start {
    pub(crate) call: CallInfo,
    /// When the task is canceled for want of time (the deadline of the call waiting for it).
    pub(crate) deadline: Option<Instant>,
    pub(crate) accepted_output_modes: Vec<String>,
    pub(crate) resumed: bool,
    /// The task's last committed checkpoint, for a resumed execution.
    pub(crate) checkpoint: Option<Vec<u8>>,
    /// The execution's place under [`ServeConfig::max_concurrent_executions`], held until it
    /// ends.
    ///
    /// [`ServeConfig::max_concurrent_executions`]: crate::ServeConfig::max_concurrent_executions
    pub(crate) permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// An execution's future.
type ExecFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An execution run inline by the caller that waits for its task (a unary SendMessage),
/// instead of on a task of its own: no spawn, no wake-up across tasks, and the agent's events
/// usually reach the writer in the same batch as the task's creation.
///
/// Dropped before it finished (the task settled first, the caller went away, its deadline
/// expired), the rest of the execution is spawned, so an execution is never cut short. It
/// holds a token of the runtime's tracker, so a drain waits for it either way.
pub(crate) struct Inline(Option<ExecFuture>);

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Inline(running)"
        } else {
            "Inline(done)"
        })
    }
}

impl Future for Inline {
    type Output = ();

    /// Ready once `execute` returned and its outcome was accepted.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(fut) = self.0.as_mut() {
            if fut.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.0 = None;
        }
        Poll::Ready(())
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        if let Some(fut) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn(fut)),
                // No runtime: the process is shutting down; the task resumes on restart.
                Err(_) => tracing::warn!("an inline execution was dropped outside the runtime"),
            }
        }
    }
}

/// The execution as a future, instrumented, in the caller's trace context, and counted by the
/// runtime's tracker (drain waits for it) until it completes.
fn prepare(
    rt: Arc<Runtime>,
    live: Arc<LiveTask>,
    exec: Execution,
    snapshot: Task,
    message: Message,
    start: Start,
) -> ExecFuture {
    let span = tracing::info_span!(
        "a2a.execute",
        a2a.task.id = tracing::field::Empty,
        a2a.context.id = tracing::field::Empty,
        a2a.task.state = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    if span_attributes() {
        span.record("a2a.task.id", live.id.as_str());
        span.record("a2a.context.id", live.context_id.as_str());
    }
    let trace = start.call.trace.clone();
    let token = rt.tracker.token();
    let fut = INCOMING
        .scope(trace, run(rt, live, exec, snapshot, message, start))
        .instrument(span);
    Box::pin(async move {
        let _token = token;
        fut.await;
    })
}

/// Spawns the execution on a task of its own.
pub(crate) fn spawn(
    rt: Arc<Runtime>,
    live: Arc<LiveTask>,
    exec: Execution,
    snapshot: Task,
    message: Message,
    start: Start,
) {
    tokio::spawn(prepare(rt, live, exec, snapshot, message, start));
}

/// The execution, to run inline ([`Inline`]).
pub(crate) fn inline(
    rt: Arc<Runtime>,
    live: Arc<LiveTask>,
    exec: Execution,
    snapshot: Task,
    message: Message,
    start: Start,
) -> Inline {
    Inline(Some(prepare(rt, live, exec, snapshot, message, start)))
}

type Outcome = Option<Result<Result<(), AgentError>, Box<dyn Any + Send>>>;

async fn run(
    rt: Arc<Runtime>,
    live: Arc<LiveTask>,
    exec: Execution,
    snapshot: Task,
    message: Message,
    mut start: Start,
) {
    // Held until the execution ends: its place under the concurrency limit.
    let _permit = start.permit.take();
    if live.lock().pending == TaskState::Submitted {
        // Not awaited: ordered before every event of the agent all the same.
        let _ = rt.accept(
            &live,
            status_event(&live, TaskState::Working, None),
            Origin::Runtime,
            false,
            None,
        );
    }
    let ctx = TaskContext {
        task: snapshot,
        message,
        metadata: start.call.metadata,
        deadline: start.deadline,
        cancel: exec.cancel.clone(),
        trace: start.call.trace,
        accepted_output_modes: start.accepted_output_modes,
        resumed: start.resumed,
        peer: start.call.peer,
        checkpoint: start.checkpoint.take(),
    };
    let events = TaskEvents {
        runtime: rt.clone(),
        task: live.clone(),
        execution: exec.id,
        checkpoint: None,
    };
    let fut = AssertUnwindSafe(rt.agent().execute(ctx, events)).catch_unwind();
    tokio::pin!(fut);
    let grace = rt.config.cancel_grace;
    let outcome: Outcome = tokio::select! {
        biased;
        r = &mut fut => Some(r),
        () = exec.cancel.cancelled() => tokio::time::timeout(grace, &mut fut).await.ok(),
        () = sleep_until(start.deadline) => {
            let _ = rt.cancel_live(&live, CancelReason::Deadline).await;
            tokio::time::timeout(grace, &mut fut).await.ok()
        }
    };
    finish(&rt, &live, exec.id, outcome);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Applies the outcome of `execute` to the task (see [`Agent`](crate::Agent)).
fn finish(rt: &Runtime, live: &Arc<LiveTask>, exec_id: u64, outcome: Outcome) {
    let (state, text) = match outcome {
        Some(Ok(Ok(()))) => (Some(TaskState::Completed), None),
        Some(Ok(Err(AgentError::Failed(m)))) => (Some(TaskState::Failed), Some(m)),
        Some(Ok(Err(AgentError::Rejected(m)))) => (Some(TaskState::Rejected), Some(m)),
        Some(Ok(Err(AgentError::Canceled))) => (
            Some(TaskState::Canceled),
            Some("Task canceled by the agent.".to_owned()),
        ),
        Some(Ok(Err(AgentError::Events(EventError::TaskClosed { .. })))) => (None, None),
        Some(Ok(Err(AgentError::Events(e @ EventError::TaskTooLarge { .. })))) => {
            tracing::warn!(task.id = %live.id, error = %e, "task output too large");
            (
                Some(TaskState::Failed),
                Some(format!("The agent's output is too large: {e}.")),
            )
        }
        Some(Ok(Err(e @ (AgentError::Events(_) | AgentError::Internal(_))))) => {
            tracing::error!(task.id = %live.id, error = %e, "agent failed");
            (
                Some(TaskState::Failed),
                Some("The agent failed with an internal error.".to_owned()),
            )
        }
        Some(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(task.id = %live.id, panic = %what, "agent panicked");
            (
                Some(TaskState::Failed),
                Some("The agent failed with an internal error.".to_owned()),
            )
        }
        None => {
            tracing::warn!(
                task.id = %live.id,
                "agent ignored cancellation for the grace period; it is no longer polled"
            );
            (None, None)
        }
    };
    let mut st = live.lock();
    if !st.is_current(exec_id) {
        return;
    }
    if let Some(state) = state
        && !st.pending.settles()
    {
        let event = status_event(live, state, text.as_deref());
        if let Err(e) = rt.accept_locked(live, &mut st, event, Origin::Runtime, false, None) {
            tracing::warn!(task.id = %live.id, error = %e, "could not record the task's outcome");
        }
    }
    if span_attributes() {
        let span = tracing::Span::current();
        span.record("a2a.task.state", st.pending.as_str_name());
        if matches!(st.pending, TaskState::Failed | TaskState::Rejected) {
            span.record("otel.status_code", "error");
            if let Some(text) = &text {
                span.record("otel.status_description", text.as_str());
            }
        }
    }
    st.execution = None;
}
