//! Per-request balancing over an agent's endpoints: power of two choices over a peak-EWMA
//! latency (Finagle's and linkerd's "P2C + PeakEWMA"; tower's `balance::p2c` with
//! `load::PeakEwma` computes the same cost), among the endpoints that are healthy and not
//! ejected ([`crate::resilience::outlier`]).
//!
//! Each backend is one endpoint with its own lazily connecting [`Client`]. A pick draws two
//! distinct ready backends at random and takes the one with the lower cost,
//! `latency EWMA × (calls in flight + 1)`. The EWMA follows a slower call at once (peak) and
//! decays towards faster ones with a time constant of [`DECAY`].
//!
//! Why not tower's `Balance` service itself: it balances over services that are *ready*
//! (`poll_ready`), while an agent's endpoints are shared by every caller in the process and
//! chosen per request by code that also needs the choice itself (outlier bookkeeping, the
//! gateway's stream lanes, metrics by endpoint); the cost function is the same.
//!
//! Readiness follows the endpoint's `grpc.health.v1.Health/Watch` (`watch_health`, gRPC
//! client-side health checking): SERVING puts it in rotation; NOT_SERVING (a draining agent),
//! a broken stream (a killed process, or a hung one whose connection fails its HTTP/2
//! keep-alive PING) or a call that failed without a response takes it out, and the watch
//! reconnects with backoff. An endpoint without the health service (UNIMPLEMENTED) counts as
//! ready while it answers.

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use rand::Rng as _;
use tokio::sync::Notify;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::{
    Client, ClientError,
    client::Transport,
    resilience::{
        ResilienceConfig,
        outlier::{Admission, Outlier},
    },
    telemetry::metrics::{BALANCER_EWMA, BALANCER_PICKS, OUTLIER_EJECTED, OUTLIER_EJECTIONS},
};

/// Time constant of the latency EWMA (linkerd's default).
pub const DECAY: Duration = Duration::from_secs(10);

/// Latency assumed for an endpoint before its first response.
const DEFAULT_RTT: Duration = Duration::from_millis(1);

