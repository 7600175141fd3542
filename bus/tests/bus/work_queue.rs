//! Two competing bridges process 1,000 messages exactly once in effect while one of them is
//! killed mid-run: every message answered, one task per message.
//!
//! On MQTT the killed bridge is started again under the same name: a shared subscription's
//! broker never hands a dead member's messages to the others (see `switchyard_bus::mqtt`), so
//! its persistent session, resumed by the replacement, is where they come back from.

use std::{collections::HashSet, time::Duration};

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
    for i in 0..N {
        let (id, env) = support::request(&format!("job {i}"), serde_json::json!({"delay_ms": 2}));
        ids.insert(id);
        bus.publish(&address, env.with(header::REPLY_TO, &reply_to))
            .await
            .expect("publish");
    }
    let mut answered = HashSet::new();
    let mut a = Some(a);
    let mut replacement = None;
    let collect = async {
        while answered.len() < N {
            let reply = replies.next().await.expect("reply");
            support::echoed(&reply);
            answered.insert(reply.correlation_id().expect("correlation id").to_owned());
            if answered.len() == N / 5
                && let Some(a) = a.take()
            {
                assert!(Stats::get(&a.stats.consumed) > 0, "bridge a took part");
                a.kill().await;
                if restart {
                    replacement = Some(start("bridge-a").await);
                }
            }
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(240), collect).await;
    let counts = |s: &Stats| {
        format!(
            "consumed {}, redelivered {}, answered {}, duplicates {}",
            Stats::get(&s.consumed),
            Stats::get(&s.redeliveries),
            Stats::get(&s.answered),
            Stats::get(&s.duplicates)
        )
    };
    assert!(
        done.is_ok(),
        "{broker:?}: only {} of {N} answered; bridge b: {}; replacement of a: {:?}",
        answered.len(),
        counts(&b.stats),
        replacement.as_ref().map(|r| counts(&r.stats))
    );
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
             messages again"
        );
        r.stop().await;
    }
    b.stop().await;
    support::clean(bus.as_ref(), &prefix).await;
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

/// Ignored in the suite: under a loaded machine Mosquitto 2.0.11 has been seen to hand a
/// resumed persistent session fewer unacknowledged messages than it held (975 of 1,000
/// answered, once in four runs), which the bridge cannot recover. Run it with
/// `cargo nextest run -p switchyard-bus --test bus --run-ignored all work_queue_mqtt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Mosquitto can drop a resumed session's unacknowledged messages under load"]
async fn work_queue_mqtt() {
    competing_bridges_survive_a_crash(Broker::Mqtt).await;
}
