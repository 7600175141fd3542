//! gRPC-Web through the gateway's port, spoken frame by frame over HTTP/1.1 with a plain HTTP
//! client (what a browser's fetch does): unary and server streaming in binary and text
//! (base64) form, CORS, and bad input — each answered with a gRPC status, never a hang.

use base64::Engine as _;
use prost::Message as _;
use reqwest::{StatusCode, header};
use serde_json::json;
use switchyard::pb::a2a::{
    Message, SendMessageRequest, SendMessageResponse, StreamResponse, TaskState,
    send_message_response, stream_response,
};
use switchyard_e2e::{message, request};

use crate::gateway::{Gw, PATIENCE};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One length-prefixed message.
fn framed(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// What a gRPC-Web answer carried: its messages and its status (from the trailer frame, or the
/// headers of a trailers-only answer).
#[derive(Debug)]
struct Answer {
    messages: Vec<Vec<u8>>,
    status: Option<i32>,
    message: String,
}

/// Decodes base64 made of separately padded pieces (tonic-web encodes frame by frame).
fn unbase64(text: &[u8]) -> Vec<u8> {
    text.chunks(4)
        .flat_map(|quad| B64.decode(quad).expect("base64"))
        .collect()
}

/// Reads a gRPC-Web answer to its end.
async fn answer(r: reqwest::Response) -> Answer {
    assert_eq!(r.status(), StatusCode::OK, "gRPC-Web answers are HTTP 200");
    let text = r.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("application/grpc-web-text");
    let header_status = r
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().expect("ascii").parse().expect("a code"));
    let header_message = r
        .headers()
        .get("grpc-message")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let body = tokio::time::timeout(PATIENCE, r.bytes())
        .await
        .expect("the answer ends in time")
        .expect("body");
    let mut body = if text { unbase64(&body) } else { body.to_vec() };
    let mut out = Answer {
        messages: Vec::new(),
        status: header_status,
        message: header_message,
    };
    while !body.is_empty() {
        let flags = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")) as usize;
        let payload = body[5..5 + len].to_vec();
        body.drain(..5 + len);
        if flags & 0x80 != 0 {
            for line in String::from_utf8(payload).expect("trailers").split("\r\n") {
                if let Some((k, v)) = line.split_once(':') {
                    match k.trim() {
                        "grpc-status" => out.status = Some(v.trim().parse().expect("a code")),
                        "grpc-message" => out.message = v.trim().to_owned(),
                        _ => {}
                    }
                }
            }
        } else {
            out.messages.push(payload);
        }
    }
    out
}

/// POSTs a gRPC-Web call of `path` with `body` (already framed; base64 for the text types).
async fn call(
    gw: &Gw,
    path: &str,
    content_type: &str,
    agent: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut r = gw
        .http
        .post(format!("{}{path}", gw.url))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, content_type)
        .header("x-grpc-web", "1")
        .header("a2a-version", "1.0")
        .body(body);
    if let Some(a) = agent {
        r = r.header("x-switchyard-agent", a);
    }
    let r = tokio::time::timeout(PATIENCE, r.send())
        .await
        .expect("answered in time")
        .expect("send");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    answer(r).await
}

const SEND: &str = "/lf.a2a.v1.A2AService/SendMessage";
const STREAM: &str = "/agents/echo/switchyard.v1.AgentService/SendStreamingMessage";

fn encoded(m: &SendMessageRequest) -> Vec<u8> {
    framed(0, &m.encode_to_vec())
}

