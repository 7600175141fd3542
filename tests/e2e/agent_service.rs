//! `switchyard.v1.AgentService`: unary, server streaming, client streaming and bidi.

use std::time::Duration;

use futures::{StreamExt as _, stream};
use serde_json::json;
use switchyard::{
    pb::{
        a2a::{
            CancelTaskRequest, Message, Part, SendMessageRequest, TaskState, part,
            send_message_response, stream_response,
        },
        agent::{
            ConverseRequest, ConverseResponse, SendMessagePartsRequest, converse_request,
            converse_response, send_message_parts_request::Frame,
        },
    },
    task::SEQUENCE_EXTENSION_URI,
};
use switchyard_e2e::{Served, collect, describe, message, request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

#[tokio::test]
async fn unary_and_server_streaming() {
    let (echo, _dir) = Served::echo().await;
    let mut agent = echo.client.agent();
    let resp = agent
        .send_message(request(Message::user_text("one")))
        .await
        .expect("unary")
        .into_inner();
    let Some(send_message_response::Payload::Task(t)) = resp.payload else {
        panic!("task")
    };
    assert_eq!(t.state(), TaskState::Completed);
    assert_eq!(t.artifacts[0].text(), "one");

    let stream = agent
        .send_streaming_message(request(message("two", json!({"chunks": 2}))))
        .await
        .expect("stream")
        .into_inner();
    let events = collect(stream).await;
    assert_eq!(describe(&events).len(), 8);
    assert_eq!(describe(&events)[7], "status:COMPLETED#8");
}

#[tokio::test]
async fn agent_card_states_interfaces_and_capabilities() {
    let (echo, _dir) = Served::echo().await;
    let card = echo.client.agent_card().await.expect("card");
    assert_eq!(card.name, "echo");
    let grpc = &card.supported_interfaces[0];
    assert_eq!(grpc.protocol_binding, "GRPC");
    assert_eq!(grpc.url, echo.addr.to_string());
    assert_eq!(grpc.protocol_version, "1.0");
    let caps = card.capabilities.expect("capabilities");
    assert_eq!(caps.streaming, Some(true));
    assert_eq!(caps.push_notifications, Some(false));
    assert!(
        caps.extensions
            .iter()
            .any(|e| e.uri == SEQUENCE_EXTENSION_URI)
    );
    assert!(!card.skills.is_empty() && card.skills.iter().all(|s| !s.examples.is_empty()));
}

fn header(text: &str) -> SendMessagePartsRequest {
    SendMessagePartsRequest {
        frame: Some(Frame::Header(request(Message::user_text(text)))),
    }
}

fn frame(f: Frame) -> SendMessagePartsRequest {
    SendMessagePartsRequest { frame: Some(f) }
}

#[tokio::test]
async fn client_streaming_assembles_one_message_from_parts_and_chunks() {
    let (echo, _dir) = Served::echo().await;
    let frames = vec![
        header("caption"),
        frame(Frame::Part(Part::data(json!({"k": [1, 2]})))),
        frame(Frame::Part(Part::raw(
            b"abc".to_vec(),
            "application/octet-stream",
        ))),
        frame(Frame::RawChunk(b"def".to_vec())),
        frame(Frame::RawChunk(b"ghi".to_vec())),
    ];
    let resp = echo
        .client
        .send_message_parts(stream::iter(frames))
        .await
        .expect("parts");
    let Some(send_message_response::Payload::Task(t)) = resp.payload else {
        panic!("task")
    };
    assert_eq!(t.state(), TaskState::Completed);
    let parts = &t.artifacts[0].parts;
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].as_text(), Some("caption"));
    assert_eq!(
        parts[2].content,
        Some(part::Content::Raw(b"abcdefghi".to_vec()))
    );
    assert_eq!(parts[2].media_type, "application/octet-stream");
}

#[tokio::test]
async fn client_streaming_beyond_the_limit_is_resource_exhausted() {
    let (echo, _dir) = Served::echo_with(|c| c.max_parts_bytes = 256 * 1024).await;
    let chunk = vec![7u8; 64 * 1024];
    let mut frames = vec![
        header("big"),
        frame(Frame::Part(Part::raw(Vec::new(), "x/y"))),
    ];
    frames.extend((0..8).map(|_| frame(Frame::RawChunk(chunk.clone()))));
    let err = echo
        .client
        .send_message_parts(stream::iter(frames))
        .await
        .expect_err("too big");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.to_string().contains("262144 bytes"), "{err}");
    let list = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    assert_eq!(list.total_size, 0, "nothing reached the agent");
}

#[tokio::test]
async fn client_streaming_frames_out_of_order_are_invalid() {
    let (echo, _dir) = Served::echo().await;
    let cases = vec![
        (vec![frame(Frame::Part(Part::text("x")))], "frame[0]"),
        (vec![header("a"), header("b")], "frame[1]"),
        (
            vec![header("a"), frame(Frame::RawChunk(vec![1]))],
            "frame[1]",
        ),
        (vec![], "header"),
    ];
    for (frames, field) in cases {
        let err = echo
            .client
            .send_message_parts(stream::iter(frames))
            .await
            .expect_err("invalid");
        let s = err.status().expect("status");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(switchyard_e2e::bad_fields(s), [field]);
    }
}

