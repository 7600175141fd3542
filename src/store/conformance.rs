//! The store conformance suite: one set of async checks run against [`MemoryStore`],
//! [`SqliteStore`] and (feature `postgres`) [`PostgresStore`], each test on a fresh store (for
//! PostgreSQL, a uniquely named schema in the database of `SWITCHYARD_TEST_POSTGRES`, dropped at
//! the end), so that they run in parallel. Where the stores differ by design (leases, notices
//! and push cursors are real only in a shared store; a duplicate sequence number is refused only
//! by the SQL stores), [`Promises`] says what each store promises and the checks assert exactly
//! that.
//!
//! [`PostgresStore`]: super::PostgresStore

use std::time::Duration;

use super::{
    LeaseClaim, MemoryStore, MessageKey, NewTask, PageCursor, SqliteStore, StoreError, StoredEvent,
    SweepRule, TaskQuery, TaskStore, TaskWrite,
};
use crate::pb::{
    Timestamp,
    a2a::{
        StreamResponse, Task, TaskPushNotificationConfig, TaskState, TaskStatus,
        TaskStatusUpdateEvent, stream_response::Payload,
    },
};

/// What a store promises beyond the common contract.
#[derive(Clone, Copy, Debug)]
struct Promises {
    /// Real leases: exclusion, expiry, takeover counting, fencing, push cursors.
    shared: bool,
    /// A commit with an already stored `(task, seq)` fails and writes nothing.
    rejects_duplicate_seq: bool,
}

const MEMORY: Promises = Promises {
    // Several servers of one process may share one `Arc<MemoryStore>` as replicas.
    shared: true,
    rejects_duplicate_seq: false,
};
const SQLITE: Promises = Promises {
    shared: false,
    rejects_duplicate_seq: true,
};
#[cfg(feature = "postgres")]
const POSTGRES: Promises = Promises {
    shared: true,
    rejects_duplicate_seq: true,
};

fn event(id: &str, seq: u64) -> StoredEvent {
    StoredEvent {
        seq,
        event: StreamResponse {
            payload: Some(Payload::StatusUpdate(TaskStatusUpdateEvent {
                task_id: id.into(),
                context_id: format!("seq-{seq}"),
                ..Default::default()
            })),
        },
    }
}

/// Task `id` of context `ctx` in `state` at `us` µs, with events `seqs`.
fn write(id: &str, ctx: &str, state: TaskState, us: i64, seqs: &[u64]) -> TaskWrite {
    TaskWrite {
        head_only: false,
        snapshot: Task {
            id: id.into(),
            context_id: ctx.into(),
            status: Some(TaskStatus {
                state: state as i32,
                message: None,
                timestamp: Some(Timestamp {
                    seconds: us.div_euclid(1_000_000),
                    nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).expect("nanos"),
                }),
            }),
            ..Default::default()
        }
        .into(),
        last_seq: seqs.last().copied().unwrap_or(0),
        events: seqs.iter().map(|s| event(id, *s)).collect(),
        epoch: None,
        messages: Vec::new(),
        checkpoint: None,
        creates: None,
    }
}

fn ids(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.id.as_str()).collect()
}

fn push(task: &str, id: &str, url: &str) -> TaskPushNotificationConfig {
    TaskPushNotificationConfig {
        id: id.into(),
        task_id: task.into(),
        url: url.into(),
        ..Default::default()
    }
}

const T0: i64 = 1_700_000_000_000_000;

async fn commit_get_events(s: &dyn TaskStore, p: Promises) {
    assert!(s.task("nope").await.expect("get").is_none());
    assert!(s.events_after("nope", 0).await.expect("events").is_empty());
    s.commit(&[write("a", "c", TaskState::Submitted, T0, &[1])])
        .await
        .expect("commit");
    s.commit(&[write("a", "c", TaskState::Working, T0 + 1, &[2, 3])])
        .await
        .expect("commit");
    let got = s.task("a").await.expect("get").expect("stored");
    assert_eq!(got.last_seq, 3);
    assert_eq!(got.task.state(), TaskState::Working);
    assert_eq!(got.task.status_micros(), T0 + 1);
    let all = s.events_after("a", 0).await.expect("events");
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(all[1], event("a", 2), "events round-trip");
    let tail = s.events_after("a", 2).await.expect("events");
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    assert!(s.events_after("a", 3).await.expect("events").is_empty());

    // Two writes of one task in one batch: the later snapshot wins, both events land.
    let mut second = write("b", "c", TaskState::Completed, T0 + 5, &[2]);
    std::sync::Arc::make_mut(&mut second.snapshot)
        .history
        .push(Default::default());
    s.commit(&[write("b", "c", TaskState::Working, T0 + 4, &[1]), second])
        .await
        .expect("commit");
    let b = s.task("b").await.expect("get").expect("stored");
    assert_eq!((b.task.state(), b.last_seq), (TaskState::Completed, 2));
    assert_eq!(b.task.history.len(), 1);
    assert_eq!(s.events_after("b", 0).await.expect("events").len(), 2);

    if p.rejects_duplicate_seq {
        // A batch holding a duplicate (task, seq) fails as a whole.
        let err = s
            .commit(&[
                write("new", "c", TaskState::Working, T0, &[1]),
                write("a", "c", TaskState::Failed, T0 + 9, &[3]),
            ])
            .await;
        assert!(err.is_err(), "duplicate seq accepted");
        assert!(s.task("new").await.expect("get").is_none(), "not atomic");
        let a = s.task("a").await.expect("get").expect("stored");
        assert_eq!(a.task.state(), TaskState::Working);
        assert_eq!(s.events_after("a", 0).await.expect("events").len(), 3);
    }
}

