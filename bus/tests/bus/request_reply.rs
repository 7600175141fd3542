//! Request/reply over every transport returns the echo agent's real answer.

use std::time::Duration;

use switchyard_bus::{Dedupe, naming, request};
use switchyard_e2e::Served;

use crate::support::{self, Broker, WAIT};

async fn round_trip(broker: Broker) {
    let (echo, _dir) = Served::echo().await;
    let prefix = support::prefix();
    let bus = broker.connect().await;
    let bridge = support::start(
        broker.connect().await,
        echo.client.clone(),
        Dedupe::memory().await.expect("dedupe"),
        support::config(&prefix),
    );
    let address = naming::agent(&prefix, "echo");
    bus.ensure(
        &address,
        naming::BRIDGE_GROUP,
        support::config(&prefix).consume,
    )
    .await
    .expect("ensure");
    broker.attached().await;
    for text in ["hello bus", "second"] {
        let (id, env) = support::request(text, serde_json::Value::Null);
        let reply = request(bus.as_ref(), &address, env, &naming::reply(&prefix), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{broker:?}: {e}"));
        assert_eq!(support::echoed(&reply), text);
        assert_eq!(reply.correlation_id(), Some(id.as_str()));
        assert_eq!(reply.get("ce-subject"), Some("echo"));
    }
    // A republished request (same message id) is answered from the store: no second task.
    let (id, env) = support::request("once", serde_json::Value::Null);
    for _ in 0..2 {
        let reply = request(
            bus.as_ref(),
            &address,
            env.clone(),
            &naming::reply(&prefix),
            WAIT,
        )
        .await
        .expect("reply");
        assert_eq!(reply.correlation_id(), Some(id.as_str()));
        assert_eq!(support::echoed(&reply), "once");
    }
    let tasks = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list tasks");
    assert_eq!(tasks.total_size, 3, "one task per distinct message id");
    let stats = bridge.stats.clone();
    assert_eq!(switchyard_bus::Stats::get(&stats.duplicates), 1);
    bridge.stop().await;
    support::clean(bus, &prefix, &[]).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_inproc() {
    // In process, the bridge and the requester must share the one bus.
    let (echo, _dir) = Served::echo().await;
    let prefix = support::prefix();
    let bus = Broker::Inproc.connect().await;
    let bridge = support::start(
        bus.clone(),
        echo.client.clone(),
        Dedupe::memory().await.expect("dedupe"),
        support::config(&prefix),
    );
    let (id, env) = support::request("in process", serde_json::Value::Null);
    let address = naming::agent(&prefix, "echo");
    // The bridge may not have attached yet: the in-process bus keeps nothing for absent groups.
    bus.ensure(&address, naming::BRIDGE_GROUP, Default::default())
        .await
        .expect("ensure");
    let reply = request(bus.as_ref(), &address, env, &naming::reply(&prefix), WAIT)
        .await
        .expect("reply");
    assert_eq!(support::echoed(&reply), "in process");
    assert_eq!(reply.correlation_id(), Some(id.as_str()));
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_nats() {
    round_trip(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_amqp() {
    round_trip(Broker::Amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_redis() {
    round_trip(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_mqtt() {
    round_trip(Broker::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_kafka() {
    round_trip(Broker::Kafka).await;
}
