//! The official A2A Python SDK (`a2a-sdk[grpc,http-server]==1.3.0`) and the gateway: the SDK's
//! client over JSON-RPC and HTTP+JSON against the gateway, and an SDK server (a third-party
//! agent, gRPC binding) behind it, registered as `switchyard-gateway --agents` takes it: with
//! its card URL (`name=host:port@card-url`), or without one (503 saying what to configure).

use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard::{RegistryConfig, registry::AgentConfig};
use switchyard_e2e::python;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::gateway::{Gw, PATIENCE, json_of, kind, msg, sse_all};

#[tokio::test]
async fn the_sdk_client_sends_streams_gets_lists_cancels_and_subscribes_over_json_rpc() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let out = python::run(&[
        "tests/python/sdk_gateway_client.py",
        &gw.url,
        "echo",
        "JSONRPC",
    ])
    .await;
    assert!(out.contains("ALL OK"), "{out}");
    gw.stop().await;
}

#[tokio::test]
async fn the_sdk_client_sends_streams_gets_lists_cancels_and_subscribes_over_http_json() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let out = python::run(&[
        "tests/python/sdk_gateway_client.py",
        &gw.url,
        "echo",
        "HTTP+JSON",
    ])
    .await;
    assert!(out.contains("ALL OK"), "{out}");
    gw.stop().await;
}

/// The SDK agent of `tests/python/sdk_server.py`, killed on drop.
struct PyAgent {
    _child: tokio::process::Child,
    /// Its gRPC address, `127.0.0.1:port`.
    grpc: String,
    /// Where it serves its card over HTTP.
    card_url: String,
}

impl PyAgent {
    /// The agent as `pyecho`, parsed from the `--agents` / `SWITCHYARD_AGENTS` value the
    /// gateway binary takes: `pyecho=<grpc>@<card url>`, or `pyecho=<grpc>` without it.
    fn registered(&self, with_card_url: bool) -> Vec<AgentConfig> {
        let flag = if with_card_url {
            format!("pyecho={}@{}", self.grpc, self.card_url)
        } else {
            format!("pyecho={}", self.grpc)
        };
        let agents = RegistryConfig::from_env_value(&flag)
            .expect("a valid --agents value")
            .agents;
        assert_eq!(
            agents[0].card_url.is_some(),
            with_card_url,
            "{flag}: {agents:?}"
        );
        agents
    }
}

async fn start_python_agent() -> PyAgent {
    let mut child = tokio::process::Command::new(python::interpreter())
        .arg("tests/python/sdk_server.py")
        .current_dir(python::workspace())
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python started");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(rest) = line.strip_prefix("READY ") {
                return rest.to_owned();
            }
        }
        panic!("sdk_server.py exited before it was ready");
    })
    .await
    .expect("ready in time");
    let field = |k: &str| {
        ready
            .split(' ')
            .find_map(|f| f.strip_prefix(k))
            .expect("field")
            .to_owned()
    };
    PyAgent {
        _child: child,
        grpc: format!("127.0.0.1:{}", field("grpc=")),
        card_url: field("card="),
    }
}

