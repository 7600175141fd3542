//! Configuration of the `switchyard` command: built-in defaults, then a TOML file, then
//! `SWITCHYARD_*` environment variables, then command-line flags (with figment). With no file
//! at all, the defaults run the whole mesh on loopback with free ports.
//!
//! Environment: `SWITCHYARD_DATA_DIR`, `SWITCHYARD_GATEWAY_URL`, `SWITCHYARD_TIMEOUT_SECS`,
//! nested keys with `__` (e.g. `SWITCHYARD_UP__GATEWAY__PORT=8080`), and `SWITCHYARD_AGENTS`
//! in the registry format `name=host:port[,host:port…][@card-url];…`.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format as _, Serialized, Toml},
};
use switchyard::{
    Retention, StoreConfig,
    registry::{AGENTS_ENV, AgentConfig, RegistryConfig},
    server::ConnectionLimits,
    store::Durability,
};

use crate::error::CliError;

/// File read when `--config` is not given and it exists in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "switchyard.toml";

/// Everything the command can be configured with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the task databases (`<agent>.db`), the mesh file (`mesh.json`) and the lock
    /// of `switchyard up`. Default: `$XDG_STATE_HOME/switchyard` (`~/.local/state/switchyard`).
    pub data_dir: PathBuf,
    /// When set, commands reach agents through this gateway (A2A JSON-RPC) instead of gRPC.
    pub gateway_url: Option<String>,
    /// Credential sent to the gateway as `Authorization: Bearer <token>`: a JWT or an API
    /// key. From `--token` or `SWITCHYARD_TOKEN` (better than a file: it stays out of
    /// version control). Never logged or printed.
    pub token: Option<Token>,
    /// Deadline of a command's calls, in seconds.
    pub timeout_secs: f64,
    /// OTLP/gRPC endpoint to export traces to (Jaeger, an OpenTelemetry Collector), e.g.
    /// `http://localhost:4317`. Unset: `OTEL_EXPORTER_OTLP_ENDPOINT`, else no export.
    pub otlp_endpoint: Option<String>,
    /// Log line format: `logfmt` (default) or `json`. Level by `RUST_LOG`.
    pub log_format: switchyard::telemetry::LogFormat,
    /// Agents for commands, besides those a running `switchyard up` publishes.
    pub agents: Vec<AgentConfig>,
    /// What `switchyard up` runs.
    pub up: UpConfig,
}

/// Settings of `switchyard up`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpConfig {
    /// Address every listener binds to. Default `127.0.0.1`.
    pub host: IpAddr,
    /// Per-agent settings, by agent name (`echo`, `textstats`, `summarize`, `keywords`,
    /// `research`); agents not listed run with defaults.
    pub agents: BTreeMap<String, UpAgent>,
    /// The gateway.
    pub gateway: UpGateway,
    /// When a task-store commit counts as done: `fsync` (default) or `os`.
    pub durability: Durability,
    /// Task store of every agent (unless the agent names its own): `memory`, `sqlite:<path>`
    /// or `postgres://user:password@host:port/database` (each agent in its own schema, named
    /// after it). Unset: a SQLite file per agent, `<data_dir>/<agent>.db`. A `sqlite:<path>`
    /// here suits one agent only: `up` refuses two agents on one SQLite file.
    pub store: Option<String>,
    /// Name of an environment variable holding the `store` spec (e.g. one a Kubernetes
    /// Secret sets), instead of `store`.
    pub store_env: Option<String>,
    /// Path of a file holding the `store` spec (e.g. a mounted Secret), instead of `store`.
    pub store_file: Option<PathBuf>,
    /// How long Ctrl-C waits for in-flight tasks before stopping anyway, seconds.
    pub drain_timeout_secs: f64,
    /// Seconds the task of a unary `SendMessage` whose caller went away keeps running for a
    /// retry of the same message to re-attach to it (every agent `up` runs). Default 2, at
    /// most 600; 0 cancels at once.
    pub disconnect_grace_secs: f64,
    /// The research agent's sub-agents, in report order.
    pub research_agents: Vec<String>,
    /// Milliseconds the research agent keeps from its deadline before passing it on.
    pub research_margin_ms: u64,
    /// Connection limits of every listener `up` runs (each agent's and the gateway's).
    pub connections: UpConnections,
    /// How long each agent keeps its finished tasks.
    pub retention: UpRetention,
    /// Local processes served as agents, by agent name (`[up.stdio_agents.<name>]`): a
    /// command that speaks newline-delimited JSON-RPC with A2A methods (`kind = "a2a"`, the
    /// default) or an MCP server (`kind = "mcp"`, its tools become the agent's skills). Each
    /// gets its own loopback gRPC port (set it in `[up.agents.<name>]`) and is reachable over
    /// every front of the gateway.
    pub stdio_agents: BTreeMap<String, StdioAgentConfig>,
    /// Bus bridges to start (`[[up.bridges]]`): each delivers one agent's bus address to it.
    pub bridges: Vec<UpBridge>,
    /// Authentication and authorization at the gateway (`[up.auth]`); off by default.
    pub auth: UpAuth,
    /// Plain text between the mesh's workloads instead of mTLS. Default false: `up` creates
    /// a development CA and per-workload certificates in `<data_dir>/certs` and every
    /// internal hop (gateway → agent, research → sub-agents, CLI → agent) uses mTLS. When
    /// true, `up` says so loudly at start.
    pub insecure: bool,
    /// The SPIFFE trust domain of the mesh's workload identities
    /// (`spiffe://<trust_domain>/agent/<name>`, `…/gateway`, `…/cli`). Default
    /// `switchyard.local`.
    pub trust_domain: String,
}

