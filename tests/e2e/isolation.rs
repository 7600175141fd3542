//! One client must never hurt another (issue 9): a huge id sent by one client leaves another
//! client's stream through the same gateway (and the same agent connection) untouched, and
//! junk request paths do not grow `/metrics`.

use std::sync::Arc;

use eventsource_stream::Eventsource as _;
use futures::{StreamExt as _, stream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents, card,
    limits::MAX_ID_BYTES,
    pb::a2a::{AgentCard, Artifact, Part, TaskState},
};
use switchyard_e2e::{Served, bad_fields, describe, status_of};
use tokio::sync::Semaphore;

use crate::gateway::{Gw, PATIENCE, agent, json_of, kind, msg};

/// The `fieldViolations[].field` of a JSON-RPC error or REST envelope.
fn violated_fields(error: &Value) -> Vec<String> {
    let details = error
        .get("data")
        .or_else(|| error.get("details"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    details
        .iter()
        .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v["field"].as_str().map(str::to_owned))
        .collect()
}

/// An agent whose tasks work until the test opens the gate: a stream that is certainly still
/// running while another client misbehaves.
struct Gated(Arc<Semaphore>);

#[tonic::async_trait]
impl Agent for Gated {
    fn card(&self) -> AgentCard {
        card::builder("gated", "Works until released").build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        events.progress(0.5, "waiting for the gate").await?;
        let _permit = self
            .0
            .acquire()
            .await
            .map_err(|_| AgentError::failed("gate closed"))?;
        events
            .artifact(Artifact::new("out", vec![Part::text(ctx.text())]))
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_huge_task_id_from_one_client_leaves_another_clients_stream_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(Semaphore::new(0));
    let served = Served::start_in(Gated(gate.clone()), dir.path(), |_| {}).await;
    let gw = Gw::start(vec![agent("gated", served.addr)], |_| {}).await;
    // Client A: a streaming message through the gateway (SSE), and a subscription to the
    // same task straight to the agent (gRPC); both stay open until the gate opens.
    let body = json!({"message": msg("hi", Value::Null)});
    let sse = gw
        .post_json("/agents/gated/message:stream", &body)
        .send()
        .await
        .expect("stream");
    assert_eq!(sse.status(), StatusCode::OK);
    let mut events = sse.bytes_stream().eventsource();
    let mut seen = Vec::new();
    let mut id = String::new();
    while !seen
        .iter()
        .any(|k: &String| k.starts_with("status:WORKING"))
    {
        let e = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event in time")
            .expect("an event")
            .expect("well-formed");
        let v: Value = serde_json::from_str(&e.data).expect("JSON");
        if let Some(t) = v["task"]["id"].as_str() {
            id = t.to_owned();
        }
        seen.push(kind(&v));
    }
    let grpc = served
        .client
        .subscribe(&id, None)
        .await
        .expect("gRPC subscribe");

    // Client B: a 20,000-character task id, every way it can be sent.
    let huge = "t".repeat(20_000);
    for (method, params, field) in [
        ("GetTask", json!({"id": huge}), "id"),
        ("CancelTask", json!({"id": huge}), "id"),
        ("SubscribeToTask", json!({"id": huge}), "id"),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "taskId": huge,
                               "parts": [{"text": "x"}]}}),
            "message.task_id",
        ),
    ] {
        let r = gw.rpc("gated", method, params).await;
        assert_eq!(r["error"]["code"], -32602, "{method}: {r}");
        assert_eq!(violated_fields(&r["error"]), [field], "{method}: {r}");
        let message = r["error"]["message"].as_str().expect("message");
        assert!(
            message.len() < 1024 && message.contains(&MAX_ID_BYTES.to_string()),
            "a clear message that does not echo the id: {message}"
        );
    }
    // REST: the id is in the path; a head over 8 KiB is refused by the HTTP/1.1 server (431),
    // a shorter one over the bound by the gateway, naming the field.
    let long = "t".repeat(5_000);
    for (id, status) in [(&huge, 431), (&long, 400)] {
        for (method, path) in [
            (Method::GET, format!("/agents/gated/tasks/{id}")),
            (Method::POST, format!("/agents/gated/tasks/{id}:cancel")),
            (Method::GET, format!("/agents/gated/tasks/{id}:subscribe")),
        ] {
            let r = gw.req(method.clone(), &path).send().await.expect("send");
            assert_eq!(r.status().as_u16(), status, "{method} {}…", &path[..40]);
            if status == 400 {
                let v = json_of(r).await;
                assert_eq!(violated_fields(&v["error"]), ["id"], "{v}");
            }
        }
    }
    // … and straight to the agent's gRPC port, on the channel carrying A's gRPC stream.
    for len in [4_500, 17_000, 20_000] {
        let status = status_of(served.client.get_task(&"t".repeat(len), None).await);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_fields(&status), ["id"]);
        let status = status_of(served.client.cancel_task(&"t".repeat(len)).await);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }

    // The gate opens: both of A's streams see the task complete, with no error.
    gate.add_permits(1);
    let read = async {
        while let Some(e) = events.next().await {
            let e = e.expect("well-formed SSE, no broken stream");
            assert_ne!(e.event, "error", "{}", e.data);
            seen.push(kind(&serde_json::from_str(&e.data).expect("JSON")));
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("stream ended in time");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("task:SUBMITTED"),
        "{seen:?}"
    );
    assert!(seen.contains(&"artifact:out".to_owned()), "{seen:?}");
    assert_eq!(
        seen.last().map(String::as_str),
        Some("status:COMPLETED"),
        "{seen:?}"
    );
    let events = tokio::time::timeout(PATIENCE, switchyard_e2e::collect(grpc))
        .await
        .expect("gRPC stream ended in time");
    let kinds = describe(&events);
    assert!(
        kinds
            .last()
            .is_some_and(|k| k.starts_with("status:COMPLETED")),
        "{kinds:?}"
    );
    let task = served.client.get_task(&id, None).await.expect("get");
    assert_eq!(task.state(), TaskState::Completed);
}

