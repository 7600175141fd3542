//! Two replicas of one agent behind the gateway (one registry entry, two endpoints, balanced
//! per request): 2,000 mixed requests (send, stream, get, list, cancel, subscribe with
//! `Last-Event-ID`) with bounded concurrency, no error, and every task visible on both
//! replicas.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::StreamExt as _;
use serde_json::{Value, json};
use switchyard::{
    StoreConfig,
    pb::a2a::{ListTasksRequest, TaskState},
    registry::AgentConfig,
    store::{MemoryStore, TaskStore},
};
use switchyard_e2e::Served;

use crate::gateway::{Gw, kind, msg, sse_all};

/// Requests of the run.
const REQUESTS: usize = 2_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 32;

/// Serves the echo agent as replica `name` on the store `store` makes.
async fn replica(name: &str, store: StoreConfig) -> (Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = name.to_owned();
    let s = Served::start_in(switchyard_echo::Echo, dir.path(), move |c| {
        c.store = store;
        c.replica_id = name;
        c.lease_ttl = Duration::from_secs(5);
    })
    .await;
    (s, dir)
}

/// What the run did, shared by the workers.
#[derive(Default)]
struct Run {
    /// HTTP requests sent.
    requests: AtomicUsize,
    /// Ids of every task created.
    tasks: Mutex<Vec<String>>,
    /// Anything that was not the expected answer.
    errors: Mutex<Vec<String>>,
}

impl Run {
    fn sent(&self, n: usize) {
        self.requests.fetch_add(n, Ordering::SeqCst);
    }

    fn created(&self, id: &str) {
        self.tasks.lock().expect("lock").push(id.to_owned());
    }

    fn error(&self, what: String) {
        self.errors.lock().expect("lock").push(what);
    }

    /// A task created earlier (round-robin by `i`), if any.
    fn some_task(&self, i: usize) -> Option<String> {
        let t = self.tasks.lock().expect("lock");
        (!t.is_empty()).then(|| t[i % t.len()].clone())
    }
}

fn task_id(v: &Value) -> Option<String> {
    v["result"]["task"]["id"].as_str().map(str::to_owned)
}

