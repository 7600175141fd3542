//! The registry's configuration: [`AgentConfig`], [`RegistryConfig`] (a TOML/JSON file section,
//! or the `SWITCHYARD_AGENTS` format) and its validation.

use super::dns;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An agent with these endpoints, no card URL, not public (shared with the registry's tests).
    pub(in crate::registry) fn agent(name: &str, endpoints: &[&str]) -> AgentConfig {
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
