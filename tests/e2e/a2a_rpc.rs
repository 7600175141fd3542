//! Every `lf.a2a.v1.A2AService` RPC against the echo agent, with A2A v1.0 semantics.

use futures::StreamExt as _;
use serde_json::json;
use switchyard::{
    error::A2aErrorKind,
    pb::a2a::{
        GetExtendedAgentCardRequest, ListTasksRequest, Message, Role, SendMessageConfiguration,
        TaskState, send_message_response,
    },
    task::sequence_of,
};
use switchyard_e2e::{
    Served, collect, describe, describe_one, message, request, settle, short, status_of,
};

#[tokio::test]
async fn send_message_blocks_until_the_task_completes() {
    let (echo, _dir) = Served::echo().await;
    let task = echo.client.send_text("hello").await.expect("send");
    assert_eq!(task.state(), TaskState::Completed);
    assert!(!task.id.is_empty() && !task.context_id.is_empty());
    assert_eq!(task.artifacts.len(), 1);
    assert_eq!(task.artifacts[0].name, "echo");
    assert_eq!(task.artifacts[0].text(), "hello");
    assert_eq!(task.history.len(), 1);
    assert_eq!(task.history[0].role, Role::User as i32);
    assert_eq!(task.history[0].task_id, task.id);
    assert_eq!(task.history[0].context_id, task.context_id);
}

#[tokio::test]
async fn a_client_context_id_is_kept() {
    let (echo, _dir) = Served::echo().await;
    let mut m = Message::user_text("x");
    m.context_id = "ctx-from-client".into();
    let task = echo.client.send(m).await.expect("send");
    assert_eq!(task.context_id, "ctx-from-client");
}

