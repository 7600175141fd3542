//! The group-commit writer: the only code that commits to the store and publishes committed
//! events to subscribers.
//!
//! Accepted events arrive on one channel in sequence order per task. The writer takes
//! everything queued (up to [`MAX_BATCH`] operations, after letting the tasks that are ready
//! to run queue theirs: [`GATHER_ROUNDS`]), folds each task's events into its write (a head,
//! or a copy of its snapshot: [`TaskWrite::head_only`]), commits the whole batch in one store
//! transaction, and only then folds the events into the live snapshots (or swaps the copies
//! in) and broadcasts them. A subscriber therefore never sees an event that a restart could
//! lose. A snapshot of at least [`WHOLE_EVERY`] bytes due to be written whole is written from
//! the live task, in a transaction of its own right after (`commit_rewrites`), never copied.
//!
//! On a shared store the writer also writes a new task's lease: the task's first write asks
//! the store to create it leased to this replica ([`NewTask::Leased`]), or, when that write
//! already settles it, with no lease at all ([`NewTask::Settled`]), so that a unary call costs
//! no lease round trip before its commit and no release after it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::{
    live::{Committed, LiveState, LiveTask},
    metrics::RuntimeMetrics,
    replica::Replica,
};
use crate::{
    pb::a2a::{Message, StreamResponse, Task, stream_response::Payload},
    store::{NewTask, StoreError, StoredEvent, TaskStore, TaskWrite},
    task,
};

/// Most operations folded into one commit.
pub(crate) const MAX_BATCH: usize = 1024;

/// Most times the writer yields to the runtime to gather operations before a commit (see
/// [`run`]): part of a commit's cost is the same whatever it holds (the pages it appends to
/// SQLite's WAL, the fsync), so a commit should take what is about to be queued. Measured in
/// `bench/RESULTS.md` §10: ~2.5× the operations per commit under load.
const GATHER_ROUNDS: usize = 4;

/// Fewest bytes of events between two whole writes of a task's snapshot that only grows with
/// its events ([`TaskWrite::head_only`]; `LiveState::unsnapshotted`); also the size from which
/// a snapshot due to be written whole is written from the live task rather than copied into
/// its commit (`commit_rewrites`: a smaller one costs less to copy than a transaction).
pub(crate) const WHOLE_EVERY: usize = 64 * 1024;

/// How many times its own size in events a task's snapshot is behind before the writer
/// writes it whole again (`LiveState::unsnapshotted`). A store read of a running task
/// replays at most this much; each whole write copies, encodes and replaces the snapshot, and
/// a streaming task's snapshot grows by ~¼ of its events' bytes (a progress message to the
/// history, a part to the artifact), so with 1 a 40,000-event stream rewrote its snapshot ~18
/// times. 4: −13 % of the agent's CPU per event (`bench/RESULTS.md` §10, "CPU per streamed
/// event"). A snapshot of at least [`WHOLE_EVERY`] bytes is no longer copied to be written
/// (`commit_rewrites`), but still encoded and stored whole each time.
pub(crate) const WHOLE_RATIO: usize = 4;

/// The outcome of a commit, shared by every operation of its batch.
pub(crate) type CommitResult = Result<(), Arc<StoreError>>;

