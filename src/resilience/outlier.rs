//! Outlier ejection per endpoint, after Envoy's outlier detection (`consecutive_5xx`,
//! `base_ejection_time`, `max_ejection_time`, `max_ejection_percent`), with a half-open probe
//! instead of Envoy's timed return.
//!
//! A call's outcome on an endpoint is one of:
//! - a **failure**: the connection broke or could not be opened, or the agent answered
//!   `UNAVAILABLE`;
//! - **load**: `RESOURCE_EXHAUSTED` (an agent at its concurrency limit, with pushback) — a
//!   signal for the balancer (its latency and calls in flight), never a reason to eject;
//! - a **success**: any other answer (an agent's `NOT_FOUND` is a healthy agent).
//!
//! [`OutlierConfig::consecutive_failures`] failures in a row eject the endpoint for
//! `base_ejection_time × n` (n = its number of ejections so far, the first being 1), at most
//! [`OutlierConfig::max_ejection_time`]; when that time is over, the endpoint is *half-open*:
//! the balancer sends it exactly one call (the probe). Success closes it (back in rotation);
//! failure ejects it again, for longer. An endpoint that stays healthy for
//! `max_ejection_time` after its last ejection starts again from n = 1.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// Outlier-ejection settings (Envoy's names where they exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Failures in a row that eject an endpoint (Envoy `consecutive_5xx`). Default 5.
    pub consecutive_failures: u32,
    /// Ejection time of a first ejection; the n-th lasts n times as long (Envoy
    /// `base_ejection_time`). Default 10 s.
    pub base_ejection_time: Duration,
    /// The longest ejection (Envoy `max_ejection_time`). Default 300 s.
    pub max_ejection_time: Duration,
    /// Share of an agent's endpoints that may be ejected at once, in percent, rounded down but
    /// at least one endpoint (Envoy `max_ejection_percent`, which also ejects at least one).
    /// Default 50.
    pub max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

impl OutlierConfig {
    /// How many of `total` endpoints may be ejected at once.
    pub fn max_ejected(&self, total: usize) -> usize {
        (total * usize::from(self.max_ejection_percent.min(100)) / 100).max(1)
    }
}

/// What a call's outcome says about its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A broken or refused connection, or `UNAVAILABLE`.
    Failure,
    /// `RESOURCE_EXHAUSTED`: busy, not broken.
    Load,
    /// Any other answer, or the call's own deadline.
    Success,
}

/// Whether an endpoint takes calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// In rotation.
    Closed,
    /// Its ejection is over: the next call is its probe.
    HalfOpen,
    /// Ejected (or its probe is under way).
    Ejected,
}

/// What recording an outcome changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing worth reporting.
    None,
    /// The endpoint was ejected for this long.
    Ejected(Duration),
    /// The endpoint is back in rotation (its probe succeeded).
    Returned,
}

#[derive(Debug, Default)]
struct State {
    consecutive: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
    /// When the probe under way started.
    probing: Option<Instant>,
    last_ejected: Option<Instant>,
}

/// The outlier state of one endpoint.
///
/// The healthy path takes no lock: `clean` (not ejected, no failure counted) answers
/// [`admission`](Self::admission) and [`is_ejected`](Self::is_ejected), and lets
/// [`record`](Self::record) skip a success, which would change nothing. It is written only
/// under the lock, after every change of the state.
#[derive(Debug)]
pub struct Outlier {
    state: Mutex<State>,
    clean: AtomicBool,
}

impl Default for Outlier {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            clean: AtomicBool::new(true),
        }
    }
}

impl Outlier {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_clean(&self) -> bool {
        self.clean.load(Ordering::Acquire)
    }

    /// Publishes whether `s` is clean (called with the lock held, after a change).
    fn publish(&self, s: &State) {
        self.clean.store(
            s.ejected_until.is_none() && s.consecutive == 0,
            Ordering::Release,
        );
    }

    /// Whether the endpoint takes calls at `now`.
    pub fn admission(&self, now: Instant) -> Admission {
        if self.is_clean() {
            return Admission::Closed;
        }
        let s = self.lock();
        match s.ejected_until {
            None => Admission::Closed,
            Some(until) if now >= until && !probe_running(&s, now) => Admission::HalfOpen,
            Some(_) => Admission::Ejected,
        }
    }

    /// Whether the endpoint is ejected now (including while its probe runs).
    pub fn is_ejected(&self) -> bool {
        !self.is_clean() && self.lock().ejected_until.is_some()
    }

