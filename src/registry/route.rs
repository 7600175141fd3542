//! [`Router`]: the transport of an agent's clients — each call goes to the endpoint the
//! balancer picks, its outcome feeds the endpoint's outlier state, and a call that may be
//! made again is retried ([`crate::resilience`] has the rules).

use std::{
    error::Error as StdError,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tonic::{Code, Status, body::Body};
use tower::{BoxError, Service as _, ServiceExt as _};

use super::{
    balance::{self, Backend},
    pool::Pool,
};
use crate::{
    deadline::{encode_grpc_timeout, parse_grpc_timeout},
    resilience::{
        ResilienceConfig,
        outlier::{Change, Verdict},
        retry::{self, Kind, RetryBudget},
    },
    telemetry::metrics::{PUSHBACK, RETRIES, RETRY_BUDGET_EXHAUSTED},
};

/// Where an agent's endpoints come from.
#[derive(Debug)]
pub(crate) enum Endpoints {
    /// `host:port` endpoints, fixed.
    Fixed(Backends),
    /// `dns:///` endpoints.
    Discovered(Arc<Pool>),
}

/// A snapshot of an agent's endpoints: taken on every call, so sharing it costs one reference
/// count, not a vector.
pub(crate) type Backends = Arc<[Arc<Backend>]>;

impl Endpoints {
    /// The endpoints now.
    pub(crate) fn snapshot(&self) -> Backends {
        match self {
            Self::Fixed(b) => b.clone(),
            Self::Discovered(pool) => pool.backends(),
        }
    }
}

/// The calls of one agent: balancing, outlier ejection and retries over its endpoints.
#[derive(Debug)]
pub(crate) struct Router {
    agent: String,
    pub(crate) endpoints: Endpoints,
    pub(crate) config: ResilienceConfig,
    budget: RetryBudget,
}

/// Why a failed attempt may be made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    /// It never reached an agent.
    Unsent,
    /// The agent answered UNAVAILABLE.
    Unavailable,
    /// The connection broke after the request went out.
    Broken,
    /// The agent is busy and said when to come back.
    Pushback,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Self::Unsent => "unsent",
            Self::Unavailable => "unavailable",
            Self::Broken => "broken",
            Self::Pushback => "pushback",
        }
    }
}

/// What one attempt's outcome means.
#[derive(Debug)]
struct Assessment {
    verdict: Verdict,
    /// Why it may be retried (subject to the call's kind), if it may.
    retry: Option<Reason>,
    /// The agent's pushback: `Some(Ok)` wait that long, `Some(Err)` do not retry.
    pushback: Option<Result<Duration, ()>>,
}

type Outcome = Result<http::Response<Body>, BoxError>;

impl Router {
    pub(crate) fn new(agent: &str, endpoints: Endpoints, config: ResilienceConfig) -> Self {
        Self {
            agent: agent.to_owned(),
            budget: config.retry.budget(),
            endpoints,
            config,
        }
    }

    /// The endpoint the balancer would pick for a call now (without making it).
    pub(crate) fn peek(&self) -> Option<String> {
        let backends = self.endpoints.snapshot();
        let picked = balance::pick(&backends)?;
        if picked.probe {
            // Not a call: give the probe back to a real one.
            picked.backend.outlier.abandon_probe();
        }
        Some(picked.backend.addr.clone())
    }

    /// Records the outcome of a call that went around the router to endpoint `addr` (a
    /// caller with its own connections, e.g. the gateway's stream lanes) in that endpoint's
    /// outlier state; an unknown address is ignored.
    pub(crate) fn record_external(&self, addr: &str, verdict: Verdict) {
        let backends = self.endpoints.snapshot();
        if let Some(backend) = backends.iter().find(|b| b.addr == addr) {
            self.record(&backends, backend, verdict);
        }
    }

