//! Server-sent events for the streaming methods of both bindings (A2A v1.0, "Streaming").
//!
//! - Each event's `data:` is a JSON-RPC response (`{"jsonrpc","id","result"}`) on the
//!   JSON-RPC binding, the bare `StreamResponse` on REST. Its `id:` is the per-task sequence
//!   number the agent stamped on it (`metadata["switchyard.sequence"]`); events of agents
//!   without that extension (third-party A2A servers) have no `id:`, and cannot be resumed.
//! - The first event is read before answering: an error there is a plain JSON answer (HTTP
//!   200 on JSON-RPC), not a stream. An agent silent for `sse_keepalive` gets its stream
//!   started with a keep-alive comment instead.
//! - An error later is one `event: error` (a JSON-RPC error, or the REST envelope), then the
//!   end of the stream. The stream ends when the agent's stream ends.
//! - A REST stream with no event at all (a resume at or past the end of a finished task) is
//!   `204 No Content`, which stops a browser `EventSource` from reconnecting.
//! - `: ping` comments keep idle streams (and the proxies between) alive.
//! - Bounded: a pump task pulls the agent's stream into a buffer of `sse_buffer_events`
//!   frames; a client that leaves it full for `slow_client_timeout` is cut off (the upstream
//!   call is cancelled; the client reads what was buffered, then an error event). A client
//!   that goes away cancels the upstream call — never the task.

use std::{pin::Pin, time::Duration};

use crate::ops::OpenStream;

use axum::{body::Body, response::Response};
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use serde_json::Value;
use switchyard::pb::a2a::StreamResponse;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::{
    error::{ApiError, json_rpc, log, rest},
    upstream::upstream,
};

/// How events are framed.
#[derive(Clone, Debug)]
pub(crate) enum Framing {
    /// JSON-RPC binding: each event is a response to request `id`.
    JsonRpc(Value),
    /// REST binding: bare `StreamResponse`s.
    Rest,
}

impl Framing {
    /// One event's frame, serialized straight into the frame's buffer (no intermediate
    /// `serde_json::Value`, one allocation). The JSON-RPC envelope's members come in the order
    /// `serde_json` gives an object's keys (`id`, `jsonrpc`, `result`).
    fn event(&self, event: &StreamResponse) -> Bytes {
        use std::io::Write as _;
        let mut frame = Vec::with_capacity(FRAME_CAPACITY);
        if let Some(s) = switchyard::task::sequence_of(event) {
            let _ = writeln!(frame, "id: {s}");
        }
        frame.extend_from_slice(b"data: ");
        let written = match self {
            Self::JsonRpc(id) => {
                frame.extend_from_slice(b"{\"id\":");
                serde_json::to_writer(&mut frame, id)
                    .and_then(|()| {
                        frame.extend_from_slice(b",\"jsonrpc\":\"2.0\",\"result\":");
                        serde_json::to_writer(&mut frame, event)
                    })
                    .map(|()| frame.push(b'}'))
            }
            Self::Rest => serde_json::to_writer(&mut frame, event),
        };
        if written.is_err() {
            // Unreachable for generated messages; the event is still sent, as `null`.
            frame.clear();
            frame.extend_from_slice(b"data: null");
        }
        frame.extend_from_slice(b"\n\n");
        Bytes::from(frame)
    }

    fn error(&self, error: &ApiError) -> Bytes {
        log(error);
        let data = match self {
            Self::JsonRpc(id) => json_rpc::envelope(id.clone(), error),
            Self::Rest => rest::envelope(error),
        };
        Bytes::from(format!("event: error\ndata: {data}\n\n"))
    }
}

const PING: &[u8] = b": ping\n\n";

/// One buffered frame. Boxed: a channel allocates its slots in blocks of 32 whatever its
/// bound, and `Bytes` inline (32 bytes) would cost every stream 1 KiB of slots.
type Frame = Box<Bytes>;

/// The initial capacity of one event's frame (most events fit; bigger ones grow it).
const FRAME_CAPACITY: usize = 512;

/// The most bytes of buffered frames the body hands to hyper as one chunk: frames already
/// waiting when the client's connection is ready to write go out in one write, not one each.
const BATCH_BYTES: usize = 64 * 1024;

/// Stream settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) keepalive: Duration,
    pub(crate) buffer: usize,
    pub(crate) slow_client: Duration,
    pub(crate) draining: CancellationToken,
}

