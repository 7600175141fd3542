//! REST and SSE cases: routes, methods, versions, content types, bodies, query parameters,
//! A2A errors, long ids and deep values, headers, `Last-Event-ID`, raw HTTP/1.1 framing.

use futures::FutureExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use switchyard::limits::{MAX_ID_BYTES, MAX_JSON_DEPTH};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use super::{Check, Corpus, Ctx, short, user_msg, with_deep};

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

pub(super) fn rest_cases(c: &Ctx, k: &mut Corpus) {
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
