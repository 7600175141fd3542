//! Replicas of the echo agent as real processes (`switchyard-echo --store postgres://…`) on one
//! PostgreSQL database: a task sent through one is read, listed, subscribed to, resumed,
//! continued and canceled through another; `kill -9` of the owner mid-task hands the task to a
//! survivor, whose subscribers see one gap-free, duplicate-free sequence; an owner frozen past
//! its lease (SIGSTOP) is fenced when it wakes; a task whose owner died too often is failed as
//! poison; push delivery resumes after a restart without re-sending what was delivered.
//!
//! Needs PostgreSQL at `SWITCHYARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`, a role that may create databases); each test
//! works in its own database, dropped at the end. Needs the workspace binaries
//! (`cargo build --workspace --bins`; scripts/test does).

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, routing::post};
use futures::StreamExt as _;
use serde_json::json;
use sqlx::{Connection as _, Executor as _, PgConnection};
use switchyard::{
    Client,
    pb::a2a::{
        ListTasksRequest, Message, SendMessageConfiguration, StreamResponse,
        TaskPushNotificationConfig, TaskState, send_message_response, stream_response,
    },
    task::sequence_of,
};
use switchyard_e2e::{collect, describe, message, request, settle};

use crate::replicas::{seqs, status_text, task_of};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

/// Lease of the agents under test: takeovers within about 3 s of a death, with room for a
/// loaded machine's scheduling delays (a replica stops its tasks after 3/4 of it unrenewed).
const LEASE_TTL_MS: u64 = 2_000;

/// Bound of every wait.
const WAIT: Duration = Duration::from_secs(60);

fn admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(s, _)| s.contains("//") && s.len() > "postgres://".len())
        .unwrap_or((base, ""));
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

/// A database of its own for one test, dropped by [`drop`](Self::drop).
pub(crate) struct Db {
    name: String,
    /// Its URL.
    pub(crate) url: String,
}

impl Db {
    pub(crate) async fn new() -> Self {
        let admin = admin_url();
        let mut c = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "these tests need PostgreSQL at SWITCHYARD_TEST_POSTGRES ({e}); start it \
                 (scripts/test does) or point the variable at a server where the role may \
                 create databases"
            )
        });
        let name = format!("replicas_{}", switchyard::task::new_id().replace('-', ""));
        c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        let _ = c.close().await;
        Self {
            url: with_database(&admin, &name),
            name,
        }
    }

    /// The lease row of `task_id`: (owner, epoch, takeovers).
    async fn lease(&self, task_id: &str) -> Option<(String, i64, i32)> {
        let mut c = PgConnection::connect(&self.url).await.expect("connect");
        let row = sqlx::query_as(
            "SELECT owner, epoch, takeovers FROM echo.task_leases WHERE task_id = $1",
        )
        .bind(task_id)
        .fetch_optional(&mut c)
        .await
        .expect("lease row");
        let _ = c.close().await;
        row
    }

    pub(crate) async fn drop(self) {
        let mut c = PgConnection::connect(&admin_url()).await.expect("connect");
        c.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .await
        .expect("drop database");
        let _ = c.close().await;
    }
}

/// The directory of the workspace binaries: the test binary is `<target>/<profile>/deps/e2e-…`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

/// One `switchyard-echo` process.
struct Replica {
    child: Child,
    client: Client,
    addr: String,
}

