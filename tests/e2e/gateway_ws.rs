//! WebSocket sessions through the gateway (`GET /agents/{agent}/ws` → `AgentService/Converse`).

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchyard_e2e::assert_utc_timestamps;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{
        self, Message,
        protocol::{
            CloseFrame,
            frame::{
                Frame,
                coding::{CloseCode, Data, OpCode},
            },
        },
    },
};

use crate::gateway::{Gw, PATIENCE, agent, dead_addr, msg};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn connect(gw: &Gw, agent: &str) -> Ws {
    let url = format!(
        "{}/agents/{agent}/ws?A2A-Version=1.0",
        gw.url.replacen("http", "ws", 1)
    );
    connect_async(url).await.expect("upgrade").0
}

pub(crate) async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

/// The next JSON frame (pings are skipped); asserts its timestamps are UTC with `Z`.
pub(crate) async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        match m {
            Message::Text(t) => {
                let frame = serde_json::from_str(t.as_str()).expect("json");
                assert_utc_timestamps(&frame);
                return frame;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns its code and reason.
pub(crate) async fn close_of(ws: &mut Ws) -> (u16, String) {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("a close frame before the end")
            .expect("frame");
        if let Message::Close(frame) = m {
            let f = frame.expect("a close code");
            return (u16::from(f.code), f.reason.to_string());
        }
    }
}

fn state_of(frame: &Value) -> Option<&str> {
    let e = &frame["event"];
    e["statusUpdate"]["status"]["state"]
        .as_str()
        .or_else(|| e["task"]["status"]["state"].as_str())
}

#[tokio::test]
async fn a_session_sends_several_messages_and_cancels_one() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let mut ws = connect(&gw, "echo").await;
    let with_id = |mut m: Value, id: &str| {
        m["messageId"] = json!(id);
        json!({"send": {"message": m}})
    };
    send(&mut ws, with_id(msg("one", Value::Null), "m1")).await;
    send(&mut ws, with_id(msg("two", json!({"chunks": 2})), "m2")).await;
    send(
        &mut ws,
        with_id(msg("slow", json!({"delay_ms": 20_000})), "m3"),
    )
    .await;
    let mut done = Vec::new();
    let mut slow_task = None;
    while done.len() < 2 || slow_task.is_none() {
        let f = next(&mut ws).await;
        let reply = f["inReplyTo"].as_str().expect("inReplyTo").to_owned();
        if state_of(&f) == Some("TASK_STATE_COMPLETED") {
            done.push(reply.clone());
        }
        if reply == "m3" && slow_task.is_none() {
            slow_task = f["event"]["task"]["id"].as_str().map(str::to_owned);
        }
    }
    done.sort();
    assert_eq!(done, ["m1", "m2"]);
    let slow = slow_task.expect("the slow task's snapshot");
    // A failed request is an error frame; the session goes on.
    send(&mut ws, json!({"cancel": {"id": "no-such-task"}})).await;
    send(&mut ws, json!({"cancel": {"id": slow}})).await;
    let mut saw_error = false;
    loop {
        let f = next(&mut ws).await;
        if f["inReplyTo"] == "no-such-task" {
            assert_eq!(
                (f["error"]["code"].clone(), f["error"]["reason"].clone()),
                (json!(5), json!("TASK_NOT_FOUND")),
                "{f}"
            );
            saw_error = true;
        }
        if f["inReplyTo"] == "m3" && state_of(&f) == Some("TASK_STATE_CANCELED") {
            break;
        }
    }
    assert!(saw_error);
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    ws.close(Some(bye)).await.expect("close");
    let (code, _) = close_of(&mut ws).await;
    assert_eq!(code, 1000);
    gw.stop().await;
}

