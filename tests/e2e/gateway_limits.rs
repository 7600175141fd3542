//! Cross-cutting limits of the gateway: what reaches the agent with each call (request id,
//! auth, version, trace context, deadline), deadlines, body size, load shedding and CORS.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents, card,
    pb::a2a::{AgentCard, Artifact, Part},
};
use switchyard_e2e::Served;

use crate::gateway::{Gw, agent, json_of, msg, start_task};

/// Reports what the agent received: selected gRPC metadata and the trace context.
pub(crate) struct Probe;

#[tonic::async_trait]
impl Agent for Probe {
    fn card(&self) -> AgentCard {
        card::builder("probe", "Reports the call's metadata").build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let md = |k: &str| {
            ctx.metadata()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let data = json!({
            "x-request-id": md("x-request-id"),
            "authorization": md("authorization"),
            "a2a-version": md("a2a-version"),
            "a2a-extensions": md("a2a-extensions"),
            "traceparent": ctx.trace_headers().traceparent,
            "remaining_ms": ctx.remaining().map(|d| d.as_millis() as u64),
        });
        events
            .artifact(Artifact::new("probe", vec![Part::data(data)]))
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn request_id_auth_version_trace_and_deadline_reach_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = Served::start_in(Probe, dir.path(), |_| {}).await;
    let gw = Gw::start(vec![agent("probe", probe.addr)], |c| {
        c.deadline_margin = Duration::from_millis(200)
    })
    .await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = json!({"jsonrpc": "2.0", "id": "a", "method": "SendMessage",
                      "params": {"message": msg("hi", Value::Null)}});
    let r = gw
        .http
        .post(format!("{}/agents/probe", gw.url))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .header("x-request-id", "rid-7")
        .header("authorization", "Bearer secret")
        .header("A2A-Version", "1.3")
        .header("A2A-Extensions", "https://ext.example/x")
        .header("traceparent", traceparent)
        .header("x-timeout-ms", "5000")
        .send()
        .await
        .expect("send");
    let v = json_of(r).await;
    let seen = &v["result"]["task"]["artifacts"][0]["parts"][0]["data"];
    assert_eq!(seen["x-request-id"], "rid-7", "{v}");
    assert_eq!(seen["authorization"], "Bearer secret");
    assert_eq!(seen["a2a-version"], "1.3");
    assert_eq!(seen["a2a-extensions"], "https://ext.example/x");
    let got = seen["traceparent"].as_str().expect("traceparent");
    assert!(
        got.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "same trace: {got}"
    );
    let remaining = seen["remaining_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("a deadline: {seen}"));
    assert!(
        remaining > 0.0 && remaining <= 4800.0,
        "5000 ms minus the margin: {remaining}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn deadlines_that_are_malformed_or_spent_never_reach_the_agent() {
    let (gw, echo, _dir) = Gw::echo().await;
    let send = json!({"message": msg("x", Value::Null)});
    let r = gw
        .post_json("/agents/echo/message:send", &send)
        .header("grpc-timeout", "10s")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        json_of(r).await["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("grpc-timeout")
    );
    let r = gw
        .post_json("/agents/echo/message:send", &send)
        .header("x-timeout-ms", "50")
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        StatusCode::GATEWAY_TIMEOUT,
        "50 ms is within the 100 ms margin"
    );
    assert_eq!(json_of(r).await["error"]["status"], "DEADLINE_EXCEEDED");
    // A slow task under a short deadline: the agent gives up first, the gateway answers 504.
    let slow = json!({"message": msg("slow", json!({"delay_ms": 20_000}))});
    let r = gw
        .post_json("/agents/echo/message:send", &slow)
        .header("x-timeout-ms", "400")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    let listed = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    assert_eq!(
        listed.tasks.len(),
        1,
        "only the slow task reached the agent"
    );
    let slow = switchyard_e2e::settle(&echo.client, &listed.tasks[0].id).await;
    assert_eq!(
        slow.state(),
        switchyard::pb::a2a::TaskState::Canceled,
        "the deadline canceled it"
    );
    gw.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_the_agent() {
    let (gw, echo, _dir) = Gw::echo_with(|c| c.max_body_bytes = 1024).await;
    let big = json!({"message": msg(&"x".repeat(4096), Value::Null)});
    let r = gw
        .post_json("/agents/echo/message:send", &big)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json_of(r).await["error"]["details"][0]["reason"],
        "REQUEST_TOO_LARGE"
    );
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": big});
    let v = json_of(
        gw.post_json("/agents/echo", &rpc)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(v["error"]["code"], -32600);
    // Without Content-Length (chunked), the body is cut off while it is read.
    let chunks =
        futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(bytes_of(&"y".repeat(512)))));
    let r = gw
        .req(Method::POST, "/agents/echo/message:send")
        .header(header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let listed = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    assert!(listed.tasks.is_empty(), "nothing reached the agent");
    gw.stop().await;
}

fn bytes_of(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test]
async fn load_beyond_the_concurrency_limit_is_shed() {
    let (gw, echo, _dir) = Gw::echo_with(|c| c.max_concurrent_requests = 1).await;
    let id = start_task(&gw, "echo", msg("slow", json!({"delay_ms": 20_000}))).await;
    // An open subscription holds the only slot.
    let held = gw
        .req(Method::GET, &format!("/agents/echo/tasks/{id}:subscribe"))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(held.status(), StatusCode::OK);
    let r = gw
        .req(Method::GET, &format!("/agents/echo/tasks/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert_eq!(json_of(r).await["error"]["status"], "RESOURCE_EXHAUSTED");
    let r = gw
        .post_json(
            "/agents/echo",
            &json!({"jsonrpc": "2.0", "id": 5, "method": "GetTask", "params": {"id": id}}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    let v = json_of(r).await;
    assert_eq!(
        (v["id"].clone(), v["error"]["data"][0]["reason"].clone()),
        (json!(null), json!("OVERLOADED"))
    );
    // Probes are never shed.
    let r = gw
        .http
        .get(format!("{}/readyz", gw.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::OK);
    echo.client.cancel_task(&id).await.expect("cancel");
    drop(held);
    gw.stop().await;
}

#[tokio::test]
async fn cors_preflights_allow_the_configured_origins_only() {
    let (gw, _echo, _dir) =
        Gw::echo_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(Method::OPTIONS, format!("{}/agents/echo", gw.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,a2a-version,last-event-id",
            )
            .send()
    };
    let r = preflight("https://app.example").await.expect("preflight");
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for name in ["content-type", "a2a-version", "last-event-id"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .contains("POST")
    );
    let r = preflight("https://evil.example").await.expect("preflight");
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    // Actual answers (errors included) are readable by the allowed origin, with the headers
    // a client needs exposed.
    let r = gw
        .req(Method::GET, "/agents/echo/tasks/none")
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
    gw.stop().await;
}
