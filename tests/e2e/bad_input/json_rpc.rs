//! JSON-RPC cases: parse, envelope, method, content type, version, params, A2A errors,
//! and generated ones over the id and nesting bounds.

use futures::FutureExt as _;
use serde_json::{Value, json};

use reqwest::StatusCode;
use switchyard::limits::{MAX_ID_BYTES, MAX_JSON_DEPTH};

use super::{Check, Corpus, Ctx, METHODS, short, user_msg, with_deep, with_id};

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

pub(super) fn json_rpc_cases(c: &Ctx, k: &mut Corpus) {
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
