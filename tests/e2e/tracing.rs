//! One trace per user request, in a real OTLP receiver: a JSON-RPC `SendStreamingMessage` to
//! `research` through the gateway, continuing a browser's `traceparent`, fans out to three
//! sub-agents (one fails); every span carries one trace id, with correct parent/child links, the
//! semantic-convention attributes, and the error status on the failing sub-agent. The same
//! holds for a task started in a WebSocket session (`GET /agents/{agent}/ws` → `Converse`):
//! its execution belongs to the session's trace; and for a native gRPC call through the
//! gateway's gRPC front.
//!
//! It installs the process's telemetry (global), so it is the only test that does.

use std::{sync::Arc, time::Duration};

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use futures::{SinkExt as _, StreamExt as _};
use switchyard::{
    Agent, AgentError, Registry, RegistryConfig, TaskContext, TaskEvents, card,
    pb::a2a::AgentCard,
    registry::AgentConfig,
    telemetry::{TelemetryConfig, init},
};
use switchyard_e2e::Served;
use switchyard_research::{Research, ResearchConfig};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

/// A sub-agent whose task fails.
struct Broken;

#[tonic::async_trait]
impl Agent for Broken {
    fn card(&self) -> AgentCard {
        card::builder("broken", "Always fails").build()
    }
    async fn execute(&self, _: TaskContext, _: TaskEvents) -> Result<(), AgentError> {
        Err(AgentError::failed("the keyword index is offline"))
    }
}

fn entry(name: &str, s: &Served) -> AgentConfig {
    AgentConfig {
        name: name.into(),
        endpoints: vec![s.addr.to_string()],
        card_url: None,
        public_grpc: false,
    }
}

/// The string or integer value of an exported attribute (the receiver keeps them as `Debug`).
fn attr(span: &ExportedSpan, key: &str) -> Option<String> {
    let raw = span.attributes.get(key)?;
    if let Some(rest) = raw.split("StringValue(\"").nth(1) {
        return rest.split("\")").next().map(str::to_owned);
    }
    raw.split("IntValue(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(str::to_owned)
}

fn children<'a>(spans: &'a [ExportedSpan], parent: &ExportedSpan) -> Vec<&'a ExportedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

