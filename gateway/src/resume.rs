//! Streams that survive an agent restart (issue 13 item 6): the upstream stream of a task
//! (SendStreamingMessage, SubscribeToTask) that breaks — the agent's process died or
//! restarted, its endpoint was ejected or drained, the connection was lost — is opened again
//! as a SubscribeToTask with `last-event-id` set to the last sequence number forwarded, on the
//! endpoint the agent's balancer picks then (a healthy one, [`switchyard::AgentRef`]). The
//! client (SSE, on either front) sees one stream: no error, no gap, no duplicate.
//!
//! - Only streams whose events carry the runtime's sequence numbers
//!   (`metadata["switchyard.sequence"]`) and a task id are resumed; a third-party agent's
//!   stream fails as before.
//! - A stream is broken when it fails with UNAVAILABLE or with a status tonic made from a
//!   transport error (it carries the error as its source), or ends before the task settled (a
//!   final state or an interruption was forwarded). Any other status is the agent's answer and
//!   is passed on.
//! - At most [`ATTEMPTS`] re-subscriptions per break, [`BACKOFF`] doubling up to
//!   [`MAX_BACKOFF`] (with jitter) between them, never past the client's deadline; each open
//!   is bounded by [`OPEN_TIMEOUT`]. After the last one, the stream ends with UNAVAILABLE
//!   (retryable: the SSE `event: error` carries UNAVAILABLE, HTTP 503 on REST).
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

/// Re-subscriptions per break before the stream fails with UNAVAILABLE.
pub(crate) const ATTEMPTS: u32 = 12;
/// Wait before the first re-subscription; doubles after each failed one.
pub(crate) const BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two re-subscriptions (12 attempts span about 10 s: an agent restart).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait for a re-subscription's response headers.
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

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
    };
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        let item = s.next().await?;
        // After an error the stream ends.
        let keep = item.is_ok().then_some(s);
        Some((item, keep))
    }))
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
                None => Status::unavailable("the agent's stream ended before the task settled"),
            };
            if let Err(status) = self.resubscribe(cause).await {
                return Some(Err(status));
            }
        }
    }

    /// Notes the task id and whether the task settled.
    fn observe(&mut self, event: &StreamResponse) {
        let (id, state) = match &event.payload {
            Some(Payload::Task(t)) => (&t.id, t.status.as_ref().map(|s| s.state)),
            Some(Payload::StatusUpdate(u)) => (&u.task_id, u.status.as_ref().map(|s| s.state)),
            Some(Payload::ArtifactUpdate(u)) => (&u.task_id, None),
            Some(Payload::Message(_)) | None => {
                self.settled = true;
                return;
            }
        };
        if self.task_id.is_none() && !id.is_empty() {
            self.task_id = Some(id.clone());
        }
        if let Some(state) = state.and_then(|s| TaskState::try_from(s).ok())
            && (state.is_terminal() || state.is_interrupted())
        {
            self.settled = true;
        }
    }

    /// Opens the stream again after the last forwarded event, or says why it cannot be.
    async fn resubscribe(&mut self, cause: Status) -> Result<(), Status> {
        let (Some(task_id), Some(after)) = (self.task_id.clone(), self.last_seq) else {
            return Err(cause);
        };
        let name = self.up.agent.name().to_owned();
        let deadline = self.up.forward.stream_deadline();
        let mut backoff = BACKOFF;
        tracing::info!(
            agent = %name,
            task.id = %task_id,
            endpoint = %self.up.endpoint,
            after,
            cause = %cause.message(),
            "upstream stream broke; re-subscribing"
        );
        let mut last = cause;
        for attempt in 1..=ATTEMPTS {
            let delay = jitter(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
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
                OPEN_TIMEOUT,
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
             after {ATTEMPTS} attempts ({}); retry with SubscribeToTask",
            last.message()
        )))
    }
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

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(80) && d <= Duration::from_millis(120));
        }
    }
}