/// One operation for the writer.
// Events dominate; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum WriteOp {
    /// Append an accepted event.
    Event {
        task: Arc<LiveTask>,
        seq: u64,
        event: StreamResponse,
        /// What the event added to `LiveState::bytes` when it was accepted.
        bytes: usize,
        ack: Option<oneshot::Sender<CommitResult>>,
        permit: Option<OwnedSemaphorePermit>,
        /// The execution's checkpoint after this event, committed with it.
        checkpoint: Option<Vec<u8>>,
    },
    /// Append a message to the task's history (a continuation's user message).
    History {
        task: Arc<LiveTask>,
        message: Message,
        /// What the message added to `LiveState::bytes` when it was accepted.
        bytes: usize,
    },
    /// Replace the task's checkpoint (an execution's, [`crate::TaskEvents::checkpoint`]); it
    /// commits with the events queued before it.
    Checkpoint { task: Arc<LiveTask>, data: Vec<u8> },
    /// Acknowledge once everything queued before it has committed.
    Barrier { ack: oneshot::Sender<CommitResult> },
    /// Drop `guard` once everything queued before it has committed (or failed to): e.g. a
    /// send's claim of its message key, held until the commit that records the key. A
    /// [`Barrier`](Self::Barrier) without a task waiting for it.
    Release {
        guard: Box<dyn std::fmt::Debug + Send>,
    },
}

/// What one operation changes in its task's write.
// Short-lived, one at a time: boxing the event would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Change {
    Event(
        u64,
        StreamResponse,
        Option<oneshot::Sender<CommitResult>>,
        Option<Vec<u8>>,
    ),
    History(Message),
    Checkpoint(Vec<u8>),
}

/// Live tasks by id, shared with the runtime.
pub(crate) type LiveMap = Mutex<HashMap<String, Arc<LiveTask>>>;

struct Group {
    task: Arc<LiveTask>,
    write: TaskWrite,
    /// Sum of the accept-time sizes of what `write` folds in (see `LiveState::bytes`).
    bytes: usize,
    /// Acknowledgements of this task's events.
    acks: Vec<oneshot::Sender<CommitResult>>,
    /// This write creates the task on a shared store (`LiveState::creating`).
    creating: bool,
    /// The task's snapshot is due to be written whole and is large: it is written right after
    /// this commit, from the live snapshot (see [`commit_rewrites`]).
    rewrite: bool,
}

/// Runs until every sender is gone. `metrics` are the agent's; `replica` is set on a shared
/// store (leases, fencing).
pub(crate) async fn run(
    store: Arc<dyn TaskStore>,
    live: Arc<LiveMap>,
    mut rx: mpsc::UnboundedReceiver<WriteOp>,
    metrics: Arc<RuntimeMetrics>,
    replica: Option<Arc<Replica>>,
) {
    let mut ops = Vec::with_capacity(64);
    while let Some(first) = rx.recv().await {
        ops.push(first);
        drain(&mut rx, &mut ops);
        // Tasks that are ready to run now (handlers with a request already read, an
        // execution between two events) would queue their operations right after this
        // commit started: let them run first, so that they share its cost. Stops at the first
        // round that brings nothing new; with no other task ready, a yield returns at once.
        for _ in 0..GATHER_ROUNDS {
            if ops.len() >= MAX_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            if !drain(&mut rx, &mut ops) {
                break;
            }
        }
        commit_batch(&*store, &live, &mut ops, &metrics, replica.as_ref()).await;
    }
}

/// Moves what is queued into `ops`, up to [`MAX_BATCH`]; whether it moved anything.
fn drain(rx: &mut mpsc::UnboundedReceiver<WriteOp>, ops: &mut Vec<WriteOp>) -> bool {
    let before = ops.len();
    while ops.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops.len() > before
}

