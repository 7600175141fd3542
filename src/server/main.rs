//! [`agent_main`]: the whole `main` of an agent binary.

use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{AgentServer, ServeConfig, StoreConfig};
use crate::{
    Agent,
    store::Durability,
    telemetry::{TelemetryConfig, init},
};

/// Exit code of a configuration error (`EX_USAGE`).
const EX_USAGE: u8 = 64;

/// Runs an agent binary called `name`: parses the flags, installs telemetry, serves `agent`
/// until SIGINT/SIGTERM, drains, and returns the exit code. Flags (with environment fallbacks,
/// `NAME` being `name` upper-cased):
/// - `--listen ADDR` (`NAME_LISTEN`, default `127.0.0.1:0`),
/// - `--metrics-listen ADDR` (`NAME_METRICS_LISTEN`, default none): a plain-text listener for
///   `/metrics`, `/healthz` and `/readyz` ([`ServeConfig::metrics_listen`]; how Prometheus and
///   the kubelet reach an agent under mTLS),
/// - `--db FILE` (`NAME_DB`, default `switchyard-data/<name>.db`), `--memory` for no store file,
/// - `--store SPEC` (`NAME_STORE`): `memory`, `sqlite:<path>` or `postgres://…` /
///   `postgresql://…` ([`StoreConfig::from_spec`]); `--store-file PATH` (`NAME_STORE_FILE`)
///   reads the spec from a file (e.g. a mounted Kubernetes Secret; surrounding whitespace is
///   ignored). `--memory`, `--store` and `--store-file` exclude each other; any of them
///   overrides `--db`.
/// - replicas on a shared store ([`ServeConfig::replica_id`], [`ServeConfig::lease_ttl`],
///   [`ServeConfig::max_takeovers`]): `--replica-id ID` (`NAME_REPLICA_ID`, default
///   `$SWITCHYARD_REPLICA_ID`, else `$HOSTNAME`), `--lease-ttl-ms MS` (`NAME_LEASE_TTL_MS`,
///   default 10000), `--max-takeovers N` (`NAME_MAX_TAKEOVERS`, default 3),
/// - `--push-notifications` (`NAME_PUSH_NOTIFICATIONS=true`): accept push-notification configs;
///   `--push-allow-http` (`NAME_PUSH_ALLOW_HTTP=true`) and `--push-allow-network CIDR`
///   (repeatable; `NAME_PUSH_ALLOW_NETWORKS=CIDR,CIDR`) loosen their
///   [`PushPolicy`](crate::outbound::PushPolicy).
/// - `--push-notifications` (`NAME_PUSH_NOTIFICATIONS=true`): accept push-notification configs.
/// - mTLS ([`ServeConfig::tls`]): `--tls-ca`, `--tls-cert`, `--tls-key` (`SWITCHYARD_TLS_CA`,
///   `SWITCHYARD_TLS_CERT`, `SWITCHYARD_TLS_KEY`); the agent's own calls present the same
///   certificate. Without them the agent serves plain text and says so (WARN) at start.
///
/// Prints `<name> listening on <addr>` once serving. A configuration error prints one line and
/// exits 64; so does a store that cannot be opened (e.g. an unreachable database: the line
/// names its `host:port`, never its password).
///
/// # Example
/// ```no_run
/// # struct MyAgent;
/// # #[tonic::async_trait] impl switchyard::Agent for MyAgent {
/// #   fn card(&self) -> switchyard::pb::a2a::AgentCard { switchyard::card::builder("my", "d").build() }
/// #   async fn execute(&self, _: switchyard::TaskContext, _: switchyard::TaskEvents) -> Result<(), switchyard::AgentError> { Ok(()) }
/// # }
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     switchyard::server::agent_main("my-agent", MyAgent).await
/// }
/// ```
pub async fn agent_main<A: Agent>(name: &'static str, agent: A) -> ExitCode {
    agent_main_with(name, Vec::new(), move |_| async move { Ok(agent) }).await
}

