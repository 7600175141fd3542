//! The registry: which agents exist, where their gRPC endpoints are, and their cards.
//!
//! Agents come from configuration ([`RegistryConfig`]: a TOML/JSON file section, or the
//! `SWITCHYARD_AGENTS` environment variable). Each agent has one or more endpoints, and the
//! client of an agent ([`AgentRef::client`]) picks one **per request**, because one HTTP/2
//! connection per pod would pin all traffic to one replica:
//!
//! - `host:port` endpoints are fixed (a host name is resolved once, when its connection
//!   opens);
//! - `dns:///host:port` endpoints (gRPC name-resolution syntax) are resolved to every address
//!   (A and AAAA) and kept in line with DNS ([`dns`]: on an interval, within the records' TTL,
//!   and when a connection fails). On Kubernetes this is a headless Service:
//!   `dns:///echo-headless.<namespace>.svc.cluster.local:50051`.
//!
//! Either way, calls go by power of two choices over a peak-EWMA latency among the healthy,
//! non-ejected endpoints ([`balance`]), and are retried where safe ([`crate::resilience`]).
//!
//! An agent's endpoints are all of one kind. Cards are
//! fetched over gRPC (`AgentService.GetAgentCard`); an agent that answers UNIMPLEMENTED there
//! (one that serves only the A2A gRPC binding, e.g. written with the Python SDK) has its card
//! fetched over HTTP from its `card_url`.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

use crate::{
    Client, ClientError, client::Transport, pb::a2a::AgentCard, resilience::ResilienceConfig,
};

pub mod balance;
mod config;
pub mod dns;
mod pool;
pub(crate) mod route;

use route::{Endpoints, Router};

pub use config::{AGENT_SYNTAX, AGENTS_ENV, AgentConfig, RegistryConfig, RegistryError};
pub use dns::DiscoveryConfig;

/// One registered agent: its endpoints and its card.
#[derive(Debug)]
struct Entry {
    config: AgentConfig,
    router: Arc<Router>,
    client: Client,
    card: RwLock<Option<Arc<AgentCard>>>,
}

/// A registered agent, cheap to clone.
#[derive(Clone, Debug)]
pub struct AgentRef(Arc<Entry>);

impl AgentRef {
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.0.config.name
    }

    /// Its configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.0.config
    }

    /// The agent's client: each of its calls goes to the endpoint picked for it (power of two
    /// choices over latency among the healthy, non-ejected endpoints, [`balance`]) and is
    /// retried where safe ([`crate::resilience`]). Its [`address`](Client::address) is the
    /// configured endpoints, comma-separated. When DNS has no address for the agent, calls
    /// fail with UNAVAILABLE.
    pub fn client(&self) -> Client {
        self.0.client.clone()
    }

    /// The endpoint (`host:port`) the balancer would pick for a call now, for a caller that
    /// keeps its own connections (e.g. the gateway's stream lanes); `None` when none is
    /// available.
    pub fn pick_endpoint(&self) -> Option<String> {
        self.0.router.peek()
    }

    /// The mTLS identity this agent's clients present ([`ResilienceConfig::tls`], else the
    /// process-wide [`default_client`](crate::tls::default_client)), for a caller that keeps
    /// its own connections to [`pick_endpoint`](Self::pick_endpoint); `None`: plain text.
    pub fn client_tls(&self) -> Option<crate::tls::ClientTls> {
        self.0
            .router
            .config
            .tls
            .clone()
            .or_else(|| crate::tls::default_client().ok().flatten())
    }

    /// Reports the outcome of a long-lived call that went to endpoint `addr` over the caller's
    /// own connection (the gateway's SSE and WebSocket lanes): `failed` (the connection
    /// could not be made or broke, or the agent answered UNAVAILABLE) counts towards the
    /// endpoint's outlier ejection like a failed unary call, a success resets its count
    /// ([`crate::resilience`]). An address that is not one of the agent's endpoints is ignored.
    pub fn report_endpoint(&self, addr: &str, failed: bool) {
        let verdict = if failed {
            crate::resilience::outlier::Verdict::Failure
        } else {
            crate::resilience::outlier::Verdict::Success
        };
        self.0.router.record_external(addr, verdict);
    }

    /// The addresses calls go to now: the configured `host:port` endpoints, or what the
    /// `dns:///` endpoints resolve to.
    pub fn endpoints(&self) -> Vec<String> {
        match &self.0.router.endpoints {
            Endpoints::Fixed(_) => self.0.config.endpoints.clone(),
            Endpoints::Discovered(pool) => {
                pool.addresses().iter().map(ToString::to_string).collect()
            }
        }
    }

    /// Whether some endpoint of the agent is available: its health checks pass (or it has no
    /// health service and answers) and it is not ejected. A dead agent turns unavailable
    /// within [`ResilienceConfig::health_interval`] (at once when its process is gone).
    pub fn is_available(&self) -> bool {
        self.0
            .router
            .endpoints
            .snapshot()
            .iter()
            .any(|b| b.is_available())
    }

    /// Each endpoint (`host:port`) with whether it is available
    /// ([`is_available`](Self::is_available)).
    pub fn endpoint_health(&self) -> Vec<(String, bool)> {
        self.0
            .router
            .endpoints
            .snapshot()
            .iter()
            .map(|b| (b.addr.clone(), b.is_available()))
            .collect()
    }

    /// Waits until the resolved addresses satisfy `done` (for `dns:///` endpoints, from
    /// their first resolution on); returns at once for `host:port` endpoints.
    pub async fn wait_for_endpoints(&self, mut done: impl FnMut(&[SocketAddr]) -> bool) {
        let Endpoints::Discovered(pool) = &self.0.router.endpoints else {
            return;
        };
        let mut rx = pool.subscribe();
        // The sender lives as long as the pool, which `self` holds.
        let _ = rx.wait_for(|r| r.as_deref().is_some_and(&mut done)).await;
    }

    /// The card, once fetched.
    pub fn card(&self) -> Option<Arc<AgentCard>> {
        self.0
            .card
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches the card and keeps it: over gRPC (`AgentService.GetAgentCard`), or, when the
    /// agent answers UNIMPLEMENTED there, over HTTP from its `card_url`.
    ///
    /// # Errors
    /// [`CardError::NoCardUrl`] when the agent does not serve `GetAgentCard` and has no
    /// `card_url`; [`CardError::Fetch`] when a fetch fails.
    pub async fn refresh_card(&self, timeout: Duration) -> Result<Arc<AgentCard>, CardError> {
        let _ = tokio::time::timeout(timeout, self.wait_for_endpoints(|_| true)).await;
        let card = match self.client().with_timeout(timeout).agent_card().await {
            Ok(card) => card,
            Err(e) if e.code() == tonic::Code::Unimplemented => match &self.0.config.card_url {
                Some(url) => fetch_card_http(url, timeout).await?,
                None => {
                    return Err(CardError::NoCardUrl {
                        agent: self.name().to_owned(),
                        endpoints: self.0.config.endpoints.join(","),
                    });
                }
            },
            Err(e) => return Err(e.into()),
        };
        let card = Arc::new(card);
        *self.0.card.write().unwrap_or_else(|e| e.into_inner()) = Some(card.clone());
        Ok(card)
    }
}