/// Commits `writes`; a task refused as [`StoreError::Fenced`] (another replica took it over)
/// is taken out and the rest committed again, so one lost task does not fail the others.
/// Returns the outcome and the indexes of the fenced writes.
async fn commit_fenced(
    store: &dyn TaskStore,
    writes: &[TaskWrite],
) -> (Result<(), Arc<StoreError>>, Vec<usize>) {
    let mut fenced: Vec<usize> = Vec::new();
    if writes.is_empty() {
        return (Ok(()), fenced);
    }
    loop {
        let result = if fenced.is_empty() {
            // The common case: the whole batch, without copying it.
            store.commit(writes).await
        } else {
            let remaining: Vec<TaskWrite> = writes
                .iter()
                .enumerate()
                .filter(|(i, _)| !fenced.contains(i))
                .map(|(_, w)| w.clone())
                .collect();
            if remaining.is_empty() {
                return (Ok(()), fenced);
            }
            store.commit(&remaining).await
        };
        match result {
            Err(StoreError::Fenced { task_id, epoch }) => {
                let Some(i) = writes.iter().enumerate().position(|(i, w)| {
                    !fenced.contains(&i) && w.snapshot.id == task_id && w.epoch == Some(epoch)
                }) else {
                    // A store naming a task that is not in the batch: nothing to retry with.
                    return (Err(Arc::new(StoreError::Fenced { task_id, epoch })), fenced);
                };
                tracing::warn!(
                    task.id = %task_id,
                    epoch,
                    "commit fenced: another replica owns the task now; its execution stops here"
                );
                fenced.push(i);
            }
            other => return (other.map_err(Arc::new), fenced),
        }
    }
}

/// The head of `task`, what a [`TaskWrite::head_only`] write carries: its id, context id and
/// status.
fn head(task: &Task) -> Task {
    Task {
        id: task.id.clone(),
        context_id: task.context_id.clone(),
        status: task.status.clone(),
        ..Default::default()
    }
}

/// Folds `events` into a head: only a status update changes it, so the last one's status is
/// the head's (copied once per commit, not once per status update: a streaming task's updates
/// carry a message each).
fn fold_head(head: &mut Arc<Task>, events: &[StoredEvent]) {
    let last = events.iter().rev().find_map(|e| match &e.event.payload {
        Some(Payload::StatusUpdate(u)) => Some(&u.status),
        _ => None,
    });
    if let Some(status) = last {
        Arc::make_mut(head).status.clone_from(status);
    }
}

/// Turns `g`'s write whole: the committed snapshot with the events gathered so far folded in
/// (a copy of the live snapshot, made outside the task's lock, once there is an event to fold
/// in or another change to make).
fn make_whole(g: &mut Group) {
    if !g.write.head_only {
        return;
    }
    g.write.snapshot = Arc::clone(&g.task.lock().snapshot);
    if !g.write.events.is_empty() {
        let snapshot = Arc::make_mut(&mut g.write.snapshot);
        for e in &g.write.events {
            task::apply(snapshot, &e.event);
        }
    }
    g.write.head_only = false;
}

/// The whole write of the committed snapshot of the task whose state is `st`, shared with the
/// live task, not copied: no event, nothing else changes ([`commit_rewrites`]).
fn rewrite(st: &LiveState) -> TaskWrite {
    TaskWrite {
        snapshot: Arc::clone(&st.snapshot),
        head_only: false,
        last_seq: st.committed_seq,
        events: Vec::new(),
        epoch: st.epoch,
        messages: Vec::new(),
        checkpoint: None,
        creates: None,
    }
}

