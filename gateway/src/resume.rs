//! Streams that survive an agent restart (issue 13 item 6): the upstream stream of a task
//! (SendStreamingMessage, SubscribeToTask, and the tasks of a WebSocket session's Converse
//! call) that breaks — the agent's process died or restarted, its endpoint was ejected or
//! drained, the connection was lost — is opened again as a SubscribeToTask with
//! `last-event-id` set to the last sequence number forwarded, on the endpoint the agent's
//! balancer picks then (a healthy one, [`switchyard::AgentRef`]). The client (SSE on either
//! front, or a WebSocket session) sees one stream per task: no error, no gap, no duplicate.
//!
//! One mechanism for every front: [`resumable`] wraps a task's open stream (SSE);
//! [`resume_after`] continues a task whose events came through another call that broke (the
//! Converse call of a WebSocket session, [`crate::ws`]); both re-subscribe with the same rules.
//!
//! - Only streams whose events carry the runtime's sequence numbers
//!   (`metadata["switchyard.sequence"]`) and a task id are resumed; a third-party agent's
//!   stream fails as before.
//! - A stream is broken when it fails with UNAVAILABLE or with a status tonic made from a
//!   transport error (it carries the error as its source), or ends before the task settled (a
//!   final state or an interruption was forwarded). Any other status is the agent's answer and
//!   is passed on.
//! - At most [`StreamResume::attempts`] re-subscriptions per break,
//!   [`StreamResume::backoff`] doubling up to [`StreamResume::max_backoff`] (±20 % jitter)
//!   between them, never past the client's deadline; each open is bounded by
//!   [`StreamResume::open_timeout`]. After the last one, the stream ends with UNAVAILABLE
//!   (retryable: the SSE `event: error` carries UNAVAILABLE, HTTP 503 on REST; a WebSocket
//!   session gets an `error` frame with code 14). 0 attempts turns resuming off.
//! - Events at or below the last forwarded sequence are dropped (a duplicate-free stream even
//!   if an agent replays).
//! - Every break and every failed open counts as a failure of that endpoint in its outlier
//!   state, the first event of a stream as a success ([`switchyard::AgentRef::report_endpoint`]).
//! - Metrics: `switchyard_gateway_stream_resumes_total{agent, outcome=resumed|gave_up}`.

use std::{sync::Arc, time::Duration};

use futures::StreamExt as _;
use switchyard::{
    AgentRef,
    pb::a2a::{StreamResponse, SubscribeToTaskRequest, TaskState, stream_response::Payload},
    telemetry::metrics::STREAM_RESUMES,
};
use tokio::time::Instant;
use tonic::{Code, Status, metadata::MetadataValue};
use tracing::Instrument as _;

use crate::{
    call::Events,
    lanes::Lanes,
    upstream::{Forward, record_outcome, traced},
};

/// How a broken upstream stream is resumed ([`GatewayConfig::stream_resume`]
/// (crate::GatewayConfig::stream_resume); the README's "Resilience").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamResume {
    /// Re-subscriptions per break before the stream fails with UNAVAILABLE; 0 turns resuming
    /// off (a broken stream fails at once with UNAVAILABLE). Default 12, at most 1000.
    pub attempts: u32,
    /// Wait before the first re-subscription; doubles after each failed one (±20 % jitter).
    /// Default 100 ms; more than zero and at most `max_backoff`.
    pub backoff: Duration,
    /// Longest wait between two re-subscriptions. Default 1 s (12 attempts span about 10 s:
    /// an agent restart); at most 1 minute.
    pub max_backoff: Duration,
    /// Longest wait for a re-subscription's response headers. Default 5 s; more than zero and
    /// at most 1 minute.
    pub open_timeout: Duration,
}

impl Default for StreamResume {
    fn default() -> Self {
        Self {
            attempts: 12,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            open_timeout: Duration::from_secs(5),
        }
    }
}

