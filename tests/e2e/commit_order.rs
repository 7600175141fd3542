//! An event reaches no client before the group commit that holds it has returned (issue 15):
//! the agent's store is a real SQLite store behind a gate that the test opens one commit at a
//! time. While a commit waits at the gate, no client — the streaming sender, two subscribers,
//! a blocking unary sender — has anything of it, and every event a client receives was
//! committed before it arrived.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt as _;
use serde_json::json;
use switchyard::{
    StoreConfig,
    pb::a2a::{StreamResponse, TaskPushNotificationConfig, TaskState, stream_response},
    store::{
        Durability, MessageKey, SqliteStore, StoreError, StoredEvent, StoredTask, TaskPage,
        TaskQuery, TaskStore, TaskWrite,
    },
    task::sequence_of,
};
use switchyard_e2e::{Served, message, request};
use tokio::sync::Semaphore;

/// How long a held commit is watched for a premature delivery.
const HOLD: Duration = Duration::from_millis(300);
/// Generous bound of every wait (two busy cores).
const WAIT: Duration = Duration::from_secs(60);

/// A real SQLite store whose commits wait for a permit of `gate`; it records, per task, the
/// highest sequence number that reached the gate and the highest one committed (recorded
/// after the inner commit returned, before the runtime hears of it).
#[derive(Debug)]
struct GatedStore {
    inner: SqliteStore,
    gate: Semaphore,
    held: Mutex<HashMap<String, u64>>,
    committed: Mutex<HashMap<String, u64>>,
}

impl GatedStore {
    fn committed(&self, id: &str) -> u64 {
        self.committed.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    /// Whether a commit waits at the gate with an event of `id` (any task when `None`) that
    /// is not committed yet.
    fn holds_uncommitted(&self, id: Option<&str>) -> bool {
        let held = self.held.lock().unwrap().clone();
        held.iter()
            .any(|(t, &seq)| id.is_none_or(|id| id == t) && seq > self.committed(t))
    }
}

#[tonic::async_trait]
impl TaskStore for GatedStore {
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError> {
        {
            let mut held = self.held.lock().unwrap();
            for w in batch {
                if let Some(last) = w.events.last() {
                    let e = held.entry(w.snapshot.id.clone()).or_default();
                    *e = (*e).max(last.seq);
                }
            }
        }
        self.gate.acquire().await.expect("gate").forget();
        self.inner.commit(batch).await?;
        let mut committed = self.committed.lock().unwrap();
        for w in batch {
            if let Some(last) = w.events.last() {
                let e = committed.entry(w.snapshot.id.clone()).or_default();
                *e = (*e).max(last.seq);
            }
        }
        Ok(())
    }
    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        self.inner.task(id).await
    }
    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
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

/// What one client received: per event its sequence number and the task's committed sequence
/// number when it arrived.
#[derive(Debug, Default)]
struct Received {
    events: Mutex<Vec<(u64, u64, StreamResponse)>>,
    done: AtomicBool,
}

impl Received {
    fn last_seq(&self) -> u64 {
        self.events
            .lock()
            .unwrap()
            .last()
            .map_or(0, |(seq, _, _)| *seq)
    }
    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

fn task_id_of(e: &StreamResponse) -> String {
    match &e.payload {
        Some(stream_response::Payload::Task(t)) => t.id.clone(),
        Some(stream_response::Payload::StatusUpdate(u)) => u.task_id.clone(),
        Some(stream_response::Payload::ArtifactUpdate(u)) => u.task_id.clone(),
        other => panic!("unexpected event {other:?}"),
    }
}

/// Reads `stream` to its end into a [`Received`], noting the committed sequence number at
/// each arrival.
fn read(store: Arc<GatedStore>, mut stream: tonic::Streaming<StreamResponse>) -> Arc<Received> {
    let out = Arc::new(Received::default());
    let r = out.clone();
    tokio::spawn(async move {
        while let Some(e) = stream.next().await {
            let e = e.expect("stream event");
            let committed = store.committed(&task_id_of(&e));
            let seq = sequence_of(&e).expect("seq");
            r.events.lock().unwrap().push((seq, committed, e));
        }
        r.done.store(true, Ordering::Release);
    });
    out
}

/// Waits until `cond` holds, up to [`WAIT`].
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test]
async fn no_client_sees_an_event_before_its_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(GatedStore {
        inner: SqliteStore::open(&dir.path().join("tasks.db"), Durability::Fsync)
            .await
            .expect("open"),
        gate: Semaphore::new(0),
        held: Mutex::default(),
        committed: Mutex::default(),
    });
    let custom: Arc<dyn TaskStore> = store.clone();
    let echo = Served::start_in(switchyard_echo::Echo, dir.path(), |c| {
        c.store = StoreConfig::Custom(custom);
    })
    .await;