async fn list_filters_order_paging(s: &dyn TaskStore, _: Promises) {
    let q = |page_size| TaskQuery {
        page_size,
        ..Default::default()
    };
    let empty = s.list(&q(10)).await.expect("list");
    assert!(empty.tasks.is_empty() && empty.next.is_none() && empty.total == 0);
    s.commit(&[
        write("t1", "x", TaskState::Completed, T0 + 1, &[1]),
        write("t2", "y", TaskState::Working, T0 + 2, &[1]),
        write("t3", "x", TaskState::Working, T0 + 3, &[1]),
        // Same timestamp as t3: id breaks the tie (descending).
        write("t4", "x", TaskState::Failed, T0 + 3, &[1]),
        write("t5", "y", TaskState::Completed, T0 + 5, &[1]),
    ])
    .await
    .expect("commit");

    let all = s.list(&q(10)).await.expect("list");
    assert_eq!(ids(&all.tasks), ["t5", "t4", "t3", "t2", "t1"]);
    assert_eq!((all.total, all.next.as_ref()), (5, None));

    // Paging by cursor.
    let p1 = s.list(&q(2)).await.expect("list");
    assert_eq!(ids(&p1.tasks), ["t5", "t4"]);
    assert_eq!(p1.total, 5);
    let c1 = p1.next.expect("more");
    assert_eq!(
        c1,
        PageCursor {
            status_micros: T0 + 3,
            task_id: "t4".into()
        }
    );
    let p2 = s
        .list(&TaskQuery {
            after: Some(c1),
            ..q(2)
        })
        .await
        .expect("list");
    assert_eq!(ids(&p2.tasks), ["t3", "t2"]);
    let p3 = s
        .list(&TaskQuery {
            after: p2.next,
            ..q(2)
        })
        .await
        .expect("list");
    assert_eq!(ids(&p3.tasks), ["t1"]);
    assert!(p3.next.is_none());

    // Filters, alone and together, with their totals.
    let by = |context_id: Option<&str>, state: Option<TaskState>, after: Option<i64>| TaskQuery {
        context_id: context_id.map(Into::into),
        state,
        status_after_micros: after,
        ..q(10)
    };
    let cases: [(TaskQuery, &[&str]); 6] = [
        (by(Some("x"), None, None), &["t4", "t3", "t1"]),
        (by(None, Some(TaskState::Working), None), &["t3", "t2"]),
        (by(Some("y"), Some(TaskState::Completed), None), &["t5"]),
        (by(None, None, Some(T0 + 2)), &["t5", "t4", "t3"]),
        (by(Some("x"), None, Some(T0 + 3)), &[]),
        (by(None, Some(TaskState::Rejected), None), &[]),
    ];
    for (query, want) in cases {
        let page = s.list(&query).await.expect("list");
        assert_eq!(ids(&page.tasks), want, "{query:?}");
        assert_eq!(page.total, want.len() as u64, "{query:?}");
    }

    // State changes move the per-state totals.
    s.commit(&[write("t2", "y", TaskState::Canceled, T0 + 6, &[2])])
        .await
        .expect("commit");
    let working = s
        .list(&by(None, Some(TaskState::Working), None))
        .await
        .expect("list");
    assert_eq!((ids(&working.tasks), working.total), (vec!["t3"], 1));
    assert_eq!(s.list(&q(1)).await.expect("list").total, 5);

    // A byte limit ends the page early, but a page always holds one task.
    let one = s.task("t5").await.expect("get").expect("t5");
    let len = prost::Message::encoded_len(&one.task);
    let tight = s
        .list(&TaskQuery {
            max_bytes: Some(len + len / 2),
            ..q(10)
        })
        .await
        .expect("list");
    assert_eq!(tight.tasks.len(), 1);
    assert!(tight.next.is_some());
    let tiny = s
        .list(&TaskQuery {
            max_bytes: Some(1),
            ..q(10)
        })
        .await
        .expect("list");
    assert_eq!(tiny.tasks.len(), 1);
}

async fn unfinished_tasks(s: &dyn TaskStore, _: Promises) {
    s.commit(&[
        write("done", "c", TaskState::Completed, T0, &[1]),
        write("run", "c", TaskState::Working, T0, &[1]),
        write("ask", "c", TaskState::InputRequired, T0, &[1]),
        write("no", "c", TaskState::Rejected, T0, &[1]),
    ])
    .await
    .expect("commit");
    let mut open: Vec<String> = s
        .unfinished()
        .await
        .expect("unfinished")
        .into_iter()
        .map(|t| t.task.id)
        .collect();
    open.sort();
    assert_eq!(open, ["ask", "run"]);
}

async fn push_config_crud(s: &dyn TaskStore, p: Promises) {
    assert!(s.push_configs("t").await.expect("list").is_empty());
    s.put_push_config(&push("t", "p1", "http://a"))
        .await
        .expect("put");
    s.put_push_config(&push("t", "p2", "http://b"))
        .await
        .expect("put");
    s.put_push_config(&push("other", "p1", "http://c"))
        .await
        .expect("put");
    // Replacing keeps the creation order.
    s.put_push_config(&push("t", "p1", "http://a2"))
        .await
        .expect("put");
    let got = s.push_configs("t").await.expect("list");
    assert_eq!(
        got.iter()
            .map(|c| (c.id.as_str(), c.url.as_str()))
            .collect::<Vec<_>>(),
        [("p1", "http://a2"), ("p2", "http://b")]
    );
    assert_eq!(s.push_cursor("t", "p1").await.expect("cursor"), 0);
    s.set_push_cursor("t", "p1", 5).await.expect("cursor");
    s.set_push_cursor("t", "p1", 3).await.expect("cursor");
    let want = if p.shared { 5 } else { 0 };
    assert_eq!(
        s.push_cursor("t", "p1").await.expect("cursor"),
        want,
        "never moves back"
    );
    assert_eq!(s.push_cursor("t", "p2").await.expect("cursor"), 0);
    assert!(s.delete_push_config("t", "p1").await.expect("delete"));
    assert!(!s.delete_push_config("t", "p1").await.expect("delete"));
    assert!(!s.delete_push_config("t", "nope").await.expect("delete"));
    assert_eq!(s.push_configs("t").await.expect("list").len(), 1);
    assert_eq!(s.push_configs("other").await.expect("list").len(), 1);
}

