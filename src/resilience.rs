//! Resilience of the data path: how a call to an agent survives slow, failing and dead
//! endpoints. Built once, as the transport of every client the [`Registry`](crate::Registry)
//! hands out ([`AgentRef::client`](crate::AgentRef::client)), so the gateway's upstream calls,
//! a [`Client`](crate::Client) made from a registry and an agent's own fan-out (the research
//! agent) all get the same behaviour.
//!
//! Per call, outermost first:
//!
//! 1. **retry** ([`retry`]): only where safe — idempotent reads (`GetTask`, `ListTasks`,
//!    `GetExtendedAgentCard`, `GetTaskPushNotificationConfig`,
//!    `ListTaskPushNotificationConfigs`, `SubscribeToTask` before its first response,
//!    `AgentService.GetAgentCard`, `grpc.health.v1.Health/Check`) on UNAVAILABLE or a broken
//!    connection, and any unary call that never reached an agent (connection refused, no
//!    endpoint, `RESOURCE_EXHAUSTED` with `grpc-retry-pushback-ms` from an agent's
//!    concurrency limit). Exponential backoff with jitter, or the agent's pushback
//!    (negative: no retry); a retry budget per agent (tower's
//!    [`TpsBudget`](tower::retry::budget::TpsBudget)); never past the call's deadline, which
//!    each attempt carries as what is left of it.
//! 2. **outlier ejection** ([`outlier`]): consecutive failures (broken connections,
//!    `UNAVAILABLE`) eject an endpoint for a time growing with each ejection, at most
//!    [`OutlierConfig::max_ejection_percent`] of an agent's endpoints at once; after the time, one
//!    probe call (half-open) brings it back or ejects it again.
//! 3. **balancing** ([`crate::registry::balance`]): power of two choices over a peak-EWMA
//!    latency among the endpoints that are healthy (`grpc.health.v1` watch, reconnected within
//!    [`ResilienceConfig::health_interval`]; HTTP/2 keep-alive PINGs) and not ejected.
//! 4. **connection** per endpoint: connect timeout, HTTP/2 keep-alive pings, reconnects
//!    paced by the health checks' backoff.
//!
//! Settings come from [`ResilienceConfig`] (defaults below; environment variables in
//! [`ResilienceConfig::from_env`]).

pub mod outlier;
pub mod retry;

use std::time::Duration;

pub use outlier::OutlierConfig;
pub use retry::RetryConfig;

/// Environment variable: [`ResilienceConfig::health_interval`], in milliseconds.
pub const HEALTH_INTERVAL_ENV: &str = "SWITCHYARD_HEALTH_INTERVAL_MS";
/// Environment variable: [`ResilienceConfig::connect_timeout`], in milliseconds.
pub const CONNECT_TIMEOUT_ENV: &str = "SWITCHYARD_CONNECT_TIMEOUT_MS";
/// Environment variable: [`OutlierConfig::consecutive_failures`].
pub const CONSECUTIVE_FAILURES_ENV: &str = "SWITCHYARD_OUTLIER_CONSECUTIVE_FAILURES";
/// Environment variable: [`OutlierConfig::base_ejection_time`], in milliseconds.
pub const BASE_EJECTION_ENV: &str = "SWITCHYARD_OUTLIER_BASE_EJECTION_MS";
/// Environment variable: [`OutlierConfig::max_ejection_percent`].
pub const MAX_EJECTION_PERCENT_ENV: &str = "SWITCHYARD_OUTLIER_MAX_EJECTION_PERCENT";
/// Environment variable: [`RetryConfig::max_attempts`] (1 switches retries off).
pub const MAX_ATTEMPTS_ENV: &str = "SWITCHYARD_RETRY_MAX_ATTEMPTS";
/// Environment variable: [`RetryConfig::budget_percent`].
pub const RETRY_BUDGET_PERCENT_ENV: &str = "SWITCHYARD_RETRY_BUDGET_PERCENT";

