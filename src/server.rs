//! [`AgentServer`] and [`serve`]: one agent as a gRPC server with `lf.a2a.v1.A2AService`,
//! `switchyard.v1.AgentService`, `grpc.health.v1.Health`, reflection (v1 and v1alpha) and a
//! graceful drain.
//!
//! Drain, on [`ShutdownHandle::shutdown`] or SIGINT/SIGTERM ([`serve`]):
//! 1. health turns NOT_SERVING and new messages are refused with UNAVAILABLE (reads, cancels and
//!    subscriptions still work), so balancers move traffic elsewhere;
//! 2. running tasks get up to [`ServeConfig::drain_timeout`] to finish; those that do not stay
//!    WORKING in the store and are resumed by the next start ([`Recovery`]) or, on a store
//!    shared by several replicas, have their leases released so that another replica takes
//!    them over at once;
//! 3. open streams end with UNAVAILABLE (clients resubscribe elsewhere with `last-event-id`);
//! 4. connections close (HTTP/2 GOAWAY) and the store is flushed and closed.

pub mod cached;
pub(crate) mod in_process;
mod limits;
pub mod listener;
mod main;
mod observe;
mod ops;
pub mod version;

pub use limits::{
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_TASK_BYTES, MAX_REPLY_BYTES, REPLY_HEADROOM_BYTES,
};
pub use listener::ConnectionLimits;
pub use main::{agent_main, agent_main_with};
pub use observe::{UNKNOWN_RPC, known_rpc};

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::response::Response;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{codec::CompressionEncoding, service::Routes};
use tonic_health::ServingStatus;

use crate::{
    Agent,
    card::{self, Served},
    pb::{
        self,
        a2a::{AgentCard, a2a_service_server::A2aServiceServer},
        agent::agent_service_server::AgentServiceServer,
    },
    runtime::{Recovery, ReplicaConfig, Runtime, RuntimeConfig},
    service::{A2aGrpc, AgentGrpc},
    store::{
        DatabaseUrl, Durability, MemoryStore, Retention, SqliteStore, StoreError, TaskStore,
        retention,
    },
};

/// Where an agent's tasks live.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// The embedded durable store: one SQLite file ([`SqliteStore`]).
    Sqlite {
        /// Path of the database file; its directory is created when missing.
        path: PathBuf,
        /// When a commit counts as done.
        durability: Durability,
    },
    /// Volatile, in memory ([`MemoryStore`]): tasks are lost on exit.
    Memory,
    /// PostgreSQL (`PostgresStore`, cargo feature `postgres`): the store several replicas of
    /// one agent share. A build without the feature refuses it at bind.
    Postgres {
        /// `postgres://user:password@host:port/database?…` (libpq's URI form; the password is
        /// never printed).
        url: DatabaseUrl,
        /// Schema of the agent's tables; `None`: derived from the agent's name
        /// (`schema_for_agent`, e.g. `text-stats` → `text_stats`). Replicas of one agent must
        /// share it.
        schema: Option<String>,
        /// When a commit counts as done.
        durability: Durability,
    },
    /// A store instance of your own, possibly shared: several servers given one
    /// `Arc<MemoryStore>` (or any store whose [`TaskStore::notices`] is `Some`) in one process
    /// behave as replicas of one agent (leases, fencing, subscribe and cancel anywhere).
    Custom(Arc<dyn TaskStore>),
}

impl StoreConfig {
    /// Parses a store spec, as the agent binaries' `--store` flag and `switchyard up`'s
    /// `store` key take it: `memory`, `sqlite:<path>`, or `postgres://…` / `postgresql://…`
    /// (default durability, schema from the agent's name).
    ///
    /// # Errors
    /// A message naming the accepted forms (the spec itself is not repeated: it may hold a
    /// password).
    pub fn from_spec(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec == "memory" {
            Ok(Self::Memory)
        } else if let Some(path) = spec.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("store spec `sqlite:` needs a file path (`sqlite:<path>`)".into());
            }
            Ok(Self::Sqlite {
                path: PathBuf::from(path),
                durability: Durability::default(),
            })
        } else if crate::store::is_postgres_url(spec) {
            Ok(Self::Postgres {
                url: DatabaseUrl::new(spec),
                schema: None,
                durability: Durability::default(),
            })
        } else {
            let kind = spec.split(':').next().unwrap_or_default();
            Err(format!(
                "unknown store spec (starting {kind:?}): expected `memory`, `sqlite:<path>` or \
                 `postgres://user:password@host:port/database`"
            ))
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::Sqlite {
            path: PathBuf::from("switchyard-data/tasks.db"),
            durability: Durability::default(),
        }
    }
}

