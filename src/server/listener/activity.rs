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

#[derive(Debug)]
struct State {
    /// Requests in flight.
    in_flight: usize,
    /// When `in_flight` last dropped to zero (or the connection opened).
    since: Instant,
    /// Whether any request has begun.
    seen: bool,
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
        }
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Completes once the connection has had no request in flight for `first` since it opened
    /// (before its first request), or for `idle` since its last request finished.
    pub(crate) async fn idle(&self, first: Duration, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let deadline = {
                let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                (st.in_flight == 0).then(|| st.since + if st.seen { idle } else { first })
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
