//! Which calls may be made again, when, and how often: the retry rules of gRPC's retry design
//! (gRFC A6: retry only before the response headers are committed; honour
//! `grpc-retry-pushback-ms`, a negative or malformed value meaning "do not retry") and
//! Linkerd's retry budget (retries at most a share of the calls, plus a small floor per
//! second, so that retries cannot multiply the load of an outage).

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use http::HeaderMap;
use tower::retry::budget::{Budget as _, TpsBudget};

/// Whether `SendMessage` / `SendStreamingMessage` are retried like reads after reaching an
/// agent: on, since an agent answers a repeated message (same `contextId` and `messageId`)
/// with the task it went to first instead of starting another (issue 13, item 4; the store
/// records each accepted message with its task, so this holds across restarts and replicas).
/// A message without a `messageId` is not protected, and A2A requires one.
pub const RETRY_SENDS: bool = true;

/// The metadata key of the server's retry pushback, in milliseconds (gRFC A6).
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// Retry settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts per call, the first included (1: no retries). Default 3.
    pub max_attempts: u32,
    /// Backoff before the first retry; each further retry doubles it, up to
    /// [`max_backoff`](Self::max_backoff), and every wait adds a random share (0–100 %) of
    /// that value (backon's jitter), so callers that failed together do not retry together.
    /// Default 25 ms.
    pub initial_backoff: Duration,
    /// The longest backoff. Default 1 s.
    pub max_backoff: Duration,
    /// The retry budget: retries may add at most this share of the calls made in the last
    /// [`budget_window`](Self::budget_window), in percent. Default 20.
    pub budget_percent: u8,
    /// Retries allowed per second whatever the budget (for agents that get few calls).
    /// Default 10.
    pub budget_min_per_sec: u32,
    /// How long a call counts towards the budget (1–60 s). Default 10 s.
    pub budget_window: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
            budget_percent: 20,
            budget_min_per_sec: 10,
            budget_window: Duration::from_secs(10),
        }
    }
}

impl RetryConfig {
    /// A budget with these settings (the window clamped to tower's 1–60 s).
    pub fn budget(&self) -> RetryBudget {
        RetryBudget(TpsBudget::new(
            self.budget_window
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            self.budget_min_per_sec.min(i32::MAX as u32 - 1),
            f32::from(self.budget_percent.min(100)) / 100.0,
        ))
    }

    /// The backoff delays of one call's retries (exponential, with jitter).
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// The retry budget of one agent (shared by every caller of it in this process).
#[derive(Debug)]
pub struct RetryBudget(TpsBudget);

impl RetryBudget {
    /// Counts one call (not a retry).
    pub fn deposit(&self) {
        self.0.deposit();
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        self.0.withdraw()
    }
}

/// What kind of call a gRPC method is, for retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A read: retried on UNAVAILABLE and broken connections.
    Read,
    /// One request message with effects (a send, a cancel, a config change): retried only if
    /// it never reached an agent.
    Write,
    /// A client-streaming or bidi call, or a method this crate does not know: its request
    /// may be a stream that cannot be replayed; never retried.
    Stream,
}

/// Whether the call to `path` is a read answered with one message, whose answer may be read
/// whole before the caller sees it: a [`Kind::Read`] other than the server streams and the
/// sends. A send is left out although it is retried like a read ([`RETRY_SENDS`]): reading
/// its answer within the attempt cost ~21k instructions per proxied `SendMessage`
/// (bench/RESULTS.md §10), on the path every task takes.
pub(crate) fn unary_read(path: &str) -> bool {
    kind(path) == Kind::Read
        && !matches!(
            path.rsplit('/').next().unwrap_or(""),
            "SubscribeToTask" | "SendStreamingMessage" | "SendMessage" | "Watch"
        )
}

