//! Connection limits of the gateway and of agent ports, operations port included (issue 9,
//! item 5): silent and idle connections are closed after the configured timeouts (HTTP/1.1
//! and HTTP/2), a streaming response keeps its connection, and connections beyond the cap
//! are closed at once.

use std::{net::SocketAddr, time::Duration};

use serde_json::json;
use switchyard::{AgentServer, ServeConfig, StoreConfig, server::ConnectionLimits};
use switchyard_e2e::Served;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::gateway::{Gw, PATIENCE, kind, msg, sse_all};

/// Short limits, so that the tests wait for closes briefly.
fn short() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..ConnectionLimits::default()
    }
}

/// Reads until the server closes the connection (EOF or reset), within [`PATIENCE`]; returns
/// what it sent.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("the server closes the connection in time")
        {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

async fn silent_connections_close(addr: SocketAddr) {
    // Nothing at all: closed before the protocol is even known.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    assert!(until_closed(&mut tcp).await.is_empty());
    // Half a request head: HTTP/1.1's header read timeout.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    until_closed(&mut tcp).await;
    // An HTTP/2 preface and no request: the server's SETTINGS, then GOAWAY and close.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(H2_PREFACE).await.expect("write");
    let bytes = until_closed(&mut tcp).await;
    assert!(frame_types(&bytes).contains(&GOAWAY), "a GOAWAY frame");
}

/// HTTP/2 frame type of GOAWAY (RFC 9113 §6.8).
const GOAWAY: u8 = 0x7;

/// The types of the HTTP/2 frames in `bytes` (9-byte headers: length, type, flags, stream).
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_header_read_timeout() {
    let (gw, echo, _dir) = Gw::echo_with(|c| c.connections = short()).await;
    silent_connections_close(gw.url.trim_start_matches("http://").parse().expect("addr")).await;
    drop(echo);
    let (echo, _dir) = Served::echo_with(|c| c.connections = short()).await;
    silent_connections_close(echo.addr).await;
}

/// An agent's operations listener (metrics and probes, often reachable where the gRPC port
/// is not) has the same limits.
#[tokio::test]
async fn an_agents_operations_listener_closes_silent_connections_too() {
    let server = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: StoreConfig::Memory,
            metrics_listen: Some(([127, 0, 0, 1], 0).into()),
            connections: short(),
            ..Default::default()
        },
    )
    .await
    .expect("bind");
    let ops = server.metrics_addr().expect("metrics address");
    let stop = server.shutdown_handle();
    let join = tokio::spawn(server.run());
    silent_connections_close(ops).await;
    stop.shutdown();
    join.await.expect("server");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| c.connections = short()).await;
    let addr: SocketAddr = gw.url.trim_start_matches("http://").parse().expect("addr");
    // HTTP/1.1 keep-alive: one answer, then the idle connection is closed.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = String::from_utf8_lossy(&until_closed(&mut tcp).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // HTTP/2 on an agent's port: one request, then GOAWAY and the connection ends.
    let (echo, _dir) = Served::echo_with(|c| c.connections = short()).await;
    let tcp = TcpStream::connect(echo.addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    let card = send
        .send_request(
            http::Request::get(format!("http://{}/.well-known/agent-card.json", echo.addr))
                .body(String::new())
                .expect("request"),
        )
        .await
        .expect("card");
    assert_eq!(card.status(), 200);
    drop(card);
    tokio::time::timeout(PATIENCE, conn)
        .await
        .expect("the idle HTTP/2 connection is closed in time")
        .expect("connection task")
        .expect("closed cleanly (GOAWAY)");
}

/// Reads one HTTP/1.1 response with a `content-length` from `tcp`; returns its head and body.
async fn one_response(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(
            n > 0,
            "the connection was closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// The wait between keep-alive requests is the idle timeout, not the header read timeout
/// (hyper's HTTP/1.1 `header_read_timeout` alone closed them after the latter); once a request
/// has begun to arrive, its head has the header read timeout.
#[tokio::test]
async fn keep_alive_waits_the_idle_timeout_and_a_started_head_the_header_read_timeout() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| {
        c.connections = ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        }
    })
    .await;
    let addr: SocketAddr = gw.url.trim_start_matches("http://").parse().expect("addr");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    tcp.write_all(request).await.expect("write");
    assert!(one_response(&mut tcp).await.starts_with("HTTP/1.1 200"));
    // Idle for over three header read timeouts: the connection is still there.
    tokio::time::sleep(Duration::from_secs(1)).await;
    tcp.write_all(request).await.expect("write");
    assert!(one_response(&mut tcp).await.starts_with("HTTP/1.1 200"));
    // Half a head: closed after the header read timeout, far sooner than the idle one.
    tcp.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    until_closed(&mut tcp).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed by the header read timeout, after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_streaming_response_keeps_its_connection_past_the_idle_timeout() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| c.connections = short()).await;
    // Chunks 500 ms apart on a connection whose idle timeout is 300 ms.
    let r = gw
        .post_json(
            "/agents/echo/message:stream",
            &json!({"message": msg("slow", json!({"chunks": 3, "chunk_delay_ms": 500}))}),
        )
        .send()
        .await
        .expect("send");
    let events = sse_all(r).await;
    let last = events.last().expect("events");
    assert_eq!(kind(&last.data), "status:COMPLETED");
    let chunks = events
        .iter()
        .filter(|e| kind(&e.data).starts_with("artifact:"));
    assert!(chunks.count() >= 3, "every chunk arrived");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| {
        c.connections = ConnectionLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(120),
        }
    })
    .await;
    let addr: SocketAddr = gw.url.trim_start_matches("http://").parse().expect("addr");
    let held = TcpStream::connect(addr).await.expect("connect");
    let _held2 = TcpStream::connect(addr).await.expect("connect");
    // Accepted in order: the third finds both slots taken and is closed without an answer.
    let mut third = TcpStream::connect(addr).await.expect("connect");
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(until_closed(&mut third).await.is_empty(), "no answer");

    // Once a held connection closes, its slot serves a new one.
    drop(held);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let _ = tcp
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let answer = until_closed(&mut tcp).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "a slot was freed");
        tokio::task::yield_now().await;
    }
}
