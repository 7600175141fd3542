//! Task retention (issue 9, item 6): old terminal tasks are swept to the configured bound, at
//! start and by the background sweeper; running and interrupted tasks are untouched.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use switchyard::{
    Retention, StoreConfig,
    pb::a2a::{ListTasksRequest, Task, TaskState, TaskStatus},
    store::{Durability, SqliteStore, TaskStore, TaskWrite},
    task::{new_id, timestamp_micros},
};
use switchyard_e2e::{Served, message, status_of};

use crate::gateway::PATIENCE;

/// A task in `state` whose status timestamp is `age` ago (plus `offset` µs, to order them).
fn task(state: TaskState, age: Duration, offset: i64) -> Task {
    let now = timestamp_micros(&switchyard::task::now_timestamp());
    let us = now - i64::try_from(age.as_micros()).expect("fits") + offset;
    let id = new_id();
    // A resumed WORKING task waits an hour: it stays running for the whole test.
    let mut m = message("seeded", json!({"delay_ms": 3_600_000}));
    m.task_id.clone_from(&id);
    m.context_id = "ctx".into();
    Task {
        id,
        context_id: "ctx".into(),
        status: Some(TaskStatus {
            state: state as i32,
            message: None,
            timestamp: Some(switchyard::pb::Timestamp {
                seconds: us.div_euclid(1_000_000),
                nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).expect("fits"),
            }),
        }),
        history: vec![m],
        ..Default::default()
    }
}

/// Writes `tasks` straight into `store`, beside any agent serving from it.
async fn seed(store: &SqliteStore, tasks: &[Task]) {
    let batch: Vec<TaskWrite> = tasks
        .iter()
        .map(|t| TaskWrite {
            head_only: false,
            snapshot: t.clone().into(),
            last_seq: 1,
            events: Vec::new(),
            epoch: None,
            messages: Vec::new(),
            checkpoint: None,
            creates: None,
        })
        .collect();
    store.commit(&batch).await.expect("seed");
}

fn ids(tasks: &[Task]) -> Vec<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

async fn total(echo: &Served) -> i32 {
    echo.client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("list")
        .total_size
}

#[tokio::test]
async fn old_terminal_tasks_are_swept_to_the_bound_and_running_ones_are_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tasks.db");
    let day = Duration::from_secs(24 * 3600);
    let old: Vec<Task> = (0..20)
        .map(|i| task(TaskState::Completed, 2 * day, i))
        .collect();
    let recent: Vec<Task> = (0..5)
        .map(|i| task(TaskState::Failed, Duration::from_secs(3600), i))
        .collect();
    let kept: Vec<Task> = [
        TaskState::InputRequired,
        TaskState::AuthRequired,
        TaskState::Working,
    ]
    .into_iter()
    .map(|s| task(s, 10 * day, 0))
    .collect();
    // One process owns a SQLite file: the test writes through the store the agent serves from.
    let store = Arc::new(SqliteStore::open(&db, Durability::Os).await.expect("open"));
    seed(
        &store,
        &[old.clone(), recent.clone(), kept.clone()].concat(),
    )
    .await;

    let shared: Arc<dyn TaskStore> = store.clone();
    let echo = Served::start_in(switchyard_echo::Echo, dir.path(), |c| {
        c.store = StoreConfig::Custom(shared);
        c.retention = Retention {
            max_age: Some(day),
            max_terminal_tasks: Some(3),
            sweep_interval: Duration::from_millis(50),
        };
    })
    .await;

    // Swept once before serving: every task older than a day, and all but the 3 newest
    // terminal ones; the interrupted and running tasks stay, however old.
    assert_eq!(total(&echo).await, 6);
    for id in ids(&old).iter().chain(&ids(&recent)[..2]) {
        let status = status_of(echo.client.get_task(id, None).await);
        assert_eq!(status.code(), tonic::Code::NotFound, "{id} swept");
    }
    for id in ids(&recent)[2..].iter().chain(&ids(&kept)) {
        echo.client.get_task(id, None).await.expect("kept");
    }
    let working = echo.client.get_task(&kept[2].id, None).await.expect("get");
    assert_eq!(working.state(), TaskState::Working);
    switchyard::install_crypto_provider();
    let metrics = reqwest::get(format!("{}/metrics", echo.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("switchyard_tasks_swept_total{agent=\"echo\"} 22"),
        "{metrics}"
    );

    // The background sweeper keeps the bound while the agent runs: old terminal tasks that
    // appear in the store are swept at its next run.
    seed(
        &store,
        &(0..4)
            .map(|i| task(TaskState::Canceled, 2 * day, i))
            .collect::<Vec<_>>(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while total(&echo).await != 6 {
        assert!(tokio::time::Instant::now() < deadline, "not swept in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let working = echo.client.get_task(&kept[2].id, None).await.expect("get");
    assert_eq!(working.state(), TaskState::Working);
}
