//! `GET /agents/{agent}/ws`: a WebSocket session bridged to `AgentService/Converse`.
//!
//! - Frames are JSON text in protobuf JSON: the client sends `ConverseRequest`s
//!   (`{"send":{"message":{…}}}` or `{"cancel":{"id":"…"}}`), the gateway sends
//!   `ConverseResponse`s (`{"inReplyTo":"…","event":{…}}` or `{"inReplyTo":"…","error":{…}}`).
//!   Per-request failures are `error` frames and the session goes on.
//! - A browser page of a foreign `Origin` is refused with 403 first ([`crate::origin`]).
//! - The Converse call is opened before the upgrade: an unknown agent (404), a missing or
//!   unserved `A2A-Version` (header or `?A2A-Version=1.0`, 400), an agent that is down (503 +
//!   `Retry-After`) or one without `AgentService` (501) gets a plain HTTP answer.
//! - Backpressure both ways: a client frame is read only when the agent's side has room
//!   (`ws_buffer_frames`); the agent's next frame is pulled only once the previous one was
//!   written to the client, so HTTP/2 flow control holds the agent back. A client that does
//!   not read for `slow_client_timeout` is closed with 1008.
//! - Heartbeat: a ping every `ws_ping_interval`; two intervals without any frame from the
//!   client (pongs count) close the session with 4004.
//! - Ends: see [`crate::error::close`] for the close code of every cause. A client close, a
//!   disconnect or a drain (1001) drop the Converse call: the tasks it started go on.
//! - Memory: the socket buffers are small (4 KiB read buffer, writes unbuffered).

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Extension,
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, rejection::WebSocketUpgradeRejection},
    },
    response::Response,
};
use futures::{
    SinkExt as _, StreamExt as _,
    stream::{SplitSink, SplitStream},
};
use switchyard::pb::agent::{ConverseRequest, ConverseResponse};
use tokio::{sync::mpsc, time::Instant};
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::Instrument as _;

use crate::{
    app::{AppState, agent_segment},
    error::{
        ApiError, Failure,
        close::{NORMAL, close_frame},
        log,
    },
    headers,
    layers::limit::Slot,
    ops::OpenStream,
    origin,
    upstream::{Forward, upstream},
    upstream::{record_outcome, traced},
};

/// The agent's side of a session, holding its place on a lane.
type Responses = Pin<Box<dyn futures::Stream<Item = Result<ConverseResponse, Status>> + Send>>;

/// Bytes of the socket's read buffer (tungstenite's default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;

/// Session settings.
#[derive(Clone, Debug)]
struct Settings {
    agent: String,
    /// The agent, for reporting a broken session to its endpoint's outlier state.
    agent_ref: switchyard::AgentRef,
    /// The endpoint (`host:port`) the session's Converse call went to.
    endpoint: String,
    slow_client: Duration,
    ping_interval: Duration,
    draining: CancellationToken,
}

/// What the reader half tells the writer half.
enum Control {
    ClientClosed,
    Fail(ApiError),
}