/// How the calls to an agent's endpoints are balanced, checked, ejected and retried.
#[derive(Clone, Debug, PartialEq)]
pub struct ResilienceConfig {
    /// Time to open a TCP connection to an endpoint before the attempt fails. Default 2 s.
    pub connect_timeout: Duration,
    /// Interval of HTTP/2 PING frames on an endpoint's connections (also while idle). Default
    /// 10 s.
    pub keepalive_interval: Duration,
    /// Time to wait for a PING's acknowledgement before the connection counts as dead (its
    /// calls fail with UNAVAILABLE). Default 5 s.
    pub keepalive_timeout: Duration,
    /// Active health checking: each endpoint's `grpc.health.v1.Health/Watch` stream is
    /// followed — a killed or NOT_SERVING agent is out of rotation at once, a hung one when
    /// its connection fails the keep-alive PING. This is the longest wait between two
    /// reconnection attempts of an endpoint that is down, the time after which an endpoint
    /// that a failed call took out is asked again, and the timeout of a watch's start. An
    /// endpoint without a health service (UNIMPLEMENTED) is healthy while it answers, asked
    /// again this often. Default 5 s.
    pub health_interval: Duration,
    /// Outlier ejection.
    pub outlier: OutlierConfig,
    /// Retries.
    pub retry: RetryConfig,
    /// The mTLS identity the clients present to the endpoints, which are then verified by
    /// SPIFFE ID ([`crate::tls`]). `None` (the default): the process-wide
    /// [`default_client`](crate::tls::default_client) (`SWITCHYARD_TLS_*`), else plain text.
    pub tls: Option<crate::tls::ClientTls>,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(5),
            outlier: OutlierConfig::default(),
            retry: RetryConfig::default(),
            tls: None,
        }
    }
}

/// A resilience setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?}: {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

impl ResilienceConfig {
    /// The defaults, overridden by the environment variables of this module
    /// ([`HEALTH_INTERVAL_ENV`], [`CONNECT_TIMEOUT_ENV`], [`CONSECUTIVE_FAILURES_ENV`],
    /// [`BASE_EJECTION_ENV`], [`MAX_EJECTION_PERCENT_ENV`], [`MAX_ATTEMPTS_ENV`],
    /// [`RETRY_BUDGET_PERCENT_ENV`]) when set.
    ///
    /// # Errors
    /// [`ConfigError`] for a value that is not a positive integer (a percentage of 0–100 for
    /// the percentages).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut c = Self::default();
        let ms = |var: &'static str| -> Result<Option<Duration>, ConfigError> {
            Ok(number(var, 1, u64::MAX)?.map(Duration::from_millis))
        };
        if let Some(d) = ms(HEALTH_INTERVAL_ENV)? {
            c.health_interval = d;
        }
        if let Some(d) = ms(CONNECT_TIMEOUT_ENV)? {
            c.connect_timeout = d;
        }
        if let Some(n) = number(CONSECUTIVE_FAILURES_ENV, 1, u64::from(u32::MAX))? {
            c.outlier.consecutive_failures = n as u32;
        }
        if let Some(d) = ms(BASE_EJECTION_ENV)? {
            c.outlier.base_ejection_time = d;
        }
        if let Some(n) = number(MAX_EJECTION_PERCENT_ENV, 0, 100)? {
            c.outlier.max_ejection_percent = n as u8;
        }
        if let Some(n) = number(MAX_ATTEMPTS_ENV, 1, 10)? {
            c.retry.max_attempts = n as u32;
        }
        if let Some(n) = number(RETRY_BUDGET_PERCENT_ENV, 0, 100)? {
            c.retry.budget_percent = n as u8;
        }
        Ok(c)
    }
}

/// The integer in `var`, if set, within `min..=max`.
fn number(var: &'static str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
    let Ok(value) = std::env::var(var) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError {
            var,
            value,
            expected: if max == 100 {
                "expected a whole percentage, 0 to 100"
            } else {
                "expected a positive whole number"
            },
        }),
    }
}