#[tokio::test]
async fn a_python_sdk_agent_without_a_card_url_gets_a_503_that_says_what_to_configure() {
    let py = start_python_agent().await;
    let gw = Gw::start(py.registered(false), |_| {}).await;
    let r = gw
        .req(Method::GET, "/agents/pyecho/.well-known/agent-card.json")
        .send()
        .await
        .expect("card");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.headers().get("retry-after").is_none(),
        "retrying does not help until the gateway is configured"
    );
    let v = json_of(r).await;
    let message = v["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("GetAgentCard")
            && message.contains(&format!("'pyecho={}@http://", py.grpc))
            && message.contains("card_url"),
        "{message}"
    );
    assert_eq!(
        v["error"]["details"][0]["reason"], "AGENT_CARD_NOT_CONFIGURED",
        "{v}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_python_sdk_agent_behind_the_gateway_answers_json_rpc_rest_and_sse() {
    let py = start_python_agent().await;
    // The card comes from the URL: the agent answers GetAgentCard with UNIMPLEMENTED.
    let gw = Gw::start(py.registered(true), |_| {}).await;

    let card = json_of(
        gw.http
            .get(format!(
                "{}/agents/pyecho/.well-known/agent-card.json",
                gw.url
            ))
            .send()
            .await
            .expect("card"),
    )
    .await;
    assert_eq!(card["name"], "pyecho");
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        format!("{}/agents/pyecho", gw.url)
    );

    // JSON-RPC
    let v = gw
        .rpc(
            "pyecho",
            "SendMessage",
            json!({"message": msg("hi", Value::Null)}),
        )
        .await;
    let task = &v["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "echo: hi");
    let id = task["id"].as_str().expect("id").to_owned();
    let v = gw
        .rpc(
            "pyecho",
            "SendMessage",
            json!({"message": msg("msg:only", Value::Null)}),
        )
        .await;
    assert_eq!(
        v["result"]["message"]["parts"][0]["text"], "echo: msg:only",
        "{v}"
    );
    let v = gw.rpc("pyecho", "GetTask", json!({"id": id})).await;
    assert_eq!(v["result"]["id"], id.as_str());
    let v = gw.rpc("pyecho", "ListTasks", json!({})).await;
    assert_eq!(v["result"]["totalSize"], 1, "{v}");
    assert_eq!(v["result"]["nextPageToken"], "");
    let v = gw.rpc("pyecho", "GetTask", json!({"id": "none"})).await;
    assert_eq!(
        v["error"]["code"], -32001,
        "by the SDK's ErrorInfo reason: {v}"
    );
    assert_eq!(v["error"]["data"][0]["reason"], "TASK_NOT_FOUND");

    // SSE over JSON-RPC: the SDK's events carry no sequence numbers, so no `id:`.
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "SendStreamingMessage",
                      "params": {"message": msg("streamed", Value::Null)}});
    let events = sse_all(
        gw.post_json("/agents/pyecho", &body)
            .send()
            .await
            .expect("stream"),
    )
    .await;
    let kinds: Vec<String> = events.iter().map(|e| kind(&e.data["result"])).collect();
    assert_eq!(
        kinds,
        [
            "task:SUBMITTED",
            "status:WORKING",
            "artifact:echo",
            "status:COMPLETED"
        ]
    );
    assert!(events.iter().all(|e| e.id.is_empty()));

    // REST
    let r = gw
        .post_json(
            "/agents/pyecho/message:send",
            &json!({"message": msg("rest", Value::Null)}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json_of(r).await["task"]["artifacts"][0]["parts"][0]["text"],
        "echo: rest"
    );
    let r = gw
        .req(Method::GET, &format!("/agents/pyecho/tasks/{id}"))
        .send()
        .await
        .expect("get");
    assert_eq!(json_of(r).await["id"], id.as_str());
    let r = gw
        .req(Method::GET, "/agents/pyecho/tasks/none")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(r).await["error"]["details"][0]["reason"],
        "TASK_NOT_FOUND"
    );
    let events = sse_all(
        gw.post_json(
            "/agents/pyecho/message:stream",
            &json!({"message": msg("s", Value::Null)}),
        )
        .send()
        .await
        .expect("stream"),
    )
    .await;
    let kinds: Vec<String> = events.iter().map(|e| kind(&e.data)).collect();
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("status:COMPLETED"),
        "{kinds:?}"
    );

    // A slow task, subscribed to over REST, canceled over JSON-RPC.
    let v = gw
        .rpc("pyecho", "SendMessage", json!({"message": msg("slow", Value::Null), "configuration": {"returnImmediately": true}}))
        .await;
    let slow = v["result"]["task"]["id"].as_str().expect("id").to_owned();
    let sub = gw
        .req(
            Method::POST,
            &format!("/agents/pyecho/tasks/{slow}:subscribe"),
        )
        .send()
        .await
        .expect("subscribe");
    let reading = tokio::spawn(sse_all(sub));
    let v = gw.rpc("pyecho", "CancelTask", json!({"id": slow})).await;
    assert_eq!(v["result"]["status"]["state"], "TASK_STATE_CANCELED", "{v}");
    let events = reading.await.expect("reader");
    assert_eq!(
        kind(&events.last().expect("events").data),
        "status:CANCELED"
    );
    gw.stop().await;
}