/// A secret credential: shown as `***` in debug output.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// `[up.auth]`: the gateway's API keys, JWT settings and the authorization policy.
///
/// ```toml
/// [up.auth.api_keys]
/// ci = "<sha256 hex of the key>"   # switchyard auth hash-key <key>
/// [up.auth]
/// jwks = "https://idp.example.com/.well-known/jwks.json"   # or a file path
/// jwt_audiences = ["switchyard"]
/// jwt_issuer = "https://idp.example.com"
/// [up.auth.policy.echo]
/// allow = ["api-key:ci", "jwt:alice", "scope:agents.call"]
/// [up.auth.policy.echo.skills]
/// echo = ["jwt:alice"]
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpAuth {
    /// API keys by name: the lower-case hex SHA-256 of each key (never the key).
    pub api_keys: BTreeMap<String, String>,
    /// The JWKS of bearer JWTs: an `http(s)://` URL or a file path. Unset: no JWTs.
    pub jwks: Option<String>,
    /// Accepted `aud` values (required with `jwks`).
    pub jwt_audiences: Vec<String>,
    /// Required `iss`, if any.
    pub jwt_issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, seconds. Default 30.
    pub jwt_leeway_secs: u64,
    /// Who may call which agent (and skill), by agent name; see `switchyard::authz`.
    /// Once any agent is listed, agents not listed cannot be called.
    pub policy: BTreeMap<String, switchyard::authz::AgentPolicyConfig>,
}

impl Default for UpAuth {
    fn default() -> Self {
        Self {
            api_keys: BTreeMap::new(),
            jwks: None,
            jwt_audiences: Vec::new(),
            jwt_issuer: None,
            jwt_leeway_secs: 30,
            policy: BTreeMap::new(),
        }
    }
}

impl UpAuth {
    /// The gateway's [`switchyard_gateway::AuthConfig`].
    ///
    /// # Errors
    /// A bad key hash, a JWKS without audiences, or a bad policy rule.
    pub fn gateway_config(&self) -> Result<switchyard_gateway::AuthConfig, String> {
        use switchyard_gateway::{ApiKey, AuthConfig, JwksSource, JwtConfig};
        let api_keys = self
            .api_keys
            .iter()
            .map(|(name, hash)| ApiKey::from_hash(name, hash))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("up.auth.api_keys: {e}"))?;
        let jwt = match &self.jwks {
            None => None,
            Some(jwks) => {
                if self.jwt_audiences.is_empty() {
                    return Err("up.auth.jwt_audiences must name at least one audience when up.auth.jwks is set".into());
                }
                let source = if jwks.starts_with("http://") || jwks.starts_with("https://") {
                    JwksSource::Url(jwks.clone())
                } else {
                    JwksSource::File(jwks.into())
                };
                let mut c =
                    JwtConfig::new(source, self.jwt_audiences.clone(), self.jwt_issuer.clone());
                c.leeway = Duration::from_secs(self.jwt_leeway_secs);
                Some(c)
            }
        };
        let policy = switchyard::authz::Policy::from_config(&self.policy)
            .map_err(|e| format!("up.auth.{e}"))?;
        Ok(AuthConfig {
            api_keys,
            jwt,
            policy: std::sync::Arc::new(policy),
        })
    }
}

