//! A subscriber's view of one task: every committed event after a given sequence number,
//! exactly once and in order, whether it comes live from the broadcast or, for a subscriber
//! that fell behind or resumes, from the store.
//!
//! On a shared store, a subscriber of a task that another replica runs (or that moves to
//! another replica while subscribed) follows the store: it reads
//! [`events_after`](TaskStore::events_after) its last delivered sequence number each time a
//! [`StoreNotice::Committed`] of the task arrives, and every [`SAFETY_POLL`] in case a notice
//! was lost. Tracking the last sequence number delivered keeps it free of gaps and duplicates.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use tokio::sync::broadcast::{self, error::RecvError};

use super::live::{Committed, LiveTask};
use crate::{
    error::{A2aErrorKind, RpcError},
    pb::a2a::{StreamResponse, TaskState, stream_response},
    store::{StoreNotice, StoredEvent, TaskStore},
};

/// How often a subscriber that follows the store reads it without a notice.
pub(crate) const SAFETY_POLL: Duration = Duration::from_secs(2);

/// Longest a lagging subscriber reads the store again when it returned none of the events the
/// task has committed since the subscriber's last one (see `fill_backlog`).
const STALE_READ_WAIT: Duration = Duration::from_secs(1);
/// Pause between two such reads.
const STALE_READ_PAUSE: Duration = Duration::from_millis(2);

/// One event delivered to a subscriber.
#[derive(Clone, Debug)]
pub(crate) struct Delivered {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// The event.
    pub(crate) event: StreamResponse,
}

impl From<StoredEvent> for Delivered {
    fn from(e: StoredEvent) -> Self {
        Self {
            seq: e.seq,
            event: e.event,
        }
    }
}

impl Delivered {
    /// Whether this event leaves the task terminal or interrupted, which ends a stream.
    pub(crate) fn settles(&self) -> bool {
        settles(&self.event)
    }
}

/// Whether `event` leaves the task terminal or interrupted.
pub(crate) fn settles(event: &StreamResponse) -> bool {
    match &event.payload {
        Some(stream_response::Payload::StatusUpdate(u)) => u
            .status
            .as_ref()
            .and_then(|s| TaskState::try_from(s.state).ok())
            .is_some_and(TaskState::settles),
        Some(stream_response::Payload::Task(t)) => t.state().settles(),
        _ => false,
    }
}

/// Whether `event` leaves the task terminal.
fn terminal(event: &StreamResponse) -> bool {
    match &event.payload {
        Some(stream_response::Payload::StatusUpdate(u)) => u
            .status
            .as_ref()
            .and_then(|s| TaskState::try_from(s.state).ok())
            .is_some_and(TaskState::is_terminal),
        Some(stream_response::Payload::Task(t)) => t.state().is_terminal(),
        _ => false,
    }
}

/// Where a subscription's events come from.
#[derive(Debug)]
enum Source {
    /// This replica commits the task: its broadcast of committed events.
    Local {
        task: Arc<LiveTask>,
        rx: broadcast::Receiver<Arc<Committed>>,
    },
    /// Another replica commits it: the store, woken by its notices (`None`: polling only).
    Store {
        notices: Option<broadcast::Receiver<StoreNotice>>,
    },
}

/// Committed events of one task after a sequence number.
#[derive(Debug)]
pub(crate) struct Subscription {
    task_id: String,
    store: Arc<dyn TaskStore>,
    source: Source,
    /// Last sequence number delivered (or skipped by the caller's resume point).
    last: u64,
    /// Events read from the store, not yet delivered.
    backlog: VecDeque<Delivered>,
    /// Whether the backlog up to the broadcast's start must still be read from the store.
    catch_up: bool,
    /// End only at a terminal state, not at an interrupted one (SubscribeToTask, push
    /// delivery).
    until_terminal: bool,
    done: bool,
}

