//! The research coordinator: parallel fan-out over gRPC, one report, partial failure, deadline
//! expiry in the fan-out, trace context through every sub-call.

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use switchyard::{
    Agent, AgentError, Registry, RegistryConfig, TaskContext, TaskEvents, card,
    pb::a2a::{AgentCard, Artifact, Message, Part, SendMessageRequest, TaskState, part},
    registry::AgentConfig,
    task::value_to_json,
};
use switchyard_e2e::{Served, collect, describe};
use switchyard_research::{REPORT_ARTIFACT, Research, ResearchConfig};

const DOCUMENT: &str = "Switchyard routes messages between agents. Every agent is a gRPC \
    service. The gateway translates HTTP into gRPC calls.\n\nTasks are durable. A subscriber \
    resumes after any event without losing one.";

/// Never finishes on its own; stops when canceled.
struct Slow;

#[tonic::async_trait]
impl Agent for Slow {
    fn card(&self) -> AgentCard {
        card::builder("slow", "Waits until canceled").build()
    }
    async fn execute(&self, ctx: TaskContext, _events: TaskEvents) -> Result<(), AgentError> {
        ctx.cancelled().await;
        Err(AgentError::Canceled)
    }
}

/// Reports the trace context it received.
struct Probe;

#[tonic::async_trait]
impl Agent for Probe {
    fn card(&self) -> AgentCard {
        card::builder("probe", "Reports its trace context").build()
    }
    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let tp = ctx.trace_headers().traceparent.clone();
        events
            .artifact(Artifact::new(
                "trace",
                vec![Part::data(serde_json::json!({"traceparent": tp}))],
            ))
            .await?;
        Ok(())
    }
}

pub(crate) struct Mesh {
    pub(crate) research: Served,
    pub(crate) parts: Vec<(String, Served)>,
    _dir: tempfile::TempDir,
}