/// Why an agent's card could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The agent answers `AgentService.GetAgentCard` with UNIMPLEMENTED (it serves only the
    /// A2A binding, e.g. an agent written with another A2A SDK) and no card URL is configured.
    #[error(
        "agent {agent:?} does not serve switchyard.v1.AgentService/GetAgentCard (UNIMPLEMENTED: \
         an agent built with another A2A SDK?) and has no card URL; give the URL of its card: \
         --agents / {AGENTS_ENV} '{agent}={endpoints}@http://<host>:<port>/.well-known/agent-card.json', \
         or card_url in the config file"
    )]
    NoCardUrl {
        /// The agent.
        agent: String,
        /// Its configured endpoints, comma-separated.
        endpoints: String,
    },
    /// Fetching the card (over gRPC or from the card URL) failed.
    #[error(transparent)]
    Fetch(#[from] ClientError),
}

impl CardError {
    /// The gRPC code of the failure: UNIMPLEMENTED for [`CardError::NoCardUrl`].
    pub fn code(&self) -> tonic::Code {
        match self {
            Self::NoCardUrl { .. } => tonic::Code::Unimplemented,
            Self::Fetch(e) => e.code(),
        }
    }
}

/// Fetches an agent card over HTTP (protobuf JSON).
async fn fetch_card_http(url: &str, timeout: Duration) -> Result<AgentCard, ClientError> {
    let fail = |reason: String| ClientError::InvalidAddress {
        addr: url.to_owned(),
        reason,
    };
    let response = crate::http_client()
        .get(url)
        .header("A2A-Version", crate::card::PROTOCOL_VERSION)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ClientError::Status(tonic::Status::unavailable(format!("GET {url}: {e}"))))?;
    if !response.status().is_success() {
        return Err(fail(format!("GET answered {}", response.status())));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| fail(format!("reading the card: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| fail(format!("not an agent card: {e}")))
}

/// The agents of the mesh, by name.
#[derive(Default)]
pub struct Registry {
    agents: RwLock<BTreeMap<String, AgentRef>>,
    loaded: AtomicBool,
    discovery: DiscoveryConfig,
    resilience: ResilienceConfig,
    resolver: std::sync::OnceLock<hickory_resolver::TokioResolver>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("agents", &self.agents)
            .field("discovery", &self.discovery)
            .field("resilience", &self.resilience)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry of the configured agents (clients connect lazily), resolving `dns:///`
    /// endpoints with the default [`DiscoveryConfig`] (the system's DNS configuration).
    /// Needs a Tokio runtime.
    ///
    /// # Errors
    /// [`RegistryConfig::validate`]'s errors.
    pub fn new(config: &RegistryConfig) -> Result<Self, RegistryError> {
        Self::with_discovery(config, DiscoveryConfig::default())
    }

    /// A registry of the configured agents resolving `dns:///` endpoints as `discovery`
    /// says. Needs a Tokio runtime.
    ///
    /// # Errors
    /// [`RegistryConfig::validate`]'s errors; [`RegistryError::Discovery`] when an agent has
    /// `dns:///` endpoints and the resolver cannot be built.
    pub fn with_discovery(
        config: &RegistryConfig,
        discovery: DiscoveryConfig,
    ) -> Result<Self, RegistryError> {
        Self::with_settings(config, discovery, ResilienceConfig::default())
    }

    /// A registry of the configured agents resolving `dns:///` endpoints as `discovery`
    /// says, whose clients balance, eject and retry as `resilience` says. Needs a Tokio
    /// runtime.
    ///
    /// # Errors
    /// As [`with_discovery`](Self::with_discovery).
    pub fn with_settings(
        config: &RegistryConfig,
        discovery: DiscoveryConfig,
        resilience: ResilienceConfig,
    ) -> Result<Self, RegistryError> {
        let registry = Self {
            discovery,
            resilience,
            ..Self::default()
        };
        for a in &config.agents {
            registry.insert(a.clone())?;
        }
        Ok(registry)
    }

    /// Adds or replaces one agent.
    ///
    /// # Errors
    /// [`RegistryConfig::validate`]'s errors for this agent.
    pub fn insert(&self, config: AgentConfig) -> Result<AgentRef, RegistryError> {
        RegistryConfig {
            agents: vec![config.clone()],
        }
        .validate()?;
        let targets: Vec<(String, u16)> = config
            .endpoints
            .iter()
            .filter_map(|e| dns::parse(e))
            .map(|(host, port)| (host.to_owned(), port))
            .collect();
        let endpoints = if targets.is_empty() {
            let agent: Arc<str> = config.name.as_str().into();
            let failed = Arc::new(Notify::new());
            let backends = config
                .endpoints
                .iter()
                .map(|e| {
                    balance::Backend::new(e, &agent, failed.clone(), &self.resilience).map(Arc::new)
                })
                .collect::<Result<_, _>>()
                .map_err(|_| RegistryError::InvalidEndpoint {
                    agent: config.name.clone(),
                    endpoint: config.endpoints.join(","),
                })?;
            Endpoints::Fixed(backends)
        } else {
            let resolver = self.resolver()?;
            Endpoints::Discovered(pool::Pool::start(
                &config.name,
                targets,
                &self.discovery,
                &self.resilience,
                resolver,
            ))
        };
        let router = Arc::new(Router::new(
            &config.name,
            endpoints,
            self.resilience.clone(),
        ));
        let client =
            Client::over(Transport::routed(router.clone())).named(&config.endpoints.join(","));
        let entry = AgentRef(Arc::new(Entry {
            config: config.clone(),
            router,
            client,
            card: RwLock::new(None),
        }));
        self.agents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(config.name, entry.clone());
        Ok(entry)
    }

    /// The resolver shared by every `dns:///` endpoint, built on first use.
    fn resolver(&self) -> Result<hickory_resolver::TokioResolver, RegistryError> {
        if let Some(r) = self.resolver.get() {
            return Ok(r.clone());
        }
        let built = self.discovery.resolver()?;
        Ok(self.resolver.get_or_init(|| built).clone())
    }

    /// The agent called `name`.
    ///
    /// # Errors
    /// [`RegistryError::UnknownAgent`].
    pub fn agent(&self, name: &str) -> Result<AgentRef, RegistryError> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::UnknownAgent(name.to_owned()))
    }

    /// Every agent, by name.
    pub fn agents(&self) -> Vec<AgentRef> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Fetches every agent's card concurrently; returns the failures by agent name. The
    /// registry counts as loaded afterwards, whatever failed (a down agent must not keep the
    /// rest of the mesh from being ready).
    pub async fn load_cards(&self, timeout: Duration) -> Vec<(String, CardError)> {
        let agents = self.agents();
        let results =
            futures::future::join_all(agents.iter().map(|a| a.refresh_card(timeout))).await;
        self.loaded.store(true, Ordering::Release);
        agents
            .iter()
            .zip(results)
            .filter_map(|(a, r)| r.err().map(|e| (a.name().to_owned(), e)))
            .collect()
    }

    /// Whether [`load_cards`](Self::load_cards) has completed once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::{config::tests::agent, *};

    #[tokio::test]
    async fn picks_spread_over_fixed_endpoints() {
        let r = Registry::new(&RegistryConfig {
            agents: vec![agent("a", &["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])],
        })
        .expect("registry");
        let a = r.agent("a").expect("a");
        assert_eq!(a.client().address(), "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
        let picked: std::collections::BTreeSet<String> = (0..200)
            .map(|_| a.pick_endpoint().expect("an endpoint"))
            .collect();
        assert_eq!(picked.len(), 3, "{picked:?}");
        assert!(matches!(r.agent("b"), Err(RegistryError::UnknownAgent(_))));
    }
}
