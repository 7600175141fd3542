//! The two gRPC services over the runtime, and what they share: reading the call (deadline,
//! metadata, trace context), the blocking wait of SendMessage, and the event stream of the
//! streaming RPCs. The A2A version of every call is checked before, by `server::version`.

mod a2a;
mod agent;
mod validate;

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::{Stream, StreamExt as _, stream};
use tokio::time::Instant;
use tonic::{Request, Status};

pub(crate) use a2a::A2aGrpc;
pub(crate) use agent::AgentGrpc;

use crate::{
    error::RpcError,
    pb::a2a::{
        Message, SendMessageRequest, SendMessageResponse, StreamResponse, Task,
        send_message_response, stream_response,
    },
    runtime::{CallInfo, CancelReason, Follow, LiveTask, Runtime, Subscription},
    task,
    telemetry::span_attributes,
    trace::TraceHeaders,
};

/// A server-streaming response body.
pub(crate) type EventStream =
    Pin<Box<dyn Stream<Item = Result<StreamResponse, Status>> + Send + 'static>>;

/// gRPC metadata key of the resume point of a subscription: the last sequence number the
/// client received (the SSE `Last-Event-ID`).
pub const LAST_EVENT_ID: &str = "last-event-id";

/// gRPC metadata key of the A2A protocol version (A2A v1.0, "Versioning").
pub const A2A_VERSION: &str = "a2a-version";

impl CallInfo {
    /// Reads the deadline (`grpc-timeout`), metadata and trace context of a request.
    pub(crate) fn from_request<T>(req: &Request<T>) -> Self {
        let metadata = req.metadata().clone();
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::deadline::parse_grpc_timeout)
            .map(|d| Instant::now() + d);
        let trace = TraceHeaders::from_metadata(&metadata);
        let peer = req
            .extensions()
            .get::<crate::identity::PeerIdentity>()
            .cloned();
        Self {
            deadline,
            metadata,
            trace,
            peer,
        }
    }
}

/// A caller that goes away this close to its deadline went away because of it: the client
/// side enforces the same deadline and resets the call a moment before the server's timer.
const DEADLINE_SLACK: Duration = Duration::from_millis(50);

/// Records the task a call works on, on the call's server span (when spans' attributes are
/// recorded: [`span_attributes`]).
pub(crate) fn record_task(task_id: &str, context_id: &str) {
    if span_attributes() {
        let span = tracing::Span::current();
        span.record("a2a.task.id", task_id);
        span.record("a2a.context.id", context_id);
    }
}

/// Records the state a call leaves its task in, on the call's server span (when spans'
/// attributes are recorded).
pub(crate) fn record_state(state: crate::pb::a2a::TaskState) {
    if span_attributes() {
        tracing::Span::current().record("a2a.task.state", state.as_str_name());
    }
}

/// Cancels a task when the unary call waiting for it goes away before it settles, after
/// the disconnect grace ([`ServeConfig::disconnect_grace`](crate::ServeConfig::disconnect_grace):
/// how long a retry of the same message, e.g. the gateway's or the client's after a broken
/// connection, has to re-attach to it; [`Runtime::send`] answers a repeated message with its
/// task) and only if no retry of its message re-attached to it by then.
/// The caller's deadline is enforced by the execution itself all the same.
struct CancelOnDrop {
    rt: Arc<Runtime>,
    task: Option<Arc<LiveTask>>,
    deadline: Option<Instant>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let reason = match self.deadline {
                Some(d) if Instant::now() + DEADLINE_SLACK >= d => CancelReason::Deadline,
                _ => CancelReason::Disconnected,
            };
            let rt = self.rt.clone();
            tokio::spawn(async move {
                if reason == CancelReason::Disconnected {
                    tokio::time::sleep(rt.config.disconnect_grace).await;
                    if task.lock().reattached {
                        tracing::debug!(
                            task.id = %task.id,
                            "the caller went away, but a retry re-attached: not canceled"
                        );
                        return;
                    }
                }
                let _ = rt.cancel_live(&task, reason).await;
            });
        }
    }
}