async fn sweep_only_old_terminal_tasks(s: &dyn TaskStore, _: Promises) {
    s.commit(&[
        write("old-done", "c", TaskState::Completed, T0, &[1]),
        write("old-run", "c", TaskState::Working, T0, &[1]),
        write("mid-fail", "c", TaskState::Failed, T0 + 10, &[1]),
        write("new-done", "c", TaskState::Completed, T0 + 20, &[1]),
        write("fresh-done", "c", TaskState::Canceled, T0 + 100, &[1]),
    ])
    .await
    .expect("commit");
    s.put_push_config(&push("old-done", "p", "http://a"))
        .await
        .expect("put");
    // Age: older than T0+5 → only old-done (old-run is not terminal).
    let n = s
        .sweep(&SweepRule {
            older_than_micros: Some(T0 + 5),
            keep_newest: None,
            settled_before_micros: i64::MAX,
        })
        .await
        .expect("sweep");
    assert_eq!(n, 1);
    assert!(s.task("old-done").await.expect("get").is_none());
    assert!(s.events_after("old-done", 0).await.expect("ev").is_empty());
    assert!(s.push_configs("old-done").await.expect("push").is_empty());
    assert!(s.task("old-run").await.expect("get").is_some());
    // Count: keep the newest 1 terminal task, but nothing settled at or after T0+100.
    let n = s
        .sweep(&SweepRule {
            older_than_micros: None,
            keep_newest: Some(1),
            settled_before_micros: T0 + 100,
        })
        .await
        .expect("sweep");
    assert_eq!(n, 2, "mid-fail and new-done");
    let left: Vec<String> = s
        .list(&TaskQuery {
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("list")
        .tasks
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(left, ["fresh-done", "old-run"]);
    let total = s
        .list(&TaskQuery {
            page_size: 10,
            state: Some(TaskState::Completed),
            ..Default::default()
        })
        .await
        .expect("list")
        .total;
    assert_eq!(total, 0, "counts follow sweeps");
}

async fn leases_and_fencing(s: &dyn TaskStore, p: Promises) {
    let ttl = Duration::from_secs(30);
    s.commit(&[write("job", "c", TaskState::Working, T0, &[1])])
        .await
        .expect("commit");
    let LeaseClaim::Acquired(first) = s.acquire_lease("job", "r1", ttl).await.expect("lease")
    else {
        panic!("a free task's lease is granted");
    };
    assert_eq!((first.epoch, first.takeovers), (1, 0));
    if !p.shared {
        // A single-process store grants every lease and fences nothing.
        assert!(matches!(
            s.acquire_lease("job", "r2", ttl).await.expect("lease"),
            LeaseClaim::Acquired(_)
        ));
        assert!(s.renew_leases("r1", ttl).await.expect("renew").is_empty());
        assert_eq!(s.orphaned().await.expect("orphaned").len(), 1);
        assert!(s.notices().is_none());
        return;
    }
    // Held by r1: r2 is refused, r1 renews in place.
    assert_eq!(
        s.acquire_lease("job", "r2", ttl).await.expect("lease"),
        LeaseClaim::Held { owner: "r1".into() }
    );
    assert_eq!(
        s.acquire_lease("job", "r1", ttl).await.expect("lease"),
        LeaseClaim::Acquired(first.clone())
    );
    assert!(s.orphaned().await.expect("orphaned").is_empty(), "leased");
    let fenced = |epoch, seq| TaskWrite {
        head_only: false,
        epoch: Some(epoch),
        messages: Vec::new(),
        checkpoint: None,
        ..write("job", "c", TaskState::Working, T0 + seq as i64, &[seq])
    };
    s.commit(&[fenced(1, 2)]).await.expect("owner commits");

    // r1's lease runs out (a short renewal), r2 takes over: new epoch, one takeover.
    assert!(
        s.renew_leases("r1", Duration::from_millis(50))
            .await
            .expect("renew")
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s.orphaned().await.expect("orphaned").len(), 1, "expired");
    let LeaseClaim::Acquired(second) = s.acquire_lease("job", "r2", ttl).await.expect("lease")
    else {
        panic!("an expired lease is taken over");
    };
    assert_eq!((second.epoch, second.takeovers), (2, 1));
    // r1 learns it lost the task, once.
    assert_eq!(s.renew_leases("r1", ttl).await.expect("renew"), ["job"]);
    assert!(s.renew_leases("r1", ttl).await.expect("renew").is_empty());
    assert!(s.renew_leases("r2", ttl).await.expect("renew").is_empty());

    // A late write of r1 is refused as a whole batch; r2's goes through.
    let late = s
        .commit(&[
            write("bystander", "c", TaskState::Working, T0, &[1]),
            fenced(1, 3),
        ])
        .await;
    assert!(
        matches!(late, Err(StoreError::Fenced { ref task_id, epoch: 1 }) if task_id == "job"),
        "{late:?}"
    );
    assert!(
        s.task("bystander").await.expect("get").is_none(),
        "batch refused"
    );
    assert_eq!(s.task("job").await.expect("get").expect("job").last_seq, 2);
    s.commit(&[fenced(2, 3)]).await.expect("new owner commits");
    // No lease at all: a fenced write is refused too.
    let stray = s
        .commit(&[TaskWrite {
            head_only: false,
            epoch: Some(1),
            messages: Vec::new(),
            checkpoint: None,
            ..write("unleased", "c", TaskState::Working, T0, &[1])
        }])
        .await;
    assert!(matches!(stray, Err(StoreError::Fenced { .. })), "{stray:?}");

    // A release is not a takeover; the next owner gets a new epoch.
    s.release_lease(&second).await.expect("release");
    assert_eq!(s.orphaned().await.expect("orphaned").len(), 1, "released");
    let LeaseClaim::Acquired(third) = s.acquire_lease("job", "r3", ttl).await.expect("lease")
    else {
        panic!("a released lease is granted");
    };
    assert_eq!((third.epoch, third.takeovers), (3, 1));
    // Releasing with a stale lease changes nothing.
    s.release_lease(&second).await.expect("release");
    assert_eq!(
        s.acquire_lease("job", "r1", ttl).await.expect("lease"),
        LeaseClaim::Held { owner: "r3".into() }
    );
    // Terminal tasks are never orphaned.
    s.commit(&[TaskWrite {
        head_only: false,
        epoch: Some(3),
        messages: Vec::new(),
        checkpoint: None,
        ..write("job", "c", TaskState::Completed, T0 + 9, &[4])
    }])
    .await
    .expect("commit");
    s.release_lease(&third).await.expect("release");
    assert!(s.orphaned().await.expect("orphaned").is_empty());
}

/// A new task's write with [`NewTask::Leased`] (its first commit, epoch 1).
fn created(id: &str, state: TaskState, seqs: &[u64], owner: &str, ttl: Duration) -> TaskWrite {
    TaskWrite {
        head_only: false,
        epoch: Some(1),
        creates: Some(NewTask::Leased {
            owner: owner.into(),
            ttl,
        }),
        ..write(id, "c", state, T0, seqs)
    }
}

/// A creation takes the task's lease in its own commit (epoch 1, no takeover), exactly the
/// lease [`TaskStore::acquire_lease`] would have granted: others are refused, it renews,
/// expires and is taken over like any other; a creation of a task that exists (or has a
/// lease row) is refused as a whole batch; a task that settles in its creation has no lease.
async fn creation_takes_its_lease(s: &dyn TaskStore, p: Promises) {
    let ttl = Duration::from_secs(30);
    s.commit(&[created("new", TaskState::Working, &[1, 2], "r1", ttl)])
        .await
        .expect("the creation commits");
    assert_eq!(
        s.task("new").await.expect("get").expect("stored").last_seq,
        2
    );
    if !p.shared {
        // No leases here: the request is ignored, and every lease is granted as before.
        assert!(matches!(
            s.acquire_lease("new", "r2", ttl).await.expect("lease"),
            LeaseClaim::Acquired(_)
        ));
        return;
    }
    // Held by r1 from the commit on: r2 is refused, r1 renews in place, nothing is orphaned.
    assert_eq!(
        s.acquire_lease("new", "r2", ttl).await.expect("lease"),
        LeaseClaim::Held { owner: "r1".into() }
    );
    let LeaseClaim::Acquired(lease) = s.acquire_lease("new", "r1", ttl).await.expect("lease")
    else {
        panic!("the creator holds the lease");
    };
    assert_eq!(
        (lease.owner.as_str(), lease.epoch, lease.takeovers),
        ("r1", 1, 0)
    );
    assert!(s.orphaned().await.expect("orphaned").is_empty(), "leased");
    assert!(s.renew_leases("r1", ttl).await.expect("renew").is_empty());
    let next = TaskWrite {
        head_only: false,
        epoch: Some(1),
        ..write("new", "c", TaskState::Working, T0 + 1, &[3])
    };
    s.commit(&[next])
        .await
        .expect("the owner commits with epoch 1");

    // Creating it again (another replica; an id that exists) is refused, batch and all.
    for again in [
        created("new", TaskState::Working, &[1], "r2", ttl),
        TaskWrite {
            head_only: false,
            creates: Some(NewTask::Settled),
            ..created("new", TaskState::Completed, &[1], "r2", ttl)
        },
    ] {
        let refused = s
            .commit(&[write("bystander", "c", TaskState::Working, T0, &[1]), again])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Fenced { ref task_id, epoch: 1 }) if task_id == "new"),
            "{refused:?}"
        );
        assert!(
            s.task("bystander").await.expect("get").is_none(),
            "batch refused"
        );
    }
    assert_eq!(
        s.task("new").await.expect("get").expect("stored").last_seq,
        3
    );
    // A lease row without a task (taken the old way) refuses a creation too.
    assert!(matches!(
        s.acquire_lease("pre", "r2", ttl).await.expect("lease"),
        LeaseClaim::Acquired(_)
    ));
    let refused = s
        .commit(&[created("pre", TaskState::Working, &[1], "r1", ttl)])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { epoch: 1, .. })),
        "{refused:?}"
    );
    assert!(s.task("pre").await.expect("get").is_none());

    // The created lease expires and is taken over like any other; the creator is fenced.
    s.commit(&[created(
        "short",
        TaskState::Working,
        &[1],
        "r1",
        Duration::from_millis(50),
    )])
    .await
    .expect("commit");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        ids(&s
            .orphaned()
            .await
            .expect("orphaned")
            .into_iter()
            .map(|t| t.task)
            .collect::<Vec<_>>()),
        ["short"]
    );
    let LeaseClaim::Acquired(taken) = s.acquire_lease("short", "r2", ttl).await.expect("lease")
    else {
        panic!("an expired lease is taken over");
    };
    assert_eq!((taken.epoch, taken.takeovers), (2, 1));
    assert_eq!(s.renew_leases("r1", ttl).await.expect("renew"), ["short"]);
    let late = s
        .commit(&[TaskWrite {
            head_only: false,
            epoch: Some(1),
            ..write("short", "c", TaskState::Working, T0 + 1, &[2])
        }])
        .await;
    assert!(
        matches!(late, Err(StoreError::Fenced { epoch: 1, .. })),
        "{late:?}"
    );

    // Settled in its creation: no lease at all (another replica would get a first one), not
    // orphaned, nothing to renew or release.
    let settled = TaskWrite {
        head_only: false,
        creates: Some(NewTask::Settled),
        ..created("quick", TaskState::Completed, &[1, 2, 3], "r1", ttl)
    };
    s.commit(&[settled]).await.expect("commit");
    assert_eq!(
        s.task("quick")
            .await
            .expect("get")
            .expect("stored")
            .task
            .state(),
        TaskState::Completed
    );
    assert!(s.orphaned().await.expect("orphaned").is_empty(), "terminal");
    assert!(s.renew_leases("r1", ttl).await.expect("renew").is_empty());
    let LeaseClaim::Acquired(none_before) =
        s.acquire_lease("quick", "r2", ttl).await.expect("lease")
    else {
        panic!("nobody holds a settled task");
    };
    assert_eq!(
        (none_before.epoch, none_before.takeovers),
        (1, 0),
        "no lease row before"
    );
}

