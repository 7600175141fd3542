//! Unknown agents on every front: JSON-RPC (every method, unary and streaming) answers HTTP
//! 404 with error -32601, REST and SSE routes 404 with the error envelope, the WebSocket
//! handshake 404 before the upgrade — each naming the agent (`ErrorInfo` reason
//! AGENT_NOT_FOUND, metadata `agent`) and pointing at `GET /agents`.

use futures::FutureExt as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Check, Corpus, Ctx, METHODS, short, user_msg, with_id};

/// Names no agent has: absent, a different case, a prefix, a longer name.
const NAMES: [&str; 4] = ["nope", "Echo", "ech", "echo2"];

/// Checks that `body` is an error naming agent `name`: `error.code` is `code`, the message
/// names the agent and `GET /agents`, `ErrorInfo` is AGENT_NOT_FOUND for `name`.
fn names_the_agent(text: &str, name: &str, code: i64) -> Result<(), String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {}", short(text)))?;
    let e = &v["error"];
    let message = e["message"].as_str().unwrap_or_default();
    let details = if e["data"].is_array() {
        &e["data"]
    } else {
        &e["details"]
    };
    let info = &details[0];
    if e["code"] != json!(code)
        || !message.contains(&format!("{name:?}"))
        || !message.contains("GET /agents")
        || info["reason"] != "AGENT_NOT_FOUND"
        || info["metadata"]["agent"] != name
    {
        return Err(format!(
            "expected code {code} naming {name:?}: {}",
            short(text)
        ));
    }
    Ok(())
}

/// `request` must be answered HTTP 404 with an error naming `name` (JSON-RPC `code` or the
/// REST envelope's 404).
fn not_found(request: reqwest::RequestBuilder, name: &'static str, code: i64) -> Check {
    async move {
        let r = request.send().await.map_err(|e| format!("send: {e}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| format!("body: {e}"))?;
        if status != 404 {
            return Err(format!("expected HTTP 404, got {status}: {}", short(&text)));
        }
        names_the_agent(&text, name, code)
    }
    .boxed()
}

/// A WebSocket handshake (RFC 6455 §4.1) to `/agents/{name}/ws`: refused with 404 and the
/// REST envelope before the upgrade.
fn ws_not_found(c: &Ctx, name: &'static str) -> Check {
    let request = c
        .http
        .get(format!("{}/agents/{name}/ws", c.gw))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13");
    not_found(request, name, 404)
}

pub(super) fn unknown_agent_cases(c: &Ctx, k: &mut Corpus) {
    for name in NAMES {
        for method in METHODS {
            let body = json!({"jsonrpc": "2.0", "id": 7, "method": method,
                              "params": with_id(method, "t-1")});
            let request = c
                .http
                .post(format!("{}/agents/{name}", c.gw))
                .header("content-type", "application/json")
                .header("A2A-Version", "1.0")
                .body(body.to_string());
            k.add(
                format!("unknown agent {name:?} jsonrpc {method}"),
                not_found(request, name, -32601),
            );
        }
        let send = json!({"message": user_msg()}).to_string();
        for (method, path, body) in [
            (Method::POST, "message:send", Some(send.clone())),
            (Method::POST, "message:stream", Some(send)),
            (Method::GET, "tasks/t-1", None),
            (Method::GET, "tasks", None),
            (Method::POST, "tasks/t-1:cancel", None),
            (Method::POST, "tasks/t-1:subscribe", None),
            (Method::GET, "tasks/t-1/pushNotificationConfigs", None),
            (Method::GET, "extendedAgentCard", None),
            (Method::GET, ".well-known/agent-card.json", None),
        ] {
            let mut request = c
                .http
                .request(method.clone(), format!("{}/agents/{name}/{path}", c.gw))
                .header("A2A-Version", "1.0");
            if let Some(b) = body {
                request = request.header("content-type", "application/json").body(b);
            }
            k.add(
                format!("unknown agent {name:?} rest {method} {path}"),
                not_found(request, name, 404),
            );
        }
        k.add(
            format!("unknown agent {name:?} websocket"),
            ws_not_found(c, name),
        );
    }
}
