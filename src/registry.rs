//! The registry: which agents exist, where their gRPC endpoints are, and their cards.
//!
//! Agents come from configuration ([`RegistryConfig`]: a TOML/JSON file section, or the
//! `SWITCHYARD_AGENTS` environment variable). Each agent has one or more endpoints, and
//! [`AgentRef::client`] picks one **per request**, because one HTTP/2 connection per pod
//! would pin all traffic to one replica:
//!
//! - `host:port` endpoints rotate round robin (a host name is resolved once, when its
//!   connection opens);
//! - `dns:///host:port` endpoints (gRPC name-resolution syntax) are resolved to every address
//!   (A and AAAA) and kept in line with DNS ([`dns`]: on an interval, within the records' TTL,
//!   and when a connection fails); calls go by power of two choices over a peak-EWMA latency
//!   among the ready addresses ([`balance`]). On Kubernetes this is a headless Service:
//!   `dns:///echo-headless.<namespace>.svc.cluster.local:50051`.
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
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::{Client, ClientError, pb::a2a::AgentCard};

pub mod balance;
pub mod dns;
mod pool;

pub use dns::DiscoveryConfig;

/// Environment variable listing agents, in the format of [`RegistryConfig::from_env_value`]:
/// `name=endpoint[,endpoint…][@card-url][;name=…]`, an endpoint being `host:port` or
/// `dns:///host:port`.
pub const AGENTS_ENV: &str = "SWITCHYARD_AGENTS";

/// The syntax of one agent in [`AGENTS_ENV`] and `switchyard-gateway --agents`, for messages.
pub const AGENT_SYNTAX: &str = "name=host:port[,host:port…][@http://host:port/.well-known/agent-card.json] \
     or name=dns:///host:port[@…]";

/// One agent in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Name the mesh routes by (`[a-z0-9][a-z0-9_-]*`, at most 63 characters).
    pub name: String,
    /// gRPC endpoints of the agent's replicas; at least one, all `host:port` or all
    /// `dns:///host:port` (every address of the name, kept in line with DNS).
    pub endpoints: Vec<String>,
    /// Where to fetch the card over HTTP (`http://` or `https://` URL, protobuf JSON) when the
    /// agent answers `AgentService.GetAgentCard` with UNIMPLEMENTED: an agent that serves only
    /// the A2A gRPC binding (e.g. one written with another A2A SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_url: Option<String>,
    /// Whether the gateway may advertise the agent's own gRPC endpoint in the cards it serves.
    #[serde(default)]
    pub public_grpc: bool,
}

/// The agents of the mesh.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Every agent, by unique name.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

/// Why a registry configuration or lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An agent name breaks the naming rule.
    #[error(
        "invalid agent name {0:?}: use lower-case letters, digits, '-' and '_' (at most 63, \
         starting with a letter or digit)"
    )]
    InvalidName(String),
    /// Two agents share a name.
    #[error("agent {0:?} is configured twice")]
    Duplicate(String),
    /// An agent has no endpoint, or an endpoint is not `host:port` or `dns:///host:port`.
    #[error(
        "agent {agent:?}: invalid endpoint {endpoint:?}: expected host:port or dns:///host:port"
    )]
    InvalidEndpoint {
        /// The agent.
        agent: String,
        /// The endpoint as configured (empty when none was given).
        endpoint: String,
    },
    /// The `SWITCHYARD_AGENTS` (or `--agents`) value is malformed.
    #[error("{AGENTS_ENV}: {0}")]
    Env(String),
    /// A card URL is not an `http://` or `https://` URL.
    #[error("agent {agent:?}: invalid card URL {url:?}: expected an http:// or https:// URL")]
    InvalidCardUrl {
        /// The agent.
        agent: String,
        /// The URL as configured.
        url: String,
    },
    /// An agent mixes `host:port` and `dns:///host:port` endpoints.
    #[error(
        "agent {0:?}: endpoints are either all host:port or all dns:///host:port; give the \
         replicas of a Kubernetes Service as one dns:/// name (its headless Service)"
    )]
    MixedEndpoints(String),
    /// DNS discovery cannot be set up (a bad setting, an unreadable `/etc/resolv.conf`).
    #[error("DNS discovery: {0}")]
    Discovery(String),
    /// No agent has this name.
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

fn valid_card_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    }) && !url.contains(char::is_whitespace)
}

fn valid_endpoint(e: &str) -> bool {
    if e.starts_with("dns:") {
        return dns::parse(e).is_some();
    }
    let Some((host, port)) = e.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
}

