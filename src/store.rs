//! Task storage: the [`TaskStore`] trait, the embedded durable default [`SqliteStore`], the
//! volatile [`MemoryStore`] and, with the `postgres` feature, the [`PostgresStore`] that several
//! replicas of one agent share.
//!
//! The runtime owns the write path: it assigns every event its per-task sequence number, folds
//! it into the task snapshot and hands whole batches to [`TaskStore::commit`] (group commit).
//! Events become visible to subscribers only after the batch that holds them has committed, so
//! nothing a client has seen can be lost by a restart at the store's [`Durability`] level.

use std::{fmt, sync::Arc, time::Duration};

use crate::pb::a2a::{StreamResponse, Task, TaskPushNotificationConfig, TaskState};

#[cfg(test)]
mod conformance;
mod dsn;
mod event_batch;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub mod retention;
#[cfg(test)]
pub(crate) mod spy;
mod sqlite;

pub use dsn::{DatabaseUrl, is_postgres_url};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore, schema_for_agent};
pub use retention::{Retention, SweepRule};
pub use sqlite::SqliteStore;

/// The error of a [`TaskWrite::head_only`] write whose task is not stored, or that creates it:
/// a head cannot stand for a task.
fn head_of_unknown_task(id: &str) -> StoreError {
    StoreError::Backend(
        format!(
            "a head-only write of task {id:?}, which is not stored: the first write of a task \
             must be whole"
        )
        .into(),
    )
}

/// A task stored as a snapshot as of `snapshot_seq` and its events after it: the task as of
/// `last_seq`, with events `snapshot_seq + 1 ..= last_seq` (in order) folded in
/// ([`TaskWrite::head_only`]).
///
/// # Errors
/// [`StoreError::Backend`] when `events` are not exactly those: the store lost some (a task
/// is only swept once terminal, and a terminal task's snapshot is whole, so this is a damaged
/// store, not a race).
fn fold(
    mut task: Task,
    snapshot_seq: u64,
    last_seq: u64,
    events: &[StoredEvent],
) -> Result<Task, StoreError> {
    let complete = events.len() as u64 == last_seq.saturating_sub(snapshot_seq)
        && events
            .iter()
            .zip(snapshot_seq + 1..)
            .all(|(e, seq)| e.seq == seq);
    if !complete {
        return Err(StoreError::Backend(
            format!(
                "task {:?}: the store holds its snapshot as of event {snapshot_seq} but not every \
                 event up to {last_seq} ({} found)",
                task.id,
                events.len()
            )
            .into(),
        ));
    }
    for e in events {
        crate::task::apply(&mut task, &e.event);
    }
    Ok(task)
}

/// One task's share of a group commit: its events, and its new snapshot or only its head.
///
/// Events are an append-only log; the whole snapshot is written when it must be readable as
/// one row (the write that creates the task, one that settles it, interrupts it or changes its
/// history) and otherwise only once the events since the stored snapshot outweigh it, so that
/// a task streaming many events does not rewrite its growing snapshot at every group commit
/// (issue 15). Between two whole writes the store keeps the last whole snapshot and the
/// events after it, and folds them in when the task is read ([`TaskStore::task`],
/// [`TaskStore::list`], [`TaskStore::unfinished`] always return the task as of `last_seq`).
#[derive(Clone, Debug)]
pub struct TaskWrite {
    /// The task after every event of `events` (and any history change) was applied; when
    /// [`head_only`](Self::head_only), only its head: `id`, `context_id` and `status` (the
    /// state and timestamp the store indexes), nothing else. Shared: the runtime writes a
    /// running task's whole snapshot from its live one without copying it (a streaming task's
    /// snapshot holds every progress message and artifact chunk so far).
    pub snapshot: Arc<Task>,
    /// `false`: `snapshot` is the whole task and replaces the stored one. `true`: the stored
    /// snapshot stays, only the task's state, status timestamp and `last_seq` change; the
    /// task must exist (a creating write is always whole).
    pub head_only: bool,
    /// Sequence number of the last event folded into `snapshot`.
    pub last_seq: u64,
    /// New events, in sequence order (possibly none, e.g. for a history-only change).
    pub events: Vec<StoredEvent>,
    /// The writer's [`Lease::epoch`] of this task, for fencing: a store that keeps leases
    /// refuses the whole batch with [`StoreError::Fenced`] when the task's current lease epoch
    /// is another one (the task was taken over). `None`: not fenced (single-process stores,
    /// tools and tests).
    pub epoch: Option<u64>,
    /// Messages this write accepts into the task (the user message that creates it, or a
    /// continuation's), recorded in the same transaction so that a repeated `messageId` finds
    /// this task ([`TaskStore::task_for_message`]). A key already recorded keeps its first
    /// task.
    pub messages: Vec<MessageKey>,
    /// The running execution's checkpoint as of the last event of `events` (issue 13 item 8,
    /// [`TaskEvents::checkpoint`](crate::TaskEvents::checkpoint)), written in the same
    /// transaction: `None` leaves the stored one as it is, `Some(empty)` deletes it (a new
    /// execution starts from scratch), `Some(bytes)` replaces it. A resumed execution gets it
    /// back from [`TaskStore::checkpoint`].
    pub checkpoint: Option<Vec<u8>>,
    /// Set on the write that creates the task on a store shared by replicas (its first
    /// commit): the task must be new, and its lease is taken in this same transaction instead
    /// of a round trip of its own before it ([`TaskStore::acquire_lease`]). `epoch` is then
    /// `Some(1)`, the epoch the creation grants, and fencing is this check instead of the
    /// lease read: a store that keeps leases refuses the whole batch with
    /// [`StoreError::Fenced`] (epoch 1) when the task already exists, or, for
    /// [`NewTask::Leased`], when it already has a lease row (held, expired or released). A
    /// store without leases (SQLite) ignores it. `None`: an ordinary write.
    pub creates: Option<NewTask>,
}