    /// Records `verdict` in `backend`'s outlier state, one of `backends` (the ejection cap
    /// counts the ejected ones), and reports an ejection or return.
    fn record(&self, backends: &[Arc<Backend>], backend: &Backend, verdict: Verdict) {
        let ejected = match verdict {
            // Only a failure can eject; the count is not needed otherwise.
            Verdict::Failure => backends.iter().filter(|b| b.outlier.is_ejected()).count(),
            Verdict::Success | Verdict::Load => 0,
        };
        match backend.outlier.record(
            verdict,
            Instant::now(),
            ejected,
            backends.len(),
            &self.config.outlier,
        ) {
            Change::Ejected(time) => backend.report_ejection(Some(time)),
            Change::Returned => backend.report_ejection(None),
            Change::None => {}
        }
    }

    /// Makes the call: picks, sends, records, and retries what may be retried.
    pub(crate) async fn call(self: Arc<Self>, request: http::Request<Body>) -> Outcome {
        // A `Uri` clone shares its bytes: the path without an allocation.
        let uri = request.uri().clone();
        let path = uri.path();
        let kind = retry::kind(path);
        let max_attempts = match kind {
            Kind::Stream => 1,
            Kind::Read | Kind::Write => self.config.retry.max_attempts.max(1),
        };
        self.budget.deposit();
        if max_attempts == 1 {
            return self.attempt(request, path, &mut Vec::new(), false).await.0;
        }
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| Instant::now() + d);
        // A read's answer is read whole within its attempt: a connection that breaks after
        // the answer's headers fails that attempt, which is made again, not the call (not
        // for sends: `retry::unary_read`).
        let whole = retry::unary_read(path);
        let (parts, body) = request.into_parts();
        let body: Bytes = body.collect().await?.to_bytes();
        // Made at the first retry: the healthy path never needs it.
        let mut backoff = None;
        let mut attempt = 1;
        // Endpoints tried so far: a retry goes elsewhere when it can (Envoy's
        // `previous_hosts` retry predicate).
        let mut tried = Vec::new();
        loop {
            let mut request = http::Request::from_parts(
                parts.clone(),
                Body::new(http_body_util::Full::new(body.clone())),
            );
            if let Some(at) = deadline.filter(|_| attempt > 1) {
                // What is left of the deadline (the first attempt carries the caller's own).
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Status::deadline_exceeded("the deadline expired").into());
                }
                if let Ok(v) = encode_grpc_timeout(left).parse() {
                    request.headers_mut().insert("grpc-timeout", v);
                }
            }
            let (outcome, assessment) = self.attempt(request, path, &mut tried, whole).await;
            let Some(reason) = assessment
                .retry
                .filter(|r| kind == Kind::Read || *r == Reason::Unsent || *r == Reason::Pushback)
            else {
                return outcome;
            };
            if attempt >= max_attempts {
                return outcome;
            }
            let delay = match assessment.pushback {
                Some(Err(())) => return outcome,
                Some(Ok(d)) => d,
                None if reason == Reason::Pushback => return outcome,
                None => backoff
                    .get_or_insert_with(|| self.config.retry.backoff())
                    .next()
                    .unwrap_or(self.config.retry.max_backoff),
            };
            if deadline.is_some_and(|at| Instant::now() + delay >= at) {
                // Never extended: a retry that cannot finish in time is not made.
                return outcome;
            }
            let method = retry::method_label(path);
            if !self.budget.withdraw() {
                metrics::counter!(RETRY_BUDGET_EXHAUSTED, "agent" => self.agent.clone(), "method" => method).increment(1);
                tracing::debug!(agent = %self.agent, method, "retry budget spent; not retrying");
                return outcome;
            }
            metrics::counter!(RETRIES, "agent" => self.agent.clone(), "method" => method, "reason" => reason.label()).increment(1);
            tracing::info!(
                agent = %self.agent,
                method,
                attempt = attempt + 1,
                reason = reason.label(),
                backoff_ms = delay.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt on the endpoint picked now, among those not in `tried` when there are
    /// any; records its outcome there, and the endpoint in `tried`. With `whole`, the answer's
    /// body is read before the attempt is judged ([`read_whole`]).
    async fn attempt(
        &self,
        request: http::Request<Body>,
        path: &str,
        tried: &mut Vec<String>,
        whole: bool,
    ) -> (Outcome, Assessment) {
        let backends = self.endpoints.snapshot();
        let picked = if tried.is_empty() {
            balance::pick(&backends)
        } else {
            let fresh: Vec<Arc<Backend>> = backends
                .iter()
                .filter(|b| !tried.contains(&b.addr))
                .cloned()
                .collect();
            balance::pick(&fresh).or_else(|| balance::pick(&backends))
        };
        let Some(picked) = picked else {
            let status = Status::unavailable(format!(
                "agent {:?} has no endpoint (its dns:/// name resolved to no address)",
                self.agent
            ));
            let assessment = Assessment {
                verdict: Verdict::Failure,
                retry: Some(Reason::Unsent),
                pushback: None,
            };
            return (Err(status.into()), assessment);
        };
        let backend = picked.backend;
        backend.picked();
        if backends.len() > 1 {
            tried.push(backend.addr.clone());
        }
        let mut transport = backend.client.transport();
        let mut outcome: Outcome = match transport.ready().await {
            Ok(t) => t.call(request).await,
            Err(e) => Err(e),
        };
        if whole {
            outcome = read_whole(outcome).await;
        }
        let assessment = assess(&outcome);
        if let Some(p) = assessment.pushback {
            metrics::counter!(PUSHBACK, "agent" => self.agent.clone(), "method" => retry::method_label(path), "retry" => if p.is_ok() { "true" } else { "false" }).increment(1);
        }
        self.record(&backends, &backend, assessment.verdict);
        (outcome, assessment)
    }
}

