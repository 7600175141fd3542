//! The parallel fan-out: one streaming gRPC call per sub-agent, all polled concurrently in the
//! research task itself (so the trace context of the task reaches every call), with each
//! sub-agent's progress relayed as research progress while it happens.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::{StreamExt as _, stream::FuturesUnordered};
use switchyard::{
    AgentError, ClientError, Registry, TaskContext, TaskEvents,
    client::code_name,
    pb::a2a::{
        Artifact, Message, Part, SendMessageRequest, StreamResponse, Task, TaskState,
        stream_response,
    },
    task,
};

/// What became of one part of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The sub-agent completed; its artifacts.
    Done(Vec<Artifact>),
    /// The part is missing, and why.
    Missing(String),
}

impl Outcome {
    /// Whether the part is present.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Done(_))
    }

    /// Why the part is missing (empty when it is not).
    pub fn reason(&self) -> &str {
        match self {
            Self::Done(_) => "",
            Self::Missing(r) => r,
        }
    }
}

/// One sub-agent's contribution.
#[derive(Debug, Clone, PartialEq)]
pub struct PartResult {
    /// The sub-agent's name.
    pub agent: String,
    /// What it produced.
    pub outcome: Outcome,
    /// How long the call took.
    pub elapsed: Duration,
}

/// Progress shared by the concurrent calls: per-agent fraction done and sub-task ids.
struct Shared {
    fractions: Vec<f64>,
    tasks: Vec<Option<String>>,
}

/// Calls every agent of `names` in parallel with `document` (one text part, its media type
/// kept) and returns their results in `names` order.
///
/// # Errors
/// [`AgentError::Canceled`] when the research task is canceled (the sub-tasks are canceled
/// too); [`AgentError::Events`] when progress cannot be published.
pub(crate) async fn run(
    registry: &Registry,
    names: &[String],
    document: &Part,
    budget: Duration,
    ctx: &TaskContext,
    events: &TaskEvents,
) -> Result<Vec<PartResult>, AgentError> {
    let shared = &Mutex::new(Shared {
        fractions: vec![0.0; names.len()],
        tasks: vec![None; names.len()],
    });
    let mut calls: FuturesUnordered<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| async move {
            (
                i,
                call(registry, i, name, document, budget, events, shared).await,
            )
        })
        .collect();
    let mut results: Vec<Option<PartResult>> = vec![None; names.len()];
    let mut done = 0;
    loop {
        let next = tokio::select! {
            next = calls.next() => next,
            () = ctx.cancelled() => {
                drop(calls);
                cancel_subtasks(registry, names, shared).await;
                return Err(AgentError::Canceled);
            }
        };
        let Some((i, result)) = next else { break };
        done += 1;
        let note = match &result.outcome {
            Outcome::Done(_) => format!(
                "{} finished in {} ms",
                result.agent,
                result.elapsed.as_millis()
            ),
            Outcome::Missing(why) => format!("{} is missing: {why}", result.agent),
        };
        lock(shared).fractions[i] = 1.0;
        events
            .progress(overall(shared), format!("({done}/{}) {note}", names.len()))
            .await?;
        results[i] = Some(result);
    }
    Ok(results.into_iter().flatten().collect())
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn overall(shared: &Mutex<Shared>) -> f64 {
    let s = lock(shared);
    s.fractions.iter().sum::<f64>() / s.fractions.len().max(1) as f64
}

/// One sub-agent call: streams its events, relays its progress, folds its task.
async fn call(
    registry: &Registry,
    index: usize,
    name: &str,
    document: &Part,
    budget: Duration,
    events: &TaskEvents,
    shared: &Mutex<Shared>,
) -> PartResult {
    let start = Instant::now();
    let outcome = match registry.agent(name) {
        Err(_) => Outcome::Missing("not registered in the mesh".into()),
        Ok(agent) => {
            let client = agent.client().with_timeout(budget);
            let address = client.address().to_owned();
            let work = stream_task(&client, index, name, document, events, shared);
            // The sub-agent enforces the same deadline; this bounds a hung connection too.
            match tokio::time::timeout(budget + Duration::from_millis(100), work).await {
                Err(_) => Outcome::Missing(format!("timed out after {} ms", budget.as_millis())),
                Ok(Err(e)) => Outcome::Missing(explain(&e, &address, budget)),
                Ok(Ok(t)) if t.state() == TaskState::Completed => Outcome::Done(t.artifacts),
                Ok(Ok(t)) => Outcome::Missing(ended(&t, budget)),
            }
        }
    };
    PartResult {
        agent: name.to_owned(),
        outcome,
        elapsed: start.elapsed(),
    }
}

async fn stream_task(
    client: &switchyard::Client,
    index: usize,
    name: &str,
    document: &Part,
    events: &TaskEvents,
    shared: &Mutex<Shared>,
) -> Result<Task, ClientError> {
    let request = SendMessageRequest {
        message: Some(Message::user(vec![document.clone()])),
        ..Default::default()
    };
    let mut stream = client.send_streaming_message(request).await?;
    let mut snapshot = Task::default();
    while let Some(event) = stream.message().await? {
        task::apply(&mut snapshot, &event);
        if let Some(stream_response::Payload::Task(t)) = &event.payload {
            lock(shared).tasks[index] = Some(t.id.clone());
        }
        if let Some((fraction, note)) = progress_of(&event) {
            lock(shared).fractions[index] = fraction.min(0.99);
            // Relaying is best-effort: a refused progress event must not lose the part.
            let _ = events
                .progress(overall(shared), format!("{name}: {note}"))
                .await;
        }
    }
    Ok(snapshot)
}

/// The progress fraction and text of a sub-agent's WORKING update, if it reports one.
fn progress_of(event: &StreamResponse) -> Option<(f64, String)> {
    let Some(stream_response::Payload::StatusUpdate(u)) = &event.payload else {
        return None;
    };
    let status = u.status.as_ref()?;
    if status.state != TaskState::Working as i32 {
        return None;
    }
    let note = status.message.as_ref()?.text();
    let fraction = u
        .metadata
        .as_ref()
        .and_then(|m| m.fields.get(switchyard::PROGRESS_KEY))
        .map(task::value_to_json)
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    Some((fraction, note))
}

fn explain(e: &ClientError, address: &str, budget: Duration) -> String {
    match e.code() {
        tonic::Code::DeadlineExceeded => format!("timed out after {} ms", budget.as_millis()),
        tonic::Code::Unavailable => format!("unreachable at {address} ({e})"),
        code => format!(
            "{}: {}",
            code_name(code),
            e.status()
                .map_or_else(|| e.to_string(), |s| s.message().to_owned())
        ),
    }
}

fn ended(t: &Task, budget: Duration) -> String {
    let why = t
        .status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(Message::text)
        .unwrap_or_default();
    match t.state() {
        TaskState::Canceled if why.contains("deadline") => {
            format!("timed out after {} ms", budget.as_millis())
        }
        state => format!(
            "ended {}{}",
            state.as_str_name().trim_start_matches("TASK_STATE_"),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ),
    }
}

/// Cancels the sub-tasks that were started (best effort, a short deadline each).
async fn cancel_subtasks(registry: &Registry, names: &[String], shared: &Mutex<Shared>) {
    let tasks = lock(shared).tasks.clone();
    let cancels = names.iter().zip(tasks).filter_map(|(name, id)| {
        let client = registry
            .agent(name)
            .ok()?
            .client()
            .with_timeout(Duration::from_secs(2));
        let id = id?;
        Some(async move { client.cancel_task(&id).await })
    });
    futures::future::join_all(cancels).await;
}
