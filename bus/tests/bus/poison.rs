//! A poison message is dead-lettered with its reason after N attempts while the others keep
//! flowing; malformed messages never crash the bridge.

use std::time::Duration;

use bytes::Bytes;
use switchyard::pb::a2a::{Message, SendMessageRequest};
use switchyard_bus::{
    Dedupe, Envelope, Stats,
    envelope::{self, header},
    naming, request,
};
use switchyard_e2e::Served;

use crate::support::{self, Broker, WAIT};

async fn poison_and_garbage(broker: Broker) {
    let (echo, _dir) = Served::echo().await;
    let prefix = support::prefix();
    let bus = broker.connect().await;
    let config = support::config(&prefix);
    let address = config.address.clone();
    let dlq = config.dead_letter.clone();
    bus.ensure(&address, naming::BRIDGE_GROUP, config.consume)
        .await
        .expect("ensure");
    bus.ensure(&dlq, naming::DEAD_LETTER_GROUP, config.consume)
        .await
        .expect("ensure dlq");
    let mut dead = bus
        .consume(&dlq, naming::DEAD_LETTER_GROUP, "test", config.consume)
        .await
        .expect("consume dlq");
    let bridge = support::start(
        broker.connect().await,
        echo.client.clone(),
        Dedupe::memory().await.expect("dedupe"),
        config.clone(),
    );
    broker.attached().await;

    // The agent rejects a message without parts (INVALID_ARGUMENT) every time.
    let mut empty = Message::user_text("x");
    empty.parts.clear();
    empty.message_id = uuid::Uuid::new_v4().to_string();
    let poison_id = empty.message_id.clone();
    let poison = Envelope::request(
        "echo",
        &SendMessageRequest {
            message: Some(empty),
            ..Default::default()
        },
        envelope::JSON,
    )
    .expect("envelope");
    bus.publish(&address, poison).await.expect("publish poison");
    // Garbage: no envelope attributes at all, a body that is not JSON, a wrong version.
    bus.publish(
        &address,
        Envelope {
            body: Bytes::from_static(b"\xff\x00 not an envelope"),
            ..Default::default()
        },
    )
    .await
    .expect("publish garbage");
    let (_, good) = support::request("fine", serde_json::Value::Null);
    let mut bad_body = good.clone().with(header::ID, "bad-body");
    bad_body.body = Bytes::from_static(b"{\"message\": 42}");
    bus.publish(&address, bad_body).await.expect("publish");
    let (_, v2) = support::request("v2", serde_json::Value::Null);
    bus.publish(&address, v2.with(header::BUSVERSION, "2"))
        .await
        .expect("publish");

    // Others keep flowing.
    for i in 0..5 {
        let (id, env) = support::request(&format!("ok {i}"), serde_json::Value::Null);
        let reply = request(bus.as_ref(), &address, env, &naming::reply(&prefix), WAIT)
            .await
            .expect("reply");
        assert_eq!(reply.correlation_id(), Some(id.as_str()));
        assert_eq!(support::echoed(&reply), format!("ok {i}"));
    }

    let mut reasons = Vec::new();
    let read = async {
        while reasons.len() < 4 {
            let d = dead.next().await.expect("dead letter");
            reasons.push((
                d.envelope.id().unwrap_or_default().to_owned(),
                d.envelope
                    .get(header::DEAD_LETTER_REASON)
                    .unwrap_or_default()
                    .to_owned(),
            ));
            d.acker.ack().await.expect("ack");
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .unwrap_or_else(|_| panic!("{broker:?}: dead letters so far: {reasons:?}"));
    let poison_reason = reasons
        .iter()
        .find(|(id, _)| *id == poison_id)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("the poison message is dead-lettered: {reasons:?}"));
    assert!(
        poison_reason.contains("InvalidArgument")
            || poison_reason.contains("INVALID_ARGUMENT")
            || poison_reason.contains("invalid"),
        "{poison_reason}"
    );
    assert!(
        poison_reason.contains("after 3 attempts"),
        "{poison_reason}"
    );
    let malformed = reasons
        .iter()
        .filter(|(_, r)| r.starts_with("malformed: "))
        .count();
    assert_eq!(malformed, 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|(_, r)| r.contains("version \"2\"")),
        "{reasons:?}"
    );
    assert_eq!(Stats::get(&bridge.stats.dead_letters), 4);
    assert_eq!(Stats::get(&bridge.stats.malformed), 3);
    assert_eq!(Stats::get(&bridge.stats.retries), 2);
    assert!(!bridge.join.is_finished(), "the bridge still runs");
    bridge.stop().await;
    drop(dead);
    support::clean(bus, &prefix, &[]).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_nats() {
    poison_and_garbage(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_amqp() {
    poison_and_garbage(Broker::Amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_redis() {
    poison_and_garbage(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_mqtt() {
    poison_and_garbage(Broker::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_kafka() {
    poison_and_garbage(Broker::Kafka).await;
}