/// `outcome` with its answer's body read to the end (message and trailers), so that a
/// connection that breaks after the headers is the attempt's failure (a broken connection,
/// retried for a read) and not one the caller meets while decoding. A trailers-only answer
/// (`grpc-status` in the headers) has no body to read.
///
/// For unary reads only: gRPC commits a call at the response headers (gRFC A6) because what
/// a caller has seen cannot be taken back; a read's answer not yet handed on commits nothing.
async fn read_whole(outcome: Outcome) -> Outcome {
    let response = outcome?;
    if response.headers().contains_key("grpc-status") {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    Ok(http::Response::from_parts(parts, Body::new(collected)))
}

/// What an attempt's outcome says: about the endpoint, and about a retry.
fn assess(outcome: &Outcome) -> Assessment {
    match outcome {
        Err(error) => {
            if within::<tonic::TimeoutExpired>(error.as_ref()) {
                // The call's own deadline: nothing about the endpoint, nothing to retry.
                Assessment {
                    verdict: Verdict::Success,
                    retry: None,
                    pushback: None,
                }
            } else if within::<tonic::ConnectError>(error.as_ref()) {
                Assessment {
                    verdict: Verdict::Failure,
                    retry: Some(Reason::Unsent),
                    pushback: None,
                }
            } else {
                Assessment {
                    verdict: Verdict::Failure,
                    retry: Some(Reason::Broken),
                    pushback: None,
                }
            }
        }
        Ok(response) => {
            // A status in the headers is a trailers-only answer: nothing was committed, so the
            // call may be made again (gRFC A6).
            let code = response
                .headers()
                .get("grpc-status")
                .map(|v| Code::from_bytes(v.as_bytes()));
            let pushback = retry::pushback(response.headers());
            match code {
                Some(Code::Unavailable) => Assessment {
                    verdict: Verdict::Failure,
                    retry: Some(Reason::Unavailable),
                    pushback,
                },
                Some(Code::ResourceExhausted) => Assessment {
                    verdict: Verdict::Load,
                    // Only an agent's own limit says "not started, come back": with pushback.
                    retry: pushback.is_some().then_some(Reason::Pushback),
                    pushback,
                },
                _ => Assessment {
                    verdict: Verdict::Success,
                    retry: None,
                    pushback: None,
                },
            }
        }
    }
}

/// Whether `error` or one of its sources is an `E`.
fn within<E: StdError + 'static>(error: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<E>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: Option<&str>, pushback: Option<&str>) -> Outcome {
        let mut r = http::Response::new(Body::empty());
        if let Some(c) = code {
            r.headers_mut()
                .insert("grpc-status", c.parse().expect("value"));
        }
        if let Some(p) = pushback {
            r.headers_mut()
                .insert(retry::PUSHBACK, p.parse().expect("value"));
        }
        Ok(r)
    }

    #[test]
    fn outcomes_are_judged_as_grpc_retry_design_says() {
        let a = assess(&answer(None, None));
        assert_eq!((a.verdict, a.retry), (Verdict::Success, None));
        let a = assess(&answer(Some("5"), None));
        assert_eq!((a.verdict, a.retry), (Verdict::Success, None), "NOT_FOUND");
        let a = assess(&answer(Some("14"), None));
        assert_eq!(
            (a.verdict, a.retry),
            (Verdict::Failure, Some(Reason::Unavailable))
        );
        let a = assess(&answer(Some("8"), Some("100")));
        assert_eq!(
            (a.verdict, a.retry, a.pushback),
            (
                Verdict::Load,
                Some(Reason::Pushback),
                Some(Ok(Duration::from_millis(100)))
            )
        );
        let a = assess(&answer(Some("8"), None));
        assert_eq!((a.verdict, a.retry), (Verdict::Load, None), "a quota");
        let refused: BoxError = Box::new(tonic::ConnectError(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))));
        let a = assess(&Err(refused));
        assert_eq!(
            (a.verdict, a.retry),
            (Verdict::Failure, Some(Reason::Unsent))
        );
        let a = assess(&Err(Box::new(tonic::TimeoutExpired(()))));
        assert_eq!((a.verdict, a.retry), (Verdict::Success, None));
    }

    /// An answer's body of `frames`, after headers without `grpc-status`.
    fn streamed(frames: Vec<Result<http_body::Frame<Bytes>, Status>>) -> Outcome {
        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
        Ok(http::Response::new(Body::new(body)))
    }

    #[tokio::test]
    async fn a_read_whose_connection_breaks_after_the_headers_is_a_broken_attempt() {
        // One gRPC message ("ab"), then the connection breaks before the trailers.
        let message = Bytes::from_static(b"\0\0\0\0\x02ab");
        let broken = streamed(vec![
            Ok(http_body::Frame::data(message.clone())),
            Err(Status::unknown("error reading a body from connection")),
        ]);
        let a = assess(&read_whole(broken).await);
        assert_eq!(
            (a.verdict, a.retry),
            (Verdict::Failure, Some(Reason::Broken)),
            "retried for a read, as a connection broken before the headers is"
        );

        // A whole answer keeps its message and its trailers.
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().expect("value"));
        let whole = streamed(vec![
            Ok(http_body::Frame::data(message.clone())),
            Ok(http_body::Frame::trailers(trailers)),
        ]);
        let read = read_whole(whole).await;
        let a = assess(&read);
        assert_eq!((a.verdict, a.retry), (Verdict::Success, None));
        let body = read
            .expect("whole")
            .into_body()
            .collect()
            .await
            .expect("read again");
        assert_eq!(
            body.trailers().and_then(|t| t.get("grpc-status")),
            Some(&http::HeaderValue::from_static("0"))
        );
        assert_eq!(body.to_bytes(), message);

        // A trailers-only answer is passed on as it is.
        let a = assess(&read_whole(answer(Some("14"), None)).await);
        assert_eq!(a.retry, Some(Reason::Unavailable));
    }

    #[test]
    fn only_reads_answered_with_one_message_are_read_whole() {
        assert!(retry::unary_read("/lf.a2a.v1.A2AService/GetTask"));
        assert!(retry::unary_read("/lf.a2a.v1.A2AService/ListTasks"));
        assert!(!retry::unary_read("/lf.a2a.v1.A2AService/SubscribeToTask"));
        assert!(!retry::unary_read("/grpc.health.v1.Health/Watch"));
        assert!(!retry::unary_read("/lf.a2a.v1.A2AService/CancelTask"));
        assert!(!retry::unary_read("/lf.a2a.v1.A2AService/SendMessage"));
    }
}