async fn commit_batch(
    store: &dyn TaskStore,
    live: &LiveMap,
    ops: &mut Vec<WriteOp>,
    metrics: &RuntimeMetrics,
    replica: Option<&Arc<Replica>>,
) {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut acks = Vec::new();
    let mut permits = Vec::new();
    let mut guards = Vec::new();
    for op in ops.drain(..) {
        let (task, bytes, change) = match op {
            WriteOp::Event {
                task,
                seq,
                event,
                bytes,
                ack,
                permit,
                checkpoint,
            } => {
                permits.extend(permit);
                (task, bytes, Change::Event(seq, event, ack, checkpoint))
            }
            WriteOp::History {
                task,
                message,
                bytes,
            } => (task, bytes, Change::History(message)),
            WriteOp::Checkpoint { task, data } => (task, 0, Change::Checkpoint(data)),
            WriteOp::Barrier { ack } => {
                acks.push(ack);
                continue;
            }
            WriteOp::Release { guard } => {
                guards.push(guard);
                continue;
            }
        };
        let i = *index.entry(Arc::as_ptr(&task) as usize).or_insert_with(|| {
            let mut st = task.lock();
            // A task's first write is whole (it is not stored yet). Else only the head, until
            // something below needs the whole snapshot: copying a task that grows with its
            // events at every commit would make a long stream quadratic.
            let first = st.committed_seq == 0 || st.creating;
            groups.push(Group {
                write: TaskWrite {
                    head_only: !first,
                    snapshot: if first {
                        Arc::clone(&st.snapshot)
                    } else {
                        Arc::new(head(&st.snapshot))
                    },
                    last_seq: st.committed_seq,
                    events: Vec::new(),
                    epoch: st.epoch,
                    // Pushed before the op that brought the task here was queued.
                    messages: std::mem::take(&mut st.messages),
                    checkpoint: None,
                    creates: None,
                },
                task: task.clone(),
                bytes: 0,
                acks: Vec::new(),
                creating: st.creating,
                rewrite: false,
            });
            groups.len() - 1
        });
        groups[i].bytes += bytes;
        let g = &mut groups[i];
        let w = &mut g.write;
        match change {
            Change::Event(seq, event, ack, checkpoint) => {
                if checkpoint.is_some() {
                    w.checkpoint = checkpoint;
                }
                g.acks.extend(ack);
                if g.write.head_only && matches!(event.payload, Some(Payload::Task(_))) {
                    // The event replaces the task.
                    make_whole(g);
                }
                let w = &mut g.write;
                // A head is folded once all the events are in (below).
                if !w.head_only {
                    task::apply(Arc::make_mut(&mut w.snapshot), &event);
                }
                w.last_seq = seq;
                w.events.push(StoredEvent { seq, event });
            }
            Change::Checkpoint(data) => w.checkpoint = Some(data),
            Change::History(message) => {
                make_whole(g);
                let w = &mut g.write;
                // A new execution starts from this message: not from an earlier checkpoint.
                w.checkpoint = Some(Vec::new());
                let snapshot = Arc::make_mut(&mut w.snapshot);
                // The agent's question (the waiting status's message) precedes the reply.
                if let Some(question) = snapshot.status.as_mut().and_then(|s| s.message.take()) {
                    snapshot.history.push(question);
                }
                snapshot.history.push(message);
            }
        }
    }

    for g in groups.iter_mut().filter(|g| g.write.head_only) {
        fold_head(&mut g.write.snapshot, &g.write.events);
        let state = g.write.snapshot.state();
        let (due, large) = {
            let st = g.task.lock();
            // Settled or waiting (read whole by whoever continues it); or the events since
            // the last whole write outweigh it WHOLE_RATIO times.
            let due = state.is_terminal()
                || state.is_interrupted()
                || st.unsnapshotted + g.bytes
                    >= st.whole_bytes.saturating_mul(WHOLE_RATIO).max(WHOLE_EVERY);
            (due, st.committed_bytes + g.bytes >= WHOLE_EVERY)
        };
        if due && large {
            // Written from the live snapshot once this commit has folded its events in.
            g.rewrite = true;
        } else if due {
            make_whole(g);
        }
    }
    if let Some(r) = replica {
        for g in groups.iter_mut().filter(|g| g.creating) {
            // A task that settles in the commit that creates it needs no owner: no lease to
            // write, none to release afterwards.
            g.write.creates = Some(if g.write.snapshot.state().is_terminal() {
                NewTask::Settled
            } else {
                r.new_lease()
            });
        }
    }
    let (tasks, writes): (Vec<_>, Vec<_>) = groups
        .into_iter()
        .map(|g| ((g.task, g.bytes, g.acks, g.rewrite), g.write))
        .unzip();
    let started = std::time::Instant::now();
    let (result, fenced) = commit_fenced(store, &writes).await;
    drop(permits);
    match &result {
        Ok(()) => {
            metrics
                .commit_duration
                .record(started.elapsed().as_secs_f64());
            let events: usize = writes.iter().map(|w| w.events.len()).sum();
            metrics.committed_events.increment(events as u64);
        }
        Err(_) => metrics.commit_failures.increment(1),
    }

    let mut finished = Vec::new();
    let mut moved = Vec::new();
    let mut rewrites = Vec::new();
    for (i, ((task, folded, task_acks, rewrite_whole), write)) in
        tasks.into_iter().zip(writes).enumerate()
    {
        if fenced.contains(&i) {
            task.disown(true);
            let err = Arc::new(StoreError::Fenced {
                task_id: task.id.clone(),
                epoch: write.epoch.unwrap_or_default(),
            });
            for ack in task_acks {
                let _ = ack.send(Err(err.clone()));
            }
            if let Some(r) = replica {
                r.forget(&task.id);
            }
            moved.push(task);
            continue;
        }
        let mut st = task.lock();
        acks.extend(task_acks);
        match &result {
            Ok(()) => {
                if let Some(created) = &write.creates {
                    st.creating = false;
                    if let (NewTask::Leased { .. }, Some(r)) = (created, replica) {
                        // Before any release below: the lease is this replica's now.
                        r.hold_created(&task.id);
                    }
                }
                let terminal = write.snapshot.state().is_terminal();
                // Committed as waiting for input, with nothing accepted after it.
                let idle = write.snapshot.state().is_interrupted()
                    && st.pending.is_interrupted()
                    && st.next_seq == write.last_seq + 1;
                let settled = write
                    .events
                    .iter()
                    .any(|e| super::subscription::settles(&e.event));
                if settled {
                    metrics.settled(write.snapshot.state()).increment(1);
                }
                if write.head_only {
                    // In place: a copy only while a reader still holds the snapshot.
                    let snapshot = Arc::make_mut(&mut st.snapshot);
                    for e in &write.events {
                        task::apply(snapshot, &e.event);
                    }
                    st.unsnapshotted += folded;
                    st.committed_bytes += folded;
                } else {
                    // `bytes` was the committed snapshot plus everything accepted since; what
                    // this commit holds is now measured in the new snapshot instead (an
                    // artifact replaced, not appended, counts once).
                    st.snapshot = write.snapshot;
                    let new = prost::Message::encoded_len(&*st.snapshot);
                    st.bytes =
                        (st.bytes.saturating_sub(st.committed_bytes + folded)).saturating_add(new);
                    st.committed_bytes = new;
                    st.whole_bytes = new;
                    st.unsnapshotted = 0;
                }
                st.committed_seq = write.last_seq;
                if rewrite_whole {
                    // Only set on a head-only write.
                    rewrites.push((task.clone(), rewrite(&st)));
                }
                if settled {
                    for w in st.settle_waiters.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                }
                if !write.events.is_empty() {
                    // No receiver is not an error: nobody is subscribed.
                    let _ = st.tx.send(Arc::new(Committed::Events(write.events)));
                }
                if terminal {
                    finished.push(task.clone());
                } else if replica.is_some() && idle {
                    // Waiting for input, with no continuation accepted since: any replica may
                    // continue it, so the lease goes (and a subscriber here follows the store).
                    st.disown(false);
                    finished.push(task.clone());
                }
            }
            Err(err) => {
                tracing::error!(task.id = %task.id, error = %err, "task store commit failed");
                st.poisoned = true;
                let _ = st.tx.send(Arc::new(Committed::StoreFailed));
                for w in st.settle_waiters.drain(..) {
                    let _ = w.send(Err(err.clone()));
                }
                if let Some(r) = replica
                    && matches!(**err, StoreError::Unavailable(_))
                {
                    // The store was lost: this replica gives the task up, and once the store
                    // answers again its lease is released and the task runs again from what
                    // was committed (whichever replica takes it), instead of staying stuck.
                    r.stall(&task.id);
                    st.disown(true);
                    moved.push(task.clone());
                }
            }
        }
    }
    commit_rewrites(store, rewrites, metrics).await;
    {
        let mut map = live.lock().unwrap_or_else(|e| e.into_inner());
        for t in finished.iter().chain(&moved) {
            if map.get(&t.id).is_some_and(|l| Arc::ptr_eq(l, t)) {
                map.remove(&t.id);
            }
        }
        metrics.tasks_live.set(map.len() as f64);
    }
    if let Some(r) = replica {
        for t in &finished {
            r.release(&t.id);
        }
    }
    for ack in acks {
        let _ = ack.send(result.clone());
    }
    drop(guards);
}