    // A streaming send: its events come one gated commit at a time. The pause between
    // chunks keeps the task running after its first commit (the writer gathers every event
    // queued by then into one commit: without a pause, all of them).
    let stream = echo
        .client
        .send_streaming_message(request(message(
            "gated",
            json!({"chunks": 3, "chunk_delay_ms": 20}),
        )))
        .await
        .expect("stream");
    let sender = read(store.clone(), stream);
    until("the task's creation at the gate", || {
        store.holds_uncommitted(None)
    })
    .await;
    tokio::time::sleep(HOLD).await;
    assert_eq!(sender.len(), 0, "an event arrived before its commit");

    store.gate.add_permits(1);
    until("the first committed event", || sender.len() > 0).await;
    let id = task_id_of(&sender.events.lock().unwrap()[0].2);
    let subscribers = [
        read(
            store.clone(),
            echo.client.subscribe(&id, None).await.expect("subscribe"),
        ),
        read(
            store.clone(),
            echo.client.subscribe(&id, None).await.expect("subscribe"),
        ),
    ];
    let clients: Vec<&Arc<Received>> = std::iter::once(&sender).chain(&subscribers).collect();

    // One commit at a time: while it waits, nobody has any of its events.
    let mut held_commits = 0;
    while !clients.iter().all(|c| c.done.load(Ordering::Acquire)) {
        until("a held commit or the end of every stream", || {
            store.holds_uncommitted(Some(&id))
                || clients.iter().all(|c| c.done.load(Ordering::Acquire))
        })
        .await;
        if !store.holds_uncommitted(Some(&id)) {
            break;
        }
        held_commits += 1;
        tokio::time::sleep(HOLD).await;
        let committed = store.committed(&id);
        for (i, c) in clients.iter().enumerate() {
            assert!(
                c.last_seq() <= committed,
                "client {i} has event {} while only {committed} is committed",
                c.last_seq()
            );
        }
        // Released: wait until it has committed, so that it is not counted (and released)
        // twice.
        let target = store.held.lock().unwrap().get(&id).copied().unwrap_or(0);
        store.gate.add_permits(1);
        until("the released commit", || store.committed(&id) >= target).await;
        assert!(held_commits < 100, "more commits than events");
    }
    assert!(held_commits >= 1, "no commit was ever held");

    // Every event arrived after its commit; each client got a gapless run to COMPLETED.
    for (i, c) in clients.iter().enumerate() {
        let events = c.events.lock().unwrap();
        for (seq, committed, _) in events.iter() {
            assert!(
                seq <= committed,
                "client {i} received event {seq} when only {committed} was committed"
            );
        }
        let seqs: Vec<u64> = events.iter().map(|(s, _, _)| *s).collect();
        let first = seqs[0];
        assert_eq!(
            seqs,
            (first..first + seqs.len() as u64).collect::<Vec<_>>(),
            "client {i}"
        );
        assert_eq!(
            *seqs.last().expect("events"),
            10,
            "client {i}: 2 × 3 + 4 events"
        );
    }
    assert_eq!(sender.len(), 10);

    // A blocking SendMessage answers only after the commit that settles its task.
    let client = echo.client.clone();
    let answer = tokio::spawn(async move { client.send(message("unary", json!({}))).await });
    until("the unary task's events at the gate", || {
        store.holds_uncommitted(None)
    })
    .await;
    tokio::time::sleep(HOLD).await;
    assert!(!answer.is_finished(), "answered before its commit");
    store.gate.add_permits(10_000);
    let task = tokio::time::timeout(WAIT, answer)
        .await
        .expect("answer in time")
        .expect("join")
        .expect("send");
    assert_eq!(task.state(), TaskState::Completed);
    let stored = store
        .inner
        .task(&task.id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.task.state(), TaskState::Completed);
    assert!(store.committed(&task.id) >= stored.last_seq);
    echo.stop().await;
}
