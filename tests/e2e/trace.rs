//! W3C trace context in gRPC metadata is continued by the runtime and passed on when an agent
//! calls another agent through `switchyard::Client`.

use switchyard::{
    Agent, AgentError, Client, TaskContext, TaskEvents, card,
    pb::a2a::{AgentCard, Artifact, Message, Part, part},
    task::value_to_json,
};
use switchyard_e2e::Served;

/// Reports the trace headers it received.
struct Probe;

#[tonic::async_trait]
impl Agent for Probe {
    fn card(&self) -> AgentCard {
        card::builder("probe", "Reports the trace context it received").build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let t = ctx.trace_headers();
        let data = serde_json::json!({"traceparent": t.traceparent, "tracestate": t.tracestate});
        events
            .artifact(Artifact::new("trace", vec![Part::data(data)]))
            .await?;
        Ok(())
    }
}

/// Calls the probe and returns what it saw.
struct Relay(String);

#[tonic::async_trait]
impl Agent for Relay {
    fn card(&self) -> AgentCard {
        card::builder("relay", "Calls the probe").build()
    }

    async fn execute(&self, _ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let probe = Client::connect(&self.0)
            .await
            .map_err(AgentError::internal)?;
        let task = probe.send_text("hop").await.map_err(AgentError::internal)?;
        events.artifact(task.artifacts[0].clone()).await?;
        Ok(())
    }
}

fn seen(artifact: &Artifact) -> serde_json::Value {
    match &artifact.parts[0].content {
        Some(part::Content::Data(d)) => value_to_json(d),
        other => panic!("data part expected, got {other:?}"),
    }
}

#[tokio::test]
async fn trace_context_flows_through_an_agent_to_the_agents_it_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = Served::start_in(Probe, &dir.path().join("probe"), |_| {}).await;
    let relay = Served::start_in(
        Relay(probe.addr.to_string()),
        &dir.path().join("relay"),
        |_| {},
    )
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let mut a2a = relay.client.a2a();
    let mut req = tonic::Request::new(switchyard::pb::a2a::SendMessageRequest {
        message: Some(Message::user_text("go")),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("traceparent", incoming.parse().expect("ascii"));
    req.metadata_mut()
        .insert("tracestate", "vendor=abc".parse().expect("ascii"));
    let resp = a2a.send_message(req).await.expect("send").into_inner();
    let Some(switchyard::pb::a2a::send_message_response::Payload::Task(task)) = resp.payload else {
        panic!("task")
    };
    let got = seen(&task.artifacts[0]);
    let traceparent = got["traceparent"]
        .as_str()
        .expect("the hop carried a traceparent");
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(trace_id),
        "same trace: {traceparent}"
    );
    assert_eq!(got["tracestate"], "vendor=abc");

    // Without incoming context, the hop carries none (no made-up parent).
    let plain = relay.client.send_text("go").await.expect("send");
    assert!(seen(&plain.artifacts[0])["traceparent"].is_null());
}