/// Writes the snapshots of `rewrites` whole, in a transaction of their own right after the
/// commit that folded their last events in, each from its task's live snapshot rather than
/// from a copy of it: a long stream's snapshot holds every progress message and artifact chunk
/// so far, and copying it (then dropping the copy it replaced) cost 15 % of the agent's CPU
/// per streamed event (`bench/RESULTS.md` §10, "CPU per streamed event"). Nothing changes the
/// live snapshot meanwhile: only this writer folds events into it.
///
/// The events are committed already, so a failed rewrite loses nothing: a read replays them
/// over the older snapshot, and the task stays due for its next commit to try again.
async fn commit_rewrites(
    store: &dyn TaskStore,
    rewrites: Vec<(Arc<LiveTask>, TaskWrite)>,
    metrics: &RuntimeMetrics,
) {
    if rewrites.is_empty() {
        return;
    }
    let (tasks, writes): (Vec<_>, Vec<_>) = rewrites.into_iter().unzip();
    let started = std::time::Instant::now();
    let result = store.commit(&writes).await;
    match result {
        Ok(()) => metrics
            .commit_duration
            .record(started.elapsed().as_secs_f64()),
        Err(e) => {
            metrics.commit_failures.increment(1);
            tracing::warn!(
                error = %e,
                tasks = tasks.len(),
                "writing task snapshots whole failed; their events stay committed"
            );
            return;
        }
    }
    // Measured outside the tasks' locks (only this writer changes a live snapshot); then the
    // writes' shares of the snapshots go, so folding the next events in copies nothing.
    let sizes: Vec<usize> = writes
        .iter()
        .map(|w| prost::Message::encoded_len(&*w.snapshot))
        .collect();
    drop(writes);
    for (task, new) in tasks.into_iter().zip(sizes) {
        let mut st = task.lock();
        st.bytes = st
            .bytes
            .saturating_sub(st.committed_bytes)
            .saturating_add(new);
        st.committed_bytes = new;
        st.whole_bytes = new;
        st.unsnapshotted = 0;
    }
}

