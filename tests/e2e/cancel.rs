//! Cancellation reaches the agent by CancelTask, by the caller's deadline and by the caller's
//! disconnect; an agent that ignores it is still CANCELED and its late events are dropped.

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;
use switchyard::{
    Client,
    pb::a2a::{
        ListTasksRequest, SendMessageConfiguration, TaskState, send_message_response,
        stream_response,
    },
};
use switchyard_e2e::{Served, collect, describe, message, request, settle};

fn status_text(t: &switchyard::pb::a2a::Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(|m| m.text())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_callers_deadline_cancels_the_task() {
    let (echo, _dir) = Served::echo().await;
    // Long enough for a loaded machine to accept the message (the task must exist), far
    // shorter than the agent's delay.
    let client = echo.client.clone().with_timeout(Duration::from_secs(1));
    let err = client
        .send(message("slow", json!({"delay_ms": 10_000})))
        .await
        .expect_err("deadline");
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err}");
    let list = echo
        .client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("list");
    let task = settle(&echo.client, &list.tasks[0].id).await;
    assert_eq!(task.state(), TaskState::Canceled);
    assert!(
        status_text(&task).contains("deadline"),
        "{}",
        status_text(&task)
    );
}

#[tokio::test]
async fn the_remaining_deadline_is_visible_to_the_agent() {
    let (echo, _dir) = Served::echo().await;
    let client = echo.client.clone().with_timeout(Duration::from_secs(5));
    let t = client
        .send(message("quick", json!({"report_deadline": true})))
        .await
        .expect("send");
    assert_eq!(t.state(), TaskState::Completed);
    let Some(switchyard::pb::a2a::part::Content::Data(d)) = &t.artifacts[0].parts[1].content else {
        panic!("data part")
    };
    let remaining = switchyard::task::value_to_json(d)["remaining_ms"]
        .as_u64()
        .expect("a deadline reached the agent");
    assert!(remaining > 0 && remaining <= 5_000, "{remaining}");
    let t = echo
        .client
        .send(message("none", json!({"report_deadline": true})))
        .await
        .expect("send");
    let Some(switchyard::pb::a2a::part::Content::Data(d)) = &t.artifacts[0].parts[1].content else {
        panic!("data part")
    };
    assert!(switchyard::task::value_to_json(d)["remaining_ms"].is_null());
}

#[tokio::test]
async fn a_unary_callers_disconnect_cancels_the_task() {
    let (echo, _dir) = Served::echo().await;
    let caller = echo.client.clone();
    let call = tokio::spawn(async move {
        caller
            .send(message("abandoned", json!({"delay_ms": 10_000})))
            .await
    });
    // Wait until the task exists and is working, then drop the call.
    let id = loop {
        let list = echo
            .client
            .list_tasks(ListTasksRequest::default())
            .await
            .expect("list");
        if let Some(t) = list.tasks.first()
            && t.state() == TaskState::Working
        {
            break t.id.clone();
        }
        tokio::task::yield_now().await;
    };
    call.abort();
    let task = settle(&echo.client, &id).await;
    assert_eq!(task.state(), TaskState::Canceled);
    assert!(
        status_text(&task).contains("disconnected"),
        "{}",
        status_text(&task)
    );
}

/// Issue 13: a unary caller that disconnects and retries the same message (same `messageId`,
/// as the gateway and the clients do after a broken connection) re-attaches to its task
/// within the disconnect grace: the task is not canceled, and the retry gets it completed.
#[tokio::test]
async fn a_retried_send_re_attaches_to_the_task_its_disconnected_caller_started() {
    let (echo, _dir) = Served::echo().await;
    let m = message("retried", json!({"delay_ms": 1_500}));
    let caller = echo.client.clone();
    let first = m.clone();
    let call = tokio::spawn(async move { caller.send(first).await });
    let id = loop {
        let list = echo
            .client
            .list_tasks(ListTasksRequest::default())
            .await
            .expect("list");
        if let Some(t) = list.tasks.first()
            && t.state() == TaskState::Working
        {
            break t.id.clone();
        }
        tokio::task::yield_now().await;
    };
    call.abort();
    let task = tokio::time::timeout(Duration::from_secs(30), echo.client.send(m))
        .await
        .expect("the retry answers in time")
        .expect("the retry");
    assert_eq!(task.id, id, "the first task, not a second one");
    assert_eq!(task.state(), TaskState::Completed, "{}", status_text(&task));
}

