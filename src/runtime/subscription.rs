//! A subscriber's view of one task: every committed event after a given sequence number,
//! exactly once and in order, whether it comes live from the broadcast or, for a subscriber
//! that fell behind or resumes, from the store.

use std::{collections::VecDeque, sync::Arc};

use tokio::sync::broadcast::{self, error::RecvError};

use super::live::{Committed, LiveTask};
use crate::{
    error::{A2aErrorKind, RpcError},
    pb::a2a::{StreamResponse, TaskState, stream_response},
    store::TaskStore,
};

/// One event delivered to a subscriber.
#[derive(Clone, Debug)]
pub(crate) struct Delivered {
    /// Its sequence number.
    pub(crate) seq: u64,
    /// The event.
    pub(crate) event: StreamResponse,
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

/// Committed events of one task after a sequence number.
#[derive(Debug)]
pub(crate) struct Subscription {
    task: Arc<LiveTask>,
    store: Arc<dyn TaskStore>,
    rx: broadcast::Receiver<Arc<Committed>>,
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
            task,
            store,
            rx,
            last,
            backlog: VecDeque::new(),
            catch_up: last < committed,
            until_terminal: false,
            done: false,
        };
        (sub, committed)
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
            if self.catch_up {
                self.catch_up = false;
                if let Err(e) = self.fill_backlog().await {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            if let Some(d) = self.backlog.pop_front() {
                return Some(Ok(self.deliver(d)));
            }
            match self.rx.recv().await {
                Ok(c) => match &*c {
                    Committed::Event { seq, .. } if *seq <= self.last => {}
                    Committed::Event { seq, event } => {
                        let d = Delivered {
                            seq: *seq,
                            event: event.clone(),
                        };
                        return Some(Ok(self.deliver(d)));
                    }
                    Committed::StoreFailed => {
                        self.done = true;
                        return Some(Err(RpcError::Internal(format!(
                            "task {} could not be persisted",
                            self.task.id
                        ))));
                    }
                },
                Err(RecvError::Lagged(_)) => self.catch_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn deliver(&mut self, d: Delivered) -> Delivered {
        self.last = d.seq;
        if d.settles() && (!self.until_terminal || terminal(&d.event)) {
            self.done = true;
        }
        d
    }

    async fn fill_backlog(&mut self) -> Result<(), RpcError> {
        let events = self
            .store
            .events_after(&self.task.id, self.last)
            .await
            .map_err(super::store_error)?;
        self.backlog.extend(events.into_iter().map(|e| Delivered {
            seq: e.seq,
            event: e.event,
        }));
        // Committed events the store no longer has were deleted with their (terminal) task by
        // retention while this subscriber lagged: nothing more will ever arrive, so the stream
        // ends instead of waiting on a task that is gone.
        let committed = self.task.lock().committed_seq;
        if self.backlog.is_empty() && committed > self.last {
            return Err(RpcError::a2a(
                A2aErrorKind::TaskNotFound,
                format!(
                    "task {} was deleted by retention before events {}..={committed} were read",
                    self.task.id,
                    self.last + 1
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pb::a2a::Task, store::MemoryStore};

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
}
