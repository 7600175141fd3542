//! Idempotent SendMessage (issue 13 item 4): a message the agent accepted already (same
//! `contextId` as sent and same `messageId`) is answered with the task it went to, never a
//! second one: five sends of one message, across a restart on the same data directory, from
//! concurrent callers, through two replicas on one PostgreSQL schema; a repeated continuation
//! is not appended twice.
//!
//! The PostgreSQL test needs `SWITCHYARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and works in its own schema, dropped at the end.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use switchyard::{
    Client, StoreConfig,
    pb::a2a::{ListTasksRequest, Message, Role, StreamResponse, Task, TaskState, stream_response},
    store::{DatabaseUrl, PostgresOptions, PostgresStore},
    task::sequence_of,
};
use switchyard_e2e::{Served, collect, message, request};

/// Bound of every call of these tests.
const WAIT: Duration = Duration::from_secs(30);

/// A message with a fixed id, as a client that retries sends it each time.
fn fixed(text: &str, id: &str, metadata: serde_json::Value) -> Message {
    let mut m = message(text, metadata);
    m.message_id = id.to_owned();
    m
}

async fn send(client: &Client, m: &Message) -> Task {
    tokio::time::timeout(WAIT, client.send(m.clone()))
        .await
        .expect("send within the bound")
        .expect("send")
}

/// The task of a streamed send: its first event, and every event after it.
async fn send_streaming(client: &Client, m: &Message) -> (Task, Vec<StreamResponse>) {
    let events = tokio::time::timeout(WAIT, async {
        collect(
            client
                .send_streaming_message(request(m.clone()))
                .await
                .expect("stream"),
        )
        .await
    })
    .await
    .expect("stream within the bound");
    let Some(stream_response::Payload::Task(t)) = &events[0].payload else {
        panic!("a stream starts with its task: {events:?}")
    };
    (t.clone(), events)
}

/// `events` are every event of one finished run: sequence numbers 1, 2, … without a gap or a
/// duplicate, ending with COMPLETED.
fn assert_whole_run(events: &[StreamResponse]) {
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| sequence_of(e).expect("seq"))
        .collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(seqs, expected);
    assert!(events.len() > 3, "the chunks are there: {events:?}");
    match events.last().and_then(|e| e.payload.as_ref()) {
        Some(stream_response::Payload::StatusUpdate(u)) => assert_eq!(
            u.status.as_ref().map(|s| s.state()),
            Some(TaskState::Completed)
        ),
        other => panic!("ends with COMPLETED, not {other:?}"),
    }
}

async fn total(client: &Client) -> i32 {
    client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("list")
        .total_size
}

fn user_messages(t: &Task) -> usize {
    t.history
        .iter()
        .filter(|m| m.role == Role::User as i32)
        .count()
}

#[tokio::test]
async fn the_same_send_five_times_is_one_task_also_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = fixed("only once", "retried-message-1", json!({"chunks": 2}));
    let first = Served::start_in(switchyard_echo::Echo, dir.path(), |_| {}).await;
    let task = send(&first.client, &m).await;
    assert_eq!(task.state(), TaskState::Completed);
    for _ in 0..2 {
        let again = send(&first.client, &m).await;
        assert_eq!(again, task, "the same task, in its final state");
    }
    // A streamed retry is a subscription to that task: every event again, from the start.
    let (streamed, events) = send_streaming(&first.client, &m).await;
    assert_eq!(streamed.id, task.id);
    assert_whole_run(&events);
    assert_eq!(total(&first.client).await, 1);
    first.stop().await;

    // After a restart on the same data directory, the store still knows the message.
    let second = Served::start_in(switchyard_echo::Echo, dir.path(), |_| {}).await;
    let fifth = send(&second.client, &m).await;
    assert_eq!(fifth, task, "one task after five sends and a restart");
    assert_eq!(total(&second.client).await, 1);

    // Another message id, or the same id in another context, is another message.
    let other = send(
        &second.client,
        &fixed("only once", "retried-message-2", json!(null)),
    )
    .await;
    assert_ne!(other.id, task.id);
    let mut in_context = m.clone();
    in_context.context_id = "ctx-elsewhere".into();
    let elsewhere = send(&second.client, &in_context).await;
    assert_ne!(elsewhere.id, task.id);
    assert_eq!(total(&second.client).await, 3);
    second.stop().await;
}