/// Bounds of [`StreamResume`]: beyond them a setting is a mistake (a stream held for hours).
const MAX_ATTEMPTS: u32 = 1000;
const MAX_WAIT: Duration = Duration::from_secs(60);

impl StreamResume {
    /// No resuming: a broken stream fails at once with UNAVAILABLE.
    pub const OFF: Self = Self {
        attempts: 0,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        open_timeout: Duration::from_secs(5),
    };

    /// Checks the bounds given on each field.
    ///
    /// # Errors
    /// A message naming the setting (`stream_resume.<field>`), its value and its bound.
    pub fn validate(&self) -> Result<(), String> {
        if self.attempts > MAX_ATTEMPTS {
            return Err(format!(
                "stream_resume.attempts ({}) must be at most {MAX_ATTEMPTS} (0 turns resuming off)",
                self.attempts
            ));
        }
        for (name, d) in [
            ("backoff", self.backoff),
            ("max_backoff", self.max_backoff),
            ("open_timeout", self.open_timeout),
        ] {
            if d.is_zero() || d > MAX_WAIT {
                return Err(format!(
                    "stream_resume.{name} ({d:?}) must be longer than zero and at most {MAX_WAIT:?}"
                ));
            }
        }
        if self.backoff > self.max_backoff {
            return Err(format!(
                "stream_resume.backoff ({:?}) must not exceed stream_resume.max_backoff ({:?})",
                self.backoff, self.max_backoff
            ));
        }
        Ok(())
    }
}

/// The gRPC service of the re-subscriptions.
const A2A_SERVICE: &str = "lf.a2a.v1.A2AService";

/// What a re-subscription needs: the agent, its lanes, the request's forwarded context.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) agent: AgentRef,
    pub(crate) lanes: Arc<Lanes>,
    pub(crate) forward: Forward,
    /// The endpoint the stream goes to now (`host:port`).
    pub(crate) endpoint: String,
    /// The request's tenant, for the re-subscriptions.
    pub(crate) tenant: String,
    /// Attempts and backoff.
    pub(crate) settings: StreamResume,
}

/// State of one resumable stream.
struct Resumable {
    up: Upstream,
    current: Events,
    task_id: Option<String>,
    last_seq: Option<u64>,
    /// A final event (terminal or interrupted state, or a direct message) was forwarded.
    settled: bool,
    /// The current endpoint's success was reported (once per stream).
    reported: bool,
    /// Why the stream broke before this state was made ([`resume_after`]).
    broke: Option<Status>,
}

/// `stream`, resumed on another (or the restarted) endpoint when it breaks.
pub(crate) fn resumable(stream: Events, up: Upstream) -> Events {
    let state = Resumable {
        up,
        current: stream,
        task_id: None,
        last_seq: None,
        settled: false,
        reported: false,
        broke: None,
    };
    run(state)
}

/// The rest of task `task_id`'s stream, whose events up to sequence `after` were forwarded
/// through a call that broke with `cause` (the Converse call of a WebSocket session): a
/// re-subscription after `after`, then the same as [`resumable`]. The break was already
/// reported to the endpoint's outlier state.
pub(crate) fn resume_after(up: Upstream, task_id: String, after: u64, cause: Status) -> Events {
    let state = Resumable {
        up,
        current: Box::pin(futures::stream::empty()),
        task_id: Some(task_id),
        last_seq: Some(after),
        settled: false,
        reported: true,
        broke: Some(cause),
    };
    run(state)
}

fn run(state: Resumable) -> Events {
    // Boxed: `unfold` holds its state twice (between items, and inside the pending future).
    Box::pin(futures::stream::unfold(
        Some(Box::new(state)),
        |state| async move {
            let mut s = state?;
            let item = s.next().await?;
            // After an error the stream ends.
            let keep = item.is_ok().then_some(s);
            Some((item, keep))
        },
    ))
}

