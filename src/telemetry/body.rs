//! [`on_end`]: a response body that reports how it ended, for spans and metrics that must
//! cover a whole response — a gRPC stream or an SSE stream — not just its headers.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::body::Body;
use http::HeaderMap;
use http_body::Frame;

/// How a response body ended.
#[derive(Debug)]
pub enum BodyEnd<'a> {
    /// Its trailers passed (gRPC puts the status there).
    Trailers(&'a HeaderMap),
    /// It ended without trailers.
    Complete,
    /// Reading it failed.
    Error,
    /// It was dropped before its end: the client went away.
    Dropped,
}

/// Wraps `body` so that `f` runs exactly once, when the body ends (see [`BodyEnd`]).
pub fn on_end<F>(body: Body, f: F) -> Body
where
    F: for<'a> FnOnce(BodyEnd<'a>) + Send + Unpin + 'static,
{
    Body::new(OnEnd {
        inner: body,
        f: Some(f),
    })
}

struct OnEnd<F>
where
    F: for<'a> FnOnce(BodyEnd<'a>),
{
    inner: Body,
    f: Option<F>,
}

impl<F> OnEnd<F>
where
    F: for<'a> FnOnce(BodyEnd<'a>),
{
    fn end(&mut self, how: BodyEnd<'_>) {
        if let Some(f) = self.f.take() {
            f(how);
        }
    }
}

impl<F> http_body::Body for OnEnd<F>
where
    F: for<'a> FnOnce(BodyEnd<'a>) + Send + Unpin + 'static,
{
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref() {
                    self.end(BodyEnd::Trailers(trailers));
                }
            }
            Some(Err(_)) => self.end(BodyEnd::Error),
            None => self.end(BodyEnd::Complete),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<F> Drop for OnEnd<F>
where
    F: for<'a> FnOnce(BodyEnd<'a>),
{
    fn drop(&mut self) {
        self.end(BodyEnd::Dropped);
    }
}
