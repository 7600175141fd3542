//! The A2A REST (HTTP+JSON) binding of the gateway: every route, the error envelope and the
//! HTTP status table.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use switchyard_e2e::{Served, assert_utc_timestamps};

use crate::gateway::{Gw, agent, json_of, kind, msg, sse_all, start_task};

/// Sends a request and returns (status, JSON body).
async fn call(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.expect("send");
    let status = r.status();
    (status, json_of(r).await)
}

/// Asserts an error envelope: HTTP status, gRPC status name and ErrorInfo reason.
fn envelope(got: &(StatusCode, Value), http: u16, status: &str, reason: &str) {
    let (code, body) = got;
    assert_eq!(code.as_u16(), http, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], http, "{body}");
    assert_eq!(e["status"], status, "{body}");
    assert_eq!(e["details"][0]["reason"], reason, "{body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn every_route_reaches_the_agent() {
    let (echo, _dir) = Served::echo_with(switchyard_e2e::local_push).await;
    let gw = Gw::start(vec![agent("echo", echo.addr)], |_| {}).await;
    let base = "/agents/echo";

    let r = gw
        .post_json(
            &format!("{base}/message:send"),
            &json!({"message": msg("rest", Value::Null)}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/a2a+json");
    let v = json_of(r).await;
    assert_eq!(v["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    // json_of checks every timestamp; this one must exist for that check to mean something.
    let stamp = v["task"]["status"]["timestamp"]
        .as_str()
        .expect("a status timestamp");
    assert!(stamp.ends_with('Z'), "ProtoJSON UTC: {stamp}");
    assert!(assert_utc_timestamps(&v) >= 1);
    let id = v["task"]["id"].as_str().expect("id").to_owned();

    let (s, v) = call(gw.req(Method::GET, &format!("{base}/tasks/{id}?historyLength=0"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], id.as_str());
    assert!(v.get("history").is_none(), "{v}");
    let (_, v) = call(gw.req(Method::GET, &format!("{base}/tasks/{id}"))).await;
    assert_eq!(v["history"].as_array().expect("history").len(), 1);

    let (s, v) = call(gw.req(
        Method::GET,
        &format!("{base}/tasks?pageSize=1&status=TASK_STATE_COMPLETED&include_artifacts=true"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["pageSize"].clone(),
            v["totalSize"].clone(),
            v["nextPageToken"].clone()
        ),
        (json!(1), json!(1), json!("")),
        "{v}"
    );
    assert!(
        v["tasks"][0]["artifacts"].is_array(),
        "includeArtifacts honoured: {v}"
    );

    let slow = start_task(&gw, "echo", msg("slow", json!({"delay_ms": 20_000}))).await;
    let (s, v) = call(gw.req(Method::POST, &format!("{base}/tasks/{slow}:cancel"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"]["state"], "TASK_STATE_CANCELED");

    let hooks = format!("{base}/tasks/{id}/pushNotificationConfigs");
    let (s, v) = call(gw.post_json(
        &hooks,
        &json!({"url": "http://127.0.0.1:9/hook", "id": "h1"}),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["id"].clone(), v["taskId"].clone()),
        (json!("h1"), json!(id)),
        "the path names the task"
    );
    let (_, v) = call(gw.req(Method::GET, &hooks)).await;
    assert_eq!(v["configs"][0]["id"], "h1");
    let (_, v) = call(gw.req(Method::GET, &format!("{hooks}/h1"))).await;
    assert_eq!(v["url"], "http://127.0.0.1:9/hook");
    let (s, v) = call(gw.req(Method::DELETE, &format!("{hooks}/h1"))).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    let got = call(gw.req(Method::GET, &format!("{hooks}/h1"))).await;
    envelope(&got, 404, "NOT_FOUND", "TASK_NOT_FOUND");

    let got = call(gw.req(Method::GET, &format!("{base}/extendedAgentCard"))).await;
    envelope(
        &got,
        400,
        "FAILED_PRECONDITION",
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    );

    // A tenant prefix is accepted and passed on.
    let (s, v) = call(gw.req(Method::GET, &format!("{base}/acme/tasks/{id}"))).await;
    assert_eq!((s, v["id"].clone()), (StatusCode::OK, json!(id)));

    let r = gw
        .post_json(
            &format!("{base}/message:stream"),
            &json!({"message": msg("s", json!({"chunks": 2}))}),
        )
        .send()
        .await
        .expect("send");
    let events = sse_all(r).await;
    let kinds: Vec<String> = events.iter().map(|e| kind(&e.data)).collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("task:SUBMITTED"),
        "bare StreamResponses: {kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("status:COMPLETED"));
    gw.stop().await;
}

#[tokio::test]
async fn errors_use_the_envelope_and_the_status_table() {
    let (gw, echo, _dir) = Gw::echo().await;
    let base = "/agents/echo";
    let done = gw
        .post_json(
            &format!("{base}/message:send"),
            &json!({"message": msg("d", Value::Null)}),
        )
        .send()
        .await
        .expect("send");
    let done = json_of(done).await["task"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let got = call(gw.req(Method::GET, &format!("{base}/tasks/none"))).await;
    envelope(&got, 404, "NOT_FOUND", "TASK_NOT_FOUND");
    assert_eq!(got.1["error"]["details"][0]["metadata"]["taskId"], "none");
    let got = call(gw.req(Method::POST, &format!("{base}/tasks/{done}:cancel"))).await;
    envelope(&got, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE");
    let got = call(gw.req(Method::POST, &format!("{base}/tasks/{done}:subscribe"))).await;
    envelope(&got, 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION");
    let got = call(gw.http.get(format!("{}{base}/tasks/{done}", gw.url))).await;
    envelope(&got, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED");
    let got = call(
        gw.req(Method::POST, &format!("{base}/message:send"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("a=b"),
    )
    .await;
    envelope(&got, 400, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED");
    let got = call(
        gw.req(Method::POST, &format!("{base}/message:send"))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{\"message\":"),
    )
    .await;
    envelope(&got, 400, "INVALID_ARGUMENT", "INVALID_REQUEST");
    let got = call(gw.post_json(
        &format!("{base}/message:send"),
        &json!({"message": {"parts": "x"}}),
    ))
    .await;
    envelope(&got, 400, "INVALID_ARGUMENT", "INVALID_PARAMS");
    let got = call(gw.post_json(
        &format!("{base}/message:send"),
        &json!({"message": {"messageId": "m", "role": "ROLE_USER"}}),
    ))
    .await;
    envelope(&got, 400, "INVALID_ARGUMENT", "INVALID_PARAMS");
    assert_eq!(
        got.1["error"]["details"][1]["fieldViolations"][0]["field"],
        "message.parts"
    );
    let got = call(gw.req(Method::GET, &format!("{base}/tasks?pageSize=lots"))).await;
    envelope(&got, 400, "INVALID_ARGUMENT", "INVALID_PARAMS");
    let got = call(gw.req(Method::GET, &format!("{base}/tasks/%zz"))).await;
    envelope(&got, 400, "INVALID_ARGUMENT", "INVALID_REQUEST");
    let got = call(gw.req(Method::GET, &format!("{base}/no/such/route"))).await;
    envelope(&got, 404, "NOT_FOUND", "METHOD_NOT_FOUND");
    let r = gw
        .req(Method::GET, &format!("{base}/message:send"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[header::ALLOW], "POST");
    let got = (StatusCode::METHOD_NOT_ALLOWED, json_of(r).await);
    envelope(&got, 405, "UNIMPLEMENTED", "METHOD_NOT_FOUND");
    let got = call(
        gw.req(Method::GET, &format!("{base}/tasks/none:subscribe"))
            .header("Last-Event-ID", "x"),
    )
    .await;
    envelope(&got, 400, "INVALID_ARGUMENT", "INVALID_REQUEST");
    let listed = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    assert_eq!(listed.tasks.len(), 1, "only the valid send made a task");
    gw.stop().await;
}
