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
//! - Memory: the socket buffers are small (1 KiB read buffer, writes unbuffered), and no agent
//!   frame or client request stays in the session's futures across an await; see
//!   bench/RESULTS.md §9 for what an idle session costs.
//! - Agent restarts (issue 13 item 6, [`crate::resume`]): when the Converse call breaks (the
//!   agent's process died, its connection was lost), every task the session started that has
//!   not settled is followed on: re-subscribed (SubscribeToTask after the last sequence
//!   forwarded, on a healthy endpoint, with [`StreamResume`](crate::StreamResume)'s attempts
//!   and backoff), its events still tagged with the send's `inReplyTo`: the client sees each
//!   task's events without error, gap or duplicate. What cannot be resumed by construction —
//!   the Converse call's request half: a `send` the agent had not answered with a task yet,
//!   any request the client sends after the break — gets an `error` frame with code 14
//!   (UNAVAILABLE, retryable: send it again in a new session; a repeated `messageId` returns
//!   the task it started, if any). A task that cannot be resumed (attempts exhausted, an
//!   agent without sequence numbers) gets the same `error` frame. Once the followed tasks
//!   settled, the session closes with 1013 (try again later): open a new one.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
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
use switchyard::pb::{
    a2a::StreamResponse,
    agent::{
        ConverseError, ConverseRequest, ConverseResponse, converse_request, converse_response,
    },
};
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
    lanes::Lanes,
    layers::limit::Slot,
    ops::OpenStream,
    origin, resume,
    upstream::{Forward, upstream},
    upstream::{record_outcome, traced},
};

/// The agent's side of a session, holding its place on a lane.
type Responses = Pin<Box<dyn futures::Stream<Item = Result<ConverseResponse, Status>> + Send>>;

/// Bytes of the socket's read buffer, and the most read from the socket at once (tungstenite's
/// default is 128 KiB). tungstenite zero-fills it, so every idle session keeps all of it
/// resident; a client frame larger than this is read in several reads into a buffer grown to
/// the frame's size.
const READ_BUFFER: usize = 1024;

/// Session settings.
#[derive(Clone, Debug)]
struct Settings {
    agent: String,
    /// The agent, for reporting a broken session to its endpoint's outlier state.
    agent_ref: switchyard::AgentRef,
    /// The endpoint (`host:port`) the session's Converse call went to.
    endpoint: String,
    /// For re-subscribing to the session's tasks when the Converse call breaks.
    lanes: Arc<Lanes>,
    forward: Forward,
    resume: crate::StreamResume,
    slow_client: Duration,
    ping_interval: Duration,
    draining: CancellationToken,
}

/// What the reader half tells the writer half.
enum Control {
    ClientClosed,
    Fail(ApiError),
    /// A request read after the Converse call broke: answered with an `error` frame.
    Refused(Box<ConverseRequest>),
}

/// The session's sends whose tasks have not settled, by `message_id` (the frames'
/// `inReplyTo`): what is needed to follow their tasks when the Converse call breaks.
#[derive(Debug, Default)]
struct Tracked {
    /// The Converse call broke: requests are no longer forwarded.
    detached: bool,
    sends: HashMap<String, Pending>,
}

/// One send of the session.
#[derive(Debug, Default)]
struct Pending {
    tenant: String,
    task_id: Option<String>,
    /// The sequence number of the last event forwarded.
    last_seq: Option<u64>,
}