/// What a stdio agent speaks on stdin/stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StdioKind {
    /// Newline-delimited JSON-RPC 2.0 with A2A method names and types
    /// ([`switchyard_mcp::stdio_agent`]).
    #[default]
    A2a,
    /// An MCP server (stdio transport); its tools are the agent's skills
    /// ([`switchyard_mcp::mcp_agent`]).
    Mcp,
}

/// One local process served as an agent by `switchyard up`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioAgentConfig {
    /// The program and its arguments, e.g. `["python3", "upper.py"]`.
    pub command: Vec<String>,
    /// What it speaks: `a2a` (default) or `mcp`.
    #[serde(default)]
    pub kind: StdioKind,
    /// The agent's description (its card).
    #[serde(default)]
    pub description: String,
    /// Example requests for the card's skill (`a2a` agents).
    #[serde(default)]
    pub examples: Vec<String>,
    /// Extra environment variables of the process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of the process (default: the current one).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

impl StdioAgentConfig {
    /// The process to run.
    pub fn process(&self) -> switchyard_mcp::ProcessConfig {
        switchyard_mcp::ProcessConfig {
            command: self.command.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
        }
    }
}

/// One bus bridge under `switchyard up` (see the `switchyard-bus` crate and README "Message
/// buses").
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpBridge {
    /// The bus: `inproc:` (default; the embedded in-process bus), `nats://host:4222`,
    /// `amqp://user:pass@host:5672/%2f`, `redis://host:6379`, `mqtt://host:1883`, `kafka://host:9092`.
    pub url: String,
    /// The agent it delivers to (one `up` runs).
    pub agent: String,
    /// Address prefix: requests on `<prefix>.agent.<agent>`.
    pub prefix: String,
    /// Attempts before a failing message is dead-lettered.
    pub max_attempts: u32,
    /// Unacknowledged messages held at once.
    pub prefetch: usize,
    /// Seconds before a silent consumer's messages are redelivered (NATS, Redis).
    pub ack_wait_secs: f64,
    /// Publish the agent's task events to `<prefix>.events.<agent>`.
    pub events: bool,
}

impl Default for UpBridge {
    fn default() -> Self {
        Self {
            url: "inproc:".into(),
            agent: String::new(),
            prefix: switchyard_bus::naming::PREFIX.into(),
            max_attempts: 3,
            prefetch: 64,
            ack_wait_secs: 30.0,
            events: false,
        }
    }
}

/// Connection limits of every listener under `switchyard up` ([`ConnectionLimits`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpConnections {
    /// Connections open at once per listener; beyond it a connection is closed at once.
    pub max_connections: usize,
    /// Seconds a connection has to send its first request head (and HTTP/1.1 headers).
    pub header_read_timeout_secs: f64,
    /// Seconds after which a connection with nothing in flight is closed.
    pub idle_timeout_secs: f64,
}

impl Default for UpConnections {
    fn default() -> Self {
        let d = ConnectionLimits::default();
        Self {
            max_connections: d.max_connections,
            header_read_timeout_secs: d.header_read_timeout.as_secs_f64(),
            idle_timeout_secs: d.idle_timeout.as_secs_f64(),
        }
    }
}

impl UpConfig {
    /// Replicas of agent `name` (1 unless configured).
    pub fn replicas(&self, name: &str) -> u32 {
        self.agents.get(name).map_or(1, |a| a.replicas)
    }
}

impl UpConnections {
    /// As the runtime's [`ConnectionLimits`] (checked by [`Config::validate`]).
    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs_f64(self.header_read_timeout_secs),
            idle_timeout: Duration::from_secs_f64(self.idle_timeout_secs),
        }
    }
}

/// Task retention of every agent under `switchyard up` ([`Retention`]); 0 means no limit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpRetention {
    /// Seconds a terminal task is kept after its last status change; 0: no age limit.
    pub max_age_secs: f64,
    /// Terminal tasks kept per agent, the most recent; 0: no count limit.
    pub max_terminal_tasks: u64,
    /// Seconds between sweeps.
    pub sweep_interval_secs: f64,
}