/// How a write creates its task on a shared store ([`TaskWrite::creates`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewTask {
    /// The task goes on after this commit: the commit writes its lease, held by `owner` with
    /// epoch 1, no takeover, expiring `ttl` after the store's clock at the commit (what
    /// [`TaskStore::acquire_lease`] would grant for a task without a lease).
    Leased {
        /// The replica that runs the task (`ServeConfig`'s replica id).
        owner: String,
        /// Lease duration.
        ttl: Duration,
    },
    /// The task settles (terminal) in this same write: nobody needs to own it, so no lease
    /// is written and none has to be released afterwards; a terminal task is never orphaned.
    Settled,
}

/// What identifies a message an agent accepted, for idempotent `SendMessage` (issue 13 item 4;
/// A2A: `messageId` identifies a message): the `contextId` the client sent with it (empty when
/// it sent none: then the message id alone identifies it within the agent) and its
/// `messageId`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// The message's `contextId` as the client sent it; empty when it named none.
    pub context_id: String,
    /// The message's `messageId` (never empty: messages without one are not recorded).
    pub message_id: String,
}

impl MessageKey {
    /// Places rows of `(context_id, message_id, task_id)` found for `keys` in key order: the
    /// answer shape of [`TaskStore::tasks_for_messages`] for a store that returns matches in
    /// any order.
    pub(crate) fn place(
        keys: &[MessageKey],
        rows: impl IntoIterator<Item = (String, String, String)>,
    ) -> Vec<Option<String>> {
        let by_key: std::collections::HashMap<MessageKey, String> = rows
            .into_iter()
            .map(|(context_id, message_id, task_id)| {
                (
                    MessageKey {
                        context_id,
                        message_id,
                    },
                    task_id,
                )
            })
            .collect();
        keys.iter().map(|k| by_key.get(k).cloned()).collect()
    }
}

/// A replica's ownership of a running task: the replica that holds a live lease is the only one
/// that executes the task and commits its events (several replicas on one shared store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The task.
    pub task_id: String,
    /// The replica holding it (`ServeConfig`'s replica id).
    pub owner: String,
    /// Fencing token: grows by one each time the task changes owner. Commits carry it
    /// ([`TaskWrite::epoch`]), and a store refuses a commit with another epoch.
    pub epoch: u64,
    /// How many times the task was taken over after its owner's lease expired (the owner died):
    /// the runtime fails a task that reaches its poison limit instead of running it again.
    pub takeovers: u32,
}

/// The answer to [`TaskStore::acquire_lease`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseClaim {
    /// The caller holds the lease now.
    Acquired(Lease),
    /// Another replica holds a live lease.
    Held {
        /// That replica's id.
        owner: String,
    },
}

/// What one replica tells the others through a shared store ([`TaskStore::notices`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreNotice {
    /// Events of `task_id` up to `last_seq` were committed (by any replica): subscribers on
    /// other replicas read them with [`TaskStore::events_after`].
    Committed {
        /// The task.
        task_id: String,
        /// Sequence number of the last committed event.
        last_seq: u64,
    },
    /// A caller asked (on any replica) to cancel `task_id`: its owner cancels the execution.
    CancelRequested {
        /// The task.
        task_id: String,
    },
}