/// Opens the PostgreSQL store of `agent` (schema: `schema`, or the one of the agent's name).
#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &DatabaseUrl,
    schema: Option<&str>,
    durability: Durability,
    agent: &Arc<dyn Agent>,
) -> Result<Arc<dyn TaskStore>, StoreError> {
    use crate::store::{PostgresOptions, PostgresStore, schema_for_agent};
    let schema = schema.map_or_else(|| schema_for_agent(&agent.card().name), str::to_owned);
    let options = PostgresOptions {
        durability,
        ..PostgresOptions::new(schema)
    };
    Ok(Arc::new(PostgresStore::connect(url, &options).await?))
}

/// Without the `postgres` feature: refuses.
#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    url: &DatabaseUrl,
    _: Option<&str>,
    _: Durability,
    _: &Arc<dyn Agent>,
) -> Result<Arc<dyn TaskStore>, StoreError> {
    Err(StoreError::Backend(
        format!("store {url}: this build has no PostgreSQL support (cargo feature `postgres`)")
            .into(),
    ))
}

/// Settings of one agent server. `ServeConfig::default()` works: loopback, a free port, the
/// embedded durable store in `./switchyard-data/`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address of the gRPC listener; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Address of a second, plain-text HTTP listener for operations only: `GET /metrics`,
    /// `GET /healthz` (liveness) and `GET /readyz` (503 once the drain starts). It is how
    /// Prometheus and the kubelet reach an agent under mTLS, whose gRPC port refuses them at the
    /// handshake. Port 0 picks a free port ([`AgentServer::metrics_addr`]). `None` (the default):
    /// no such listener; `/metrics` is still served on the gRPC port. Agent binaries:
    /// `--metrics-listen` / `<NAME>_METRICS_LISTEN`.
    pub metrics_listen: Option<SocketAddr>,
    /// `host:port` advertised in the agent card's GRPC interface; default: the bound address
    /// (`127.0.0.1` when bound to an unspecified address).
    pub public_grpc_url: Option<String>,
    /// Where tasks live.
    pub store: StoreConfig,
    /// Largest gRPC request accepted, in bytes (the encoded `SendMessageRequest` and every other
    /// request message); a larger one fails with RESOURCE_EXHAUSTED before it is decoded.
    /// At most [`max_task_bytes`](Self::max_task_bytes). Default 4 MiB
    /// ([`DEFAULT_MAX_MESSAGE_BYTES`]).
    pub max_message_bytes: usize,
    /// Largest encoded size of a stored task (its history, artifacts and status), in bytes.
    /// A message that would take a task past it is refused with RESOURCE_EXHAUSTED; an agent
    /// event that would is refused with [`EventError::TaskTooLarge`](crate::EventError), and
    /// the task then FAILS. Replies (a task, a `ListTasks` page, a stream event) are sent up
    /// to this size plus [`REPLY_HEADROOM_BYTES`], so everything accepted can be read back;
    /// `ListTasks` pages end early (with a `next_page_token`) where the next task would pass
    /// it. At most [`MAX_REPLY_BYTES`] − [`REPLY_HEADROOM_BYTES`], what
    /// [`Client`](crate::Client) and the gateway decode. Default 16 MiB
    /// ([`DEFAULT_MAX_TASK_BYTES`]).
    pub max_task_bytes: usize,
    /// Largest total size of the parts of one `SendMessageParts` call, in bytes; beyond it the
    /// call fails with RESOURCE_EXHAUSTED. Capped at [`max_task_bytes`](Self::max_task_bytes)
    /// (the assembled message is stored in its task). Default 8 MiB: half the default task,
    /// so that an agent can still answer with an artifact of the same size.
    pub max_parts_bytes: usize,
    /// History messages returned when a request leaves `history_length` unset; `None` (the
    /// default) returns the whole history.
    pub default_history_length: Option<u32>,
    /// How long a drain waits for running tasks and open calls. Default 30 s.
    pub drain_timeout: Duration,
    /// How long a canceled agent is still polled to clean up. Default 5 s.
    pub cancel_grace: Duration,
    /// How long the task of a unary `SendMessage` whose caller went away keeps running for a
    /// retry of the same message (same `messageId`) to re-attach to it; canceled after it
    /// otherwise. Zero cancels at once. Default 2 s, at most 10 min ([`MAX_DISCONNECT_GRACE`];
    /// the README's "Resilience").
    pub disconnect_grace: Duration,
    /// Whether push-notification configs are accepted (`capabilities.pushNotifications`).
    /// Default false.
    pub push_notifications: bool,
    /// Where push notifications may be delivered ([`crate::outbound`]): by default `https`
    /// only and never to a loopback, private, link-local or metadata address. A config whose
    /// URL breaks it is refused with INVALID_ARGUMENT when its host is an IP literal, and
    /// every delivery is checked again after DNS resolution. Agent binaries:
    /// `--push-allow-http`, `--push-allow-network CIDR`.
    pub push_policy: crate::outbound::PushPolicy,
    /// What to do with tasks a previous process left running. Default [`Recovery::Resume`].
    pub recovery: Recovery,
    /// How long finished tasks are kept: by default 30 days and at most 100,000 per agent,
    /// swept every minute ([`Retention`]; [`Retention::keep_all`] keeps everything). Only
    /// terminal tasks are deleted.
    pub retention: Retention,
    /// Limits on the listener's connections: open connections, first-request and idle
    /// timeouts ([`ConnectionLimits`]; defaults 10,000, 10 s and 5 min).
    pub connections: ConnectionLimits,
    /// Backpressure: the most executions of [`crate::Agent::execute`] running
    /// at once (new tasks and continued ones; tasks resumed after a restart are not refused).
    /// Beyond it a new `SendMessage` (any send RPC) fails at once, before a task is created,
    /// with RESOURCE_EXHAUSTED and `grpc-retry-pushback-ms: `[`OVERLOAD_PUSHBACK`]: callers
    /// through a registry retry another replica after that time (a load signal, never an
    /// ejection); the gateway answers HTTP 429 with `Retry-After`. `None` (the default): no
    /// limit. Agent binaries: `--max-concurrent-executions` / `<AGENT>_MAX_CONCURRENT_EXECUTIONS`.
    pub max_concurrent_executions: Option<usize>,
    /// This replica's name in task leases, on a store shared by several replicas (its
    /// [`TaskStore::notices`] is `Some`: PostgreSQL, or one [`MemoryStore`] shared in
    /// process). Default [`default_replica_id`]: `$SWITCHYARD_REPLICA_ID`, else `$HOSTNAME`
    /// (the pod name on Kubernetes), else `replica`. Each start adds a random suffix
    /// (`<id>/<12 hex digits>`), so a restarted process never mistakes its dead predecessor's
    /// leases for its own: they expire and count as takeovers.
    pub replica_id: String,
    /// How long a lease lasts without renewal: a replica renews its leases every
    /// `lease_ttl / 3`, stops a task whose lease it could not renew for `3/4 · lease_ttl`, and
    /// the tasks of a replica that died are taken over by another `lease_ttl` to
    /// `1.5 · lease_ttl` after its last renewal (orphans are looked for every `lease_ttl / 2`).
    /// At least 100 ms. Default 10 s.
    pub lease_ttl: Duration,
    /// Takeovers after which a task is failed instead of run again: a task whose owner died
    /// more than this many times fails with "poison task: its owner died N times" and counts
    /// in `switchyard_tasks_poisoned_total`. Default 3.
    pub max_takeovers: u32,
    /// Authorization of the calls this agent serves, by the [`Policy`](crate::authz::Policy)
    /// under the agent's card name ([`crate::authz::layer`]). Default: no policy, every call
    /// allowed.
    pub authz: std::sync::Arc<crate::authz::layer::AgentAuthz>,
    /// mTLS ([`crate::tls`]): `Some`, the listener speaks only TLS, requires a client
    /// certificate from the mesh CA whose single URI SAN is a SPIFFE ID of the mesh's trust
    /// domain (plain text and other CAs are refused at the handshake), and each request
    /// carries the caller's [`PeerIdentity`](crate::identity::PeerIdentity)
    /// ([`TaskContext::peer_identity`](crate::TaskContext::peer_identity)). `None` (the
    /// default): plain-text HTTP/2, for tests and explicitly insecure setups. Agent binaries:
    /// `--tls-ca/--tls-cert/--tls-key` or `SWITCHYARD_TLS_CA/_CERT/_KEY`.
    pub tls: Option<crate::tls::MeshTls>,
    /// Whether callers in this process reach the agent without a connection (an in-process
    /// endpoint, as grpc-java's in-process transport): while it serves (until its drain
    /// starts), a registry client of this process whose endpoint is the agent's address calls
    /// its request stack directly, with the same layers, message limits and errors as over the
    /// network but no TCP, TLS or HTTP/2 in between (so none of the listener's
    /// [`connections`](Self::connections) limits). With [`tls`](Self::tls), only clients of
    /// the same mesh (SPIFFE ID in its trust domain, the same CA file), whose requests carry
    /// their [`PeerIdentity`](crate::identity::PeerIdentity) as the handshake would have set
    /// it; without, only plain-text clients. Default false; `switchyard up` sets it.
    pub in_process: bool,
}

