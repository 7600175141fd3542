//! Per-connection request tracking for the idle and header read timeouts: how many requests
//! of one connection are in flight (until their response body is finished or dropped), since
//! when none is, and whether the next request has begun to arrive ([`Watched`]).
//!
//! The two timeouts are told apart as Envoy and Go's `net/http` do: a keep-alive connection
//! waits for its next request for the idle timeout; once that request's first bytes arrive, its
//! head must be complete within the header read timeout. hyper's own HTTP/1.1
//! `header_read_timeout` is not used: it runs from the end of the previous response, so it
//! closed every keep-alive connection idle for longer than the header read timeout (10 s by
//! default, where the idle timeout is 5 min), racing clients that reuse it.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

#[derive(Debug)]
struct State {
    /// Requests in flight.
    in_flight: usize,
    /// When `in_flight` last dropped to zero (or the connection opened).
    since: Instant,
    /// Whether any request has begun.
    seen: bool,
    /// When bytes arrived with nothing in flight (the next request's head is on its way).
    arriving: Option<Instant>,
}

/// Requests in flight on one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection that has just opened, with nothing in flight.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                since: Instant::now(),
                seen: false,
                arriving: None,
            }),
            changed: Notify::new(),
        })
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.in_flight += 1;
            st.seen = true;
            st.arriving = None;
        }
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Records that bytes arrived: with nothing in flight, the next request's head has begun
    /// (its header read timeout runs from now).
    fn arrived(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.in_flight == 0 && st.seen && st.arriving.is_none() {
            st.arriving = Some(Instant::now());
            drop(st);
            self.changed.notify_waiters();
        }
    }

    /// Completes once the connection has had no request in flight for `first` since it opened
    /// (before its first request, its head included), for `idle` since its last request
    /// finished, or for `first` since a later request's first bytes arrived without its head
    /// being complete (`first` is the header read timeout).
    pub(crate) async fn idle(&self, first: Duration, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let deadline = {
                let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                (st.in_flight == 0).then(|| match (st.seen, st.arriving) {
                    (false, _) => st.since + first,
                    (true, Some(head)) => head + first,
                    (true, None) => st.since + idle,
                })
            };
            match deadline {
                None => changed.await,
                Some(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => return,
                    () = changed => {}
                },
            }
        }
    }
}

/// One request in flight; dropping it ends it.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        st.in_flight -= 1;
        if st.in_flight == 0 {
            st.since = Instant::now();
        }
        drop(st);
        self.0.changed.notify_waiters();
    }
}

/// A response body that keeps its request in flight until it is finished or dropped.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) inner: axum::body::Body,
    pub(crate) _request: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's byte stream that tells its [`Activity`] when an HTTP/1.1 request begins to
/// arrive with nothing in flight (the start of its header read timeout). An HTTP/2 connection
/// (its first bytes are the preface, `PRI * HTTP/2.0`, a method HTTP/1.1 reserves for it,
/// RFC 9113 §3.4) is not watched: its PINGs and SETTINGS arrive between streams and say
/// nothing of a request.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    io: S,
    activity: Arc<Activity>,
    /// `None` until the first bytes are read; then whether the connection is HTTP/1.1.
    http1: Option<bool>,
}

impl<S> Watched<S> {
    /// `io`, reporting to `activity`.
    pub(crate) fn new(io: S, activity: Arc<Activity>) -> Self {
        Self {
            io,
            activity,
            http1: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            let http1 = *self.http1.get_or_insert_with(|| !read.starts_with(b"PRI"));
            if http1 {
                self.activity.arrived();
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_the_first_request_then_for_quiet_after_the_last() {
        let a = Activity::new();
        let t0 = Instant::now();
        a.idle(Duration::from_secs(2), Duration::from_secs(5)).await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(2),
            "nothing sent: the first limit"
        );

        let a = Activity::new();
        let request = a.begin();
        let watcher = {
            let a = a.clone();
            tokio::spawn(async move {
                a.idle(Duration::from_secs(2), Duration::from_secs(5)).await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!watcher.is_finished(), "a request in flight is never idle");
        let ended = Instant::now();
        drop(request);
        let closed = watcher.await.expect("watcher");
        assert_eq!(
            closed - ended,
            Duration::from_secs(5),
            "quiet for the idle limit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_request_that_begins_to_arrive_has_the_header_read_limit() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let a = Activity::new();
        drop(a.begin());
        let (mut client, server) = tokio::io::duplex(64);
        let mut watched = Watched::new(server, a.clone());
        let watcher = {
            let a = a.clone();
            tokio::spawn(async move {
                a.idle(Duration::from_secs(2), Duration::from_secs(60))
                    .await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(
            !watcher.is_finished(),
            "an idle keep-alive connection waits for the idle limit, not the header read one"
        );
        client.write_all(b"GET / HT").await.expect("write");
        let mut buf = [0u8; 8];
        watched.read_exact(&mut buf).await.expect("read");
        let began = Instant::now();
        let closed = watcher.await.expect("watcher");
        assert_eq!(
            closed - began,
            Duration::from_secs(2),
            "a head on its way: the header read limit from its first bytes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http2_frames_between_streams_are_not_a_request_head() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let a = Activity::new();
        let (mut client, server) = tokio::io::duplex(64);
        let mut watched = Watched::new(server, a.clone());
        client
            .write_all(b"PRI * HTTP/2.0\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 16];
        watched.read_exact(&mut buf).await.expect("read");
        drop(a.begin());
        let ended = Instant::now();
        client.write_all(b"a PING frame").await.expect("write");
        let mut ping = [0u8; 12];
        watched.read_exact(&mut ping).await.expect("read");
        a.idle(Duration::from_secs(2), Duration::from_secs(60))
            .await;
        assert_eq!(ended.elapsed(), Duration::from_secs(60), "the idle limit");
    }
}