/// A persisted task event.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Per-task sequence number, from 1.
    pub seq: u64,
    /// The event as clients receive it (its metadata carries `seq`).
    pub event: StreamResponse,
}

/// A persisted task snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTask {
    /// The snapshot.
    pub task: Task,
    /// Sequence number of the last event folded into it.
    pub last_seq: u64,
}

/// Filters and position of one [`TaskStore::list`] page (A2A v1.0 `ListTasks`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only tasks of this context.
    pub context_id: Option<String>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks whose status timestamp (µs since the epoch) is later than this.
    pub status_after_micros: Option<i64>,
    /// Tasks per page (1..=100, checked by the runtime).
    pub page_size: u32,
    /// Continue after this task.
    pub after: Option<PageCursor>,
    /// Largest total of the stored snapshots' encoded sizes on one page, in bytes: the page
    /// ends (with a `next` cursor) before the task that would pass it, so that the page fits in
    /// one reply; its first task is always included. `None`: no byte limit.
    pub max_bytes: Option<usize>,
}

/// Position in the task order: status timestamp descending, then id descending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCursor {
    /// Status timestamp of the last task of the previous page, µs since the epoch.
    pub status_micros: i64,
    /// Id of the last task of the previous page.
    pub task_id: String,
}

impl PageCursor {
    /// The opaque `page_token` form: `<micros>.<task id>`.
    pub fn to_token(&self) -> String {
        format!("{}.{}", self.status_micros, self.task_id)
    }

    /// Parses a token made by [`to_token`](Self::to_token); `None` when it is malformed.
    pub fn from_token(token: &str) -> Option<Self> {
        let (micros, id) = token.split_once('.')?;
        if id.is_empty() {
            return None;
        }
        Some(Self {
            status_micros: micros.parse().ok()?,
            task_id: id.to_owned(),
        })
    }
}

/// One page of tasks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPage {
    /// The tasks, newest status timestamp first.
    pub tasks: Vec<Task>,
    /// Cursor of the next page; `None` on the last page.
    pub next: Option<PageCursor>,
    /// Number of tasks matching the filters, across all pages.
    pub total: u64,
}

/// How far a commit has gone before [`TaskStore::commit`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every group commit is fsynced (SQLite `synchronous=FULL` in WAL mode; PostgreSQL
    /// `synchronous_commit = on`, the server's WAL flushed): acknowledged events survive a
    /// crash of the process and of the machine.
    #[default]
    Fsync,
    /// Every group commit reaches the operating system; fsync happens at WAL checkpoints
    /// (SQLite `synchronous=NORMAL`): acknowledged events survive a crash of the process, and a
    /// power loss may drop the last commits. PostgreSQL: `SET LOCAL synchronous_commit = off`
    /// per commit transaction; a crash of the database server may drop the commits of its last
    /// ~0.6 s (3 × `wal_writer_delay`).
    Os,
}

/// A failure of the task store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, database locked, disk full …).
    #[error("task store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A record could not be decoded.
    #[error("task store: corrupt record: {0}")]
    Corrupt(String),
    /// The store cannot be reached (connection refused or lost): calls fail with `UNAVAILABLE`
    /// and may be retried once it is back.
    #[error("task store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A commit carried a lease epoch that is no longer the task's ([`TaskWrite::epoch`]):
    /// another replica took the task over, and nothing of the batch was written.
    #[error(
        "task store: task {task_id} is owned by another replica (lease epoch {epoch} is stale)"
    )]
    Fenced {
        /// The task.
        task_id: String,
        /// The stale epoch the commit carried.
        epoch: u64,
    },
}