/// Two replicas creating the same task at once: exactly one creation commits, the other is
/// refused and writes nothing; the winner holds the lease.
async fn concurrent_creations_of_one_task(s: &dyn TaskStore, p: Promises) {
    if !p.shared {
        return;
    }
    let ttl = Duration::from_secs(30);
    for round in 0..5 {
        let id = format!("race-{round}");
        let one = [created(&id, TaskState::Working, &[1], "r1", ttl)];
        let two = [
            write(&format!("other-{round}"), "c", TaskState::Working, T0, &[1]),
            created(&id, TaskState::Working, &[1], "r2", ttl),
        ];
        let (a, b) = tokio::join!(s.commit(&one), s.commit(&two));
        let winner = match (&a, &b) {
            (Ok(()), Err(StoreError::Fenced { epoch: 1, .. })) => "r1",
            (Err(StoreError::Fenced { epoch: 1, .. }), Ok(())) => "r2",
            other => panic!("exactly one creation commits: {other:?}"),
        };
        assert_eq!(
            s.task(&format!("other-{round}"))
                .await
                .expect("get")
                .is_some(),
            winner == "r2",
            "the loser's batch is refused as a whole"
        );
        let loser = if winner == "r1" { "r2" } else { "r1" };
        assert_eq!(
            s.acquire_lease(&id, loser, ttl).await.expect("lease"),
            LeaseClaim::Held {
                owner: winner.into()
            }
        );
        assert_eq!(s.events_after(&id, 0).await.expect("events").len(), 1);
    }
}