impl Default for UpRetention {
    fn default() -> Self {
        let d = Retention::default();
        Self {
            max_age_secs: d.max_age.map_or(0.0, |a| a.as_secs_f64()),
            max_terminal_tasks: d.max_terminal_tasks.unwrap_or(0),
            sweep_interval_secs: d.sweep_interval.as_secs_f64(),
        }
    }
}

impl UpRetention {
    /// As the runtime's [`Retention`] (checked by [`Config::validate`]).
    pub fn retention(&self) -> Retention {
        Retention {
            max_age: (self.max_age_secs > 0.0).then(|| Duration::from_secs_f64(self.max_age_secs)),
            max_terminal_tasks: (self.max_terminal_tasks > 0).then_some(self.max_terminal_tasks),
            sweep_interval: Duration::from_secs_f64(self.sweep_interval_secs),
        }
    }
}

/// One example agent under `switchyard up`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpAgent {
    /// Port of its gRPC listener; 0 (default) picks a free one.
    pub port: u16,
    /// Set to true to leave the agent out.
    pub disabled: bool,
    /// This agent's task store spec (as [`UpConfig::store`]), overriding the mesh-wide one.
    pub store: Option<String>,
    /// Environment variable holding this agent's store spec.
    pub store_env: Option<String>,
    /// File holding this agent's store spec.
    pub store_file: Option<PathBuf>,
    /// Replicas of the agent (default 1): N servers, each on its own free port, registered as
    /// N endpoints of the agent (the gateway balances per request). More than 1 needs a
    /// shared task store: PostgreSQL (each replica with its own connections, as separate
    /// processes would), or `memory` (one store shared in this process); never SQLite, whose
    /// file is one process's. Needs `port = 0`.
    pub replicas: u32,
}

impl Default for UpAgent {
    fn default() -> Self {
        Self {
            port: 0,
            disabled: false,
            store: None,
            store_env: None,
            store_file: None,
            replicas: 1,
        }
    }
}

/// The gateway under `switchyard up`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpGateway {
    /// Port of its HTTP listener; 0 (default) picks a free one.
    pub port: u16,
    /// Set to true to run without the gateway.
    pub disabled: bool,
    /// Public base URL used in the agent cards it serves; default `http://<bound address>`.
    pub public_url: Option<String>,
    /// Browser origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// Seconds between SSE keep-alive comments. Default 3: below the 5-second read timeout
    /// of common A2A clients (the Python SDK's default), which a silent stream would trip.
    pub sse_keepalive_secs: f64,
    /// Re-subscriptions per break of a task's stream (SSE, WebSocket) when its agent
    /// restarts, before the stream fails with UNAVAILABLE; 0 turns resuming off. Default 12,
    /// at most 1000 (the README's "Resilience").
    pub stream_resume_attempts: u32,
    /// Seconds before the first re-subscription; doubles after each failed one. Default 0.1.
    pub stream_resume_backoff_secs: f64,
    /// Longest wait between two re-subscriptions, in seconds. Default 1, at most 60.
    pub stream_resume_max_backoff_secs: f64,
}

impl UpGateway {
    /// The gateway's [`StreamResume`](switchyard_gateway::StreamResume) of these settings.
    ///
    /// # Errors
    /// A message naming the `up.gateway.stream_resume_*` setting out of its bounds.
    pub fn stream_resume(&self) -> Result<switchyard_gateway::StreamResume, String> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("up.gateway.{name} must be a positive number, not {v}"))
        };
        let resume = switchyard_gateway::StreamResume {
            attempts: self.stream_resume_attempts,
            backoff: secs(
                "stream_resume_backoff_secs",
                self.stream_resume_backoff_secs,
            )?,
            max_backoff: secs(
                "stream_resume_max_backoff_secs",
                self.stream_resume_max_backoff_secs,
            )?,
            ..Default::default()
        };
        resume.validate().map_err(|e| format!("up.gateway: {e}"))?;
        Ok(resume)
    }
}

impl Default for UpGateway {
    fn default() -> Self {
        Self {
            port: 0,
            disabled: false,
            public_url: None,
            cors_origins: Vec::new(),
            sse_keepalive_secs: 3.0,
            stream_resume_attempts: 12,
            stream_resume_backoff_secs: 0.1,
            stream_resume_max_backoff_secs: 1.0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            gateway_url: None,
            token: None,
            timeout_secs: 120.0,
            otlp_endpoint: None,
            log_format: switchyard::telemetry::LogFormat::default(),
            agents: Vec::new(),
            up: UpConfig::default(),
        }
    }
}

