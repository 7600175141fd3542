//! A memory store for tests of the runtime that shows what reached the store: every write of
//! every commit, and reads of events that can be made to miss.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};

use super::{
    MemoryStore, MessageKey, StoreError, StoredEvent, StoredTask, TaskPage, TaskQuery, TaskStore,
    TaskWrite,
};
use crate::pb::a2a::TaskPushNotificationConfig;

/// One write as the store received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) task_id: String,
    pub(crate) head_only: bool,
    pub(crate) last_seq: u64,
    pub(crate) events: usize,
    /// The address of the write's snapshot: a live task's when the write shares it.
    pub(crate) snapshot: usize,
}

/// [`MemoryStore`] that records each commit's writes ([`commits`](Self::commits)) and whose
/// first `misses` reads of events return none (a read that missed a commit that had
/// returned).
#[derive(Debug, Default)]
pub(crate) struct Spy {
    pub(crate) inner: MemoryStore,
    pub(crate) misses: AtomicU32,
    commits: Mutex<Vec<Vec<Written>>>,
}

impl Spy {
    /// A spy whose first `misses` reads of events return none.
    pub(crate) fn missing(misses: u32) -> Arc<Self> {
        Arc::new(Self {
            misses: AtomicU32::new(misses),
            ..Default::default()
        })
    }

    /// A spy whose event reads all miss: a subscriber sent back to the store would fail
    /// instead of getting the events.
    pub(crate) fn unreadable() -> Arc<Self> {
        Self::missing(u32::MAX)
    }

    /// The writes of every successful commit so far, in order.
    pub(crate) fn commits(&self) -> Vec<Vec<Written>> {
        self.commits.lock().expect("not poisoned").clone()
    }
}

#[tonic::async_trait]
impl TaskStore for Spy {
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError> {
        self.inner.commit(batch).await?;
        let writes = batch
            .iter()
            .map(|w| Written {
                task_id: w.snapshot.id.clone(),
                head_only: w.head_only,
                last_seq: w.last_seq,
                events: w.events.len(),
                snapshot: Arc::as_ptr(&w.snapshot) as usize,
            })
            .collect();
        self.commits.lock().expect("not poisoned").push(writes);
        Ok(())
    }
    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        self.inner.task(id).await
    }
    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let missed = self
            .misses
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if missed {
            return Ok(Vec::new());
        }
        self.inner.events_after(id, after).await
    }
    async fn list(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        self.inner.list(query).await
    }
    async fn task_for_message(&self, key: &MessageKey) -> Result<Option<String>, StoreError> {
        self.inner.task_for_message(key).await
    }
    async fn checkpoint(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.checkpoint(id).await
    }
    async fn unfinished(&self) -> Result<Vec<StoredTask>, StoreError> {
        self.inner.unfinished().await
    }
    async fn put_push_config(&self, config: &TaskPushNotificationConfig) -> Result<(), StoreError> {
        self.inner.put_push_config(config).await
    }
    async fn push_configs(
        &self,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        self.inner.push_configs(task_id).await
    }
    async fn delete_push_config(&self, task_id: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_push_config(task_id, id).await
    }
}
