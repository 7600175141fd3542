//! HTTP/1.1 requests that accept an event stream, served without hyper's connection buffers.
//!
//! An idle Server-Sent Events stream over HTTP/1.1 spends most of its memory in hyper: its
//! `http1` connection keeps an 8 KiB read buffer and an 8 KiB write buffer for its whole life
//! (hyper's minimum; no builder option shrinks or releases them; bench/RESULTS.md §9). A plain
//! connection whose first request says it takes `text/event-stream` (the `Accept` header a
//! browser's `EventSource`, the A2A SDKs and our console and CLI send for a stream) is served
//! here instead: its request head and body are parsed with `httparse` (hyper's own parser),
//! the router answers as it would through hyper, and the response is written to the socket as
//! it comes, one write per batch of ready frames, with no buffer kept between batches.
//!
//! Framing (RFC 9112): the response carries `Connection: close` (§9.6) and the connection
//! serves that one request; its body is sent with `Content-Length` when the length is known
//! and with the `chunked` transfer coding otherwise (§7.1). A body that fails is cut without
//! the last chunk, so the client sees it incomplete (as hyper does).
//!
//! Anything else stays with hyper, which gives every error its proper answer: a request
//! head not complete in the first bytes received or larger than [`HEAD_LIMIT`], HTTP/1.0,
//! `CONNECT`, an upgrade (WebSocket), `Expect`, `Transfer-Encoding` on the request, a body
//! larger than [`BODY_LIMIT`], or a head `httparse` or `http` refuses.

use std::{
    fmt::Write as _,
    io,
    mem::MaybeUninit,
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::{BufMut as _, Bytes, BytesMut};
use futures::FutureExt as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _, ReadBuf},
    net::TcpStream,
};
use tower::ServiceExt as _;

/// Largest request head looked at, in bytes; a larger head goes to hyper.
pub(super) const HEAD_LIMIT: usize = 8192;
/// Largest request body read here, in bytes; a larger body goes to hyper (a subscription's
/// body is a few hundred bytes).
pub(super) const BODY_LIMIT: u64 = 64 * 1024;
/// Most headers in a request head looked at; more go to hyper.
const MAX_HEADERS: usize = 64;
/// Response bytes gathered from frames that are ready at once before they are written.
const BATCH: usize = 64 * 1024;

/// A request head, parsed, that this module serves.
#[derive(Debug)]
pub(super) struct Head {
    /// Bytes of the head on the socket, its blank line included.
    len: usize,
    /// The request, its body still to read.
    request: http::Request<()>,
    /// Bytes of body that follow the head (`Content-Length`).
    body_len: usize,
}

/// Parses the request head at the start of `bytes`: `Some` if it is complete and one this
/// module serves (the module's doc says which).
pub(super) fn parse(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(bytes).ok()? else {
        return None;
    };
    if parsed.version != Some(1) {
        return None;
    }
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    if method == Method::CONNECT {
        return None;
    }
    let uri: Uri = parsed.path?.parse().ok()?;
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        map.append(
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        );
    }
    if [header::TRANSFER_ENCODING, header::UPGRADE, header::EXPECT]
        .iter()
        .any(|h| map.contains_key(h))
    {
        return None;
    }
    let wants_events = map
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| contains_ignore_case(v.as_bytes(), b"text/event-stream"));
    if !wants_events {
        return None;
    }
    let mut lengths = map.get_all(header::CONTENT_LENGTH).iter();
    let body_len = match (lengths.next(), lengths.next()) {
        (None, _) => 0,
        // `1*DIGIT` (RFC 9110 §8.6): not the sign or spaces `u64::from_str` would take.
        (Some(v), None) if !v.is_empty() && v.as_bytes().iter().all(u8::is_ascii_digit) => {
            let n: u64 = v.to_str().ok()?.parse().ok()?;
            if n > BODY_LIMIT {
                return None;
            }
            usize::try_from(n).ok()?
        }
        (Some(_), _) => return None,
    };
    let mut request = http::Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    Some(Head {
        len,
        request,
        body_len,
    })
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Looks at the bytes `stream` has received (left unread) for a request head [`parse`]
/// accepts; `None` if there is none or nothing can be read right now.
///
/// Synchronous, into a buffer on the stack: neither a heap buffer (freed at once, it left
/// holes in the heap that cost every later connection ~2 KiB) nor a buffer in the
/// connection's future (the size of its task).
pub(super) fn peek(stream: &TcpStream) -> Option<Head> {
    let mut space = [MaybeUninit::<u8>::uninit(); HEAD_LIMIT];
    let mut buf = ReadBuf::uninit(&mut space);
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_peek(&mut cx, &mut buf) {
        Poll::Ready(Ok(_)) => parse(buf.filled()),
        Poll::Ready(Err(_)) | Poll::Pending => None,
    }
}