/// The kind of the call to `path` (`/package.Service/Method`).
pub fn kind(path: &str) -> Kind {
    let method = path.rsplit('/').next().unwrap_or("");
    let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match (service, method) {
        (
            "lf.a2a.v1.A2AService",
            "GetTask"
            | "ListTasks"
            | "GetExtendedAgentCard"
            | "GetTaskPushNotificationConfig"
            | "ListTaskPushNotificationConfigs"
            | "SubscribeToTask",
        )
        | ("switchyard.v1.AgentService", "GetAgentCard")
        | ("grpc.health.v1.Health", "Check" | "Watch") => Kind::Read,
        (
            "lf.a2a.v1.A2AService" | "switchyard.v1.AgentService",
            "SendMessage" | "SendStreamingMessage",
        ) if RETRY_SENDS => Kind::Read,
        (
            "lf.a2a.v1.A2AService" | "switchyard.v1.AgentService",
            "SendMessage" | "SendStreamingMessage",
        )
        | (
            "lf.a2a.v1.A2AService",
            "CancelTask" | "CreateTaskPushNotificationConfig" | "DeleteTaskPushNotificationConfig",
        ) => Kind::Write,
        // Client streams, bidi sessions, and methods of services this crate does not know
        // (their request may be a stream): passed through, never buffered or retried.
        _ => Kind::Stream,
    }
}

/// The RPC name of `path`, for metric labels: only names this crate's services define, else
/// [`UNKNOWN_RPC`](crate::server::UNKNOWN_RPC) (bounded cardinality; the list is
/// [`known_rpc`](crate::server::known_rpc)'s).
pub fn method_label(path: &str) -> &'static str {
    crate::server::known_rpc(path).1
}

/// The server's pushback in a response's headers: `Some(Ok(delay))` to retry after `delay`,
/// `Some(Err(()))` for "do not retry" (a negative or malformed value), `None` when absent.
#[allow(clippy::result_unit_err)]
pub fn pushback(headers: &HeaderMap) -> Option<Result<Duration, ()>> {
    let v = headers.get(PUSHBACK)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis)
            .ok_or(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_streams() {
        assert_eq!(kind("/lf.a2a.v1.A2AService/GetTask"), Kind::Read);
        assert_eq!(kind("/lf.a2a.v1.A2AService/ListTasks"), Kind::Read);
        assert_eq!(kind("/switchyard.v1.AgentService/GetAgentCard"), Kind::Read);
        // Idempotent since a repeated messageId answers with its first task (RETRY_SENDS).
        assert_eq!(kind("/lf.a2a.v1.A2AService/SendMessage"), Kind::Read);
        assert_eq!(
            kind("/switchyard.v1.AgentService/SendStreamingMessage"),
            Kind::Read
        );
        assert_eq!(kind("/lf.a2a.v1.A2AService/CancelTask"), Kind::Write);
        assert_eq!(
            kind("/other.Service/GetTask"),
            Kind::Stream,
            "unknown: passed through"
        );
        assert_eq!(kind("/switchyard.v1.AgentService/Converse"), Kind::Stream);
        assert_eq!(method_label("/x.Y/Whatever"), crate::server::UNKNOWN_RPC);
        assert_eq!(method_label("/lf.a2a.v1.A2AService/GetTask"), "GetTask");
    }

    #[test]
    fn pushback_parses_and_negative_means_stop() {
        let mut h = HeaderMap::new();
        assert_eq!(pushback(&h), None);
        h.insert(PUSHBACK, "150".parse().expect("value"));
        assert_eq!(pushback(&h), Some(Ok(Duration::from_millis(150))));
        h.insert(PUSHBACK, "-1".parse().expect("value"));
        assert_eq!(pushback(&h), Some(Err(())));
        h.insert(PUSHBACK, "soon".parse().expect("value"));
        assert_eq!(pushback(&h), Some(Err(())));
    }

    #[test]
    fn the_budget_allows_a_share_of_the_calls_plus_a_floor() {
        let config = RetryConfig {
            budget_min_per_sec: 0,
            budget_percent: 20,
            ..RetryConfig::default()
        };
        let budget = config.budget();
        assert!(!budget.withdraw(), "nothing deposited, no floor");
        for _ in 0..100 {
            budget.deposit();
        }
        let allowed = (0..100).filter(|_| budget.withdraw()).count();
        assert_eq!(allowed, 20);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_bounded() {
        let config = RetryConfig::default();
        let delays: Vec<Duration> = config.backoff().take(10).collect();
        assert_eq!(delays.len(), 10);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
    }
}
