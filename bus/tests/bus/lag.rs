//! Lag: what a group has not consumed yet, as each broker tells it (JetStream pending count,
//! RabbitMQ ready messages, the Redis group's lag, Kafka high watermark minus the committed
//! offset); MQTT has none.

use std::time::Duration;

use switchyard_bus::{Bus, ConsumeOptions, Delivery, Envelope, envelope::header, naming};

use crate::support::{self, Broker, WAIT};

const N: u64 = 5;

/// Makes sure `address` exists for `group`, then publishes [`N`] messages to it.
async fn ensure_and_publish(bus: &dyn Bus, address: &str, group: &str, consume: ConsumeOptions) {
    bus.ensure(address, group, consume).await.expect("ensure");
    for i in 0..N {
        let mut env = Envelope::default();
        env.set(header::ID, &format!("m{i}"));
        env.body = format!("{i}").into();
        bus.publish(address, env).await.expect("publish");
    }
}

/// Waits (up to [`WAIT`]) until the broker reports no lag for `group`: acknowledgements may
/// be committed asynchronously (Kafka).
async fn lag_drops_to_zero(bus: &dyn Bus, address: &str, group: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let lag = bus.lag(address, group).await.expect("lag");
        if lag == Some(0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: lag {lag:?} after every message was acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lag_follows_consumption(broker: Broker) {
    let prefix = support::prefix();
    let bus = broker.connect().await;
    let config = support::config(&prefix);
    let (address, group) = (config.address.clone(), naming::BRIDGE_GROUP);
    ensure_and_publish(&*bus, &address, group, config.consume).await;
    assert_eq!(
        bus.lag(&address, group).await.expect("lag"),
        Some(N),
        "{broker:?}: every published message is pending"
    );
    let mut consumer = bus
        .consume(&address, group, "lag-test", config.consume)
        .await
        .expect("consume");
    for _ in 0..N {
        let d = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("delivered in time")
            .expect("delivery");
        d.acker.ack().await.expect("ack");
    }
    lag_drops_to_zero(&*bus, &address, group, &format!("{broker:?}")).await;
    drop(consumer);
    support::clean(bus, &prefix, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_nats() {
    lag_follows_consumption(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_amqp() {
    lag_follows_consumption(Broker::Amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_redis() {
    lag_follows_consumption(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_kafka() {
    lag_follows_consumption(Broker::Kafka).await;
}

/// The next delivery a member's task hands over.
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("delivered in time")
        .expect("member running")
}

/// Kafka: a member that acknowledges, after a rebalance, what it was handed before it commits
/// nothing (the partition may be another member's now); every message is delivered again
/// and committed once acknowledged in the new assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_from_before_a_rebalance_commits_nothing_kafka() {
    let prefix = support::prefix();
    let bus = Broker::Kafka.connect().await;
    let config = support::config(&prefix);
    let (address, group) = (config.address.clone(), naming::BRIDGE_GROUP);
    ensure_and_publish(&*bus, &address, group, config.consume).await;
    // Each member keeps polling in a task of its own (a rebalance is served while a member
    // polls) and hands its deliveries over.
    let member = |name: &'static str| {
        let bus = bus.clone();
        let (address, consume) = (address.clone(), config.consume);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut consumer = bus
                .consume(&address, group, name, consume)
                .await
                .expect("consume");
            while let Ok(d) = consumer.next().await {
                if tx.send(d).is_err() {
                    break;
                }
            }
        });
        (task, rx)
    };
    let (a, mut from_a) = member("rebalance-a");
    let mut before = Vec::new();
    for _ in 0..N {
        before.push(next(&mut from_a).await);
    }
    // A second member joins: the partitions are shared anew, and what nobody committed is
    // delivered again (to either member).
    let (b, mut from_b) = member("rebalance-b");
    let mut again = Vec::new();
    while again.len() < N as usize {
        tokio::select! {
            d = next(&mut from_a) => again.push(d),
            d = next(&mut from_b) => again.push(d),
        }
    }
    for d in before {
        d.acker.ack().await.expect("ack");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bus.lag(&address, group).await.expect("lag"),
        Some(N),
        "acknowledgements from before the rebalance committed offsets"
    );
    for d in again {
        d.acker.ack().await.expect("ack");
    }
    lag_drops_to_zero(&*bus, &address, group, "kafka, after the rebalance").await;
    a.abort();
    b.abort();
    let _ = (a.await, b.await);
    support::clean(bus, &prefix, &[]).await;
}

/// MQTT brokers keep no per-group position to compare with: the bridge reports no lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_mqtt_is_not_reported() {
    let prefix = support::prefix();
    let bus = Broker::Mqtt.connect().await;
    let address = naming::agent(&prefix, "echo");
    assert_eq!(
        bus.lag(&address, naming::BRIDGE_GROUP).await.expect("lag"),
        None
    );
}