/// SendMessage (both services): creates or continues the task and, unless
/// `return_immediately`, waits until it is terminal or interrupted.
///
/// The caller's deadline bounds the wait and the task: when it expires the task is canceled and
/// the call fails with DEADLINE_EXCEEDED. If the caller disconnects first, the task is canceled
/// after the disconnect grace unless a retry of the same message re-attached to it.
pub(crate) async fn send_and_wait(
    rt: &Arc<Runtime>,
    call: CallInfo,
    request: SendMessageRequest,
) -> Result<Task, RpcError> {
    let config = request.configuration.clone().unwrap_or_default();
    let history_length = config.history_length;
    if config.return_immediately {
        let mut started = rt.send(request, call, None, Follow::Nothing).await?;
        record_task(&started.task.id, &started.task.context_id);
        started.durable().await?;
        let mut snapshot = started
            .snapshot
            .take()
            .ok_or_else(|| RpcError::Internal("no snapshot of the accepted task".into()))?;
        record_state(snapshot.state());
        task::trim_history(
            &mut snapshot,
            history_length.or(rt.config.default_history_length),
        );
        return Ok(snapshot);
    }
    let deadline = call.deadline;
    let mut started = rt.send(request, call, deadline, Follow::Settle).await?;
    record_task(&started.task.id, &started.task.context_id);
    let mut guard = CancelOnDrop {
        rt: rt.clone(),
        task: Some(started.task.clone()),
        deadline,
    };
    let wait = started.settle();
    let waited = match deadline {
        Some(d) => tokio::time::timeout_at(d, wait).await,
        None => Ok(wait.await),
    };
    guard.task = None;
    let expired =
        || RpcError::DeadlineExceeded("the deadline expired; the task was canceled".into());
    match waited {
        Err(_) => {
            let _ = rt.cancel_live(&started.task, CancelReason::Deadline).await;
            Err(expired())
        }
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => {
            let mut snapshot = started.task.snapshot();
            record_state(snapshot.state());
            if snapshot.state() == crate::pb::a2a::TaskState::Canceled
                && deadline.is_some_and(|d| Instant::now() + Duration::from_millis(1) >= d)
            {
                return Err(expired());
            }
            task::trim_history(
                &mut snapshot,
                history_length.or(rt.config.default_history_length),
            );
            Ok(snapshot)
        }
    }
}

/// SendMessage on either service: validates, offers the message to the agent's direct reply,
/// else sends and waits ([`send_and_wait`]).
pub(crate) async fn unary_send(
    rt: &Arc<Runtime>,
    call: CallInfo,
    request: SendMessageRequest,
) -> Result<tonic::Response<SendMessageResponse>, Status> {
    validate::send_request(&request)?;
    if let Some(message) = rt.reply(&request, &call).await? {
        return Ok(tonic::Response::new(SendMessageResponse {
            payload: Some(send_message_response::Payload::Message(message)),
        }));
    }
    let task = send_and_wait(rt, call, request).await?;
    Ok(tonic::Response::new(SendMessageResponse {
        payload: Some(send_message_response::Payload::Task(task)),
    }))
}

/// SendStreamingMessage on either service: validates, then streams the agent's direct reply
/// (one message event, then the end: A2A v1.0.1 §3.1.2) or the task's events.
pub(crate) async fn streaming_send(
    rt: &Arc<Runtime>,
    call: CallInfo,
    request: SendMessageRequest,
) -> Result<tonic::Response<EventStream>, Status> {
    validate::send_request(&request)?;
    if let Some(message) = rt.reply(&request, &call).await? {
        return Ok(tonic::Response::new(reply_stream(message)));
    }
    let history_length = request
        .configuration
        .as_ref()
        .and_then(|c| c.history_length);
    let deadline = call.deadline;
    let started = rt.send(request, call, deadline, Follow::Stream).await?;
    Ok(tonic::Response::new(event_stream(
        rt,
        started.initial,
        started.subscription.expect("Follow::Stream subscribes"),
        history_length,
    )))
}

/// The stream of a direct reply: exactly one message event.
pub(crate) fn reply_stream(message: Message) -> EventStream {
    Box::pin(stream::once(async move {
        Ok(StreamResponse {
            payload: Some(stream_response::Payload::Message(message)),
        })
    }))
}

/// What [`event_stream`] carries from one event to the next.
struct Cursor {
    sub: Subscription,
    /// The state the client last saw, for `milestone`.
    state: Option<crate::pb::a2a::TaskState>,
    shutdown: tokio_util::sync::CancellationToken,
    /// The call's server span, which lives as long as the stream: milestones become its events.
    span: tracing::Span,
    history_length: Option<i32>,
}

/// The event stream of a streaming RPC: the initial snapshot (if any), then every event of the
/// subscription; ends after the task settles, or with UNAVAILABLE when the server shuts down.
pub(crate) fn event_stream(
    rt: &Runtime,
    initial: Option<(Task, u64)>,
    subscription: Subscription,
    history_length: Option<i32>,
) -> EventStream {
    let history_length = history_length.or(rt.config.default_history_length);
    let state = initial.as_ref().map(|(t, _)| t.state());
    let first = initial.map(|(mut t, seq)| {
        task::trim_history(&mut t, history_length);
        task::set_sequence(&mut t.metadata, seq);
        Ok(StreamResponse {
            payload: Some(stream_response::Payload::Task(t)),
        })
    });
    let cursor = Cursor {
        sub: subscription,
        state,
        shutdown: rt.shutdown.clone(),
        span: tracing::Span::current(),
        history_length,
    };
    // The cursor moves from one event to the next: nothing is cloned per event.
    let rest = stream::unfold(Some(cursor), |c| async move {
        let mut c = c?;
        tokio::select! {
            biased;
            next = c.sub.next() => match next? {
                Ok(d) => {
                    milestone(&c.span, d.seq, &d.event, &mut c.state);
                    let mut event = d.event;
                    if let Some(stream_response::Payload::Task(t)) = &mut event.payload {
                        task::trim_history(t, c.history_length);
                    }
                    Some((Ok(event), Some(c)))
                }
                Err(e) => Some((Err(Status::from(e)), None)),
            },
            () = c.shutdown.cancelled() => Some((
                Err(Status::unavailable(
                    "the server is shutting down; resubscribe with last-event-id",
                )),
                None,
            )),
        }
    });
    Box::pin(stream::iter(first).chain(rest))
}

