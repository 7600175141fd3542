//! A missing broker gives an error naming it.

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
