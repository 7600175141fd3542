//! A missing broker gives an error naming it; the tests' clean-up deletes what they created.

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use switchyard_bus::naming;

use crate::support::{self, Broker};

#[tokio::test]
async fn a_missing_broker_is_named() {
    for (url, transport) in [
        ("nats://127.0.0.1:1", "nats"),
        ("amqp://guest:guest@127.0.0.1:1/%2f", "amqp"),
        ("redis://127.0.0.1:1", "redis"),
        ("mqtt://127.0.0.1:1", "mqtt"),
        ("kafka://127.0.0.1:1", "kafka"),
    ] {
        let err = switchyard_bus::connect(url)
            .await
            .expect_err("nothing listens on port 1");
        let text = err.to_string();
        assert!(
            text.contains(&format!("the {transport} broker at {url} is not reachable")),
            "{text}"
        );
    }
    let err = switchyard_bus::connect("pulsar://x")
        .await
        .expect_err("unknown scheme");
    assert!(err.to_string().contains("scheme \"pulsar\""), "{err}");
}

/// The Kafka topics of a prefix, as the broker lists them.
fn kafka_topics(prefix: &str) -> Vec<String> {
    let servers = Broker::Kafka.url().replace("kafka://", "");
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .create()
        .expect("a metadata client");
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_deletes_kafka_topics() {
    let prefix = support::prefix();
    let bus = Broker::Kafka.connect().await;
    let config = support::config(&prefix);
    let address = config.address.clone();
    let addresses = [
        address.clone(),
        naming::dead_letter(&address),
        naming::events(&prefix, "echo"),
    ];
    for a in &addresses {
        bus.ensure(a, naming::BRIDGE_GROUP, config.consume)
            .await
            .expect("ensure");
    }
    let mut created = kafka_topics(&prefix);
    created.sort();
    let mut expected = addresses.to_vec();
    expected.sort();
    assert_eq!(created, expected, "the topics exist");
    support::clean(bus, &prefix, &[]).await;
    let left = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let left = kafka_topics(&prefix);
            if left.is_empty() {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(left.is_ok(), "left behind: {:?}", kafka_topics(&prefix));
}