/// A span event for a change of the task's state (`last`: the state the stream carried last)
/// or a finished artifact — not one per progress update or chunk: a long stream's span would
/// otherwise get an event per event, which the tracer drops past its limit anyway and which
/// cost 5 % of the agent's CPU per streamed event (`bench/RESULTS.md` §10) — and the task's
/// state on the span once it settles.
fn milestone(
    span: &tracing::Span,
    seq: u64,
    event: &StreamResponse,
    last: &mut Option<crate::pb::a2a::TaskState>,
) {
    match &event.payload {
        Some(stream_response::Payload::StatusUpdate(u)) => {
            let state = u
                .status
                .as_ref()
                .and_then(|s| crate::pb::a2a::TaskState::try_from(s.state).ok())
                .unwrap_or_default();
            if last.replace(state) == Some(state) {
                return;
            }
            tracing::debug!(parent: span, seq, a2a.task.state = state.as_str_name(), "task status");
            if state.settles() && span_attributes() {
                span.record("a2a.task.state", state.as_str_name());
            }
        }
        Some(stream_response::Payload::ArtifactUpdate(u)) if u.last_chunk => {
            let name = u.artifact.as_ref().map_or("", |a| a.name.as_str());
            tracing::debug!(parent: span, seq, artifact = name, "artifact complete");
        }
        Some(stream_response::Payload::Task(t)) => {
            *last = Some(t.state());
            if span_attributes() {
                span.record("a2a.task.id", t.id.as_str());
                span.record("a2a.context.id", t.context_id.as_str());
            }
        }
        _ => {}
    }
}

/// The message of a request that does not decode.
pub(crate) const UNDECODABLE: &str = "invalid request: the message does not decode as protobuf (malformed, cut short, or JSON values nested too deep)";

/// [`UNDECODABLE`] percent-encoded as a `grpc-message` header value.
pub(crate) const UNDECODABLE_ENCODED: &str = "invalid%20request:%20the%20message%20does%20not%20decode%20as%20protobuf%20(malformed,%20cut%20short,%20or%20JSON%20values%20nested%20too%20deep)";

/// Whether a status message (plain or percent-encoded) is tonic's report of a request it
/// cannot read: a message that does not decode, a frame cut short, a bad compression flag.
pub(crate) fn is_decode_failure(message: &str) -> bool {
    let message = message.replace("%20", " ");
    [
        "failed to decode Protobuf message",
        "Unexpected EOF decoding stream",
        "protocol error: received message with",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

/// Remaps tonic's decode errors: a size error (OUT_OF_RANGE) becomes RESOURCE_EXHAUSTED, as
/// other gRPC implementations report an oversize message, and a message that does not decode
/// (INTERNAL in tonic) becomes INVALID_ARGUMENT: the sender's fault.
pub(crate) fn decode_error(status: Status) -> Status {
    if status.code() == tonic::Code::OutOfRange && status.message().contains("too large") {
        Status::resource_exhausted(status.message().to_owned())
    } else if status.code() == tonic::Code::Internal && is_decode_failure(status.message()) {
        Status::invalid_argument(UNDECODABLE)
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_are_the_callers_fault() {
        assert_eq!(UNDECODABLE.replace(' ', "%20"), UNDECODABLE_ENCODED);
        let s = decode_error(Status::internal(
            "failed to decode Protobuf message: Value.kind: recursion limit reached",
        ));
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), UNDECODABLE);
        let s = decode_error(Status::internal("Unexpected EOF decoding stream."));
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let s = decode_error(Status::internal("something else"));
        assert_eq!(s.code(), tonic::Code::Internal);
    }

    /// Counts the events recorded while it is the subscriber.
    struct Events(Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_stream_span_gets_an_event_per_state_change_not_per_update() {
        use crate::pb::a2a::{
            Artifact, TaskArtifactUpdateEvent, TaskState, TaskStatus, TaskStatusUpdateEvent,
        };
        use tracing_subscriber::layer::SubscriberExt as _;

        let status = |state: TaskState| StreamResponse {
            payload: Some(stream_response::Payload::StatusUpdate(
                TaskStatusUpdateEvent {
                    status: Some(TaskStatus {
                        state: state as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        };
        let chunk = |last_chunk| StreamResponse {
            payload: Some(stream_response::Payload::ArtifactUpdate(
                TaskArtifactUpdateEvent {
                    artifact: Some(Artifact::default()),
                    last_chunk,
                    ..Default::default()
                },
            )),
        };
        let stream = [
            status(TaskState::Working),
            status(TaskState::Working),
            chunk(false),
            status(TaskState::Working),
            chunk(true),
            status(TaskState::Completed),
        ];
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Events(count.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("call");
            let mut last = Some(TaskState::Submitted);
            for (seq, event) in (1..).zip(&stream) {
                milestone(&span, seq, event, &mut last);
            }
        });
        // WORKING once, the finished artifact, COMPLETED.
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
