//! In-process endpoints: an agent served in the same process as its callers (`switchyard up`
//! runs every agent and the gateway in one process) is called through its request stack
//! directly, without a TCP connection, HTTP/2 framing or the client's connection task, as
//! grpc-java's in-process transport and grpc-go's `bufconn` do.
//!
//! An [`AgentServer`](crate::AgentServer) with [`ServeConfig::in_process`] set registers its
//! router under its bound address (and `127.0.0.1`/`::1` when bound to an unspecified one)
//! while it serves, and withdraws it when its drain starts; a registry client
//! ([`crate::client::Transport`]) whose endpoint is such an address sends each call there
//! while it is registered and the two would talk over the network, else over its connection:
//!
//! - a plain-text server takes in-process calls from clients without TLS;
//! - an mTLS server ([`ServeConfig::tls`]) takes them from clients of the same mesh: their
//!   certificate's SPIFFE ID is in the server's trust domain and they trust the same CA file
//!   (the handshake's checks, made on the configuration: both ends are this process's); the
//!   request carries the client's [`PeerIdentity`] as a handshake would have set it, so
//!   authorization sees the same caller. A client of another mesh goes over the network,
//!   where the handshake decides.
//!
//! The call goes through the same layers as one that arrived over the network (observe, authz,
//! version, size limits, the gRPC services); what it skips is the listener's: TLS, connection
//! limits and the per-connection HTTP/2 settings.
//!
//! [`ServeConfig::tls`]: crate::ServeConfig::tls
//! [`ServeConfig::in_process`]: crate::ServeConfig::in_process

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

use crate::{identity::PeerIdentity, tls::ClientTls};

/// The mesh an mTLS server's callers must belong to.
#[derive(Clone, Debug)]
pub(crate) struct Mesh {
    /// The trust domain of its callers' SPIFFE IDs.
    pub(crate) trust_domain: String,
    /// The CA file its callers' certificates must come from ([`crate::tls::TlsFiles::ca`]).
    pub(crate) ca: PathBuf,
}

/// One registered agent.
#[derive(Clone, Debug)]
struct Endpoint {
    /// Of its registration: a stale guard never removes a newer server's entry.
    token: u64,
    router: axum::Router,
    /// `Some`: an mTLS server, for callers of this mesh only.
    mesh: Option<Mesh>,
}

/// The agents served in this process, by address.
static ENDPOINTS: Mutex<Option<HashMap<SocketAddr, Endpoint>>> = Mutex::new(None);

/// Keeps an agent registered until dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    addrs: Vec<SocketAddr>,
    token: u64,
}

/// Registers `router` under `addr` (and the loopback addresses of its port when `addr` is
/// unspecified) until the returned guard is dropped; `mesh` for an mTLS server.
pub(crate) fn register(addr: SocketAddr, router: axum::Router, mesh: Option<Mesh>) -> Registration {
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
    let endpoint = Endpoint {
        token,
        router,
        mesh,
    };
    for a in &addrs {
        map.insert(*a, endpoint.clone());
    }
    Registration { addrs, token }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = ENDPOINTS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(map) = map.as_mut() {
            for a in &self.addrs {
                if map.get(a).is_some_and(|e| e.token == self.token) {
                    map.remove(a);
                }
            }
        }
    }
}

