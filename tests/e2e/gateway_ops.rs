//! Gateway routing and operations: health, readiness, request ids, unknown and down agents,
//! and the drain.

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::gateway::{Gw, PATIENCE, agent, dead_addr, json_of, msg, start_task};

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let r = gw
        .http
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);
    let made = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(made.len(), 36, "a UUID is made when the client sends none");
    let r = gw
        .http
        .get(format!("{}/readyz", gw.url))
        .header("x-request-id", "req-42")
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "req-42");
    assert_eq!(json_of(r).await["status"], "ready");
    // Errors of the inner layers carry the id too.
    let r = gw.req(Method::GET, "/nowhere").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().contains_key("x-request-id"));
    gw.stop().await;
}

#[tokio::test]
async fn unknown_agents_are_named_on_every_front() {
    let (gw, _echo, _dir) = Gw::echo().await;
    // JSON-RPC: no endpoint at this URL, so HTTP 404, with a client error object (-32601).
    let r = gw
        .post_json(
            "/agents/nope",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "t"}}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v = json_of(r).await;
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let message = v["error"]["message"].as_str().expect("msg");
    assert!(
        message.contains("\"nope\"") && message.contains("GET /agents"),
        "{v}"
    );
    assert_eq!(v["error"]["data"][0]["reason"], "AGENT_NOT_FOUND");
    assert_eq!(v["error"]["data"][0]["metadata"]["agent"], "nope");
    assert_eq!(v["id"], 1);
    for path in [
        "/agents/nope/tasks/t",
        "/agents/nope/.well-known/agent-card.json",
    ] {
        let r = gw.req(Method::GET, path).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let e = json_of(r).await;
        assert_eq!(e["error"]["status"], "NOT_FOUND");
        assert!(
            e["error"]["message"]
                .as_str()
                .expect("msg")
                .contains("nope")
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn an_agent_that_is_down_gets_503_with_retry_after() {
    let gw = Gw::start(vec![agent("down", dead_addr().await)], |_| {}).await;
    let r = gw
        .post_json(
            "/agents/down",
            &json!({"jsonrpc": "2.0", "id": 3, "method": "GetTask", "params": {"id": "t"}}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    let v = json_of(r).await;
    assert_eq!(v["error"]["code"], -32603);
    assert_eq!(
        v["error"]["message"],
        "agent \"down\" is unavailable; retry later"
    );
    assert_eq!(v["error"]["data"][0]["reason"], "AGENT_UNAVAILABLE");
    for path in [
        "/agents/down/tasks/t",
        "/agents/down/.well-known/agent-card.json",
    ] {
        let r = gw.req(Method::GET, path).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(json_of(r).await["error"]["status"], "UNAVAILABLE");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_drain_ends_open_streams_and_stops_the_gateway() {
    let (gw, echo, _dir) = Gw::echo().await;
    let id = start_task(&gw, "echo", msg("slow", json!({"delay_ms": 20_000}))).await;
    let r = gw
        .req(Method::GET, &format!("/agents/echo/tasks/{id}:subscribe"))
        .send()
        .await
        .expect("subscribe");
    let mut events = r.bytes_stream().eventsource();
    let first = events.next().await.expect("snapshot").expect("event");
    assert!(first.data.contains("\"task\""));
    let url = gw.url.clone();
    let stopping = tokio::spawn(gw.stop());
    let until_error = async {
        while let Some(e) = events.next().await {
            let e = e.expect("event");
            if e.event == "error" {
                return e;
            }
        }
        panic!("the stream ended without an error event");
    };
    let last = tokio::time::timeout(PATIENCE, until_error)
        .await
        .expect("in time");
    let v: Value = serde_json::from_str(&last.data).expect("json");
    assert_eq!(v["error"]["details"][0]["reason"], "DRAINING");
    assert!(events.next().await.is_none(), "then the stream ends");
    stopping.await.expect("stopped");
    assert!(
        reqwest::get(format!("{url}/healthz")).await.is_err(),
        "no longer listening"
    );
    // The task itself goes on.
    let task = echo.client.get_task(&id, None).await.expect("get");
    assert!(!task.state().is_terminal());
    echo.client.cancel_task(&id).await.expect("cancel");
}