/// Serves `parts` under the given names, and research over a registry of them.
/// Sub-agents by name.
pub(crate) type Parts = Vec<(&'static str, Arc<dyn Agent>)>;

pub(crate) async fn mesh(parts: Parts, margin: Duration) -> Mesh {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut served = Vec::new();
    for (name, agent) in parts {
        let s = Served::start_arc_in(agent, &dir.path().join(name), |_| {}).await;
        served.push((name.to_owned(), s));
    }
    let registry = Registry::new(&RegistryConfig {
        agents: served
            .iter()
            .map(|(name, s)| AgentConfig {
                name: name.clone(),
                endpoints: vec![s.addr.to_string()],
                card_url: None,
                public_grpc: false,
            })
            .collect(),
    })
    .expect("registry");
    let research = Research::new(
        Arc::new(registry),
        ResearchConfig {
            deadline_margin: margin,
            ..Default::default()
        },
    );
    let research = Served::start_in(research, &dir.path().join("research"), |_| {}).await;
    Mesh {
        research,
        parts: served,
        _dir: dir,
    }
}

pub(crate) fn standard() -> Parts {
    vec![
        (
            "textstats",
            Arc::new(switchyard_textstats::TextStats) as Arc<dyn Agent>,
        ),
        (
            "summarize",
            Arc::new(switchyard_summarize::Summarize) as Arc<dyn Agent>,
        ),
        (
            "keywords",
            Arc::new(switchyard_keywords::Keywords) as Arc<dyn Agent>,
        ),
    ]
}

pub(crate) fn report_data(task: &switchyard::pb::a2a::Task) -> (String, Value) {
    let report = task
        .artifacts
        .iter()
        .find(|a| a.name == REPORT_ARTIFACT)
        .expect("report artifact");
    let md = report.parts[0].as_text().expect("markdown").to_owned();
    let Some(part::Content::Data(d)) = &report.parts[1].content else {
        panic!("data part")
    };
    (md, value_to_json(d))
}

#[tokio::test]
async fn the_report_merges_every_sub_agent_and_streams_progress_in_order() {
    let m = mesh(standard(), Duration::from_millis(250)).await;
    let events = collect(
        m.research
            .client
            .send_streaming_message(SendMessageRequest {
                message: Some(Message::user_text(DOCUMENT)),
                ..Default::default()
            })
            .await
            .expect("stream"),
    )
    .await;
    let lines = describe(&events);
    assert_eq!(lines[0], "task:SUBMITTED#1");
    let completions = lines
        .iter()
        .filter(|l| l.starts_with("status:WORKING"))
        .count();
    assert!(
        completions >= 4,
        "a plan and one progress event per part: {lines:?}"
    );
    let n = lines.len();
    assert!(lines[n - 2].starts_with("artifact:report"), "{lines:?}");
    assert!(lines[n - 1].starts_with("status:COMPLETED"), "{lines:?}");

    let Some(switchyard::pb::a2a::stream_response::Payload::Task(t)) = &events[0].payload else {
        unreachable!()
    };
    let task = m.research.client.get_task(&t.id, None).await.expect("get");
    let (md, data) = report_data(&task);
    assert_eq!(data["complete"], 3);
    assert_eq!(data["missing"], serde_json::json!([]));
    for name in ["textstats", "summarize", "keywords"] {
        assert!(md.contains(&format!("## {name}")), "{md}");
        assert_eq!(data["parts"][name]["status"], "ok");
    }
    // The textstats part is exactly what textstats says about the same document.
    let direct = m.parts[0]
        .1
        .client
        .send_text(DOCUMENT)
        .await
        .expect("textstats");
    let Some(part::Content::Data(d)) = &direct.artifacts[0].parts[1].content else {
        panic!("data")
    };
    assert_eq!(data["parts"]["textstats"]["data"], value_to_json(d));
    assert_eq!(data["parts"]["textstats"]["data"]["sentences"], 5);
}

#[tokio::test]
async fn a_stopped_sub_agent_becomes_a_named_missing_part_and_the_task_completes() {
    let mut m = mesh(standard(), Duration::from_millis(250)).await;
    let (_, keywords) = m.parts.remove(2);
    keywords.stop().await;
    let task = m.research.client.send_text(DOCUMENT).await.expect("send");
    assert_eq!(task.state(), TaskState::Completed);
    let (md, data) = report_data(&task);
    assert_eq!(data["complete"], 2);
    assert_eq!(data["missing"], serde_json::json!(["keywords"]));
    let reason = data["parts"]["keywords"]["reason"]
        .as_str()
        .expect("reason");
    assert!(reason.starts_with("unreachable at 127.0.0.1:"), "{reason}");
    assert!(
        md.contains("## Missing parts\n\n- **keywords**: unreachable"),
        "{md}"
    );
}

#[tokio::test]
async fn a_slow_sub_agent_times_out_within_the_callers_deadline() {
    let mut parts = standard();
    parts[2] = ("keywords", Arc::new(Slow) as Arc<dyn Agent>);
    let m = mesh(parts, Duration::from_millis(300)).await;
    let client = m
        .research
        .client
        .clone()
        .with_timeout(Duration::from_millis(1500));
    // The caller's own deadline would fail this call if the report came late.
    let task = client
        .send_text(DOCUMENT)
        .await
        .expect("the report comes in time");
    assert_eq!(task.state(), TaskState::Completed);
    let (_, data) = report_data(&task);
    assert_eq!(data["missing"], serde_json::json!(["keywords"]));
    let reason = data["parts"]["keywords"]["reason"]
        .as_str()
        .expect("reason");
    assert!(reason.starts_with("timed out after 1"), "{reason}");
    // The slow sub-agent's task was canceled by its own deadline, not left running.
    let slow = &m.parts[2].1.client;
    let list = slow.list_tasks(Default::default()).await.expect("list");
    let sub = switchyard_e2e::settle(slow, &list.tasks[0].id).await;
    assert_eq!(sub.state(), TaskState::Canceled);
}

#[tokio::test]
async fn research_fails_when_no_part_succeeds() {
    let m = mesh(
        vec![
            ("textstats", Arc::new(Slow) as Arc<dyn Agent>),
            ("summarize", Arc::new(Slow) as Arc<dyn Agent>),
            ("keywords", Arc::new(Slow) as Arc<dyn Agent>),
        ],
        Duration::from_millis(200),
    )
    .await;
    let client = m
        .research
        .client
        .clone()
        .with_timeout(Duration::from_millis(800));
    let task = client.send_text(DOCUMENT).await.expect("send");
    assert_eq!(task.state(), TaskState::Failed);
    let why = task.status.and_then(|s| s.message).expect("message").text();
    assert!(why.contains("no part of the report could be made"), "{why}");
    assert!(why.contains("keywords: timed out"), "{why}");
}

#[tokio::test]
async fn trace_context_reaches_every_sub_agent() {
    let m = mesh(
        vec![
            ("textstats", Arc::new(Probe) as Arc<dyn Agent>),
            ("summarize", Arc::new(Probe) as Arc<dyn Agent>),
            ("keywords", Arc::new(Probe) as Arc<dyn Agent>),
        ],
        Duration::from_millis(250),
    )
    .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let mut a2a = m.research.client.a2a();
    let mut req = tonic::Request::new(SendMessageRequest {
        message: Some(Message::user_text(DOCUMENT)),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-b7ad6b7169203331-01")
            .parse()
            .expect("ascii"),
    );
    a2a.send_message(req).await.expect("send");
    for (name, probe) in &m.parts {
        let list = probe
            .client
            .list_tasks(Default::default())
            .await
            .expect("list");
        let t = probe
            .client
            .get_task(&list.tasks[0].id, None)
            .await
            .expect("get");
        let Some(part::Content::Data(d)) = &t.artifacts[0].parts[0].content else {
            panic!("data")
        };
        let tp = value_to_json(d)["traceparent"].as_str().map(str::to_owned);
        assert_eq!(
            tp.as_deref().and_then(|t| t.split('-').nth(1)),
            Some(trace_id),
            "{name} got {tp:?}"
        );
    }
}