#[tokio::test]
async fn return_immediately_answers_before_the_task_finishes() {
    let (echo, _dir) = Served::echo().await;
    let mut req = request(message("slow", json!({"delay_ms": 400})));
    req.configuration = Some(SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    let resp = echo.client.send_message(req).await.expect("send");
    let Some(send_message_response::Payload::Task(task)) = resp.payload else {
        panic!("expected a task")
    };
    assert_eq!(task.state(), TaskState::Submitted);
    assert!(task.artifacts.is_empty());
    let done = settle(&echo.client, &task.id).await;
    assert_eq!(done.state(), TaskState::Completed);
    assert_eq!(done.artifacts[0].text(), "slow");
}

#[tokio::test]
async fn streaming_sends_the_task_then_every_event_in_order() {
    let (echo, _dir) = Served::echo().await;
    let stream = echo
        .client
        .send_streaming_message(request(message("s", json!({"chunks": 3}))))
        .await
        .expect("stream");
    let events = collect(stream).await;
    assert_eq!(
        describe(&events),
        [
            "task:SUBMITTED#1",
            "status:WORKING#2",
            "status:WORKING#3",
            "artifact:chunks#4",
            "status:WORKING#5",
            "artifact:chunks#6",
            "status:WORKING#7",
            "artifact:chunks#8",
            "artifact:echo#9",
            "status:COMPLETED#10",
        ]
    );
    // The final snapshot holds the chunks joined, in order.
    let Some(switchyard::pb::a2a::stream_response::Payload::Task(first)) = &events[0].payload
    else {
        unreachable!()
    };
    let task = echo.client.get_task(&first.id, None).await.expect("get");
    let chunks = task
        .artifacts
        .iter()
        .find(|a| a.name == "chunks")
        .expect("chunks");
    assert_eq!(chunks.text(), "1/3\n2/3\n3/3");
}

#[tokio::test]
async fn input_required_then_continued_by_the_next_message() {
    let (echo, _dir) = Served::echo().await;
    let first = echo
        .client
        .send(message("start", json!({"ask": "What is your name?"})))
        .await
        .expect("send");
    assert_eq!(first.state(), TaskState::InputRequired);
    let question = first
        .status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .expect("question");
    assert_eq!(question.text(), "What is your name?");
    assert_eq!(question.role, Role::Agent as i32);

    let mut answer = Message::user_text("Ada");
    answer.task_id.clone_from(&first.id);
    let stream = echo
        .client
        .send_streaming_message(request(answer))
        .await
        .expect("continue");
    let events = collect(stream).await;
    let lines = describe(&events);
    assert_eq!(
        lines.first().map(String::as_str),
        Some("task:WORKING#4"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("status:COMPLETED#6"),
        "{lines:?}"
    );

    let done = echo.client.get_task(&first.id, None).await.expect("get");
    assert_eq!(done.state(), TaskState::Completed);
    assert_eq!(done.artifacts[0].text(), "Ada");
    let history: Vec<_> = done.history.iter().map(|m| (m.role, m.text())).collect();
    assert_eq!(
        history,
        [
            (Role::User as i32, "start".to_owned()),
            (Role::Agent as i32, "What is your name?".to_owned()),
            (Role::User as i32, "Ada".to_owned()),
        ]
    );
    let trimmed = echo.client.get_task(&first.id, Some(1)).await.expect("get");
    assert_eq!(trimmed.history.len(), 1);
    assert_eq!(trimmed.history[0].text(), "Ada");
    let none = echo.client.get_task(&first.id, Some(0)).await.expect("get");
    assert!(none.history.is_empty());
}

#[tokio::test]
async fn list_tasks_filters_pages_and_orders_newest_first() {
    let (echo, _dir) = Served::echo().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut m = Message::user_text(format!("t{i}"));
        m.context_id = if i % 2 == 0 { "even" } else { "odd" }.into();
        ids.push(echo.client.send(m).await.expect("send").id);
    }
    let mut m = message("waiting", json!({"ask": "?"}));
    m.context_id = "odd".into();
    let waiting = echo.client.send(m).await.expect("send");

    let all = echo
        .client
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("list");
    assert_eq!(all.total_size, 6);
    assert_eq!(all.page_size, 50);
    assert_eq!(all.next_page_token, "");
    let order: Vec<_> = all.tasks.iter().map(|t| t.id.clone()).collect();
    let mut expected = ids.clone();
    expected.push(waiting.id.clone());
    expected.reverse();
    assert_eq!(order, expected, "newest status first");
    assert!(
        all.tasks.iter().all(|t| t.artifacts.is_empty()),
        "artifacts omitted by default"
    );

    let even = echo
        .client
        .list_tasks(ListTasksRequest {
            context_id: "even".into(),
            include_artifacts: Some(true),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(even.total_size, 3);
    assert!(
        even.tasks
            .iter()
            .all(|t| t.context_id == "even" && t.artifacts.len() == 1)
    );

    let input = echo
        .client
        .list_tasks(ListTasksRequest {
            status: TaskState::InputRequired as i32,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(input.tasks.len(), 1);
    assert_eq!(input.tasks[0].id, waiting.id);

    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = echo
            .client
            .list_tasks(ListTasksRequest {
                page_size: Some(2),
                page_token: token.clone(),
                history_length: Some(0),
                ..Default::default()
            })
            .await
            .expect("page");
        assert_eq!(page.total_size, 6);
        assert!(page.tasks.iter().all(|t| t.history.is_empty()));
        pages.extend(page.tasks.iter().map(|t| t.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, order, "paging visits every task once, in order");

    let after = echo
        .client
        .list_tasks(ListTasksRequest {
            status_timestamp_after: waiting.status.as_ref().and_then(|s| s.timestamp),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        after.total_size, 0,
        "nothing changed after the newest status"
    );
}

#[tokio::test]
async fn cancel_task_cancels_and_a_second_cancel_is_refused() {
    let (echo, _dir) = Served::echo().await;
    let mut req = request(message("long", json!({"delay_ms": 10_000})));
    req.configuration = Some(SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    let Some(send_message_response::Payload::Task(task)) =
        echo.client.send_message(req).await.expect("send").payload
    else {
        panic!("task")
    };
    let canceled = echo.client.cancel_task(&task.id).await.expect("cancel");
    assert_eq!(canceled.state(), TaskState::Canceled);
    let again = status_of(echo.client.cancel_task(&task.id).await);
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        switchyard_e2e::reason(&again).as_deref(),
        Some("TASK_NOT_CANCELABLE")
    );
    let got = echo.client.get_task(&task.id, None).await.expect("get");
    assert_eq!(got.state(), TaskState::Canceled);
    assert!(
        got.artifacts.is_empty(),
        "the canceled agent published nothing"
    );
}

#[tokio::test]
async fn concurrent_subscribers_receive_identical_ordered_events() {
    let (echo, _dir) = Served::echo().await;
    let mut req = request(message(
        "fan",
        json!({"delay_ms": 300, "chunks": 20, "chunk_delay_ms": 5}),
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
    let (a, b) = tokio::join!(
        echo.client.subscribe(&task.id, None),
        echo.client.subscribe(&task.id, None)
    );
    let (a, b) = tokio::join!(collect(a.expect("a")), collect(b.expect("b")));
    // Each starts with a snapshot (at the sequence number committed when it subscribed); from
    // the later snapshot on, both saw every event, identically.
    let seq = |e: &switchyard::pb::a2a::StreamResponse| sequence_of(e).expect("seq");
    assert!(describe(&a[..1])[0].starts_with("task:") && describe(&b[..1])[0].starts_with("task:"));
    let start = seq(&a[0]).max(seq(&b[0]));
    let tail = |v: &[switchyard::pb::a2a::StreamResponse]| {
        v[1..]
            .iter()
            .filter(|e| seq(e) > start)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (ta, tb) = (tail(&a), tail(&b));
    assert_eq!(
        ta, tb,
        "both subscribers saw the same events in the same order"
    );
    let seqs: Vec<u64> = ta.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (start + 1..=44).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    assert!(
        start <= 2,
        "both subscribed during the agent's initial delay"
    );
    assert_eq!(
        describe(&ta).last().map(String::as_str),
        Some("status:COMPLETED#44")
    );
}

#[tokio::test]
async fn subscribe_to_a_terminal_task_is_unsupported() {
    let (echo, _dir) = Served::echo().await;
    let task = echo.client.send_text("done").await.expect("send");
    let err = echo
        .client
        .subscribe(&task.id, None)
        .await
        .expect_err("terminal");
    assert_eq!(err.a2a_kind(), Some(A2aErrorKind::UnsupportedOperation));
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn subscribe_to_a_waiting_task_stays_open_until_it_is_terminal() {
    let (echo, _dir) = Served::echo().await;
    // INPUT_REQUIRED and AUTH_REQUIRED both interrupt a task; a subscriber follows it through
    // the continuation to the terminal state (A2A v1.0.1 §3.1.6).
    for (key, waiting) in [("ask", "INPUT_REQUIRED"), ("auth", "AUTH_REQUIRED")] {
        let task = echo
            .client
            .send(message("q", json!({key: "?"})))
            .await
            .expect("send");
        assert_eq!(short(task.state()), waiting);
        let mut sub = echo.client.subscribe(&task.id, None).await.expect("sub");
        let snapshot = sub.next().await.expect("snapshot").expect("event");
        assert_eq!(describe_one(&snapshot), format!("task:{waiting}#3"));
        let mut answer = Message::user_text("continued");
        answer.task_id.clone_from(&task.id);
        let done = echo.client.send(answer).await.expect("continue");
        assert_eq!(done.state(), TaskState::Completed);
        let rest = collect(sub).await;
        assert_eq!(
            describe(&rest),
            ["status:WORKING#4", "artifact:echo#5", "status:COMPLETED#6"],
            "{key}: the continuation and the end, then the stream closes"
        );
    }
}

#[tokio::test]
async fn extended_card_is_not_configured_for_echo() {
    let (echo, _dir) = Served::echo().await;
    let err = echo
        .client
        .a2a()
        .get_extended_agent_card(GetExtendedAgentCardRequest::default())
        .await
        .expect_err("not configured");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        switchyard_e2e::reason(&err).as_deref(),
        Some("EXTENDED_AGENT_CARD_NOT_CONFIGURED")
    );
}

#[tokio::test]
async fn protocol_version_is_checked_when_sent() {
    let (echo, _dir) = Served::echo().await;
    let mut a2a = echo.client.a2a();
    for (version, ok) in [("1.0", true), ("1.3", true), ("2.0", false), ("0.3", false)] {
        let mut req = tonic::Request::new(request(Message::user_text("v")));
        req.metadata_mut()
            .insert("a2a-version", version.parse().expect("ascii"));
        let r = a2a.send_message(req).await;
        match (ok, r) {
            (true, Ok(_)) => {}
            (false, Err(s)) => {
                assert_eq!(s.code(), tonic::Code::FailedPrecondition);
                assert_eq!(
                    switchyard_e2e::reason(&s).as_deref(),
                    Some("VERSION_NOT_SUPPORTED")
                );
            }
            (ok, r) => panic!("version {version}: expected ok={ok}, got {r:?}"),
        }
    }
    let _ = short(TaskState::Completed);
}