async fn notices_on_commit_and_notify(s: &dyn TaskStore, p: Promises) {
    let Some(mut rx) = s.notices() else {
        assert!(!p.shared);
        return;
    };
    s.commit(&[write("n1", "c", TaskState::Working, T0, &[1, 2])])
        .await
        .expect("commit");
    s.notify(&super::StoreNotice::CancelRequested {
        task_id: "n1".into(),
    })
    .await
    .expect("notify");
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("notice within 10 s")
                .expect("open"),
        );
    }
    assert_eq!(
        got,
        [
            super::StoreNotice::Committed {
                task_id: "n1".into(),
                last_seq: 2
            },
            super::StoreNotice::CancelRequested {
                task_id: "n1".into()
            },
        ]
    );
    // A refused commit publishes nothing.
    let _ = s
        .commit(&[TaskWrite {
            head_only: false,
            epoch: Some(9),
            messages: Vec::new(),
            checkpoint: None,
            ..write("n2", "c", TaskState::Working, T0, &[1])
        }])
        .await;
    s.notify(&super::StoreNotice::CancelRequested {
        task_id: "mark".into(),
    })
    .await
    .expect("notify");
    let next = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("notice within 10 s")
        .expect("open");
    assert_eq!(
        next,
        super::StoreNotice::CancelRequested {
            task_id: "mark".into()
        }
    );
}

fn key(ctx: &str, id: &str) -> MessageKey {
    MessageKey {
        context_id: ctx.into(),
        message_id: id.into(),
    }
}

/// Accepted messages map to their task, in the same commit; a key keeps its first task; the
/// context is part of the key; a sweep forgets the swept task's messages.
async fn messages_map_to_their_task(s: &dyn TaskStore, _: Promises) {
    assert_eq!(s.task_for_message(&key("", "m1")).await.expect("get"), None);
    let mut a = write("a", "c", TaskState::Completed, T0, &[1]);
    a.messages = vec![key("", "m1"), key("c", "m2")];
    let mut b = write("b", "c", TaskState::Working, T0 + 1, &[1]);
    b.messages = vec![key("other", "m1")];
    s.commit(&[a, b]).await.expect("commit");
    let of = |ctx: &'static str, id: &'static str| async move {
        s.task_for_message(&key(ctx, id)).await.expect("get")
    };
    assert_eq!(of("", "m1").await.as_deref(), Some("a"));
    assert_eq!(of("c", "m2").await.as_deref(), Some("a"));
    assert_eq!(
        of("other", "m1").await.as_deref(),
        Some("b"),
        "context is in the key"
    );
    assert_eq!(of("c", "m1").await, None);
    assert_eq!(of("", "m2").await, None);
    // Many keys at once: one answer per key, in key order, a repeated key answered twice,
    // and more keys than one SQLite statement takes.
    let mut many = vec![
        key("c", "m1"),
        key("other", "m1"),
        key("", "m1"),
        key("c", "m2"),
        key("other", "m1"),
    ];
    many.extend((0..1200).map(|i| key("c", &format!("absent-{i}"))));
    many.push(key("c", "m2"));
    let found = s.tasks_for_messages(&many).await.expect("get many");
    assert_eq!(found.len(), many.len(), "one answer per key");
    assert_eq!(
        found[..5].iter().map(Option::as_deref).collect::<Vec<_>>(),
        [None, Some("b"), Some("a"), Some("a"), Some("b")]
    );
    assert!(found[5..many.len() - 1].iter().all(Option::is_none));
    assert_eq!(found.last().cloned().flatten().as_deref(), Some("a"));
    assert_eq!(
        s.tasks_for_messages(&[]).await.expect("no keys"),
        Vec::<Option<String>>::new()
    );
    // A later commit (a continuation of b, a second task) adds keys; a recorded key keeps its
    // first task, and the commit with it still succeeds.
    let mut b2 = write("b", "c", TaskState::Completed, T0 + 2, &[2]);
    b2.messages = vec![key("c", "m3"), key("", "m1")];
    s.commit(&[b2])
        .await
        .expect("commit of a known key succeeds");
    assert_eq!(of("c", "m3").await.as_deref(), Some("b"));
    assert_eq!(of("", "m1").await.as_deref(), Some("a"), "first task kept");
    let n = s
        .sweep(&SweepRule {
            older_than_micros: Some(T0 + 1),
            keep_newest: None,
            settled_before_micros: i64::MAX,
        })
        .await
        .expect("sweep");
    assert_eq!(n, 1, "a");
    assert_eq!(of("", "m1").await, None, "swept with its task");
    assert_eq!(of("c", "m2").await, None);
    assert_eq!(of("other", "m1").await.as_deref(), Some("b"));
}