impl Subscription {
    /// Subscribes to `task` as of its committed state. Returns the subscription and the
    /// committed sequence number at subscription time; events after `after` are delivered
    /// (`after` below the committed number replays the gap from the store).
    pub(crate) fn new(
        task: Arc<LiveTask>,
        store: Arc<dyn TaskStore>,
        after: Option<u64>,
    ) -> (Self, u64) {
        let (rx, committed) = {
            let st = task.lock();
            (st.tx.subscribe(), st.committed_seq)
        };
        let last = after.unwrap_or(committed);
        let sub = Self {
            task_id: task.id.clone(),
            store,
            source: Source::Local { task, rx },
            last,
            backlog: VecDeque::new(),
            catch_up: last < committed,
            until_terminal: false,
            done: false,
        };
        (sub, committed)
    }

    /// Subscribes to task `task_id`, committed up to `committed` by another replica, from
    /// `after` (default `committed`), following the store.
    pub(crate) fn from_store(
        task_id: &str,
        store: Arc<dyn TaskStore>,
        committed: u64,
        after: Option<u64>,
    ) -> Self {
        let notices = store.notices();
        let last = after.unwrap_or(committed);
        Self {
            task_id: task_id.to_owned(),
            store,
            source: Source::Store { notices },
            last,
            backlog: VecDeque::new(),
            catch_up: last < committed,
            until_terminal: false,
            done: false,
        }
    }

    /// Makes the subscription go on through interrupted states, ending only at a terminal one.
    pub(crate) fn until_terminal(&mut self) {
        self.until_terminal = true;
    }

    /// Ends the subscription at once when `settled` says the task already settled (for an
    /// [`until_terminal`](Self::until_terminal) subscription: is terminal) at subscription
    /// time, unless events before that point are still to be delivered.
    pub(crate) fn finish_if(&mut self, settled: bool) {
        if settled && !self.catch_up {
            self.done = true;
        }
    }