/// The default [`ServeConfig::replica_id`]: `$SWITCHYARD_REPLICA_ID`, else `$HOSTNAME`, else
/// `replica`.
pub fn default_replica_id() -> String {
    ["SWITCHYARD_REPLICA_ID", "HOSTNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "replica".to_owned())
}

/// The default [`ServeConfig::disconnect_grace`].
pub const DEFAULT_DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// The longest [`ServeConfig::disconnect_grace`]: a task held longer for a caller that left
/// is a leak, not a grace.
pub const MAX_DISCONNECT_GRACE: Duration = Duration::from_secs(600);

/// The retry pushback an agent at its [`ServeConfig::max_concurrent_executions`] sends.
pub const OVERLOAD_PUSHBACK: Duration = Duration::from_millis(200);

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: None,
            public_grpc_url: None,
            store: StoreConfig::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_task_bytes: DEFAULT_MAX_TASK_BYTES,
            max_parts_bytes: 8 * 1024 * 1024,
            default_history_length: None,
            drain_timeout: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(5),
            disconnect_grace: DEFAULT_DISCONNECT_GRACE,
            max_concurrent_executions: None,
            push_notifications: false,
            push_policy: crate::outbound::PushPolicy::default(),
            recovery: Recovery::default(),
            retention: Retention::default(),
            connections: ConnectionLimits::default(),
            replica_id: default_replica_id(),
            lease_ttl: Duration::from_secs(10),
            max_takeovers: 3,
            authz: std::sync::Arc::default(),
            tls: None,
            in_process: false,
        }
    }
}

