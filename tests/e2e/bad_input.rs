//! The bad-input corpus (issue 9): several hundred malformed or hostile requests, hand-written
//! and generated, across JSON-RPC, REST, SSE, WebSocket and raw gRPC to an agent. Each case
//! asserts one specific answer — a JSON-RPC / A2A error code, a 4xx status, a WebSocket close
//! code, a gRPC status — and, for all of them: no 5xx, no -32603, no hang (every case has its
//! own timeout). After the corpus, the gateway and the agent still serve a normal request.

use std::{fmt::Write as _, time::Duration};

use futures::{FutureExt as _, StreamExt as _, future::BoxFuture, stream};
use prost::Message as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard::{
    limits::{MAX_ID_BYTES, MAX_JSON_DEPTH},
    pb::a2a::{CancelTaskRequest, GetTaskRequest, SendMessageRequest},
};
use switchyard_e2e::message;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_tungstenite::{connect_async, tungstenite::Message as WsMessage};

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

// ---------------------------------------------------------------------------------------------
// JSON-RPC

/// POSTs `body` to the JSON-RPC endpoint; expects HTTP 200 and error `code`.
fn rpc_raw(
    c: &Ctx,
    content_type: Option<&'static str>,
    version: Option<&'static str>,
    body: Vec<u8>,
    code: i32,
) -> Check {
    let (http, url) = (c.http.clone(), format!("{}/agents/echo", c.gw));
    async move {
        let mut req = http.post(url).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(v) = version {
            req = req.header("A2A-Version", v);
        }
        let r = req.send().await.map_err(|e| format!("send: {e}"))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| format!("body: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!(
                "HTTP {status} (JSON-RPC answers are 200): {}",
                short(&text)
            ));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {}", short(&text)))?;
        let got = v["error"]["code"].as_i64();
        if got != Some(i64::from(code)) {
            return Err(format!("expected {code}, got {}", short(&v.to_string())));
        }
        Ok(())
    }
    .boxed()
}

/// A JSON-RPC request with the right headers; expects error `code`.
fn rpc(c: &Ctx, method: &str, params: Value, code: i32) -> Check {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    rpc_raw(
        c,
        Some("application/json"),
        Some("1.0"),
        body.to_string().into_bytes(),
        code,
    )
}

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

