//! Bad input gets INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED / A2A errors with a
//! field-level message, and never crashes the server.

use serde_json::json;
use switchyard::pb::a2a::{
    GetTaskRequest, ListTasksRequest, Message, Part, SendMessageConfiguration, SendMessageRequest,
    SubscribeToTaskRequest, TaskState, send_message_response,
};
use switchyard_e2e::{Served, bad_fields, message, reason, request, status_of};
use tonic::Code;

#[tokio::test]
async fn missing_and_invalid_fields_are_named() {
    let (echo, _dir) = Served::echo().await;
    let s = status_of(
        echo.client
            .send_message(SendMessageRequest::default())
            .await,
    );
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&s), ["message"]);

    let bad = Message {
        message_id: String::new(),
        role: 7,
        parts: vec![Part::default()],
        ..Default::default()
    };
    let s = status_of(echo.client.send_message(request(bad)).await);
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&s),
        ["message.message_id", "message.role", "message.parts[0]"]
    );
    assert!(
        s.message().contains("unknown enum value 7"),
        "{}",
        s.message()
    );

    let mut agent_role = Message::user_text("x");
    agent_role.role = 2;
    agent_role.parts.clear();
    let s = status_of(echo.client.send_message(request(agent_role)).await);
    assert_eq!(bad_fields(&s), ["message.role", "message.parts"]);

    let s = status_of(echo.client.get_task("", None).await);
    assert_eq!(bad_fields(&s), ["id"]);
    let s = status_of(echo.client.get_task("x", Some(-1)).await);
    assert_eq!(bad_fields(&s), ["history_length"]);
}

#[tokio::test]
async fn unknown_task_ids_are_task_not_found() {
    let (echo, _dir) = Served::echo().await;
    let checks = [
        status_of(echo.client.get_task("no-such-task", None).await),
        status_of(echo.client.cancel_task("no-such-task").await),
        status_of(echo.client.subscribe("no-such-task", None).await),
        {
            let mut m = Message::user_text("x");
            m.task_id = "no-such-task".into();
            status_of(echo.client.send(m).await)
        },
    ];
    for s in checks {
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
        assert_eq!(reason(&s).as_deref(), Some("TASK_NOT_FOUND"));
        assert!(s.message().contains("no-such-task"));
    }
}

#[tokio::test]
async fn a_contradicting_context_id_is_rejected() {
    let (echo, _dir) = Served::echo().await;
    let task = echo
        .client
        .send(message("a", json!({"ask": "?"})))
        .await
        .expect("send");
    let mut m = Message::user_text("b");
    m.task_id.clone_from(&task.id);
    m.context_id = "some-other-context".into();
    let s = status_of(echo.client.send(m).await);
    assert_eq!(s.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&s), ["message.context_id"]);
    // Nothing was lost: the task still waits for input.
    let t = echo.client.get_task(&task.id, None).await.expect("get");
    assert_eq!(t.state(), TaskState::InputRequired);
}

#[tokio::test]
async fn a_message_to_a_terminal_or_working_task_is_unsupported() {
    let (echo, _dir) = Served::echo().await;
    let done = echo.client.send_text("done").await.expect("send");
    let mut m = Message::user_text("again");
    m.task_id.clone_from(&done.id);
    let s = status_of(echo.client.send(m).await);
    assert_eq!(s.code(), Code::FailedPrecondition);
    assert_eq!(reason(&s).as_deref(), Some("UNSUPPORTED_OPERATION"));

    // Only an interrupted task (INPUT_REQUIRED, AUTH_REQUIRED) takes another message.
    let mut slow = request(message("long", json!({"delay_ms": 10_000})));
    slow.configuration = Some(SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    let Some(send_message_response::Payload::Task(working)) =
        echo.client.send_message(slow).await.expect("send").payload
    else {
        panic!("a task")
    };
    let mut m = Message::user_text("more");
    m.task_id.clone_from(&working.id);
    let s = status_of(echo.client.send(m).await);
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    assert_eq!(reason(&s).as_deref(), Some("UNSUPPORTED_OPERATION"));
    assert!(s.message().contains("INPUT_REQUIRED"), "{}", s.message());
    echo.client.cancel_task(&working.id).await.expect("cancel");
}

#[tokio::test]
async fn an_oversize_message_is_resource_exhausted_and_the_server_lives_on() {
    let (echo, _dir) = Served::echo_with(|c| c.max_message_bytes = 64 * 1024).await;
    let big = "x".repeat(100 * 1024);
    let s = status_of(echo.client.send_text(&big).await);
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    let ok = echo
        .client
        .send_text("small")
        .await
        .expect("server still serves");
    assert_eq!(ok.state(), TaskState::Completed);
}

#[tokio::test]
async fn list_tasks_rejects_bad_paging_and_filters() {
    let (echo, _dir) = Served::echo().await;
    for (req, field) in [
        (
            ListTasksRequest {
                page_size: Some(0),
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListTasksRequest {
                page_size: Some(101),
                ..Default::default()
            },
            "page_size",
        ),
        (
            ListTasksRequest {
                status: 42,
                ..Default::default()
            },
            "status",
        ),
        (
            ListTasksRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListTasksRequest {
                history_length: Some(-3),
                ..Default::default()
            },
            "history_length",
        ),
    ] {
        let s = status_of(echo.client.list_tasks(req).await);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&s), [field]);
    }
}

#[tokio::test]
async fn a_malformed_resume_point_is_rejected() {
    let (echo, _dir) = Served::echo().await;
    let task = echo.client.send_text("x").await.expect("send");
    let mut a2a = echo.client.a2a();
    let mut req = tonic::Request::new(SubscribeToTaskRequest {
        id: task.id.clone(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("last-event-id", "seven".parse().expect("ascii"));
    let s = a2a
        .subscribe_to_task(req)
        .await
        .expect_err("bad resume point");
    assert_eq!(bad_fields(&s), ["last-event-id"]);
    let s = status_of(echo.client.subscribe(&task.id, Some(99)).await);
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().contains("last event is 4"), "{}", s.message());
}

#[tokio::test]
async fn failing_rejecting_and_panicking_agents_end_tasks_not_the_server() {
    let (echo, _dir) = Served::echo().await;
    let failed = echo
        .client
        .send(message("x", json!({"fail": "disk on fire"})))
        .await
        .expect("send");
    assert_eq!(failed.state(), TaskState::Failed);
    let why = failed.status.and_then(|s| s.message).expect("message");
    assert_eq!(why.text(), "disk on fire");

    let rejected = echo
        .client
        .send(message("x", json!({"reject": "not my job"})))
        .await
        .expect("send");
    assert_eq!(rejected.state(), TaskState::Rejected);

    let panicked = echo
        .client
        .send(message("x", json!({"panic": true})))
        .await
        .expect("send");
    assert_eq!(panicked.state(), TaskState::Failed);
    let why = panicked.status.and_then(|s| s.message).expect("message");
    assert!(
        !why.text().contains("asked to panic"),
        "panic details stay in the logs"
    );

    let mut raw = echo.client.a2a();
    let ok = raw
        .get_task(GetTaskRequest {
            id: failed_id(&echo).await,
            ..Default::default()
        })
        .await;
    assert!(ok.is_ok(), "the server still serves");
}

async fn failed_id(echo: &Served) -> String {
    echo.client.send_text("alive").await.expect("send").id
}