/// The upgrade handler.
pub(crate) async fn handle(
    State(state): State<AppState>,
    uri: http::Uri,
    headers: http::HeaderMap,
    mut forward: Forward,
    slot: Option<Extension<Slot>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    origin::check(&headers, &state.config.cors_origins, &state.base_url).map_err(Failure::rest)?;
    let upgrade = upgrade.map_err(|e| {
        Failure::rest(ApiError::InvalidRequest(format!(
            "this route speaks WebSocket ({e}); open it with a WebSocket client"
        )))
    })?;
    let agent = state
        .agent(agent_segment(uri.path()))
        .map_err(Failure::rest)?;
    // A browser WebSocket cannot set headers: `?A2A-Version=1.0` does it.
    let version = headers::version(&headers, uri.query()).map_err(Failure::rest)?;
    forward.set_version(&version);
    // Boxed: a channel allocates its slots in blocks of 32 whatever its bound, and a
    // ConverseRequest inline would cost every idle session ~15 KiB.
    let (to_agent, rx) = mpsc::channel::<Box<ConverseRequest>>(state.config.ws_buffer_frames);
    let mut rx = rx;
    let outbound = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|r| r.map(|b| *b)));
    let name = agent.name().to_owned();
    let (client, lane) = state.lanes.client(&agent);
    let (forward, rpc) = forward.client_span(
        "switchyard.v1.AgentService",
        "Converse",
        &name,
        client.address(),
    );
    let endpoint = client.address().to_owned();
    let opened = forward
        .call(
            &name,
            client.streams().converse(forward.streaming(outbound)),
        )
        .instrument(rpc.clone())
        .await;
    let responses = crate::call::opened(&agent, &endpoint, opened).map_err(|e| {
        record_outcome(&rpc, e.code());
        Failure::rest(e)
    })?;
    record_outcome(&rpc, tonic::Code::Ok);
    // The agent answered: a success for the endpoint's outlier state.
    agent.report_endpoint(&endpoint, false);
    let responses: Responses = Box::pin(lane.hold(traced(responses, rpc)));
    let max = state.config.ws_max_message_bytes;
    let settings = Settings {
        agent: name,
        agent_ref: agent.clone(),
        endpoint,
        slow_client: state.config.slow_client_timeout,
        ping_interval: state.config.ws_ping_interval,
        draining: state.draining.clone(),
    };
    Ok(upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(max.saturating_mul(2))
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            session(socket, to_agent, responses, settings, max).await;
        }))
}

/// How the session ended.
enum End {
    /// The agent ended the call with OK.
    Done,
    /// The client closed (or broke off).
    ClientClosed,
    /// An error, sent as the close code.
    Failed(ApiError),
}

async fn session(
    socket: WebSocket,
    to_agent: mpsc::Sender<Box<ConverseRequest>>,
    mut responses: Responses,
    s: Settings,
    max: usize,
) {
    let _open = OpenStream::new("websocket");
    let (mut sink, stream) = socket.split();
    let start = Instant::now();
    let seen = Arc::new(AtomicU64::new(0));
    let (control_tx, mut control) = mpsc::channel(1);
    let stop_reading = CancellationToken::new();
    let reader = tokio::spawn(read(
        stream,
        to_agent,
        control_tx,
        Activity {
            seen: seen.clone(),
            start,
        },
        max,
        stop_reading.clone(),
    ));
    let mut ping = tokio::time::interval_at(start + s.ping_interval, s.ping_interval);
    let end = loop {
        tokio::select! {
            biased;
            () = s.draining.cancelled() => break End::Failed(ApiError::Draining),
            c = control.recv() => match c {
                Some(Control::Fail(e)) => break End::Failed(e),
                Some(Control::ClientClosed) | None => break End::ClientClosed,
            },
            item = responses.next() => match item {
                Some(Ok(frame)) => {
                    let text = serde_json::to_string(&frame).unwrap_or_default();
                    if let Err(end) = send(&mut sink, Message::Text(text.into()), s.slow_client).await {
                        break end;
                    }
                }
                None => break End::Done,
                Some(Err(status)) => {
                    if crate::resume::broken(&status) {
                        s.agent_ref.report_endpoint(&s.endpoint, true);
                    }
                    break End::Failed(upstream(&s.agent, status));
                }
            },
            _ = ping.tick() => {
                let idle = start.elapsed().saturating_sub(Duration::from_millis(seen.load(Ordering::Relaxed)));
                if idle >= s.ping_interval * 2 {
                    break End::Failed(ApiError::HeartbeatTimeout(s.ping_interval * 2));
                }
                if let Err(end) = send(&mut sink, Message::Ping(Default::default()), s.slow_client).await {
                    break end;
                }
            }
        }
    };
    stop_reading.cancel();
    drop(responses);
    let stream = reader.await.ok();
    finish(sink, stream, end).await;
}