type Upstream = Pin<Box<dyn Stream<Item = Result<StreamResponse, Status>> + Send>>;

/// Answers with the agent's stream. An error before the first event is returned, for the
/// caller to answer as plain JSON; a REST stream that ends before its first event is answered
/// with [`no_content`].
///
/// # Errors
/// The agent's status before its first event; [`ApiError::Draining`].
pub(crate) async fn respond(
    agent: &str,
    upstream_stream: impl Stream<Item = Result<StreamResponse, Status>> + Send + 'static,
    framing: Framing,
    settings: Settings,
) -> Result<Response, ApiError> {
    let mut stream: Upstream = Box::pin(upstream_stream);
    let first = tokio::select! {
        item = stream.next() => match item {
            Some(Ok(event)) => Some(event),
            Some(Err(status)) => return Err(upstream(agent, status)),
            None if matches!(framing, Framing::Rest) => return Ok(no_content()),
            None => None,
        },
        () = tokio::time::sleep(settings.keepalive) => None,
        () = settings.draining.cancelled() => return Err(ApiError::Draining),
    };
    Ok(response(body(
        agent.to_owned(),
        stream,
        first,
        framing,
        settings,
    )))
}

/// `204 No Content`: a REST stream that ends before its first event, i.e. a resume
/// (`Last-Event-ID`) at or past the last event of a finished task. It tells a browser `EventSource`
/// to stop reconnecting (WHATWG HTML, "Server-sent events": any status but 200 fails the
/// connection for good), where an empty `200` stream would be reconnected forever.
fn no_content() -> Response {
    Response::builder()
        .status(http::StatusCode::NO_CONTENT)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Body::empty())
        .expect("static headers are valid")
}

/// `200 text/event-stream` with `body`.
fn response(body: Body) -> Response {
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "no")
        .body(body)
        .expect("static headers are valid")
}

/// Starts the pump and returns the body that reads its buffer.
fn body(
    agent: String,
    upstream: Upstream,
    first: Option<StreamResponse>,
    framing: Framing,
    settings: Settings,
) -> Body {
    let (tx, rx) = mpsc::channel(settings.buffer);
    let (trailer_tx, trailer_rx) = oneshot::channel();
    let keepalive = settings.keepalive;
    // The first event goes in as its frame: the pump's task does not carry a whole event.
    let first = first.map(|event| framing.event(&event));
    tokio::spawn(pump(
        agent, upstream, first, framing, tx, trailer_tx, settings,
    ));
    Body::from_stream(frames(rx, trailer_rx, keepalive).map(Ok::<_, std::convert::Infallible>))
}

/// Outcome of pushing one frame into the buffer.
enum Push {
    Done,
    ClientGone,
    Failed(ApiError),
}

async fn push(tx: &mpsc::Sender<Frame>, frame: Bytes, settings: &Settings) -> Push {
    // The common case, room in the buffer, without arming the slow-client timer.
    match tx.try_send(Box::new(frame)) {
        Ok(()) => Push::Done,
        Err(mpsc::error::TrySendError::Closed(_)) => Push::ClientGone,
        // Boxed: the wait (a timer, the channel's permit) is the rare case, and inline it
        // would size the task of every idle stream.
        Err(mpsc::error::TrySendError::Full(frame)) => {
            Box::pin(wait_for_room(tx, frame, settings)).await
        }
    }
}

/// Waits (at most `slow_client_timeout`) for room in a full buffer.
async fn wait_for_room(tx: &mpsc::Sender<Frame>, frame: Frame, settings: &Settings) -> Push {
    tokio::select! {
        sent = tokio::time::timeout(settings.slow_client, tx.send(frame)) => match sent {
            Ok(Ok(())) => Push::Done,
            Ok(Err(_)) => Push::ClientGone,
            Err(_) => Push::Failed(ApiError::SlowClient),
        },
        () = settings.draining.cancelled() => Push::Failed(ApiError::Draining),
    }
}