/// Serves the request whose `head` opens `stream` with `router`, then closes the connection.
/// The body must arrive within `body_timeout` (else `408 Request Timeout`).
///
/// A function returning an `async` block that uses its captures in place: an `async fn`
/// keeps a second copy of its arguments in its future (the task's size, per connection).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps a second copy of its arguments in its future"
)]
pub(super) fn serve(
    mut stream: TcpStream,
    head: Head,
    router: axum::Router,
    body_timeout: Duration,
) -> impl Future<Output = io::Result<()>> + Send {
    async move {
        let Head {
            len,
            request,
            body_len,
        } = head;
        let body = {
            let mut bytes = vec![0u8; len + body_len];
            match tokio::time::timeout(body_timeout, stream.read_exact(&mut bytes)).await {
                Ok(read) => read?,
                Err(_) => {
                    stream.write_all(&timed_out(body_timeout)).await?;
                    return stream.shutdown().await;
                }
            };
            Bytes::from(bytes).slice(len..)
        };
        let head_only = request.method() == Method::HEAD;
        let response = router
            .oneshot(request.map(|()| axum::body::Body::from(body)))
            .await
            .unwrap_or_else(|never| match never {});
        let (parts, mut body) = response.into_parts();
        let mut framing = Framing::of(&parts, head_only, body.size_hint().exact());
        // The head's bytes, and not the response's parts, are what the future holds.
        let head = response_head(&parts, framing, std::time::SystemTime::now());
        drop(parts);
        stream.write_all(&head).await?;
        drop(head);
        if framing == Framing::None {
            return stream.shutdown().await;
        }
        loop {
            let mut batch = BytesMut::new();
            // Waits for the next frame, watching the socket meanwhile: a client that closes
            // it ends the stream (dropping the body cancels what feeds it).
            let first = tokio::select! {
                biased;
                frame = body.frame() => frame,
                ready = stream.readable() => {
                    ready?;
                    if client_gone(&stream)? {
                        return Ok(());
                    }
                    continue;
                }
            };
            let mut next = Some(first);
            // Then takes every frame that is ready at once, up to a batch.
            while let Some(frame) = next.take() {
                match frame {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            framing.push(&mut batch, &data)?;
                        }
                    }
                    Some(Err(e)) => return Err(io::Error::other(e)),
                    None => {
                        framing.end(&mut batch)?;
                        stream.write_all(&batch).await?;
                        return stream.shutdown().await;
                    }
                }
                if batch.len() < BATCH {
                    next = body.frame().now_or_never();
                }
            }
            stream.write_all(&batch).await?;
        }
    }
}

