//! One trace from the publisher's `traceparent` through the bridge, the agent and the reply,
//! in a real OTLP receiver, over every transport (each carries `traceparent` in its own
//! headers: NATS headers, AMQP properties, Redis stream fields, MQTT 5 user properties, Kafka
//! record headers). Each test installs its process's telemetry (nextest runs every test in
//! its own process).

use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use switchyard::telemetry::{TelemetryConfig, init};
use switchyard_bus::{Dedupe, envelope::header, naming, request};
use switchyard_e2e::Served;

use crate::support::{self, Broker, WAIT};

fn attr(span: &ExportedSpan, key: &str) -> Option<String> {
    let raw = span.attributes.get(key)?;
    raw.split("StringValue(\"")
        .nth(1)
        .and_then(|rest| rest.split("\")").next())
        .map(str::to_owned)
}

async fn one_trace_from_publisher_through_bridge_and_agent_to_the_reply(broker: Broker) {
    let mut collector = FakeCollectorServer::start().await.expect("collector");
    let mut config = TelemetryConfig::from_env("switchyard-bus-test");
    config.otlp_endpoint = Some(collector.endpoint());
    let telemetry = init(&config).expect("telemetry installs once per process");

    let (echo, _dir) = Served::echo().await;
    let prefix = support::prefix();
    let bus = broker.connect().await;
    let config = support::config(&prefix);
    bus.ensure(&config.address, naming::BRIDGE_GROUP, config.consume)
        .await
        .expect("ensure");
    let bridge = support::start(
        broker.connect().await,
        echo.client.clone(),
        Dedupe::memory().await.expect("dedupe"),
        config.clone(),
    );
    broker.attached().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let publisher_span = "00f067aa0ba902b7";
    let (_, env) = support::request("traced", serde_json::Value::Null);
    let env = env.with(
        header::TRACEPARENT,
        &format!("00-{trace_id}-{publisher_span}-01"),
    );
    let reply = request(
        bus.as_ref(),
        &config.address,
        env,
        &naming::reply(&prefix),
        WAIT,
    )
    .await
    .expect("reply");
    assert_eq!(support::echoed(&reply), "traced");

    let mut spans: Vec<ExportedSpan> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Done when the bridge's span and the agent's SendMessage server span arrived.
    let complete = |spans: &[ExportedSpan]| {
        spans.iter().any(|s| {
            s.kind == "SPAN_KIND_SERVER" && attr(s, "rpc.method").as_deref() == Some("SendMessage")
        })
    };
    while !(spans.iter().any(|s| s.name.ends_with("process")) && complete(&spans))
        && tokio::time::Instant::now() < deadline
    {
        telemetry.flush().await;
        spans.extend(
            collector
                .exported_spans(1, Duration::from_millis(200))
                .await
                .into_iter()
                .filter(|s| s.trace_id == trace_id),
        );
    }
    let names: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{} {} {} <- {}",
                s.kind, s.name, s.span_id, s.parent_span_id
            )
        })
        .collect();
    let process = spans
        .iter()
        .find(|s| s.parent_span_id == publisher_span)
        .unwrap_or_else(|| panic!("the bridge's span continues the publisher's: {names:#?}"));
    assert_eq!(process.kind, "SPAN_KIND_CONSUMER", "{names:#?}");
    assert_eq!(
        attr(process, "messaging.system").as_deref(),
        Some(bus.transport()),
        "{names:#?}"
    );
    let send = spans
        .iter()
        .find(|s| {
            s.parent_span_id == process.span_id
                && s.kind == "SPAN_KIND_CLIENT"
                && s.name == "lf.a2a.v1.A2AService/SendMessage"
        })
        .unwrap_or_else(|| panic!("the agent call is a child of the bridge's span: {names:#?}"));
    assert!(
        spans
            .iter()
            .any(|s| s.parent_span_id == send.span_id && s.kind == "SPAN_KIND_SERVER"),
        "the agent's server span is a child of the call: {names:#?}"
    );
    let reply_parent = reply
        .get(header::TRACEPARENT)
        .expect("the reply carries the trace")
        .to_owned();
    assert!(
        reply_parent.starts_with(&format!("00-{trace_id}-{}", process.span_id)),
        "the reply continues the bridge's span: {reply_parent} vs {names:#?}"
    );
    bridge.stop().await;
    support::clean(bus, &prefix, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_nats() {
    one_trace_from_publisher_through_bridge_and_agent_to_the_reply(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_amqp() {
    one_trace_from_publisher_through_bridge_and_agent_to_the_reply(Broker::Amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_redis() {
    one_trace_from_publisher_through_bridge_and_agent_to_the_reply(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_mqtt() {
    one_trace_from_publisher_through_bridge_and_agent_to_the_reply(Broker::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_kafka() {
    one_trace_from_publisher_through_bridge_and_agent_to_the_reply(Broker::Kafka).await;
}
