//! Two competing bridges process 1,000 messages exactly once in effect while one of them is
//! killed mid-run: every message answered, one task per message.
//!
//! On MQTT the killed bridge is started again under the same name: a shared subscription's
//! broker never hands a dead member's messages to the others (see `switchyard_bus::mqtt`), so
//! its persistent session, resumed by the replacement, is where they come back from.

use std::{collections::HashSet, time::Duration};

use futures::StreamExt;

use switchyard_bus::{Dedupe, Stats, envelope::header, naming};
use switchyard_e2e::Served;

use crate::support::{self, Broker};

const N: usize = 1000;

async fn competing_bridges_survive_a_crash(broker: Broker) {
    let restart = matches!(broker, Broker::Mqtt);
    let (echo, _dir) = Served::echo_with(|c| {
        if let switchyard::StoreConfig::Sqlite { durability, .. } = &mut c.store {
            *durability = switchyard::store::Durability::Os;
        }
    })
    .await;
    let prefix = support::prefix();
    let db = tempfile::tempdir().expect("tempdir");
    let dedupe_path = db.path().join("bridge.db");
    let bus = broker.connect().await;
    let config = support::config(&prefix);
    let address = config.address.clone();
    bus.ensure(&address, naming::BRIDGE_GROUP, config.consume)
        .await
        .expect("ensure");
    let start = |name: &str| {
        let mut c = config.clone();
        c.name = name.into();
        let agent = echo.client.clone();
        let path = dedupe_path.clone();
        async move {
            support::start(
                broker.connect().await,
                agent,
                Dedupe::open(&path).await.expect("dedupe"),
                c,
            )
        }
    };
    let a = start("bridge-a").await;
    let b = start("bridge-b").await;
    broker.attached().await;

    let reply_to = naming::reply(&prefix);
    let mut replies = bus.subscribe(&reply_to).await.expect("subscribe");
    let mut ids = HashSet::new();
    let requests: Vec<_> = (0..N)
        .map(|i| {
            let (id, env) =
                support::request(&format!("job {i}"), serde_json::json!({"delay_ms": 2}));
            ids.insert(id);
            env.with(header::REPLY_TO, &reply_to)
        })
        .collect();
    // Many publishes in flight at once (each waits for the broker's confirmation), so the
    // bridges are still early in the run when a fifth of the replies is in and bridge a dies.
    futures::stream::iter(requests)
        .for_each_concurrent(64, |env| {
            let (bus, address) = (&bus, &address);
            async move { bus.publish(address, env).await.expect("publish") }
        })
        .await;
    let mut answered = HashSet::new();
    let counts = |s: &Stats| {
        format!(
            "consumed {}, redelivered {}, answered {}, duplicates {}, retries {}, dead letters {}",
            Stats::get(&s.consumed),
            Stats::get(&s.redeliveries),
            Stats::get(&s.answered),
            Stats::get(&s.duplicates),
            Stats::get(&s.retries),
            Stats::get(&s.dead_letters)
        )
    };
    let mut a = Some(a);
    let mut replacement = None;
    let mut a_at_kill = String::new();
    let collect = async {
        while answered.len() < N {
            let reply = replies.next().await.expect("reply");
            support::echoed(&reply);
            answered.insert(reply.correlation_id().expect("correlation id").to_owned());
            if answered.len() == N / 5
                && let Some(a) = a.take()
            {
                assert!(Stats::get(&a.stats.consumed) > 0, "bridge a took part");
                let stats = a.stats.clone();
                a.kill().await;
                a_at_kill = counts(&stats);
                if restart {
                    replacement = Some(start("bridge-a").await);
                }
            }
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(240), collect).await;
    if done.is_err() {
        let missing: Vec<&String> = ids.difference(&answered).collect();
        let why = explain(
            &bus,
            &echo.client,
            &dedupe_path,
            &address,
            &reply_to,
            &missing,
        )
        .await;
        panic!(
            "{broker:?}: only {} of {N} answered; bridge a when killed: {a_at_kill}; \
             bridge b: {}; replacement of a: {:?}; unanswered: {why}",
            answered.len(),
            counts(&b.stats),
            replacement.as_ref().map(|r| counts(&r.stats))
        );
    }
    assert_eq!(answered, ids, "every message answered, nothing else");
    let tasks = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list tasks");
    assert_eq!(
        tasks.total_size as usize, N,
        "{broker:?}: one task per message"
    );
    assert!(a.is_none(), "bridge a was killed mid-run");
    if let Some(r) = replacement {
        assert!(
            Stats::get(&r.stats.redeliveries) > 0,
            "the replacement resumed the killed bridge's session and got its unacknowledged \
             messages again; bridge a when killed: {a_at_kill}; replacement: {}",
            counts(&r.stats)
        );
        r.stop().await;
    }
    b.stop().await;
    drop(replies);
    support::clean(bus, &prefix, &[(&reply_to, &[])]).await;
}

/// Where each unanswered message got to, so a failure tells which layer lost it: its row in
/// the bridges' dedupe store (state, owner, takeovers), whether the agent has its task (the
/// bridge sets the context to `bus-<id>`), and, on Kafka, how often its request and a reply to
/// it are in the topics (read again from the first offset by a fresh consumer group).
async fn explain(
    bus: &std::sync::Arc<dyn switchyard_bus::Bus>,
    agent: &switchyard::Client,
    dedupe: &std::path::Path,
    address: &str,
    reply_to: &str,
    missing: &[&String],
) -> String {
    use sqlx::Row as _;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dedupe.display()))
        .await
        .expect("dedupe store");
    let in_topic = |topic: String| async move {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        if bus.transport() != "kafka" {
            return None;
        }
        let group = format!("diagnose-{}", uuid::Uuid::new_v4().simple());
        let mut c = bus
            .consume(&topic, &group, &group, Default::default())
            .await
            .ok()?;
        while let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(10), c.next()).await {
            let key = d
                .envelope
                .correlation_id()
                .or(d.envelope.id())
                .unwrap_or_default()
                .to_owned();
            *seen.entry(key).or_default() += 1;
            let _ = d.acker.ack().await;
        }
        Some(seen)
    };
    let requests = in_topic(address.to_owned()).await;
    let replies = in_topic(reply_to.to_owned()).await;
    let mut out = Vec::new();
    for id in missing {
        let row =
            sqlx::query("SELECT state, owner, takeovers FROM bus_dedupe WHERE message_id = ?1")
                .bind(id.as_str())
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten()
                .map(|r| {
                    format!(
                        "{}/{}/{}",
                        r.get::<String, _>(0),
                        r.get::<String, _>(1),
                        r.get::<i64, _>(2)
                    )
                });
        let task = agent
            .list_tasks(switchyard::pb::a2a::ListTasksRequest {
                context_id: format!("bus-{id}"),
                ..Default::default()
            })
            .await
            .map(|l| {
                l.tasks
                    .iter()
                    .map(|t| format!("{:?}", t.status.as_ref().map(|s| s.state())))
                    .collect::<Vec<_>>()
            });
        let count = |m: &Option<std::collections::HashMap<String, usize>>| {
            m.as_ref().map(|m| m.get(id.as_str()).copied().unwrap_or(0))
        };
        out.push(format!(
            "{id}: dedupe {row:?}, tasks {task:?}, requests in topic {:?}, replies in topic {:?}",
            count(&requests),
            count(&replies)
        ));
    }
    out.join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queue_nats() {
    competing_bridges_survive_a_crash(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queue_amqp() {
    competing_bridges_survive_a_crash(Broker::Amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queue_redis() {
    competing_bridges_survive_a_crash(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queue_kafka() {
    competing_bridges_survive_a_crash(Broker::Kafka).await;
}

/// Once flaky (975 of 1,000 answered, once in four runs on a loaded machine): the MQTT
/// publish returned before the broker had the message, so the killed bridge could have
/// acknowledged requests whose replies were still in its client's buffer. Publishes now wait
/// for the PUBACK (`pubsub::confirmed_publish_mqtt` checks that on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queue_mqtt() {
    competing_bridges_survive_a_crash(Broker::Mqtt).await;
}
