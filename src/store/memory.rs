//! A volatile [`TaskStore`] in process memory: everything is lost when the process exits.
//! For tests, benchmarks and agents whose tasks need not survive a restart.
//!
//! It implements the whole replica contract, so several [`AgentServer`](crate::AgentServer)s
//! of one process that share one `Arc<MemoryStore>` (through
//! [`StoreConfig::Custom`](crate::StoreConfig::Custom)) behave as replicas of one agent:
//! leases expire on tokio's clock (so `tokio::time::pause` drives them in tests), commits are
//! fenced by lease epoch, and notices go through one in-process broadcast.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use tokio::{sync::broadcast, time::Instant};

use super::{
    Lease, LeaseClaim, MessageKey, NewTask, PageCursor, StoreError, StoreNotice, StoredEvent,
    StoredTask, SweepRule, TaskPage, TaskQuery, TaskStore, TaskWrite,
};
use prost::Message as _;

use crate::pb::a2a::{Task, TaskPushNotificationConfig};

/// Notices kept for a slow listener before it lags (and re-reads the store).
const NOTICE_CAPACITY: usize = 4096;

/// The lease row of one task.
#[derive(Debug)]
struct LeaseRow {
    owner: String,
    epoch: u64,
    takeovers: u32,
    expires: Instant,
    /// Given up by its owner ([`TaskStore::release_lease`]).
    released: bool,
    /// The owner this lease was taken from after it expired, until that owner's next
    /// renewal reports the loss.
    taken_from: Option<String>,
}

impl LeaseRow {
    fn live(&self, now: Instant) -> bool {
        !self.released && self.expires > now
    }

    fn lease(&self, task_id: &str) -> Lease {
        Lease {
            task_id: task_id.to_owned(),
            owner: self.owner.clone(),
            epoch: self.epoch,
            takeovers: self.takeovers,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, StoredTask>,
    events: HashMap<String, BTreeMap<u64, StoredEvent>>,
    push: HashMap<String, Vec<TaskPushNotificationConfig>>,
    leases: HashMap<String, LeaseRow>,
    /// Delivery cursors by (task id, config id).
    cursors: HashMap<(String, String), u64>,
    /// Accepted messages: the task of each.
    messages: HashMap<MessageKey, String>,
    /// Execution checkpoints by task.
    checkpoints: HashMap<String, Vec<u8>>,
}

/// A [`TaskStore`] in memory. Not durable.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    notices: broadcast::Sender<StoreNotice>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            notices: broadcast::channel(NOTICE_CAPACITY).0,
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[tonic::async_trait]
impl TaskStore for MemoryStore {
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        // Fencing first: a refused batch writes nothing. A creation must find its task new
        // (and, leased, without a lease row); its epoch is the one it grants.
        let now = Instant::now();
        for w in batch {
            let id = &w.snapshot.id;
            let taken = match &w.creates {
                Some(NewTask::Leased { .. }) => {
                    inner.tasks.contains_key(id) || inner.leases.contains_key(id)
                }
                Some(NewTask::Settled) => inner.tasks.contains_key(id),
                None => false,
            };
            if taken {
                return Err(StoreError::Fenced {
                    task_id: id.clone(),
                    epoch: 1,
                });
            }
            // A head stands for a task only once it is stored (or written whole before it in
            // this batch).
            if w.head_only {
                let stored = inner.tasks.contains_key(id)
                    || batch
                        .iter()
                        .take_while(|o| !std::ptr::eq(*o, w))
                        .any(|o| !o.head_only && o.snapshot.id == *id);
                if w.creates.is_some() || !stored {
                    return Err(super::head_of_unknown_task(id));
                }
            }
            if w.creates.is_none()
                && let Some(epoch) = w.epoch
                && inner
                    .leases
                    .get(&w.snapshot.id)
                    .is_none_or(|l| l.epoch != epoch)
            {
                return Err(StoreError::Fenced {
                    task_id: w.snapshot.id.clone(),
                    epoch,
                });
            }
        }
        for w in batch {
            if let Some(NewTask::Leased { owner, ttl }) = &w.creates {
                inner.leases.insert(
                    w.snapshot.id.clone(),
                    LeaseRow {
                        owner: owner.clone(),
                        epoch: 1,
                        takeovers: 0,
                        expires: now + *ttl,
                        released: false,
                        taken_from: None,
                    },
                );
            }
            let events = inner.events.entry(w.snapshot.id.clone()).or_default();
            for e in &w.events {
                events.insert(e.seq, e.clone());
            }
            for key in &w.messages {
                inner
                    .messages
                    .entry(key.clone())
                    .or_insert_with(|| w.snapshot.id.clone());
            }
            match &w.checkpoint {
                None => {}
                Some(c) if c.is_empty() => {
                    inner.checkpoints.remove(&w.snapshot.id);
                }
                Some(c) => {
                    inner.checkpoints.insert(w.snapshot.id.clone(), c.clone());
                }
            }
            if w.head_only {
                // Checked before anything of the batch was written.
                let stored = inner
                    .tasks
                    .get_mut(&w.snapshot.id)
                    .expect("stored, or written whole earlier in the batch");
                for e in &w.events {
                    crate::task::apply(&mut stored.task, &e.event);
                }
                stored.last_seq = w.last_seq;
            } else {
                inner.tasks.insert(
                    w.snapshot.id.clone(),
                    StoredTask {
                        task: Task::clone(&w.snapshot),
                        last_seq: w.last_seq,
                    },
                );
            }
        }
        drop(inner);
        for w in batch {
            // No receiver is not an error: no replica listens.
            let _ = self.notices.send(StoreNotice::Committed {
                task_id: w.snapshot.id.clone(),
                last_seq: w.last_seq,
            });
        }
        Ok(())
    }

    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        Ok(self.lock().tasks.get(id).cloned())
    }