/// Where tasks, their events and push-notification configs live.
///
/// Implementations must make [`commit`](Self::commit) atomic (all writes of a batch land, or
/// none) and keep every event of a task retrievable by sequence number.
#[tonic::async_trait]
pub trait TaskStore: Send + Sync + fmt::Debug + 'static {
    /// Persists a batch of task writes atomically, at the store's durability level; a store
    /// that keeps leases writes the leases of new tasks ([`TaskWrite::creates`]) in the same
    /// transaction.
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError>;

    /// The snapshot of task `id`, if it exists.
    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError>;

    /// Events of task `id` with a sequence number greater than `after`, in order.
    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError>;

    /// One page of tasks matching `query`, newest status timestamp first.
    async fn list(&self, query: &TaskQuery) -> Result<TaskPage, StoreError>;

    /// The task that accepted the message `key` (recorded by [`commit`](Self::commit) from
    /// [`TaskWrite::messages`]), if any. Sweeping a task forgets its messages.
    async fn task_for_message(&self, key: &MessageKey) -> Result<Option<String>, StoreError>;

    /// [`task_for_message`](Self::task_for_message) for many keys at once: one entry per key,
    /// in the order of `keys` (a key given twice is answered twice). A store answers them in
    /// one round trip where it can; the runtime gathers the idempotence lookups of concurrent
    /// sends into one call, as it gathers their writes into one commit.
    async fn tasks_for_messages(
        &self,
        keys: &[MessageKey],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.push(self.task_for_message(key).await?);
        }
        Ok(found)
    }

    /// The last checkpoint committed for task `id` ([`TaskWrite::checkpoint`]), if any; a
    /// sweep deletes it with the task.
    async fn checkpoint(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every task not in a terminal state, for recovery after a restart.
    async fn unfinished(&self) -> Result<Vec<StoredTask>, StoreError>;

    /// Creates or replaces a push-notification config (keyed by task id and config id).
    async fn put_push_config(&self, config: &TaskPushNotificationConfig) -> Result<(), StoreError>;

    /// Every push-notification config of a task, in creation order.
    async fn push_configs(
        &self,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError>;

    /// Deletes a push-notification config; `false` when it did not exist.
    async fn delete_push_config(&self, task_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Deletes the terminal tasks `rule` selects, with their events and push-notification
    /// configs, and returns how many tasks it deleted ([`Retention`]). Never deletes a task
    /// that is not terminal. The default deletes nothing: a store without retention.
    async fn sweep(&self, rule: &SweepRule) -> Result<u64, StoreError> {
        let _ = rule;
        Ok(0)
    }

    // --- Several replicas on one store. The defaults describe a store that only one process
    // --- uses (SQLite's file): it always grants the lease and has no one to notify.

    /// Takes the lease of `task_id` for `owner` for `ttl`: granted when the task has no lease,
    /// when `owner` already holds it (a renewal, same epoch), or when the holder's lease expired
    /// (a takeover: `epoch + 1`, `takeovers + 1`); otherwise [`LeaseClaim::Held`].
    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseClaim, StoreError> {
        let _ = ttl;
        Ok(LeaseClaim::Acquired(Lease {
            task_id: task_id.to_owned(),
            owner: owner.to_owned(),
            epoch: 1,
            takeovers: 0,
        }))
    }

    /// Extends by `ttl` every live lease `owner` holds, in one round trip; returns the ids of
    /// the tasks whose lease `owner` has lost (expired and taken by another replica).
    async fn renew_leases(&self, owner: &str, ttl: Duration) -> Result<Vec<String>, StoreError> {
        let _ = (owner, ttl);
        Ok(Vec::new())
    }

    /// Gives a lease up (the task settled, or the replica drains): another replica may take
    /// the task at once, and doing so is not counted as a takeover.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let _ = lease;
        Ok(())
    }

    /// Unfinished tasks with no live lease: the ones a replica may take over.
    async fn orphaned(&self) -> Result<Vec<StoredTask>, StoreError> {
        self.unfinished().await
    }

    /// Publishes `notice` to every replica on this store (PostgreSQL: `NOTIFY`). A store with
    /// [`notices`](Self::notices) also publishes [`StoreNotice::Committed`] by itself for every
    /// task of a batch, once the batch has committed.
    async fn notify(&self, notice: &StoreNotice) -> Result<(), StoreError> {
        let _ = notice;
        Ok(())
    }

    /// Notices from every replica, this one's included. `None`: a single-process store.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<StoreNotice>> {
        None
    }

    /// Sequence number of the last event delivered to push config `config_id` of `task_id`
    /// (0: none yet), so that delivery resumes there after a restart or a takeover.
    async fn push_cursor(&self, task_id: &str, config_id: &str) -> Result<u64, StoreError> {
        let _ = (task_id, config_id);
        Ok(0)
    }

    /// Records that push config `config_id` of `task_id` has been delivered every event up to
    /// `seq`.
    async fn set_push_cursor(
        &self,
        task_id: &str,
        config_id: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        let _ = (task_id, config_id, seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let c = PageCursor {
            status_micros: 1_700_000_000_000_000,
            task_id: "a.b-c".into(),
        };
        assert_eq!(PageCursor::from_token(&c.to_token()), Some(c));
        for bad in ["", "x", "12", "12.", "abc.def"] {
            assert_eq!(PageCursor::from_token(bad), None, "{bad}");
        }
    }
}