impl RegistryConfig {
    /// Parses the format of `SWITCHYARD_AGENTS` and `switchyard-gateway --agents`
    /// ([`AGENT_SYNTAX`]): `name=host:port[,host:port…][@card-url]`, agents separated by `;`.
    /// The optional card URL after `@` is the agent's [`AgentConfig::card_url`], e.g.
    /// `pyagent=127.0.0.1:50051@http://127.0.0.1:8000/.well-known/agent-card.json`. Empty
    /// segments are ignored.
    ///
    /// # Errors
    /// [`RegistryError::Env`] for a segment without `=` or with an empty or non-HTTP card URL.
    pub fn from_env_value(value: &str) -> Result<Self, RegistryError> {
        let mut agents = Vec::new();
        for segment in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, rest) = segment
                .split_once('=')
                .ok_or_else(|| RegistryError::Env(format!("{segment:?} is not {AGENT_SYNTAX}")))?;
            let (endpoints, card_url) = match rest.split_once('@') {
                Some((endpoints, url)) => (endpoints, Some(url.trim().to_owned())),
                None => (rest, None),
            };
            if let Some(url) = card_url.as_deref().filter(|u| !valid_card_url(u)) {
                return Err(RegistryError::Env(format!(
                    "{segment:?}: the card URL after '@' ({url:?}) must be an http:// or \
                     https:// URL ({AGENT_SYNTAX})"
                )));
            }
            agents.push(AgentConfig {
                name: name.trim().to_owned(),
                endpoints: endpoints
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
                card_url,
                public_grpc: false,
            });
        }
        Ok(Self { agents })
    }

    /// Adds (or replaces, by name) the agents of `other`.
    pub fn merge(&mut self, other: Self) {
        for a in other.agents {
            match self.agents.iter_mut().find(|x| x.name == a.name) {
                Some(existing) => *existing = a,
                None => self.agents.push(a),
            }
        }
    }

    /// Checks names (valid, unique) and endpoints (at least one, each `host:port`).
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let mut seen = std::collections::HashSet::new();
        for a in &self.agents {
            if !valid_name(&a.name) {
                return Err(RegistryError::InvalidName(a.name.clone()));
            }
            if !seen.insert(a.name.as_str()) {
                return Err(RegistryError::Duplicate(a.name.clone()));
            }
            if a.endpoints.is_empty() {
                return Err(RegistryError::InvalidEndpoint {
                    agent: a.name.clone(),
                    endpoint: String::new(),
                });
            }
            if let Some(bad) = a.endpoints.iter().find(|e| !valid_endpoint(e)) {
                return Err(RegistryError::InvalidEndpoint {
                    agent: a.name.clone(),
                    endpoint: bad.clone(),
                });
            }
            let discovered = a
                .endpoints
                .iter()
                .filter(|e| dns::parse(e).is_some())
                .count();
            if discovered != 0 && discovered != a.endpoints.len() {
                return Err(RegistryError::MixedEndpoints(a.name.clone()));
            }
            if let Some(url) = a.card_url.as_ref().filter(|u| !valid_card_url(u)) {
                return Err(RegistryError::InvalidCardUrl {
                    agent: a.name.clone(),
                    url: url.clone(),
                });
            }
        }
        Ok(())
    }
}

/// One registered agent: its endpoints and its card.
#[derive(Debug)]
struct Entry {
    config: AgentConfig,
    endpoints: Endpoints,
    card: RwLock<Option<Arc<AgentCard>>>,
}

/// Where an agent's calls go.
#[derive(Debug)]
enum Endpoints {
    /// `host:port` endpoints, a lazily connecting client each, in round-robin order.
    Fixed {
        clients: Vec<Client>,
        next: AtomicUsize,
    },
    /// `dns:///` endpoints.
    Discovered(Arc<pool::Pool>),
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

    /// A client for one request (per request, not per connection): the next `host:port`
    /// endpoint in round-robin order, or, for `dns:///` endpoints, the ready address chosen
    /// by power of two choices over latency ([`balance`]). When DNS has no address for the
    /// agent, the client's calls fail with UNAVAILABLE ("no address").
    pub fn client(&self) -> Client {
        match &self.0.endpoints {
            Endpoints::Fixed { clients, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % clients.len();
                clients[i].clone()
            }
            Endpoints::Discovered(pool) => pool
                .pick()
                .unwrap_or_else(|| Client::unavailable(&self.0.config.endpoints.join(","))),
        }
    }

    /// The addresses calls go to now: the configured `host:port` endpoints, or what the
    /// `dns:///` endpoints resolve to.
    pub fn endpoints(&self) -> Vec<String> {
        match &self.0.endpoints {
            Endpoints::Fixed { .. } => self.0.config.endpoints.clone(),
            Endpoints::Discovered(pool) => {
                pool.addresses().iter().map(ToString::to_string).collect()
            }
        }
    }