/// A `408 Request Timeout` answer to a body that did not arrive within `limit`
/// (RFC 9110 §15.5.9).
fn timed_out(limit: Duration) -> Vec<u8> {
    let text = format!(
        "the request body did not arrive within {} ms\n",
        limit.as_millis()
    );
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = StatusCode::REQUEST_TIMEOUT;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let framing = Framing::Length(text.len() as u64);
    let mut out = response_head(&parts, framing, std::time::SystemTime::now());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Whether the client closed its side: what it sends after the request is read and dropped
/// (the connection serves one request), at most a few reads per call so that a client that
/// keeps sending does not hold the worker.
fn client_gone(stream: &TcpStream) -> io::Result<bool> {
    let mut sink = [0u8; 512];
    for _ in 0..8 {
        match stream.try_read(&mut sink) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// How a response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body: `HEAD`, 1xx, 204, 304 (RFC 9112 §6.3).
    None,
    /// `Content-Length` (the response's own or the body's exact size): the bytes still due.
    Length(u64),
    /// The `chunked` transfer coding (RFC 9112 §7.1).
    Chunked,
}

impl Framing {
    fn of(parts: &http::response::Parts, head_only: bool, exact: Option<u64>) -> Self {
        let s = parts.status;
        if head_only
            || s.is_informational()
            || s == StatusCode::NO_CONTENT
            || s == StatusCode::NOT_MODIFIED
        {
            return Self::None;
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        match declared.or(exact) {
            Some(n) => Self::Length(n),
            None => Self::Chunked,
        }
    }

    /// Appends `data` to `out`, framed; an error if it overruns a declared length.
    fn push(&mut self, out: &mut BytesMut, data: &[u8]) -> io::Result<()> {
        match self {
            Self::None => {}
            Self::Length(due) => {
                let n = data.len() as u64;
                if n > *due {
                    return Err(io::Error::other("response body longer than its length"));
                }
                *due -= n;
                out.extend_from_slice(data);
            }
            Self::Chunked if data.is_empty() => {}
            Self::Chunked => {
                out.reserve(data.len() + 20);
                write!(out, "{:x}\r\n", data.len()).map_err(io::Error::other)?;
                out.extend_from_slice(data);
                out.put_slice(b"\r\n");
            }
        }
        Ok(())
    }

    /// Appends the end of the body to `out`; an error if it falls short of a declared length.
    fn end(&self, out: &mut BytesMut) -> io::Result<()> {
        match self {
            Self::None | Self::Length(0) => Ok(()),
            Self::Length(_) => Err(io::Error::other("response body shorter than its length")),
            Self::Chunked => {
                out.extend_from_slice(b"0\r\n\r\n");
                Ok(())
            }
        }
    }
}

/// The status line and headers of a response: its own headers but the hop-by-hop ones this
/// module sets (`Connection: close`, the framing), a `Date` if it has none (RFC 9110 §6.6.1).
fn response_head(
    parts: &http::response::Parts,
    framing: Framing,
    now: std::time::SystemTime,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in &parts.headers {
        if [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::CONTENT_LENGTH,
        ]
        .contains(name)
            || name.as_str() == "keep-alive"
        {
            continue;
        }
        line(name.as_str().as_bytes(), value.as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        line(b"date", httpdate::fmt_http_date(now).as_bytes());
    }
    line(b"connection", b"close");
    match framing {
        // A `HEAD` answer keeps the length the `GET` would have (RFC 9110 §9.3.2).
        Framing::None => {
            if let Some(v) = parts.headers.get(header::CONTENT_LENGTH) {
                line(b"content-length", v.as_bytes());
            }
        }
        Framing::Length(n) => line(b"content-length", n.to_string().as_bytes()),
        Framing::Chunked => line(b"transfer-encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::{
        Router,
        body::Body,
        routing::{get, post},
    };
    use futures::StreamExt as _;
    use tokio::{
        io::{AsyncReadExt as _, AsyncWriteExt as _},
        net::{TcpListener, TcpStream},
        sync::mpsc,
    };
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::server::listener::ConnectionLimits;

    const EVENTS: &str = "Accept: text/event-stream\r\n";

    #[test]
    fn only_complete_plain_requests_that_accept_events_are_taken() {
        let ok = |head: &str| parse(head.as_bytes()).is_some();
        assert!(ok(
            "GET /s HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n"
        ));
        assert!(ok(
            "POST /rpc HTTP/1.1\r\naccept: application/json, TEXT/Event-Stream\r\ncontent-length: 12\r\n\r\n"
        ));
        for refused in [
            "GET /s HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /s HTTP/1.1\r\nAccept: application/json\r\n\r\n",
            "GET /s HTTP/1.1\r\nAccept: text/event-stream\r\n",
            "GET /s HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n",
            "GET /s HTTP/1.1\r\nAccept: text/event-stream\r\nUpgrade: websocket\r\n\r\n",
            "POST /s HTTP/1.1\r\nAccept: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /s HTTP/1.1\r\nAccept: text/event-stream\r\nExpect: 100-continue\r\n\r\n",
            "POST /s HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: 65537\r\n\r\n",
            "POST /s HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST /s HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: x\r\n\r\n",
            "POST /s HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: +1\r\n\r\n",
            "CONNECT a:1 HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n",
            "GET /s HTTP/1.1\r\nAccept: text/event-stream\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(!ok(refused), "{refused:?}");
        }
        let sent =
            b"POST /rpc?x=1 HTTP/1.1\r\nAccept: text/event-stream\r\nContent-Length: 3\r\n\r\nabc";
        let head = parse(sent).expect("taken");
        assert_eq!((head.len, head.body_len), (sent.len() - 3, 3));
        assert_eq!(head.request.uri(), "/rpc?x=1");
        assert_eq!(head.request.method(), Method::POST);
    }

    /// A listener serving `router` with a body timeout of 300 ms; its address.
    async fn listen(router: Router) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        };
        tokio::spawn(crate::server::listener::serve(
            listener,
            router,
            CancellationToken::new(),
            Duration::from_secs(1),
            limits,
            None,
        ));
        addr
    }

    /// Everything the server sends until it closes.
    async fn exchange(addr: std::net::SocketAddr, request: String) -> String {
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut answer))
            .await
            .expect("the server closes")
            .expect("read");
        answer
    }

    /// A route streaming what is sent on the returned channel, and one that echoes its body.
    fn routes() -> (Router, mpsc::Sender<&'static str>) {
        let (tx, rx) = mpsc::channel::<&'static str>(8);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
        let router = Router::new()
            .route(
                "/events",
                get(move || {
                    let rx = rx.lock().expect("lock").take().expect("one stream");
                    let frames = tokio_stream::wrappers::ReceiverStream::new(rx)
                        .map(|s| Ok::<_, std::convert::Infallible>(Bytes::from(s)));
                    async move {
                        http::Response::builder()
                            .header(header::CONTENT_TYPE, "text/event-stream")
                            .body(Body::from_stream(frames))
                            .expect("response")
                    }
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }))
            .route("/sized", get(|| async { "hello" }));
        (router, tx)
    }

    #[tokio::test]
    async fn a_stream_is_chunked_as_it_comes_and_the_connection_closed_at_its_end() {
        let (router, tx) = routes();
        let addr = listen(router).await;
        let client = tokio::spawn(exchange(
            addr,
            format!("GET /events HTTP/1.1\r\nHost: a\r\n{EVENTS}\r\n"),
        ));
        tx.send("data: one\n\n").await.expect("send");
        tx.send("data: two\n\n").await.expect("send");
        drop(tx);
        let answer = client.await.expect("client");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        for line in [
            "content-type: text/event-stream",
            "connection: close",
            "transfer-encoding: chunked",
            "date: ",
        ] {
            assert!(head.contains(line), "{line:?} in {head}");
        }
        assert!(!head.contains("content-length"), "{head}");
        // Frames that were ready together may share a write, never a chunk.
        assert_eq!(
            body,
            "b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_request_body_is_read_and_a_sized_answer_has_its_length() {
        let (router, _tx) = routes();
        let addr = listen(router).await;
        let answer = exchange(
            addr,
            format!("POST /echo HTTP/1.1\r\n{EVENTS}Content-Length: 5\r\n\r\nhello"),
        )
        .await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.lines().any(|l| l == "content-length: 5"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(body, "hello");

        let answer = exchange(addr, format!("HEAD /echo HTTP/1.1\r\n{EVENTS}\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "no body: {answer:?}");

        // A `HEAD` answer keeps the length the `GET` would have, and has no body.
        let answer = exchange(addr, format!("HEAD /sized HTTP/1.1\r\n{EVENTS}\r\n")).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.lines().any(|l| l == "content-length: 5"), "{head}");
        assert_eq!(body, "", "no body");
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_is_answered_408() {
        let (router, _tx) = routes();
        let addr = listen(router).await;
        let answer = exchange(
            addr,
            format!("POST /echo HTTP/1.1\r\n{EVENTS}Content-Length: 5\r\n\r\nhe"),
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("the request body did not arrive within 300 ms\n"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_client_that_goes_away_drops_the_stream() {
        let (router, tx) = routes();
        let addr = listen(router).await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(format!("GET /events HTTP/1.1\r\n{EVENTS}\r\n").as_bytes())
            .await
            .expect("write");
        tx.send("data: one\n\n").await.expect("send");
        let mut first = [0u8; 64];
        let n = client.read(&mut first).await.expect("read");
        assert!(n > 0);
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), tx.closed())
            .await
            .expect("the stream is dropped once the client has gone");
    }

    #[tokio::test]
    async fn other_requests_keep_hyper_and_their_connection() {
        let (router, _tx) = routes();
        let addr = listen(router).await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        for _ in 0..2 {
            client
                .write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
                .await
                .expect("write");
            let mut answer = vec![0u8; 1024];
            let n = client.read(&mut answer).await.expect("read");
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
            assert!(
                !answer.contains("connection: close"),
                "kept alive: {answer}"
            );
            assert!(answer.ends_with("\r\n\r\nhi"), "{answer}");
        }
    }
}
