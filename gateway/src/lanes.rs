//! Connections for long-lived calls (SSE streams, WebSocket sessions).
//!
//! One HTTP/2 connection carries a bounded number of concurrent streams — servers built on
//! hyper (tonic, Switchyard agents) allow 200 by default — and the registry holds one
//! connection per endpoint, which is right for short unary calls. Long-lived calls would
//! exhaust it: stream 201 would wait until another ends. So each long-lived call takes a
//! place on a *lane*: a connection to the endpoint the registry's round robin picked,
//! carrying at most [`STREAMS_PER_LANE`] long-lived calls; a new lane (connection) opens
//! when every lane of the endpoint is full.
//!
//! Lanes never share the registry's connection, which carries the unary calls: a peer's
//! protocol error ends every call on the connection it hits (e.g. an HTTP/2 header block over
//! the limit, RFC 9113 §10.5.1), so a unary call that trips one cannot end the streams of
//! other clients, nor a stream the unary calls. A failed connection is re-established by the
//! channel for the next call.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::{Stream, StreamExt as _};
use switchyard::{AgentRef, Client};

/// Long-lived calls per connection: half of hyper's default limit, leaving room for the
/// unary calls that share the first lane.
pub(crate) const STREAMS_PER_LANE: usize = 100;

#[derive(Debug)]
struct Lane {
    client: Client,
    open: Arc<AtomicUsize>,
}

/// The lanes of every endpoint.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    by_endpoint: Mutex<HashMap<String, Vec<Lane>>>,
}

/// A long-lived call's place on a lane; freed on drop.
#[derive(Debug)]
pub(crate) struct LaneSlot(Arc<AtomicUsize>);

impl Drop for LaneSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LaneSlot {
    /// `stream`, holding this slot until it is dropped.
    pub(crate) fn hold<S: Stream + Send + 'static>(
        self,
        stream: S,
    ) -> impl Stream<Item = S::Item> + Send + 'static {
        stream.map(move |item| {
            let _held_until_the_stream_is_dropped = &self;
            item
        })
    }
}

impl Lanes {
    /// A client for one long-lived call to `agent`, and its place on the lane.
    ///
    /// The endpoint is the one the agent's balancer picks ([`AgentRef::pick_endpoint`]);
    /// when none is available, the agent's own client, whose call fails with UNAVAILABLE.
    pub(crate) fn client(&self, agent: &AgentRef) -> (Client, LaneSlot) {
        let first = agent.client();
        let tls = agent.client_tls();
        let Some(addr) = agent.pick_endpoint() else {
            return (first, LaneSlot(Arc::new(AtomicUsize::new(1))));
        };
        let mut map = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        let lanes = map.entry(addr.clone()).or_insert_with(|| {
            // The address was valid for the registry, so it is valid here.
            let client = Client::lazy_with(&addr, tls.as_ref()).unwrap_or_else(|_| first.clone());
            vec![Lane {
                client,
                open: Arc::default(),
            }]
        });
        let taken = lanes.iter().find(|lane| {
            lane.open
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < STREAMS_PER_LANE).then_some(n + 1)
                })
                .is_ok()
        });
        if let Some(lane) = taken {
            return (lane.client.clone(), LaneSlot(lane.open.clone()));
        }
        // The address was valid for the registry, so it is valid here.
        let client = Client::lazy_with(&addr, tls.as_ref()).unwrap_or(first);
        let open = Arc::new(AtomicUsize::new(1));
        lanes.push(Lane {
            client: client.clone(),
            open: open.clone(),
        });
        tracing::debug!(endpoint = %addr, lanes = lanes.len(), "opened a lane");
        (client, LaneSlot(open))
    }
}

#[cfg(test)]
mod tests {
    use switchyard::{Registry, RegistryConfig};

    use super::*;

    #[tokio::test]
    async fn a_full_lane_opens_another_and_slots_come_back() {
        let registry =
            Registry::new(&RegistryConfig::from_env_value("a=127.0.0.1:9").expect("config"))
                .expect("registry");
        let agent = registry.agent("a").expect("agent");
        let lanes = Lanes::default();
        let slots: Vec<LaneSlot> = (0..STREAMS_PER_LANE + 1)
            .map(|_| lanes.client(&agent).1)
            .collect();
        let count = |l: &Lanes| l.by_endpoint.lock().expect("lock")["127.0.0.1:9"].len();
        assert_eq!(count(&lanes), 2);
        drop(slots);
        let _again = lanes.client(&agent);
        assert_eq!(count(&lanes), 2, "freed places are reused");
        let open: Vec<usize> = lanes.by_endpoint.lock().expect("lock")["127.0.0.1:9"]
            .iter()
            .map(|l| l.open.load(Ordering::Acquire))
            .collect();
        assert_eq!(open, [1, 0]);
    }
}
