//! The A2A JSON-RPC binding of the gateway: every method, and every error in A2A's order.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use switchyard_e2e::Served;

use crate::gateway::{Gw, agent, json_of, kind, msg, sse_all, start_task};

/// The `error` of a JSON-RPC response; panics on a result.
fn error(v: &Value) -> &Value {
    v.get("error").unwrap_or_else(|| panic!("an error: {v}"))
}

#[tokio::test]
async fn every_method_reaches_the_agent() {
    let (echo, _dir) = Served::echo_with(switchyard_e2e::local_push).await;
    let gw = Gw::start(vec![agent("echo", echo.addr)], |_| {}).await;

    let v = gw
        .rpc(
            "echo",
            "SendMessage",
            json!({"message": msg("hello", Value::Null)}),
        )
        .await;
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 1);
    let task = &v["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "hello");
    let id = task["id"].as_str().expect("id").to_owned();

    let v = gw
        .rpc("echo", "GetTask", json!({"id": id, "historyLength": 0}))
        .await;
    assert_eq!(v["result"]["id"], id.as_str(), "a bare Task");
    assert!(v["result"].get("history").is_none(), "historyLength 0: {v}");

    let v = gw.rpc("echo", "ListTasks", json!({"pageSize": 10})).await;
    let list = &v["result"];
    assert_eq!(list["tasks"].as_array().expect("tasks").len(), 1);
    assert_eq!(
        (
            list["nextPageToken"].clone(),
            list["pageSize"].clone(),
            list["totalSize"].clone()
        ),
        (json!(""), json!(10), json!(1)),
        "defaults are emitted: {list}"
    );
    let v = gw
        .rpc("echo", "ListTasks", json!({"contextId": "no-such-context"}))
        .await;
    assert_eq!(
        v["result"]["tasks"],
        json!([]),
        "an empty page still has every field: {v}"
    );
    assert_eq!(v["result"]["totalSize"], 0);

    let slow = start_task(&gw, "echo", msg("slow", json!({"delay_ms": 20_000}))).await;
    let v = gw.rpc("echo", "CancelTask", json!({"id": slow})).await;
    assert_eq!(v["result"]["status"]["state"], "TASK_STATE_CANCELED", "{v}");
    let v = gw.rpc("echo", "CancelTask", json!({"id": slow})).await;
    assert_eq!(error(&v)["code"], -32002);

    let config = json!({"taskId": id, "id": "hook", "url": "http://127.0.0.1:9/hook"});
    let v = gw
        .rpc("echo", "CreateTaskPushNotificationConfig", config)
        .await;
    assert_eq!(v["result"]["id"], "hook", "{v}");
    let v = gw
        .rpc(
            "echo",
            "GetTaskPushNotificationConfig",
            json!({"taskId": id, "id": "hook"}),
        )
        .await;
    assert_eq!(v["result"]["url"], "http://127.0.0.1:9/hook");
    let v = gw
        .rpc(
            "echo",
            "ListTaskPushNotificationConfigs",
            json!({"taskId": id}),
        )
        .await;
    assert_eq!(v["result"]["configs"][0]["id"], "hook");
    let v = gw
        .rpc(
            "echo",
            "DeleteTaskPushNotificationConfig",
            json!({"taskId": id, "id": "hook"}),
        )
        .await;
    assert_eq!(v["result"], json!({}));
    let v = gw
        .rpc(
            "echo",
            "GetTaskPushNotificationConfig",
            json!({"taskId": id, "id": "hook"}),
        )
        .await;
    assert_eq!(
        error(&v)["code"],
        -32001,
        "NOT_FOUND without a reason maps by status: {v}"
    );

    let v = gw.rpc("echo", "GetExtendedAgentCard", json!({})).await;
    assert_eq!(error(&v)["code"], -32007);
    assert_eq!(
        error(&v)["data"][0]["reason"],
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    );

    let r = gw
        .post_json("/agents/echo", &json!({"jsonrpc": "2.0", "id": "s", "method": "SendStreamingMessage",
                                           "params": {"message": msg("streamed", json!({"chunks": 2}))}}))
        .send()
        .await
        .expect("send");
    let events = sse_all(r).await;
    assert!(
        events
            .iter()
            .all(|e| e.data["id"] == "s" && e.data["jsonrpc"] == "2.0")
    );
    let kinds: Vec<String> = events.iter().map(|e| kind(&e.data["result"])).collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("task:SUBMITTED"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("status:COMPLETED"),
        "{kinds:?}"
    );

    let v = gw.rpc("echo", "SubscribeToTask", json!({"id": id})).await;
    assert_eq!(
        error(&v)["code"],
        -32004,
        "a terminal task cannot be subscribed to: {v}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn push_methods_on_an_agent_without_push_are_refused() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let v = gw
        .rpc(
            "echo",
            "ListTaskPushNotificationConfigs",
            json!({"taskId": "t"}),
        )
        .await;
    assert_eq!(error(&v)["code"], -32003);
    assert_eq!(error(&v)["data"][0]["domain"], "a2a-protocol.org");
    gw.stop().await;
}

/// POSTs raw bytes to the echo agent's JSON-RPC endpoint.
async fn raw(gw: &Gw, content_type: Option<&str>, version: Option<&str>, body: &str) -> Value {
    let mut r = gw
        .http
        .post(format!("{}/agents/echo", gw.url))
        .body(body.to_owned());
    if let Some(ct) = content_type {
        r = r.header(header::CONTENT_TYPE, ct);
    }
    if let Some(v) = version {
        r = r.header("A2A-Version", v);
    }
    let r = r.send().await.expect("send");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "every JSON-RPC error is HTTP 200"
    );
    json_of(r).await
}