fn send(m: Message) -> ConverseRequest {
    ConverseRequest {
        request: Some(converse_request::Request::Send(SendMessageRequest {
            message: Some(m),
            ..Default::default()
        })),
    }
}

/// Reads session frames until `pred` holds for the last one.
async fn read_until(
    rx: &mut tonic::Streaming<ConverseResponse>,
    seen: &mut Vec<ConverseResponse>,
    pred: impl Fn(&ConverseResponse) -> bool,
) {
    while let Some(f) = tokio::time::timeout(Duration::from_secs(10), rx.next())
        .await
        .expect("frame in time")
    {
        let f = f.expect("frame");
        let done = pred(&f);
        seen.push(f);
        if done {
            return;
        }
    }
    panic!("session ended early");
}

fn state_of(f: &ConverseResponse) -> Option<TaskState> {
    match &f.payload {
        Some(converse_response::Payload::Event(e)) => match &e.payload {
            Some(stream_response::Payload::StatusUpdate(u)) => u
                .status
                .as_ref()
                .and_then(|s| TaskState::try_from(s.state).ok()),
            Some(stream_response::Payload::Task(t)) => Some(t.state()),
            _ => None,
        },
        _ => None,
    }
}

fn task_id_of(f: &ConverseResponse) -> Option<String> {
    match &f.payload {
        Some(converse_response::Payload::Event(e)) => match &e.payload {
            Some(stream_response::Payload::Task(t)) => Some(t.id.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn converse_runs_a_live_session_with_messages_cancel_errors_and_half_close() {
    let (echo, _dir) = Served::echo().await;
    let (tx, rx) = mpsc::channel(8);
    let mut frames = echo
        .client
        .converse(ReceiverStream::new(rx))
        .await
        .expect("session");
    let mut seen = Vec::new();

    // 1. A quick message completes.
    let first = Message::user_text("hi");
    let first_id = first.message_id.clone();
    tx.send(send(first)).await.expect("send");
    read_until(&mut frames, &mut seen, |f| {
        state_of(f) == Some(TaskState::Completed)
    })
    .await;
    assert!(seen.iter().all(|f| f.in_reply_to == first_id));
    let context = match &seen[0].payload {
        Some(converse_response::Payload::Event(e)) => match &e.payload {
            Some(stream_response::Payload::Task(t)) => t.context_id.clone(),
            _ => panic!("task first"),
        },
        _ => panic!("event first"),
    };

    // 2. A slow message, canceled mid-way.
    let slow = message("slow", json!({"delay_ms": 10_000}));
    tx.send(send(slow)).await.expect("send");
    seen.clear();
    read_until(&mut frames, &mut seen, |f| task_id_of(f).is_some()).await;
    let slow_task = task_id_of(seen.last().expect("frame")).expect("task id");
    tx.send(ConverseRequest {
        request: Some(converse_request::Request::Cancel(CancelTaskRequest {
            id: slow_task.clone(),
            ..Default::default()
        })),
    })
    .await
    .expect("cancel");
    read_until(&mut frames, &mut seen, |f| {
        state_of(f) == Some(TaskState::Canceled)
    })
    .await;

    // 3. Errors answer the request and the session goes on.
    let mut other = Message::user_text("elsewhere");
    other.context_id = "not-this-session".into();
    let other_id = other.message_id.clone();
    tx.send(send(other)).await.expect("send");
    seen.clear();
    read_until(&mut frames, &mut seen, |f| {
        matches!(f.payload, Some(converse_response::Payload::Error(_)))
    })
    .await;
    let Some(converse_response::Payload::Error(e)) = &seen.last().expect("frame").payload else {
        unreachable!()
    };
    assert_eq!(seen.last().expect("frame").in_reply_to, other_id);
    assert_eq!(e.code, Code::InvalidArgument as i32);
    assert!(e.message.contains("not-this-session"));
    tx.send(ConverseRequest {
        request: Some(converse_request::Request::Cancel(CancelTaskRequest {
            id: "unknown".into(),
            ..Default::default()
        })),
    })
    .await
    .expect("cancel");
    seen.clear();
    read_until(&mut frames, &mut seen, |f| {
        matches!(f.payload, Some(converse_response::Payload::Error(_)))
    })
    .await;
    let Some(converse_response::Payload::Error(e)) = &seen.last().expect("frame").payload else {
        unreachable!()
    };
    assert_eq!(e.reason, "TASK_NOT_FOUND");

    // 4. Half-close with a task still running: its events still arrive, then the call ends OK.
    let tail = message("tail", json!({"chunks": 3, "chunk_delay_ms": 20}));
    tx.send(send(tail)).await.expect("send");
    drop(tx);
    let rest: Vec<ConverseResponse> = frames.map(|f| f.expect("clean end")).collect().await;
    assert_eq!(rest.last().and_then(state_of), Some(TaskState::Completed));
    let tasks = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    assert_eq!(tasks.total_size, 3);
    assert!(
        tasks.tasks.iter().all(|t| t.context_id == context),
        "one context per session"
    );
}
