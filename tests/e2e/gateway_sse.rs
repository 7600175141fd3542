//! SSE through the gateway: order, ids, close, upfront errors, resume with `Last-Event-ID`,
//! keep-alive comments, and a client that goes away.

use std::time::Duration;

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use switchyard::task::sequence_of;
use switchyard_e2e::{collect, describe, request, settle};

use crate::gateway::{Gw, PATIENCE, Sse, json_of, kind, msg, sse_all, start_task};

/// The sequence number in an event's metadata (JSON), as the agent stamped it.
fn seq(event: &Value) -> u64 {
    let inner = event
        .as_object()
        .and_then(|o| o.values().next())
        .expect("one payload");
    inner["metadata"]["switchyard.sequence"]
        .as_f64()
        .unwrap_or_else(|| panic!("a sequence number: {event}")) as u64
}

#[tokio::test]
async fn streams_are_ordered_carry_ids_and_close_like_the_grpc_stream() {
    let (gw, echo, _dir) = Gw::echo().await;
    let m = msg("ordered", json!({"chunks": 3}));
    let r = gw
        .post_json(
            "/agents/echo",
            &json!({"jsonrpc": "2.0", "id": 9, "method": "SendStreamingMessage", "params": {"message": m}}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let via_rpc = sse_all(r).await;
    // On a connection of its own with `Accept: text/event-stream` (as an `EventSource` and
    // the A2A SDKs send it), an HTTP/1.1 stream is written by the listener itself, not hyper:
    // the same events, framed alike for the client, and the connection closes after it.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let r = fresh
        .post(format!("{}/agents/echo/message:stream", gw.url))
        .header("A2A-Version", "1.0")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream")
        .body(json!({"message": msg("ordered", json!({"chunks": 3}))}).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.headers()[header::CONNECTION], "close");
    assert_eq!(r.headers()[header::TRANSFER_ENCODING], "chunked");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let via_rest = sse_all(r).await;
    // The same request straight over gRPC, for reference.
    let grpc = collect(
        echo.client
            .send_streaming_message(request(switchyard_e2e::message(
                "ordered",
                json!({"chunks": 3}),
            )))
            .await
            .expect("stream"),
    )
    .await;
    let reference: Vec<String> = describe(&grpc)
        .iter()
        .map(|d| d.split('#').next().unwrap_or_default().to_owned())
        .collect();
    for (events, result) in [(&via_rpc, "result"), (&via_rest, "")] {
        let payloads: Vec<&Value> = events
            .iter()
            .map(|e| {
                if result.is_empty() {
                    &e.data
                } else {
                    &e.data[result]
                }
            })
            .collect();
        let kinds: Vec<String> = payloads.iter().map(|p| kind(p)).collect();
        assert_eq!(kinds, reference, "same events in the same order");
        let ids: Vec<u64> = events
            .iter()
            .map(|e| e.id.parse().expect("numeric id"))
            .collect();
        let seqs: Vec<u64> = payloads.iter().map(|p| seq(p)).collect();
        assert_eq!(ids, seqs, "id: is the per-task sequence number");
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "consecutive: {ids:?}"
        );
        assert!(events.iter().all(|e| e.event == "message"));
    }
    assert!(via_rpc.iter().all(|e| e.data["id"] == 9));
    gw.stop().await;
}

#[tokio::test]
async fn an_error_before_the_first_event_is_plain_json() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let r = gw
        .post_json(
            "/agents/echo",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": "none"}}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(json_of(r).await["error"]["code"], -32001);
    let r = gw
        .req(Method::POST, "/agents/echo/tasks/none:subscribe")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    gw.stop().await;
}

/// Reads SSE events until one with sequence id >= `upto`, then drops the connection.
async fn read_until(r: reqwest::Response, upto: u64) -> Vec<Sse> {
    let mut events = r.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(e) = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("in time")
    {
        let e = e.expect("event");
        let id: u64 = e.id.parse().expect("id");
        out.push(Sse {
            event: e.event,
            id: e.id,
            data: serde_json::from_str(&e.data).expect("json"),
        });
        if id >= upto {
            return out;
        }
    }
    panic!("the stream ended before event {upto}");
}

#[tokio::test]
async fn resuming_with_last_event_id_loses_and_repeats_nothing() {
    let (gw, echo, _dir) = Gw::echo().await;
    let id = start_task(
        &gw,
        "echo",
        msg(
            "resume",
            json!({"delay_ms": 300, "chunks": 10, "chunk_delay_ms": 20}),
        ),
    )
    .await;
    let rpc = |extra: Option<&str>| {
        let body = json!({"jsonrpc": "2.0", "id": "sub", "method": "SubscribeToTask", "params": {"id": id}});
        let mut r = gw.post_json("/agents/echo", &body);
        if let Some(last) = extra {
            r = r.header("Last-Event-ID", last);
        }
        r.send()
    };
    // A never interrupted (JSON-RPC), B interrupted (REST), both from a snapshot.
    let (a, b) = tokio::join!(
        rpc(None),
        gw.req(Method::GET, &format!("/agents/echo/tasks/{id}:subscribe"))
            .send()
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    let first_b = read_until(b, 6).await;
    let last = first_b.last().expect("event").id.clone();
    let resumed = gw
        .req(Method::POST, &format!("/agents/echo/tasks/{id}:subscribe"))
        .header("Last-Event-ID", &last)
        .send()
        .await
        .expect("resume");
    let rest_b = sse_all(resumed).await;
    assert_ne!(
        kind(&rest_b[0].data).split(':').next(),
        Some("task"),
        "no second snapshot"
    );
    let b: Vec<(String, Value)> = first_b
        .iter()
        .chain(&rest_b)
        .map(|e| (e.id.clone(), e.data.clone()))
        .collect();
    let a: Vec<(String, Value)> = sse_all(a)
        .await
        .into_iter()
        .map(|e| (e.id, e.data["result"].clone()))
        .collect();
    // The full history of the task, for reference: the gRPC replay from the start.
    let replay = collect(echo.client.subscribe(&id, Some(0)).await.expect("replay")).await;
    let after = |from: &str| -> Vec<(String, Value)> {
        let from: u64 = from.parse().expect("id");
        replay
            .iter()
            .filter(|e| sequence_of(e).expect("seq") > from)
            .map(|e| {
                (
                    sequence_of(e).expect("seq").to_string(),
                    serde_json::to_value(e).expect("json"),
                )
            })
            .collect()
    };
    for (name, got) in [("A", &a), ("B", &b)] {
        assert_eq!(
            got[1..],
            after(&got[0].0)[..],
            "{name}: every event after its snapshot, once, in order"
        );
    }
    if a[0].0 == b[0].0 {
        assert_eq!(
            a, b,
            "A and B began at the same snapshot, so they are identical"
        );
    }
    assert_eq!(kind(&b.last().expect("last").1), "status:COMPLETED");
    // The JSON-RPC binding resumes the same way.
    let v = sse_all(rpc(Some("0")).await.expect("replay")).await;
    assert_eq!(v.len(), replay.len());
    gw.stop().await;
}

#[tokio::test]
async fn silent_streams_get_keep_alive_comments() {
    let (gw, echo, _dir) = Gw::echo_with(|c| c.sse_keepalive = Duration::from_millis(50)).await;
    let id = start_task(&gw, "echo", msg("quiet", json!({"delay_ms": 20_000}))).await;
    let r = gw
        .req(Method::GET, &format!("/agents/echo/tasks/{id}:subscribe"))
        .send()
        .await
        .expect("subscribe");
    let mut body = r.bytes_stream();
    let mut text = String::new();
    while !text.contains("\n: ping\n") && !text.starts_with(": ping\n") {
        let chunk = tokio::time::timeout(PATIENCE, body.next())
            .await
            .expect("in time")
            .expect("more")
            .expect("bytes");
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    echo.client.cancel_task(&id).await.expect("cancel");
    while let Some(chunk) = tokio::time::timeout(PATIENCE, body.next())
        .await
        .expect("in time")
    {
        text.push_str(std::str::from_utf8(&chunk.expect("bytes")).expect("utf-8"));
    }
    assert!(
        text.contains("TASK_STATE_CANCELED"),
        "the stream ends with the cancel: {text}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_call_not_the_task() {
    let (gw, echo, _dir) = Gw::echo().await;
    let r = gw
        .post_json(
            "/agents/echo/message:stream",
            &json!({"message": msg("leave", json!({"chunks": 3, "chunk_delay_ms": 100}))}),
        )
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .expect("stream");
    let mut events = r.bytes_stream().eventsource();
    let first = events.next().await.expect("first").expect("event");
    let snapshot: Value = serde_json::from_str(&first.data).expect("json");
    let id = snapshot["task"]["id"].as_str().expect("task id").to_owned();
    drop(events);
    let task = settle(&echo.client, &id).await;
    assert_eq!(task.state(), switchyard::pb::a2a::TaskState::Completed);
    assert_eq!(task.artifacts.len(), 2, "the task ran to its end");
    gw.stop().await;
}

#[tokio::test]
async fn subscribe_to_a_waiting_task_follows_it_to_the_end_on_both_bindings() {
    let (gw, echo, _dir) = Gw::echo().await;
    let r = gw
        .rpc(
            "echo",
            "SendMessage",
            json!({"message": msg("wait", json!({"ask": "Who?"}))}),
        )
        .await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{r}");
    let id = task["id"].as_str().expect("task id").to_owned();
    let body =
        json!({"jsonrpc": "2.0", "id": "w", "method": "SubscribeToTask", "params": {"id": id}});
    let (rpc, rest) = tokio::join!(
        gw.post_json("/agents/echo", &body).send(),
        gw.req(Method::GET, &format!("/agents/echo/tasks/{id}:subscribe"))
            .send()
    );
    let mut rpc = rpc.expect("rpc").bytes_stream().eventsource();
    let mut rest = rest.expect("rest").bytes_stream().eventsource();
    // Each stream is open with its snapshot before the task is continued.
    let kind_of = |data: &str, rpc: bool| {
        let v: Value = serde_json::from_str(data).expect("json");
        kind(if rpc { &v["result"] } else { &v })
    };
    let first = |e: Option<Result<eventsource_stream::Event, _>>| e.expect("event").expect("sse");
    assert_eq!(
        kind_of(&first(rpc.next().await).data, true),
        "task:INPUT_REQUIRED"
    );
    assert_eq!(
        kind_of(&first(rest.next().await).data, false),
        "task:INPUT_REQUIRED"
    );
    let mut answer = switchyard::pb::a2a::Message::user_text("Ada");
    answer.task_id.clone_from(&id);
    echo.client.send(answer).await.expect("continue");
    for (events, is_rpc) in [(rpc, true), (rest, false)] {
        let rest: Vec<String> = tokio::time::timeout(PATIENCE, events.collect::<Vec<_>>())
            .await
            .expect("the stream closes")
            .into_iter()
            .map(|e| kind_of(&e.expect("sse").data, is_rpc))
            .collect();
        assert_eq!(
            rest,
            ["status:WORKING", "artifact:echo", "status:COMPLETED"],
            "json-rpc: {is_rpc}"
        );
    }
}

#[tokio::test]
async fn an_eventsource_resuming_after_the_end_gets_204_and_stops() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let r = gw
        .post_json(
            "/agents/echo/message:stream",
            &json!({"message": msg("es", json!({"chunks": 2}))}),
        )
        .send()
        .await
        .expect("stream");
    let events = sse_all(r).await;
    let id = events[0].data["task"]["id"].as_str().expect("task id");
    let last = events.last().expect("events");
    assert_eq!(kind(&last.data), "status:COMPLETED");
    // What a browser EventSource sends when it reconnects: a GET with the version in the
    // query (it cannot set headers), `Accept: text/event-stream` and the last `id:` it saw.
    let resume = |after: &str| {
        gw.http
            .get(format!(
                "{}/agents/echo/tasks/{id}:subscribe?A2A-Version=1.0",
                gw.url
            ))
            .header(header::ACCEPT, "text/event-stream")
            .header("Last-Event-ID", after.to_owned())
            .send()
    };
    // At the last event, or past it: nothing is left, and 204 stops the EventSource.
    let past = last.id.parse::<u64>().expect("id") + 5;
    for after in [last.id.clone(), past.to_string()] {
        let r = resume(&after).await.expect("resume at or past the end");
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "after {after}");
        assert!(r.bytes().await.expect("body").is_empty());
    }
    // One event earlier the same request still streams the rest.
    let before: u64 = last.id.parse::<u64>().expect("id") - 1;
    let rest = sse_all(resume(&before.to_string()).await.expect("resume")).await;
    assert_eq!(
        rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [last.id.as_str()]
    );
    gw.stop().await;
}
