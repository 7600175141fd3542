//! One execution of a task: runs [`Agent::execute`](crate::Agent::execute) under the task's
//! deadline and cancellation token, and turns its outcome into the task's state.

use std::{any::Any, panic::AssertUnwindSafe, sync::Arc};

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

/// Spawns the execution on the runtime's tracker (drain waits for it).
pub(crate) fn spawn(
    rt: Arc<Runtime>,
    live: Arc<LiveTask>,
    exec: Execution,
    snapshot: Task,
    message: Message,
    start: Start,
) {
    let span = tracing::info_span!(
        "a2a.execute",
        otel.name = "a2a.execute",
        a2a.task.id = %live.id,
        a2a.context.id = %live.context_id,
        a2a.task.state = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let trace = start.call.trace.clone();
    let tracker = rt.tracker.clone();
    tracker.spawn(
        INCOMING
            .scope(trace, run(rt, live, exec, snapshot, message, start))
            .instrument(span),
    );
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
    let span = tracing::Span::current();
    span.record("a2a.task.state", st.pending.as_str_name());
    if matches!(st.pending, TaskState::Failed | TaskState::Rejected) {
        span.record("otel.status_code", "error");
        if let Some(text) = &text {
            span.record("otel.status_description", text.as_str());
        }
    }
    st.execution = None;
}