async fn checkpoints_replace_clear_and_sweep(s: &dyn TaskStore, _: Promises) {
    assert_eq!(s.checkpoint("a").await.expect("get"), None);
    let mut a = write("a", "c", TaskState::Working, T0, &[1]);
    a.checkpoint = Some(b"one".to_vec());
    s.commit(&[a]).await.expect("commit");
    assert_eq!(
        s.checkpoint("a").await.expect("get").as_deref(),
        Some(&b"one"[..])
    );
    // No checkpoint in a write: the stored one stays.
    s.commit(&[write("a", "c", TaskState::Working, T0, &[2])])
        .await
        .expect("commit");
    assert_eq!(
        s.checkpoint("a").await.expect("get").as_deref(),
        Some(&b"one"[..])
    );
    // Two writes of one task in a batch: the later one wins.
    let mut a3 = write("a", "c", TaskState::Working, T0, &[3]);
    a3.checkpoint = Some(b"two".to_vec());
    let mut a4 = write("a", "c", TaskState::Working, T0, &[4]);
    a4.checkpoint = Some(b"three".to_vec());
    s.commit(&[a3, a4]).await.expect("commit");
    assert_eq!(
        s.checkpoint("a").await.expect("get").as_deref(),
        Some(&b"three"[..])
    );
    // Empty: cleared (a new execution starts).
    let mut a5 = write("a", "c", TaskState::Working, T0, &[5]);
    a5.checkpoint = Some(Vec::new());
    s.commit(&[a5]).await.expect("commit");
    assert_eq!(s.checkpoint("a").await.expect("get"), None);
    // Swept with its task.
    let mut b = write("b", "c", TaskState::Completed, T0, &[1]);
    b.checkpoint = Some(b"b".to_vec());
    s.commit(&[b]).await.expect("commit");
    let n = s
        .sweep(&SweepRule {
            older_than_micros: Some(T0 + 1),
            keep_newest: None,
            settled_before_micros: i64::MAX,
        })
        .await
        .expect("sweep");
    assert_eq!(n, 1, "b");
    assert_eq!(s.checkpoint("b").await.expect("get"), None);
}

/// An event of task `id` at `seq`: `chunk` appended to its artifact `out`, or, with `None`,
/// a WORKING status at `T0 + seq` µs whose message says `seq` (the status before it goes to the
/// history).
fn fold_event(id: &str, seq: u64, chunk: Option<&str>) -> StoredEvent {
    use crate::pb::a2a::{Artifact, Message, Part, TaskArtifactUpdateEvent};
    let payload = match chunk {
        Some(text) => Payload::ArtifactUpdate(TaskArtifactUpdateEvent {
            task_id: id.into(),
            artifact: Some(Artifact {
                artifact_id: "out".into(),
                parts: vec![Part::text(text)],
                ..Default::default()
            }),
            append: true,
            ..Default::default()
        }),
        None => {
            let us = T0 + seq as i64;
            Payload::StatusUpdate(TaskStatusUpdateEvent {
                task_id: id.into(),
                status: Some(TaskStatus {
                    state: TaskState::Working as i32,
                    message: Some(Message::user_text(format!("at {seq}"))),
                    timestamp: Some(Timestamp {
                        seconds: us.div_euclid(1_000_000),
                        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).expect("nanos"),
                    }),
                }),
                ..Default::default()
            })
        }
    };
    StoredEvent {
        seq,
        event: StreamResponse {
            payload: Some(payload),
        },
    }
}

