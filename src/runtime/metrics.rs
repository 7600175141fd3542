//! The runtime's metric handles (`switchyard_tasks_*`, `switchyard_store_*`,
//! `switchyard_sends_repeated_total`; names and labels in [`crate::telemetry::metrics`]),
//! registered with the recorder once per agent rather than looked up at every task and commit:
//! a `counter!` with an owned `agent` label allocates the label, builds the key and hashes it
//! into the recorder's registry each time, where a handle costs one atomic operation.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram, Label};

use crate::{pb::a2a::TaskState, telemetry::metrics as names};

/// Handles of one agent's runtime. Built after the recorder is installed
/// ([`crate::telemetry::metrics::install`], which serving does first); built before, every
/// handle records nothing.
#[derive(Debug)]
pub(crate) struct RuntimeMetrics {
    agent: Label,
    pub(crate) tasks_created: Counter,
    pub(crate) sends_repeated: Counter,
    pub(crate) tasks_live: Gauge,
    pub(crate) commit_duration: Histogram,
    pub(crate) committed_events: Counter,
    pub(crate) commit_failures: Counter,
    /// `switchyard_tasks_settled_total` by [`TaskState`] value, each registered at its first
    /// use.
    settled: [OnceLock<Counter>; 9],
}

impl RuntimeMetrics {
    pub(crate) fn new(agent: &str) -> Self {
        let agent = Label::new("agent", agent.to_owned());
        let one = || vec![agent.clone()];
        Self {
            tasks_created: metrics::counter!(names::TASKS_CREATED, one()),
            sends_repeated: metrics::counter!(names::SENDS_REPEATED, one()),
            tasks_live: metrics::gauge!(names::TASKS_LIVE, one()),
            commit_duration: metrics::histogram!(names::STORE_COMMIT_DURATION, one()),
            committed_events: metrics::counter!(names::STORE_COMMITTED_EVENTS, one()),
            commit_failures: metrics::counter!(names::STORE_COMMIT_FAILURES, one()),
            settled: std::array::from_fn(|_| OnceLock::new()),
            agent,
        }
    }

    /// The counter of tasks settled in `state`, labelled with the state's name in lower case
    /// without its prefix (`completed`, `input_required`).
    pub(crate) fn settled(&self, state: TaskState) -> &Counter {
        let slot = usize::try_from(state as i32)
            .ok()
            .filter(|s| *s < self.settled.len())
            .unwrap_or(0);
        self.settled[slot].get_or_init(|| {
            let name = state
                .as_str_name()
                .trim_start_matches("TASK_STATE_")
                .to_ascii_lowercase();
            metrics::counter!(
                names::TASKS_SETTLED,
                vec![self.agent.clone(), Label::new("state", name)]
            )
        })
    }
}
