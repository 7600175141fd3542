//! WebSocket cases: protocol errors (1002), invalid payload data (1007), binary frames
//! (1003), oversize messages (1009), and per-request error frames.

use futures::{FutureExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchyard::limits::MAX_JSON_DEPTH;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_tungstenite::{connect_async, tungstenite::Message as WsMessage};

use super::{Check, Corpus, Ctx, nested, short};

/// Reads server frames from a raw socket until a close frame; returns its code.
async fn raw_close_code(s: &mut TcpStream) -> Result<u16, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Parse complete frames (servers do not mask).
        let mut at = 0;
        while buf.len() >= at + 2 {
            let (op, len7) = (buf[at] & 0x0f, usize::from(buf[at + 1] & 0x7f));
            let (len, head) = match len7 {
                126 if buf.len() >= at + 4 => (
                    usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
                    4,
                ),
                127 => return Err("a huge server frame".into()),
                126 => break,
                n => (n, 2),
            };
            if buf.len() < at + head + len {
                break;
            }
            if op == 0x8 {
                let p = &buf[at + head..at + head + len];
                return if p.len() >= 2 {
                    Ok(u16::from_be_bytes([p[0], p[1]]))
                } else {
                    Err("a close frame without a code".into())
                };
            }
            at += head + len;
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection ended without a close frame".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Opens a WebSocket session with a hand-made handshake, writes `frames` raw, expects close
/// `code`.
fn ws_raw(c: &Ctx, frames: Vec<u8>, code: u16) -> Check {
    let addr = c.gw_addr.clone();
    async move {
        let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
        let hello = format!(
            "GET /agents/echo/ws?A2A-Version=1.0 HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(hello.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
                return Err("no handshake answer".into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(format!("no upgrade: {}", String::from_utf8_lossy(&head)));
        }
        s.write_all(&frames).await.map_err(|e| e.to_string())?;
        let got = raw_close_code(&mut s).await?;
        if got == code { Ok(()) } else { Err(format!("expected close {code}, got {got}")) }
    }
    .boxed()
}

/// A client frame: `first` byte (FIN, RSV, opcode), masked with a zero key.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Sends one message with tokio-tungstenite; expects close `code`.
fn ws_message(c: &Ctx, m: WsMessage, code: u16) -> Check {
    let url = format!(
        "{}/agents/echo/ws?A2A-Version=1.0",
        c.gw.replacen("http", "ws", 1)
    );
    async move {
        use futures::SinkExt as _;
        let (mut ws, _) = connect_async(url).await.map_err(|e| e.to_string())?;
        ws.send(m).await.map_err(|e| e.to_string())?;
        while let Some(m) = ws.next().await {
            match m.map_err(|e| e.to_string())? {
                WsMessage::Close(Some(f)) => {
                    let got = u16::from(f.code);
                    return if got == code {
                        Ok(())
                    } else {
                        Err(format!("expected close {code}, got {got} ({})", f.reason))
                    };
                }
                WsMessage::Close(None) => return Err("a close frame without a code".into()),
                _ => {}
            }
        }
        Err("the session ended without a close frame".into())
    }
    .boxed()
}

/// Sends one frame; expects an `error` frame with gRPC `code`, and the session to go on.
fn ws_error_frame(c: &Ctx, frame_json: Value, code: i64) -> Check {
    let url = format!(
        "{}/agents/echo/ws?A2A-Version=1.0",
        c.gw.replacen("http", "ws", 1)
    );
    async move {
        use futures::SinkExt as _;
        let (mut ws, _) = connect_async(url).await.map_err(|e| e.to_string())?;
        ws.send(WsMessage::text(frame_json.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        while let Some(m) = ws.next().await {
            match m.map_err(|e| e.to_string())? {
                WsMessage::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                    return if v["error"]["code"] == json!(code) {
                        Ok(())
                    } else {
                        Err(format!("expected an error frame with code {code}: {v}"))
                    };
                }
                WsMessage::Close(f) => return Err(format!("closed instead: {f:?}")),
                _ => {}
            }
        }
        Err("the session ended".into())
    }
    .boxed()
}

pub(super) fn websocket_cases(c: &Ctx, k: &mut Corpus) {
    // Protocol errors (RFC 6455 §7.4.1: 1002).
    for (name, bytes) in [
        ("unmasked frame", vec![0x81, 0x02, b'{', b'}']),
        ("RSV1 without an extension", frame(0xC1, b"{}")),
        ("RSV3 set", frame(0x91, b"{}")),
        ("reserved opcode 0x3", frame(0x83, b"")),
        ("reserved opcode 0xB", frame(0x8B, b"")),
        ("fragmented ping", frame(0x09, b"")),
        ("ping over 125 bytes", frame(0x89, &[b'p'; 126])),
        ("continuation without a start", frame(0x80, b"{}")),
        (
            "a new message inside a fragmented one",
            [frame(0x01, b"{"), frame(0x81, b"}")].concat(),
        ),
        ("close with a one-byte payload", frame(0x88, b"x")),
        ("close with code 1005", frame(0x88, &1005u16.to_be_bytes())),
        ("close with code 999", frame(0x88, &999u16.to_be_bytes())),
    ] {
        k.add(format!("ws protocol: {name}"), ws_raw(c, bytes, 1002));
    }
    // Invalid payload data (1007).
    k.add(
        "ws text frame not UTF-8",
        ws_raw(c, frame(0x81, &[0xff, 0xfe, 0xfd]), 1007),
    );
    k.add(
        "ws fragmented text not UTF-8",
        ws_raw(
            c,
            [frame(0x01, &[0xe2, 0x82]), frame(0x80, &[0xff])].concat(),
            1007,
        ),
    );
    for text in [
        "{".to_owned(), "[]".into(), "5".into(), "null".into(), "{\"send\":5}".into(),
        "{\"cancel\":\"x\"}".into(), "{\"send\":{\"message\":{\"role\":17.5}}}".into(),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "taskId": "t".repeat(20_000), "parts": [{"text": "x"}]}}}).to_string(),
        json!({"cancel": {"id": "c".repeat(5_000)}}).to_string(),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}], "metadata": {"d": nested(60)}}}}).to_string(),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"data": nested(MAX_JSON_DEPTH + 1)}]}}}).to_string(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    ] {
        k.add(format!("ws invalid frame {}", short(&text).chars().take(60).collect::<String>()), ws_message(c, WsMessage::text(text), 1007));
    }
    k.add(
        "ws binary frame",
        ws_message(c, WsMessage::binary(vec![1u8, 2, 3]), 1003),
    );
    k.add(
        "ws message over the limit",
        ws_message(c, WsMessage::text("x".repeat(2 * 1024 * 1024)), 1009),
    );
    // Per-request errors answer with an error frame (INVALID_ARGUMENT 3, NOT_FOUND 5).
    for (i, f) in [
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}}),
        json!({"send": {"message": {"messageId": "", "role": "ROLE_USER", "parts": [{"text": "x"}]}}}),
        json!({"send": {"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "x"}]}}}),
        json!({"send": {}}),
        json!({}),
    ]
    .into_iter()
    .enumerate()
    {
        k.add(format!("ws error frame #{i}"), ws_error_frame(c, f, 3));
    }
    k.add(
        "ws cancel of an unknown task",
        ws_error_frame(c, json!({"cancel": {"id": "no-such"}}), 5),
    );
}
