//! `A2AService/ListTasks` latency as the task store grows: an echo agent over a SQLite store
//! seeded directly with 1,000 and then 100,000 finished tasks (each with its history message,
//! an artifact and three events, like an echo task), asked for the default page and for
//! pages filtered by context, by state and by status timestamp. Reports the p50 of each query
//! at both sizes and their ratio (flat is 1.0).
//!
//! `cargo run --release -p switchyard-bench --bin list_tasks_scale -- --help`

use std::{path::Path, time::Instant};

use clap::Parser;
use switchyard::{
    AgentServer, Client, Retention, ServeConfig, StoreConfig,
    pb::a2a::{
        Artifact, ListTasksRequest, Message, StreamResponse, Task, TaskState, TaskStatus,
        TaskStatusUpdateEvent, stream_response,
    },
    store::{Durability, SqliteStore, StoredEvent, TaskStore, TaskWrite},
    task::{new_id, now_timestamp, timestamp_micros},
};

#[derive(Debug, Parser)]
#[command(about = "ListTasks p50 over a store of 1k vs 100k tasks")]
struct Args {
    /// Tasks in the small store.
    #[arg(long, default_value_t = 1_000)]
    small: usize,
    /// Tasks in the large store.
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Calls per query and size.
    #[arg(long, default_value_t = 300)]
    calls: usize,
}

/// Tasks per context: a context filter matches this many.
const PER_CONTEXT: usize = 10;
/// Tasks per commit while seeding.
const SEED_BATCH: usize = 5_000;

/// The `i`-th seeded task, its status `i` ms after `start_us` (newer tasks have larger `i`):
/// one in 20 FAILED, the rest COMPLETED.
fn seeded(i: usize, start_us: i64) -> TaskWrite {
    let id = new_id();
    let context = format!("ctx-{}", i / PER_CONTEXT);
    let us = start_us + i as i64 * 1000;
    let mut message =
        Message::user_text(format!("seeded message {i}: {}", "lorem ipsum ".repeat(20)));
    message.task_id.clone_from(&id);
    message.context_id.clone_from(&context);
    // Recorded as the runtime records an accepted message (idempotent sends).
    let key = switchyard::store::MessageKey {
        context_id: context.clone(),
        message_id: message.message_id.clone(),
    };
    let state = if i.is_multiple_of(20) {
        TaskState::Failed
    } else {
        TaskState::Completed
    };
    let status = TaskStatus {
        state: state as i32,
        message: None,
        timestamp: Some(switchyard::pb::Timestamp {
            seconds: us / 1_000_000,
            nanos: (us % 1_000_000) as i32 * 1000,
        }),
    };
    let snapshot = Task {
        id: id.clone(),
        context_id: context.clone(),
        status: Some(status.clone()),
        artifacts: vec![Artifact::new("echo", message.parts.clone())],
        history: vec![message],
        metadata: None,
    };
    let update = |seq: u64, state: TaskState| StoredEvent {
        seq,
        event: StreamResponse {
            payload: Some(stream_response::Payload::StatusUpdate(
                TaskStatusUpdateEvent {
                    task_id: id.clone(),
                    context_id: context.clone(),
                    status: Some(TaskStatus {
                        state: state as i32,
                        ..status.clone()
                    }),
                    metadata: None,
                },
            )),
        },
    };
    let events = vec![
        StoredEvent {
            seq: 1,
            event: StreamResponse {
                payload: Some(stream_response::Payload::Task(snapshot.clone())),
            },
        },
        update(2, TaskState::Working),
        update(3, state),
    ];
    TaskWrite {
        head_only: false,
        snapshot: snapshot.into(),
        last_seq: 3,
        events,
        epoch: None,
        messages: vec![key],
        checkpoint: None,
        creates: None,
    }
}

async fn seed(path: &Path, n: usize, start_us: i64) -> anyhow::Result<()> {
    let store = SqliteStore::open(path, Durability::Os).await?;
    let mut i = 0;
    while i < n {
        let batch: Vec<TaskWrite> = (i..n.min(i + SEED_BATCH))
            .map(|j| seeded(j, start_us))
            .collect();
        store.commit(&batch).await?;
        i += batch.len();
    }
    store.close().await;
    Ok(())
}

/// The queries measured, by name.
fn queries(n: usize, start_us: i64) -> Vec<(&'static str, ListTasksRequest)> {
    let newest_us = start_us + n as i64 * 1000;
    vec![
        ("default page (50)", ListTasksRequest::default()),
        (
            "contextId",
            ListTasksRequest {
                context_id: format!("ctx-{}", n / PER_CONTEXT / 2),
                ..Default::default()
            },
        ),
        (
            "status COMPLETED",
            ListTasksRequest {
                status: TaskState::Completed as i32,
                ..Default::default()
            },
        ),
        (
            "status FAILED",
            ListTasksRequest {
                status: TaskState::Failed as i32,
                ..Default::default()
            },
        ),
        (
            "statusTimestampAfter (newest 100)",
            ListTasksRequest {
                status_timestamp_after: Some(switchyard::pb::Timestamp {
                    seconds: (newest_us - 100_000) / 1_000_000,
                    nanos: ((newest_us - 100_000) % 1_000_000) as i32 * 1000,
                }),
                ..Default::default()
            },
        ),
    ]
}

/// p50 of `calls` sequential calls of each query, µs, against a store of `n` tasks.
async fn measure(n: usize, calls: usize) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tasks.db");
    // A day ago, so that every seeded task is older than now.
    let start_us = timestamp_micros(&now_timestamp()) - 86_400_000_000;
    let t = Instant::now();
    seed(&path, n, start_us).await?;
    let db_mib = std::fs::metadata(&path)?.len() as f64 / 1048576.0;
    eprintln!(
        "seeded {n} tasks in {:.1} s ({db_mib:.1} MiB)",
        t.elapsed().as_secs_f64()
    );
    let server = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: StoreConfig::Sqlite {
                path,
                durability: Durability::Os,
            },
            retention: Retention::keep_all(),
            ..Default::default()
        },
    )
    .await?;
    let client = Client::connect(&server.local_addr().to_string()).await?;
    let stop = server.shutdown_handle();
    let join = tokio::spawn(server.run());
    let mut out = Vec::new();
    for (name, q) in queries(n, start_us) {
        let page = client.list_tasks(q.clone()).await?;
        anyhow::ensure!(!page.tasks.is_empty(), "{name}: empty page");
        let mut lat = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            client.list_tasks(q.clone()).await?;
            lat.push(t.elapsed().as_micros() as u64);
        }
        lat.sort_unstable();
        out.push((name, lat[lat.len() / 2]));
    }
    stop.shutdown();
    join.await?;
    Ok(out)
}

/// The allocator of the Switchyard binaries this benchmark stands for (mimalloc; see
/// `bench/RESULTS.md` §10, "mimalloc"), so that every peer served from this binary runs on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let small = measure(args.small, args.calls).await?;
    let large = measure(args.large, args.calls).await?;
    println!(
        "| query | p50 at {} tasks | p50 at {} tasks | ratio |",
        args.small, args.large
    );
    println!("|---|---|---|---|");
    for ((name, s), (_, l)) in small.iter().zip(&large) {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} |",
            *s as f64 / 1000.0,
            *l as f64 / 1000.0,
            *l as f64 / (*s).max(1) as f64
        );
    }
    Ok(())
}
