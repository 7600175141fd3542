//! A volatile [`TaskStore`] in process memory: everything is lost when the process exits.
//! For tests, benchmarks and agents whose tasks need not survive a restart.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use super::{
    PageCursor, StoreError, StoredEvent, StoredTask, SweepRule, TaskPage, TaskQuery, TaskStore,
    TaskWrite,
};
use prost::Message as _;

use crate::pb::a2a::{Task, TaskPushNotificationConfig};

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, StoredTask>,
    events: HashMap<String, BTreeMap<u64, StoredEvent>>,
    push: HashMap<String, Vec<TaskPushNotificationConfig>>,
}

/// A [`TaskStore`] in memory. Not durable.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
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
        for w in batch {
            let events = inner.events.entry(w.snapshot.id.clone()).or_default();
            for e in &w.events {
                events.insert(e.seq, e.clone());
            }
            inner.tasks.insert(
                w.snapshot.id.clone(),
                StoredTask {
                    task: w.snapshot.clone(),
                    last_seq: w.last_seq,
                },
            );
        }
        Ok(())
    }

    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        Ok(self.lock().tasks.get(id).cloned())
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
        let doomed: Vec<String> = terminal
            .into_iter()
            .enumerate()
            .filter(|(i, (us, _))| {
                *us < rule.settled_before_micros
                    && (*i >= keep || rule.older_than_micros.is_some_and(|o| *us < o))
            })
            .map(|(_, (_, id))| id)
            .collect();
        for id in &doomed {
            inner.tasks.remove(id);
            inner.events.remove(id);
            inner.push.remove(id);
        }
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
        Ok(list.len() < before)
    }
}