#[tokio::test]
async fn a_repeated_continuation_is_not_appended_twice() {
    let (echo, _dir) = Served::echo().await;
    let asked = send(
        &echo.client,
        &fixed("start", "first-turn", json!({"ask": "more?"})),
    )
    .await;
    assert_eq!(asked.state(), TaskState::InputRequired);
    let mut reply = fixed("the answer", "second-turn", json!(null));
    reply.task_id.clone_from(&asked.id);
    let done = send(&echo.client, &reply).await;
    assert_eq!(done.state(), TaskState::Completed);
    // The retry of the continuation: the task as it is, not "accepts no more messages".
    let again = send(&echo.client, &reply).await;
    assert_eq!(again, done);
    let stored = echo.client.get_task(&done.id, None).await.expect("get");
    assert_eq!(user_messages(&stored), 2, "{:?}", stored.history);
    echo.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_are_one_task() {
    let (echo, _dir) = Served::echo().await;
    // Slow enough that every duplicate arrives while the first is still running.
    let m = fixed("at once", "concurrent-1", json!({"delay_ms": 300}));
    let sends = (0..8).map(|i| {
        let client = echo.client.clone();
        let m = m.clone();
        async move {
            if i % 2 == 0 {
                send(&client, &m).await
            } else {
                send_streaming(&client, &m).await.0
            }
        }
    });
    let tasks = futures::future::join_all(sends).await;
    let id = &tasks[0].id;
    assert!(tasks.iter().all(|t| &t.id == id), "{tasks:?}");
    assert_eq!(total(&echo.client).await, 1);
    let stored = echo.client.get_task(id, None).await.expect("get");
    assert_eq!(stored.state(), TaskState::Completed);
    assert_eq!(user_messages(&stored), 1);
    echo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_replicas_answer_a_repeated_message_with_one_task() {
    let url = DatabaseUrl::new(
        std::env::var("SWITCHYARD_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
    );
    let schema = format!("idem_{}", switchyard::task::new_id().replace('-', ""));
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let store = PostgresStore::connect(&url, &PostgresOptions::new(schema.clone()))
            .await
            .expect("connect (is PostgreSQL at SWITCHYARD_TEST_POSTGRES running?)");
        let dir = tempfile::tempdir().expect("tempdir");
        let served = Served::start_in(switchyard_echo::Echo, dir.path(), |c| {
            c.store = StoreConfig::Custom(Arc::new(store));
            c.replica_id = name.to_owned();
        })
        .await;
        replicas.push((served, dir));
    }
    let (a, b) = (&replicas[0].0.client, &replicas[1].0.client);
    let m = fixed("one task", "replicated-1", json!({"chunks": 2}));
    let task = send(a, &m).await;
    assert_eq!(task.state(), TaskState::Completed);
    for client in [b, a, b] {
        assert_eq!(send(client, &m).await, task);
    }
    let (streamed, events) = send_streaming(b, &m).await;
    assert_eq!(streamed.id, task.id);
    assert_whole_run(&events);
    // A duplicate while the task still runs on the other replica waits for its outcome.
    let slow = fixed("slow", "replicated-2", json!({"delay_ms": 500}));
    let (first, second) = tokio::join!(send(a, &slow), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(b, &slow).await
    });
    assert_eq!(first.state(), TaskState::Completed);
    assert_eq!(second, first);
    assert_eq!(total(a).await, 2);
    assert_eq!(total(b).await, 2);
    let store = PostgresStore::connect(&url, &PostgresOptions::new(schema.clone()))
        .await
        .expect("connect");
    for (served, _dir) in replicas {
        served.stop().await;
    }
    store.drop_schema().await.expect("drop schema");
}