/// Content type, version, body, expected code, expected id.
type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a str, i32, Value);

#[tokio::test]
async fn errors_come_in_the_a2a_order_with_error_info() {
    let (gw, echo, _dir) = Gw::echo().await;
    let j = Some("application/json");
    let one = Some("1.0");
    let ok = r#"{"jsonrpc":"2.0","id":7,"method":"GetTask","params":{"id":"none"}}"#;
    let cases: [Case<'_>; 12] = [
        (Some("text/plain"), one, ok, -32005, json!(null)),
        (None, one, ok, -32005, json!(null)),
        (j, one, "{\"jsonrpc\":", -32700, json!(null)),
        (j, one, "\u{0}\u{1}", -32700, json!(null)),
        (j, one, "[{}]", -32600, json!(null)),
        (
            j,
            one,
            r#"{"jsonrpc":"1.0","id":7,"method":"GetTask"}"#,
            -32600,
            json!(7),
        ),
        (j, one, r#"{"jsonrpc":"2.0","id":7}"#, -32600, json!(7)),
        (
            j,
            one,
            r#"{"jsonrpc":"2.0","id":7,"method":"message/send","params":{}}"#,
            -32601,
            json!(7),
        ),
        (
            j,
            one,
            r#"{"jsonrpc":"2.0","id":7,"method":"GetTask","params":{"historyLength":"x"}}"#,
            -32602,
            json!(7),
        ),
        (j, None, ok, -32009, json!(7)),
        (j, Some("2.0"), ok, -32009, json!(7)),
        (j, one, ok, -32001, json!(7)),
    ];
    for (ct, version, body, code, id) in cases {
        let v = raw(&gw, ct, version, body).await;
        assert_eq!(error(&v)["code"], code, "{body} ({ct:?}, {version:?}): {v}");
        assert_eq!(v["id"], id, "{body}: {v}");
        assert_eq!(
            error(&v)["data"][0]["@type"],
            "type.googleapis.com/google.rpc.ErrorInfo",
            "{v}"
        );
    }
    let v = raw(&gw, j, one, ok).await;
    let info = &error(&v)["data"][0];
    assert_eq!(
        (info["reason"].clone(), info["domain"].clone()),
        (json!("TASK_NOT_FOUND"), json!("a2a-protocol.org"))
    );
    assert_eq!(info["metadata"]["taskId"], "none");
    // The agent's field violations travel as a BadRequest.
    let v = gw
        .rpc(
            "echo",
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER"}}),
        )
        .await;
    assert_eq!(error(&v)["code"], -32602);
    let bad = &error(&v)["data"][1];
    assert_eq!(bad["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert_eq!(bad["fieldViolations"][0]["field"], "message.parts", "{v}");
    // The version may come as a query parameter, and a +json media type is JSON.
    let r = gw
        .http
        .post(format!("{}/agents/echo?A2A-Version=1.0", gw.url))
        .header(header::CONTENT_TYPE, "application/a2a+json; charset=utf-8")
        .body(ok)
        .send()
        .await
        .expect("send");
    assert_eq!(error(&json_of(r).await)["code"], -32001);
    let listed = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    assert!(
        listed.tasks.is_empty(),
        "no bad request reached the agent as a task"
    );
    gw.stop().await;
}

#[tokio::test]
async fn params_accept_snake_case_unknown_fields_and_any_id() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let m = msg("snake", Value::Null);
    let params = json!({
        "message": {"message_id": m["messageId"], "role": 1, "parts": [{"text": "snake"}], "future_field": 1},
        "configuration": {"history_length": 0, "return_immediately": false},
        "unknownTopLevel": {"x": [1, 2]},
    });
    for id in [json!("abc"), json!(12), json!(null)] {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "SendMessage", "params": params});
        let mut body = body;
        body["params"]["message"]["message_id"] = json!(format!("m-{id}"));
        let v = json_of(
            gw.post_json("/agents/echo/", &body)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(v["id"], id);
        assert_eq!(
            v["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{v}"
        );
        assert!(
            v["result"]["task"].get("history").is_none(),
            "history_length honoured"
        );
    }
    // A request without an id is answered, with id null.
    let body = json!({"jsonrpc": "2.0", "method": "ListTasks"});
    let v = json_of(
        gw.post_json("/agents/echo", &body)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(v["id"], Value::Null);
    assert_eq!(v["result"]["totalSize"], 3);
    // Only POST is served at the JSON-RPC URL.
    let r = gw
        .req(Method::GET, "/agents/echo")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[header::ALLOW], "POST");
    gw.stop().await;
}
