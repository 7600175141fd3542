//! Several replicas of one agent in one process, sharing one `Arc<MemoryStore>`: a task sent
//! through one replica is read, listed, subscribed to, resumed, continued and canceled through
//! another; a replica that stops renewing its leases is fenced and its tasks taken over; a task
//! whose owner died too often is failed as poison; push delivery resumes at its stored cursor.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, routing::post};
use futures::StreamExt as _;
use serde_json::json;
use switchyard::{
    ServeConfig, StoreConfig,
    pb::a2a::{
        ListTasksRequest, Message, Role, SendMessageConfiguration, StreamResponse, Task,
        TaskPushNotificationConfig, TaskState, TaskStatus, stream_response,
    },
    store::{
        Lease, LeaseClaim, MemoryStore, MessageKey, StoreError, StoreNotice, StoredEvent,
        StoredTask, SweepRule, TaskPage, TaskQuery, TaskStore, TaskWrite,
    },
    task::sequence_of,
};
use switchyard_e2e::{Served, collect, describe, message, request, settle};
use tokio::sync::broadcast;

/// A lease short enough for takeovers within a test, long enough for a loaded machine.
const TTL: Duration = Duration::from_millis(1_500);

/// Bound of every wait in this module.
const WAIT: Duration = Duration::from_secs(30);

/// Serves the echo agent as a replica named `name` on `store`.
async fn replica(
    name: &str,
    store: Arc<dyn TaskStore>,
    tweak: impl FnOnce(&mut ServeConfig),
) -> (Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = name.to_owned();
    let s = Served::start_in(switchyard_echo::Echo, dir.path(), move |c| {
        c.store = StoreConfig::Custom(store);
        c.replica_id = name;
        c.lease_ttl = TTL;
        c.drain_timeout = Duration::from_millis(200);
        tweak(c);
    })
    .await;
    (s, dir)
}

/// The sequence numbers of `events`.
pub(crate) fn seqs(events: &[StreamResponse]) -> Vec<u64> {
    events
        .iter()
        .map(|e| sequence_of(e).expect("every event has a sequence number"))
        .collect()
}

/// The task of a stream's first event (panics on anything else).
pub(crate) fn task_of(e: &StreamResponse) -> &Task {
    match &e.payload {
        Some(stream_response::Payload::Task(t)) => t,
        other => panic!("expected the task first, got {other:?}"),
    }
}

/// The text of a task's status message (empty without one).
pub(crate) fn status_text(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(|m| m.text())
        .unwrap_or_default()
}

/// Waits until `probe` holds, checking every 20 ms, at most [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(WAIT, async {
        while !probe().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Asserts that the store holds events 1..=n of `id`, each once.
async fn assert_gap_free(store: &dyn TaskStore, id: &str) -> u64 {
    let events = store.events_after(id, 0).await.expect("events");
    let got: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let want: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(got, want, "stored events are numbered 1..=n");
    for e in &events {
        assert_eq!(sequence_of(&e.event), Some(e.seq), "metadata matches");
    }
    got.len() as u64
}