/// The measured load of one endpoint.
#[derive(Debug)]
pub(crate) struct EndpointLoad {
    /// Latency EWMA in nanoseconds, and when it was last updated.
    rtt: Mutex<(f64, Instant)>,
    in_flight: AtomicUsize,
    ready: AtomicBool,
    /// Woken when a call finds the connection broken: the name is resolved again.
    failed: Arc<Notify>,
    /// Labels of the EWMA gauge, and the gauge once made.
    labels: [(&'static str, String); 2],
    ewma: OnceLock<metrics::Gauge>,
}

impl EndpointLoad {
    fn new(failed: Arc<Notify>, agent: &str, addr: &str) -> Self {
        Self {
            rtt: Mutex::new((DEFAULT_RTT.as_nanos() as f64, Instant::now())),
            in_flight: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            failed,
            labels: [("agent", agent.to_owned()), ("endpoint", addr.to_owned())],
            ewma: OnceLock::new(),
        }
    }

    /// Starts measuring one call.
    pub(crate) fn start(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        CallGuard {
            load: self.clone(),
            started: Instant::now(),
            done: false,
        }
    }

    /// `latency EWMA × (in flight + 1)`, in nanoseconds. The EWMA decays towards
    /// [`DEFAULT_RTT`] while no call is observed (as tower's `PeakEwma` does), so an endpoint
    /// that was slow once is tried again after a while instead of never.
    fn cost(&self) -> f64 {
        let (rtt, at) = *self.rtt.lock().unwrap_or_else(|e| e.into_inner());
        let idle = at.elapsed().as_nanos() as f64;
        let w = (-idle / DECAY.as_nanos() as f64).exp();
        let rtt = rtt * w + DEFAULT_RTT.as_nanos() as f64 * (1.0 - w);
        rtt * (self.in_flight.load(Ordering::Acquire) + 1) as f64
    }

    fn observe(&self, rtt: Duration) {
        let now = Instant::now();
        let sample = rtt.as_nanos() as f64;
        let mut slot = self.rtt.lock().unwrap_or_else(|e| e.into_inner());
        let (ewma, at) = *slot;
        let next = if sample > ewma {
            sample
        } else {
            let elapsed = now.saturating_duration_since(at).as_nanos() as f64;
            let w = (-elapsed / DECAY.as_nanos() as f64).exp();
            ewma * w + sample * (1.0 - w)
        };
        *slot = (next, now);
        drop(slot);
        self.ewma
            .get_or_init(|| metrics::gauge!(BALANCER_EWMA, &self.labels))
            .set(next / 1e9);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// One call in flight on a measured endpoint.
#[derive(Debug)]
pub(crate) struct CallGuard {
    load: Arc<EndpointLoad>,
    started: Instant,
    done: bool,
}

impl CallGuard {
    /// Ends the call: `answered` when response headers arrived, else the connection failed.
    pub(crate) fn finish(mut self, answered: bool) {
        self.done = true;
        self.load.in_flight.fetch_sub(1, Ordering::AcqRel);
        if answered {
            self.load.observe(self.started.elapsed());
        } else {
            self.load.set_ready(false);
            self.load.failed.notify_waiters();
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            // Dropped before completion (the caller gave up): only the call count changes.
            self.load.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One endpoint of an agent (a configured `host:port` or a resolved address), with its
/// client, load, health and outlier state.
#[derive(Debug)]
pub(crate) struct Backend {
    /// `host:port`.
    pub(crate) addr: String,
    pub(crate) client: Client,
    load: Arc<EndpointLoad>,
    pub(crate) outlier: Outlier,
    metrics: OnceLock<BackendMetrics>,
    agent: Arc<str>,
    watch: tokio::task::AbortHandle,
}

/// The metric handles of one endpoint, made at its first call (the process's recorder is
/// installed by then).
#[derive(Debug)]
struct BackendMetrics {
    picks: metrics::Counter,
    ejections: metrics::Counter,
    ejected: metrics::Gauge,
}

impl Backend {
    /// A backend for `addr` (`host:port`) of `agent`, whose health is watched from now on
    /// ([`watch_health`]); `failed` is woken when a call or the watch finds its connection
    /// broken. Needs a Tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::InvalidAddress`] for an address that is not `host:port`.
    pub(crate) fn new(
        addr: &str,
        agent: &Arc<str>,
        failed: Arc<Notify>,
        config: &ResilienceConfig,
    ) -> Result<Self, ClientError> {
        let load = Arc::new(EndpointLoad::new(failed, agent, addr));
        let tls = crate::client::tls_for(addr, config.tls.as_ref())?;
        let in_process_tls = tls.clone();
        let channel = crate::client::lazy_channel(
            crate::client::endpoint(addr)?
                .connect_timeout(config.connect_timeout)
                .http2_keep_alive_interval(config.keepalive_interval)
                .keep_alive_timeout(config.keepalive_timeout)
                .keep_alive_while_idle(true),
            tls,
        );
        let mut transport = Transport::measured(channel.clone(), load.clone());
        if let Ok(addr) = addr.parse() {
            transport = transport.in_process(addr, in_process_tls);
        }
        let client = Client::over(transport).named(addr);
        // Health calls share the connection but not the measurement: they are fast even when
        // the agent's calls are slow, and would hide that from the balancer.
        let watch = tokio::spawn(watch_health(
            Client::from_channel(channel).named(addr),
            load.clone(),
            config.health_interval,
        ))
        .abort_handle();
        Ok(Self {
            addr: addr.to_owned(),
            client,
            load,
            outlier: Outlier::default(),
            metrics: OnceLock::new(),
            agent: agent.clone(),
            watch,
        })
    }

    /// Whether the endpoint's health checks pass (or it has no health service and answers).
    pub(crate) fn is_ready(&self) -> bool {
        self.load.is_ready()
    }

    /// Whether the endpoint takes calls: healthy and not ejected.
    pub(crate) fn is_available(&self) -> bool {
        self.is_ready() && !self.outlier.is_ejected()
    }

    fn metrics(&self) -> &BackendMetrics {
        self.metrics.get_or_init(|| {
            let labels = [
                ("agent", self.agent.to_string()),
                ("endpoint", self.addr.clone()),
            ];
            BackendMetrics {
                picks: metrics::counter!(BALANCER_PICKS, &labels),
                ejections: metrics::counter!(OUTLIER_EJECTIONS, &labels),
                ejected: metrics::gauge!(OUTLIER_EJECTED, &labels),
            }
        })
    }

    /// Counts one call sent here.
    pub(crate) fn picked(&self) {
        self.metrics().picks.increment(1);
    }

    /// Reports an ejection (`Some(time)`) or a return (`None`).
    pub(crate) fn report_ejection(&self, ejected_for: Option<Duration>) {
        let m = self.metrics();
        match ejected_for {
            Some(time) => {
                m.ejections.increment(1);
                m.ejected.set(1.0);
                tracing::warn!(agent = %self.agent, endpoint = %self.addr, ejected_ms = time.as_millis() as u64, "endpoint ejected (outlier detection)");
            }
            None => {
                m.ejected.set(0.0);
                tracing::info!(agent = %self.agent, endpoint = %self.addr, "endpoint back in rotation (probe succeeded)");
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // Calls in flight keep their own clone of the client (and so the connection) until
        // they finish; only the health watch stops here.
        self.watch.abort();
    }
}

/// Follows `grpc.health.v1.Health/Watch` of the whole server (`service: ""`): SERVING puts
/// the endpoint in rotation at once, NOT_SERVING or a broken stream (a killed process, or a
/// hung one whose connection failed its HTTP/2 keep-alive PING) takes it out at once. The
/// stream is dropped at NOT_SERVING (a draining server waits for open streams) and watched
/// again after a backoff of 50 ms doubling up to `interval`. Every `interval`, an endpoint
/// that a failed call took out of rotation while its stream stayed up is watched again (its
/// answer puts it back). A server without the health service (UNIMPLEMENTED) is ready while
/// it answers, asked again every `interval`. No call is made in the steady state besides the
/// open stream.
async fn watch_health(client: Client, load: Arc<EndpointLoad>, interval: Duration) {
    let first = Duration::from_millis(50).min(interval);
    let mut backoff = first;
    loop {
        let mut health = tonic_health::pb::health_client::HealthClient::new(client.transport());
        let watch = health.watch(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(interval.max(Duration::from_secs(1)), watch).await {
            Ok(Ok(stream)) => {
                let mut stream = stream.into_inner();
                loop {
                    tokio::select! {
                        item = stream.next() => match item {
                            Some(Ok(s)) if s.status == ServingStatus::Serving as i32 => {
                                load.set_ready(true);
                                backoff = first;
                            }
                            // NOT_SERVING (a draining agent: let go of the stream so that it
                            // can finish), or the stream broke.
                            _ => break,
                        },
                        () = tokio::time::sleep(interval) => {
                            if !load.is_ready() {
                                // A call failed on the connection: ask again.
                                break;
                            }
                        }
                    }
                }
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                load.set_ready(true);
                backoff = first;
                tokio::time::sleep(interval).await;
                continue;
            }
            Ok(Err(_)) | Err(_) => {}
        }
        load.set_ready(false);
        load.failed.notify_waiters();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(interval.max(first));
    }
}

/// One endpoint chosen for a call.
#[derive(Debug)]
pub(crate) struct Picked {
    pub(crate) backend: Arc<Backend>,
    /// Whether the call is the half-open probe of an ejected endpoint.
    pub(crate) probe: bool,
}

/// Chooses the endpoint of one call among `backends`:
///
/// 1. a half-open endpoint (ejection over) that is healthy gets the call as its probe;
/// 2. else power of two choices among the healthy, non-ejected endpoints: two distinct ones
///    at random, the lower cost wins;
/// 3. else the same among the non-ejected ones whatever their health (the call then gets the
///    real connection error);
/// 4. else a half-open one whatever its health, as its probe;
/// 5. else (every endpoint ejected: a single-endpoint agent, or ejections at their cap)
///    the same among all of them, ejection ignored — Envoy's "panic mode": with no endpoint
///    left to prefer, the agent is still called rather than failed outright.
///
/// `None` when there is no endpoint.
pub(crate) fn pick(backends: &[Arc<Backend>]) -> Option<Picked> {
    let now = Instant::now();
    if let [only] = backends {
        // One endpoint: it gets the call whatever its state (steps 2 to 5 end there), as
        // the probe when its ejection is over.
        let probe = only.outlier.admission(now) == Admission::HalfOpen
            && only.is_ready()
            && only.outlier.start_probe(now);
        return Some(Picked {
            backend: only.clone(),
            probe,
        });
    }
    let admissions: Vec<Admission> = backends.iter().map(|b| b.outlier.admission(now)).collect();
    let probe = |healthy: bool| {
        backends.iter().zip(&admissions).find_map(|(b, a)| {
            (*a == Admission::HalfOpen && (!healthy || b.is_ready()) && b.outlier.start_probe(now))
                .then(|| Picked {
                    backend: b.clone(),
                    probe: true,
                })
        })
    };
    if let Some(p) = probe(true) {
        return Some(p);
    }
    let closed: Vec<&Arc<Backend>> = backends
        .iter()
        .zip(&admissions)
        .filter(|(_, a)| **a == Admission::Closed)
        .map(|(b, _)| b)
        .collect();
    let ready: Vec<&Arc<Backend>> = closed.iter().copied().filter(|b| b.is_ready()).collect();
    let mut pool = if ready.is_empty() { closed } else { ready };
    if pool.is_empty() {
        if let Some(p) = probe(false) {
            return Some(p);
        }
        pool = backends.iter().collect();
    }
    let chosen = match pool.len() {
        0 => return None,
        1 => pool[0],
        n => {
            let mut rng = rand::rng();
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            let (x, y) = (pool[a], pool[b]);
            if x.load.cost() <= y.load.cost() { x } else { y }
        }
    };
    Some(Picked {
        backend: chosen.clone(),
        probe: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> EndpointLoad {
        EndpointLoad::new(Arc::new(Notify::new()), "a", "127.0.0.1:9")
    }

    #[test]
    fn the_ewma_follows_peaks_at_once_and_decays_towards_faster_calls() {
        let l = load();
        l.observe(Duration::from_millis(100));
        assert!(
            (l.cost() - 100e6).abs() < 1e5,
            "a slower call is taken at once"
        );
        {
            // Pretend the last update was one time constant ago.
            let mut slot = l.rtt.lock().expect("lock");
            slot.1 -= DECAY;
        }
        l.observe(Duration::from_millis(10));
        let rtt = l.cost() / 1e6;
        let expected = 100.0 * (-1f64).exp() + 10.0 * (1.0 - (-1f64).exp());
        assert!(
            (rtt - expected).abs() < 0.5,
            "{rtt} ms, expected {expected}"
        );
        {
            // Idle for five time constants: the slow past is mostly forgotten.
            let mut slot = l.rtt.lock().expect("lock");
            *slot = (100e6, slot.1 - DECAY * 5);
        }
        let rtt = l.cost() / 1e6;
        assert!(rtt < 1.0 + 100.0 * (-5f64).exp() + 0.01, "{rtt} ms");
    }

    #[test]
    fn calls_in_flight_raise_the_cost_and_a_failed_call_takes_the_endpoint_out() {
        let l = Arc::new(load());
        l.set_ready(true);
        let base = l.cost();
        let a = l.start();
        let b = l.start();
        let near = |x: f64, y: f64| (x - y).abs() < 1.0;
        assert!(near(l.cost(), base * 3.0));
        drop(a);
        assert!(near(l.cost(), base * 2.0));
        b.finish(false);
        assert!(near(l.cost(), base));
        assert!(!l.is_ready());
    }

    #[tokio::test]
    async fn picks_prefer_ready_and_cheaper_endpoints() {
        let failed = Arc::new(Notify::new());
        let agent: Arc<str> = "a".into();
        let backends: Vec<Arc<Backend>> = (1..=3)
            .map(|i| {
                let addr = format!("127.0.0.{i}:9");
                let config = ResilienceConfig::default();
                Arc::new(Backend::new(&addr, &agent, failed.clone(), &config).expect("backend"))
            })
            .collect();
        for b in &backends {
            // Nothing listens there; readiness is set by hand below.
            b.watch.abort();
        }
        // None ready: every backend may be picked.
        assert!(pick(&backends).is_some());
        backends[0].load.set_ready(true);
        backends[1].load.set_ready(true);
        backends[0].load.observe(Duration::from_millis(50));
        for _ in 0..20 {
            let b = pick(&backends).expect("a backend");
            assert_eq!(b.backend.addr, backends[1].addr, "ready and cheaper");
        }
        assert!(pick(&[]).is_none());
        // The cheaper one ejected: the other ready one takes every call.
        let config = crate::resilience::OutlierConfig {
            consecutive_failures: 1,
            base_ejection_time: Duration::from_millis(200),
            ..Default::default()
        };
        let now = Instant::now();
        let change = backends[1].outlier.record(
            crate::resilience::outlier::Verdict::Failure,
            now,
            0,
            3,
            &config,
        );
        assert!(matches!(
            change,
            crate::resilience::outlier::Change::Ejected(_)
        ));
        for _ in 0..20 {
            let b = pick(&backends).expect("a backend");
            assert_eq!(b.backend.addr, backends[0].addr, "not the ejected one");
            assert!(!b.probe);
        }
        // Its ejection over: the next call is its probe, and only that one.
        std::thread::sleep(Duration::from_millis(210));
        let p = pick(&backends).expect("a backend");
        assert!(p.probe && p.backend.addr == backends[1].addr);
        for _ in 0..20 {
            assert_eq!(
                pick(&backends).expect("a backend").backend.addr,
                backends[0].addr
            );
        }
    }
}
