//! Message-only replies (A2A v1.0.1 §3.1.1–3.1.2): a Rust agent answers with a `Message`
//! instead of a task ([`switchyard::Agent::reply`]; echo's `reply=message`), on every front:
//! `A2AService`, every RPC kind of `AgentService`, and the gateway's JSON-RPC, REST, SSE and
//! WebSocket. The a2a-sdk clients are covered by `python_sdk` and `gateway_python`.

use futures::{SinkExt as _, StreamExt as _, stream};
use reqwest::header;
use serde_json::{Value, json};
use switchyard::{
    Agent, AgentError, MessageContext, TaskContext, TaskEvents,
    error::A2aErrorKind,
    pb::{
        a2a::{AgentCard, Message, Role, send_message_response, stream_response},
        agent::{
            ConverseRequest, SendMessagePartsRequest, converse_request, converse_response,
            send_message_parts_request::Frame,
        },
    },
};
use switchyard_e2e::{Served, collect, describe, message, request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite;

use crate::gateway::{Gw, PATIENCE, json_of, kind, msg, sse_all};

/// echo's metadata switch for a message reply.
fn direct(text: &str) -> Message {
    message(text, json!({"reply": "message"}))
}

/// Asserts `m` is echo's reply to a message with `text`: an agent message, no task.
fn assert_reply(m: &Message, text: &str) {
    assert_eq!(m.role, Role::Agent as i32);
    assert_eq!(m.text(), text);
    assert!(!m.message_id.is_empty() && !m.context_id.is_empty());
    assert!(m.task_id.is_empty(), "no task: {m:?}");
}

async fn task_count(echo: &Served) -> i32 {
    let list = echo
        .client
        .list_tasks(Default::default())
        .await
        .expect("list");
    list.total_size
}

#[tokio::test]
async fn a2a_service_answers_with_a_message_unary_and_streaming() {
    let (echo, _dir) = Served::echo().await;
    let mut m = direct("just a word");
    m.context_id = "ctx-kept".into();
    let resp = echo.client.send_message(request(m)).await.expect("send");
    let Some(send_message_response::Payload::Message(reply)) = resp.payload else {
        panic!("a message reply, got {resp:?}")
    };
    assert_reply(&reply, "just a word");
    assert_eq!(reply.context_id, "ctx-kept");

    let events = collect(
        echo.client
            .send_streaming_message(request(direct("streamed word")))
            .await
            .expect("stream"),
    )
    .await;
    assert_eq!(
        describe(&events),
        ["message#?"],
        "one message event, then the end"
    );
    let Some(stream_response::Payload::Message(reply)) = &events[0].payload else {
        unreachable!()
    };
    assert_reply(reply, "streamed word");
    assert_eq!(task_count(&echo).await, 0, "a message reply stores no task");
}

#[tokio::test]
async fn agent_service_answers_with_a_message_on_every_rpc_kind() {
    let (echo, _dir) = Served::echo().await;
    let mut agent = echo.client.agent();
    let resp = agent
        .send_message(request(direct("unary")))
        .await
        .expect("unary")
        .into_inner();
    let Some(send_message_response::Payload::Message(reply)) = resp.payload else {
        panic!("a message reply")
    };
    assert_reply(&reply, "unary");

    let events = collect(
        agent
            .send_streaming_message(request(direct("server stream")))
            .await
            .expect("stream")
            .into_inner(),
    )
    .await;
    assert_eq!(describe(&events), ["message#?"]);

    let frames = vec![
        SendMessagePartsRequest {
            frame: Some(Frame::Header(request(direct("parts")))),
        },
        SendMessagePartsRequest {
            frame: Some(Frame::Part(switchyard::pb::a2a::Part::text("more"))),
        },
    ];
    let resp = echo
        .client
        .send_message_parts(stream::iter(frames))
        .await
        .expect("parts");
    let Some(send_message_response::Payload::Message(reply)) = resp.payload else {
        panic!("a message reply")
    };
    assert_reply(&reply, "parts\nmore");

    // Converse: a direct reply and a task in one session, each answered as such.
    let (tx, rx) = mpsc::channel(4);
    let mut frames = echo
        .client
        .converse(ReceiverStream::new(rx))
        .await
        .expect("session");
    let send = |m: Message| ConverseRequest {
        request: Some(converse_request::Request::Send(request(m))),
    };
    let (asked, tasked) = (direct("in session"), Message::user_text("as a task"));
    let (asked_id, tasked_id) = (asked.message_id.clone(), tasked.message_id.clone());
    tx.send(send(asked)).await.expect("send");
    let first = frames.message().await.expect("frame").expect("open");
    assert_eq!(first.in_reply_to, asked_id);
    let Some(converse_response::Payload::Event(e)) = &first.payload else {
        panic!("an event frame: {first:?}")
    };
    let Some(stream_response::Payload::Message(reply)) = &e.payload else {
        panic!("a message event: {e:?}")
    };
    assert_reply(reply, "in session");
    tx.send(send(tasked)).await.expect("send");
    drop(tx);
    let mut rest = Vec::new();
    while let Some(f) = frames.message().await.expect("frame") {
        rest.push(f);
    }
    assert!(rest.iter().all(|f| f.in_reply_to == tasked_id), "{rest:?}");
    let Some(converse_response::Payload::Event(e)) = &rest[0].payload else {
        panic!("an event frame")
    };
    let Some(stream_response::Payload::Task(t)) = &e.payload else {
        panic!("the second message makes a task")
    };
    assert_eq!(
        t.context_id, reply.context_id,
        "one context for the session"
    );
    assert_eq!(task_count(&echo).await, 1, "only the task is stored");
}

#[tokio::test]
async fn the_gateway_carries_a_message_reply_on_every_front() {
    let (gw, echo, _dir) = Gw::echo().await;
    let check = |m: &Value, text: &str| {
        assert_eq!(m["role"], "ROLE_AGENT", "{m}");
        assert_eq!(m["parts"][0]["text"], text, "{m}");
        assert!(m.get("taskId").is_none(), "no task: {m}");
    };
    let meta = json!({"reply": "message"});

    // JSON-RPC: unary, then SSE.
    let r = gw
        .rpc(
            "echo",
            "SendMessage",
            json!({"message": msg("rpc", meta.clone())}),
        )
        .await;
    check(&r["result"]["message"], "rpc");
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "SendStreamingMessage",
        "params": {"message": msg("rpc-sse", meta.clone())}});
    let events = sse_all(
        gw.post_json("/agents/echo", &body)
            .send()
            .await
            .expect("sse"),
    )
    .await;
    assert_eq!(events.len(), 1, "exactly one event: {events:?}");
    assert_eq!(events[0].data["id"], 5);
    assert_eq!(kind(&events[0].data["result"]), "message");
    check(&events[0].data["result"]["message"], "rpc-sse");

    // REST: unary, then SSE.
    let r = gw
        .post_json(
            "/agents/echo/message:send",
            &json!({"message": msg("rest", meta.clone())}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    check(&json_of(r).await["message"], "rest");
    let r = gw
        .post_json(
            "/agents/echo/message:stream",
            &json!({"message": msg("rest-sse", meta.clone())}),
        )
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .expect("stream");
    let events = sse_all(r).await;
    assert_eq!(events.len(), 1, "exactly one event: {events:?}");
    assert!(events[0].id.is_empty(), "a message has no sequence number");
    check(&events[0].data["message"], "rest-sse");

    // WebSocket (Converse).
    let url = format!(
        "{}/agents/echo/ws?A2A-Version=1.0",
        gw.url.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let m = msg("ws", meta.clone());
    let id = m["messageId"].clone();
    ws.send(tungstenite::Message::text(
        json!({"send": {"message": m}}).to_string(),
    ))
    .await
    .expect("send");
    let frame = loop {
        let f = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let tungstenite::Message::Text(t) = f {
            break serde_json::from_str::<Value>(t.as_str()).expect("json");
        }
    };
    assert_eq!(frame["inReplyTo"], id, "{frame}");
    check(&frame["event"]["message"], "ws");
    ws.close(None).await.expect("close");

    assert_eq!(task_count(&echo).await, 0, "no front stored a task");
    gw.stop().await;
}

/// Replies as told by the message text: `empty` (no parts) or `panic`.
struct Faulty;

#[tonic::async_trait]
impl Agent for Faulty {
    fn card(&self) -> AgentCard {
        switchyard::card::builder("faulty", "Replies badly").build()
    }

    async fn reply(&self, ctx: &MessageContext) -> Option<Message> {
        match ctx.text().as_str() {
            "empty" => Some(ctx.agent_message(Vec::new())),
            "panic" => panic!("faulty was asked to panic"),
            _ => None,
        }
    }

    async fn execute(&self, _ctx: TaskContext, _events: TaskEvents) -> Result<(), AgentError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_faulty_reply_fails_the_call_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Served::start_in(Faulty, dir.path(), |_| {}).await;
    let err = agent.client.send_text("empty").await.expect_err("no parts");
    assert_eq!(
        err.a2a_kind(),
        Some(A2aErrorKind::InvalidAgentResponse),
        "{err}"
    );
    let err = agent.client.send_text("panic").await.expect_err("panic");
    assert_eq!(err.code(), tonic::Code::Internal, "{err}");
    let task = agent.client.send_text("work").await.expect("a task");
    assert_eq!(task.state(), switchyard::pb::a2a::TaskState::Completed);
    assert_eq!(task_count(&agent).await, 1);
    agent.stop().await;
}
