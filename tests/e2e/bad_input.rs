//! The bad-input corpus (issue 9): several hundred malformed or hostile requests, hand-written
//! and generated, across JSON-RPC, REST, SSE, WebSocket and raw gRPC to an agent. Each case
//! asserts one specific answer — a JSON-RPC / A2A error code, a 4xx status, a WebSocket close
//! code, a gRPC status — and, for all of them: no 5xx, no -32603, no hang (every case has its
//! own timeout). After the corpus, the gateway and the agent still serve a normal request.

use std::{fmt::Write as _, time::Duration};

use futures::{FutureExt as _, StreamExt as _, future::BoxFuture, stream};
use serde_json::{Value, json};

use crate::gateway::{Gw, PATIENCE};

/// Bound on one case.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the cases need: the gateway and the agent's addresses and HTTP clients.
#[derive(Clone)]
struct Ctx {
    /// `http://gateway`.
    gw: String,
    /// `host:port` of the gateway.
    gw_addr: String,
    /// `http://agent` (its gRPC port).
    agent: String,
    /// HTTP/1.1 client.
    http: reqwest::Client,
    /// HTTP/2 (prior knowledge) client, for raw gRPC.
    h2: reqwest::Client,
    /// A completed task of the agent.
    done_task: String,
}

type Check = BoxFuture<'static, Result<(), String>>;

/// One case: a name and its check.
struct Case(String, Check);

/// The corpus, built up case by case.
#[derive(Default)]
struct Corpus(Vec<Case>);

impl Corpus {
    fn add(
        &mut self,
        name: impl Into<String>,
        check: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        self.0.push(Case(name.into(), check.boxed()));
    }
}

fn short(s: &str) -> String {
    if s.len() > 300 {
        format!("{}… ({} bytes)", &s[..s.floor_char_boundary(300)], s.len())
    } else {
        s.to_owned()
    }
}

mod grpc;
mod json_rpc;
mod rest;
mod unknown_agent;
mod websocket;

/// A valid user message, as protobuf JSON.
fn user_msg() -> Value {
    json!({"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hi"}]})
}

/// `leaf` nested `levels` levels deep, alternating objects and arrays.
fn nested(levels: usize) -> Value {
    let mut v = json!("leaf");
    for i in 0..levels {
        v = if i % 2 == 0 {
            json!({"k": v})
        } else {
            json!([v])
        };
    }
    v
}

/// The JSON text of `"leaf"` nested `levels` levels deep, alternating objects and arrays
/// (built as text: a deep `Value` would overflow the stack when dropped).
fn nested_text(levels: usize) -> String {
    let mut open = String::new();
    let mut close = String::new();
    for i in 0..levels {
        if i % 2 == 0 {
            open.push_str("{\"k\":");
            close.push('}');
        } else {
            open.push('[');
            close.push(']');
        }
    }
    let close: String = close.chars().rev().collect();
    format!("{open}\"leaf\"{close}")
}

/// `body` with the string `"@DEEP@"` replaced by [`nested_text`].
fn with_deep(body: &Value, levels: usize) -> Vec<u8> {
    body.to_string()
        .replace("\"@DEEP@\"", &nested_text(levels))
        .into_bytes()
}

/// The eleven methods, with minimal params that name `id` as the task.
fn with_id(method: &str, id: &str) -> Value {
    match method {
        "GetTask" | "CancelTask" | "SubscribeToTask" => json!({"id": id}),
        "GetTaskPushNotificationConfig" | "DeleteTaskPushNotificationConfig" => {
            json!({"taskId": id, "id": "c"})
        }
        "ListTaskPushNotificationConfigs" => json!({"taskId": id}),
        "CreateTaskPushNotificationConfig" => {
            json!({"taskId": id, "url": "https://example.com/hook"})
        }
        _ => json!({"message": user_msg()}),
    }
}

const METHODS: [&str; 11] = [
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
];

#[tokio::test]
async fn the_bad_input_corpus_gets_specific_client_errors() {
    let (gw, echo, _dir) = Gw::echo().await;
    let done = echo
        .client
        .send_text("done")
        .await
        .expect("a completed task");
    let ctx = Ctx {
        gw: gw.url.clone(),
        gw_addr: gw.url.trim_start_matches("http://").to_owned(),
        agent: echo.url(),
        http: gw.http.clone(),
        h2: reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(PATIENCE)
            .build()
            .expect("client"),
        done_task: done.id.clone(),
    };
    let mut corpus = Corpus::default();
    json_rpc::json_rpc_cases(&ctx, &mut corpus);
    rest::rest_cases(&ctx, &mut corpus);
    websocket::websocket_cases(&ctx, &mut corpus);
    grpc::grpc_cases(&ctx, &mut corpus);
    unknown_agent::unknown_agent_cases(&ctx, &mut corpus);
    let total = corpus.0.len();
    assert!(total >= 300, "the corpus holds {total} cases");
    let failures: Vec<String> = stream::iter(corpus.0)
        .map(|Case(name, check)| async move {
            match tokio::time::timeout(CASE_TIMEOUT, check).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{name}: {e}")),
                Err(_) => Some(format!(
                    "{name}: no answer within {CASE_TIMEOUT:?} (a hang)"
                )),
            }
        })
        .buffer_unordered(8)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    let mut report = String::new();
    for f in &failures {
        let _ = writeln!(report, "  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{report}",
        failures.len()
    );
    // Everyone else is still served.
    let r = gw
        .rpc("echo", "SendMessage", json!({"message": user_msg()}))
        .await;
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r}"
    );
    echo.client
        .get_task(&done.id, None)
        .await
        .expect("the agent still answers");
}