/// A head-only write keeps the stored snapshot and appends its events; every read (the task,
/// a list page, the unfinished tasks) returns the task as of its last event, the events
/// folded in; a later whole write replaces it, also one at the task's last event without events
/// of its own (nothing folded in again). A head of a task that is not stored fails its
/// batch, which writes nothing.
async fn head_only_writes_fold_on_read(s: &dyn TaskStore, _: Promises) {
    let mut created = write("a", "c", TaskState::Working, T0, &[]);
    created.last_seq = 1;
    created.events = vec![fold_event("a", 1, None)];
    crate::task::apply(
        std::sync::Arc::make_mut(&mut created.snapshot),
        &created.events[0].event,
    );
    s.commit(&[created.clone()]).await.expect("create");
    let mut expected = Task::clone(&created.snapshot);
    let mut seq = 1;
    for round in 0..2 {
        let events: Vec<StoredEvent> = (0..3)
            .map(|i| {
                seq += 1;
                fold_event("a", seq, (i != 2).then_some(&*format!("{round}.{i}")))
            })
            .collect();
        for e in &events {
            crate::task::apply(&mut expected, &e.event);
        }
        let head = TaskWrite {
            head_only: true,
            snapshot: Task {
                id: "a".into(),
                context_id: "c".into(),
                status: expected.status.clone(),
                ..Default::default()
            }
            .into(),
            last_seq: seq,
            events,
            epoch: None,
            messages: Vec::new(),
            checkpoint: None,
            creates: None,
        };
        s.commit(&[head]).await.expect("head");
        let got = s.task("a").await.expect("get").expect("stored");
        assert_eq!((got.last_seq, &got.task), (seq, &expected), "round {round}");
    }
    assert_eq!(
        expected.artifacts[0].parts.len(),
        4,
        "the chunks were appended"
    );
    assert_eq!(expected.history.len(), 2, "the replaced statuses' messages");
    assert_eq!(expected.status_micros(), T0 + 7);
    let page = s
        .list(&TaskQuery {
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(page.tasks, [expected.clone()]);
    let unfinished = s.unfinished().await.expect("unfinished");
    assert_eq!(unfinished.len(), 1);
    assert_eq!(
        (unfinished[0].last_seq, &unfinished[0].task),
        (7, &expected)
    );
    assert_eq!(s.events_after("a", 0).await.expect("events").len(), 7);

    // Whole at its last event, with no event of its own (the runtime's rewrite of a large
    // snapshot from its live task): read as written, its events neither lost nor folded in
    // again.
    let mut rewritten = expected.clone();
    rewritten
        .history
        .push(crate::pb::a2a::Message::agent_text("only in the rewrite"));
    let rewrite = TaskWrite {
        head_only: false,
        snapshot: rewritten.clone().into(),
        last_seq: 7,
        events: Vec::new(),
        epoch: None,
        messages: Vec::new(),
        checkpoint: None,
        creates: None,
    };
    s.commit(&[rewrite]).await.expect("rewrite");
    let got = s.task("a").await.expect("get").expect("stored");
    assert_eq!((got.last_seq, &got.task), (7, &rewritten), "rewritten");
    assert_eq!(s.events_after("a", 0).await.expect("events").len(), 7);

    // Whole again: stored as written.
    let mut whole = write("a", "c", TaskState::Completed, T0 + 8, &[8]);
    std::sync::Arc::make_mut(&mut whole.snapshot).artifacts = expected.artifacts.clone();
    s.commit(&[whole.clone()]).await.expect("whole");
    let got = s.task("a").await.expect("get").expect("stored");
    assert_eq!((got.last_seq, &got.task), (8, &*whole.snapshot));

    // A whole write and a head of the same task in one batch: the head applies after it.
    let created = write("d", "c", TaskState::Working, T0, &[1]);
    let head = TaskWrite {
        head_only: true,
        last_seq: 2,
        events: vec![fold_event("d", 2, Some("x"))],
        ..created.clone()
    };
    s.commit(&[created.clone(), head])
        .await
        .expect("whole then head");
    let mut d = Task::clone(&created.snapshot);
    crate::task::apply(&mut d, &fold_event("d", 2, Some("x")).event);
    let got = s.task("d").await.expect("get").expect("stored");
    assert_eq!((got.last_seq, &got.task), (2, &d));

    // A head of a task that is not stored.
    let mut unknown = whole.clone();
    unknown.head_only = true;
    std::sync::Arc::make_mut(&mut unknown.snapshot).id = "nope".into();
    let err = s
        .commit(&[write("b", "c", TaskState::Working, T0, &[1]), unknown])
        .await
        .expect_err("a head of no task");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    assert!(s.task("b").await.expect("get").is_none(), "nothing written");
    assert!(s.task("nope").await.expect("get").is_none());
}

/// Runs each named check against every store.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(&super::MemoryStore::new(), super::MEMORY).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = super::SqliteStore::open(
                        &dir.path().join("t.db"),
                        super::super::Durability::Os,
                    )
                    .await
                    .expect("open");
                    super::$check(&store, super::SQLITE).await;
                    store.close().await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = super::pg::TestSchema::new().await;
                    super::$check(&db.store, super::POSTGRES).await;
                    db.drop().await;
                }
            )*
        }
    };
}

conformance!(
    commit_get_events,
    list_filters_order_paging,
    unfinished_tasks,
    push_config_crud,
    sweep_only_old_terminal_tasks,
    leases_and_fencing,
    creation_takes_its_lease,
    concurrent_creations_of_one_task,
    notices_on_commit_and_notify,
    messages_map_to_their_task,
    checkpoints_replace_clear_and_sweep,
    head_only_writes_fold_on_read,
);

/// PostgreSQL test databases, and the checks only a shared store has.
#[cfg(feature = "postgres")]
pub(crate) mod pg {
    use std::time::Duration;

    use super::{T0, write};
    use crate::{
        pb::a2a::TaskState,
        store::{DatabaseUrl, Durability, PostgresOptions, PostgresStore, StoreNotice, TaskStore},
    };

