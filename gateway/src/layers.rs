//! The gateway's tower layers, in the order a request meets them (outermost first):
//!
//! 1. [`request_id`]: accepts a well-formed `x-request-id` or makes one (UUID v4), puts it
//!    on the request (for the agent) and echoes it on the response — every response,
//!    including the errors of the layers below;
//! 2. [`trace`]: one `http.server` span per request, continuing the caller's W3C trace
//!    context; the gRPC call made inside carries it on (see [`crate::upstream`]);
//! 3. [`crate::auth::layer`]: authentication (401) and the authorization policy (403), when
//!    configured; before the header checks, so that every bad credential (a repeated or
//!    oversized `Authorization`) gets 401; CORS preflights pass;
//! 4. [`header_check`]: two `Host` headers, or a forwarded header that is repeated or too
//!    large, get 400;
//! 5. CORS (`tower_http::cors`, only when origins are configured): answers preflights before
//!    anything below can refuse them, and marks error answers readable too;
//! 6. [`drain`]: once the gateway drains, new requests get 503 + `Retry-After`;
//! 7. [`limit`]: at most `max_concurrent_requests` requests, streams and sessions at once;
//!    beyond it requests are shed at once with 429 / RESOURCE_EXHAUSTED + `Retry-After`;
//! 8. [`body_limit`]: bodies over `max_body_bytes` are refused (by `Content-Length` before
//!    reading, else while reading);
//! 9. [`deadline`]: `grpc-timeout` or `X-Timeout-Ms` (else the route default) minus the
//!    margin becomes the deadline the handlers pass to the agent;
//! 10. the routes.
//!
//! `/healthz` and `/readyz` sit outside layers 6–9: probes are never shed, and liveness
//! stays up during a drain. Every layer is `FooLayer` → `Foo<S>`; its refusals go through
//! [`Failure`], shaped for the front the request was aimed at.

pub(crate) mod body_limit;
pub(crate) mod deadline;
pub(crate) mod drain;
pub(crate) mod header_check;
pub(crate) mod limit;
pub(crate) mod request_id;
pub(crate) mod trace;

use std::{convert::Infallible, future::Future, pin::Pin};

use axum::response::{IntoResponse as _, Response};

use crate::error::{ApiError, Failure, Front};

/// The future of every gateway layer.
pub(crate) type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// An immediate refusal of `request`, shaped for its front.
pub(crate) fn refuse(request: &axum::extract::Request, error: ApiError) -> ResponseFuture {
    let front = Front::of_request(request);
    let response = Failure { front, error }.into_response();
    Box::pin(std::future::ready(Ok(response)))
}