fn only<'a>(spans: Vec<&'a ExportedSpan>, what: &str) -> &'a ExportedSpan {
    assert_eq!(spans.len(), 1, "exactly one {what}: {spans:#?}");
    spans[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_the_browser_through_the_gateway_research_and_every_sub_agent() {
    switchyard::install_crypto_provider();
    let mut collector = FakeCollectorServer::start().await.expect("collector");
    let mut config = TelemetryConfig::from_env("switchyard-e2e");
    config.otlp_endpoint = Some(collector.endpoint());
    let telemetry = init(&config).expect("telemetry installs once per process");

    let dir = tempfile::tempdir().expect("tempdir");
    let textstats = Served::start_in(
        switchyard_textstats::TextStats,
        &dir.path().join("t"),
        |_| {},
    )
    .await;
    let summarize = Served::start_in(
        switchyard_summarize::Summarize,
        &dir.path().join("s"),
        |_| {},
    )
    .await;
    let keywords = Served::start_in(Broken, &dir.path().join("k"), |_| {}).await;
    let subs = Registry::new(&RegistryConfig {
        agents: vec![
            entry("textstats", &textstats),
            entry("summarize", &summarize),
            entry("keywords", &keywords),
        ],
    })
    .expect("registry");
    let research = Served::start_in(
        Research::new(Arc::new(subs), ResearchConfig::default()),
        &dir.path().join("r"),
        |_| {},
    )
    .await;
    let registry = Arc::new(
        Registry::new(&RegistryConfig {
            agents: vec![entry("research", &research)],
        })
        .expect("registry"),
    );
    registry.load_cards(Duration::from_secs(5)).await;
    let gateway = switchyard_gateway::Gateway::bind(Default::default(), registry)
        .await
        .expect("gateway");
    let url = gateway.url();
    tokio::spawn(gateway.run());

    let trace_id = "5b8efff798038103d269b633813fc60c";
    let browser_span = "eee19b7ec3c1b174";
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage",
        "params": {"message": {"messageId": "m1", "role": "ROLE_USER",
            "parts": [{"text": "Traces cross every hop. The gateway starts them. Agents continue them."}]}}
    });
    let response = reqwest::Client::new()
        .post(format!("{url}/agents/research"))
        .header("A2A-Version", "1.0")
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .header("traceparent", format!("00-{trace_id}-{browser_span}-01"))
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let stream = response.text().await.expect("the stream ends");
    assert!(stream.contains("TASK_STATE_COMPLETED"), "{stream}");

    // This trace's spans: gateway (2), research (server, execute, 3 clients), and each
    // sub-agent (server, execute).
    let spans = collect(&mut collector, &telemetry, trace_id, 13).await;

    let http = only(
        spans
            .iter()
            .filter(|s| s.parent_span_id == browser_span)
            .collect(),
        "gateway server span under the browser's span",
    );
    assert_eq!(http.name, "POST /agents/{agent}");
    assert_eq!(http.kind, "SPAN_KIND_SERVER");
    assert_eq!(attr(http, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(attr(http, "http.route").as_deref(), Some("/agents/{agent}"));
    assert_eq!(
        attr(http, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(http, "a2a.method").as_deref(),
        Some("SendStreamingMessage")
    );

    let gw_client = only(children(&spans, http), "gateway gRPC client span");
    assert_eq!(gw_client.kind, "SPAN_KIND_CLIENT");
    assert_eq!(gw_client.name, "lf.a2a.v1.A2AService/SendStreamingMessage");
    assert_eq!(attr(gw_client, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attr(gw_client, "server.port").as_deref(),
        Some(research.addr.port().to_string().as_str())
    );

    let research_server = only(children(&spans, gw_client), "research server span");
    assert_eq!(research_server.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        attr(research_server, "switchyard.agent").as_deref(),
        Some("research")
    );
    assert_eq!(
        attr(research_server, "rpc.service").as_deref(),
        Some("lf.a2a.v1.A2AService")
    );
    assert_eq!(
        attr(research_server, "rpc.method").as_deref(),
        Some("SendStreamingMessage")
    );
    assert_eq!(
        attr(research_server, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_eq!(
        attr(research_server, "a2a.task.state").as_deref(),
        Some("TASK_STATE_COMPLETED")
    );
    assert!(
        attr(research_server, "a2a.task.id").is_some()
            && attr(research_server, "a2a.context.id").is_some()
    );
    assert!(
        research_server
            .events
            .iter()
            .any(|e| e.name == "task status"),
        "stream milestones are span events"
    );

    assert_fan_out(&spans, research_server);

    // A WebSocket session continuing another browser trace: the task it starts runs in it.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let browser_span = "b7ad6b7169203331";
    let mut request = format!(
        "{}/agents/research/ws?A2A-Version=1.0",
        url.replacen("http", "ws", 1)
    )
    .into_client_request()
    .expect("ws request");
    request.headers_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{browser_span}-01")
            .parse()
            .expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let send = serde_json::json!({"send": {"message": {"messageId": "w1", "role": "ROLE_USER",
        "parts": [{"text": "Sessions are traced too. Every task joins the session's trace."}]}}});
    ws.send(Message::text(send.to_string()))
        .await
        .expect("send");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame
            && t.as_str().contains("TASK_STATE_COMPLETED")
        {
            break;
        }
    }
    // Closing ends the Converse call, and with it the session's spans.
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = ws.next().await {}

    let spans = collect(&mut collector, &telemetry, trace_id, 13).await;
    let http = only(
        spans
            .iter()
            .filter(|s| s.parent_span_id == browser_span)
            .collect(),
        "gateway server span of the upgrade under the browser's span",
    );
    assert_eq!(http.name, "GET /agents/{agent}/ws");
    let gw_client = only(children(&spans, http), "gateway Converse client span");
    assert_eq!(gw_client.name, "switchyard.v1.AgentService/Converse");
    let session = only(children(&spans, gw_client), "research Converse server span");
    assert_eq!(session.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        attr(session, "rpc.service").as_deref(),
        Some("switchyard.v1.AgentService")
    );
    assert_eq!(attr(session, "rpc.method").as_deref(), Some("Converse"));
    assert_fan_out(&spans, session);

    // Native gRPC through the gateway's gRPC front: the gateway's server span is named after
    // the method and the agent's server span is its child.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let browser_span = "00f067aa0ba902b7";
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut request = tonic::Request::new(switchyard::pb::a2a::SendMessageRequest {
        message: Some(switchyard::pb::a2a::Message::user_text(
            "Native calls are traced. The gateway names its span after the method.",
        )),
        ..Default::default()
    });
    for (k, v) in [
        ("a2a-version", "1.0".to_owned()),
        ("x-switchyard-agent", "research".to_owned()),
        ("traceparent", format!("00-{trace_id}-{browser_span}-01")),
    ] {
        request.metadata_mut().insert(k, v.parse().expect("ascii"));
    }
    switchyard::pb::a2a::a2a_service_client::A2aServiceClient::new(channel)
        .send_message(request)
        .await
        .expect("SendMessage through the gateway");
    // The gateway (1), research (server, execute, 3 clients), each sub-agent (server, execute).
    let spans = collect(&mut collector, &telemetry, trace_id, 12).await;
    let server = only(
        spans
            .iter()
            .filter(|s| s.parent_span_id == browser_span)
            .collect(),
        "gateway server span of the gRPC call under the caller's span",
    );
    assert_eq!(server.name, "lf.a2a.v1.A2AService/SendMessage");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(attr(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(attr(server, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(
        attr(server, "switchyard.agent").as_deref(),
        Some("research")
    );
    assert_eq!(
        attr(server, "http.route").as_deref(),
        Some("/lf.a2a.v1.A2AService/SendMessage")
    );
    let research_server = only(children(&spans, server), "research server span");
    assert_eq!(
        attr(research_server, "rpc.method").as_deref(),
        Some("SendMessage")
    );
    assert_fan_out(&spans, research_server);
}

/// Drains the receiver until `want` spans of `trace_id` arrived (or 30 s passed).
async fn collect(
    collector: &mut FakeCollectorServer,
    telemetry: &switchyard::telemetry::Telemetry,
    trace_id: &str,
    want: usize,
) -> Vec<ExportedSpan> {
    let mut spans: Vec<ExportedSpan> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while spans.len() < want && tokio::time::Instant::now() < deadline {
        telemetry.flush().await;
        spans.extend(
            collector
                .exported_spans(1, Duration::from_millis(200))
                .await
                .into_iter()
                .filter(|s| s.trace_id == trace_id),
        );
    }
    spans
}

/// Under research's server span: one `a2a.execute` span, and under it one client span per
/// sub-agent, each with the sub-agent's server and execution spans; the failing one marked.
fn assert_fan_out(spans: &[ExportedSpan], research_server: &ExportedSpan) {
    let names: Vec<String> = spans
        .iter()
        .map(|s| format!("{} {} {}", s.kind, s.name, s.parent_span_id))
        .collect();
    let execute = only(children(spans, research_server), "research execution span");
    assert_eq!(execute.name, "a2a.execute");
    let fan_out = children(spans, execute);
    assert_eq!(
        fan_out.len(),
        3,
        "one client span per sub-agent: {names:#?}"
    );
    let mut agents = Vec::new();
    for client in fan_out {
        assert_eq!(client.kind, "SPAN_KIND_CLIENT");
        let server = only(children(spans, client), "sub-agent server span");
        let agent = attr(server, "switchyard.agent").expect("agent");
        let sub_execute = only(children(spans, server), "sub-agent execution span");
        let failed =
            sub_execute.status.as_ref().map(|s| s.code.as_str()) == Some("STATUS_CODE_ERROR");
        if agent == "broken" {
            assert!(failed, "the failing sub-agent's span has the error status");
            assert_eq!(
                attr(sub_execute, "a2a.task.state").as_deref(),
                Some("TASK_STATE_FAILED")
            );
            assert_eq!(
                attr(server, "a2a.task.state").as_deref(),
                Some("TASK_STATE_FAILED")
            );
        } else {
            assert!(!failed, "{agent} succeeded");
        }
        agents.push(agent);
    }
    agents.sort();
    assert_eq!(agents, ["broken", "summarize", "textstats"]);
}