#[tokio::test]
async fn a_streaming_callers_disconnect_does_not_cancel_the_task() {
    let (echo, _dir) = Served::echo().await;
    let mut stream = echo
        .client
        .send_streaming_message(request(message("keep going", json!({"delay_ms": 300}))))
        .await
        .expect("stream");
    let first = stream.next().await.expect("first").expect("event");
    let Some(stream_response::Payload::Task(task)) = first.payload else {
        panic!("task")
    };
    drop(stream);
    let done = settle(&echo.client, &task.id).await;
    assert_eq!(done.state(), TaskState::Completed);
    assert_eq!(done.artifacts[0].text(), "keep going");
}

#[tokio::test]
async fn an_agent_that_ignores_cancel_is_still_canceled_and_its_late_events_dropped() {
    let (echo, _dir) = Served::echo().await;
    let mut req = request(message(
        "stubborn",
        json!({"ignore_cancel": true, "chunks": 6, "chunk_delay_ms": 300}),
    ));
    req.configuration = Some(SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    let Some(send_message_response::Payload::Task(task)) =
        echo.client.send_message(req).await.expect("send").payload
    else {
        panic!("task")
    };
    let mut live = echo
        .client
        .subscribe(&task.id, None)
        .await
        .expect("subscribe");
    // Cancel once the first chunk is out.
    while let Some(e) = live.next().await {
        if describe(&[e.expect("event")])[0].starts_with("artifact:chunks") {
            break;
        }
    }
    let canceled = echo.client.cancel_task(&task.id).await.expect("cancel");
    assert_eq!(canceled.state(), TaskState::Canceled);
    let rest = describe(&collect(live).await);
    assert_eq!(
        rest.last().map(|s| s.starts_with("status:CANCELED")),
        Some(true),
        "{rest:?}"
    );
    // The agent keeps going (a chunk every 300 ms, 300 ms for the client to cancel after the
    // first one even on a loaded machine); nothing it publishes is recorded.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let replay = describe(
        &collect(
            echo.client
                .subscribe(&task.id, Some(0))
                .await
                .expect("replay"),
        )
        .await,
    );
    assert!(
        replay
            .last()
            .is_some_and(|s| s.starts_with("status:CANCELED")),
        "{replay:?}"
    );
    assert_eq!(
        replay.iter().filter(|s| s.starts_with("artifact")).count(),
        1,
        "{replay:?}"
    );
    let got = echo.client.get_task(&task.id, None).await.expect("get");
    assert_eq!(got.state(), TaskState::Canceled);
}

/// A client of the echo agent that cancels through a fresh connection, as a second caller
/// would.
#[tokio::test]
async fn cancel_from_another_client_stops_a_blocking_call() {
    let (echo, _dir) = Served::echo().await;
    let caller = echo.client.clone();
    let call = tokio::spawn(async move {
        caller
            .send(message("wait", json!({"delay_ms": 10_000})))
            .await
    });
    let other = Client::connect(&echo.addr.to_string())
        .await
        .expect("connect");
    let id = loop {
        let list = other
            .list_tasks(ListTasksRequest::default())
            .await
            .expect("list");
        if let Some(t) = list.tasks.first()
            && t.state() == TaskState::Working
        {
            break t.id.clone();
        }
        tokio::task::yield_now().await;
    };
    other.cancel_task(&id).await.expect("cancel");
    let t = call
        .await
        .expect("join")
        .expect("the blocking call returns the task");
    assert_eq!(t.state(), TaskState::Canceled);
    assert!(t.artifacts.is_empty());
}