/// Pulls the agent's stream into the buffer until it ends, fails, the client goes away (the
/// upstream call is dropped, i.e. cancelled) or the client is too slow. `pending` is the
/// first event's frame, if it came before the response.
///
/// A plain `fn` returning an `async` block that uses its captures in place: an `async fn`
/// keeps a second copy of its arguments in its future (the task's size, per stream).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps a second copy of its arguments in its future"
)]
fn pump(
    agent: String,
    mut events: Upstream,
    mut pending: Option<Bytes>,
    framing: Framing,
    tx: mpsc::Sender<Frame>,
    trailer: oneshot::Sender<Bytes>,
    settings: Settings,
) -> impl Future<Output = ()> + Send {
    async move {
        let _open = OpenStream::new("sse");
        let failure = loop {
            if let Some(frame) = pending.take() {
                match push(&tx, frame, &settings).await {
                    Push::Done => {}
                    Push::ClientGone => return,
                    Push::Failed(e) => break e,
                }
            }
            let item = tokio::select! {
                biased;
                () = tx.closed() => return,
                () = settings.draining.cancelled() => break ApiError::Draining,
                item = events.next() => item,
            };
            // The event is framed and dropped before the next wait: the task keeps no event.
            match item {
                None => return,
                Some(Err(status)) => break upstream(&agent, status),
                Some(Ok(event)) => pending = Some(framing.event(&event)),
            }
        };
        drop(events);
        let _ = trailer.send(framing.error(&failure));
    }
}

/// The body: buffered frames, `: ping` after `keepalive` of silence, then the trailer (the
/// error event, if the stream failed). Frames that are already waiting are joined into one
/// chunk of at most [`BATCH_BYTES`] (one write and one flush for a burst of events); the
/// keep-alive timer is armed only when the buffer is empty.
fn frames(
    rx: mpsc::Receiver<Frame>,
    trailer: oneshot::Receiver<Bytes>,
    keepalive: Duration,
) -> impl Stream<Item = Bytes> + Send {
    futures::stream::unfold(
        (Some(rx), Some(trailer)),
        move |(rx, mut trailer)| async move {
            if let Some(mut r) = rx {
                let first = match r.try_recv() {
                    Ok(f) => Some(f),
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                    Err(mpsc::error::TryRecvError::Empty) => tokio::select! {
                        frame = r.recv() => frame,
                        () = tokio::time::sleep(keepalive) => {
                            return Some((Bytes::from_static(PING), (Some(r), trailer)));
                        }
                    },
                };
                if let Some(f) = first {
                    return Some((batch(f, &mut r), (Some(r), trailer)));
                }
            }
            let last = trailer.take()?.await.ok()?;
            Some((last, (None, None)))
        },
    )
}