impl Tracked {
    /// Notes a frame forwarded to the client.
    fn observe(&mut self, frame: &ConverseResponse) {
        match &frame.payload {
            Some(converse_response::Payload::Event(event)) => {
                let (id, settled) = resume::observe(event);
                if settled {
                    self.sends.remove(&frame.in_reply_to);
                } else if let Some(send) = self.sends.get_mut(&frame.in_reply_to) {
                    if send.task_id.is_none() {
                        send.task_id = id.map(str::to_owned);
                    }
                    if let Some(seq) = switchyard::task::sequence_of(event) {
                        send.last_seq = Some(seq);
                    }
                }
            }
            Some(converse_response::Payload::Error(_)) => {
                self.sends.remove(&frame.in_reply_to);
            }
            None => {}
        }
    }
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
    // Detached: the session outlives the upgrade request, whose span ends at the 101.
    let (within, rpc) = forward.detached_client_span(
        "switchyard.v1.AgentService",
        "Converse",
        &name,
        client.address(),
    );
    let endpoint = client.address().to_owned();
    let opened = within
        .call(&name, client.streams().converse(within.streaming(outbound)))
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
        lanes: state.lanes.clone(),
        forward,
        resume: state.config.stream_resume,
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
        .on_upgrade(move |socket| {
            // Split here, not in the session: the socket (tungstenite's state) moves into the
            // halves' shared lock, and a future that took it by value would keep a dead copy.
            let (sink, stream) = socket.split();
            async move {
                let _slot = slot;
                session(sink, stream, to_agent, responses, settings, max).await;
            }
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

#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps a second copy of its arguments in its future"
)]
fn session(
    mut sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    to_agent: mpsc::Sender<Box<ConverseRequest>>,
    mut responses: Responses,
    s: Settings,
    max: usize,
) -> impl Future<Output = ()> + Send {
    // An `async` block that uses its captures in place: an `async fn` keeps a second copy of
    // its arguments in its future (per session).
    async move {
        let _open = OpenStream::new("websocket");
        let start = Instant::now();
        let seen = Arc::new(AtomicU64::new(0));
        // Boxed, as the request channel: the channel's first block holds 32 slots.
        let (control_tx, mut control) = mpsc::channel::<Box<Control>>(1);
        let stop_reading = CancellationToken::new();
        let tracked = Arc::new(Mutex::new(Tracked::default()));
        let detach = CancellationToken::new();
        // The reader runs in this task, polled beside the writer: one task per session.
        let reader = read(
            stream,
            Inbound {
                to_agent,
                tracked: tracked.clone(),
                detach: detach.clone(),
            },
            control_tx,
            Activity {
                seen: seen.clone(),
                start,
            },
            max,
            stop_reading.clone(),
        );
        tokio::pin!(reader);
        // The reader's result (the stream) once it ended.
        let mut read_back: Option<SplitStream<WebSocket>> = None;
        // The Converse call broke and the session follows its tasks on their own streams.
        let mut resumed = false;
        let mut ping = tokio::time::interval_at(start + s.ping_interval, s.ping_interval);
        // Each branch decides without awaiting and gives the frame to write, so that no
        // agent frame or client request stays in this future across the write (the future's
        // size, per session).
        let end = loop {
            let outgoing = tokio::select! {
                biased;
                () = s.draining.cancelled() => break End::Failed(ApiError::Draining),
                c = control.recv() => match c.map(|c| *c) {
                    Some(Control::Fail(e)) => break End::Failed(e),
                    Some(Control::Refused(request)) => text(&refused(&request)),
                    Some(Control::ClientClosed) | None => break End::ClientClosed,
                },
                item = responses.next() => match item {
                    Some(Ok(frame)) => {
                        if !resumed {
                            lock(&tracked).observe(&frame);
                        }
                        text(&frame)
                    }
                    None if resumed => break End::Failed(ApiError::Upstream {
                        agent: s.agent.clone(),
                        status: Status::unavailable(
                            "the agent's Converse call broke; the session's tasks were followed to \
                             their end; open a new session",
                        ),
                    }),
                    None if lock(&tracked).sends.values().all(|t| t.task_id.is_none()) => {
                        break End::Done;
                    }
                    None => {
                        // Ended with tasks in progress: the agent went away.
                        resumed = true;
                        let cause = Status::unavailable("the agent's Converse call ended before its tasks settled");
                        responses = follow(&s, &tracked, &detach, &cause);
                        continue;
                    }
                    Some(Err(status)) => {
                        if resumed || !resume::broken(&status) {
                            break End::Failed(upstream(&s.agent, status));
                        }
                        s.agent_ref.report_endpoint(&s.endpoint, true);
                        resumed = true;
                        responses = follow(&s, &tracked, &detach, &status);
                        continue;
                    }
                },
                stream = reader.as_mut(), if read_back.is_none() => {
                    read_back = Some(stream);
                    continue;
                }
                _ = ping.tick() => {
                    let idle = start.elapsed().saturating_sub(Duration::from_millis(seen.load(Ordering::Relaxed)));
                    if idle >= s.ping_interval * 2 {
                        break End::Failed(ApiError::HeartbeatTimeout(s.ping_interval * 2));
                    }
                    Message::Ping(Default::default())
                }
            };
            if let Err(end) = send(
                &mut sink,
                outgoing,
                s.slow_client,
                reader.as_mut(),
                &mut read_back,
            )
            .await
            {
                break end;
            }
        };
        stop_reading.cancel();
        drop(responses);
        let stream = match read_back {
            Some(stream) => stream,
            None => reader.await,
        };
        // Boxed: the closing handshake's state would otherwise size every idle session.
        Box::pin(finish(sink, stream, end)).await;
    }
}

/// A text frame of `frame`'s protobuf JSON.
fn text(frame: &ConverseResponse) -> Message {
    Message::Text(serde_json::to_string(frame).unwrap_or_default().into())
}

/// `tracked`, locked (a poisoned lock only means a panicked holder: the data stays usable).
fn lock(tracked: &Mutex<Tracked>) -> std::sync::MutexGuard<'_, Tracked> {
    tracked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// After the Converse call broke with `cause`: stops forwarding requests, and returns the
/// frames that follow on — each unsettled task's remaining events through
/// [`resume::resume_after`], and an UNAVAILABLE `error` frame for each send that had not
/// started a resumable task.
fn follow(
    s: &Settings,
    tracked: &Mutex<Tracked>,
    detach: &CancellationToken,
    cause: &Status,
) -> Responses {
    let sends = {
        let mut t = lock(tracked);
        t.detached = true;
        std::mem::take(&mut t.sends)
    };
    detach.cancel();
    tracing::info!(
        agent = %s.agent,
        endpoint = %s.endpoint,
        tasks = sends.len(),
        cause = %cause.message(),
        "websocket session's Converse call broke; following its tasks"
    );
    let streams = sends.into_iter().map(|(reply_to, send)| -> Responses {
        let (Some(task_id), Some(after)) = (send.task_id, send.last_seq) else {
            let status = Status::unavailable(format!(
                "the agent's Converse call broke before message {reply_to:?} started a task \
                 that can be resumed ({}); send it again in a new session",
                cause.message()
            ));
            let frame = error_frame(reply_to, &status);
            return Box::pin(futures::stream::once(async { Ok(frame) }));
        };
        let up = resume::Upstream {
            agent: s.agent_ref.clone(),
            lanes: s.lanes.clone(),
            forward: s.forward.clone(),
            endpoint: s.endpoint.clone(),
            tenant: send.tenant,
            settings: s.resume,
        };
        let events = resume::resume_after(up, task_id, after, cause.clone());
        Box::pin(events.map(move |item| Ok(task_frame(&reply_to, item))))
    });
    Box::pin(futures::stream::select_all(streams))
}

/// The frame of one event (or the failure) of the task of the send `reply_to`.
fn task_frame(reply_to: &str, item: Result<StreamResponse, Status>) -> ConverseResponse {
    match item {
        Ok(event) => ConverseResponse {
            in_reply_to: reply_to.to_owned(),
            payload: Some(converse_response::Payload::Event(event)),
        },
        Err(status) => error_frame(reply_to.to_owned(), &status),
    }
}

/// The `error` frame answering `reply_to` with `status` (as the agent's own error frames).
fn error_frame(reply_to: String, status: &Status) -> ConverseResponse {
    ConverseResponse {
        in_reply_to: reply_to,
        payload: Some(converse_response::Payload::Error(ConverseError {
            code: status.code() as i32,
            message: status.message().to_owned(),
            reason: String::new(),
        })),
    }
}

/// The UNAVAILABLE `error` frame of a request read after the Converse call broke.
fn refused(request: &ConverseRequest) -> ConverseResponse {
    let reply_to = match &request.request {
        Some(converse_request::Request::Send(s)) => s
            .message
            .as_ref()
            .map(|m| m.message_id.clone())
            .unwrap_or_default(),
        Some(converse_request::Request::Cancel(c)) => c.id.clone(),
        None => String::new(),
    };
    error_frame(
        reply_to,
        &Status::unavailable(
            "the agent's Converse call broke (the agent restarted or went away): this session \
             takes no new requests; send it again in a new session",
        ),
    )
}

/// Writes one frame, giving up on a client that does not read; meanwhile the session's
/// `reader` goes on (as it would in a task of its own), its stream put in `read_back` if it
/// ends.
async fn send<R>(
    sink: &mut SplitSink<WebSocket, Message>,
    message: Message,
    patience: Duration,
    mut reader: Pin<&mut R>,
    read_back: &mut Option<SplitStream<WebSocket>>,
) -> Result<(), End>
where
    R: Future<Output = SplitStream<WebSocket>>,
{
    let sending = tokio::time::timeout(patience, sink.send(message));
    tokio::pin!(sending);
    let sent = loop {
        tokio::select! {
            sent = &mut sending => break sent,
            stream = reader.as_mut(), if read_back.is_none() => *read_back = Some(stream),
        }
    };
    match sent {
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
    mut stream: SplitStream<WebSocket>,
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

/// Where the reader puts client requests.
struct Inbound {
    /// The Converse call's request half.
    to_agent: mpsc::Sender<Box<ConverseRequest>>,
    /// The sends forwarded, noted under the same lock that tells whether the call broke.
    tracked: Arc<Mutex<Tracked>>,
    /// Cancelled when the Converse call broke.
    detach: CancellationToken,
}

/// Reads client frames into the Converse call, one at a time and only when it has room;
/// after the call broke (or ended), into [`Control::Refused`]. Returns the stream for the
/// closing handshake.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn keeps a second copy of its arguments in its future"
)]
fn read(
    mut stream: SplitStream<WebSocket>,
    inbound: Inbound,
    control: mpsc::Sender<Box<Control>>,
    activity: Activity,
    max: usize,
    stop: CancellationToken,
) -> impl Future<Output = SplitStream<WebSocket>> + Send {
    async move {
        let outcome = loop {
            let permit = tokio::select! {
                p = inbound.to_agent.reserve() => p.ok(),
                () = inbound.detach.cancelled() => None,
                () = stop.cancelled() => return stream,
            };
            let message = tokio::select! {
                m = stream.next() => m,
                () = stop.cancelled() => return stream,
            };
            let Some(message) = message else {
                break Box::new(Control::ClientClosed);
            };
            activity.touch();
            // Decided without awaiting, so that no frame or request stays in this future
            // across the wait below (the future's size, per session).
            let refused = match forward(message, permit, &inbound, max) {
                Ok(refused) => refused,
                Err(outcome) => break Box::new(outcome),
            };
            if let Some(refused) = refused
                && control.send(refused).await.is_err()
            {
                return stream;
            }
        };
        let _ = control.send(outcome).await;
        stream
    }
}

/// Handles one client frame: a request goes to the Converse call through `permit` (noted in
/// the session's sends), or comes back as [`Control::Refused`] once the call broke. `Err` is
/// the session's end.
fn forward(
    message: Result<Message, axum::Error>,
    permit: Option<mpsc::Permit<'_, Box<ConverseRequest>>>,
    inbound: &Inbound,
    max: usize,
) -> Result<Option<Box<Control>>, Control> {
    match message {
        Ok(Message::Text(text)) => {
            let request = parse_frame(text.as_str()).map_err(Control::Fail)?;
            let mut t = lock(&inbound.tracked);
            match permit {
                Some(permit) if !t.detached => {
                    if let Some(converse_request::Request::Send(s)) = &request.request {
                        let id = s.message.as_ref().map(|m| m.message_id.clone());
                        t.sends.insert(
                            id.unwrap_or_default(),
                            Pending {
                                tenant: s.tenant.clone(),
                                ..Pending::default()
                            },
                        );
                    }
                    permit.send(Box::new(request));
                    Ok(None)
                }
                _ => Ok(Some(Box::new(Control::Refused(Box::new(request))))),
            }
        }
        Ok(Message::Binary(_)) => Err(Control::Fail(ApiError::UnsupportedFrame)),
        Ok(Message::Ping(_) | Message::Pong(_)) => Ok(None),
        Ok(Message::Close(_)) => Err(Control::ClientClosed),
        Err(e) => Err(classify(e, max)),
    }
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