/// A WORKING status update of sequence number `seq` for `task`, as an execution queues it
/// (tests of the writer and of subscriptions).
#[cfg(test)]
pub(crate) fn working(task: &Arc<LiveTask>, seq: u64) -> WriteOp {
    use crate::pb::a2a::{TaskState, TaskStatus, TaskStatusUpdateEvent};
    WriteOp::Event {
        task: task.clone(),
        seq,
        event: StreamResponse {
            payload: Some(Payload::StatusUpdate(TaskStatusUpdateEvent {
                task_id: task.id.clone(),
                status: Some(TaskStatus {
                    state: TaskState::Working as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })),
        },
        bytes: 0,
        ack: None,
        permit: None,
        checkpoint: None,
    }
}

/// Task `id` (context `c`), new and not yet stored (tests of the writer and of subscriptions).
#[cfg(test)]
pub(crate) fn new_task(id: &str) -> Arc<LiveTask> {
    LiveTask::new(
        Task {
            id: id.into(),
            context_id: "c".into(),
            ..Default::default()
        },
        0,
        crate::pb::a2a::TaskState::Submitted,
    )
}

/// A writer committing to `store`, spawned; its queue (tests of the writer and of
/// subscriptions).
#[cfg(test)]
pub(crate) fn spawn_writer(store: Arc<dyn TaskStore>) -> mpsc::UnboundedSender<WriteOp> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(
        store,
        Arc::default(),
        rx,
        Arc::new(RuntimeMetrics::new("test")),
        None,
    ));
    tx
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        pb::a2a::{
            Artifact, Part, Task, TaskArtifactUpdateEvent, TaskState, TaskStatus,
            TaskStatusUpdateEvent,
        },
        runtime::live::MAX_IN_FLIGHT,
        store::{
            LeaseClaim, MemoryStore, StoreNotice,
            spy::{Spy, Written},
        },
    };

    /// Event `seq` of `task` as the runtime queues it, its accept-time size measured.
    fn queued(task: &Arc<LiveTask>, seq: u64, payload: Payload) -> WriteOp {
        let event = StreamResponse {
            payload: Some(payload),
        };
        WriteOp::Event {
            task: task.clone(),
            seq,
            bytes: prost::Message::encoded_len(&event),
            event,
            ack: None,
            permit: None,
            checkpoint: None,
        }
    }

    /// Waits until everything queued on `tx` before it has committed.
    async fn flushed(tx: &mpsc::UnboundedSender<WriteOp>) {
        let (ack, done) = oneshot::channel();
        tx.send(WriteOp::Barrier { ack }).expect("queued");
        done.await.expect("acknowledged").expect("committed");
    }

    fn write(id: &str, epoch: u64) -> TaskWrite {
        TaskWrite {
            head_only: false,
            snapshot: Task {
                id: id.into(),
                ..Default::default()
            }
            .into(),
            last_seq: 1,
            events: Vec::new(),
            epoch: Some(epoch),
            messages: Vec::new(),
            checkpoint: None,
            creates: None,
        }
    }

    #[tokio::test]
    async fn a_fenced_task_is_left_out_and_the_rest_of_the_batch_commits() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(30);
        for id in ["kept", "lost", "also-kept"] {
            assert!(matches!(
                store.acquire_lease(id, "me", ttl).await.expect("lease"),
                LeaseClaim::Acquired(_)
            ));
        }
        let batch = [write("kept", 1), write("lost", 7), write("also-kept", 1)];
        let (result, fenced) = commit_fenced(&store, &batch).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(fenced, [1]);
        assert!(store.task("kept").await.expect("get").is_some());
        assert!(store.task("also-kept").await.expect("get").is_some());
        assert!(store.task("lost").await.expect("get").is_none());
        // Every task fenced: nothing to commit, nothing fails.
        let (result, fenced) = commit_fenced(&store, &[write("lost", 7)]).await;
        assert!(result.is_ok());
        assert_eq!(fenced, [0]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_commit_takes_what_tasks_ready_to_run_queue_meanwhile() {
        let store = Arc::new(MemoryStore::new());
        let mut notices = store.notices().expect("the memory store has notices");
        let task = new_task("t");
        let tx = spawn_writer(store.clone());
        // The writer is woken by the first event; the tasks that queue the other nine are
        // ready to run only after it (this runtime runs tasks in the order they were woken).
        tx.send(working(&task, 1)).expect("the writer runs");
        for seq in 2..=10 {
            let (tx, task) = (tx.clone(), task.clone());
            tokio::spawn(async move { tx.send(working(&task, seq)).expect("the writer runs") });
        }
        let mut commits = Vec::new();
        while commits.last() != Some(&10) {
            match notices.recv().await.expect("a notice") {
                StoreNotice::Committed { last_seq, .. } => commits.push(last_seq),
                other => panic!("unexpected notice {other:?}"),
            }
        }
        // Without gathering: a commit of the first event alone, then one of the nine.
        assert_eq!(commits, [10], "one commit of all ten events");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_can_fill_a_whole_commit_before_its_publisher_waits() {
        let store = Arc::new(MemoryStore::new());
        let mut notices = store.notices().expect("the memory store has notices");
        let task = new_task("t");
        // What an execution holds while the writer is busy with an earlier commit: a permit
        // per event it published (`Runtime::publish`).
        let ops: Vec<WriteOp> = (1..=MAX_BATCH as u64)
            .map(|seq| {
                let mut op = working(&task, seq);
                if let WriteOp::Event { permit, .. } = &mut op {
                    *permit = Some(
                        task.in_flight
                            .clone()
                            .try_acquire_owned()
                            .unwrap_or_else(|_| panic!("event {seq} waits for a permit")),
                    );
                }
                op
            })
            .collect();
        assert!(
            task.in_flight.clone().try_acquire_owned().is_err(),
            "one event more than a commit holds waits"
        );
        // Queued before the writer first runs (this test's runtime runs it at the next await).
        let tx = spawn_writer(store.clone());
        for op in ops {
            tx.send(op).expect("queued");
        }
        match notices.recv().await.expect("a notice") {
            StoreNotice::Committed { last_seq, .. } => {
                assert_eq!(last_seq, MAX_BATCH as u64, "every event in one commit");
            }
            other => panic!("unexpected notice {other:?}"),
        }
        assert_eq!(task.in_flight.available_permits(), MAX_IN_FLIGHT);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_large_snapshot_due_is_written_whole_from_the_live_one_right_after_its_commit() {
        let store = Arc::new(Spy::default());
        let task = new_task("t");
        let tx = spawn_writer(store.clone());
        tx.send(working(&task, 1)).expect("queued");
        flushed(&tx).await;
        let live = Arc::as_ptr(&task.lock().snapshot) as usize;
        // Four chunks of 20,000 bytes (more than WHOLE_EVERY), then the task completes: its
        // snapshot is due to be written whole, and large.
        for seq in 2..=5 {
            let chunk = Artifact {
                artifact_id: "a".into(),
                parts: vec![Part::text("x".repeat(20_000))],
                ..Default::default()
            };
            let update = TaskArtifactUpdateEvent {
                task_id: "t".into(),
                artifact: Some(chunk),
                append: seq > 2,
                ..Default::default()
            };
            tx.send(queued(&task, seq, Payload::ArtifactUpdate(update)))
                .expect("queued");
        }
        let done = TaskStatusUpdateEvent {
            task_id: "t".into(),
            status: Some(TaskStatus {
                state: TaskState::Completed as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        tx.send(queued(&task, 6, Payload::StatusUpdate(done)))
            .expect("queued");
        flushed(&tx).await;

        let written = |head_only, last_seq, events, snapshot| Written {
            task_id: "t".into(),
            head_only,
            last_seq,
            events,
            snapshot,
        };
        let commits = store.commits();
        assert_eq!(commits.len(), 3, "{commits:#?}");
        assert_eq!(commits[1].len(), 1);
        assert_eq!(
            commits[1][0],
            written(true, 6, 5, commits[1][0].snapshot),
            "the events commit with the head only"
        );
        assert_eq!(
            commits[2],
            [written(false, 6, 0, live)],
            "then the live snapshot, whole, in a commit of its own"
        );
        let st = task.lock();
        assert_eq!(
            Arc::as_ptr(&st.snapshot) as usize,
            live,
            "the events were folded into the live snapshot, not into a copy"
        );
        assert_eq!(Arc::strong_count(&st.snapshot), 1, "the writes let it go");
        assert_eq!(st.snapshot.artifacts[0].parts.len(), 4);
        assert_eq!(st.snapshot.state(), TaskState::Completed);
        assert_eq!(st.unsnapshotted, 0);
        assert_eq!(st.whole_bytes, prost::Message::encoded_len(&*st.snapshot));
    }
}
