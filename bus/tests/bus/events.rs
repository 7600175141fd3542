//! Event stream: every task event is published in sequence order; a consumer that joins later
//! replays from the start of the stream and sees the same events as the live subscriber.

use std::time::Duration;

use switchyard::{pb::a2a::StreamResponse, task::sequence_of};
use switchyard_bus::{
    Dedupe,
    envelope::{Envelope, header},
    naming, request,
};
use switchyard_e2e::Served;

use crate::support::{self, Broker, WAIT};

fn describe(env: &Envelope) -> (String, u64) {
    let event: StreamResponse = env.decode("StreamResponse").expect("event body");
    let seq = sequence_of(&event).expect("every event carries its sequence");
    assert_eq!(env.get(header::SEQUENCE), Some(seq.to_string().as_str()));
    (env.id().unwrap_or_default().to_owned(), seq)
}

async fn replay_equals_live(broker: Broker) {
    let (echo, _dir) = Served::echo().await;
    let prefix = support::prefix();
    let bus = broker.connect().await;
    let mut config = support::config(&prefix);
    let events = naming::events(&prefix, "echo");
    config.events = Some(events.clone());
    let address = config.address.clone();
    bus.ensure(&address, naming::BRIDGE_GROUP, config.consume)
        .await
        .expect("ensure");
    bus.ensure(&events, naming::REPLAY_GROUP, config.consume)
        .await
        .expect("ensure events");
    let mut live = bus.subscribe(&events).await.expect("subscribe");
    let bridge = support::start(
        broker.connect().await,
        echo.client.clone(),
        Dedupe::memory().await.expect("dedupe"),
        config.clone(),
    );
    for i in 0..3 {
        let (_, env) = support::request(&format!("event {i}"), serde_json::Value::Null);
        let reply = request(bus.as_ref(), &address, env, &naming::reply(&prefix), WAIT)
            .await
            .expect("reply");
        assert_eq!(support::echoed(&reply), format!("event {i}"));
    }
    let mut seen = Vec::new();
    // Everything was published before the replies: read until a quiet 500 ms.
    while let Ok(Ok(env)) = tokio::time::timeout(Duration::from_millis(500), live.next()).await {
        seen.push(describe(&env));
    }
    assert!(
        seen.len() >= 6,
        "three tasks of at least two events each: {seen:?}"
    );
    for task in seen.chunk_by(|a, b| a.0.split(':').next() == b.0.split(':').next()) {
        let seqs: Vec<u64> = task.iter().map(|e| e.1).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "in sequence order per task");
    }
    let mut replay = bus
        .consume(&events, "late-reader", "test", config.consume)
        .await
        .expect("consume from the start");
    let mut replayed = Vec::new();
    let read = async {
        while replayed.len() < seen.len() {
            let d = replay.next().await.expect("replayed event");
            replayed.push(describe(&d.envelope));
            d.acker.ack().await.expect("ack");
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("replay");
    assert_eq!(replayed, seen, "replay equals the live stream");
    bridge.stop().await;
    drop((live, replay));
    support::clean(
        bus,
        &prefix,
        &[(&events, &[naming::REPLAY_GROUP, "late-reader"])],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_replay_nats() {
    replay_equals_live(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_replay_redis() {
    replay_equals_live(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_replay_kafka() {
    replay_equals_live(Broker::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_replay_amqp() {
    replay_equals_live(Broker::Amqp).await;
}