/// Whether `status` means the stream broke (the agent or the connection went away) rather
/// than the agent's answer.
pub(crate) fn broken(status: &Status) -> bool {
    if status.code() == Code::Cancelled && status.message() == "Timeout expired" {
        // The client's deadline.
        return false;
    }
    status.code() == Code::Unavailable || std::error::Error::source(status).is_some()
}

impl Resumable {
    async fn next(&mut self) -> Option<Result<StreamResponse, Status>> {
        loop {
            let cause = match self.current.next().await {
                Some(Ok(event)) => {
                    if !self.reported {
                        self.reported = true;
                        self.up.agent.report_endpoint(&self.up.endpoint, false);
                    }
                    let seq = switchyard::task::sequence_of(&event);
                    if let (Some(s), Some(last)) = (seq, self.last_seq)
                        && s <= last
                    {
                        continue;
                    }
                    if seq.is_some() {
                        self.last_seq = seq;
                    }
                    self.observe(&event);
                    return Some(Ok(event));
                }
                Some(Err(status)) if !broken(&status) => return Some(Err(status)),
                Some(Err(status)) => {
                    self.up.agent.report_endpoint(&self.up.endpoint, true);
                    status
                }
                None if self.settled || self.last_seq.is_none() => return None,
                None => self.broke.take().unwrap_or_else(|| {
                    Status::unavailable("the agent's stream ended before the task settled")
                }),
            };
            // Boxed: the re-subscription's state (a gRPC call, timers) is large and rare;
            // inline, every idle stream would carry it.
            if let Err(status) = Box::pin(self.resubscribe(cause)).await {
                return Some(Err(status));
            }
        }
    }

    /// Notes the task id and whether the task settled.
    fn observe(&mut self, event: &StreamResponse) {
        let (id, settled) = observe(event);
        if self.task_id.is_none()
            && let Some(id) = id
        {
            self.task_id = Some(id.to_owned());
        }
        self.settled |= settled;
    }

    /// Opens the stream again after the last forwarded event, or says why it cannot be.
    async fn resubscribe(&mut self, cause: Status) -> Result<(), Status> {
        let (Some(task_id), Some(after)) = (self.task_id.clone(), self.last_seq) else {
            return Err(cause);
        };
        let name = self.up.agent.name().to_owned();
        let deadline = self.up.forward.stream_deadline();
        let settings = self.up.settings;
        let mut backoff = settings.backoff;
        tracing::info!(
            agent = %name,
            task.id = %task_id,
            endpoint = %self.up.endpoint,
            after,
            cause = %cause.message(),
            "upstream stream broke; re-subscribing"
        );
        let mut last = cause;
        for attempt in 1..=settings.attempts {
            let delay = jitter(backoff);
            backoff = (backoff * 2).min(settings.max_backoff);
            if deadline.is_some_and(|at| Instant::now() + delay >= at) {
                return Err(Status::deadline_exceeded(format!(
                    "the stream of task {task_id} broke and the deadline leaves no time to \
                     resume it ({})",
                    last.message()
                )));
            }
            tokio::time::sleep(delay).await;
            let (client, slot) = self.up.lanes.client(&self.up.agent);
            let endpoint = client.address().to_owned();
            let (f, span) =
                self.up
                    .forward
                    .client_span(A2A_SERVICE, "SubscribeToTask", &name, &endpoint);
            let mut req = f.streaming(SubscribeToTaskRequest {
                tenant: self.up.tenant.clone(),
                id: task_id.clone(),
            });
            req.metadata_mut()
                .insert(switchyard::LAST_EVENT_ID, MetadataValue::from(after));
            let open = tokio::time::timeout(
                settings.open_timeout,
                client
                    .streams()
                    .subscribe_to_task(req)
                    .instrument(span.clone()),
            )
            .await
            .unwrap_or_else(|_| Err(Status::unavailable("the re-subscription timed out")));
            match open {
                Ok(response) => {
                    record_outcome(&span, Code::Ok);
                    tracing::info!(
                        agent = %name,
                        task.id = %task_id,
                        endpoint = %endpoint,
                        attempt,
                        after,
                        "stream resumed"
                    );
                    metrics::counter!(STREAM_RESUMES, "agent" => name, "outcome" => "resumed")
                        .increment(1);
                    self.current = Box::pin(slot.hold(traced(response.into_inner(), span)));
                    self.up.endpoint = endpoint;
                    self.reported = false;
                    return Ok(());
                }
                Err(status) => {
                    record_outcome(&span, status.code());
                    if !broken(&status) {
                        // The agent's answer (e.g. NOT_FOUND: the restarted agent does not
                        // have the task): nothing to wait for.
                        return Err(status);
                    }
                    self.up.agent.report_endpoint(&endpoint, true);
                    tracing::debug!(
                        agent = %name,
                        endpoint = %endpoint,
                        attempt,
                        error = %status.message(),
                        "re-subscription failed"
                    );
                    last = status;
                }
            }
        }
        metrics::counter!(STREAM_RESUMES, "agent" => name.clone(), "outcome" => "gave_up")
            .increment(1);
        Err(Status::unavailable(format!(
            "the stream of task {task_id} from agent {name:?} broke and could not be resumed \
             after {} attempts ({}); retry with SubscribeToTask",
            settings.attempts,
            last.message()
        )))
    }
}

