//! Per-connection request tracking for the idle timeout: how many requests of one connection
//! are in flight (until their response body is finished or dropped), and since when none is.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::{sync::Notify, time::Instant};

/// Requests in flight on one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    /// In-flight requests, and when the count last dropped to zero (or the connection opened).
    state: Mutex<(usize, Instant)>,
    changed: Notify,
}

impl Activity {
    /// A connection that has just opened, with nothing in flight.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((0, Instant::now())),
            changed: Notify::new(),
        })
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Completes once the connection has had no request in flight for `first` since it opened
    /// (before its first request), or for `idle` since its last request finished.
    pub(crate) async fn idle(&self, first: Duration, idle: Duration) {
        let mut seen_request = false;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (in_flight, since) = *self.state.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight > 0 {
                seen_request = true;
                changed.await;
                continue;
            }
            let limit = if seen_request { idle } else { first };
            tokio::select! {
                () = tokio::time::sleep_until(since + limit) => return,
                () = changed => seen_request = true,
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
        st.0 -= 1;
        if st.0 == 0 {
            st.1 = Instant::now();
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
}
