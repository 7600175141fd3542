//! Per-request balancing over an agent's endpoints: power of two choices over a peak-EWMA
//! latency (Finagle's and linkerd's "P2C + PeakEWMA"; tower's `balance::p2c` with
//! `load::PeakEwma` computes the same cost).
//!
//! Each backend is one resolved address with its own lazily connecting [`Client`]. A pick
//! draws two distinct ready backends at random and takes the one with the lower cost,
//! `latency EWMA × (calls in flight + 1)`. The EWMA follows a slower call at once (peak) and
//! decays towards faster ones with a time constant of [`DECAY`].
//!
//! Readiness follows the endpoint's `grpc.health.v1.Health/Watch` stream (gRPC client-side
//! health checking): SERVING puts it in rotation; NOT_SERVING (a draining agent), a broken
//! stream (a killed process) or a call that failed without a response takes it out, and the
//! watch reconnects with backoff. An endpoint without the health service (UNIMPLEMENTED) counts
//! as ready. When no backend is ready, picks fall back to all of them, so a call still gets the
//! real connection error.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use rand::Rng as _;
use tokio::sync::Notify;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::{Client, client::Transport};

/// Time constant of the latency EWMA (linkerd's default).
pub const DECAY: Duration = Duration::from_secs(10);

/// Latency assumed for an endpoint before its first response.
const DEFAULT_RTT: Duration = Duration::from_millis(1);

/// Longest wait between two health-watch attempts of an endpoint that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The measured load of one endpoint.
#[derive(Debug)]
pub(crate) struct EndpointLoad {
    /// Latency EWMA in nanoseconds, and when it was last updated.
    rtt: Mutex<(f64, Instant)>,
    in_flight: AtomicUsize,
    ready: AtomicBool,
    /// Woken when a call finds the connection broken: the name is resolved again.
    failed: Arc<Notify>,
}

impl EndpointLoad {
    fn new(failed: Arc<Notify>) -> Self {
        Self {
            rtt: Mutex::new((DEFAULT_RTT.as_nanos() as f64, Instant::now())),
            in_flight: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            failed,
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

    /// `latency EWMA × (in flight + 1)`, in nanoseconds.
    fn cost(&self) -> f64 {
        let (rtt, _) = *self.rtt.lock().unwrap_or_else(|e| e.into_inner());
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

/// One resolved address of an agent, with its client and load.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    pub(crate) client: Client,
    load: Arc<EndpointLoad>,
    watch: tokio::task::AbortHandle,
}

impl Backend {
    /// A backend for `addr` whose health is watched from now on; `failed` is woken when a
    /// call or the watch finds its connection broken. Needs a Tokio runtime.
    pub(crate) fn new(addr: SocketAddr, failed: Arc<Notify>) -> Self {
        let load = Arc::new(EndpointLoad::new(failed));
        let channel = crate::client::endpoint(&addr.to_string())
            .expect("a socket address is a valid endpoint")
            .connect_lazy();
        let client =
            Client::over(Transport::measured(channel, load.clone())).named(&addr.to_string());
        let watch = tokio::spawn(watch_health(client.clone(), load.clone())).abort_handle();
        Self {
            addr,
            client,
            load,
            watch,
        }
    }

    /// Whether the endpoint is in rotation.
    pub(crate) fn is_ready(&self) -> bool {
        self.load.is_ready()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // Calls in flight keep their own clone of the client (and so the connection) until
        // they finish; only the health watch stops here.
        self.watch.abort();
    }
}

/// Follows `grpc.health.v1.Health/Watch` of the whole server (`service: ""`). The stream is
/// dropped at NOT_SERVING (a draining server waits for open streams) and watched again after
/// a backoff of 50 ms doubling up to [`MAX_BACKOFF`].
async fn watch_health(client: Client, load: Arc<EndpointLoad>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut health = tonic_health::pb::health_client::HealthClient::new(client.transport());
        match health
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                while let Some(Ok(status)) = stream.next().await {
                    if status.status != ServingStatus::Serving as i32 {
                        // A draining agent: let go of the stream so that it can finish.
                        break;
                    }
                    load.set_ready(true);
                    backoff = Duration::from_millis(50);
                }
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                load.set_ready(true);
                return;
            }
            Err(_) => {}
        }
        load.set_ready(false);
        load.failed.notify_waiters();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Power of two choices among `backends`: two distinct ready ones at random, the lower cost
/// wins; all of them when none is ready. `None` for an empty slice.
pub(crate) fn pick(backends: &[Arc<Backend>]) -> Option<&Arc<Backend>> {
    let ready: Vec<&Arc<Backend>> = backends.iter().filter(|b| b.is_ready()).collect();
    let pool: Vec<&Arc<Backend>> = if ready.is_empty() {
        backends.iter().collect()
    } else {
        ready
    };
    match pool.len() {
        0 => None,
        1 => Some(pool[0]),
        n => {
            let mut rng = rand::rng();
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            let (x, y) = (pool[a], pool[b]);
            Some(if x.load.cost() <= y.load.cost() { x } else { y })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> EndpointLoad {
        EndpointLoad::new(Arc::new(Notify::new()))
    }

    #[test]
    fn the_ewma_follows_peaks_at_once_and_decays_towards_faster_calls() {
        let l = load();
        l.observe(Duration::from_millis(100));
        assert_eq!(l.cost(), 100e6, "a slower call is taken at once");
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
    }

    #[test]
    fn calls_in_flight_raise_the_cost_and_a_failed_call_takes_the_endpoint_out() {
        let l = Arc::new(load());
        l.set_ready(true);
        let base = l.cost();
        let a = l.start();
        let b = l.start();
        assert_eq!(l.cost(), base * 3.0);
        drop(a);
        assert_eq!(l.cost(), base * 2.0);
        b.finish(false);
        assert_eq!(l.cost(), base);
        assert!(!l.is_ready());
    }

    #[tokio::test]
    async fn picks_prefer_ready_and_cheaper_endpoints() {
        let failed = Arc::new(Notify::new());
        let backends: Vec<Arc<Backend>> = (1..=3)
            .map(|i| Arc::new(Backend::new(([127, 0, 0, i], 9).into(), failed.clone())))
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
            assert_eq!(b.addr, backends[1].addr, "ready and cheaper");
        }
        assert!(pick(&[]).is_none());
    }
}