impl Default for UpConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            agents: BTreeMap::new(),
            gateway: UpGateway::default(),
            durability: Durability::Fsync,
            store: None,
            store_env: None,
            store_file: None,
            drain_timeout_secs: 30.0,
            disconnect_grace_secs: 2.0,
            research_agents: vec!["textstats".into(), "summarize".into(), "keywords".into()],
            research_margin_ms: 250,
            connections: UpConnections::default(),
            auth: UpAuth::default(),
            retention: UpRetention::default(),
            stdio_agents: BTreeMap::new(),
            bridges: Vec::new(),
            insecure: false,
            trust_domain: "switchyard.local".into(),
        }
    }
}

/// The store spec given by at most one of `store`, `store_env` and `store_file` (`what` names
/// the table in errors); `None` when none is set.
fn store_spec(
    what: &str,
    store: Option<&String>,
    env: Option<&String>,
    file: Option<&PathBuf>,
) -> Result<Option<String>, CliError> {
    match (store, env, file) {
        (None, None, None) => Ok(None),
        (Some(s), None, None) => Ok(Some(s.clone())),
        (None, Some(var), None) => match std::env::var(var) {
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(_) => Err(CliError::Config(format!(
                "{what}.store_env: environment variable {var} is not set (or not UTF-8)"
            ))),
        },
        (None, None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s.trim().to_owned())),
            Err(e) => Err(CliError::Config(format!(
                "{what}.store_file: cannot read {}: {e}",
                path.display()
            ))),
        },
        _ => Err(CliError::Config(format!(
            "{what}: set only one of store, store_env and store_file"
        ))),
    }
}

impl UpConfig {
    /// The task store of agent `name`: its own `store`/`store_env`/`store_file`, else the
    /// mesh-wide one, else a SQLite file `<data_dir>/<name>.db`; with [`durability`](Self::durability).
    ///
    /// # Errors
    /// [`CliError::Config`] when more than one source is set at one level, the variable or file
    /// cannot be read, or the spec is not `memory`, `sqlite:<path>` or `postgres://…` (the
    /// message never repeats the spec: it may hold a password).
    pub fn store_for(&self, name: &str, data_dir: &Path) -> Result<StoreConfig, CliError> {
        let own = self.agents.get(name);
        let spec = match store_spec(
            &format!("up.agents.{name}"),
            own.and_then(|a| a.store.as_ref()),
            own.and_then(|a| a.store_env.as_ref()),
            own.and_then(|a| a.store_file.as_ref()),
        )? {
            Some(s) => Some(s),
            None => store_spec(
                "up",
                self.store.as_ref(),
                self.store_env.as_ref(),
                self.store_file.as_ref(),
            )?,
        };
        let Some(spec) = spec else {
            return Ok(StoreConfig::Sqlite {
                path: data_dir.join(format!("{name}.db")),
                durability: self.durability,
            });
        };
        let store = StoreConfig::from_spec(&spec)
            .map_err(|e| CliError::Config(format!("task store of {name}: {e}")))?;
        Ok(match store {
            StoreConfig::Sqlite { path, .. } => StoreConfig::Sqlite {
                path,
                durability: self.durability,
            },
            StoreConfig::Postgres { url, schema, .. } => StoreConfig::Postgres {
                url,
                schema,
                durability: self.durability,
            },
            other => other,
        })
    }
}

fn default_data_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")));
    state.map_or_else(
        || PathBuf::from("switchyard-data"),
        |s| s.join("switchyard"),
    )
}

