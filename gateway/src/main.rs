//! `switchyard-gateway`: serves the agents named on the command line (or in
//! `SWITCHYARD_AGENTS`) over A2A JSON-RPC, REST, SSE, WebSocket, native gRPC and gRPC-Web until
//! SIGINT or SIGTERM.

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use switchyard::authz::Policy;
use switchyard::{
    Registry, RegistryConfig,
    registry::{AGENTS_ENV, DiscoveryConfig},
    resilience::ResilienceConfig,
};
use switchyard_gateway::{
    ApiKey, AuthConfig, ConnectionLimits, Gateway, GatewayConfig, JwksSource, JwtConfig,
    StreamResume,
};

/// The Switchyard HTTP gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "SWITCHYARD_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// Agents: `name=host:port[,host:port…][@card-url]`, separated by `;`; an endpoint may be
    /// `dns:///host:port` (every address of the name, balanced per request; resolver settings
    /// from `SWITCHYARD_DNS_SERVER` and `SWITCHYARD_DNS_REFRESH_SECS`). The card URL
    /// (`http://host:port/.well-known/agent-card.json`) is needed for an agent that serves only
    /// the A2A gRPC binding (its `AgentService/GetAgentCard` answers UNIMPLEMENTED).
    #[arg(long, env = AGENTS_ENV, default_value = "")]
    agents: String,
    /// Base URL clients reach the gateway at (used in the agent cards served).
    #[arg(long, env = "SWITCHYARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Origins of browser pages allowed (CORS and WebSocket; comma-separated; `*` for any).
    /// Default: none for CORS; WebSockets from same-origin and loopback pages only.
    #[arg(long, env = "SWITCHYARD_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Seconds between SSE keep-alive comments.
    #[arg(long, default_value_t = 15)]
    sse_keepalive_secs: u64,
    /// Requests, streams and sessions served at once; beyond it requests are shed (429).
    #[arg(long, default_value_t = GatewayConfig::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Client connections open at once; beyond it a new connection is closed at once.
    #[arg(long, default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection has to send its first request head (and HTTP/1.1 request headers).
    #[arg(long, default_value_t = ConnectionLimits::default().header_read_timeout.as_secs_f64())]
    header_read_timeout_secs: f64,
    /// Seconds after which a connection with nothing in flight is closed.
    #[arg(long, default_value_t = ConnectionLimits::default().idle_timeout.as_secs_f64())]
    idle_timeout_secs: f64,
    /// API keys, `name=<sha256 hex of the key>`, comma-separated. Any key (or a JWKS) turns
    /// authentication on.
    #[arg(
        long,
        env = "SWITCHYARD_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Vec<String>,
    /// JWKS of bearer JWTs: an http(s) URL or a file path.
    #[arg(long, env = "SWITCHYARD_JWKS")]
    jwks: Option<String>,
    /// Accepted JWT audiences (`aud`), comma-separated; required with --jwks.
    #[arg(long, env = "SWITCHYARD_JWT_AUDIENCES", value_delimiter = ',')]
    jwt_audiences: Vec<String>,
    /// Required JWT issuer (`iss`).
    #[arg(long, env = "SWITCHYARD_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Authorization policy, a JSON file: `{"<agent>": {"allow": ["jwt:alice", …],
    /// "skills": {"<skill>": […]}}}` (see the README's "Security").
    #[arg(long, env = "SWITCHYARD_AUTH_POLICY_FILE")]
    policy_file: Option<std::path::PathBuf>,
    /// HTTPS at the edge: certificate chain PEM file (with --tls-key); re-read when it changes.
    #[arg(long, env = "GATEWAY_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// HTTPS at the edge: private key PEM file (with --tls-cert).
    #[arg(long, env = "GATEWAY_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// Re-subscriptions per break of a task's stream (SSE, WebSocket session) before it fails
    /// with UNAVAILABLE; 0 turns resuming off; at most 1000.
    #[arg(long, env = "SWITCHYARD_STREAM_RESUME_ATTEMPTS", default_value_t = StreamResume::default().attempts)]
    stream_resume_attempts: u32,
    /// Milliseconds before the first re-subscription; doubles after each failed one.
    #[arg(long, env = "SWITCHYARD_STREAM_RESUME_BACKOFF_MS", default_value_t = millis(StreamResume::default().backoff))]
    stream_resume_backoff_ms: u64,
    /// Longest wait between two re-subscriptions, in milliseconds (at most 60000).
    #[arg(long, env = "SWITCHYARD_STREAM_RESUME_MAX_BACKOFF_MS", default_value_t = millis(StreamResume::default().max_backoff))]
    stream_resume_max_backoff_ms: u64,
}