#[tokio::test]
async fn bad_frames_close_the_session_with_specific_codes() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| c.ws_max_message_bytes = 1024).await;
    let mut ws = connect(&gw, "echo").await;
    ws.send(Message::text("{not json")).await.expect("send");
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("ConverseRequest"), "{reason}");

    let mut ws = connect(&gw, "echo").await;
    ws.send(Message::text(r#"{"send": {"message": {"role": []}}}"#))
        .await
        .expect("send");
    assert_eq!(close_of(&mut ws).await.0, 1007, "wrong types");

    let mut ws = connect(&gw, "echo").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.expect("send");
    assert_eq!(close_of(&mut ws).await.0, 1003);

    let mut ws = connect(&gw, "echo").await;
    ws.send(Message::text("x".repeat(4096)))
        .await
        .expect("send");
    assert_eq!(close_of(&mut ws).await.0, 1009);

    let mut ws = connect(&gw, "echo").await;
    let invalid = Frame::message(vec![0xff, 0xfe, 0x22], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.expect("send");
    assert_eq!(close_of(&mut ws).await.0, 1007, "invalid UTF-8");
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| c.ws_ping_interval = Duration::from_millis(50)).await;
    let mut ws = connect(&gw, "echo").await;
    // Not reading means not answering pings: after two intervals the gateway gives up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 4004, "{reason}");
    gw.stop().await;
}

#[tokio::test]
async fn unknown_and_down_agents_are_refused_before_the_upgrade() {
    let (echo, _dir) = switchyard_e2e::Served::echo().await;
    let gw = Gw::start(
        vec![agent("echo", echo.addr), agent("down", dead_addr().await)],
        |_| {},
    )
    .await;
    for (name, status) in [("nope", 404), ("down", 503)] {
        let url = format!(
            "{}/agents/{name}/ws?A2A-Version=1.0",
            gw.url.replacen("http", "ws", 1)
        );
        match connect_async(url).await {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), status, "{name}"),
            other => panic!("{name}: expected an HTTP error, got {other:?}"),
        }
    }
    let r = gw
        .http
        .get(format!("{}/agents/echo/ws", gw.url))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status().as_u16(),
        400,
        "a plain GET is told to use WebSocket"
    );
    gw.stop().await;
}

#[tokio::test]
async fn more_sessions_than_one_agent_connection_carries_all_work() {
    // An HTTP/2 connection to an agent carries at most 200 concurrent streams (hyper's
    // default); the gateway spreads long-lived calls over more connections.
    let (gw, _echo, _dir) = Gw::echo().await;
    let mut sessions = Vec::new();
    for _ in 0..250 {
        sessions.push(connect(&gw, "echo").await);
    }
    for i in [0, 249] {
        let mut m = msg("late", Value::Null);
        m["messageId"] = json!(format!("s{i}"));
        send(&mut sessions[i], json!({"send": {"message": m}})).await;
        let f = next(&mut sessions[i]).await;
        assert_eq!(f["inReplyTo"], format!("s{i}"), "{f}");
    }
    drop(sessions);
    gw.stop().await;
}

/// Opens a session to echo as a browser page of `origin` would (`None`: a non-browser
/// client); `Err(status)` when the upgrade is refused.
async fn connect_from(gw: &Gw, origin: Option<&str>) -> Result<Ws, u16> {
    use tungstenite::client::IntoClientRequest as _;
    let url = format!(
        "{}/agents/echo/ws?A2A-Version=1.0",
        gw.url.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().expect("request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("ascii"));
    }
    match connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{origin:?}: {e}"),
    }
}

/// Runs one task over the session and asserts it completes.
async fn completes_a_task(mut ws: Ws) {
    let mut m = msg("origin", Value::Null);
    m["messageId"] = json!("o1");
    send(&mut ws, json!({"send": {"message": m}})).await;
    while state_of(&next(&mut ws).await) != Some("TASK_STATE_COMPLETED") {}
}

#[tokio::test]
async fn browser_pages_of_foreign_origins_are_refused_before_the_upgrade() {
    // Configured origins: those, same-origin pages and non-browsers; nothing else.
    let (gw, _echo, _dir) =
        Gw::echo_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    for evil in ["http://evil.example", "http://localhost:5173"] {
        assert_eq!(
            connect_from(&gw, Some(evil)).await.err(),
            Some(403),
            "{evil}"
        );
    }
    let r = gw
        .http
        .get(format!("{}/agents/echo/ws?A2A-Version=1.0", gw.url))
        .header("origin", "http://evil.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    let v = crate::gateway::json_of(r).await;
    assert_eq!(
        v["error"]["details"][0]["reason"], "ORIGIN_NOT_ALLOWED",
        "{v}"
    );
    let same = gw.url.clone();
    for ok in [Some("https://app.example"), Some(same.as_str()), None] {
        let ws = connect_from(&gw, ok)
            .await
            .unwrap_or_else(|s| panic!("{ok:?}: {s}"));
        completes_a_task(ws).await;
    }
    gw.stop().await;

    // The default (no cors_origins): loopback pages too, still not the internet.
    let (gw, _echo, _dir) = Gw::echo().await;
    assert_eq!(
        connect_from(&gw, Some("http://evil.example")).await.err(),
        Some(403)
    );
    let ws = connect_from(&gw, Some("http://localhost:5173"))
        .await
        .expect("a loopback page");
    completes_a_task(ws).await;
    gw.stop().await;
}