/// Writes one frame, giving up on a client that does not read.
async fn send(
    sink: &mut SplitSink<WebSocket, Message>,
    message: Message,
    patience: Duration,
) -> Result<(), End> {
    match tokio::time::timeout(patience, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::ClientClosed),
        Err(_) => Err(End::Failed(ApiError::SlowClient)),
    }
}

/// How long the closing handshake may take: the client's close frame, or its absence.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Sends the close frame of `end`, waits (bounded) for the client's close frame — the
/// server closes the TCP connection last (RFC 6455 §7.1.1) — and closes the socket.
async fn finish(
    mut sink: SplitSink<WebSocket, Message>,
    stream: Option<SplitStream<WebSocket>>,
    end: End,
) {
    let frame = match &end {
        End::Done => Some(CloseFrame {
            code: NORMAL,
            reason: "the session ended".into(),
        }),
        End::ClientClosed => None,
        End::Failed(e) => {
            log(e);
            Some(close_frame(e))
        }
    };
    let wait = match end {
        End::Failed(ApiError::SlowClient) => Duration::from_millis(100),
        _ => CLOSE_WAIT,
    };
    let _ = tokio::time::timeout(wait, async {
        if let Some(frame) = frame
            && sink.send(Message::Close(Some(frame))).await.is_ok()
            && let Some(mut stream) = stream
        {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        }
        let _ = sink.close().await;
    })
    .await;
}

/// When the client was last heard from.
struct Activity {
    seen: Arc<AtomicU64>,
    start: Instant,
}

impl Activity {
    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.seen.store(millis, Ordering::Relaxed);
    }
}

/// Reads client frames into the Converse call, one at a time and only when it has room.
/// Returns the stream for the closing handshake.
async fn read(
    mut stream: SplitStream<WebSocket>,
    to_agent: mpsc::Sender<Box<ConverseRequest>>,
    control: mpsc::Sender<Control>,
    activity: Activity,
    max: usize,
    stop: CancellationToken,
) -> SplitStream<WebSocket> {
    let outcome = loop {
        let permit = tokio::select! {
            p = to_agent.reserve() => match p {
                Ok(p) => p,
                Err(_) => break Control::ClientClosed,
            },
            () = stop.cancelled() => return stream,
        };
        let message = tokio::select! {
            m = stream.next() => m,
            () = stop.cancelled() => return stream,
        };
        let Some(message) = message else {
            break Control::ClientClosed;
        };
        activity.touch();
        match message {
            Ok(Message::Text(text)) => match parse_frame(text.as_str()) {
                Ok(request) => permit.send(Box::new(request)),
                Err(e) => break Control::Fail(e),
            },
            Ok(Message::Binary(_)) => break Control::Fail(ApiError::UnsupportedFrame),
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) => break Control::ClientClosed,
            Err(e) => break classify(e, max),
        }
    };
    let _ = control.send(outcome).await;
    stream
}

/// A text frame as a `ConverseRequest` within the bounds of [`crate::bounds`].
fn parse_frame(text: &str) -> Result<ConverseRequest, ApiError> {
    crate::bounds::check_depth(text.as_bytes())
        .map_err(|e| ApiError::InvalidFrame(e.to_string()))?;
    let request = serde_json::from_str::<ConverseRequest>(text)
        .map_err(|e| ApiError::InvalidFrame(format!("not a ConverseRequest: {e}")))?;
    crate::bounds::check(&request).map_err(|e| ApiError::InvalidFrame(e.to_string()))?;
    Ok(request)
}

/// A read error: an oversize message, a text frame that is not UTF-8, or a broken connection.
fn classify(error: axum::Error, max: usize) -> Control {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            Control::Fail(ApiError::FrameTooLarge { limit: max })
        }
        Some(tungstenite::Error::Utf8(_)) => Control::Fail(ApiError::InvalidFrame(
            "a text frame is not valid UTF-8".into(),
        )),
        Some(tungstenite::Error::Protocol(p)) => Control::Fail(ApiError::WsProtocol(p.to_string())),
        _ => Control::ClientClosed,
    }
}