/// Why a server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address (or the metrics address) could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The task store could not be opened or recovered.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting is unusable (e.g. `max_message_bytes` above `max_task_bytes`).
    #[error("invalid serve configuration: {0}")]
    Config(String),
}

/// Triggers the drain of a running [`AgentServer`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// A handle not yet triggered (for servers built on this crate, such as the gateway).
    pub fn new() -> Self {
        Self(CancellationToken::new())
    }

    /// Starts the drain; [`AgentServer::run`] returns when it is done.
    pub fn shutdown(&self) {
        self.0.cancel();
    }

    /// Completes once [`shutdown`](Self::shutdown) has been called.
    pub async fn triggered(&self) {
        self.0.cancelled().await;
    }
}

impl Default for ShutdownHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// One agent served over gRPC. [`bind`](Self::bind) opens the store, recovers unfinished
/// tasks and binds the listener; [`run`](Self::run) serves until shut down.
///
/// # Example
/// ```no_run
/// # use switchyard::{Agent, AgentServer, ServeConfig};
/// # async fn demo(agent: impl Agent) -> Result<(), switchyard::ServeError> {
/// let server = AgentServer::bind(agent, ServeConfig::default()).await?;
/// println!("listening on {}", server.local_addr());
/// let stop = server.shutdown_handle();
/// tokio::spawn(async move {
///     switchyard::shutdown_signal().await;
///     stop.shutdown();
/// });
/// server.run().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AgentServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The operations listener ([`ServeConfig::metrics_listen`]) and its address.
    ops: Option<(TcpListener, SocketAddr)>,
    router: axum::Router,
    rt: Arc<Runtime>,
    health: tonic_health::server::HealthReporter,
    card: Arc<AgentCard>,
    stop: CancellationToken,
    drain_timeout: Duration,
    sqlite: Option<SqliteStore>,
    /// The store and its retention, for the sweeper.
    retention: (Arc<dyn TaskStore>, Retention),
    connections: ConnectionLimits,
    tls: Option<crate::tls::ServerTls>,
    /// `Some`: register as an in-process endpoint while serving, for callers of this mesh
    /// (`Some(None)`: plain text).
    in_process: Option<Option<in_process::Mesh>>,
}