    /// Claims the probe of a half-open endpoint; `false` when another call has it.
    pub fn start_probe(&self, now: Instant) -> bool {
        if self.is_clean() {
            return false;
        }
        let mut s = self.lock();
        match s.ejected_until {
            Some(until) if now >= until && !probe_running(&s, now) => {
                s.probing = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Gives back a probe claimed by [`start_probe`](Self::start_probe) without a call.
    pub fn abandon_probe(&self) {
        self.lock().probing = None;
    }

    /// Records one outcome. `ejected_now` is how many of the agent's `total` endpoints are
    /// ejected at the moment; an ejection that would pass the configured share is skipped
    /// (the failures keep counting).
    pub fn record(
        &self,
        verdict: Verdict,
        now: Instant,
        ejected_now: usize,
        total: usize,
        config: &OutlierConfig,
    ) -> Change {
        if verdict != Verdict::Failure && self.is_clean() {
            // Nothing to reset, nothing to count.
            return Change::None;
        }
        let mut s = self.lock();
        let change = Self::record_locked(&mut s, verdict, now, ejected_now, total, config);
        self.publish(&s);
        change
    }

    fn record_locked(
        s: &mut State,
        verdict: Verdict,
        now: Instant,
        ejected_now: usize,
        total: usize,
        config: &OutlierConfig,
    ) -> Change {
        if s.ejected_until.is_some() {
            if s.probing.is_none() {
                // A call that was picked before the ejection: it says nothing new.
                return Change::None;
            }
            s.probing = None;
            return match verdict {
                Verdict::Failure => Change::Ejected(eject(s, now, config)),
                Verdict::Success | Verdict::Load => {
                    s.ejected_until = None;
                    s.consecutive = 0;
                    Change::Returned
                }
            };
        }
        match verdict {
            Verdict::Success => s.consecutive = 0,
            Verdict::Load => {}
            Verdict::Failure => {
                s.consecutive = s.consecutive.saturating_add(1);
                if s.consecutive >= config.consecutive_failures
                    && ejected_now < config.max_ejected(total)
                {
                    return Change::Ejected(eject(s, now, config));
                }
            }
        }
        Change::None
    }
}

/// A probe whose call never reported back (its caller gave up) is forgotten after this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn probe_running(s: &State, now: Instant) -> bool {
    s.probing
        .is_some_and(|at| now.saturating_duration_since(at) < PROBE_TIMEOUT)
}

fn eject(s: &mut State, now: Instant, config: &OutlierConfig) -> Duration {
    if s.last_ejected
        .is_some_and(|at| now.saturating_duration_since(at) > config.max_ejection_time * 2)
    {
        // Healthy for long enough since the last ejection: start over.
        s.ejections = 0;
    }
    s.ejections = s.ejections.saturating_add(1);
    let time = config
        .base_ejection_time
        .saturating_mul(s.ejections)
        .min(config.max_ejection_time);
    s.ejected_until = Some(now + time);
    s.last_ejected = Some(now);
    s.consecutive = 0;
    time
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OutlierConfig {
        OutlierConfig {
            consecutive_failures: 3,
            base_ejection_time: Duration::from_secs(1),
            max_ejection_time: Duration::from_secs(5),
            max_ejection_percent: 50,
        }
    }

    #[test]
    fn consecutive_failures_eject_for_a_growing_time_and_a_probe_brings_it_back() {
        let c = config();
        let o = Outlier::default();
        let t0 = Instant::now();
        assert_eq!(o.record(Verdict::Failure, t0, 0, 3, &c), Change::None);
        assert_eq!(o.record(Verdict::Success, t0, 0, 3, &c), Change::None);
        assert_eq!(o.record(Verdict::Failure, t0, 0, 3, &c), Change::None);
        assert_eq!(o.record(Verdict::Load, t0, 0, 3, &c), Change::None);
        assert_eq!(o.record(Verdict::Failure, t0, 0, 3, &c), Change::None);
        assert_eq!(
            o.record(Verdict::Failure, t0, 0, 3, &c),
            Change::Ejected(Duration::from_secs(1)),
            "the third failure in a row (load answers do not break the run)"
        );
        assert_eq!(o.admission(t0), Admission::Ejected);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(o.admission(t1), Admission::HalfOpen);
        assert!(o.start_probe(t1));
        assert!(!o.start_probe(t1), "one probe at a time");
        assert_eq!(o.admission(t1), Admission::Ejected);
        assert_eq!(
            o.record(Verdict::Failure, t1, 1, 3, &c),
            Change::Ejected(Duration::from_secs(2)),
            "a failed probe ejects again, for longer"
        );
        let t2 = t1 + Duration::from_secs(2);
        assert!(o.start_probe(t2));
        assert_eq!(o.record(Verdict::Success, t2, 1, 3, &c), Change::Returned);
        assert_eq!(o.admission(t2), Admission::Closed);
    }

    #[test]
    fn no_more_than_the_share_is_ejected_and_load_never_ejects() {
        let c = config();
        assert_eq!(c.max_ejected(3), 1);
        assert_eq!(c.max_ejected(1), 1, "at least one");
        assert_eq!(c.max_ejected(10), 5);
        let o = Outlier::default();
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(o.record(Verdict::Failure, t, 1, 3, &c), Change::None);
            assert_eq!(o.record(Verdict::Load, t, 0, 3, &c), Change::None);
        }
        assert_eq!(o.admission(t), Admission::Closed);
        assert_eq!(
            o.record(Verdict::Failure, t, 0, 3, &c),
            Change::Ejected(Duration::from_secs(1)),
            "counted all along; ejected once there is room"
        );
    }

    #[test]
    fn ejection_time_is_capped() {
        let c = config();
        let o = Outlier::default();
        let mut t = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..8 {
            for _ in 0..3 {
                if let Change::Ejected(d) = o.record(Verdict::Failure, t, 0, 3, &c) {
                    last = d;
                }
            }
            t += last;
            assert!(o.start_probe(t));
            assert!(matches!(
                o.record(Verdict::Success, t, 0, 3, &c),
                Change::Returned
            ));
        }
        assert_eq!(last, Duration::from_secs(5));
    }
}
