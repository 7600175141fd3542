//! A task that is in memory: its committed snapshot, its sequence counters, its broadcast of
//! committed events and its running execution, if any.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Semaphore, broadcast, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    pb::a2a::{Task, TaskState},
    store::StoredEvent,
};

/// Commits retained per task for live subscribers (each with all of the task's events it
/// committed, up to [`MAX_IN_FLIGHT`]); a subscriber that falls further behind catches up from
/// the store.
const BROADCAST_CAPACITY: usize = 16;

/// Events of one task accepted but not yet committed; a publisher beyond this waits.
///
/// As many as one commit holds ([`MAX_BATCH`](super::writer::MAX_BATCH)), so that a task that
/// streams fills the next commit while the current one is written and synced instead of
/// waiting for it: with 256, one stream of the durable echo agent committed ~220 events per
/// commit and stalled on each (`bench/RESULTS.md` §10, ~59k → ~80k events/s direct). The
/// memory this lets one task hold is bounded by its size limit, which every accepted event
/// counts against (`LiveState::bytes`).
pub(crate) const MAX_IN_FLIGHT: usize = super::writer::MAX_BATCH;

/// What subscribers receive from the writer.
#[derive(Debug)]
pub(crate) enum Committed {
    /// The task's events that one commit made durable, in sequence order (each event's
    /// metadata carries its `seq`). One message per commit, not per event: a commit can hold
    /// up to [`MAX_IN_FLIGHT`] events of a task, which would overrun the broadcast's
    /// [`BROADCAST_CAPACITY`] and send every subscriber back to the store.
    Events(Vec<StoredEvent>),
    /// The store failed; the task cannot go on in this process.
    StoreFailed,
    /// This replica no longer owns the task (its lease was lost, taken over, or released at
    /// an interrupted state): later events are committed elsewhere, and a subscriber follows
    /// them in the store.
    Moved,
}

/// The running execution of a task.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    /// Distinguishes executions of one task (a continuation starts a new one).
    pub(crate) id: u64,
    /// Fired by CancelTask, the caller's deadline or disconnect.
    pub(crate) cancel: CancellationToken,
}

/// Mutable state of a live task, behind its lock.
#[derive(Debug)]
pub(crate) struct LiveState {
    /// The task as of `committed_seq`. Shared with readers (a reply, a subscriber's first
    /// event) and with the writer's whole writes of it ([`TaskWrite::snapshot`]); the writer
    /// folds committed events into it in place when nobody else holds it
    /// ([`Arc::make_mut`]).
    ///
    /// [`TaskWrite::snapshot`]: crate::store::TaskWrite::snapshot
    pub(crate) snapshot: Arc<Task>,
    /// Sequence number of the last committed event.
    pub(crate) committed_seq: u64,
    /// Sequence number the next accepted event gets.
    pub(crate) next_seq: u64,
    /// State after every accepted (possibly uncommitted) event.
    pub(crate) pending: TaskState,
    /// Committed events, to live subscribers.
    pub(crate) tx: broadcast::Sender<Arc<Committed>>,
    /// The running execution.
    pub(crate) execution: Option<Execution>,
    /// Counter for [`Execution::id`].
    pub(crate) executions: u64,
    /// A commit of this task failed.
    pub(crate) poisoned: bool,
    /// Upper bound of the snapshot's encoded size once every accepted event is folded in, in
    /// bytes: [`committed_bytes`](Self::committed_bytes) plus the size of every event accepted
    /// and not committed yet (a fold never makes a snapshot larger than the event it folds
    /// in).
    pub(crate) bytes: usize,
    /// Upper bound of the committed snapshot's encoded size, in bytes: measured at each commit
    /// that writes it whole (so a replaced artifact counts once), plus the size of every event
    /// committed since; measured again when an event would take `bytes` past the task's limit.
    pub(crate) committed_bytes: usize,
    /// Encoded size of the snapshot as last written whole to the store (or as loaded), in
    /// bytes.
    pub(crate) whole_bytes: usize,
    /// Accept-time size of the events committed since the snapshot was last written whole, in
    /// bytes: the writer writes it whole again once this reaches
    /// [`WHOLE_RATIO`](super::writer::WHOLE_RATIO) × `whole_bytes` (at least
    /// [`WHOLE_EVERY`](super::writer::WHOLE_EVERY)), so that the store never replays more
    /// than that many times the task's own size when it reads the task, and rewriting a
    /// growing snapshot costs amortized O(1) per byte of events.
    pub(crate) unsnapshotted: usize,
    /// Fired when a committed event leaves the task terminal or interrupted (`Ok`), or when a
    /// commit fails (`Err`).
    pub(crate) settle_waiters: Vec<oneshot::Sender<super::writer::CommitResult>>,
    /// The lease epoch this replica commits with (a shared store); `None`: not fenced.
    pub(crate) epoch: Option<u64>,
    /// A new task on a shared store whose creation has not committed yet: the writer's next
    /// write of it creates it and takes its lease ([`TaskWrite::creates`]), or none when that
    /// write settles it.
    ///
    /// [`TaskWrite::creates`]: crate::store::TaskWrite::creates
    pub(crate) creating: bool,
    /// Messages accepted into the task since the last commit that took them: the writer
    /// records them in the store with the task ([`TaskWrite::messages`]).
    ///
    /// [`TaskWrite::messages`]: crate::store::TaskWrite::messages
    pub(crate) messages: Vec<crate::store::MessageKey>,
    /// Whether this replica still owns the task. Once false, every event is refused and the
    /// task is out of the live map.
    pub(crate) owned: bool,
    /// The checkpoint the event being accepted commits with (set and cleared around one
    /// accept, under the lock: [`crate::TaskEvents::with_checkpoint`]).
    pub(crate) next_checkpoint: Option<Vec<u8>>,
    /// A repeated message (same `messageId`) re-attached a caller to the task: a unary
    /// caller's disconnect does not cancel it then (`ServeConfig::disconnect_grace`).
    pub(crate) reattached: bool,
}

