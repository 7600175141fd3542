//! [`Frames`]: a request body on its way to the agent, unchanged, whose gRPC framing the
//! gateway checks as it streams: each message is a 5-byte prefix (a flags byte, then the
//! length as a big-endian `u32`) and the message (gRPC over HTTP/2, "Length-Prefixed-Message").
//!
//! Refused, with the error left in the call's [`Refusal`] for the answer and the stream to the
//! agent reset:
//! - a message longer than the limit: RESOURCE_EXHAUSTED, before any of it is forwarded;
//! - a flags byte other than 0 or 1, or the compressed flag (1) on a request without a
//!   `grpc-encoding`: INTERNAL, as gRPC prescribes for protocol errors;
//! - a body that ends inside a prefix or a message (a truncated frame): INTERNAL;
//! - a body that cannot be read (e.g. gRPC-Web text that is not base64): INTERNAL.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use axum::body::Body;
use bytes::Bytes;
use http_body::Frame;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// Length of a message prefix.
const PREFIX: usize = 5;

/// The error that ends a call on the gateway's side, shared by the request body that finds it
/// and the response that reports it.
#[derive(Debug, Default)]
pub(crate) struct Refusal {
    error: Mutex<Option<ApiError>>,
    raised: CancellationToken,
}

impl Refusal {
    /// Records `error` (the first one wins) and wakes whoever waits on [`raised`](Self::raised).
    pub(crate) fn raise(&self, error: ApiError) {
        let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() && !self.raised.is_cancelled() {
            *slot = Some(error);
        }
        self.raised.cancel();
    }

    /// Cancelled once an error is raised.
    pub(crate) fn raised(&self) -> &CancellationToken {
        &self.raised
    }

    /// The error raised, once.
    pub(crate) fn take(&self) -> Option<ApiError> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Where the scan is in the stream of messages.
#[derive(Debug, Default)]
struct Scan {
    prefix: [u8; PREFIX],
    /// Bytes of `prefix` read so far.
    have: usize,
    /// Bytes of the current message still to come.
    remaining: u64,
}

impl Scan {
    /// Takes the next bytes of the body.
    fn feed(&mut self, mut data: &[u8], limit: usize, encoded: bool) -> Result<(), ApiError> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = data.len().min(PREFIX - self.have);
            self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == PREFIX {
                self.have = 0;
                let flags = self.prefix[0];
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]);
                if flags > 1 {
                    return Err(ApiError::MalformedGrpc(format!(
                        "a message has flags {flags:#04x}; only 0 and 1 (compressed) are defined"
                    )));
                }
                if flags == 1 && !encoded {
                    return Err(ApiError::MalformedGrpc(
                        "a message is flagged compressed but the request has no grpc-encoding \
                         header"
                            .into(),
                    ));
                }
                if len as usize > limit {
                    return Err(ApiError::MessageTooLarge {
                        size: len.into(),
                        limit,
                    });
                }
                self.remaining = len.into();
            }
        }
        Ok(())
    }

    /// Checks that the body ended between two messages.
    fn finish(&self) -> Result<(), ApiError> {
        if self.have > 0 {
            return Err(ApiError::MalformedGrpc(format!(
                "the body ends inside a message prefix ({} of {PREFIX} bytes)",
                self.have
            )));
        }
        if self.remaining > 0 {
            return Err(ApiError::MalformedGrpc(format!(
                "the body ends {} bytes short of the end of a message",
                self.remaining
            )));
        }
        Ok(())
    }
}

/// A request body checked frame by frame (see the module docs).
#[derive(Debug)]
pub(crate) struct Frames {
    inner: Body,
    scan: Scan,
    limit: usize,
    encoded: bool,
    refusal: Arc<Refusal>,
    ended: bool,
}

impl Frames {
    /// Checks `inner`: messages of at most `limit` bytes; compressed ones only when the
    /// request names a `grpc-encoding` (`encoded`); errors go to `refusal`.
    pub(crate) fn new(inner: Body, limit: usize, encoded: bool, refusal: Arc<Refusal>) -> Self {
        Self {
            inner,
            scan: Scan::default(),
            limit,
            encoded,
            refusal,
            ended: false,
        }
    }

    fn refuse(&mut self, error: ApiError) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        tracing::debug!(%error, "gRPC request refused while streaming");
        self.ended = true;
        self.refusal.raise(error);
        Poll::Ready(Some(Err(std::io::Error::other(
            "request refused by the gateway",
        ))))
    }
}

/// The message of a request body's read error: the gRPC status tonic-web gives a body it
/// cannot decode, else the error itself.
fn read_error(error: &axum::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(status) = e.downcast_ref::<tonic::Status>() {
            return status.message().to_owned();
        }
        source = e.source();
    }
    error.to_string()
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && let Err(e) = this.scan.feed(data, this.limit, this.encoded)
                {
                    return this.refuse(e);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                let message = read_error(&e);
                this.refuse(ApiError::MalformedGrpc(format!(
                    "the request body could not be read: {message}"
                )))
            }
            None => match this.scan.finish() {
                Ok(()) => {
                    this.ended = true;
                    Poll::Ready(None)
                }
                Err(e) => this.refuse(e),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flags: u8, len: u32) -> Vec<u8> {
        let mut v = vec![flags];
        v.extend_from_slice(&len.to_be_bytes());
        v
    }

    #[test]
    fn messages_split_anywhere_are_followed() {
        let mut body = frame(0, 3);
        body.extend_from_slice(b"abc");
        body.extend(frame(0, 0));
        body.extend(frame(0, 2));
        body.extend_from_slice(b"xy");
        for cut in 0..body.len() {
            let mut s = Scan::default();
            s.feed(&body[..cut], 10, false).expect("first part");
            s.feed(&body[cut..], 10, false).expect("second part");
            s.finish().expect("whole");
        }
    }

    #[test]
    fn bad_frames_are_named() {
        let mut s = Scan::default();
        let e = s.feed(&frame(0, 11), 10, false).expect_err("too large");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        let e = Scan::default()
            .feed(&frame(1, 1), 10, false)
            .expect_err("compressed");
        assert!(e.to_string().contains("grpc-encoding"), "{e}");
        assert!(Scan::default().feed(&frame(1, 1), 10, true).is_ok());
        let e = Scan::default()
            .feed(&frame(0x80, 1), 10, true)
            .expect_err("flags");
        assert_eq!(e.code(), tonic::Code::Internal);
        let mut s = Scan::default();
        s.feed(&[0, 0, 0], 10, false).expect("a partial prefix");
        assert!(s.finish().expect_err("cut").to_string().contains("prefix"));
        let mut s = Scan::default();
        s.feed(&frame(0, 4), 10, false).expect("prefix");
        s.feed(b"ab", 10, false).expect("half");
        assert!(
            s.finish()
                .expect_err("cut")
                .to_string()
                .contains("2 bytes short")
        );
    }
}
