//! Publish/subscribe: one message on a topic reaches every agent subscribed to it (one group
//! per agent), and each agent's answer comes back with the same correlation id.

use std::{collections::BTreeSet, time::Duration};

use futures::StreamExt as _;

use switchyard_bus::{BridgeConfig, Dedupe, envelope::header, naming};
use switchyard_e2e::Served;

use crate::support::{self, Broker, WAIT};

async fn fan_out(broker: Broker) {
    let prefix = support::prefix();
    let topic = naming::topic(&prefix, "news");
    let bus = broker.connect().await;
    let mut agents = Vec::new();
    let mut bridges = Vec::new();
    for name in ["alpha", "beta"] {
        let (echo, dir) = Served::echo().await;
        let mut c: BridgeConfig = support::config(&prefix);
        c.agent = name.into();
        c.address = topic.clone();
        c.group = naming::topic_group(name);
        c.dead_letter = naming::dead_letter(&naming::agent(&prefix, name));
        bus.ensure(&topic, &c.group, c.consume)
            .await
            .expect("ensure");
        bridges.push(support::start(
            broker.connect().await,
            echo.client.clone(),
            Dedupe::memory().await.expect("dedupe"),
            c,
        ));
        agents.push((echo, dir));
    }
    broker.attached().await;
    let reply_to = naming::reply(&prefix);
    let mut replies = bus.subscribe(&reply_to).await.expect("subscribe");
    let (id, env) = support::request("to everyone", serde_json::Value::Null);
    bus.publish(&topic, env.with(header::REPLY_TO, &reply_to))
        .await
        .expect("publish");
    let mut from = BTreeSet::new();
    tokio::time::timeout(WAIT, async {
        while from.len() < 2 {
            let r = replies.next().await.expect("reply");
            assert_eq!(r.correlation_id(), Some(id.as_str()));
            assert_eq!(support::echoed(&r), "to everyone");
            from.insert(r.get(header::SUBJECT).unwrap_or_default().to_owned());
        }
    })
    .await
    .expect("both subscribers answer");
    assert_eq!(
        from,
        BTreeSet::from(["alpha".to_owned(), "beta".to_owned()])
    );
    for (echo, _) in &agents {
        let tasks = echo
            .client
            .list_tasks(Default::default())
            .await
            .expect("list");
        assert_eq!(tasks.total_size, 1, "each subscriber ran it once");
    }
    for b in bridges {
        b.stop().await;
    }
    let groups = [naming::topic_group("alpha"), naming::topic_group("beta")];
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    drop(replies);
    let bus = support::cleaner(bus).await;
    let _ = bus.remove(&topic, &groups).await;
    let _ = bus.remove(&reply_to, &[]).await;
    for name in ["alpha", "beta"] {
        let dlq = naming::dead_letter(&naming::agent(&prefix, name));
        let _ = bus.remove(&dlq, &[naming::DEAD_LETTER_GROUP]).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_nats() {
    fan_out(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_amqp() {
    fan_out(Broker::Amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_redis() {
    fan_out(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_mqtt() {
    fan_out(Broker::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_kafka() {
    fan_out(Broker::Kafka).await;
}

/// A publish that returned `Ok` is the broker's, even when the publisher crashes right after:
/// the bridge acknowledges a request once its reply is published, so a reply still in the
/// client's buffer when the bridge dies would be lost for good (its request acknowledged).
async fn confirmed_publishes_survive_a_crash(broker: Broker) {
    const COUNT: usize = 300;
    let prefix = support::prefix();
    let topic = naming::reply(&prefix);
    let reader = broker.connect().await;
    let mut seen = reader.subscribe(&topic).await.expect("subscribe");
    let publisher = broker.connect().await;
    for i in 0..COUNT {
        let (_, env) = support::request(&format!("confirmed {i}"), serde_json::Value::Null);
        publisher.publish(&topic, env).await.expect("publish");
    }
    // As `Running::kill` does: the connections end without a goodbye.
    publisher.close().await;
    let mut got = 0;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while got < COUNT {
            seen.next().await.expect("a message");
            got += 1;
        }
    })
    .await;
    assert_eq!(
        got, COUNT,
        "{broker:?}: every publish that returned reached the broker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_publish_mqtt() {
    confirmed_publishes_survive_a_crash(Broker::Mqtt).await;
}

/// Every record published while readers are reading reaches them: a live subscription and a
/// group consumer of a four-partition address, with three publishers writing at once. Tansu
/// 0.6 lets a fetch skip records that are being appended concurrently (seen in 2 of 4 runs of
/// 12,000 records); the Kafka consumer and subscription read a skipped range again
/// (`switchyard_bus::kafka`), and this test fails when they do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_all_arrive_kafka() {
    const PUBLISHERS: usize = 3;
    const EACH: usize = 1500;
    let broker = Broker::Kafka;
    let prefix = support::prefix();
    let address = naming::agent(&prefix, "echo");
    let bus = broker.connect().await;
    let options = switchyard_bus::ConsumeOptions {
        prefetch: 10_000,
        ack_wait: Duration::from_secs(30),
    };
    bus.ensure(&address, naming::BRIDGE_GROUP, options)
        .await
        .expect("ensure");
    let mut live = bus.subscribe(&address).await.expect("subscribe");
    let mut group = bus
        .consume(&address, naming::BRIDGE_GROUP, "reader", options)
        .await
        .expect("consume");
    let mut sent = BTreeSet::new();
    let batches: Vec<Vec<switchyard_bus::Envelope>> = (0..PUBLISHERS)
        .map(|p| {
            (0..EACH)
                .map(|i| {
                    let (_, env) = support::request(&format!("{p}/{i}"), serde_json::Value::Null);
                    sent.insert(env.id().expect("ce-id").to_owned());
                    env
                })
                .collect()
        })
        .collect();
    let publishing = futures::future::join_all(batches.into_iter().map(|batch| {
        let address = address.clone();
        async move {
            let publisher = broker.connect().await;
            futures::stream::iter(batch)
                .for_each_concurrent(32, |env| {
                    let (publisher, address) = (&publisher, &address);
                    async move { publisher.publish(address, env).await.expect("publish") }
                })
                .await;
            publisher.close().await;
        }
    }));
    let total = sent.len();
    let (mut by_subscription, mut by_group) = (BTreeSet::new(), BTreeSet::new());
    let read_subscription = async {
        while by_subscription.len() < total {
            let env = live.next().await.expect("subscription");
            by_subscription.insert(env.id().unwrap_or_default().to_owned());
        }
    };
    let read_group = async {
        while by_group.len() < total {
            let d = group.next().await.expect("group consumer");
            by_group.insert(d.envelope.id().unwrap_or_default().to_owned());
            d.acker.ack().await.expect("ack");
        }
    };
    let read = async { tokio::join!(read_subscription, read_group) };
    let (_, done) = tokio::join!(
        publishing,
        tokio::time::timeout(Duration::from_secs(60), read)
    );
    assert!(
        done.is_ok(),
        "within 60 s the subscription read {} and the group consumer {} of {total} records",
        by_subscription.len(),
        by_group.len()
    );
    assert_eq!(by_subscription, sent, "the subscription saw every record");
    assert_eq!(by_group, sent, "the group consumer got every record");
    drop((live, group));
    support::clean(bus, &prefix, &[]).await;
}