/// A task held in memory while it can still change.
#[derive(Debug)]
pub(crate) struct LiveTask {
    pub(crate) id: String,
    pub(crate) context_id: String,
    state: Mutex<LiveState>,
    /// Bounds accepted-but-uncommitted events.
    pub(crate) in_flight: Arc<Semaphore>,
}

impl LiveTask {
    /// A live task whose committed state is `snapshot` at `committed_seq`.
    pub(crate) fn new(snapshot: Task, committed_seq: u64, pending: TaskState) -> Arc<Self> {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let bytes = prost::Message::encoded_len(&snapshot);
        Arc::new(Self {
            id: snapshot.id.clone(),
            context_id: snapshot.context_id.clone(),
            state: Mutex::new(LiveState {
                snapshot: Arc::new(snapshot),
                committed_seq,
                next_seq: committed_seq + 1,
                pending,
                tx,
                execution: None,
                executions: 0,
                poisoned: false,
                bytes,
                committed_bytes: bytes,
                whole_bytes: bytes,
                unsnapshotted: 0,
                settle_waiters: Vec::new(),
                epoch: None,
                creating: false,
                messages: Vec::new(),
                owned: true,
                next_checkpoint: None,
                reattached: false,
            }),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Gives the task up on this replica: refuses its events from now on, tells its
    /// subscribers to follow the store ([`Committed::Moved`]) and, with `stop`, cancels its
    /// execution (the lease was lost: another replica runs it). Returns whether it was owned.
    pub(crate) fn disown(&self, stop: bool) -> bool {
        self.lock().disown(stop)
    }

    /// A copy of the committed snapshot, made outside the lock.
    pub(crate) fn snapshot(&self) -> Task {
        let shared = Arc::clone(&self.lock().snapshot);
        Task::clone(&shared)
    }

    /// Locks the state. The lock is never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LiveState {
    /// [`LiveTask::disown`] with the lock held.
    pub(crate) fn disown(&mut self, stop: bool) -> bool {
        if !self.owned {
            return false;
        }
        self.owned = false;
        if stop && let Some(exec) = self.execution.take() {
            exec.cancel.cancel();
        }
        if stop {
            let moved = Arc::new(crate::store::StoreError::Fenced {
                task_id: self.snapshot.id.clone(),
                epoch: self.epoch.unwrap_or_default(),
            });
            for w in self.settle_waiters.drain(..) {
                let _ = w.send(Err(moved.clone()));
            }
        }
        let _ = self.tx.send(Arc::new(Committed::Moved));
        true
    }

    /// Registers a new execution and returns it.
    pub(crate) fn begin_execution(&mut self) -> Execution {
        self.executions += 1;
        let exec = Execution {
            id: self.executions,
            cancel: CancellationToken::new(),
        };
        self.execution = Some(exec.clone());
        exec
    }

    /// Whether `exec_id` is the running execution.
    pub(crate) fn is_current(&self, exec_id: u64) -> bool {
        self.execution.as_ref().is_some_and(|e| e.id == exec_id)
    }
}