/// Bytes of `/metrics` at `url`.
async fn metrics_size(http: &reqwest::Client, url: &str) -> usize {
    let r = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.expect("body").len()
}

#[tokio::test]
async fn junk_paths_do_not_grow_metrics() {
    let (gw, echo, _dir) = Gw::echo().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(PATIENCE)
        .build()
        .expect("client");
    // Warm up every series a junk request touches, then measure.
    let junk = |i: usize| {
        let h2 = h2.clone();
        let agent = echo.url();
        let gateway = gw.url.clone();
        let http = gw.http.clone();
        async move {
            let r = h2
                .post(format!("{agent}/junk.Service{i}/Method{i}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(vec![0u8, 0, 0, 0, 0])
                .send()
                .await
                .expect("gRPC request");
            assert_eq!(r.headers()["grpc-status"], "12", "UNIMPLEMENTED");
            // Every tenth: an unknown method of a known service, and a junk HTTP method and
            // path at the gateway.
            if !i.is_multiple_of(10) {
                return;
            }
            let r = h2
                .post(format!("{agent}/lf.a2a.v1.A2AService/Nope{i}"))
                .header("content-type", "application/grpc")
                .body(vec![0u8, 0, 0, 0, 0])
                .send()
                .await
                .expect("gRPC request");
            assert_eq!(r.headers()["grpc-status"], "12", "UNIMPLEMENTED");
            let method = Method::from_bytes(format!("JUNK{i}").as_bytes()).expect("token");
            let r = http
                .request(method, format!("{gateway}/junk/{i}"))
                .send()
                .await
                .expect("HTTP request");
            assert!(r.status().is_client_error(), "{}", r.status());
        }
    };
    stream::iter(0..10).for_each_concurrent(8, junk).await;
    let agent_before = metrics_size(&gw.http, &echo.url()).await;
    let gateway_before = metrics_size(&gw.http, &gw.url).await;
    stream::iter(10..3_010).for_each_concurrent(16, junk).await;
    let agent_after = metrics_size(&gw.http, &echo.url()).await;
    let gateway_after = metrics_size(&gw.http, &gw.url).await;
    // The same series, with other counts: a few digits longer at most.
    for (what, before, after) in [
        ("agent", agent_before, agent_after),
        ("gateway", gateway_before, gateway_after),
    ] {
        assert!(
            after <= before + 2048,
            "{what} /metrics grew from {before} to {after} bytes after 3,600 junk requests"
        );
    }
}