    async fn checkpoint(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().checkpoints.get(id).cloned())
    }

    async fn task_for_message(&self, key: &MessageKey) -> Result<Option<String>, StoreError> {
        Ok(self.lock().messages.get(key).cloned())
    }

    async fn tasks_for_messages(
        &self,
        keys: &[MessageKey],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let inner = self.lock();
        Ok(keys
            .iter()
            .map(|k| inner.messages.get(k).cloned())
            .collect())
    }

    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.lock().events.get(id).map_or_else(Vec::new, |e| {
            e.range(after.saturating_add(1)..)
                .map(|(_, v)| v.clone())
                .collect()
        }))
    }

    async fn list(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        let inner = self.lock();
        let mut matching: Vec<_> = inner
            .tasks
            .values()
            .map(|s| &s.task)
            .filter(|t| query.context_id.as_ref().is_none_or(|c| &t.context_id == c))
            .filter(|t| query.state.is_none_or(|s| t.state() == s))
            .filter(|t| {
                query
                    .status_after_micros
                    .is_none_or(|a| t.status_micros() > a)
            })
            .collect();
        let total = matching.len() as u64;
        matching.sort_by(|a, b| (b.status_micros(), &b.id).cmp(&(a.status_micros(), &a.id)));
        let start = query.after.as_ref().map_or(0, |c| {
            matching
                .iter()
                .position(|t| (t.status_micros(), &t.id) < (c.status_micros, &c.task_id))
                .unwrap_or(matching.len())
        });
        let size = query.page_size as usize;
        let mut tasks: Vec<Task> = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        for t in matching.iter().skip(start) {
            let len = t.encoded_len();
            if tasks.len() >= size
                || (!tasks.is_empty() && query.max_bytes.is_some_and(|m| bytes + len > m))
            {
                more = true;
                break;
            }
            bytes += len;
            tasks.push((*t).clone());
        }
        let next = more.then(|| tasks.last()).flatten().map(|t| PageCursor {
            status_micros: t.status_micros(),
            task_id: t.id.clone(),
        });
        Ok(TaskPage { tasks, next, total })
    }

    async fn sweep(&self, rule: &SweepRule) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut terminal: Vec<(i64, String)> = inner
            .tasks
            .values()
            .filter(|s| s.task.state().is_terminal())
            .map(|s| (s.task.status_micros(), s.task.id.clone()))
            .collect();
        terminal.sort_by(|a, b| b.cmp(a));
        let keep = rule
            .keep_newest
            .map_or(usize::MAX, |k| usize::try_from(k).unwrap_or(usize::MAX));
        let doomed: HashSet<String> = terminal
            .into_iter()
            .enumerate()
            .filter(|(i, (us, _))| {
                *us < rule.settled_before_micros
                    && (*i >= keep || rule.older_than_micros.is_some_and(|o| *us < o))
            })
            .map(|(_, (_, id))| id)
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        for id in &doomed {
            inner.tasks.remove(id);
            inner.events.remove(id);
            inner.push.remove(id);
            inner.leases.remove(id);
            inner.checkpoints.remove(id);
        }
        // One pass over the maps keyed by something else (one per doomed task was quadratic:
        // a sweep of 100,000 tasks held the store's lock for seconds).
        inner.messages.retain(|_, t| !doomed.contains(t));
        inner.cursors.retain(|(t, _), _| !doomed.contains(t));
        Ok(doomed.len() as u64)
    }

    async fn unfinished(&self) -> Result<Vec<StoredTask>, StoreError> {
        Ok(self
            .lock()
            .tasks
            .values()
            .filter(|s| !s.task.state().is_terminal())
            .cloned()
            .collect())
    }

    async fn put_push_config(&self, config: &TaskPushNotificationConfig) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let list = inner.push.entry(config.task_id.clone()).or_default();
        match list.iter_mut().find(|c| c.id == config.id) {
            Some(existing) => *existing = config.clone(),
            None => list.push(config.clone()),
        }
        Ok(())
    }

    async fn push_configs(
        &self,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        Ok(self.lock().push.get(task_id).cloned().unwrap_or_default())
    }

    async fn delete_push_config(&self, task_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(list) = inner.push.get_mut(task_id) else {
            return Ok(false);
        };
        let before = list.len();
        list.retain(|c| c.id != id);
        let deleted = list.len() < before;
        inner.cursors.remove(&(task_id.to_owned(), id.to_owned()));
        Ok(deleted)
    }

    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseClaim, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let Some(row) = inner.leases.get_mut(task_id) else {
            let row = LeaseRow {
                owner: owner.to_owned(),
                epoch: 1,
                takeovers: 0,
                expires: now + ttl,
                released: false,
                taken_from: None,
            };
            let lease = row.lease(task_id);
            inner.leases.insert(task_id.to_owned(), row);
            return Ok(LeaseClaim::Acquired(lease));
        };
        if row.owner == owner && !row.released {
            // A renewal: same epoch.
            row.expires = now + ttl;
        } else if row.released {
            // Given up: a new owner, not a takeover.
            row.epoch += 1;
            row.owner = owner.to_owned();
            row.released = false;
            row.expires = now + ttl;
            row.taken_from = None;
        } else if row.expires <= now {
            // The owner died (or stalled): a takeover.
            row.taken_from = Some(std::mem::replace(&mut row.owner, owner.to_owned()));
            row.epoch += 1;
            row.takeovers += 1;
            row.expires = now + ttl;
        } else {
            return Ok(LeaseClaim::Held {
                owner: row.owner.clone(),
            });
        }
        Ok(LeaseClaim::Acquired(row.lease(task_id)))
    }

    async fn renew_leases(&self, owner: &str, ttl: Duration) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut lost = Vec::new();
        for (id, row) in &mut inner.leases {
            if row.owner == owner && !row.released {
                // Still ours, even if it expired meanwhile (nobody took it): extend.
                row.expires = now + ttl;
            } else if row.taken_from.as_deref() == Some(owner) {
                // Taken from `owner` since its last renewal: reported once.
                row.taken_from = None;
                lost.push(id.clone());
            }
        }
        Ok(lost)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(row) = inner.leases.get_mut(&lease.task_id)
            && row.owner == lease.owner
            && row.epoch == lease.epoch
        {
            row.released = true;
        }
        Ok(())
    }

    async fn orphaned(&self) -> Result<Vec<StoredTask>, StoreError> {
        let now = Instant::now();
        let inner = self.lock();
        Ok(inner
            .tasks
            .values()
            .filter(|s| !s.task.state().is_terminal())
            .filter(|s| inner.leases.get(&s.task.id).is_none_or(|l| !l.live(now)))
            .cloned()
            .collect())
    }

    async fn notify(&self, notice: &StoreNotice) -> Result<(), StoreError> {
        let _ = self.notices.send(notice.clone());
        Ok(())
    }

    fn notices(&self) -> Option<broadcast::Receiver<StoreNotice>> {
        Some(self.notices.subscribe())
    }

    async fn push_cursor(&self, task_id: &str, config_id: &str) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .cursors
            .get(&(task_id.to_owned(), config_id.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    async fn set_push_cursor(
        &self,
        task_id: &str,
        config_id: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let cursor = inner
            .cursors
            .entry((task_id.to_owned(), config_id.to_owned()))
            .or_insert(0);
        // Deliveries may finish out of order across workers: the cursor only moves forward.
        *cursor = (*cursor).max(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::a2a::{TaskState, TaskStatus};

    fn write(id: &str, state: TaskState, epoch: Option<u64>) -> TaskWrite {
        TaskWrite {
            head_only: false,
            snapshot: Task {
                id: id.into(),
                status: Some(TaskStatus {
                    state: state as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
            last_seq: 1,
            events: Vec::new(),
            epoch,
            messages: Vec::new(),
            checkpoint: None,
            creates: None,
        }
    }

    fn acquired(c: LeaseClaim) -> Lease {
        match c {
            LeaseClaim::Acquired(l) => l,
            LeaseClaim::Held { owner } => panic!("held by {owner}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn leases_expire_are_taken_over_and_fence_the_old_owner() {
        let s = MemoryStore::new();
        let ttl = Duration::from_secs(10);
        let a = acquired(s.acquire_lease("t", "a", ttl).await.unwrap());
        assert_eq!((a.epoch, a.takeovers), (1, 0));
        s.commit(&[write("t", TaskState::Working, Some(1))])
            .await
            .unwrap();
        assert_eq!(
            s.acquire_lease("t", "b", ttl).await.unwrap(),
            LeaseClaim::Held { owner: "a".into() }
        );
        assert!(s.orphaned().await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(s.renew_leases("a", ttl).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(9)).await;
        // Renewed at 5 s: still live at 14 s.
        assert!(s.orphaned().await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.orphaned().await.unwrap().len(), 1);
        // Expired but not taken: a renewal still extends it.
        assert!(s.renew_leases("a", ttl).await.unwrap().is_empty());
        assert!(s.orphaned().await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(s.orphaned().await.unwrap().len(), 1);
        let b = acquired(s.acquire_lease("t", "b", ttl).await.unwrap());
        assert_eq!((b.owner.as_str(), b.epoch, b.takeovers), ("b", 2, 1));
        match s.commit(&[write("t", TaskState::Completed, Some(1))]).await {
            Err(StoreError::Fenced { task_id, epoch }) => assert_eq!((&*task_id, epoch), ("t", 1)),
            other => panic!("expected Fenced, got {other:?}"),
        }
        assert_eq!(
            s.task("t").await.unwrap().unwrap().task.state(),
            TaskState::Working
        );
        assert_eq!(
            s.renew_leases("a", ttl).await.unwrap(),
            vec!["t".to_owned()]
        );
        s.commit(&[write("t", TaskState::Completed, Some(2))])
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_passes_on_without_counting_a_takeover() {
        let s = MemoryStore::new();
        let ttl = Duration::from_secs(10);
        let a = acquired(s.acquire_lease("t", "a", ttl).await.unwrap());
        s.commit(&[write("t", TaskState::Working, Some(1))])
            .await
            .unwrap();
        s.release_lease(&a).await.unwrap();
        assert_eq!(s.orphaned().await.unwrap().len(), 1);
        let b = acquired(s.acquire_lease("t", "b", ttl).await.unwrap());
        assert_eq!((b.epoch, b.takeovers), (2, 0));
        assert!(s.renew_leases("a", ttl).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn commits_and_notify_reach_every_listener() {
        let s = MemoryStore::new();
        let mut rx = s.notices().expect("the memory store has notices");
        s.commit(&[write("t", TaskState::Working, None)])
            .await
            .unwrap();
        s.notify(&StoreNotice::CancelRequested {
            task_id: "t".into(),
        })
        .await
        .unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            StoreNotice::Committed {
                task_id: "t".into(),
                last_seq: 1
            }
        );
        assert_eq!(
            rx.recv().await.unwrap(),
            StoreNotice::CancelRequested {
                task_id: "t".into()
            }
        );
    }

    #[tokio::test]
    async fn push_cursors_only_move_forward() {
        let s = MemoryStore::new();
        assert_eq!(s.push_cursor("t", "c").await.unwrap(), 0);
        s.set_push_cursor("t", "c", 4).await.unwrap();
        s.set_push_cursor("t", "c", 2).await.unwrap();
        assert_eq!(s.push_cursor("t", "c").await.unwrap(), 4);
        assert_eq!(s.push_cursor("t", "other").await.unwrap(), 0);
    }
}