    /// The DSN of the test database: `SWITCHYARD_TEST_POSTGRES`, default
    /// `postgres://postgres@127.0.0.1:5432/test` (trust auth).
    pub(crate) fn test_url() -> DatabaseUrl {
        DatabaseUrl::new(
            std::env::var("SWITCHYARD_TEST_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        )
    }

    /// A store on a fresh, uniquely named schema; [`drop`](Self::drop) removes it.
    pub(crate) struct TestSchema {
        pub(crate) store: PostgresStore,
        pub(crate) schema: String,
    }

    impl TestSchema {
        pub(crate) async fn new() -> Self {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let store = Self::open(&schema).await;
            Self { store, schema }
        }

        /// Another store (another replica) on `schema`.
        pub(crate) async fn open(schema: &str) -> PostgresStore {
            let url = test_url();
            let options = PostgresOptions {
                durability: Durability::Os,
                max_connections: 4,
                ..PostgresOptions::new(schema)
            };
            match PostgresStore::connect(&url, &options).await {
                Ok(s) => s,
                Err(e) => panic!(
                    "these tests need PostgreSQL at {url} ({e}). Start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
                     (install: `apt-get install postgresql`), or point SWITCHYARD_TEST_POSTGRES \
                     at a database the tests may create schemas in"
                ),
            }
        }

        pub(crate) async fn drop(self) {
            self.store.drop_schema().await.expect("drop schema");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_see_each_others_commits_and_notices() {
        let db = TestSchema::new().await;
        let b = TestSchema::open(&db.schema).await;
        let mut rx = b.notices().expect("notices");
        db.store
            .commit(&[write("shared", "c", TaskState::Working, T0, &[1, 2, 3])])
            .await
            .expect("commit");
        let notice = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("within 10 s")
            .expect("open");
        assert_eq!(
            notice,
            StoreNotice::Committed {
                task_id: "shared".into(),
                last_seq: 3
            }
        );
        assert_eq!(b.events_after("shared", 1).await.expect("events").len(), 2);
        assert_eq!(
            b.task("shared").await.expect("get").expect("task").last_seq,
            3
        );
        b.close().await;
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_listener_comes_back_after_its_connection_is_killed() {
        let db = TestSchema::new().await;
        let mut rx = db.store.notices().expect("notices");
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
        )
        .bind(format!("LISTEN \"switchyard_{}\"", db.schema))
        .fetch_all(db.store.pool())
        .await
        .expect("terminate");
        assert_eq!(killed, [true], "one listening connection");
        // Notices sent while it reconnects are lost: commit until one arrives.
        let back = tokio::time::timeout(Duration::from_secs(20), async {
            let mut seq = 0;
            loop {
                seq += 1;
                db.store
                    .commit(&[write("again", "c", TaskState::Working, T0, &[seq])])
                    .await
                    .expect("commit");
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
                {
                    break n;
                }
            }
        })
        .await
        .expect("notices again within 20 s");
        assert!(matches!(back, StoreNotice::Committed { ref task_id, .. } if task_id == "again"));
        db.drop().await;
    }

    /// A takeover that waits for an in-flight commit (which holds the lease row `FOR SHARE`)
    /// past the length of its own lease still gets a whole lease once the commit ends, not one
    /// that expired while it waited (the statement's start time, `now()`, would give that).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_takeover_that_waited_for_a_commit_gets_a_whole_lease() {
        use crate::store::LeaseClaim;
        let db = TestSchema::new().await;
        db.store
            .commit(&[write("job", "c", TaskState::Working, T0, &[1])])
            .await
            .expect("commit");
        let short = Duration::from_millis(100);
        assert!(matches!(
            db.store
                .acquire_lease("job", "r1", short)
                .await
                .expect("lease"),
            LeaseClaim::Acquired(_)
        ));
        // r1's commit, frozen with the row locked; r1's lease runs out meanwhile.
        let mut commit = db.store.pool().begin().await.expect("begin");
        sqlx::query("SELECT epoch FROM task_leases WHERE task_id = 'job' FOR SHARE")
            .execute(&mut *commit)
            .await
            .expect("lock");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ttl = Duration::from_secs(2);
        let b = TestSchema::open(&db.schema).await;
        let takeover = tokio::spawn(async move {
            let claim = b.acquire_lease("job", "r2", ttl).await;
            (b, claim)
        });
        // The takeover waits longer than its lease lasts.
        tokio::time::sleep(ttl + Duration::from_millis(500)).await;
        assert!(!takeover.is_finished(), "the takeover waits for the commit");
        commit.commit().await.expect("the frozen commit ends");
        let (b, claim) = tokio::time::timeout(Duration::from_secs(10), takeover)
            .await
            .expect("the takeover ends")
            .expect("join");
        let LeaseClaim::Acquired(lease) = claim.expect("lease") else {
            panic!("an expired lease is taken over");
        };
        assert_eq!((lease.owner.as_str(), lease.takeovers), ("r2", 1));
        let left: f64 = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM expires_at - clock_timestamp())::float8 \
             FROM task_leases WHERE task_id = 'job'",
        )
        .fetch_one(db.store.pool())
        .await
        .expect("expiry");
        assert!(left > 1.0, "the new lease has {left} s left of {ttl:?}");
        assert!(b.orphaned().await.expect("orphaned").is_empty(), "leased");
        assert!(matches!(
            db.store
                .acquire_lease("job", "r1", ttl)
                .await
                .expect("lease"),
            LeaseClaim::Held { .. }
        ));
        b.close().await;
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_starts_migrate_once() {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (a, b, c) = tokio::join!(
            TestSchema::open(&schema),
            TestSchema::open(&schema),
            TestSchema::open(&schema)
        );
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(a.pool())
            .await
            .expect("migrations table in the schema");
        assert_eq!(applied, 4, "0001 to 0004, once each");
        b.close().await;
        c.close().await;
        TestSchema { store: a, schema }.drop().await;
    }

    #[tokio::test]
    async fn unreachable_database_is_one_clear_error() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let url = DatabaseUrl::new(format!("postgres://u:hunter2@127.0.0.1:{port}/x"));
        let err = PostgresStore::connect(&url, &PostgresOptions::new("x"))
            .await
            .expect_err("nothing listens");
        let msg = err.to_string();
        assert!(
            matches!(err, crate::store::StoreError::Unavailable(_)),
            "{msg}"
        );
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