impl AgentServer {
    /// Opens the store, recovers unfinished tasks and binds the listener.
    ///
    /// # Errors
    /// [`ServeError::Config`] for inconsistent limits; [`ServeError::Bind`] when the address
    /// is taken or not allowed; [`ServeError::Store`] when the store cannot be opened.
    pub async fn bind(agent: impl Agent, config: ServeConfig) -> Result<Self, ServeError> {
        Self::bind_arc(Arc::new(agent), config).await
    }

    /// [`bind`](Self::bind) for an agent behind an `Arc`.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub async fn bind_arc(agent: Arc<dyn Agent>, config: ServeConfig) -> Result<Self, ServeError> {
        crate::telemetry::metrics::install();
        config.validate()?;
        let tls = config
            .tls
            .as_ref()
            .map(crate::tls::ServerTls::mesh)
            .transpose()
            .map_err(|e| ServeError::Config(e.to_string()))?;
        let (listener, local_addr) = bind_tcp(config.listen).await?;
        let ops = match config.metrics_listen {
            Some(addr) => Some(bind_tcp(addr).await?),
            None => None,
        };
        let (store, sqlite): (Arc<dyn TaskStore>, _) = match &config.store {
            StoreConfig::Sqlite { path, durability } => {
                let s = SqliteStore::open(path, *durability).await?;
                (Arc::new(s.clone()), Some(s))
            }
            StoreConfig::Memory => (Arc::new(MemoryStore::new()), None),
            StoreConfig::Postgres {
                url,
                schema,
                durability,
            } => (
                open_postgres(url, schema.as_deref(), *durability, &agent).await?,
                None,
            ),
            StoreConfig::Custom(s) => (s.clone(), None),
        };
        let public = agent.card();
        let streaming = public
            .capabilities
            .as_ref()
            .and_then(|c| c.streaming)
            .unwrap_or(true);
        let grpc_url = config.public_grpc_url.clone().unwrap_or_else(|| {
            let ip = if local_addr.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                local_addr.ip()
            };
            SocketAddr::new(ip, local_addr.port()).to_string()
        });
        let card = Arc::new(card::complete(
            public,
            &Served {
                grpc_url,
                streaming,
                push_notifications: config.push_notifications,
                extended_card: agent.extended_card().is_some(),
            },
        ));
        if config.retention.is_enabled() {
            retention::sweep_once(&*store, &config.retention, &card.name).await;
        }
        let rt = Runtime::start(
            agent,
            store.clone(),
            RuntimeConfig {
                agent_name: card.name.as_str().into(),
                default_history_length: config
                    .default_history_length
                    .map(|h| i32::try_from(h).unwrap_or(i32::MAX)),
                cancel_grace: config.cancel_grace,
                disconnect_grace: config.disconnect_grace,
                push_notifications: config.push_notifications,
                push: Arc::new(config.push_policy.clone()),
                push_client: crate::outbound::client(Arc::new(config.push_policy.clone())),
                streaming,
                recovery: config.recovery,
                max_task_bytes: config.max_task_bytes,
                executions: config
                    .max_concurrent_executions
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
                replica: ReplicaConfig {
                    id: format!("{}/{}", config.replica_id, &crate::task::new_id()[24..]).into(),
                    lease_ttl: config.lease_ttl,
                    max_takeovers: config.max_takeovers,
                },
            },
        )
        .await?;
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in [
            "",
            pb::a2a::a2a_service_server::SERVICE_NAME,
            pb::agent::agent_service_server::SERVICE_NAME,
        ] {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let router = routes(&rt, &card, &config, health_service);
        Ok(Self {
            listener,
            local_addr,
            ops,
            router,
            rt,
            health,
            card,
            stop: CancellationToken::new(),
            drain_timeout: config.drain_timeout,
            sqlite,
            retention: (store, config.retention),
            connections: config.connections,
            in_process: config.in_process.then(|| {
                config.tls.as_ref().map(|t| in_process::Mesh {
                    trust_domain: t.trust_domain().to_owned(),
                    ca: t.files().ca.clone(),
                })
            }),
            tls,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the operations listener ([`ServeConfig::metrics_listen`]), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(|(_, addr)| *addr)
    }

    /// The agent card as served (interfaces and capabilities completed).
    pub fn card(&self) -> &AgentCard {
        &self.card
    }

    /// A handle that starts the drain.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Serves until [`ShutdownHandle::shutdown`], then drains (see the module docs).
    pub async fn run(self) {
        let stop = self.stop.clone();
        self.run_until(async move { stop.cancelled().await }).await;
    }

    /// Serves until `signal` completes, then drains.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) {
        let conn_stop = CancellationToken::new();
        // Withdrawn when the drain starts (or this future is dropped): callers then go over
        // their connections and see the drain as any remote caller does.
        let registration = self
            .in_process
            .map(|mesh| in_process::register(self.local_addr, self.router.clone(), mesh));
        let serving = tokio::spawn(listener::serve(
            self.listener,
            self.router,
            conn_stop.clone(),
            self.drain_timeout,
            self.connections,
            self.tls,
        ));
        let draining = CancellationToken::new();
        let ops = self.ops.map(|(l, _)| {
            tokio::spawn(ops::serve(
                l,
                draining.clone(),
                conn_stop.clone(),
                self.connections,
            ))
        });
        let (store, retention) = self.retention;
        let sweeper = retention.is_enabled().then(|| {
            tokio::spawn(retention::sweeper(
                store,
                retention,
                self.card.name.as_str().into(),
                conn_stop.clone(),
            ))
        });
        signal.await;
        drop(registration);
        tracing::info!(addr = %self.local_addr, running = self.rt.running(), "draining");
        draining.cancel();
        for name in [
            "",
            pb::a2a::a2a_service_server::SERVICE_NAME,
            pb::agent::agent_service_server::SERVICE_NAME,
        ] {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        self.rt.drain(self.drain_timeout).await;
        conn_stop.cancel();
        let _ = serving.await;
        if let Some(o) = ops {
            let _ = o.await;
        }
        if let Some(s) = sweeper {
            let _ = s.await;
        }
        if let Some(s) = self.sqlite {
            s.close().await;
        }
        tracing::info!(addr = %self.local_addr, "stopped");
    }
}

/// Binds a TCP listener on `addr`; returns it and its bound address.
async fn bind_tcp(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Every gRPC service of one agent, behind the request layers.
fn routes(
    rt: &Arc<Runtime>,
    card: &Arc<AgentCard>,
    config: &ServeConfig,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> axum::Router {
    let limit = config.max_message_bytes;
    let reply = config.max_task_bytes + REPLY_HEADROOM_BYTES;
    let a2a = A2aServiceServer::new(A2aGrpc {
        rt: rt.clone(),
        card: card.clone(),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(reply)
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip);
    let agent = AgentServiceServer::new(AgentGrpc {
        rt: rt.clone(),
        card: card.clone(),
        max_parts_bytes: config.max_parts_bytes.min(config.max_task_bytes),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(reply)
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip);
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");
    let grpc = Routes::new(health)
        .add_service(a2a)
        .add_service(agent)
        .add_service(v1)
        .add_service(v1alpha)
        .into_axum_router()
        // Layers run outermost last-added: the span and metrics see the remapped status and
        // the version refusals.
        .layer(axum::middleware::map_response(remap_oversize))
        .layer(axum::middleware::map_response(remap_undecodable))
        .layer(axum::middleware::from_fn(version::grpc))
        .layer(crate::authz::layer::AuthzLayer::new(
            config.authz.clone(),
            &card.name,
        ))
        .layer(observe::ObserveLayer::new(&card.name));
    axum::Router::new()
        .route(
            card::WELL_KNOWN_CARD_PATH,
            axum::routing::get(card_document(card)),
        )
        .route("/metrics", axum::routing::get(metrics_document))
        .merge(grpc)
}

/// The card as served over HTTP/1.1 or HTTP/2 on the agent's own port, in protobuf JSON, with a
/// strong `ETag` (a hash of the document), `Last-Modified` (when the server was bound: the card
/// never changes while it runs) and a cache lifetime of 300 s; serialized and hashed once, here.
fn card_document(
    card: &AgentCard,
) -> impl Fn(http::HeaderMap) -> std::future::Ready<Response> + Clone + Send + 'static {
    let body = serde_json::to_vec(card).expect("an AgentCard always serializes");
    let etag = cached::etag(&body);
    let body = bytes::Bytes::from(body);
    let built = cached::whole_seconds(std::time::SystemTime::now());
    move |headers: http::HeaderMap| {
        std::future::ready(cached::json(&headers, &etag, built, body.clone(), 300))
    }
}

/// The process's Prometheus metrics (`GET /metrics` on the agent's port).
async fn metrics_document() -> Response {
    let (status, body) = match crate::telemetry::metrics::render() {
        Some(text) => (http::StatusCode::OK, text),
        None => (
            http::StatusCode::NOT_FOUND,
            "another metrics recorder is installed in this process\n".to_owned(),
        ),
    };
    http::Response::builder()
        .status(status)
        .header(
            http::header::CONTENT_TYPE,
            crate::telemetry::metrics::CONTENT_TYPE,
        )
        .body(axum::body::Body::from(body))
        .expect("static headers are valid")
}

/// tonic reports a request larger than the decoding limit as OUT_OF_RANGE; every other gRPC
/// implementation (and the A2A contract) says RESOURCE_EXHAUSTED. The error is a trailers-only
/// response, so its status is in the headers.
async fn remap_oversize(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let oversize = headers.get("grpc-status").is_some_and(|v| v == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("too%20large") || m.contains("too large"));
    if oversize {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}

/// tonic reports a request it cannot decode (malformed protobuf, or nested past the decoder's
/// recursion limit) as INTERNAL; it is the client's fault: INVALID_ARGUMENT, with a message
/// that names the usual cause. A trailers-only response, as above.
async fn remap_undecodable(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.get("grpc-status").is_some_and(|v| v == "13")
        && headers.get("grpc-message").is_some_and(|m| {
            crate::service::is_decode_failure(&String::from_utf8_lossy(m.as_bytes()))
        })
    {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static(crate::service::UNDECODABLE_ENCODED),
        );
    }
    response
}

/// Serves `agent` with `config` until SIGINT or SIGTERM, then drains.
///
/// # Errors
/// As [`AgentServer::bind`].
pub async fn serve(agent: impl Agent, config: ServeConfig) -> Result<(), ServeError> {
    let server = AgentServer::bind(agent, config).await?;
    tracing::info!(addr = %server.local_addr(), agent = %server.card().name, "serving");
    server.run_until(shutdown_signal()).await;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse_and_never_echo_a_password() {
        assert!(matches!(
            StoreConfig::from_spec("memory"),
            Ok(StoreConfig::Memory)
        ));
        match StoreConfig::from_spec(" sqlite:/var/x.db\n") {
            Ok(StoreConfig::Sqlite { path, durability }) => {
                assert_eq!(path, PathBuf::from("/var/x.db"));
                assert_eq!(durability, Durability::Fsync);
            }
            other => panic!("{other:?}"),
        }
        for url in [
            "postgres://u:pw@h:5432/d",
            "postgresql://u:pw@h/d?sslmode=require",
        ] {
            match StoreConfig::from_spec(url) {
                Ok(c @ StoreConfig::Postgres { .. }) => {
                    let StoreConfig::Postgres { url: u, schema, .. } = &c else {
                        unreachable!()
                    };
                    assert_eq!(u.expose(), url);
                    assert_eq!(schema, &None);
                    assert!(!format!("{c:?}").contains("pw"), "{c:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        for bad in ["", "sqlite:", "mysql://u:secretpw@h/d", "/path/only"] {
            let e = StoreConfig::from_spec(bad).expect_err(bad);
            assert!(!e.contains("secretpw"), "{e}");
            assert!(e.contains("sqlite:") || e.contains("file path"), "{e}");
        }
    }
}