/// `d` in whole milliseconds (for flag defaults).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The authentication settings of the flags.
fn auth(args: &Args) -> Result<AuthConfig, String> {
    let api_keys = args
        .api_keys
        .iter()
        .filter(|k| !k.is_empty())
        .map(|entry| {
            let (name, hash) = entry
                .split_once('=')
                .ok_or_else(|| "--api-keys entries are name=<sha256 hex>".to_owned())?;
            ApiKey::from_hash(name.trim(), hash)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let jwt = args.jwks.as_ref().map(|jwks| {
        let source = if jwks.starts_with("http://") || jwks.starts_with("https://") {
            JwksSource::Url(jwks.clone())
        } else {
            JwksSource::File(jwks.into())
        };
        JwtConfig::new(source, args.jwt_audiences.clone(), args.jwt_issuer.clone())
    });
    let policy = match &args.policy_file {
        None => Policy::default(),
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| format!("--policy-file {}: {e}", path.display()))?;
            let agents = serde_json::from_slice(&text)
                .map_err(|e| format!("--policy-file {}: {e}", path.display()))?;
            Policy::from_config(&agents)?
        }
    };
    Ok(AuthConfig {
        api_keys,
        jwt,
        policy: Arc::new(policy),
    })
}

/// A positive number of seconds from a flag, or a one-line error naming it.
fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{flag} must be a positive number of seconds, not {value}"))
}

/// Exit code of a configuration error (`EX_USAGE`).
const EX_USAGE: u8 = 64;

/// mimalloc (v2) rather than glibc's malloc: ~12 % fewer instructions per call, idle memory per
/// connection within its budget (`bench/RESULTS.md` §10, "mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    switchyard::install_crypto_provider();
    let telemetry = match switchyard::telemetry::init(
        &switchyard::telemetry::TelemetryConfig::from_env("switchyard-gateway"),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("switchyard-gateway: telemetry: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let args = Args::parse();
    // mTLS to the agents: SWITCHYARD_TLS_CA/_CERT/_KEY (the gateway's own certificate).
    match switchyard::tls::default_client() {
        Ok(Some(tls)) => tracing::info!(spiffe_id = %tls.spiffe_id(), "mTLS to agents"),
        Ok(None) => tracing::warn!(
            "INSECURE: no SWITCHYARD_TLS_CA/_CERT/_KEY: calls to agents are plain text"
        ),
        Err(e) => {
            eprintln!("switchyard-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    }
    let registry = match RegistryConfig::from_env_value(&args.agents)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            let resilience = ResilienceConfig::from_env().map_err(|e| e.to_string())?;
            let discovery = DiscoveryConfig::from_env().map_err(|e| e.to_string())?;
            Registry::with_settings(&c, discovery, resilience).map_err(|e| e.to_string())
        }) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("switchyard-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    for (agent, error) in registry.load_cards(Duration::from_secs(5)).await {
        tracing::warn!(%agent, %error, "agent card not loaded; the agent is unreachable for now");
    }
    let connections = match (
        seconds("header-read-timeout-secs", args.header_read_timeout_secs),
        seconds("idle-timeout-secs", args.idle_timeout_secs),
    ) {
        (Ok(header_read_timeout), Ok(idle_timeout)) => ConnectionLimits {
            header_read_timeout,
            idle_timeout,
            max_connections: args.max_connections,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("switchyard-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let auth = match auth(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("switchyard-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let config = GatewayConfig {
        auth,
        listen: args.listen,
        public_url: args.public_url,
        cors_origins: args
            .cors_origins
            .into_iter()
            .filter(|o| !o.is_empty())
            .collect(),
        sse_keepalive: Duration::from_secs(args.sse_keepalive_secs.max(1)),
        max_concurrent_requests: args.max_concurrent_requests,
        connections,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        stream_resume: StreamResume {
            attempts: args.stream_resume_attempts,
            backoff: Duration::from_millis(args.stream_resume_backoff_ms),
            max_backoff: Duration::from_millis(args.stream_resume_max_backoff_ms),
            ..StreamResume::default()
        },
        ..GatewayConfig::default()
    };
    let gateway = match Gateway::bind(config, registry).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("switchyard-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    // The bound address (what a local client or a test connects to); the public URL used in
    // cards is logged with "gateway serving".
    let scheme = if gateway.is_https() { "https" } else { "http" };
    println!(
        "switchyard-gateway listening on {scheme}://{}",
        gateway.local_addr()
    );
    gateway.run_until(switchyard::shutdown_signal()).await;
    telemetry.shutdown().await;
    ExitCode::SUCCESS
}