/// A JSON-RPC request whose params hold `"@DEEP@"`, nested `levels` deep; expects `code`.
fn rpc_deep(c: &Ctx, method: &str, params: Value, levels: usize, code: i32) -> Check {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    rpc_raw(
        c,
        Some("application/json"),
        Some("1.0"),
        with_deep(&body, levels),
        code,
    )
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

fn json_rpc_cases(c: &Ctx, k: &mut Corpus) {
    let raw = |body: &str| body.as_bytes().to_vec();
    let json = Some("application/json");
    let v1 = Some("1.0");
    // Parse errors (-32700).
    for body in [
        "{",
        "",
        " ",
        "}",
        "{\"jsonrpc\":",
        "nul",
        "tru",
        "[1,",
        "{\"a\" 1}",
        "{'a':1}",
        "{\"a\":1,}",
        "\u{feff}{}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\ud800\"}",
        "0x10",
        "{\"a\":01}",
        "NaN",
        "Infinity",
        "{\"a\":1}}",
        "// comment\n{}",
    ] {
        k.add(
            format!("jsonrpc parse {body:?}"),
            rpc_raw(c, json, v1, raw(body), -32700),
        );
    }
    for seed in 0u8..20 {
        let junk: Vec<u8> = (0..64u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(seed.wrapping_mul(101)) | 0x80)
            .collect();
        k.add(
            format!("jsonrpc parse junk bytes #{seed}"),
            rpc_raw(c, json, v1, junk, -32700),
        );
    }
    // Envelope errors (-32600).
    for body in [
        "[]",
        "[1]",
        "[{\"jsonrpc\":\"2.0\",\"method\":\"GetTask\"}]",
        "7",
        "null",
        "\"x\"",
        "true",
        "{}",
        "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"GetTask\"}",
        "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"GetTask\"}",
        "{\"id\":1,\"method\":\"GetTask\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}",
        "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"GetTask\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"GetTask\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"GetTask\"}",
    ] {
        k.add(
            format!("jsonrpc envelope {body}"),
            rpc_raw(c, json, v1, raw(body), -32600),
        );
    }
    // Methods (-32601).
    for m in [
        "message/send",
        "message/stream",
        "tasks/get",
        "tasks/cancel",
        "sendMessage",
        "SENDMESSAGE",
        "",
        " SendMessage",
        "SendMessage ",
        "Nope",
        "../GetTask",
        "GetTask\u{0}",
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": m}).to_string();
        k.add(
            format!("jsonrpc method {m:?}"),
            rpc_raw(c, json, v1, body.into_bytes(), -32601),
        );
    }
    // Content types (-32005) and versions (-32009).
    let get =
        json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("multipart/form-data"),
        Some("application/x-www-form-urlencoded"),
        Some("application/octet-stream"),
        Some("json"),
        Some(""),
        Some("text/json+xml"),
    ] {
        k.add(
            format!("jsonrpc content type {ct:?}"),
            rpc_raw(c, ct, v1, get.clone().into_bytes(), -32005),
        );
    }
    for v in [
        None,
        Some("0.3"),
        Some("2.0"),
        Some("1."),
        Some("1.x"),
        Some("v1"),
        Some("1.0.0.0"),
        Some(""),
    ] {
        k.add(
            format!("jsonrpc version {v:?}"),
            rpc_raw(c, json, v, get.clone().into_bytes(), -32009),
        );
    }
    // Params that do not fit the method (-32602).
    for m in METHODS {
        for params in [
            json!([1]),
            json!("x"),
            json!(5),
            json!(true),
            json!({"tenant": 5}),
            json!({"tenant": ["a"]}),
        ] {
            k.add(
                format!("jsonrpc {m} params {params}"),
                rpc(c, m, params, -32602),
            );
        }
    }
    let bad_messages = [
        json!({}),
        json!({"message": 5}),
        json!({"message": {}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}),
        json!({"message": {"messageId": "", "role": "ROLE_USER", "parts": [{"text": "x"}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "x"}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_NOPE", "parts": [{"text": "x"}]}}),
        json!({"message": {"messageId": "m", "role": 99, "parts": [{"text": "x"}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": "x"}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"url": ""}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"raw": "%%%"}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": 5}]}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}], "metadata": 5}}),
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}], "metadata": []}}),
        json!({"message": user_msg(), "configuration": {"historyLength": -1}}),
        json!({"message": user_msg(), "configuration": {"historyLength": "many"}}),
        json!({"message": user_msg(), "configuration": {"historyLength": 1e20}}),
        json!({"message": user_msg(), "configuration": {"taskPushNotificationConfig": {"url": "ftp://x"}}}),
        json!({"message": user_msg(), "configuration": 5}),
    ];
    for (i, p) in bad_messages.into_iter().enumerate() {
        k.add(
            format!("jsonrpc SendMessage bad message #{i}"),
            rpc(c, "SendMessage", p.clone(), -32602),
        );
        k.add(
            format!("jsonrpc SendStreamingMessage bad message #{i}"),
            rpc(c, "SendStreamingMessage", p, -32602),
        );
    }
    for (m, p) in [
        ("GetTask", json!({})),
        ("GetTask", json!({"id": "  "})),
        ("GetTask", json!({"id": "x", "historyLength": -1})),
        ("GetTask", json!({"id": 5})),
        ("CancelTask", json!({})),
        ("CancelTask", json!({"id": "x", "metadata": 5})),
        ("SubscribeToTask", json!({})),
        ("ListTasks", json!({"pageSize": 0})),
        ("ListTasks", json!({"pageSize": 101})),
        ("ListTasks", json!({"pageSize": -1})),
        ("ListTasks", json!({"pageSize": "ten"})),
        ("ListTasks", json!({"status": "TASK_STATE_NOPE"})),
        ("ListTasks", json!({"pageToken": "not-ours"})),
        ("ListTasks", json!({"historyLength": -5})),
        ("ListTasks", json!({"statusTimestampAfter": "yesterday"})),
        ("ListTasks", json!({"statusTimestampAfter": 5})),
        ("ListTasks", json!({"includeArtifacts": "yes"})),
    ] {
        k.add(format!("jsonrpc {m} {p}"), rpc(c, m, p, -32602));
    }
    // A2A errors.
    for (m, p, code) in [
        ("GetTask", json!({"id": "no-such-task"}), -32001),
        ("CancelTask", json!({"id": "no-such-task"}), -32001),
        ("SubscribeToTask", json!({"id": "no-such-task"}), -32001),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "taskId": "no-such-task", "parts": [{"text": "x"}]}}),
            -32001,
        ),
        ("CancelTask", json!({"id": c.done_task}), -32002),
        ("SubscribeToTask", json!({"id": c.done_task}), -32004),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "taskId": c.done_task, "parts": [{"text": "x"}]}}),
            -32004,
        ),
        (
            "CreateTaskPushNotificationConfig",
            json!({"taskId": c.done_task, "url": "https://example.com/h"}),
            -32003,
        ),
        (
            "GetTaskPushNotificationConfig",
            json!({"taskId": c.done_task, "id": "c"}),
            -32003,
        ),
        (
            "ListTaskPushNotificationConfigs",
            json!({"taskId": c.done_task}),
            -32003,
        ),
        (
            "DeleteTaskPushNotificationConfig",
            json!({"taskId": c.done_task, "id": "c"}),
            -32003,
        ),
        ("GetExtendedAgentCard", json!({}), -32007),
    ] {
        k.add(format!("jsonrpc {m} A2A error {code}"), rpc(c, m, p, code));
    }
    // Generated: every id and name field, over the bound (-32602).
    let lengths = [MAX_ID_BYTES + 1, 4_500, 17_000, 20_000];
    for len in lengths {
        let long = "i".repeat(len);
        for m in METHODS {
            let mut p = with_id(m, "t");
            p["tenant"] = json!(long);
            k.add(format!("jsonrpc {m} tenant of {len}"), rpc(c, m, p, -32602));
        }
        for m in [
            "GetTask",
            "CancelTask",
            "SubscribeToTask",
            "GetTaskPushNotificationConfig",
            "DeleteTaskPushNotificationConfig",
            "ListTaskPushNotificationConfigs",
            "CreateTaskPushNotificationConfig",
        ] {
            k.add(
                format!("jsonrpc {m} task id of {len}"),
                rpc(c, m, with_id(m, &long), -32602),
            );
        }
        for field in ["messageId", "contextId", "taskId"] {
            let mut m = user_msg();
            m[field] = json!(long);
            k.add(
                format!("jsonrpc SendMessage {field} of {len}"),
                rpc(c, "SendMessage", json!({"message": m}), -32602),
            );
        }
        for field in ["referenceTaskIds", "extensions"] {
            let mut m = user_msg();
            m[field] = json!([long]);
            k.add(
                format!("jsonrpc SendStreamingMessage {field} of {len}"),
                rpc(c, "SendStreamingMessage", json!({"message": m}), -32602),
            );
        }
        k.add(
            format!("jsonrpc ListTasks contextId of {len}"),
            rpc(c, "ListTasks", json!({"contextId": long}), -32602),
        );
        k.add(
            format!("jsonrpc GetTaskPushNotificationConfig id of {len}"),
            rpc(
                c,
                "GetTaskPushNotificationConfig",
                json!({"taskId": "t", "id": long}),
                -32602,
            ),
        );
    }
    // Generated: free-form values nested too deep (-32602), at every place one can sit.
    let deep = json!("@DEEP@");
    for depth in [MAX_JSON_DEPTH + 1, 32, 60, 124, 127, 129, 300, 50_000] {
        let mut m = user_msg();
        m["metadata"] = json!({"d": deep});
        k.add(
            format!("jsonrpc message.metadata {depth} deep"),
            rpc_deep(c, "SendMessage", json!({"message": m}), depth, -32602),
        );
        let mut m = user_msg();
        m["parts"] = json!([{"data": deep}]);
        k.add(
            format!("jsonrpc data part {depth} deep"),
            rpc_deep(
                c,
                "SendStreamingMessage",
                json!({"message": m}),
                depth,
                -32602,
            ),
        );
        let mut m = user_msg();
        m["parts"] = json!([{"text": "x", "metadata": {"d": deep}}]);
        k.add(
            format!("jsonrpc part metadata {depth} deep"),
            rpc_deep(c, "SendMessage", json!({"message": m}), depth, -32602),
        );
        k.add(
            format!("jsonrpc request metadata {depth} deep"),
            rpc_deep(
                c,
                "SendMessage",
                json!({"message": user_msg(), "metadata": {"d": deep}}),
                depth,
                -32602,
            ),
        );
        k.add(
            format!("jsonrpc CancelTask metadata {depth} deep"),
            rpc_deep(
                c,
                "CancelTask",
                json!({"id": "x", "metadata": {"d": deep}}),
                depth,
                -32602,
            ),
        );
        // Unknown fields are ignored, but not parsed at any depth.
        let code = if depth > MAX_JSON_DEPTH + 6 {
            -32602
        } else {
            -32001
        };
        k.add(
            format!("jsonrpc unknown field {depth} deep"),
            rpc_deep(c, "GetTask", json!({"id": "x", "junk": deep}), depth, code),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// REST and SSE

/// A REST request; expects HTTP `status` and, for errors, the envelope with that code.
fn rest(
    c: &Ctx,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<Vec<u8>>,
    status: u16,
) -> Check {
    let (http, url) = (c.http.clone(), format!("{}{path}", c.gw));
    let headers = headers.to_vec();
    async move {
        let mut req = http.request(method, url).header("A2A-Version", "1.0");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let r = req.send().await.map_err(|e| format!("send: {e}"))?;
        let got = r.status().as_u16();
        let text = r.text().await.map_err(|e| format!("body: {e}"))?;
        if got != status {
            return Err(format!(
                "expected HTTP {status}, got {got}: {}",
                short(&text)
            ));
        }
        if status == 431 {
            // hyper's own answer: the request head is over the HTTP/1.1 read buffer (8 KiB)
            // or the HTTP/2 header list limit (16 KiB).
            return Ok(());
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {}", short(&text)))?;
        if v["error"]["code"] != json!(status) {
            return Err(format!(
                "no error envelope with code {status}: {}",
                short(&text)
            ));
        }
        Ok(())
    }
    .boxed()
}

/// [`rest`] over HTTP/2 (prior knowledge).
fn rest_h2(
    c: &Ctx,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<Vec<u8>>,
    status: u16,
) -> Check {
    let mut c = c.clone();
    c.http = c.h2.clone();
    rest(&c, method, path, headers, body, status)
}

fn json_body(v: &Value) -> Option<Vec<u8>> {
    Some(v.to_string().into_bytes())
}

fn ct_json() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".to_owned())]
}

fn rest_cases(c: &Ctx, k: &mut Corpus) {
    let done = c.done_task.clone();
    let base = "/agents/echo";
    // Routes and methods.
    for (m, p, s) in [
        (Method::GET, "/agents/echo/nope", 404),
        (Method::GET, "/agents/echo/tasks/a/b/c/d/e", 404),
        (Method::GET, "/agents/nobody/tasks", 404),
        (Method::GET, "/nowhere", 404),
        (Method::PUT, "/agents/echo/message:send", 405),
        (Method::GET, "/agents/echo/message:send", 405),
        (Method::DELETE, "/agents/echo/tasks/x", 405),
        (Method::PATCH, "/agents/echo/tasks", 405),
        (Method::PUT, "/agents/echo/tasks/x:cancel", 405),
        (Method::DELETE, "/agents/echo/tasks/x:subscribe", 405),
        (
            Method::PUT,
            "/agents/echo/tasks/x/pushNotificationConfigs",
            405,
        ),
        (
            Method::POST,
            "/agents/echo/tasks/x/pushNotificationConfigs/y",
            405,
        ),
        (Method::POST, "/agents/echo/extendedAgentCard", 405),
        (Method::GET, "/agents/echo", 405),
        (Method::DELETE, "/agents/echo/", 405),
    ] {
        k.add(format!("rest {m} {p}"), rest(c, m, p, &[], None, s));
    }
    // Versions and content types.
    for v in ["0.3", "2.0", "x"] {
        k.add(
            format!("rest version {v}"),
            rest(
                c,
                Method::GET,
                "/agents/echo/tasks",
                &[("A2A-Version", v.to_owned())],
                None,
                400,
            ),
        );
    }
    for ct in [
        "text/plain",
        "application/xml",
        "application/octet-stream",
        "multipart/form-data",
    ] {
        k.add(
            format!("rest message:send content type {ct}"),
            rest(
                c,
                Method::POST,
                "/agents/echo/message:send",
                &[("content-type", ct.to_owned())],
                json_body(&json!({"message": user_msg()})),
                400,
            ),
        );
        k.add(
            format!("rest :cancel with a body and content type {ct}"),
            rest(
                c,
                Method::POST,
                "/agents/echo/tasks/x:cancel",
                &[("content-type", ct.to_owned())],
                Some(b"{}".to_vec()),
                400,
            ),
        );
    }
    // Empty :cancel / :subscribe bodies with any content type reach the agent (404: no task).
    for ct in [
        "application/octet-stream",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        k.add(
            format!("rest empty :cancel with {ct}"),
            rest(
                c,
                Method::POST,
                "/agents/echo/tasks/no-such:cancel",
                &[("content-type", ct.to_owned())],
                Some(Vec::new()),
                404,
            ),
        );
        k.add(
            format!("rest empty :subscribe with {ct}"),
            rest(
                c,
                Method::POST,
                "/agents/echo/tasks/no-such:subscribe",
                &[("content-type", ct.to_owned())],
                Some(Vec::new()),
                404,
            ),
        );
    }
    // Bodies.
    for (i, body) in [
        "{",
        "[1]",
        "5",
        "\"x\"",
        "null",
        "{\"message\":5}",
        "{\"message\":{}}",
        "{\"message\":{\"role\":17.5}}",
        "\u{ff}\u{fe}",
    ]
    .into_iter()
    .enumerate()
    {
        for route in ["message:send", "message:stream"] {
            k.add(
                format!("rest {route} body #{i}"),
                rest(
                    c,
                    Method::POST,
                    &format!("{base}/{route}"),
                    &ct_json(),
                    Some(body.as_bytes().to_vec()),
                    400,
                ),
            );
        }
    }
    k.add(
        "rest message:send empty body",
        rest(
            c,
            Method::POST,
            "/agents/echo/message:send",
            &ct_json(),
            Some(Vec::new()),
            400,
        ),
    );
    // Query parameters.
    for q in [
        "pageSize=abc",
        "pageSize=0",
        "pageSize=101",
        "historyLength=-1",
        "includeArtifacts=maybe",
        "status=NOPE",
        "pageToken=zzz",
        "statusTimestampAfter=yesterday",
        "pageSize=1e3",
        "historyLength=%",
    ] {
        k.add(
            format!("rest ListTasks ?{q}"),
            rest(c, Method::GET, &format!("{base}/tasks?{q}"), &[], None, 400),
        );
    }
    k.add(
        "rest GetTask ?historyLength=-2",
        rest(
            c,
            Method::GET,
            "/agents/echo/tasks/x?historyLength=-2",
            &[],
            None,
            400,
        ),
    );
    // A2A errors.
    for (m, p, s) in [
        (Method::GET, "/agents/echo/tasks/no-such".to_owned(), 404),
        (
            Method::POST,
            "/agents/echo/tasks/no-such:cancel".to_owned(),
            404,
        ),
        (
            Method::GET,
            "/agents/echo/tasks/no-such:subscribe".to_owned(),
            404,
        ),
        (
            Method::POST,
            format!("/agents/echo/tasks/{done}:cancel"),
            400,
        ),
        (
            Method::GET,
            format!("/agents/echo/tasks/{done}:subscribe"),
            400,
        ),
        (
            Method::GET,
            format!("/agents/echo/tasks/{done}/pushNotificationConfigs"),
            400,
        ),
        (
            Method::GET,
            "/agents/echo/extendedAgentCard".to_owned(),
            400,
        ),
    ] {
        k.add(
            format!("rest A2A error {m} {p}"),
            rest(c, m, &p, &[], None, s),
        );
    }
    // Generated: long ids in every path position, and long tenants.
    for len in [MAX_ID_BYTES + 1, 4_500, 17_000, 20_000] {
        let long = "p".repeat(len);
        for (m, p) in [
            (Method::GET, format!("{base}/tasks/{long}")),
            (Method::POST, format!("{base}/tasks/{long}:cancel")),
            (Method::GET, format!("{base}/tasks/{long}:subscribe")),
            (Method::POST, format!("{base}/tasks/{long}:subscribe")),
            (
                Method::GET,
                format!("{base}/tasks/{long}/pushNotificationConfigs"),
            ),
            (
                Method::GET,
                format!("{base}/tasks/t/pushNotificationConfigs/{long}"),
            ),
            (
                Method::DELETE,
                format!("{base}/tasks/{long}/pushNotificationConfigs/c"),
            ),
            (Method::GET, format!("{base}/{long}/tasks")),
            (Method::GET, format!("{base}/{long}/extendedAgentCard")),
            (Method::GET, format!("{base}/tasks?contextId={long}")),
            (Method::GET, format!("{base}/tasks?pageToken={long}")),
        ] {
            // Over HTTP/1.1 a head over 8 KiB is refused by hyper (431); over HTTP/2 the
            // header list may hold 16 KiB.
            let h1 = if len > 8_000 { 431 } else { 400 };
            let h2 = if len > 12_000 { 431 } else { 400 };
            k.add(
                format!("rest long id {m} {}", &p[..p.len().min(60)]),
                rest(c, m.clone(), &p, &[], None, h1),
            );
            k.add(
                format!("rest over HTTP/2 long id {m} {}", &p[..p.len().min(60)]),
                rest_h2(c, m, &p, &[], None, h2),
            );
        }
        let mut msg = user_msg();
        msg["taskId"] = json!(long);
        k.add(
            format!("rest message:send taskId of {len}"),
            rest(
                c,
                Method::POST,
                "/agents/echo/message:send",
                &ct_json(),
                json_body(&json!({"message": msg})),
                400,
            ),
        );
        k.add(
            format!("rest agent name of {len}"),
            rest(
                c,
                Method::GET,
                &format!("/agents/{long}/tasks"),
                &[],
                None,
                if len > 8_000 { 431 } else { 400 },
            ),
        );
    }
    // Generated: deep values in bodies.
    for depth in [MAX_JSON_DEPTH + 1, 40, 127, 1_000, 50_000] {
        let mut m = user_msg();
        m["metadata"] = json!({"d": "@DEEP@"});
        for route in ["message:send", "message:stream"] {
            k.add(
                format!("rest {route} metadata {depth} deep"),
                rest(
                    c,
                    Method::POST,
                    &format!("{base}/{route}"),
                    &ct_json(),
                    Some(with_deep(&json!({"message": m}), depth)),
                    400,
                ),
            );
        }
        k.add(
            format!("rest :cancel metadata {depth} deep"),
            rest(
                c,
                Method::POST,
                "/agents/echo/tasks/x:cancel",
                &ct_json(),
                Some(with_deep(&json!({"metadata": {"d": "@DEEP@"}}), depth)),
                400,
            ),
        );
    }
    // Headers.
    k.add(
        "rest Authorization of 9 KiB",
        rest(
            c,
            Method::GET,
            "/agents/echo/tasks",
            &[("authorization", format!("Bearer {}", "a".repeat(9 * 1024)))],
            None,
            431,
        ),
    );
    k.add(
        "rest A2A-Extensions of 9 KiB",
        rest(
            c,
            Method::GET,
            "/agents/echo/tasks",
            &[("a2a-extensions", "e".repeat(9 * 1024))],
            None,
            431,
        ),
    );
    for (name, value) in [
        ("authorization", format!("Bearer {}", "a".repeat(9 * 1024))),
        ("a2a-extensions", "e".repeat(9 * 1024)),
    ] {
        k.add(
            format!("rest over HTTP/2 {name} of 9 KiB"),
            rest_h2(
                c,
                Method::GET,
                "/agents/echo/tasks",
                &[(name, value)],
                None,
                400,
            ),
        );
    }
    // SSE: the resume point of a subscription.
    for id in [
        "+5",
        "-1",
        "abc",
        "1.5",
        "0x10",
        "99999999999999999999999",
        "1 2",
        "５",
    ] {
        k.add(
            format!("sse REST Last-Event-ID {id:?}"),
            rest(
                c,
                Method::GET,
                "/agents/echo/tasks/x:subscribe",
                &[("last-event-id", id.to_owned())],
                None,
                400,
            ),
        );
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": "x"}});
        let (http, url, id) = (
            c.http.clone(),
            format!("{}/agents/echo", c.gw),
            id.to_owned(),
        );
        k.add(format!("sse JSON-RPC Last-Event-ID {id:?}"), async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .header("A2A-Version", "1.0")
                .header("last-event-id", id)
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let bytes = r.bytes().await.map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            if v["error"]["code"] == json!(-32600) {
                Ok(())
            } else {
                Err(format!("expected -32600: {v}"))
            }
        });
    }
    // Raw HTTP/1.1: two Host headers (RFC 9112 §3.2), and other framing abuse.
    for (name, request, status) in [
        (
            "two Host headers",
            "GET /agents HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        (
            "two Host headers on JSON-RPC",
            "POST /agents/echo HTTP/1.1\r\nHost: a\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            200,
        ),
        (
            "two A2A-Version headers",
            "GET /agents/echo/tasks HTTP/1.1\r\nHost: a\r\nA2A-Version: 1.0\r\nA2A-Version: 1.0\r\n\r\n",
            400,
        ),
        ("no Host header", "GET /agents HTTP/1.1\r\n\r\n", 400),
        (
            "bad Content-Length",
            "POST /agents/echo/message:send HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
            400,
        ),
        (
            "two Content-Lengths",
            "POST /agents/echo/message:send HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        ("bad request line", "GARBAGE\r\n\r\n", 400),
    ] {
        k.add(
            format!("http/1.1 {name}"),
            raw_http(c.gw_addr.clone(), request.as_bytes().to_vec(), status),
        );
    }
}

/// Writes `request` on a fresh TCP connection; expects the status line to carry `status` (and,
/// for a JSON-RPC answer on 200, an error).
fn raw_http(addr: String, request: Vec<u8>, status: u16) -> Check {
    async move {
        let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
        s.write_all(&request).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buf);
        let line = head.lines().next().unwrap_or_default().to_owned();
        if !line.starts_with(&format!("HTTP/1.1 {status}")) {
            return Err(format!("expected {status}: {}", short(&head)));
        }
        Ok(())
    }
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/// Reads server frames from a raw socket until a close frame; returns its code.
async fn raw_close_code(s: &mut TcpStream) -> Result<u16, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Parse complete frames (servers do not mask).
        let mut at = 0;
        while buf.len() >= at + 2 {
            let (op, len7) = (buf[at] & 0x0f, usize::from(buf[at + 1] & 0x7f));
            let (len, head) = match len7 {
                126 if buf.len() >= at + 4 => (
                    usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
                    4,
                ),
                127 => return Err("a huge server frame".into()),
                126 => break,
                n => (n, 2),
            };
            if buf.len() < at + head + len {
                break;
            }
            if op == 0x8 {
                let p = &buf[at + head..at + head + len];
                return if p.len() >= 2 {
                    Ok(u16::from_be_bytes([p[0], p[1]]))
                } else {
                    Err("a close frame without a code".into())
                };
            }
            at += head + len;
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection ended without a close frame".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Opens a WebSocket session with a hand-made handshake, writes `frames` raw, expects close
/// `code`.
fn ws_raw(c: &Ctx, frames: Vec<u8>, code: u16) -> Check {
    let addr = c.gw_addr.clone();
    async move {
        let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
        let hello = format!(
            "GET /agents/echo/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(hello.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
                return Err("no handshake answer".into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(format!("no upgrade: {}", String::from_utf8_lossy(&head)));
        }
        s.write_all(&frames).await.map_err(|e| e.to_string())?;
        let got = raw_close_code(&mut s).await?;
        if got == code { Ok(()) } else { Err(format!("expected close {code}, got {got}")) }
    }
    .boxed()
}

/// A client frame: `first` byte (FIN, RSV, opcode), masked with a zero key.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Sends one message with tokio-tungstenite; expects close `code`.
fn ws_message(c: &Ctx, m: WsMessage, code: u16) -> Check {
    let url = format!("{}/agents/echo/ws", c.gw.replacen("http", "ws", 1));
    async move {
        use futures::SinkExt as _;
        let (mut ws, _) = connect_async(url).await.map_err(|e| e.to_string())?;
        ws.send(m).await.map_err(|e| e.to_string())?;
        while let Some(m) = ws.next().await {
            match m.map_err(|e| e.to_string())? {
                WsMessage::Close(Some(f)) => {
                    let got = u16::from(f.code);
                    return if got == code {
                        Ok(())
                    } else {
                        Err(format!("expected close {code}, got {got} ({})", f.reason))
                    };
                }
                WsMessage::Close(None) => return Err("a close frame without a code".into()),
                _ => {}
            }
        }
        Err("the session ended without a close frame".into())
    }
    .boxed()
}

/// Sends one frame; expects an `error` frame with gRPC `code`, and the session to go on.
fn ws_error_frame(c: &Ctx, frame_json: Value, code: i64) -> Check {
    let url = format!("{}/agents/echo/ws", c.gw.replacen("http", "ws", 1));
    async move {
        use futures::SinkExt as _;
        let (mut ws, _) = connect_async(url).await.map_err(|e| e.to_string())?;
        ws.send(WsMessage::text(frame_json.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        while let Some(m) = ws.next().await {
            match m.map_err(|e| e.to_string())? {
                WsMessage::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                    return if v["error"]["code"] == json!(code) {
                        Ok(())
                    } else {
                        Err(format!("expected an error frame with code {code}: {v}"))
                    };
                }
                WsMessage::Close(f) => return Err(format!("closed instead: {f:?}")),
                _ => {}
            }
        }
        Err("the session ended".into())
    }
    .boxed()
}

fn websocket_cases(c: &Ctx, k: &mut Corpus) {
    // Protocol errors (RFC 6455 §7.4.1: 1002).
    for (name, bytes) in [
        ("unmasked frame", vec![0x81, 0x02, b'{', b'}']),
        ("RSV1 without an extension", frame(0xC1, b"{}")),
        ("RSV3 set", frame(0x91, b"{}")),
        ("reserved opcode 0x3", frame(0x83, b"")),
        ("reserved opcode 0xB", frame(0x8B, b"")),
        ("fragmented ping", frame(0x09, b"")),
        ("ping over 125 bytes", frame(0x89, &[b'p'; 126])),
        ("continuation without a start", frame(0x80, b"{}")),
        (
            "a new message inside a fragmented one",
            [frame(0x01, b"{"), frame(0x81, b"}")].concat(),
        ),
        ("close with a one-byte payload", frame(0x88, b"x")),
        ("close with code 1005", frame(0x88, &1005u16.to_be_bytes())),
        ("close with code 999", frame(0x88, &999u16.to_be_bytes())),
    ] {
        k.add(format!("ws protocol: {name}"), ws_raw(c, bytes, 1002));
    }
    // Invalid payload data (1007).
    k.add(
        "ws text frame not UTF-8",
        ws_raw(c, frame(0x81, &[0xff, 0xfe, 0xfd]), 1007),
    );
    k.add(
        "ws fragmented text not UTF-8",
        ws_raw(
            c,
            [frame(0x01, &[0xe2, 0x82]), frame(0x80, &[0xff])].concat(),
            1007,
        ),
    );
    for text in [
        "{".to_owned(), "[]".into(), "5".into(), "null".into(), "{\"send\":5}".into(),
        "{\"cancel\":\"x\"}".into(), "{\"send\":{\"message\":{\"role\":17.5}}}".into(),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "taskId": "t".repeat(20_000), "parts": [{"text": "x"}]}}}).to_string(),
        json!({"cancel": {"id": "c".repeat(5_000)}}).to_string(),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}], "metadata": {"d": nested(60)}}}}).to_string(),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"data": nested(MAX_JSON_DEPTH + 1)}]}}}).to_string(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    ] {
        k.add(format!("ws invalid frame {}", short(&text).chars().take(60).collect::<String>()), ws_message(c, WsMessage::text(text), 1007));
    }
    k.add(
        "ws binary frame",
        ws_message(c, WsMessage::binary(vec![1u8, 2, 3]), 1003),
    );
    k.add(
        "ws message over the limit",
        ws_message(c, WsMessage::text("x".repeat(2 * 1024 * 1024)), 1009),
    );
    // Per-request errors answer with an error frame (INVALID_ARGUMENT 3, NOT_FOUND 5).
    for (i, f) in [
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}}),
        json!({"send": {"message": {"messageId": "", "role": "ROLE_USER", "parts": [{"text": "x"}]}}}),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "x"}]}}}),
        json!({"send": {}}),
        json!({}),
    ]
    .into_iter()
    .enumerate()
    {
        k.add(format!("ws error frame #{i}"), ws_error_frame(c, f, 3));
    }
    k.add(
        "ws cancel of an unknown task",
        ws_error_frame(c, json!({"cancel": {"id": "no-such"}}), 5),
    );
}

