//! Task retention: which finished tasks the store keeps ([`Retention`]), and the background
//! sweeper that deletes the rest.
//!
//! Only terminal tasks (COMPLETED, FAILED, CANCELED, REJECTED) are ever deleted, with their
//! events and push-notification configs; SUBMITTED, WORKING and interrupted tasks
//! (INPUT_REQUIRED, AUTH_REQUIRED) are kept whatever their age. A task that settled less than
//! [`SWEEP_GRACE`] ago is kept too, so a subscriber still reading a just-finished task's last
//! events is unaffected. A swept task is gone: GetTask answers TASK_NOT_FOUND.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::TaskStore;
use crate::task::timestamp_micros;

/// Tasks that settled this recently are never swept.
pub const SWEEP_GRACE: Duration = Duration::from_secs(60);

/// How long an agent keeps its finished tasks ([`ServeConfig::retention`]).
///
/// [`ServeConfig::retention`]: crate::ServeConfig::retention
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Terminal tasks whose status timestamp is older than this are deleted. `None`: no age
    /// limit. Default 30 days.
    pub max_age: Option<Duration>,
    /// At most this many terminal tasks are kept, the most recently settled; older ones are
    /// deleted. `None`: no count limit. Default 100,000.
    pub max_terminal_tasks: Option<u64>,
    /// Interval of the sweeper, which also runs once when the server starts. Default 60 s.
    pub sweep_interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            max_terminal_tasks: Some(100_000),
            sweep_interval: Duration::from_secs(60),
        }
    }
}

impl Retention {
    /// Keeps every task (no sweeper).
    pub fn keep_all() -> Self {
        Self {
            max_age: None,
            max_terminal_tasks: None,
            ..Self::default()
        }
    }

    /// Whether this retention deletes anything.
    pub fn is_enabled(&self) -> bool {
        self.max_age.is_some() || self.max_terminal_tasks.is_some()
    }

    /// The rule of one sweep at `now_micros` (µs since the epoch).
    pub fn rule(&self, now_micros: i64) -> SweepRule {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        SweepRule {
            older_than_micros: self.max_age.map(|a| now_micros.saturating_sub(micros(a))),
            keep_newest: self.max_terminal_tasks,
            settled_before_micros: now_micros.saturating_sub(micros(SWEEP_GRACE)),
        }
    }
}

/// What one [`TaskStore::sweep`] deletes: terminal tasks settled before
/// `settled_before_micros` that are older than `older_than_micros` or beyond the
/// `keep_newest` most recent terminal tasks. Times are status timestamps, µs since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepRule {
    /// Delete terminal tasks whose status timestamp is before this.
    pub older_than_micros: Option<i64>,
    /// Keep this many terminal tasks (the newest status timestamps); delete the others.
    pub keep_newest: Option<u64>,
    /// Never delete a task whose status timestamp is at or after this.
    pub settled_before_micros: i64,
}

/// Sweeps `store` by `retention` every `sweep_interval` until `stop` (the server sweeps once
/// at start, before it serves), counting deleted tasks in `switchyard_tasks_swept_total`.
pub(crate) async fn sweeper(
    store: Arc<dyn TaskStore>,
    retention: Retention,
    agent: Arc<str>,
    stop: CancellationToken,
) {
    let period = retention.sweep_interval.max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        sweep_once(&*store, &retention, &agent).await;
    }
}

/// One sweep; failures are logged and retried at the next tick.
pub(crate) async fn sweep_once(store: &dyn TaskStore, retention: &Retention, agent: &str) -> u64 {
    let now = timestamp_micros(&crate::task::now_timestamp());
    match store.sweep(&retention.rule(now)).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(agent, swept = n, "retention: deleted finished tasks");
            }
            ::metrics::counter!(
                crate::telemetry::metrics::TASKS_SWEPT,
                "agent" => agent.to_owned()
            )
            .increment(n);
            n
        }
        Err(e) => {
            tracing::warn!(agent, error = %e, "retention sweep failed");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_is_relative_to_now_and_keeps_the_grace_period() {
        let r = Retention {
            max_age: Some(Duration::from_secs(10)),
            max_terminal_tasks: Some(3),
            sweep_interval: Duration::from_secs(1),
        };
        let rule = r.rule(100_000_000);
        assert_eq!(rule.older_than_micros, Some(90_000_000));
        assert_eq!(rule.keep_newest, Some(3));
        assert_eq!(rule.settled_before_micros, 40_000_000);
        assert!(!Retention::keep_all().is_enabled());
        assert!(Retention::default().is_enabled());
    }
}