#[tokio::test]
async fn a_task_sent_to_one_replica_is_read_listed_subscribed_and_resumed_on_another() {
    let store = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", store.clone(), |_| {}).await;
    let (b, _db) = replica("b", store.clone(), |_| {}).await;
    let (c, _dc) = replica("c", store.clone(), |_| {}).await;
    let mut on_a = a
        .client
        .send_streaming_message(request(message(
            "chunked",
            json!({"chunks": 12, "chunk_delay_ms": 100}),
        )))
        .await
        .expect("stream on A");
    let first = on_a.next().await.expect("first").expect("event");
    let id = task_of(&first).id.clone();

    // B reads and lists what A runs.
    let got = b.client.get_task(&id, None).await.expect("get on B");
    assert!(!got.state().is_terminal(), "{:?}", got.state());
    let listed = b
        .client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("list on B");
    assert!(listed.tasks.iter().any(|t| t.id == id), "listed on B");

    // B subscribes live; C resumes after event 2.
    let live_b = b.client.subscribe(&id, None).await.expect("subscribe on B");
    let resumed_c = c.client.subscribe(&id, Some(2)).await.expect("resume on C");
    let (rest_a, on_b, on_c) = tokio::time::timeout(
        WAIT,
        futures::future::join3(collect(on_a), collect(live_b), collect(resumed_c)),
    )
    .await
    .expect("the streams end");
    let mut all_a = vec![first];
    all_a.extend(rest_a);
    let last = *seqs(&all_a).last().expect("events");
    assert_eq!(seqs(&all_a), (1..=last).collect::<Vec<_>>(), "A: gap-free");
    assert!(
        describe(&all_a)
            .last()
            .expect("last")
            .starts_with("status:COMPLETED")
    );

    // B: the snapshot, then every later event, once, in order.
    let snap_seq = sequence_of(&on_b[0]).expect("snapshot seq");
    task_of(&on_b[0]);
    assert_eq!(
        seqs(&on_b[1..]),
        ((snap_seq + 1)..=last).collect::<Vec<_>>(),
        "B: no gap, no duplicate: {:?}",
        describe(&on_b)
    );
    assert_eq!(
        seqs(&on_c),
        (3..=last).collect::<Vec<_>>(),
        "C resumes after 2"
    );
    assert_eq!(describe(&on_c), describe(&all_a)[2..].to_vec());
    assert_eq!(assert_gap_free(&*store, &id).await, last);

    // A finished task reads the same everywhere.
    for s in [&a, &b, &c] {
        let t = s.client.get_task(&id, None).await.expect("get");
        assert_eq!(t.state(), TaskState::Completed);
    }
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn a_cancel_sent_to_another_replica_reaches_the_execution() {
    let store = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", store.clone(), |_| {}).await;
    let (b, _db) = replica("b", store.clone(), |_| {}).await;
    let mut on_a = a
        .client
        .send_streaming_message(request(message("slow", json!({"delay_ms": 20_000}))))
        .await
        .expect("stream on A");
    let id = task_of(&on_a.next().await.expect("first").expect("event"))
        .id
        .clone();
    let canceled = tokio::time::timeout(WAIT, b.client.cancel_task(&id))
        .await
        .expect("the cancel returns")
        .expect("cancel on B");
    assert_eq!(canceled.state(), TaskState::Canceled, "B's reply is final");
    assert!(status_text(&canceled).contains("client's request"));
    let rest = tokio::time::timeout(WAIT, collect(on_a))
        .await
        .expect("A's stream ends");
    assert!(
        describe(&rest)
            .last()
            .expect("events")
            .starts_with("status:CANCELED"),
        "{:?}",
        describe(&rest)
    );
    assert_eq!(
        a.client.get_task(&id, None).await.expect("get").state(),
        TaskState::Canceled
    );
    // Canceling again anywhere: not cancelable.
    let again = b.client.cancel_task(&id).await.expect_err("terminal");
    assert_eq!(
        again.a2a_kind(),
        Some(switchyard::error::A2aErrorKind::TaskNotCancelable),
        "{again}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_task_waiting_for_input_is_continued_on_another_replica() {
    let store = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", store.clone(), |_| {}).await;
    let (b, _db) = replica("b", store.clone(), |_| {}).await;
    let asked = a
        .client
        .send(message("start", json!({"ask": "which colour?"})))
        .await
        .expect("send on A");
    assert_eq!(asked.state(), TaskState::InputRequired);
    // A subscriber on A follows the task through its continuation on B.
    let watch_a = a
        .client
        .subscribe(&asked.id, None)
        .await
        .expect("subscribe on A");
    let mut reply = Message::user_text("blue");
    reply.task_id.clone_from(&asked.id);
    let done = b.client.send(reply).await.expect("continue on B");
    assert_eq!(done.state(), TaskState::Completed);
    assert_eq!(done.artifacts[0].text(), "blue");
    let seen = tokio::time::timeout(WAIT, collect(watch_a))
        .await
        .expect("A's subscription ends");
    assert!(
        describe(&seen)
            .last()
            .expect("events")
            .starts_with("status:COMPLETED"),
        "{:?}",
        describe(&seen)
    );
    assert_gap_free(&*store, &asked.id).await;
    a.stop().await;
    b.stop().await;
}

/// A new task's lease comes with its creation commit: a running task is its replica's from
/// its first event on (another replica is refused it, nobody finds it orphaned), and a unary
/// task that settles in the commit that creates it never had a lease at all (another
/// replica's claim would be the first: epoch 1, not the `epoch + 1` after a release).
#[tokio::test]
async fn a_new_tasks_lease_comes_with_its_creation_and_a_task_settled_in_it_has_none() {
    let store = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", store.clone(), |_| {}).await;
    let mut on_a = a
        .client
        .send_streaming_message(request(message(
            "long",
            json!({"chunks": 20, "chunk_delay_ms": 100}),
        )))
        .await
        .expect("stream on A");
    let running = task_of(&on_a.next().await.expect("first").expect("event"))
        .id
        .clone();
    match store
        .acquire_lease(&running, "other", TTL)
        .await
        .expect("lease")
    {
        LeaseClaim::Held { owner } => assert!(owner.starts_with("a/"), "held by {owner}"),
        other => panic!("the running task is A's: {other:?}"),
    }
    assert!(store.orphaned().await.expect("orphaned").is_empty());

    let reply = a
        .client
        .send_message(request(message("quick", json!({}))))
        .await
        .expect("send");
    let Some(switchyard::pb::a2a::send_message_response::Payload::Task(quick)) = reply.payload
    else {
        panic!("a task")
    };
    assert_eq!(quick.state(), TaskState::Completed);
    assert!(store.orphaned().await.expect("orphaned").is_empty());
    assert_eq!(
        store
            .acquire_lease(&quick.id, "other", TTL)
            .await
            .expect("lease"),
        LeaseClaim::Acquired(Lease {
            task_id: quick.id.clone(),
            owner: "other".into(),
            epoch: 1,
            takeovers: 0,
        }),
        "no lease was ever written for a task settled in its creation"
    );
    drop(on_a);
    a.stop().await;
}

/// A [`MemoryStore`] whose renewals of one replica's leases silently do nothing once
/// partitioned (as if its renewals were lost on the way), and that counts fenced commits.
#[derive(Debug)]
struct Partition {
    inner: Arc<MemoryStore>,
    /// Replica id prefix whose renewals are dropped.
    cut: Mutex<Option<String>>,
    /// Renewals fail as if the store were unreachable.
    down: std::sync::atomic::AtomicBool,
    fenced: AtomicUsize,
}

#[tonic::async_trait]
impl TaskStore for Partition {
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError> {
        let r = self.inner.commit(batch).await;
        if matches!(r, Err(StoreError::Fenced { .. })) {
            self.fenced.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        self.inner.task(id).await
    }
    async fn task_for_message(&self, key: &MessageKey) -> Result<Option<String>, StoreError> {
        self.inner.task_for_message(key).await
    }
    async fn checkpoint(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.checkpoint(id).await
    }
    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.events_after(id, after).await
    }
    async fn list(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        self.inner.list(query).await
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
    async fn sweep(&self, rule: &SweepRule) -> Result<u64, StoreError> {
        self.inner.sweep(rule).await
    }
    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseClaim, StoreError> {
        self.inner.acquire_lease(task_id, owner, ttl).await
    }
    async fn renew_leases(&self, owner: &str, ttl: Duration) -> Result<Vec<String>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the test cut the store off".into()));
        }
        let cut = self.cut.lock().expect("lock").clone();
        if cut.is_some_and(|c| owner.starts_with(&c)) {
            return Ok(Vec::new());
        }
        self.inner.renew_leases(owner, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
    async fn orphaned(&self) -> Result<Vec<StoredTask>, StoreError> {
        self.inner.orphaned().await
    }
    async fn notify(&self, notice: &StoreNotice) -> Result<(), StoreError> {
        self.inner.notify(notice).await
    }
    fn notices(&self) -> Option<broadcast::Receiver<StoreNotice>> {
        self.inner.notices()
    }
    async fn push_cursor(&self, task_id: &str, config_id: &str) -> Result<u64, StoreError> {
        self.inner.push_cursor(task_id, config_id).await
    }
    async fn set_push_cursor(
        &self,
        task_id: &str,
        config_id: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.inner.set_push_cursor(task_id, config_id, seq).await
    }
}

#[tokio::test]
async fn an_owner_that_lost_its_lease_is_fenced_and_another_replica_finishes_the_task() {
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(Partition {
        inner: memory.clone(),
        cut: Mutex::new(None),
        down: std::sync::atomic::AtomicBool::new(false),
        fenced: AtomicUsize::new(0),
    });
    let (a, _da) = replica("a", store.clone(), |_| {}).await;
    let (b, _db) = replica("b", store.clone(), |_| {}).await;
    let mut on_a = a
        .client
        .send_streaming_message(request(message(
            "long",
            json!({"chunks": 40, "chunk_delay_ms": 100}),
        )))
        .await
        .expect("stream on A");
    let id = task_of(&on_a.next().await.expect("first").expect("event"))
        .id
        .clone();
    // A subscriber on the survivor, from the first event on.
    let on_b = b
        .client
        .subscribe(&id, Some(1))
        .await
        .expect("subscribe on B");
    // A keeps running but its renewals are lost: its lease expires and B takes the task.
    *store.cut.lock().expect("lock") = Some("a/".into());
    let seen = tokio::time::timeout(WAIT, collect(on_b))
        .await
        .expect("B's subscription ends");
    let last = assert_gap_free(&*memory, &id).await;
    assert_eq!(
        seqs(&seen),
        (2..=last).collect::<Vec<_>>(),
        "{:?}",
        describe(&seen)
    );
    assert!(
        describe(&seen)
            .last()
            .expect("events")
            .starts_with("status:COMPLETED")
    );
    assert!(
        store.fenced.load(Ordering::SeqCst) >= 1,
        "A's late commit was refused"
    );
    let t = b.client.get_task(&id, None).await.expect("get");
    assert_eq!(t.state(), TaskState::Completed);
    // B resumed the task (from its last committed checkpoint): its last artifact is complete.
    assert_eq!(
        t.artifacts
            .iter()
            .find(|x| x.name == "echo")
            .map(|x| x.parts.len()),
        Some(1)
    );
    // A's own stream follows the store after the loss and sees the same end.
    let rest_a = tokio::time::timeout(WAIT, collect(on_a))
        .await
        .expect("A's stream ends");
    let s = seqs(&rest_a);
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1), "A: gap-free {s:?}");
    assert_eq!(s.last().copied(), Some(last));
    a.stop().await;
    b.stop().await;
}

/// A WORKING task left by `takeovers + 1` dead owners in a row.
async fn orphan_with_takeovers(store: &MemoryStore, takeovers: u32) -> String {
    let id = switchyard::task::new_id();
    let mut user = message("resume me", json!({}));
    user.role = Role::User as i32;
    user.task_id.clone_from(&id);
    let snapshot = Task {
        id: id.clone(),
        context_id: "ctx".into(),
        status: Some(TaskStatus {
            state: TaskState::Working as i32,
            ..Default::default()
        }),
        history: vec![user],
        ..Default::default()
    };
    let mut event = StreamResponse {
        payload: Some(stream_response::Payload::Task(snapshot.clone())),
    };
    if let Some(stream_response::Payload::Task(t)) = &mut event.payload {
        let seq = switchyard::task::json_to_value(json!(1));
        t.metadata = Some(pbjson_types::Struct {
            fields: [(switchyard::task::SEQUENCE_KEY.to_owned(), seq)].into(),
        });
    }
    let tiny = Duration::from_millis(1);
    let mut epoch = 0;
    for i in 0..=takeovers {
        tokio::time::sleep(Duration::from_millis(3)).await;
        match store
            .acquire_lease(&id, &format!("ghost-{i}"), tiny)
            .await
            .expect("acquire")
        {
            LeaseClaim::Acquired(l) => {
                assert_eq!(l.takeovers, i);
                epoch = l.epoch;
            }
            LeaseClaim::Held { owner } => panic!("held by {owner}"),
        }
    }
    store
        .commit(&[TaskWrite {
            head_only: false,
            snapshot: snapshot.into(),
            last_seq: 1,
            events: vec![StoredEvent { seq: 1, event }],
            epoch: Some(epoch),
            messages: Vec::new(),
            checkpoint: None,
            creates: None,
        }])
        .await
        .expect("commit");
    tokio::time::sleep(Duration::from_millis(3)).await;
    id
}

#[tokio::test]
async fn a_task_whose_owner_died_too_often_fails_as_poison_and_others_resume() {
    let store = Arc::new(MemoryStore::new());
    // Taken over 3 times already: the next takeover is the 4th, above max_takeovers = 3.
    let poison = orphan_with_takeovers(&store, 3).await;
    let survivor = orphan_with_takeovers(&store, 1).await;
    let (b, _db) = replica("b", store.clone(), |c| c.max_takeovers = 3).await;
    let failed = tokio::time::timeout(WAIT, settle(&b.client, &poison))
        .await
        .expect("settles");
    assert_eq!(failed.state(), TaskState::Failed);
    assert!(
        status_text(&failed).contains("poison task: its owner died 4 times"),
        "{}",
        status_text(&failed)
    );
    let resumed = tokio::time::timeout(WAIT, settle(&b.client, &survivor))
        .await
        .expect("settles");
    assert_eq!(
        resumed.state(),
        TaskState::Completed,
        "{}",
        status_text(&resumed)
    );
    assert_eq!(resumed.artifacts[0].text(), "resume me");
    let metrics = reqwest_metrics().unwrap_or_default();
    assert!(
        metrics.contains("switchyard_tasks_poisoned_total{agent=\"echo\"}"),
        "the poison task is counted"
    );
    b.stop().await;
}

/// The process's metrics document (the servers of this test binary share one recorder).
fn reqwest_metrics() -> Option<String> {
    switchyard::telemetry::metrics::render()
}

#[tokio::test]
async fn push_delivery_resumes_at_its_cursor_on_the_replica_that_takes_over() {
    #[derive(Clone, Default)]
    struct Hits(Arc<Mutex<HashMap<u64, usize>>>);
    let hits = Hits::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(h): State<Hits>, body: String| async move {
                let e: StreamResponse = serde_json::from_str(&body).expect("protobuf JSON");
                let seq = sequence_of(&e).expect("seq");
                *h.0.lock().expect("lock").entry(seq).or_default() += 1;
                http::StatusCode::OK
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let store = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", store.clone(), switchyard_e2e::local_push).await;
    let mut req = request(message(
        "pushed",
        json!({"chunks": 30, "chunk_delay_ms": 60}),
    ));
    req.configuration = Some(SendMessageConfiguration {
        task_push_notification_config: Some(TaskPushNotificationConfig {
            url: url.clone(),
            ..Default::default()
        }),
        return_immediately: true,
        ..Default::default()
    });
    let created = a.client.send_message(req).await.expect("send");
    let Some(switchyard::pb::a2a::send_message_response::Payload::Task(task)) = created.payload
    else {
        panic!("a task")
    };
    let id = task.id;
    eventually("a few events were pushed", || {
        let n = hits.0.lock().expect("lock").len();
        async move { n >= 6 }
    })
    .await;
    // A drains: its lease is released, B takes the task over and goes on delivering.
    a.stop().await;
    let delivered_by_a = hits.0.lock().expect("lock").len() as u64;
    let (b, _db) = replica("b", store.clone(), switchyard_e2e::local_push).await;
    let done = tokio::time::timeout(WAIT, settle(&b.client, &id))
        .await
        .expect("settles");
    assert_eq!(done.state(), TaskState::Completed);
    let last = assert_gap_free(&*store, &id).await;
    eventually("every event was pushed", || {
        let n = hits.0.lock().expect("lock").len() as u64;
        async move { n >= last }
    })
    .await;
    let hits = hits.0.lock().expect("lock").clone();
    let mut got: Vec<u64> = hits.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, (1..=last).collect::<Vec<_>>(), "every event pushed");
    let again: Vec<(u64, usize)> = hits.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(
        again.len() <= 1,
        "no replay after the takeover (A delivered {delivered_by_a}; sent again: {again:?})"
    );
    b.stop().await;
}

#[tokio::test]
async fn tasks_stopped_while_the_store_was_unreachable_run_again_when_it_is_back() {
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(Partition {
        inner: memory.clone(),
        cut: Mutex::new(None),
        down: std::sync::atomic::AtomicBool::new(false),
        fenced: AtomicUsize::new(0),
    });
    let (a, _da) = replica("a", store.clone(), |_| {}).await;
    let mut on_a = a
        .client
        .send_streaming_message(request(message(
            "long",
            json!({"chunks": 30, "chunk_delay_ms": 100}),
        )))
        .await
        .expect("stream on A");
    let id = task_of(&on_a.next().await.expect("first").expect("event"))
        .id
        .clone();
    // Renewals fail for longer than 3/4 of the lease: A stops the execution.
    store.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(TTL * 2).await;
    let frozen = memory.task(&id).await.expect("get").expect("task").last_seq;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        memory.task(&id).await.expect("get").expect("task").last_seq,
        frozen,
        "no execution while the leases cannot be renewed"
    );
    // Back: the lease A gave up is released and the task runs again (here, on A itself).
    store.down.store(false, Ordering::SeqCst);
    let done = tokio::time::timeout(WAIT, settle(&a.client, &id))
        .await
        .expect("settles");
    assert_eq!(done.state(), TaskState::Completed, "{}", status_text(&done));
    assert_gap_free(&*memory, &id).await;
    drop(on_a);
    a.stop().await;
}

