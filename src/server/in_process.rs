//! In-process endpoints: an agent served in the same process as its callers (`switchyard up`
//! runs every agent and the gateway in one process) is called through its request stack
//! directly, without a TCP connection, HTTP/2 framing or the client's connection task, as
//! grpc-java's in-process transport and grpc-go's `bufconn` do.
//!
//! An [`AgentServer`](crate::AgentServer) with [`ServeConfig::in_process`] set and no TLS
//! registers its router under its bound address (and `127.0.0.1`/`::1` when bound to an
//! unspecified one) while it serves, and withdraws it when its drain starts; a registry
//! client ([`crate::client::Transport`]) whose endpoint is such an address, with no client
//! TLS, sends each call there while it is registered and over its connection otherwise. The
//! call goes through the same layers as one that arrived over the network (observe, authz,
//! version, size limits, the gRPC services); what it skips is the listener's: connection
//! limits and the per-connection HTTP/2 settings.
//!
//! [`ServeConfig::in_process`]: crate::ServeConfig::in_process

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Mutex, PoisonError},
};

/// The routers of the agents served in this process, by address, each with the token of its
/// registration (so that a stale guard never removes a newer server's entry).
static ENDPOINTS: Mutex<Option<HashMap<SocketAddr, (u64, axum::Router)>>> = Mutex::new(None);

/// Keeps an agent registered until dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    addrs: Vec<SocketAddr>,
    token: u64,
}

/// Registers `router` under `addr` (and the loopback addresses of its port when `addr` is
/// unspecified) until the returned guard is dropped.
pub(crate) fn register(addr: SocketAddr, router: axum::Router) -> Registration {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let token = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut addrs = vec![addr];
    if addr.ip().is_unspecified() {
        addrs.push(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            addr.port(),
        ));
        addrs.push(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            addr.port(),
        ));
    }
    let mut map = ENDPOINTS.lock().unwrap_or_else(PoisonError::into_inner);
    let map = map.get_or_insert_with(HashMap::new);
    for a in &addrs {
        map.insert(*a, (token, router.clone()));
    }
    Registration { addrs, token }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = ENDPOINTS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(map) = map.as_mut() {
            for a in &self.addrs {
                if map.get(a).is_some_and(|(t, _)| *t == self.token) {
                    map.remove(a);
                }
            }
        }
    }
}

/// The router of the agent served in this process at `addr`, if one is registered.
pub(crate) fn find(addr: SocketAddr) -> Option<axum::Router> {
    let map = ENDPOINTS.lock().unwrap_or_else(PoisonError::into_inner);
    map.as_ref()?.get(&addr).map(|(_, r)| r.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Agent, AgentError, AgentServer, Registry, RegistryConfig, ServeConfig, StoreConfig,
        TaskContext, TaskEvents,
        pb::a2a::{AgentCard, Artifact, Part, TaskState, stream_response::Payload},
        registry::AgentConfig,
    };

    struct Shout;

    #[tonic::async_trait]
    impl Agent for Shout {
        fn card(&self) -> AgentCard {
            crate::card::builder("shout", "Upper-cases text").build()
        }

        async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
            let loud = ctx.text().to_uppercase();
            events
                .artifact(Artifact::new("shout", vec![Part::text(loud)]))
                .await?;
            Ok(())
        }
    }

    /// An address nothing listens on (a port just freed).
    async fn closed_port() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    #[tokio::test]
    async fn a_registry_client_reaches_an_agent_of_this_process_without_a_connection() {
        let server = AgentServer::bind(
            Shout,
            ServeConfig {
                store: StoreConfig::Memory,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // The agent's router under an address with no listener: only an in-process call can
        // reach it there.
        let addr = closed_port().await;
        let registry = Registry::new(&RegistryConfig {
            agents: vec![AgentConfig {
                name: "shout".into(),
                endpoints: vec![addr.to_string()],
                card_url: None,
                public_grpc: false,
            }],
        })
        .unwrap();
        let client = registry.agent("shout").unwrap().client();
        let registration = register(addr, server.router.clone());
        let task = client.send_text("hello").await.expect("called in process");
        assert_eq!(task.state(), TaskState::Completed);
        assert_eq!(task.artifacts[0].text(), "HELLO", "the agent's own answer");
        // A stream's events arrive as the agent sends them, the last one the settled task.
        let mut events = client
            .send_streaming_message(crate::pb::a2a::SendMessageRequest {
                message: Some(crate::pb::a2a::Message::user_text("stream")),
                ..Default::default()
            })
            .await
            .expect("streamed in process");
        let mut states = Vec::new();
        let mut artifacts = Vec::new();
        while let Some(event) = events.message().await.expect("every event arrives") {
            match event.payload {
                Some(Payload::Task(t)) => states.push(t.state()),
                Some(Payload::StatusUpdate(u)) => states.extend(u.status.map(|s| s.state())),
                Some(Payload::ArtifactUpdate(a)) => artifacts.extend(a.artifact.map(|a| a.text())),
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(artifacts, ["STREAM"]);
        assert_eq!(states.last(), Some(&TaskState::Completed), "{states:?}");
        // Withdrawn: the call goes over the connection, and nothing listens there.
        drop(registration);
        let err = client.send_text("hello").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    }

    #[tokio::test]
    async fn a_server_registers_while_it_serves_and_withdraws_when_its_drain_starts() {
        let bind = |in_process| {
            AgentServer::bind(
                Shout,
                ServeConfig {
                    store: StoreConfig::Memory,
                    in_process,
                    ..Default::default()
                },
            )
        };
        let plain = bind(false).await.unwrap();
        let (plain_addr, plain_stop) = (plain.local_addr(), plain.shutdown_handle());
        let plain = tokio::spawn(plain.run());
        let server = bind(true).await.unwrap();
        let (addr, stop) = (server.local_addr(), server.shutdown_handle());
        let serving = tokio::spawn(server.run());
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while find(addr).is_none() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("registered once it serves");
        assert!(find(plain_addr).is_none(), "only when asked to");
        stop.shutdown();
        serving.await.unwrap();
        assert!(find(addr).is_none(), "withdrawn by the drain");
        plain_stop.shutdown();
        plain.await.unwrap();
    }

    #[test]
    fn a_registration_is_found_until_dropped_and_covers_loopback_when_unspecified() {
        let addr: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let guard = register(addr, axum::Router::new());
        assert!(find(addr).is_some());
        assert!(
            find(loopback).is_some(),
            "an unspecified bind serves loopback"
        );
        assert!(find("127.0.0.1:2".parse().unwrap()).is_none());
        // A newer server on the same address outlives the older one's guard.
        let newer = register(loopback, axum::Router::new());
        drop(guard);
        assert!(find(addr).is_none());
        assert!(find(loopback).is_some(), "the newer registration stays");
        drop(newer);
        assert!(find(loopback).is_none());
    }
}
