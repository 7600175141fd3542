//! `/metrics` on an agent's port: Prometheus text that a well-kept parser accepts, with
//! counters that move as requests are made.

use serde_json::json;
use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents, card,
    pb::a2a::{AgentCard, Artifact, Part},
};
use switchyard_e2e::{Served, message};

/// An agent with a name of its own, so its metric labels are unique in this process.
struct Meter;

#[tonic::async_trait]
impl Agent for Meter {
    fn card(&self) -> AgentCard {
        card::builder("metrics-probe", "Echoes, or fails on request").build()
    }
    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        if ctx.message_metadata("fail").is_some() {
            return Err(AgentError::failed("asked to fail"));
        }
        events
            .artifact(Artifact::new("out", vec![Part::text(ctx.text())]))
            .await?;
        Ok(())
    }
}

async fn scrape(served: &Served) -> prometheus_parse::Scrape {
    switchyard::install_crypto_provider();
    let response = reqwest::get(format!("{}/metrics", served.url()))
        .await
        .expect("GET /metrics");
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    if status != 200 {
        panic!(
            "GET /metrics: {status} {content_type:?} {}",
            response.text().await.unwrap_or_default()
        );
    }
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    if std::env::var_os("SHOW_METRICS").is_some() {
        eprintln!("{text}");
    }
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format")
}

/// The value of the sample of `name` whose labels include all of `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref h) => {
                h.iter().map(|c| c.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_with_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::start_in(Meter, dir.path(), |_| {}).await;
    let agent = [("agent", "metrics-probe")];
    let ok_calls = [
        ("agent", "metrics-probe"),
        ("service", "lf.a2a.v1.A2AService"),
        ("method", "SendMessage"),
        ("code", "OK"),
    ];
    let before = scrape(&served).await;
    for _ in 0..3 {
        served.client.send_text("count me").await.expect("send");
    }
    served
        .client
        .send(message("x", json!({"fail": true})))
        .await
        .expect("a failed task is still a successful call");
    let missing = served.client.get_task("no-such-task", None).await;
    assert!(missing.is_err());
    let after = scrape(&served).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        delta("switchyard_rpc_server_requests_total", &ok_calls),
        4.0
    );
    assert_eq!(
        delta(
            "switchyard_rpc_server_requests_total",
            &[
                ("agent", "metrics-probe"),
                ("method", "GetTask"),
                ("code", "NOT_FOUND")
            ]
        ),
        1.0
    );
    assert_eq!(delta("switchyard_tasks_created_total", &agent), 4.0);
    assert_eq!(
        delta(
            "switchyard_tasks_settled_total",
            &[("agent", "metrics-probe"), ("state", "completed")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "switchyard_tasks_settled_total",
            &[("agent", "metrics-probe"), ("state", "failed")]
        ),
        1.0
    );
    // Three completed tasks of 4 events (task, WORKING, artifact, COMPLETED) and one failed
    // task of 3 (task, WORKING, FAILED).
    assert_eq!(
        delta("switchyard_store_committed_events_total", &agent),
        15.0
    );
    assert!(
        value(
            &after,
            "switchyard_rpc_server_duration_seconds_count",
            &ok_calls[..3]
        ) >= 4.0
    );
    assert!(
        value(
            &after,
            "switchyard_store_commit_duration_seconds_count",
            &agent
        ) >= 1.0
    );
    assert_eq!(
        value(&after, "switchyard_tasks_live", &agent),
        0.0,
        "no task is left in memory"
    );
    assert!(
        after
            .docs
            .contains_key("switchyard_rpc_server_requests_total"),
        "every metric has HELP text"
    );
}