// ---------------------------------------------------------------------------------------------
// Raw gRPC to the agent

/// A length-prefixed gRPC message frame.
fn grpc_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// POSTs `body` to `path` on the agent's gRPC port; expects `grpc-status` `code`.
fn grpc(
    c: &Ctx,
    path: &str,
    metadata: &[(&'static str, &'static str)],
    body: Vec<u8>,
    code: u32,
) -> Check {
    let (h2, url) = (c.h2.clone(), format!("{}{path}", c.agent));
    let metadata = metadata.to_vec();
    async move {
        let mut req = h2
            .post(url)
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in metadata {
            req = req.header(k, v);
        }
        let r = req
            .body(body)
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        if r.status().is_server_error() {
            return Err(format!("HTTP {}", r.status()));
        }
        let status = r
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let message = r
            .headers()
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if status.as_deref() != Some(&code.to_string()) {
            return Err(format!(
                "expected grpc-status {code}, got {status:?} ({message:?})"
            ));
        }
        if message.as_ref().is_some_and(|m| m.len() > 4096) {
            return Err(format!(
                "a grpc-message of {} bytes",
                message.map_or(0, |m| m.len())
            ));
        }
        Ok(())
    }
    .boxed()
}

const A2A: &str = "/lf.a2a.v1.A2AService";