/// Whether `r` is an SSE stream (a JSON-RPC error comes as one JSON document instead).
fn is_sse(r: &reqwest::Response) -> bool {
    r.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// One operation of the mix (1 or 2 requests).
async fn operation(gw: &Gw, run: &Run, i: usize) {
    match i % 6 {
        0 => {
            run.sent(1);
            let v = gw
                .rpc(
                    "echo",
                    "SendMessage",
                    json!({"message": msg("send", json!({}))}),
                )
                .await;
            match (task_id(&v), v["result"]["task"]["status"]["state"].as_str()) {
                (Some(id), Some("TASK_STATE_COMPLETED")) => run.created(&id),
                _ => run.error(format!("send: {v}")),
            }
        }
        1 => {
            run.sent(1);
            let r = gw
                .post_json(
                    "/agents/echo",
                    &json!({"jsonrpc": "2.0", "id": i, "method": "SendStreamingMessage",
                            "params": {"message": msg("stream", json!({"chunks": 2}))}}),
                )
                .send()
                .await
                .expect("send");
            if !is_sse(&r) {
                let body = r.text().await.unwrap_or_default();
                return run.error(format!("stream: {body}"));
            }
            let events = sse_all(r).await;
            let kinds: Vec<String> = events.iter().map(|e| kind(&e.data["result"])).collect();
            match events
                .first()
                .and_then(|e| e.data["result"]["task"]["id"].as_str())
            {
                Some(id) if kinds.last().map(String::as_str) == Some("status:COMPLETED") => {
                    run.created(id);
                }
                _ => run.error(format!("stream: {kinds:?} {:?}", events.last())),
            }
        }
        2 => {
            let Some(id) = run.some_task(i) else { return };
            run.sent(1);
            let v = gw.rpc("echo", "GetTask", json!({"id": id})).await;
            if v["result"]["id"].as_str() != Some(id.as_str()) {
                run.error(format!("get {id}: {v}"));
            }
        }
        3 => {
            run.sent(1);
            let v = gw.rpc("echo", "ListTasks", json!({"pageSize": 5})).await;
            if v["result"]["tasks"].as_array().is_none() {
                run.error(format!("list: {v}"));
            }
        }
        4 => {
            run.sent(2);
            let v = gw
                .rpc(
                    "echo",
                    "SendMessage",
                    json!({"message": msg("cancel me", json!({"delay_ms": 20_000})),
                           "configuration": {"returnImmediately": true}}),
                )
                .await;
            let Some(id) = task_id(&v) else {
                return run.error(format!("send to cancel: {v}"));
            };
            run.created(&id);
            let v = gw.rpc("echo", "CancelTask", json!({"id": id})).await;
            if v["result"]["status"]["state"].as_str() != Some("TASK_STATE_CANCELED") {
                run.error(format!("cancel {id}: {v}"));
            }
        }
        _ => {
            run.sent(2);
            let v = gw
                .rpc(
                    "echo",
                    "SendMessage",
                    json!({"message": msg("watch me", json!({"delay_ms": 500, "chunks": 2})),
                           "configuration": {"returnImmediately": true}}),
                )
                .await;
            let Some(id) = task_id(&v) else {
                return run.error(format!("send to subscribe: {v}"));
            };
            run.created(&id);
            // Resumes after event 1: live while the task runs, replayed from the store if it
            // finished first (a loaded machine), on whichever replica the gateway picks.
            let r = gw
                .post_json(
                    "/agents/echo",
                    &json!({"jsonrpc": "2.0", "id": i, "method": "SubscribeToTask",
                            "params": {"id": id}}),
                )
                .header("Last-Event-ID", "1")
                .send()
                .await
                .expect("send");
            if !is_sse(&r) {
                let body = r.text().await.unwrap_or_default();
                return run.error(format!("subscribe {id}: {body}"));
            }
            let events = sse_all(r).await;
            let kinds: Vec<String> = events.iter().map(|e| kind(&e.data["result"])).collect();
            let ids: Vec<u64> = events.iter().filter_map(|e| e.id.parse().ok()).collect();
            let gap_free = ids.len() == events.len()
                && ids.first() == Some(&2)
                && ids.windows(2).all(|w| w[1] == w[0] + 1);
            if !gap_free || kinds.last().map(String::as_str) != Some("status:COMPLETED") {
                run.error(format!(
                    "subscribe {id}: {ids:?} {kinds:?} {:?}",
                    events.last()
                ));
            }
        }
    }
}

/// Runs the mix through a gateway in front of replicas `a` and `b` of one store.
async fn mixed_load(a: &Served, b: &Served) {
    let gw = Gw::start(
        vec![AgentConfig {
            name: "echo".into(),
            endpoints: vec![a.addr.to_string(), b.addr.to_string()],
            card_url: None,
            public_grpc: false,
        }],
        |_| {},
    )
    .await;
    let run = Arc::new(Run::default());
    let started = std::time::Instant::now();
    let ops = futures::stream::iter(0..)
        .take_while(|_| {
            let more = run.requests.load(Ordering::SeqCst) < REQUESTS;
            async move { more }
        })
        .map(|i| {
            let (gw, run) = (&gw, run.clone());
            async move { operation(gw, &run, i).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>();
    tokio::time::timeout(Duration::from_secs(300), ops)
        .await
        .expect("the run ends");
    let requests = run.requests.load(Ordering::SeqCst);
    assert!(requests >= REQUESTS, "{requests}");
    let errors = run.errors.lock().expect("lock").clone();
    assert!(
        errors.is_empty(),
        "{} of {requests} requests failed, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    eprintln!(
        "{requests} mixed requests through the gateway to 2 replicas in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Every task is visible on both replicas, with the same state.
    let tasks: BTreeSet<String> = run.tasks.lock().expect("lock").iter().cloned().collect();
    assert!(tasks.len() > REQUESTS / 3, "{}", tasks.len());
    let mut on_a = 0;
    for id in &tasks {
        let ta = a.client.get_task(id, Some(0)).await.expect("on A");
        let tb = b.client.get_task(id, Some(0)).await.expect("on B");
        assert_eq!(ta.state(), tb.state(), "{id}");
        assert!(ta.state().is_terminal(), "{id}: {:?}", ta.state());
        on_a +=
            usize::from(ta.state() == TaskState::Completed || ta.state() == TaskState::Canceled);
    }
    assert_eq!(on_a, tasks.len());
    let total = |s: &Served| {
        let c = s.client.clone();
        async move {
            c.list_tasks(ListTasksRequest {
                page_size: Some(1),
                ..Default::default()
            })
            .await
            .expect("list")
            .total_size
        }
    };
    assert_eq!(
        total(a).await,
        total(b).await,
        "both replicas list the same tasks"
    );
    assert_eq!(total(a).await as usize, tasks.len());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_the_gateway_serve_2000_mixed_requests_on_one_memory_store() {
    let store: Arc<dyn TaskStore> = Arc::new(MemoryStore::new());
    let (a, _da) = replica("a", StoreConfig::Custom(store.clone())).await;
    let (b, _db) = replica("b", StoreConfig::Custom(store)).await;
    mixed_load(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_the_gateway_serve_2000_mixed_requests_on_one_postgresql() {
    let db = crate::replicas_pg::Db::new().await;
    let store = || StoreConfig::Postgres {
        url: switchyard::store::DatabaseUrl::new(db.url.clone()),
        schema: None,
        durability: switchyard::store::Durability::Os,
    };
    let (a, _da) = replica("a", store()).await;
    let (b, _db) = replica("b", store()).await;
    mixed_load(&a, &b).await;
    a.stop().await;
    b.stop().await;
    db.drop().await;
}