/// [`agent_main`] with extra flags, and an agent made from the parsed flags (e.g. one that
/// needs a registry).
pub async fn agent_main_with<A, F, Fut>(name: &'static str, extra: Vec<Arg>, make: F) -> ExitCode
where
    A: Agent,
    F: FnOnce(ArgMatches) -> Fut,
    Fut: Future<Output = Result<A, String>>,
{
    let upper = name.to_ascii_uppercase().replace('-', "_");
    let command = Command::new(name)
        .about(format!(
            "Serves the {name} agent (A2A gRPC binding + switchyard.v1.AgentService)"
        ))
        .version(env!("CARGO_PKG_VERSION"))
        .arg(
            Arg::new("listen")
                .long("listen")
                .env(format!("{upper}_LISTEN"))
                .default_value("127.0.0.1:0")
                .value_parser(clap::value_parser!(SocketAddr))
                .help("Address to listen on; port 0 picks a free port"),
        )
        .arg(
            Arg::new("metrics-listen")
                .long("metrics-listen")
                .env(format!("{upper}_METRICS_LISTEN"))
                .value_parser(clap::value_parser!(SocketAddr))
                .value_name("ADDR")
                .help(
                    "Plain-text listener for /metrics, /healthz and /readyz only (for Prometheus \
                     and probes when the gRPC port requires mTLS); port 0 picks a free port",
                ),
        )
        .arg(
            Arg::new("db")
                .long("db")
                .env(format!("{upper}_DB"))
                .default_value(format!("switchyard-data/{name}.db"))
                .value_parser(clap::value_parser!(PathBuf))
                .help("Task database file (SQLite)"),
        )
        .arg(
            Arg::new("memory")
                .long("memory")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["store", "store-file"])
                .help("Keep tasks in memory only"),
        )
        .arg(
            Arg::new("store")
                .long("store")
                .env(format!("{upper}_STORE"))
                .hide_env_values(true)
                .conflicts_with("store-file")
                .value_name("SPEC")
                .help("Task store: memory | sqlite:<path> | postgres://user:password@host:port/db"),
        )
        .arg(
            Arg::new("store-file")
                .long("store-file")
                .env(format!("{upper}_STORE_FILE"))
                .value_parser(clap::value_parser!(PathBuf))
                .value_name("PATH")
                .help("File holding the task store spec (e.g. a mounted Secret)"),
        )
        .arg(
            Arg::new("max-concurrent-executions")
                .long("max-concurrent-executions")
                .env(format!("{upper}_MAX_CONCURRENT_EXECUTIONS"))
                .value_parser(clap::value_parser!(u32).range(1..))
                .help(
                    "Most tasks executing at once; beyond it new sends get RESOURCE_EXHAUSTED \
                     with grpc-retry-pushback-ms (default: no limit)",
                ),
        )
        .arg(
            Arg::new("disconnect-grace-ms")
                .long("disconnect-grace-ms")
                .env(format!("{upper}_DISCONNECT_GRACE_MS"))
                .value_parser(clap::value_parser!(u64).range(
                    0..=u64::try_from(super::MAX_DISCONNECT_GRACE.as_millis()).unwrap_or(u64::MAX),
                ))
                .default_value("2000")
                .help(
                    "Milliseconds the task of a unary SendMessage whose caller went away keeps \
                     running for a retry of the same message to re-attach (0: cancel at once)",
                ),
        )
        .arg(
            Arg::new("replica-id")
                .long("replica-id")
                .env(format!("{upper}_REPLICA_ID"))
                .help("This replica's name in task leases (default $SWITCHYARD_REPLICA_ID, else $HOSTNAME)"),
        )
        .arg(
            Arg::new("lease-ttl-ms")
                .long("lease-ttl-ms")
                .env(format!("{upper}_LEASE_TTL_MS"))
                .default_value("10000")
                .value_parser(clap::value_parser!(u64).range(100..))
                .help("Task lease duration on a shared store, in milliseconds (at least 100)"),
        )
        .arg(
            Arg::new("max-takeovers")
                .long("max-takeovers")
                .env(format!("{upper}_MAX_TAKEOVERS"))
                .default_value("3")
                .value_parser(clap::value_parser!(u32))
                .help("Takeovers after which a task is failed as poison"),
        )
        .arg(
            Arg::new("push-notifications")
                .long("push-notifications")
                .env(format!("{upper}_PUSH_NOTIFICATIONS"))
                .action(ArgAction::SetTrue)
                .help("Accept push-notification configs"),
        )
        .arg(
            Arg::new("push-allow-http")
                .long("push-allow-http")
                .env(format!("{upper}_PUSH_ALLOW_HTTP"))
                .action(ArgAction::SetTrue)
                .help("Allow plain http:// push-notification URLs (default: https only)"),
        )
        .arg(
            Arg::new("push-allow-network")
                .long("push-allow-network")
                .env(format!("{upper}_PUSH_ALLOW_NETWORKS"))
                .value_delimiter(',')
                .action(ArgAction::Append)
                .value_parser(clap::value_parser!(crate::outbound::IpNet))
                .value_name("CIDR")
                .help(
                    "A loopback/private/link-local network push notifications may reach \
                     (repeatable, e.g. 127.0.0.0/8; default: none)",
                ),
        )
        .arg(
            Arg::new("tls-ca")
                .long("tls-ca")
                .env(crate::tls::ENV_CA)
                .value_parser(clap::value_parser!(PathBuf))
                .help("mTLS: the mesh CA certificate PEM file (with --tls-cert and --tls-key)"),
        )
        .arg(
            Arg::new("tls-cert")
                .long("tls-cert")
                .env(crate::tls::ENV_CERT)
                .value_parser(clap::value_parser!(PathBuf))
                .help("mTLS: this agent's certificate chain PEM file (SPIFFE ID in the URI SAN)"),
        )
        .arg(
            Arg::new("tls-key")
                .long("tls-key")
                .env(crate::tls::ENV_KEY)
                .value_parser(clap::value_parser!(PathBuf))
                .help("mTLS: this agent's private key PEM file"),
        )
        .args(extra);
    let matches = command.get_matches();
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("{name}: {e}");
        ExitCode::from(EX_USAGE)
    };
    let telemetry = match init(&TelemetryConfig::from_env(name)) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let listen = *matches
        .get_one::<SocketAddr>("listen")
        .expect("the flag has a default");
    let metrics_listen = matches.get_one::<SocketAddr>("metrics-listen").copied();
    let spec = match (
        matches.get_one::<String>("store"),
        matches.get_one::<PathBuf>("store-file"),
    ) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(s) => Some(s.trim().to_owned()),
            Err(e) => return fail(&format!("--store-file {}: {e}", path.display())),
        },
        (None, None) => None,
    };
    let store = if matches.get_flag("memory") {
        StoreConfig::Memory
    } else if let Some(spec) = spec {
        match StoreConfig::from_spec(&spec) {
            Ok(s) => s,
            Err(e) => return fail(&format!("--store: {e}")),
        }
    } else {
        StoreConfig::Sqlite {
            path: matches
                .get_one::<PathBuf>("db")
                .expect("the flag has a default")
                .clone(),
            durability: Durability::default(),
        }
    };
    let max_concurrent_executions = matches
        .get_one::<u32>("max-concurrent-executions")
        .map(|n| *n as usize);
    let disconnect_grace = Duration::from_millis(
        *matches
            .get_one::<u64>("disconnect-grace-ms")
            .expect("the flag has a default"),
    );
    let replica_id = matches
        .get_one::<String>("replica-id")
        .cloned()
        .unwrap_or_else(super::default_replica_id);
    let lease_ttl = Duration::from_millis(
        *matches
            .get_one::<u64>("lease-ttl-ms")
            .expect("the flag has a default"),
    );
    let max_takeovers = *matches
        .get_one::<u32>("max-takeovers")
        .expect("the flag has a default");
    let push_notifications = matches.get_flag("push-notifications");
    let push_policy = crate::outbound::PushPolicy {
        allow_http: matches.get_flag("push-allow-http"),
        allow: matches
            .get_many::<crate::outbound::IpNet>("push-allow-network")
            .map(|v| v.copied().collect())
            .unwrap_or_default(),
    };
    let tls = match (
        matches.get_one::<PathBuf>("tls-ca"),
        matches.get_one::<PathBuf>("tls-cert"),
        matches.get_one::<PathBuf>("tls-key"),
    ) {
        (None, None, None) => {
            tracing::warn!(
                "INSECURE: no --tls-ca/--tls-cert/--tls-key: serving and calling in plain text"
            );
            None
        }
        (Some(ca), Some(cert), Some(key)) => {
            let files = crate::tls::TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            };
            match crate::tls::MeshTls::load(&files).and_then(|t| Ok((t.client()?, t))) {
                Ok((client, tls)) => {
                    // Calls this agent makes (a registry, `Client::connect`) present its
                    // certificate too.
                    crate::tls::set_default_client(Some(client));
                    tracing::info!(spiffe_id = %tls.spiffe_id(), "mTLS");
                    Some(tls)
                }
                Err(e) => return fail(&format!("TLS: {e}")),
            }
        }
        _ => return fail(&"--tls-ca, --tls-cert and --tls-key go together"),
    };
    let agent = match make(matches).await {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let config = ServeConfig {
        listen,
        metrics_listen,
        store,
        max_concurrent_executions,
        disconnect_grace,
        replica_id,
        lease_ttl,
        max_takeovers,
        push_notifications,
        push_policy,
        tls,
        ..Default::default()
    };
    let server = match AgentServer::bind(agent, config).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    println!("{name} listening on {}", server.local_addr());
    if let Some(addr) = server.metrics_addr() {
        println!("{name} metrics on http://{addr}/metrics");
    }
    server.run_until(super::shutdown_signal()).await;
    telemetry.shutdown().await;
    ExitCode::SUCCESS
}