#[tokio::test]
async fn unary_and_server_streaming_in_binary_and_text() {
    let (gw, _echo, _dir) = Gw::echo().await;
    for (content_type, text) in [
        ("application/grpc-web+proto", false),
        ("application/grpc-web", false),
        ("application/grpc-web-text", true),
    ] {
        let wrap = |b: Vec<u8>| if text { B64.encode(b).into_bytes() } else { b };
        let hello = encoded(&request(Message::user_text("web")));
        let a = call(&gw, SEND, content_type, Some("echo"), wrap(hello)).await;
        assert_eq!(a.status, Some(0), "{content_type}: {a:?}");
        assert_eq!(a.messages.len(), 1);
        let reply = SendMessageResponse::decode(a.messages[0].as_slice()).expect("reply");
        let Some(send_message_response::Payload::Task(t)) = reply.payload else {
            panic!("a task")
        };
        assert_eq!(t.state(), TaskState::Completed);
        assert_eq!(t.artifacts[0].parts[0].as_text(), Some("web"));

        // The same over HTTP/2 (a browser on an h2 connection).
        let h2 = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(PATIENCE)
            .build()
            .expect("client");
        let r = h2
            .post(format!("{}{SEND}", gw.url))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, content_type)
            .header("x-switchyard-agent", "echo")
            .header("a2a-version", "1.0")
            .body(wrap(encoded(&request(Message::user_text("h2")))))
            .send()
            .await
            .expect("send");
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        let a = answer(r).await;
        assert_eq!(
            (a.status, a.messages.len()),
            (Some(0), 1),
            "h2 {content_type}: {a:?}"
        );

        let chunked = encoded(&request(message("s", json!({"chunks": 3}))));
        let a = call(&gw, STREAM, content_type, None, wrap(chunked)).await;
        assert_eq!(a.status, Some(0), "{content_type}: {a:?}");
        let events: Vec<StreamResponse> = a
            .messages
            .iter()
            .map(|m| StreamResponse::decode(m.as_slice()).expect("event"))
            .collect();
        assert!(
            matches!(events[0].payload, Some(stream_response::Payload::Task(_))),
            "{events:?}"
        );
        let artifacts = events
            .iter()
            .filter(|e| matches!(e.payload, Some(stream_response::Payload::ArtifactUpdate(_))))
            .count();
        assert!(artifacts >= 3, "{content_type}: {events:?}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_status_never_a_hang() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| c.max_body_bytes = 1024).await;
    let web = "application/grpc-web+proto";
    let hello = encoded(&request(Message::user_text("hello")));

    // A length prefix cut short.
    let a = call(&gw, SEND, web, Some("echo"), vec![0, 0, 0]).await;
    assert_eq!(a.status, Some(13), "{a:?}");
    assert!(a.message.contains("prefix"), "{a:?}");
    // A message shorter than its prefix says.
    let mut cut = hello.clone();
    cut.truncate(cut.len() - 2);
    let a = call(&gw, SEND, web, Some("echo"), cut).await;
    assert_eq!(a.status, Some(13), "{a:?}");
    // The compressed flag without grpc-encoding.
    let mut compressed = hello.clone();
    compressed[0] = 1;
    let a = call(&gw, SEND, web, Some("echo"), compressed).await;
    assert_eq!(a.status, Some(13), "{a:?}");
    assert!(a.message.contains("grpc-encoding"), "{a:?}");
    // Text that is not base64.
    let a = call(
        &gw,
        SEND,
        "application/grpc-web-text",
        Some("echo"),
        b"!!!!####".to_vec(),
    )
    .await;
    assert_eq!(a.status, Some(13), "{a:?}");
    // An unknown agent, by header and by path; no agent at all.
    let a = call(&gw, SEND, web, Some("nobody"), hello.clone()).await;
    assert_eq!(a.status, Some(5), "{a:?}");
    let a = call(
        &gw,
        "/agents/nobody/lf.a2a.v1.A2AService/SendMessage",
        web,
        None,
        hello.clone(),
    )
    .await;
    assert_eq!(a.status, Some(5), "{a:?}");
    let a = call(&gw, SEND, web, None, hello.clone()).await;
    assert_eq!(a.status, Some(3), "{a:?}");
    assert!(a.message.contains("x-switchyard-agent"), "{a:?}");
    // A message over the limit.
    let big = encoded(&request(Message::user_text("x".repeat(2000))));
    let a = call(&gw, SEND, web, Some("echo"), big).await;
    assert_eq!(a.status, Some(8), "{a:?}");
    // A service the gateway does not forward.
    let a = call(&gw, "/other.Service/Call", web, Some("echo"), hello.clone()).await;
    assert_eq!(a.status, Some(12), "{a:?}");
    // Native gRPC over HTTP/1.1 is refused with a status, too.
    let r = gw
        .http
        .post(format!("{}{SEND}", gw.url))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header("x-switchyard-agent", "echo")
        .body(hello.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["grpc-status"], "12");
    // A body that stops arriving halfway: the deadline ends the call.
    let mut half = hello.clone();
    half.truncate(hello.len() / 2);
    let stalled = futures::StreamExt::chain(
        futures::stream::iter([Ok::<_, std::io::Error>(half)]),
        futures::stream::pending(),
    );
    let started = std::time::Instant::now();
    let r = gw
        .http
        .post(format!("{}{SEND}", gw.url))
        .header(header::CONTENT_TYPE, web)
        .header("x-switchyard-agent", "echo")
        .header("a2a-version", "1.0")
        .header("grpc-timeout", "1S")
        .body(reqwest::Body::wrap_stream(stalled))
        .send()
        .await
        .expect("send");
    let a = answer(r).await;
    assert_eq!(a.status, Some(4), "{a:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // And the gateway still answers.
    let a = call(&gw, SEND, web, Some("echo"), hello).await;
    assert_eq!(a.status, Some(0), "{a:?}");
    gw.stop().await;
}

#[tokio::test]
async fn browsers_get_cors_by_the_origin_policy() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, format!("{}{SEND}", gw.url))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-grpc-web,x-user-agent,x-switchyard-agent,a2a-version",
            )
            .send()
    };
    let r = preflight("http://localhost:5173").await.expect("preflight");
    assert!(r.status().is_success(), "{r:?}");
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:5173"
    );
    let allowed = r.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .expect("ascii");
    assert!(allowed.contains("x-switchyard-agent"), "{allowed}");
    let r = preflight("http://evil.example").await.expect("preflight");
    assert!(
        !r.headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "{r:?}"
    );
    let r = gw
        .http
        .post(format!("{}{SEND}", gw.url))
        .header(header::ORIGIN, "http://127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-switchyard-agent", "echo")
        .header("a2a-version", "1.0")
        .body(encoded(&request(Message::user_text("cors"))))
        .send()
        .await
        .expect("call");
    assert_eq!(
        r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://127.0.0.1:3000"
    );
    let exposed = r.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{exposed}"
    );
    assert_eq!(answer(r).await.status, Some(0));
    gw.stop().await;
}