/// The task id an event names (if any), and whether it settles its stream: a terminal or
/// interrupted state, or a direct message (no task). Shared by SSE and WebSocket streams.
pub(crate) fn observe(event: &StreamResponse) -> (Option<&str>, bool) {
    let (id, state) = match &event.payload {
        Some(Payload::Task(t)) => (&t.id, t.status.as_ref().map(|s| s.state)),
        Some(Payload::StatusUpdate(u)) => (&u.task_id, u.status.as_ref().map(|s| s.state)),
        Some(Payload::ArtifactUpdate(u)) => (&u.task_id, None),
        Some(Payload::Message(_)) | None => return (None, true),
    };
    let settled = state
        .and_then(|s| TaskState::try_from(s).ok())
        .is_some_and(|s| s.is_terminal() || s.is_interrupted());
    ((!id.is_empty()).then_some(id.as_str()), settled)
}

/// `d` ± 20 %, so that the streams of one crashed agent do not come back in lockstep.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_break_a_stream_and_answers_do_not() {
        let mut lost = Status::unknown("error reading a body from connection");
        lost.set_source(Arc::new(std::io::Error::other("reset")));
        assert!(broken(&lost));
        assert!(broken(&Status::unavailable("draining")));
        assert!(!broken(&Status::not_found("no task")));
        assert!(!broken(&Status::cancelled("Timeout expired")));
        assert!(!broken(&Status::deadline_exceeded("late")));
    }

    fn status_event(seq: u64, state: TaskState) -> Result<StreamResponse, Status> {
        let mut md = pbjson_types::Struct::default();
        md.fields.insert(
            "switchyard.sequence".into(),
            pbjson_types::Value {
                kind: Some(pbjson_types::value::Kind::NumberValue(seq as f64)),
            },
        );
        Ok(StreamResponse {
            payload: Some(Payload::StatusUpdate(
                switchyard::pb::a2a::TaskStatusUpdateEvent {
                    task_id: "t".into(),
                    status: Some(switchyard::pb::a2a::TaskStatus {
                        state: state as i32,
                        ..Default::default()
                    }),
                    metadata: Some(md),
                    ..Default::default()
                },
            )),
        })
    }

    fn upstream_of(agent: &AgentRef) -> Upstream {
        Upstream {
            agent: agent.clone(),
            lanes: Arc::default(),
            forward: Forward::new(
                &http::HeaderMap::new(),
                None,
                crate::layers::deadline::Deadline::default(),
            ),
            endpoint: "127.0.0.1:9".into(),
            tenant: String::new(),
            settings: StreamResume::default(),
        }
    }

    fn agent() -> AgentRef {
        let config = switchyard::RegistryConfig::from_env_value("a=127.0.0.1:9").expect("config");
        switchyard::Registry::new(&config)
            .expect("registry")
            .agent("a")
            .expect("agent")
    }

    fn seqs(items: &[Result<StreamResponse, Status>]) -> Vec<Option<u64>> {
        items
            .iter()
            .map(|i| i.as_ref().ok().and_then(switchyard::task::sequence_of))
            .collect()
    }

    #[tokio::test]
    async fn replayed_events_are_dropped_and_a_settled_stream_ends() {
        let agent = agent();
        let items = vec![
            status_event(1, TaskState::Working),
            status_event(2, TaskState::Working),
            status_event(2, TaskState::Working),
            status_event(1, TaskState::Working),
            status_event(3, TaskState::Completed),
        ];
        let out: Vec<_> = resumable(Box::pin(futures::stream::iter(items)), upstream_of(&agent))
            .collect()
            .await;
        assert_eq!(seqs(&out), [Some(1), Some(2), Some(3)]);
    }

    #[tokio::test]
    async fn the_agents_own_error_is_passed_on_and_ends_the_stream() {
        let agent = agent();
        let items = vec![
            status_event(1, TaskState::Working),
            Err(Status::not_found("no such task")),
            status_event(2, TaskState::Working),
        ];
        let out: Vec<_> = resumable(Box::pin(futures::stream::iter(items)), upstream_of(&agent))
            .collect()
            .await;
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].as_ref().expect_err("the error").code(),
            Code::NotFound
        );
    }

    #[tokio::test]
    async fn a_stream_without_sequence_numbers_is_not_resumed() {
        let agent = agent();
        let mut lost = Status::unknown("connection reset");
        lost.set_source(Arc::new(std::io::Error::other("reset")));
        let items = vec![
            Ok(StreamResponse {
                payload: Some(Payload::StatusUpdate(Default::default())),
            }),
            Err(lost),
        ];
        let out: Vec<_> = resumable(Box::pin(futures::stream::iter(items)), upstream_of(&agent))
            .collect()
            .await;
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].as_ref().expect_err("the break").code(),
            Code::Unknown
        );
    }

    #[tokio::test]
    async fn with_resuming_off_a_broken_session_task_fails_at_once_with_unavailable() {
        let agent = agent();
        let up = Upstream {
            settings: StreamResume::OFF,
            ..upstream_of(&agent)
        };
        let started = Instant::now();
        let out: Vec<_> = resume_after(up, "t".into(), 7, Status::unavailable("reset"))
            .collect()
            .await;
        assert_eq!(out.len(), 1);
        let e = out[0].as_ref().expect_err("the give-up");
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.message().contains("retry with SubscribeToTask"), "{e:?}");
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn settings_out_of_bounds_are_refused_by_name() {
        assert_eq!(StreamResume::default().validate(), Ok(()));
        assert_eq!(StreamResume::OFF.validate(), Ok(()));
        let bad = |s: StreamResume, word: &str| {
            let e = s.validate().expect_err("refused");
            assert!(e.contains(word), "{e}");
        };
        let d = StreamResume::default();
        bad(
            StreamResume {
                attempts: 5000,
                ..d
            },
            "stream_resume.attempts",
        );
        bad(
            StreamResume {
                backoff: Duration::ZERO,
                ..d
            },
            "stream_resume.backoff",
        );
        bad(
            StreamResume {
                max_backoff: Duration::from_secs(3600),
                ..d
            },
            "stream_resume.max_backoff",
        );
        bad(
            StreamResume {
                backoff: Duration::from_secs(2),
                ..d
            },
            "must not exceed",
        );
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(80) && d <= Duration::from_millis(120));
        }
    }
}
