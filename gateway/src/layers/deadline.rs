//! [`DeadlineLayer`]: the deadline of a request, from `grpc-timeout` (gRPC syntax, e.g.
//! `500m`) or `X-Timeout-Ms` (milliseconds) — the smaller when both are sent, capped at the
//! configured maximum — minus the configured margin. Unary calls without one get the route default (also minus the margin);
//! streams without one have none. A malformed value is refused (400 / JSON-RPC -32600); a
//! deadline no longer than the margin fails at once with DEADLINE_EXCEEDED, without reaching
//! the agent.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use axum::{extract::Request, response::Response};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::{ResponseFuture, refuse};
use crate::error::ApiError;

/// Header with a timeout in milliseconds, for clients that cannot write `grpc-timeout`.
pub(crate) const X_TIMEOUT_MS: &str = "x-timeout-ms";

/// The deadline of one request, as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct Deadline {
    /// The client's deadline, minus the margin.
    requested: Option<Instant>,
    /// When the default deadline of a unary call expires.
    default_at: Instant,
}

impl Default for Deadline {
    fn default() -> Self {
        Self {
            requested: None,
            default_at: Instant::now() + Duration::from_secs(60),
        }
    }
}

impl Deadline {
    /// The deadline of a unary call.
    pub(crate) fn unary(&self) -> Instant {
        self.requested.unwrap_or(self.default_at)
    }

    /// The deadline of a stream: only the client's.
    pub(crate) fn stream(&self) -> Option<Instant> {
        self.requested
    }
}

/// Layer of [`DeadlineService`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeadlineLayer {
    default: Duration,
    max: Duration,
    margin: Duration,
}

impl DeadlineLayer {
    /// `default` for unary calls without a client deadline; a client's deadline cut to `max`;
    /// `margin` taken off every one.
    pub(crate) fn new(default: Duration, max: Duration, margin: Duration) -> Self {
        Self {
            default,
            max,
            margin,
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> DeadlineService<S> {
        DeadlineService {
            inner,
            layer: *self,
        }
    }
}

/// Computes each request's [`Deadline`].
#[derive(Clone, Debug)]
pub(crate) struct DeadlineService<S> {
    inner: S,
    layer: DeadlineLayer,
}

/// The client's timeout: the smaller of `grpc-timeout` and `X-Timeout-Ms`.
pub(crate) fn requested(headers: &http::HeaderMap) -> Result<Option<Duration>, ApiError> {
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::InvalidRequest(format!("{name} is not ASCII")))
            })
            .transpose()
    };
    let grpc = text("grpc-timeout")?
        .map(|v| {
            switchyard::deadline::parse_grpc_timeout(v).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "grpc-timeout {v:?} is not a gRPC timeout (digits and a unit, e.g. 500m or 10S)"
                ))
            })
        })
        .transpose()?;
    let ms = text(X_TIMEOUT_MS)?
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 99_999_999)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "{X_TIMEOUT_MS} {v:?} is not a number of milliseconds (0 to 99999999)"
                    ))
                })
        })
        .transpose()?;
    Ok(match (grpc, ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

impl<S> Service<Request> for DeadlineService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> ResponseFuture {
        let now = Instant::now();
        let requested = match requested(req.headers()) {
            Ok(r) => r,
            Err(e) => return refuse(&req, e),
        };
        let requested = match requested.map(|t| t.min(self.layer.max)) {
            Some(t) if t <= self.layer.margin => {
                return refuse(&req, ApiError::DeadlineExceeded);
            }
            Some(t) => Some(now + (t - self.layer.margin)),
            None => None,
        };
        let default = self.layer.default.saturating_sub(self.layer.margin);
        req.extensions_mut().insert(Deadline {
            requested,
            default_at: now + default.max(Duration::from_millis(1)),
        });
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn the_smaller_of_both_headers_wins() {
        let h = headers(&[("grpc-timeout", "2S"), ("x-timeout-ms", "1500")]);
        assert_eq!(
            requested(&h).expect("ok"),
            Some(Duration::from_millis(1500))
        );
        let h = headers(&[("grpc-timeout", "250m")]);
        assert_eq!(requested(&h).expect("ok"), Some(Duration::from_millis(250)));
        assert_eq!(requested(&headers(&[])).expect("ok"), None);
    }

    #[test]
    fn malformed_values_are_named() {
        for (k, v) in [
            ("grpc-timeout", "10s"),
            ("x-timeout-ms", "-1"),
            ("x-timeout-ms", "soon"),
        ] {
            let err = requested(&headers(&[(k, v)])).expect_err(v);
            assert!(err.to_string().contains(k), "{err}");
        }
    }
}
