//! The two halves of a forwarded call that outlive the forwarding: [`Outcome`], the record of
//! its final status (span and metric), and [`Relay`], the agent's response body on its way to
//! the client.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use switchyard::{
    client::code_name,
    telemetry::{RpcSide, metrics, record_rpc_status},
};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Code;

use super::{Protocol, frames::Refusal, target};
use crate::{
    error::{ApiError, grpc},
    lanes::LaneSlot,
};

/// The `grpc-status` in `headers` (trailers, or the headers of a trailers-only answer).
pub(crate) fn status_in(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The record of one call: the status on the request's span and the call counter.
#[derive(Debug)]
pub(crate) struct Outcome {
    service: &'static str,
    method: &'static str,
    protocol: Protocol,
    span: tracing::Span,
    done: bool,
}

impl Outcome {
    /// Starts the record of a call of `path` (the current span is the request's).
    pub(crate) fn start(path: &str, protocol: Protocol) -> Self {
        let (_, rpc) = target::split(path);
        let (service, method) = switchyard::server::known_rpc(rpc);
        Self {
            service,
            method,
            protocol,
            span: tracing::Span::current(),
            done: false,
        }
    }

    /// Records the final status `code`.
    pub(crate) fn finish(mut self, code: i32) {
        self.record(code);
    }

    fn record(&mut self, code: i32) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        record_rpc_status(&self.span, code, RpcSide::Server);
        ::metrics::counter!(
            metrics::HTTP_GRPC_CALLS,
            "service" => self.service,
            "method" => self.method,
            "protocol" => self.protocol.label(),
            "code" => code_name(Code::from_i32(code)),
        )
        .increment(1);
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // The client went away before the end.
        self.record(Code::Cancelled as i32);
    }
}

/// The agent's response body on its way to the client, ended with the gateway's status when
/// the gateway refuses the request mid-stream, the deadline passes or the agent's stream breaks.
pub(crate) struct Relay {
    inner: tonic::body::Body,
    /// For streams: the gateway's drain, which ends them with UNAVAILABLE (as it ends SSE
    /// streams), so that clients resume elsewhere; unary calls finish.
    draining: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    refusal: Pin<Box<WaitForCancellationFutureOwned>>,
    refused: Arc<Refusal>,
    expiry: Option<Pin<Box<Sleep>>>,
    ended: bool,
    outcome: Option<Outcome>,
    /// The call's place on a lane, held until the body ends.
    _slot: Option<LaneSlot>,
    agent: String,
}

impl Relay {
    /// Relays `inner`, the agent's answer to a call to `agent`: ended early by `refusal`, by
    /// the `deadline` (plus a little slack for the agent's own answer) and, for streams, by
    /// the gateway's `draining`; the call's `outcome` is recorded at the end and its lane
    /// `slot` held until then.
    pub(crate) fn new(
        inner: tonic::body::Body,
        refusal: Arc<Refusal>,
        deadline: Option<Instant>,
        draining: Option<CancellationToken>,
        outcome: Outcome,
        slot: Option<LaneSlot>,
        agent: String,
    ) -> Self {
        Self {
            inner,
            draining: draining.map(|d| Box::pin(d.cancelled_owned())),
            refusal: Box::pin(refusal.raised().clone().cancelled_owned()),
            refused: refusal,
            expiry: deadline.map(|at| Box::pin(tokio::time::sleep_until(at + super::LOCAL_SLACK))),
            ended: false,
            outcome: Some(outcome),
            _slot: slot,
            agent,
        }
    }

    /// Ends the body with `error` as its trailers.
    fn end_with(&mut self, error: ApiError) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        crate::error::log(&error);
        self.ended = true;
        let status = grpc::status(&error);
        if let Some(o) = self.outcome.take() {
            o.finish(status.code() as i32);
        }
        let mut trailers = HeaderMap::new();
        if status.add_header(&mut trailers).is_err() {
            trailers.insert("grpc-status", HeaderValue::from(status.code() as i32));
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl http_body::Body for Relay {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if this.refusal.as_mut().poll(cx).is_ready() {
            let e = this.refused.take().unwrap_or(ApiError::DeadlineExceeded);
            return this.end_with(e);
        }
        if let Some(expiry) = this.expiry.as_mut()
            && expiry.as_mut().poll(cx).is_ready()
        {
            return this.end_with(ApiError::DeadlineExceeded);
        }
        if let Some(draining) = this.draining.as_mut()
            && draining.as_mut().poll(cx).is_ready()
        {
            return this.end_with(ApiError::Draining);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.ended = true;
                    if let Some(o) = this.outcome.take() {
                        o.finish(status_in(trailers).unwrap_or(Code::Unknown as i32));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(status))) => {
                let agent = std::mem::take(&mut this.agent);
                let error =
                    if status.code() == Code::Cancelled && status.message() == "Timeout expired" {
                        ApiError::DeadlineExceeded
                    } else {
                        ApiError::AgentFailed { agent, status }
                    };
                this.end_with(error)
            }
            Poll::Ready(None) => {
                this.ended = true;
                if let Some(o) = this.outcome.take() {
                    // No trailers: the agent broke the gRPC protocol.
                    o.finish(Code::Unknown as i32);
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}