impl Replica {
    /// Starts replica `id` on `db` with `extra` flags; returns once it serves.
    async fn start(db: &Db, id: &str, extra: &[&str]) -> Self {
        let bin = bin_dir().join("switchyard-echo");
        assert!(
            bin.is_file(),
            "{} is missing: build the binaries first (`cargo build --workspace --bins`)",
            bin.display()
        );
        let ttl = LEASE_TTL_MS.to_string();
        let mut child = Command::new(&bin)
            .args([
                "--store",
                &db.url,
                "--replica-id",
                id,
                "--lease-ttl-ms",
                &ttl,
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn switchyard-echo");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(a) = line.strip_prefix("echo listening on ") {
                    return a.to_owned();
                }
            }
            panic!("switchyard-echo exited before serving")
        })
        .await
        .expect("serving in time");
        let client = Client::connect(&addr).await.expect("connect");
        Self {
            child,
            client,
            addr,
        }
    }

    fn pid(&self) -> String {
        self.child.id().expect("running").to_string()
    }

    /// `kill -9`.
    async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`).
    async fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .await
            .expect("kill");
        assert!(ok.success(), "kill -{signal}");
    }

    /// SIGTERM, and waits for the drain.
    async fn stop(mut self) {
        self.signal("TERM").await;
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}

fn chunk_numbers(events: &[StreamResponse]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(stream_response::Payload::StatusUpdate(u)) => u
                .status
                .as_ref()
                .and_then(|s| s.message.as_ref())
                .map(|m| m.text()),
            _ => None,
        })
        // Progress texts read "<percent>% chunk <i> of <n>".
        .filter_map(|t| {
            t.split("chunk ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

/// Waits until the lease of `task_id` satisfies `want`.
async fn lease_until(db: &Db, task_id: &str, what: &str, want: impl Fn(&str, i32) -> bool) {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some((owner, _, takeovers)) = db.lease(task_id).await
                && want(&owner, takeovers)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Starts a long chunked task on `r` and returns its stream after the first event, and its id.
async fn long_task(
    r: &Replica,
    chunks: u64,
    delay_ms: u64,
) -> (tonic::Streaming<StreamResponse>, String) {
    let mut s = r
        .client
        .send_streaming_message(request(message(
            "long",
            json!({"chunks": chunks, "chunk_delay_ms": delay_ms}),
        )))
        .await
        .expect("stream");
    let first = s.next().await.expect("first").expect("event");
    let id = task_of(&first).id.clone();
    (s, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_on_postgres_share_tasks_for_get_list_subscribe_resume_cancel_and_continue() {
    let db = Db::new().await;
    let a = Replica::start(&db, "a", &[]).await;
    let b = Replica::start(&db, "b", &[]).await;
    let c = Replica::start(&db, "c", &[]).await;

    let (rest_a, id) = long_task(&a, 10, 150).await;
    let got = b.client.get_task(&id, None).await.expect("get on B");
    assert!(!got.state().is_terminal());
    let listed = b
        .client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("list on B");
    assert!(listed.tasks.iter().any(|t| t.id == id));
    let live_b = b.client.subscribe(&id, None).await.expect("subscribe on B");
    let resume_c = c.client.subscribe(&id, Some(1)).await.expect("resume on C");
    let (rest_a, on_b, on_c) = tokio::time::timeout(
        WAIT,
        futures::future::join3(collect(rest_a), collect(live_b), collect(resume_c)),
    )
    .await
    .expect("streams end");
    let last = *seqs(&rest_a).last().expect("events");
    let snap = sequence_of(&on_b[0]).expect("snapshot seq");
    assert_eq!(seqs(&on_b[1..]), ((snap + 1)..=last).collect::<Vec<_>>());
    assert_eq!(
        seqs(&on_c),
        (2..=last).collect::<Vec<_>>(),
        "{:?}",
        describe(&on_c)
    );
    assert!(
        describe(&on_c)
            .last()
            .expect("events")
            .starts_with("status:COMPLETED")
    );

    // Cancel on C what runs on A: the reply is the final CANCELED task.
    let (rest, slow) = {
        let mut s = a
            .client
            .send_streaming_message(request(message("slow", json!({"delay_ms": 30_000}))))
            .await
            .expect("stream");
        let first = s.next().await.expect("first").expect("event");
        (s, task_of(&first).id.clone())
    };
    let canceled = c.client.cancel_task(&slow).await.expect("cancel on C");
    assert_eq!(canceled.state(), TaskState::Canceled);
    let rest = tokio::time::timeout(WAIT, collect(rest))
        .await
        .expect("A's stream ends");
    assert!(
        describe(&rest)
            .last()
            .expect("events")
            .starts_with("status:CANCELED")
    );

    // Continue on B what waits for input after A asked.
    let asked = a
        .client
        .send(message("start", json!({"ask": "more?"})))
        .await
        .expect("ask on A");
    assert_eq!(asked.state(), TaskState::InputRequired);
    let mut more = Message::user_text("yes");
    more.task_id.clone_from(&asked.id);
    let done = b.client.send(more).await.expect("continue on B");
    assert_eq!(done.state(), TaskState::Completed);
    assert_eq!(done.artifacts[0].text(), "yes");
    for r in [&a, &c] {
        assert_eq!(
            r.client
                .get_task(&asked.id, None)
                .await
                .expect("get")
                .state(),
            TaskState::Completed
        );
    }
    a.stop().await;
    b.stop().await;
    c.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_task_is_finished_by_a_survivor_with_one_gap_free_sequence() {
    let db = Db::new().await;
    let a = Replica::start(&db, "a", &[]).await;
    let b = Replica::start(&db, "b", &[]).await;
    let c = Replica::start(&db, "c", &[]).await;
    let (on_a, id) = long_task(&a, 30, 100).await;
    drop(on_a);
    let on_b = b
        .client
        .subscribe(&id, Some(1))
        .await
        .expect("subscribe on B");
    let on_c = c.client.subscribe(&id, None).await.expect("subscribe on C");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill9().await;
    let (on_b, on_c) =
        tokio::time::timeout(WAIT, futures::future::join(collect(on_b), collect(on_c)))
            .await
            .expect("the survivors' streams end");
    let t = b.client.get_task(&id, None).await.expect("get");
    assert_eq!(t.state(), TaskState::Completed, "{}", status_text(&t));
    let last = *seqs(&on_b).last().expect("events");
    assert_eq!(
        seqs(&on_b),
        (2..=last).collect::<Vec<_>>(),
        "{:?}",
        describe(&on_b)
    );
    let snap = sequence_of(&on_c[0]).expect("snapshot");
    assert_eq!(seqs(&on_c[1..]), ((snap + 1)..=last).collect::<Vec<_>>());
    // A ran chunks 1..k, then a survivor continued from A's last checkpoint (committed with
    // chunk k, issue 13 item 8): every chunk exactly once.
    let chunks = chunk_numbers(&on_b);
    assert_eq!(
        chunks,
        (1..=30).collect::<Vec<_>>(),
        "{:?}",
        describe(&on_b)
    );
    let (owner, epoch, takeovers) = db.lease(&id).await.expect("lease");
    assert!(
        owner.starts_with("b/") || owner.starts_with("c/"),
        "{owner}"
    );
    // One takeover (a survivor that stalled on a loaded machine may have released and taken
    // it again since, which bumps the epoch but is no takeover).
    assert!(epoch >= 2, "{epoch}");
    assert_eq!(takeovers, 1);
    b.stop().await;
    c.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_frozen_past_its_lease_is_fenced_when_it_wakes() {
    let db = Db::new().await;
    let a = Replica::start(&db, "a", &[]).await;
    let b = Replica::start(&db, "b", &[]).await;
    let (on_a, id) = long_task(&a, 30, 100).await;
    drop(on_a);
    let on_b = b
        .client
        .subscribe(&id, Some(1))
        .await
        .expect("subscribe on B");
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.signal("STOP").await;
    tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS * 5 / 2)).await;
    // A wakes up mid-task, with events to commit under its old epoch. (Had it been frozen
    // inside a commit, B's takeover waited for that commit's row lock and happens now.)
    a.signal("CONT").await;
    lease_until(&db, &id, "B took the task over", |owner, _| {
        owner.starts_with("b/")
    })
    .await;
    let on_b = tokio::time::timeout(WAIT, collect(on_b))
        .await
        .expect("B's stream ends");
    let last = *seqs(&on_b).last().expect("events");
    assert_eq!(
        seqs(&on_b),
        (2..=last).collect::<Vec<_>>(),
        "{:?}",
        describe(&on_b)
    );
    assert!(
        describe(&on_b)
            .last()
            .expect("events")
            .starts_with("status:COMPLETED")
    );
    // Nothing of A's after the takeover (its late commit is fenced), and B continued from
    // A's last committed checkpoint (issue 13 item 8): every chunk exactly once, in order.
    let chunks = chunk_numbers(&on_b);
    assert_eq!(chunks, (1..=30).collect::<Vec<_>>(), "{chunks:?}");
    // A stopped its execution and serves reads from the store.
    let t = a.client.get_task(&id, None).await.expect("get on A");
    assert_eq!(t.state(), TaskState::Completed);
    a.stop().await;
    b.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_killed_its_owners_too_often_fails_as_poison() {
    let db = Db::new().await;
    let limit = ["--max-takeovers", "1"];
    let a = Replica::start(&db, "a", &limit).await;
    let b = Replica::start(&db, "b", &limit).await;
    let task = a
        .client
        .send_message(switchyard::pb::a2a::SendMessageRequest {
            configuration: Some(SendMessageConfiguration {
                return_immediately: true,
                ..Default::default()
            }),
            ..request(message("deadly", json!({"delay_ms": 60_000})))
        })
        .await
        .expect("send");
    let Some(send_message_response::Payload::Task(task)) = task.payload else {
        panic!("a task")
    };
    let id = task.id;
    a.kill9().await;
    lease_until(&db, &id, "B took the task over", |o, n| {
        o.starts_with("b/") && n == 1
    })
    .await;
    let c = Replica::start(&db, "c", &limit).await;
    b.kill9().await;
    let t = tokio::time::timeout(WAIT, settle(&c.client, &id))
        .await
        .expect("settles");
    assert_eq!(t.state(), TaskState::Failed);
    assert!(
        status_text(&t).contains("poison task: its owner died 2 times"),
        "{}",
        status_text(&t)
    );
    switchyard::install_crypto_provider();
    let metrics = reqwest::get(format!("http://{}/metrics", c.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("switchyard_tasks_poisoned_total{agent=\"echo\"} 1"),
        "{metrics}"
    );
    c.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_delivery_resumes_after_a_restart_without_resending_delivered_events() {
    #[derive(Clone, Default)]
    struct Hits(Arc<Mutex<HashMap<u64, usize>>>);
    let hits = Hits::default();
    let app = Router::new()
        .route(
            "/hook",
            post(|State(h): State<Hits>, body: String| async move {
                let e: StreamResponse = serde_json::from_str(&body).expect("protobuf JSON");
                *h.0.lock()
                    .expect("lock")
                    .entry(sequence_of(&e).expect("seq"))
                    .or_default() += 1;
                http::StatusCode::OK
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let db = Db::new().await;
    let push = [
        "--push-notifications",
        "--push-allow-http",
        "--push-allow-network",
        "127.0.0.0/8",
    ];
    let a = Replica::start(&db, "a", &push).await;
    let mut req = request(message(
        "pushed",
        json!({"chunks": 20, "chunk_delay_ms": 100}),
    ));
    req.configuration = Some(SendMessageConfiguration {
        task_push_notification_config: Some(TaskPushNotificationConfig {
            url,
            ..Default::default()
        }),
        return_immediately: true,
        ..Default::default()
    });
    let sent = a.client.send_message(req).await.expect("send");
    let Some(send_message_response::Payload::Task(task)) = sent.payload else {
        panic!("a task")
    };
    let id = task.id;
    tokio::time::timeout(WAIT, async {
        while hits.0.lock().expect("lock").len() < 8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("some events pushed");
    a.kill9().await;
    let before: usize = hits.0.lock().expect("lock").len();
    // The restarted agent takes the task over once A's lease expires.
    let a2 = Replica::start(&db, "a", &push).await;
    let t = tokio::time::timeout(WAIT, settle(&a2.client, &id))
        .await
        .expect("settles");
    assert_eq!(t.state(), TaskState::Completed);
    let last = a2.client.subscribe(&id, Some(0)).await.expect("replay");
    let last = *seqs(&collect(last).await).last().expect("events");
    tokio::time::timeout(WAIT, async {
        while (hits.0.lock().expect("lock").len() as u64) < last {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every event pushed");
    let hits = hits.0.lock().expect("lock").clone();
    let mut got: Vec<u64> = hits.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, (1..=last).collect::<Vec<_>>());
    let again: Vec<_> = hits.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.len() <= 1,
        "at most the event in flight at the kill is sent again ({before} delivered before): \
         {again:?}"
    );
    a2.stop().await;
    db.drop().await;
}

#[test]
fn test_database_urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}