impl Config {
    /// Loads the configuration: defaults, the file (`path`, else `./switchyard.toml` if it
    /// exists), then the environment.
    ///
    /// # Errors
    /// [`CliError::Config`] when the file is missing (only if named explicitly), unreadable or
    /// invalid, or a value has the wrong type.
    pub fn load(path: Option<&Path>) -> Result<Self, CliError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => {
                return Err(CliError::Config(format!(
                    "config file {} does not exist",
                    p.display()
                )));
            }
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        figment = figment.merge(
            Env::prefixed("SWITCHYARD_")
                .ignore(&[
                    "AGENTS",
                    "CONFIG",
                    "PYTHON",
                    "DNS_SERVER",
                    "DNS_REFRESH_SECS",
                    "UPDATE_GOLDEN",
                    // The switchyard-gateway binary's authentication settings.
                    "API_KEYS",
                    "JWKS",
                    "JWT_AUDIENCES",
                    "JWT_ISSUER",
                    "AUTH_POLICY_FILE",
                ])
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| CliError::Config(format!("invalid configuration: {}", one_line(&e))))?;
        if let Some(env) = std::env::var_os(AGENTS_ENV) {
            let env = RegistryConfig::from_env_value(&env.to_string_lossy())
                .map_err(|e| CliError::Config(e.to_string()))?;
            let mut registry = RegistryConfig {
                agents: std::mem::take(&mut config.agents),
            };
            registry.merge(env);
            config.agents = registry.agents;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values figment cannot.
    ///
    /// # Errors
    /// [`CliError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), CliError> {
        self.up.auth.gateway_config().map_err(CliError::Config)?;
        for (name, a) in &self.up.stdio_agents {
            if a.command.first().is_none_or(String::is_empty) {
                return Err(CliError::Config(format!(
                    "up.stdio_agents.{name}.command must name a program"
                )));
            }
            if crate::up::EXAMPLE_AGENTS.contains(&name.as_str()) {
                return Err(CliError::Config(format!(
                    "up.stdio_agents.{name}: the name of an example agent; pick another"
                )));
            }
        }
        for b in &self.up.bridges {
            if b.agent.is_empty() {
                return Err(CliError::Config(
                    "up.bridges: every bridge needs an agent".into(),
                ));
            }
            if b.max_attempts == 0 || b.prefetch == 0 {
                return Err(CliError::Config(format!(
                    "up.bridges ({}): max_attempts and prefetch must be at least 1",
                    b.agent
                )));
            }
            if !(b.ack_wait_secs.is_finite() && b.ack_wait_secs > 0.0) {
                return Err(CliError::Config(format!(
                    "up.bridges ({}): ack_wait_secs must be a positive number",
                    b.agent
                )));
            }
        }
        if !(self.timeout_secs.is_finite() && self.timeout_secs > 0.0) {
            return Err(CliError::Config(
                "timeout_secs must be a positive number".into(),
            ));
        }
        if !(self.up.gateway.sse_keepalive_secs.is_finite()
            && self.up.gateway.sse_keepalive_secs >= 0.1)
        {
            return Err(CliError::Config(
                "up.gateway.sse_keepalive_secs must be at least 0.1".into(),
            ));
        }
        self.up.gateway.stream_resume().map_err(CliError::Config)?;
        let grace = self.up.disconnect_grace_secs;
        if !(grace.is_finite()
            && (0.0..=switchyard::server::MAX_DISCONNECT_GRACE.as_secs_f64()).contains(&grace))
        {
            return Err(CliError::Config(format!(
                "up.disconnect_grace_secs must be between 0 and {}, not {grace}",
                switchyard::server::MAX_DISCONNECT_GRACE.as_secs()
            )));
        }
        if !(self.up.drain_timeout_secs.is_finite() && self.up.drain_timeout_secs >= 0.0) {
            return Err(CliError::Config(
                "up.drain_timeout_secs must be 0 or more".into(),
            ));
        }
        let c = &self.up.connections;
        let r = &self.up.retention;
        for (name, secs, least) in [
            (
                "up.connections.header_read_timeout_secs",
                c.header_read_timeout_secs,
                0.001,
            ),
            (
                "up.connections.idle_timeout_secs",
                c.idle_timeout_secs,
                0.001,
            ),
            ("up.retention.max_age_secs", r.max_age_secs, 0.0),
            (
                "up.retention.sweep_interval_secs",
                r.sweep_interval_secs,
                0.001,
            ),
        ] {
            if !(secs.is_finite() && secs >= least && secs < 1e12) {
                return Err(CliError::Config(format!(
                    "{name} must be a number of seconds of at least {least}"
                )));
            }
        }
        if c.max_connections == 0 {
            return Err(CliError::Config(
                "up.connections.max_connections must be at least 1".into(),
            ));
        }
        for (name, agent) in &self.up.agents {
            if !crate::up::EXAMPLE_AGENTS.contains(&name.as_str()) {
                return Err(CliError::Config(format!(
                    "up.agents.{name}: no such example agent (known: {})",
                    crate::up::EXAMPLE_AGENTS.join(", ")
                )));
            }
            if agent.replicas == 0 {
                return Err(CliError::Config(format!(
                    "up.agents.{name}.replicas must be at least 1"
                )));
            }
            if agent.replicas > 1 && agent.port != 0 {
                return Err(CliError::Config(format!(
                    "up.agents.{name}: replicas = {} cannot share port {}; use port = 0",
                    agent.replicas, agent.port
                )));
            }
        }
        // Store sources: one per level, and a literal spec must parse (variables and files are
        // read when `up` starts).
        let levels = std::iter::once((
            "up".to_owned(),
            &self.up.store,
            &self.up.store_env,
            &self.up.store_file,
        ))
        .chain(self.up.agents.iter().map(|(n, a)| {
            (
                format!("up.agents.{n}"),
                &a.store,
                &a.store_env,
                &a.store_file,
            )
        }));
        for (what, store, env, file) in levels {
            let set = [store.is_some(), env.is_some(), file.is_some()];
            if set.iter().filter(|s| **s).count() > 1 {
                return Err(CliError::Config(format!(
                    "{what}: set only one of store, store_env and store_file"
                )));
            }
            if let Some(spec) = store {
                StoreConfig::from_spec(spec)
                    .map_err(|e| CliError::Config(format!("{what}.store: {e}")))?;
            }
        }
        RegistryConfig {
            agents: self.agents.clone(),
        }
        .validate()
        .map_err(|e| CliError::Config(e.to_string()))
    }
}