    /// The next event, `None` once an event settled the task.
    ///
    /// # Errors
    /// INTERNAL when the task's events cannot be committed or read.
    pub(crate) async fn next(&mut self) -> Option<Result<Delivered, RpcError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(d) = self.backlog.pop_front() {
                return Some(Ok(self.deliver(d)));
            }
            let step = match &mut self.source {
                Source::Local { .. } => {
                    if self.catch_up {
                        self.catch_up = false;
                        self.fill_backlog().await
                    } else {
                        self.recv_local().await
                    }
                }
                Source::Store { .. } => self.follow_store().await,
            };
            match step {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Waits for the broadcast; `Ok(false)` when it closed.
    async fn recv_local(&mut self) -> Result<bool, RpcError> {
        let Source::Local { rx, .. } = &mut self.source else {
            return Ok(true);
        };
        let last = self.last;
        match rx.recv().await {
            // The broadcast lets a commit go once every subscriber has received it, so the
            // last one to receive it (usually the only one) holds it alone: its events move
            // instead of being copied.
            Ok(c) => match Arc::try_unwrap(c) {
                Ok(Committed::Events(events)) => self.backlog.extend(
                    events
                        .into_iter()
                        .filter(|e| e.seq > last)
                        .map(Delivered::from),
                ),
                Ok(other) => self.on_notice(&other)?,
                Err(shared) => match &*shared {
                    Committed::Events(events) => self.backlog.extend(
                        events
                            .iter()
                            .filter(|e| e.seq > last)
                            .map(|e| Delivered::from(e.clone())),
                    ),
                    other => self.on_notice(other)?,
                },
            },
            Err(RecvError::Lagged(_)) => self.catch_up = true,
            Err(RecvError::Closed) => return Ok(false),
        }
        Ok(true)
    }

    /// Acts on a commit's notice other than its events.
    fn on_notice(&mut self, committed: &Committed) -> Result<(), RpcError> {
        match committed {
            Committed::Events(_) => {}
            Committed::StoreFailed => {
                return Err(RpcError::Internal(format!(
                    "task {} could not be persisted",
                    self.task_id
                )));
            }
            Committed::Moved => {
                // Everything this replica committed was broadcast before: go on from the
                // store with no gap.
                self.source = Source::Store {
                    notices: self.store.notices(),
                };
            }
        }
        Ok(())
    }

    /// Reads the store after the last delivered event, and waits for a notice (or the safety
    /// poll) when nothing is new.
    async fn follow_store(&mut self) -> Result<bool, RpcError> {
        let events = self
            .store
            .events_after(&self.task_id, self.last)
            .await
            .map_err(super::store_error)?;
        if !events.is_empty() {
            self.catch_up = false;
            self.backlog.extend(events.into_iter().map(Delivered::from));
            return Ok(true);
        }
        let Source::Store { notices } = &mut self.source else {
            return Ok(true);
        };
        let (id, last) = (&self.task_id, self.last);
        let woke = tokio::time::timeout(SAFETY_POLL, async {
            let Some(rx) = notices else {
                return std::future::pending().await;
            };
            loop {
                match rx.recv().await {
                    Ok(StoreNotice::Committed { task_id, last_seq })
                        if task_id == *id && last_seq > last =>
                    {
                        return;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => return std::future::pending().await,
                }
            }
        })
        .await;
        if woke.is_err() {
            // No notice for a while: make sure the task still exists.
            let exists = self
                .store
                .task(&self.task_id)
                .await
                .map_err(super::store_error)?
                .is_some();
            if !exists {
                return Err(RpcError::a2a(
                    A2aErrorKind::TaskNotFound,
                    format!("task {} was deleted", self.task_id),
                ));
            }
        }
        Ok(true)
    }

    fn deliver(&mut self, d: Delivered) -> Delivered {
        self.last = d.seq;
        if d.settles() && (!self.until_terminal || terminal(&d.event)) {
            self.done = true;
        }
        d
    }

    async fn fill_backlog(&mut self) -> Result<bool, RpcError> {
        let Source::Local { task, .. } = &self.source else {
            return Ok(true);
        };
        let task = task.clone();
        let mut events = self
            .store
            .events_after(&self.task_id, self.last)
            .await
            .map_err(super::store_error)?;
        // None of the events this replica has committed, for a task that has not settled:
        // retention never deletes such a task, so the read missed a commit that had just
        // returned. Seen with SQLite's reader pool while a stream outran its subscriber (3 of
        // 12 streams of 40,004 events, each time found by a read 2 ms later; cause not found):
        // read again, for at most `STALE_READ_WAIT`.
        let started = tokio::time::Instant::now();
        while events.is_empty() && started.elapsed() < STALE_READ_WAIT {
            let (committed, terminal) = {
                let st = task.lock();
                (st.committed_seq, st.pending.is_terminal())
            };
            if committed <= self.last || terminal {
                break;
            }
            tracing::debug!(
                task.id = %self.task_id,
                after = self.last,
                committed,
                "the store has none of the events committed after the last delivered; reading again"
            );
            tokio::time::sleep(STALE_READ_PAUSE).await;
            events = self
                .store
                .events_after(&self.task_id, self.last)
                .await
                .map_err(super::store_error)?;
        }
        self.backlog.extend(events.into_iter().map(Delivered::from));
        // Committed events the store no longer has were deleted with their (terminal) task by
        // retention while this subscriber lagged: nothing more will ever arrive, so the stream
        // ends instead of waiting on a task that is gone.
        let (committed, terminal) = {
            let st = task.lock();
            (st.committed_seq, st.pending.is_terminal())
        };
        if self.backlog.is_empty() && committed > self.last && !terminal {
            return Err(RpcError::Internal(format!(
                "task {}: the store did not return its committed events {}..={committed} within \
                 {STALE_READ_WAIT:?}",
                self.task_id,
                self.last + 1
            )));
        }
        if self.backlog.is_empty() && committed > self.last {
            return Err(RpcError::a2a(
                A2aErrorKind::TaskNotFound,
                format!(
                    "task {} was deleted by retention before events {}..={committed} were read",
                    self.task_id,
                    self.last + 1
                ),
            ));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::{
        pb::a2a::{StreamResponse, Task},
        store::{MemoryStore, StoredEvent, TaskWrite, spy::Spy},
    };

    #[tokio::test]
    async fn a_catch_up_read_that_misses_committed_events_of_a_running_task_reads_again() {
        let store = Spy::missing(3);
        store
            .commit(&[TaskWrite {
                head_only: false,
                snapshot: Task {
                    id: "t".into(),
                    ..Default::default()
                }
                .into(),
                last_seq: 5,
                events: (1..=5)
                    .map(|seq| StoredEvent {
                        seq,
                        event: StreamResponse::default(),
                    })
                    .collect(),
                epoch: None,
                messages: Vec::new(),
                checkpoint: None,
                creates: None,
            }])
            .await
            .expect("commit");
        let task = LiveTask::new(
            Task {
                id: "t".into(),
                ..Default::default()
            },
            5,
            TaskState::Working,
        );
        let (mut sub, committed) = Subscription::new(task, store.clone(), Some(2));
        assert_eq!(committed, 5);
        let mut seqs = Vec::new();
        for _ in 0..3 {
            let d = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
                .await
                .expect("in time")
                .expect("an event")
                .expect("not an error");
            seqs.push(d.seq);
        }
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(
            store.misses.load(Ordering::SeqCst),
            0,
            "read again after each miss"
        );
    }

    #[tokio::test]
    async fn a_subscriber_whose_events_were_swept_ends_with_task_not_found() {
        let task = LiveTask::new(
            Task {
                id: "t".into(),
                ..Default::default()
            },
            5,
            TaskState::Completed,
        );
        // The store holds nothing of the task: retention deleted it.
        let (mut sub, committed) = Subscription::new(task, Arc::new(MemoryStore::new()), Some(2));
        assert_eq!(committed, 5);
        sub.until_terminal();
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
            .await
            .expect("the subscription ends instead of waiting");
        match end {
            Some(Err(RpcError::A2a { kind, message, .. })) => {
                assert_eq!(kind, A2aErrorKind::TaskNotFound);
                assert!(message.contains("3..=5"), "{message}");
            }
            other => panic!("expected TASK_NOT_FOUND, got {other:?}"),
        }
        assert!(sub.next().await.is_none());
    }

    /// The subscription's next event, within 5 s.
    async fn next_event(sub: &mut Subscription) -> Delivered {
        tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
            .await
            .expect("in time")
            .expect("an event")
            .expect("not an error")
    }

    #[tokio::test]
    async fn subscribers_sharing_commits_each_get_every_event() {
        // No subscriber may read the store: each must get every event from the broadcast,
        // the first to receive a commit a copy, the last its events themselves.
        let store = Spy::unreadable();
        let task = super::super::writer::new_task("t");
        let (mut first, _) = Subscription::new(task.clone(), store.clone(), None);
        let (mut second, _) = Subscription::new(task.clone(), store.clone(), None);
        let tx = super::super::writer::spawn_writer(store.clone());
        for seq in 1..=40 {
            tx.send(super::super::writer::working(&task, seq))
                .expect("queued");
            if seq % 10 == 0 {
                // Four commits, not one.
                tokio::task::yield_now().await;
            }
        }
        for seq in 1..=40 {
            // Turn by turn, so that each is sometimes the first and sometimes the last to
            // receive a commit.
            let (a, b) = if seq % 2 == 0 {
                let a = next_event(&mut first).await;
                (a, next_event(&mut second).await)
            } else {
                let b = next_event(&mut second).await;
                (next_event(&mut first).await, b)
            };
            assert_eq!((a.seq, b.seq), (seq, seq));
            assert_eq!(a.event, b.event);
        }
        assert_eq!(store.misses.load(Ordering::SeqCst), u32::MAX);
    }

    #[tokio::test]
    async fn a_commit_of_more_events_than_the_broadcast_keeps_reaches_a_subscriber_directly() {
        let store = Spy::unreadable();
        let task = super::super::writer::new_task("t");
        let (mut sub, committed) = Subscription::new(task.clone(), store.clone(), None);
        assert_eq!(committed, 0);
        // Queued before the writer first runs (this test's runtime runs it at the next await):
        // one commit of 100 events, far more than the broadcast keeps (BROADCAST_CAPACITY).
        let tx = super::super::writer::spawn_writer(store.clone());
        for seq in 1..=100 {
            tx.send(super::super::writer::working(&task, seq))
                .expect("queued");
        }
        for seq in 1..=100 {
            assert_eq!(next_event(&mut sub).await.seq, seq);
        }
        assert_eq!(
            store.misses.load(Ordering::SeqCst),
            u32::MAX,
            "the subscriber read the store"
        );
    }
}