/// The router of the agent served in this process at `addr`, for a client with `tls` (`None`:
/// plain text), and the peer identity its requests carry; `None` when no agent is registered
/// there or the two would not talk over the network (see the module docs).
pub(crate) fn find(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
) -> Option<(axum::Router, Option<PeerIdentity>)> {
    let map = ENDPOINTS.lock().unwrap_or_else(PoisonError::into_inner);
    let endpoint = map.as_ref()?.get(&addr)?;
    let identity = match (&endpoint.mesh, tls) {
        (None, None) => None,
        (Some(mesh), Some(tls))
            if tls.spiffe_id().trust_domain() == mesh.trust_domain && tls.ca_file() == mesh.ca =>
        {
            Some(PeerIdentity(tls.spiffe_id().clone()))
        }
        _ => return None,
    };
    Some((endpoint.router.clone(), identity))
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

    /// Answers with the SPIFFE ID its caller presented.
    struct Whoami;

    #[tonic::async_trait]
    impl Agent for Whoami {
        fn card(&self) -> AgentCard {
            crate::card::builder("whoami", "Names its caller").build()
        }

        async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
            let who = ctx
                .peer_identity()
                .map_or_else(|| "anonymous".to_owned(), |p| p.0.to_string());
            events
                .artifact(Artifact::new("who", vec![Part::text(who)]))
                .await?;
            Ok(())
        }
    }

    /// An address nothing listens on (a port just freed).
    async fn closed_port() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    /// [`Whoami`] bound on the in-memory store, `in_process` or not, not serving.
    async fn on_memory(in_process: bool) -> AgentServer {
        AgentServer::bind(
            Whoami,
            ServeConfig {
                store: StoreConfig::Memory,
                in_process,
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }

    /// A registry client of agent `name` at `addr`, with `tls` (`None`: plain text).
    fn client_at(name: &str, addr: SocketAddr, tls: Option<ClientTls>) -> crate::Client {
        let registry = Registry::with_settings(
            &RegistryConfig {
                agents: vec![AgentConfig {
                    name: name.into(),
                    endpoints: vec![addr.to_string()],
                    card_url: None,
                    public_grpc: false,
                }],
            },
            crate::registry::DiscoveryConfig::default(),
            crate::resilience::ResilienceConfig {
                tls,
                ..Default::default()
            },
        )
        .unwrap();
        registry.agent(name).unwrap().client()
    }

    #[tokio::test]
    async fn a_registry_client_reaches_an_agent_of_this_process_without_a_connection() {
        let server = on_memory(false).await;
        // The agent's router under an address with no listener: only an in-process call can
        // reach it there.
        let addr = closed_port().await;
        let client = client_at("whoami", addr, None);
        let registration = register(addr, server.router.clone(), None);
        let task = client.send_text("hello").await.expect("called in process");
        assert_eq!(task.state(), TaskState::Completed);
        assert_eq!(
            task.artifacts[0].text(),
            "anonymous",
            "the agent's own answer"
        );
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
        assert_eq!(artifacts, ["anonymous"]);
        assert_eq!(states.last(), Some(&TaskState::Completed), "{states:?}");
        // Withdrawn: the call goes over the connection, and nothing listens there.
        drop(registration);
        let err = client.send_text("hello").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    }

    /// The SPIFFE ID of `name` in the test trust domain.
    fn id(name: &str) -> crate::identity::SpiffeId {
        crate::identity::SpiffeId::workload("in-process.test", &[name]).unwrap()
    }

    #[tokio::test]
    async fn an_mtls_agent_takes_calls_in_process_from_its_mesh_with_their_identity_only() {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::tls::dev::DevCa::ensure(dir.path(), "in-process.test").unwrap();
        let mesh = |name: &str| crate::tls::MeshTls::load(&ca.issue(name, &id(name)).unwrap());
        let server = AgentServer::bind(
            Whoami,
            ServeConfig {
                store: StoreConfig::Memory,
                tls: Some(mesh("agent").unwrap()),
                in_process: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let addr = closed_port().await;
        let _registration = register(
            addr,
            server.router.clone(),
            server.in_process.clone().flatten(),
        );
        let client_with = |tls| client_at("whoami", addr, tls);

        // A client of the mesh: in process (nothing listens at `addr`), as itself.
        let caller = client_with(Some(mesh("caller").unwrap().client().unwrap()));
        let task = caller.send_text("who?").await.expect("called in process");
        assert_eq!(
            task.artifacts[0].text(),
            "spiffe://in-process.test/caller",
            "the caller's identity, as a handshake would set it"
        );

        // A plain-text client, and a client of another CA in the same trust domain, go over
        // the network, where the handshake would refuse them (here nothing listens).
        let other = tempfile::tempdir().unwrap();
        let other_ca = crate::tls::dev::DevCa::ensure(other.path(), "in-process.test").unwrap();
        let stranger = crate::tls::MeshTls::load(&other_ca.issue("caller", &id("caller")).unwrap())
            .unwrap()
            .client()
            .unwrap();
        for (what, client) in [
            ("plain text", client_with(None)),
            ("another CA", client_with(Some(stranger))),
        ] {
            let err = client.send_text("who?").await.unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unavailable, "{what}: {err}");
        }
    }

    #[tokio::test]
    async fn an_identity_the_caller_attached_itself_does_not_reach_the_agent() {
        let server = on_memory(false).await;
        let addr = closed_port().await;
        let _registration = register(addr, server.router.clone(), None);
        let transport = client_at("whoami", addr, None).transport();
        let mut grpc = crate::pb::a2a::a2a_service_client::A2aServiceClient::new(transport);
        let mut request = tonic::Request::new(crate::pb::a2a::SendMessageRequest {
            message: Some(crate::pb::a2a::Message::user_text("who?")),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("a2a-version", "1.0".parse().unwrap());
        request.extensions_mut().insert(PeerIdentity(id("forged")));
        let answer = grpc.send_message(request).await.expect("called in process");
        let Some(crate::pb::a2a::send_message_response::Payload::Task(task)) =
            answer.into_inner().payload
        else {
            panic!("a task");
        };
        assert_eq!(task.artifacts[0].text(), "anonymous", "as over the network");
    }

    #[tokio::test]
    async fn a_server_registers_while_it_serves_and_withdraws_when_its_drain_starts() {
        let plain = on_memory(false).await;
        let (plain_addr, plain_stop) = (plain.local_addr(), plain.shutdown_handle());
        let plain = tokio::spawn(plain.run());
        let server = on_memory(true).await;
        let (addr, stop) = (server.local_addr(), server.shutdown_handle());
        let serving = tokio::spawn(server.run());
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while find(addr, None).is_none() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("registered once it serves");
        assert!(find(plain_addr, None).is_none(), "only when asked to");
        stop.shutdown();
        serving.await.unwrap();
        assert!(find(addr, None).is_none(), "withdrawn by the drain");
        plain_stop.shutdown();
        plain.await.unwrap();
    }

    #[test]
    fn a_registration_is_found_until_dropped_and_covers_loopback_when_unspecified() {
        let addr: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let guard = register(addr, axum::Router::new(), None);
        assert!(find(addr, None).is_some());
        assert!(
            find(loopback, None).is_some(),
            "an unspecified bind serves loopback"
        );
        assert!(find("127.0.0.1:2".parse().unwrap(), None).is_none());
        // A newer server on the same address outlives the older one's guard.
        let newer = register(loopback, axum::Router::new(), None);
        drop(guard);
        assert!(find(addr, None).is_none());
        assert!(
            find(loopback, None).is_some(),
            "the newer registration stays"
        );
        drop(newer);
        assert!(find(loopback, None).is_none());
    }
}