/// figment's errors can span lines; the user gets one.
fn one_line(e: &figment::Error) -> String {
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_defaults_and_unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "data_dir = \"/tmp/x\"\n[up.gateway]\nport = 8088\n[up.agents.echo]\nport = 7001\n\
             [[agents]]\nname = \"remote\"\nendpoints = [\"10.0.0.1:5000\"]\n",
        )
        .expect("write");
        let c = Config::load(Some(&file)).expect("valid");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.up.gateway.port, 8088);
        assert_eq!(c.up.agents["echo"].port, 7001);
        assert_eq!(c.agents[0].endpoints, ["10.0.0.1:5000"]);

        std::fs::write(&file, "data_dri = \"/tmp/x\"\n").expect("write");
        let e = Config::load(Some(&file)).expect_err("typo");
        assert!(e.to_string().contains("data_dri"), "{e}");
        assert_eq!(e.exit_code(), 64);

        std::fs::write(&file, "[up.agents.nope]\nport = 1\n").expect("write");
        let e = Config::load(Some(&file)).expect_err("unknown agent");
        assert!(e.to_string().contains("no such example agent"), "{e}");

        let e = Config::load(Some(&dir.path().join("missing.toml"))).expect_err("missing");
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn the_up_auth_table_configures_the_gateway_and_tokens_stay_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        let hash = switchyard_gateway::hash_api_key("k-1");
        std::fs::write(
            &file,
            format!(
                "token = \"s3cret\"\n[up.auth]\njwks = \"https://idp.test/jwks\"\n\
                 jwt_audiences = [\"sy\"]\n[up.auth.api_keys]\nci = \"{hash}\"\n\
                 [up.auth.policy.echo]\nallow = [\"api-key:ci\", \"jwt:alice\"]\n"
            ),
        )
        .expect("write");
        let c = Config::load(Some(&file)).expect("valid");
        assert!(!format!("{c:?}").contains("s3cret"));
        let auth = c.up.auth.gateway_config().expect("valid");
        assert!(auth.is_enabled() && auth.policy.is_enabled());
        assert_eq!(auth.api_keys[0].name(), "ci");
        let jwt = auth.jwt.expect("jwt");
        assert_eq!(
            jwt.jwks,
            switchyard_gateway::JwksSource::Url("https://idp.test/jwks".into())
        );

        for (bad, want) in [
            ("[up.auth.api_keys]\nci = \"abc\"\n", "64 hex digits"),
            ("[up.auth]\njwks = \"/x.json\"\n", "jwt_audiences"),
            (
                "[up.auth.policy.echo]\nallow = [\"user:x\"]\n",
                "invalid policy rule",
            ),
        ] {
            std::fs::write(&file, bad).expect("write");
            let e = Config::load(Some(&file)).expect_err(want);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn connection_limits_and_retention_come_from_the_up_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "[up.connections]\nidle_timeout_secs = 5\nmax_connections = 7\n\
             [up.retention]\nmax_terminal_tasks = 0\nmax_age_secs = 60\n",
        )
        .expect("write");
        let c = Config::load(Some(&file)).expect("valid");
        let limits = c.up.connections.limits();
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(limits.max_connections, 7);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        let r = c.up.retention.retention();
        assert_eq!(r.max_age, Some(Duration::from_secs(60)));
        assert_eq!(r.max_terminal_tasks, None, "0 is no limit");

        std::fs::write(&file, "[up.connections]\nidle_timeout_secs = 0\n").expect("write");
        let e = Config::load(Some(&file)).expect_err("zero");
        assert!(e.to_string().contains("idle_timeout_secs"), "{e}");
    }

    #[test]
    fn task_stores_come_from_the_agent_then_the_mesh_then_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        let secret = dir.path().join("dsn");
        std::fs::write(&secret, "postgres://app:pw@db:5432/tasks\n").expect("write");
        std::fs::write(
            &file,
            format!(
                "data_dir = \"/d\"\n[up]\nstore = \"postgres://app:pw@db/mesh\"\ndurability = \"os\"\n\
                 [up.agents.echo]\nstore = \"memory\"\n\
                 [up.agents.keywords]\nstore_file = \"{}\"\n\
                 [up.agents.summarize]\nstore = \"sqlite:/x/s.db\"\n",
                secret.display()
            ),
        )
        .expect("write");
        let c = Config::load(Some(&file)).expect("valid");
        let of = |n: &str| c.up.store_for(n, &c.data_dir).expect("store");
        assert!(matches!(of("echo"), StoreConfig::Memory));
        match of("textstats") {
            StoreConfig::Postgres {
                url,
                schema: None,
                durability: Durability::Os,
            } => assert_eq!(url.expose(), "postgres://app:pw@db/mesh"),
            other => panic!("{other:?}"),
        }
        match of("keywords") {
            StoreConfig::Postgres { url, .. } => {
                assert_eq!(url.expose(), "postgres://app:pw@db:5432/tasks");
            }
            other => panic!("{other:?}"),
        }
        match of("summarize") {
            StoreConfig::Sqlite { path, durability } => {
                assert_eq!(
                    (path, durability),
                    (PathBuf::from("/x/s.db"), Durability::Os)
                );
            }
            other => panic!("{other:?}"),
        }
        let d = Config::default();
        match d.up.store_for("echo", Path::new("/data")).expect("default") {
            StoreConfig::Sqlite { path, .. } => assert_eq!(path, PathBuf::from("/data/echo.db")),
            other => panic!("{other:?}"),
        }

        for (bad, want) in [
            (
                "[up]\nstore = \"mysql://x:secretpw@h/db\"\n",
                "up.store: unknown store spec",
            ),
            (
                "[up.agents.echo]\nstore = \"memory\"\nstore_env = \"X\"\n",
                "up.agents.echo: set only one of",
            ),
        ] {
            std::fs::write(&file, bad).expect("write");
            let e = Config::load(Some(&file)).expect_err(bad);
            assert!(e.to_string().contains(want), "{e}");
            assert!(!e.to_string().contains("secretpw"), "{e}");
        }
        std::fs::write(
            &file,
            "[up]\nstore_env = \"SWITCHYARD_TEST_SURELY_UNSET_STORE\"\n",
        )
        .expect("write");
        let c = Config::load(Some(&file)).expect("read when up starts");
        let e = c.up.store_for("echo", &c.data_dir).expect_err("unset");
        assert!(
            e.to_string().contains("SWITCHYARD_TEST_SURELY_UNSET_STORE"),
            "{e}"
        );
    }

    #[test]
    fn replicas_are_at_least_one_and_need_free_ports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "[up.agents.echo]\nreplicas = 2\nport = 7001\n").expect("write");
        let e = Config::load(Some(&file)).expect_err("one port");
        assert!(e.to_string().contains("use port = 0"), "{e}");
        assert_eq!(e.exit_code(), 64);

        std::fs::write(&file, "[up.agents.echo]\nreplicas = 0\n").expect("write");
        let e = Config::load(Some(&file)).expect_err("zero");
        assert!(e.to_string().contains("at least 1"), "{e}");

        std::fs::write(&file, "[up.agents.echo]\nport = 7001\n").expect("write");
        let c = Config::load(Some(&file)).expect("one replica by default");
        assert_eq!(c.up.replicas("echo"), 1);
        assert_eq!(c.up.replicas("keywords"), 1);
    }
}