/// `first` and the frames waiting behind it, up to [`BATCH_BYTES`], as one chunk.
fn batch(first: Frame, rx: &mut mpsc::Receiver<Frame>) -> Bytes {
    let Ok(second) = rx.try_recv() else {
        return *first;
    };
    let guess = (first.len().max(second.len())) * (rx.len() + 2);
    let mut chunk = bytes::BytesMut::with_capacity(guess.min(BATCH_BYTES));
    chunk.extend_from_slice(&first);
    chunk.extend_from_slice(&second);
    while chunk.len() < BATCH_BYTES {
        match rx.try_recv() {
            Ok(f) => chunk.extend_from_slice(&f),
            Err(_) => break,
        }
    }
    chunk.freeze()
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use http_body_util::BodyExt as _;
    use serde_json::json;
    use switchyard::pb::a2a::{Task, stream_response};

    use super::*;

    fn event(seq: u64) -> StreamResponse {
        let mut task = Task {
            id: format!("t{seq}"),
            ..Default::default()
        };
        let mut md = pbjson_types::Struct::default();
        md.fields.insert(
            "switchyard.sequence".into(),
            pbjson_types::Value {
                kind: Some(pbjson_types::value::Kind::NumberValue(seq as f64)),
            },
        );
        task.metadata = Some(md);
        StreamResponse {
            payload: Some(stream_response::Payload::Task(task)),
        }
    }

    fn settings(buffer: usize) -> Settings {
        Settings {
            keepalive: Duration::from_secs(3600),
            buffer,
            slow_client: Duration::from_secs(5),
            draining: CancellationToken::new(),
        }
    }

    async fn text(response: Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn events_carry_their_sequence_and_errors_end_the_stream() {
        let items = vec![Ok(event(1)), Ok(event(2)), Err(Status::not_found("gone"))];
        let r = respond(
            "a",
            futures::stream::iter(items),
            Framing::Rest,
            settings(4),
        )
        .await
        .expect("stream");
        let body = text(r).await;
        let blocks: Vec<&str> = body.split("\n\n").filter(|b| !b.is_empty()).collect();
        assert!(blocks[0].starts_with("id: 1\ndata: {\"task\""), "{body}");
        assert!(blocks[1].starts_with("id: 2\ndata: "), "{body}");
        assert!(
            blocks[2].starts_with("event: error\ndata: {\"error\":{\"code\":404"),
            "{body}"
        );
        assert_eq!(blocks.len(), 3);
    }

    #[tokio::test]
    async fn an_error_before_the_first_event_is_returned() {
        let items = vec![Err::<StreamResponse, _>(Status::not_found("no task"))];
        let r = respond(
            "a",
            futures::stream::iter(items),
            Framing::Rest,
            settings(4),
        )
        .await;
        assert!(matches!(r, Err(ApiError::Upstream { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_does_not_read_is_cut_off_and_the_upstream_dropped() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        let endless = futures::stream::iter((1..).map(|n| Ok(event(n)))).map(move |e| {
            let _keep = &flag;
            e
        });
        let s = Settings {
            slow_client: Duration::from_millis(100),
            ..settings(2)
        };
        let r = respond("a", endless, Framing::JsonRpc(json!(1)), s)
            .await
            .expect("stream");
        // Nobody reads: the pump fills the buffer, waits, gives up and drops the upstream.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(dropped.load(Ordering::SeqCst));
        let body = text(r).await;
        let blocks: Vec<&str> = body.split("\n\n").filter(|b| !b.is_empty()).collect();
        assert_eq!(blocks.len(), 3, "{body}");
        assert!(blocks[2].contains("SLOW_CLIENT") && blocks[2].starts_with("event: error"));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_filled_with_pings() {
        let (tx, rx) = mpsc::channel::<Result<StreamResponse, Status>>(1);
        let s = Settings {
            keepalive: Duration::from_secs(15),
            ..settings(4)
        };
        let upstream = tokio_stream_from(rx);
        let r = respond("a", upstream, Framing::Rest, s)
            .await
            .expect("stream");
        let mut body = r.into_body().into_data_stream();
        assert_eq!(&body.next().await.expect("ping").expect("ok")[..], PING);
        tx.send(Ok(event(7))).await.expect("send");
        let f = body.next().await.expect("event").expect("ok");
        assert!(f.starts_with(b"id: 7\n"));
        drop(tx);
        assert!(body.next().await.is_none());
    }

    #[test]
    fn frames_hold_the_protobuf_json_of_the_event() {
        let e = event(3);
        let rpc = Framing::JsonRpc(json!("r1")).event(&e);
        let text = std::str::from_utf8(&rpc).expect("utf-8");
        let data = text
            .strip_prefix("id: 3\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .expect("framed");
        let v: Value = serde_json::from_str(data).expect("json");
        let result = serde_json::to_value(&e).expect("value");
        assert_eq!(v, json!({"jsonrpc": "2.0", "id": "r1", "result": result}));
        let rest = Framing::Rest.event(&e);
        assert_eq!(
            &rest[..],
            format!(
                "id: 3\ndata: {}\n\n",
                serde_json::to_string(&e).expect("json")
            )
            .as_bytes()
        );
    }

    #[tokio::test]
    async fn waiting_frames_leave_as_one_chunk_in_order() {
        let items: Vec<_> = (1..=50).map(|n| Ok(event(n))).collect();
        let r = respond(
            "a",
            futures::stream::iter(items),
            Framing::Rest,
            settings(64),
        )
        .await
        .expect("stream");
        let mut body = r.into_body().into_data_stream();
        let mut chunks = Vec::new();
        while let Some(c) = body.next().await {
            chunks.push(c.expect("ok"));
        }
        let all: Vec<u8> = chunks.concat();
        let text = String::from_utf8(all).expect("utf-8");
        let ids: Vec<u64> = text
            .split("\n\n")
            .filter(|b| !b.is_empty())
            .map(|b| {
                let line = b.lines().next().expect("line");
                line.strip_prefix("id: ").expect("id").parse().expect("n")
            })
            .collect();
        assert_eq!(ids, (1..=50).collect::<Vec<_>>());
        // The pump fills the buffer before the body is read: fewer chunks than events.
        assert!(chunks.len() < 50, "{} chunks", chunks.len());
    }

    fn tokio_stream_from(
        mut rx: mpsc::Receiver<Result<StreamResponse, Status>>,
    ) -> impl Stream<Item = Result<StreamResponse, Status>> + Send {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