    /// Waits until the resolved addresses satisfy `done` (for `dns:///` endpoints, from
    /// their first resolution on); returns at once for `host:port` endpoints.
    pub async fn wait_for_endpoints(&self, mut done: impl FnMut(&[SocketAddr]) -> bool) {
        let Endpoints::Discovered(pool) = &self.0.endpoints else {
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
    resolver: std::sync::OnceLock<hickory_resolver::TokioResolver>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("agents", &self.agents)
            .field("discovery", &self.discovery)
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
        let registry = Self {
            discovery,
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
            let clients = config
                .endpoints
                .iter()
                .map(|e| Client::lazy(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| RegistryError::InvalidEndpoint {
                    agent: config.name.clone(),
                    endpoint: config.endpoints.join(","),
                })?;
            Endpoints::Fixed {
                clients,
                next: AtomicUsize::new(0),
            }
        } else {
            let resolver = self.resolver()?;
            Endpoints::Discovered(pool::Pool::start(
                &config.name,
                targets,
                &self.discovery,
                resolver,
            ))
        };
        let entry = AgentRef(Arc::new(Entry {
            config: config.clone(),
            endpoints,
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
    use super::*;

    fn agent(name: &str, endpoints: &[&str]) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
            card_url: None,
            public_grpc: false,
        }
    }

    #[test]
    fn env_format_parses_names_and_endpoints() {
        let c =
            RegistryConfig::from_env_value(" echo=127.0.0.1:1,127.0.0.1:2 ; x=h:3;").expect("ok");
        assert_eq!(
            c.agents,
            [
                agent("echo", &["127.0.0.1:1", "127.0.0.1:2"]),
                agent("x", &["h:3"])
            ]
        );
        assert!(RegistryConfig::from_env_value("echo").is_err());
        let c = RegistryConfig::from_env_value("echo=dns:///echo-headless.ns.svc:50051,dns:///b:1")
            .expect("ok");
        assert_eq!(
            c.agents,
            [agent(
                "echo",
                &["dns:///echo-headless.ns.svc:50051", "dns:///b:1"]
            )]
        );
        c.validate().expect("dns endpoints are valid");
    }

    #[test]
    fn env_format_takes_a_card_url_after_at() {
        let url = "http://127.0.0.1:8000/.well-known/agent-card.json";
        let c = RegistryConfig::from_env_value(&format!("py=127.0.0.1:1,127.0.0.1:2@{url};e=h:3"))
            .expect("ok");
        let mut py = agent("py", &["127.0.0.1:1", "127.0.0.1:2"]);
        py.card_url = Some(url.into());
        assert_eq!(c.agents, [py, agent("e", &["h:3"])]);
        for bad in ["py=h:1@", "py=h:1@ftp://h/card", "py=h:1@h:8000/card"] {
            let err = RegistryConfig::from_env_value(bad).expect_err(bad);
            assert!(
                err.to_string()
                    .contains("must be an http:// or https:// URL"),
                "{err}"
            );
            assert!(err.to_string().contains(AGENT_SYNTAX), "{err}");
        }
        let mut file = agent("py", &["h:1"]);
        file.card_url = Some("h:8000/card".into());
        let err = RegistryConfig { agents: vec![file] }
            .validate()
            .expect_err("no scheme");
        assert!(err.to_string().contains("invalid card URL"), "{err}");
    }

    #[test]
    fn validation_names_the_problem() {
        for (cfg, want) in [
            (vec![agent("Echo", &["h:1"])], "invalid agent name"),
            (
                vec![agent("a", &["h:1"]), agent("a", &["h:2"])],
                "configured twice",
            ),
            (vec![agent("a", &[])], "invalid endpoint"),
            (vec![agent("a", &["http://h:1"])], "invalid endpoint"),
            (vec![agent("a", &["h:0"])], "invalid endpoint"),
            (vec![agent("a", &["dns:///h"])], "invalid endpoint"),
            (
                vec![agent("a", &["h:1", "dns:///h:1"])],
                "either all host:port or all dns:///host:port",
            ),
        ] {
            let err = RegistryConfig { agents: cfg }.validate().expect_err(want);
            assert!(err.to_string().contains(want), "{err}");
        }
    }

    #[tokio::test]
    async fn clients_rotate_over_endpoints_per_call() {
        let r = Registry::new(&RegistryConfig {
            agents: vec![agent("a", &["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])],
        })
        .expect("registry");
        let a = r.agent("a").expect("a");
        let order: Vec<String> = (0..5).map(|_| a.client().address().to_owned()).collect();
        assert_eq!(
            order,
            [
                "127.0.0.1:1",
                "127.0.0.1:2",
                "127.0.0.1:3",
                "127.0.0.1:1",
                "127.0.0.1:2"
            ]
        );
        assert!(matches!(r.agent("b"), Err(RegistryError::UnknownAgent(_))));
    }

    #[test]
    fn merge_replaces_by_name() {
        let mut c = RegistryConfig {
            agents: vec![agent("a", &["h:1"]), agent("b", &["h:2"])],
        };
        c.merge(RegistryConfig {
            agents: vec![agent("b", &["h:9"]), agent("c", &["h:3"])],
        });
        let eps: Vec<_> = c.agents.iter().map(|a| a.endpoints[0].as_str()).collect();
        assert_eq!(eps, ["h:1", "h:9", "h:3"]);
    }
}