fn grpc_cases(c: &Ctx, k: &mut Corpus) {
    let rpcs: Vec<String> = METHODS
        .iter()
        .map(|m| format!("{A2A}/{m}"))
        .chain(
            [
                "SendMessage",
                "SendStreamingMessage",
                "SendMessageParts",
                "Converse",
            ]
            .iter()
            .map(|m| format!("/switchyard.v1.AgentService/{m}")),
        )
        .collect();
    // Unknown services and methods (UNIMPLEMENTED).
    for p in [
        "/junk.Service/Method",
        "/lf.a2a.v1.A2AService/Nope",
        "/switchyard.v1.AgentService/Nope",
        "/x",
        "/lf.a2a.v1.A2AService/",
        "/grpc.health.v1.Health/Nope",
    ] {
        k.add(
            format!("grpc unknown {p}"),
            grpc(c, p, &[], grpc_frame(b""), 12),
        );
    }
    // Payloads that do not decode (INVALID_ARGUMENT, not INTERNAL).
    let undecodable: [&[u8]; 6] = [
        &[0xff, 0xff, 0xff],
        &[0x0a, 0x05, b'a'],
        &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0x07],
        &[
            0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        &[0x0b, 0x0c],
    ];
    for p in &rpcs {
        if p.ends_with("/Converse") || p.ends_with("/SendMessageParts") {
            continue;
        }
        for (i, bytes) in undecodable.iter().enumerate() {
            k.add(
                format!("grpc {p} undecodable #{i}"),
                grpc(c, p, &[], grpc_frame(bytes), 3),
            );
        }
    }
    // Over the bounds.
    let long = "g".repeat(20_000);
    let get = GetTaskRequest {
        id: long.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    k.add(
        "grpc GetTask id of 20,000",
        grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(&get), 3),
    );
    let cancel = CancelTaskRequest {
        id: long.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    k.add(
        "grpc CancelTask id of 20,000",
        grpc(c, &format!("{A2A}/CancelTask"), &[], grpc_frame(&cancel), 3),
    );
    let sub = switchyard::pb::a2a::SubscribeToTaskRequest {
        id: long.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    k.add(
        "grpc SubscribeToTask id of 20,000",
        grpc(
            c,
            &format!("{A2A}/SubscribeToTask"),
            &[],
            grpc_frame(&sub),
            3,
        ),
    );
    for len in [MAX_ID_BYTES + 1, 4_500, 17_000] {
        let mut m = message("hi", Value::Null);
        m.task_id = "t".repeat(len);
        let send = SendMessageRequest {
            message: Some(m),
            ..Default::default()
        }
        .encode_to_vec();
        k.add(
            format!("grpc SendMessage taskId of {len}"),
            grpc(c, &format!("{A2A}/SendMessage"), &[], grpc_frame(&send), 3),
        );
        k.add(
            format!("grpc AgentService SendMessage taskId of {len}"),
            grpc(
                c,
                "/switchyard.v1.AgentService/SendMessage",
                &[],
                grpc_frame(&send),
                3,
            ),
        );
        let t = GetTaskRequest {
            id: "x".into(),
            tenant: "t".repeat(len),
            ..Default::default()
        }
        .encode_to_vec();
        k.add(
            format!("grpc GetTask tenant of {len}"),
            grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(&t), 3),
        );
    }
    for depth in [MAX_JSON_DEPTH + 1, 30, 34, 50, 200] {
        let m = message("hi", json!({"d": nested(depth)}));
        let send = SendMessageRequest {
            message: Some(m),
            ..Default::default()
        }
        .encode_to_vec();
        k.add(
            format!("grpc SendMessage metadata {depth} deep"),
            grpc(c, &format!("{A2A}/SendMessage"), &[], grpc_frame(&send), 3),
        );
        k.add(
            format!("grpc SendStreamingMessage metadata {depth} deep"),
            grpc(
                c,
                &format!("{A2A}/SendStreamingMessage"),
                &[],
                grpc_frame(&send),
                3,
            ),
        );
    }
    // Metadata.
    let get = GetTaskRequest {
        id: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    for v in ["2.0", "0.3", "1.x", "v1"] {
        k.add(
            format!("grpc a2a-version {v}"),
            grpc(
                c,
                &format!("{A2A}/GetTask"),
                &[("a2a-version", v)],
                grpc_frame(&get),
                9,
            ),
        );
    }
    let sub = switchyard::pb::a2a::SubscribeToTaskRequest {
        id: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    for v in ["+5", "-1", "abc", "1.5", "99999999999999999999999"] {
        k.add(
            format!("grpc last-event-id {v}"),
            grpc(
                c,
                &format!("{A2A}/SubscribeToTask"),
                &[("last-event-id", v)],
                grpc_frame(&sub),
                3,
            ),
        );
    }
    k.add(
        "grpc GetTask unknown id",
        grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(&get), 5),
    );
    k.add(
        "grpc GetTask empty id",
        grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(b""), 3),
    );
    k.add(
        "grpc ListTasks page size 0",
        grpc(
            c,
            &format!("{A2A}/ListTasks"),
            &[],
            grpc_frame(
                &switchyard::pb::a2a::ListTasksRequest {
                    page_size: Some(0),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            3,
        ),
    );
    k.add(
        "grpc SendMessage over the size limit",
        grpc(
            c,
            &format!("{A2A}/SendMessage"),
            &[],
            grpc_frame(&vec![0x0a; 5 * 1024 * 1024]),
            8,
        ),
    );
}

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
    json_rpc_cases(&ctx, &mut corpus);
    rest_cases(&ctx, &mut corpus);
    websocket_cases(&ctx, &mut corpus);
    grpc_cases(&ctx, &mut corpus);
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