#[tokio::test]
async fn push_configs_made_on_another_replica_are_shared_and_delivered() {
    use switchyard::pb::a2a::{
        DeleteTaskPushNotificationConfigRequest, GetTaskPushNotificationConfigRequest,
        ListTaskPushNotificationConfigsRequest,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(tx): State<tokio::sync::mpsc::UnboundedSender<u64>>, body: String| async move {
                    let e: StreamResponse = serde_json::from_str(&body).expect("protobuf JSON");
                    let _ = tx.send(sequence_of(&e).expect("seq"));
                    http::StatusCode::OK
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let store = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", store.clone(), switchyard_e2e::local_push).await;
    let (b, _db) = replica("b", store.clone(), switchyard_e2e::local_push).await;
    let task = a
        .client
        .send(message("wait", json!({"ask": "more?"})))
        .await
        .expect("ask on A");
    // Created on B, read and listed on A.
    let created = b
        .client
        .a2a()
        .create_task_push_notification_config(TaskPushNotificationConfig {
            task_id: task.id.clone(),
            url,
            ..Default::default()
        })
        .await
        .expect("create on B")
        .into_inner();
    let got = a
        .client
        .a2a()
        .get_task_push_notification_config(GetTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .expect("get on A")
        .into_inner();
    assert_eq!(got, created);
    let listed = a
        .client
        .a2a()
        .list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await
        .expect("list on A")
        .into_inner();
    assert_eq!(listed.configs, std::slice::from_ref(&created));
    // The continuation's events (sent to A) are delivered.
    let mut more = Message::user_text("yes");
    more.task_id.clone_from(&task.id);
    let done = a.client.send(more).await.expect("continue on A");
    assert_eq!(done.state(), TaskState::Completed);
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        seqs.push(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .expect("delivered in time")
                .expect("receiver"),
        );
    }
    assert_eq!(seqs, [4, 5, 6]);
    // Deleted on A: gone on B.
    a.client
        .a2a()
        .delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .expect("delete on A");
    let gone = b
        .client
        .a2a()
        .get_task_push_notification_config(GetTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: created.id,
            ..Default::default()
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    a.stop().await;
    b.stop().await;
}
