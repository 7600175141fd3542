//! `switchyard up`: every example agent in one process, each on its own loopback gRPC port
//! with its own embedded durable store, plus the configured stdio agents (local processes)
//! and the gateway; drained on Ctrl-C or SIGTERM (stdio agents' processes are stopped after
//! their servers have drained).

use std::{io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use switchyard::{
    Agent, AgentServer, Registry, RegistryConfig, ServeConfig, ShutdownHandle, StoreConfig,
    authz::{Policy, layer::AgentAuthz},
    identity::SpiffeId,
    registry::{AgentConfig, DiscoveryConfig},
    resilience::ResilienceConfig,
    tls::{MeshTls, TlsFiles, dev::DevCa},
};
use tokio::task::JoinHandle;

use crate::{
    config::Config,
    error::CliError,
    mesh::{MeshFile, UpLock},
};

/// The agents `switchyard up` runs, in start order (`research` last: it calls the others).
pub const EXAMPLE_AGENTS: [&str; 5] = ["echo", "textstats", "summarize", "keywords", "research"];

/// One agent under `up`: its replicas (one server each).
struct Running {
    name: String,
    addrs: Vec<SocketAddr>,
    skills: Vec<String>,
    servers: Vec<(ShutdownHandle, JoinHandle<()>)>,
}

/// The mesh's workload identities under `up`: the development CA in `<data_dir>/certs`
/// ([`switchyard::tls::dev`]); `None` in plain-text mode (`[up] insecure = true`).
struct Identities {
    ca: DevCa,
    domain: String,
}

impl Identities {
    /// Opens (or creates) the CA, or says loudly that the mesh runs in plain text.
    fn open(config: &Config) -> Result<Option<Self>, CliError> {
        if config.up.insecure {
            tracing::warn!("INSECURE: [up] insecure = true: no mTLS between the mesh's workloads");
            eprintln!(
                "switchyard: INSECURE: [up] insecure = true: agents, the gateway and the CLI \
                 talk plain text, and agents accept calls from anyone who reaches their ports"
            );
            return Ok(None);
        }
        let domain = config.up.trust_domain.clone();
        let ca = DevCa::ensure(&config.data_dir.join("certs"), &domain)
            .map_err(|e| CliError::Serve(format!("development CA: {e}")))?;
        Ok(Some(Self { ca, domain }))
    }

    /// The SPIFFE ID of the workload at `path` (`spiffe://<domain>/<path>`).
    fn id(&self, path: &[&str]) -> Result<SpiffeId, CliError> {
        SpiffeId::workload(&self.domain, path)
            .map_err(|e| CliError::Config(format!("up.trust_domain: {e}")))
    }

    /// The files of workload `name` (`spiffe://<domain>/<path>`), reused or (re)issued.
    fn files(&self, name: &str, path: &[&str]) -> Result<TlsFiles, CliError> {
        let id = self.id(path)?;
        self.ca
            .issue(name, &id)
            .map_err(|e| CliError::Serve(format!("certificate of {name}: {e}")))
    }

    /// The loaded material of workload `name`.
    fn workload(&self, name: &str, path: &[&str]) -> Result<MeshTls, CliError> {
        MeshTls::load(&self.files(name, path)?)
            .map_err(|e| CliError::Serve(format!("certificate of {name}: {e}")))
    }

    /// The material of agent `name` (`…/agent/<name>`).
    fn agent(&self, name: &str) -> Result<MeshTls, CliError> {
        self.workload(name, &["agent", name])
    }
}

/// What every agent under `up` enforces: the policy of `[up.auth]` (the same one the gateway
/// enforces), with the gateway's SPIFFE ID (`spiffe://<trust_domain>/gateway`) as the only
/// forwarder whose `x-switchyard-principal` (the end user it authenticated) is trusted. Every
/// other caller is decided by its own mTLS SPIFFE ID: the CLI (`…/cli`), and agents calling
/// agents — research's fan-out is decided at each sub-agent by `…/agent/research`, not by the
/// end user (research forwards no principal; the end user was checked at the gateway and at
/// research itself). The bus bridges call with the gateway's certificate and no principal,
/// so they are `…/gateway`.
///
/// In plain-text mode (`ids` is `None`) agents have no caller identity to decide on: they
/// enforce nothing (an empty policy), and a configured policy is announced as enforced at the
/// gateway only.
///
/// # Errors
/// [`CliError::Config`] for a bad policy rule or trust domain.
fn agent_authz(config: &Config, ids: Option<&Identities>) -> Result<Arc<AgentAuthz>, CliError> {
    let policy = Policy::from_config(&config.up.auth.policy)
        .map_err(|e| CliError::Config(format!("up.auth.{e}")))?;
    let Some(ids) = ids else {
        if policy.is_enabled() {
            tracing::warn!(
                "INSECURE: [up] insecure = true: the [up.auth] policy is enforced at the gateway only"
            );
            eprintln!(
                "switchyard: INSECURE: the [up.auth] policy is enforced at the gateway only: \
                 without mTLS, agents cannot tell who calls them and accept direct calls from \
                 anyone"
            );
        }
        return Ok(Arc::default());
    };
    Ok(Arc::new(AgentAuthz {
        policy: Arc::new(policy),
        forwarders: vec![ids.id(&["gateway"])?],
    }))
}

/// A registry of `agents` whose clients present `tls` (plain text without).
fn registry_as(agents: Vec<AgentConfig>, tls: Option<&MeshTls>) -> Result<Registry, CliError> {
    let tls = tls
        .map(MeshTls::client)
        .transpose()
        .map_err(|e| CliError::Serve(e.to_string()))?;
    Registry::with_settings(
        &RegistryConfig { agents },
        DiscoveryConfig::default(),
        ResilienceConfig {
            tls,
            ..ResilienceConfig::default()
        },
    )
    .map_err(|e| CliError::Serve(e.to_string()))
}

/// Starts the `replicas` servers of agent `name` (see [`UpAgent::replicas`]), over mTLS with
/// `ids`' certificate for it, else in plain text.
///
/// [`UpAgent::replicas`]: crate::config::UpAgent::replicas
async fn start(
    config: &Config,
    name: &str,
    agent: Arc<dyn Agent>,
    ids: Option<&Identities>,
    authz: &Arc<AgentAuthz>,
) -> Result<Running, CliError> {
    let tls = ids.map(|i| i.agent(name)).transpose()?;
    let port = config.up.agents.get(name).map_or(0, |a| a.port);
    let mut running = Running {
        name: name.to_owned(),
        addrs: Vec::new(),
        skills: Vec::new(),
        servers: Vec::new(),
    };
    for (i, store) in replica_stores(config, name)?.into_iter().enumerate() {
        let server = AgentServer::bind_arc(
            agent.clone(),
            ServeConfig {
                listen: SocketAddr::new(config.up.host, port),
                store,
                drain_timeout: Duration::from_secs_f64(config.up.drain_timeout_secs),
                disconnect_grace: Duration::from_secs_f64(config.up.disconnect_grace_secs),
                retention: config.up.retention.retention(),
                connections: config.up.connections.limits(),
                replica_id: format!("{}-{name}-{i}", switchyard::server::default_replica_id()),
                tls: tls.clone(),
                authz: authz.clone(),
                // The gateway and the agents calling agents are in this process.
                in_process: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| CliError::Serve(format!("{name}: {e}")))?;
        running.skills = server.card().skills.iter().map(|s| s.id.clone()).collect();
        running.addrs.push(server.local_addr());
        running
            .servers
            .push((server.shutdown_handle(), tokio::spawn(server.run())));
    }
    Ok(running)
}

/// The task store of each replica of agent `name` ([`UpAgent::replicas`]): PostgreSQL
/// stores open one connection pool per replica, as separate processes would; a `memory` store
/// is one store that the replicas share.
///
/// # Errors
/// [`CliError::Config`] when the store cannot be resolved, or for several replicas on a
/// SQLite store.
///
/// [`UpAgent::replicas`]: crate::config::UpAgent::replicas
fn replica_stores(config: &Config, name: &str) -> Result<Vec<StoreConfig>, CliError> {
    let n = config.up.replicas(name) as usize;
    let store = config.up.store_for(name, &config.data_dir)?;
    if n <= 1 {
        return Ok(vec![store]);
    }
    match store {
        StoreConfig::Sqlite { .. } => Err(CliError::Config(format!(
            "up.agents.{name}.replicas = {n}: several replicas need a shared task store \
             (store = \"postgres://…\", or \"memory\" within this process); a SQLite file is \
             one process's"
        ))),
        StoreConfig::Memory => {
            let shared: Arc<dyn switchyard::store::TaskStore> =
                Arc::new(switchyard::store::MemoryStore::new());
            Ok(vec![StoreConfig::Custom(shared); n])
        }
        other => Ok(vec![other; n]),
    }
}

/// Every agent `up` starts: the built-in ones and the stdio agents, less the disabled ones.
fn enabled_agents(config: &Config) -> impl Iterator<Item = &str> {
    EXAMPLE_AGENTS
        .into_iter()
        .chain(config.up.stdio_agents.keys().map(String::as_str))
        .filter(|name| enabled(config, name))
}

/// Refuses a configuration in which two agents would open one SQLite file (e.g. `up.store =
/// "sqlite:<path>"` for several agents): a SQLite store is one agent's, and the second agent
/// would fail to start once the first holds it.
///
/// # Errors
/// [`CliError::Config`] naming both agents and the file; the errors of
/// [`UpConfig::store_for`](crate::config::UpConfig::store_for).
fn check_sqlite_files(config: &Config) -> Result<(), CliError> {
    let mut owners: std::collections::HashMap<std::path::PathBuf, &str> =
        std::collections::HashMap::new();
    for name in enabled_agents(config) {
        if let StoreConfig::Sqlite { path, .. } = config.up.store_for(name, &config.data_dir)?
            && let Some(first) = owners.insert(path.clone(), name)
        {
            return Err(CliError::Config(format!(
                "agents {first} and {name} would share the SQLite file {}: a SQLite store is \
                 one agent's; name a file per agent (up.agents.<name>.store), or share a \
                 postgres://… store",
                path.display()
            )));
        }
    }
    Ok(())
}

fn enabled(config: &Config, name: &str) -> bool {
    !config.up.agents.get(name).is_some_and(|a| a.disabled)
}

fn entry(r: &Running) -> AgentConfig {
    AgentConfig {
        name: r.name.clone(),
        endpoints: r.addrs.iter().map(ToString::to_string).collect(),
        card_url: None,
        public_grpc: false,
    }
}

/// Runs the mesh until SIGINT/SIGTERM, then drains it. Prints each agent's name, address and
/// skills, and the gateway URL.
///
/// # Errors
/// [`CliError::Serve`] when a listener cannot be bound or another `up` holds the data
/// directory.
pub async fn up(config: &Config, json: bool) -> Result<(), CliError> {
    let _lock = UpLock::acquire(&config.data_dir)?;
    check_sqlite_files(config)?;
    let ids = Identities::open(config)?;
    let ids = ids.as_ref();
    let authz = agent_authz(config, ids)?;
    let mut running = Vec::new();
    let simple: [(&str, Arc<dyn Agent>); 4] = [
        ("echo", Arc::new(switchyard_echo::Echo)),
        ("textstats", Arc::new(switchyard_textstats::TextStats)),
        ("summarize", Arc::new(switchyard_summarize::Summarize)),
        ("keywords", Arc::new(switchyard_keywords::Keywords)),
    ];
    for (name, agent) in simple {
        if enabled(config, name) {
            running.push(start(config, name, agent, ids, &authz).await?);
        }
    }
    let mut processes = Vec::new();
    for (name, a) in &config.up.stdio_agents {
        if !enabled(config, name) {
            continue;
        }
        let (agent, process) = crate::stdio::agent(name, a).await?;
        running.push(start(config, name, agent, ids, &authz).await?);
        processes.extend(process);
    }
    // The gateway's (and the bus bridges') calls present `…/gateway`; research's its own.
    let gateway_tls = ids
        .map(|i| i.workload("gateway", &["gateway"]))
        .transpose()?;
    let registry = Arc::new(registry_as(
        running.iter().map(entry).collect(),
        gateway_tls.as_ref(),
    )?);
    if enabled(config, "research") {
        let research_tls = ids.map(|i| i.agent("research")).transpose()?;
        let research = switchyard_research::Research::new(
            Arc::new(registry_as(
                running.iter().map(entry).collect(),
                research_tls.as_ref(),
            )?),
            switchyard_research::ResearchConfig {
                agents: config.up.research_agents.clone(),
                deadline_margin: Duration::from_millis(config.up.research_margin_ms),
                ..Default::default()
            },
        );
        let r = start(config, "research", Arc::new(research), ids, &authz).await?;
        registry
            .insert(entry(&r))
            .map_err(|e| CliError::Serve(e.to_string()))?;
        running.push(r);
    }
    let failures = registry.load_cards(Duration::from_secs(5)).await;
    for (name, e) in failures {
        tracing::warn!(agent = %name, error = %e, "could not load the agent's card");
    }
    let gateway = crate::gateway::start(config, registry.clone()).await?;
    let bridges = crate::cmd::bus::start_bridges(config, &registry).await?;
    let mesh = MeshFile {
        pid: std::process::id(),
        gateway: gateway.as_ref().map(|g| g.url.clone()),
        agents: running.iter().map(entry).collect(),
        tls: ids.map(|i| i.files("cli", &["cli"])).transpose()?,
        gateway_tls: gateway_tls.map(|t| t.files().clone()),
    };
    mesh.write(&config.data_dir)?;
    print_banner(
        &running,
        gateway.as_ref().map(|g| g.url.as_str()),
        config,
        json,
    );

    switchyard::shutdown_signal().await;
    eprintln!("switchyard: draining (in-flight tasks finish or stay resumable) …");
    bridges.stop().await;
    if let Some(g) = &gateway {
        g.stop.shutdown();
    }
    for (stop, _) in running.iter().flat_map(|r| &r.servers) {
        stop.shutdown();
    }
    if let Some(g) = gateway {
        let _ = g.join.await;
    }
    for (_, join) in running.into_iter().flat_map(|r| r.servers) {
        let _ = join.await;
    }
    for p in processes {
        p.stop();
    }
    MeshFile::remove(&config.data_dir);
    eprintln!("switchyard: stopped");
    Ok(())
}

fn print_banner(running: &[Running], gateway: Option<&str>, config: &Config, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let agents: Vec<_> = running
            .iter()
            .map(|r| {
                let addrs: Vec<String> = r.addrs.iter().map(ToString::to_string).collect();
                serde_json::json!({
                    "name": r.name,
                    "address": addrs.first(),
                    "addresses": addrs,
                    "skills": r.skills
                })
            })
            .collect();
        let doc = serde_json::json!({
            "agents": agents,
            "gateway": gateway,
            "data_dir": config.data_dir,
        });
        let _ = writeln!(out, "{doc}");
    } else {
        let _ = writeln!(out, "{:<10} {:<22} SKILLS", "AGENT", "ADDRESS (gRPC)");
        for r in running {
            for (i, addr) in r.addrs.iter().enumerate() {
                let name = if i == 0 { r.name.as_str() } else { "" };
                let skills = if i == 0 {
                    r.skills.join(", ")
                } else {
                    format!("(replica {})", i + 1)
                };
                let _ = writeln!(out, "{name:<10} {addr:<22} {skills}");
            }
        }
        if let Some(g) = gateway {
            let _ = writeln!(
                out,
                "gateway    {g}  (A2A JSON-RPC, REST, SSE, WebSocket; MCP at {g}/mcp)"
            );
        }
        let _ = writeln!(out, "data       {}", config.data_dir.display());
        if let Some(g) = gateway {
            let _ = writeln!(out, "console    {g}/  (open it in a browser)");
        }
        let _ = writeln!(out, "ready: press Ctrl-C to stop");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        std::fs::write(&file, toml).expect("write");
        Config::load(Some(&file)).expect("valid")
    }

    #[test]
    fn agents_enforce_the_up_auth_policy_and_trust_only_the_gateway_to_forward() {
        use switchyard::{
            authz::Decision,
            identity::{Principal, PrincipalKind},
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(&format!(
            "data_dir = {:?}\n[up.auth.policy.keywords]\nallow = [\"jwt:alice\"]\n\
             [up.auth.policy.summarize]\nallow = [\"spiffe://switchyard.local/agent/research\"]\n",
            dir.path()
        ));
        let ids = Identities::open(&c).expect("CA").expect("mTLS by default");
        let authz = agent_authz(&c, Some(&ids)).expect("valid");
        assert_eq!(
            authz
                .forwarders
                .iter()
                .map(SpiffeId::as_str)
                .collect::<Vec<_>>(),
            ["spiffe://switchyard.local/gateway"]
        );
        let research = Principal {
            kind: PrincipalKind::Spiffe,
            name: "spiffe://switchyard.local/agent/research".into(),
            scopes: Vec::new(),
        };
        assert_eq!(
            authz.policy.decide("summarize", None, Some(&research)),
            Decision::Allow
        );
        assert!(matches!(
            authz.policy.decide("keywords", None, Some(&research)),
            Decision::Deny(_)
        ));

        // Plain text: agents cannot tell callers apart, so they enforce nothing.
        let insecure = config(&format!(
            "data_dir = {:?}\n[up]\ninsecure = true\n[up.auth.policy.keywords]\nallow = [\"*\"]\n",
            dir.path()
        ));
        assert!(Identities::open(&insecure).expect("ok").is_none());
        let off = agent_authz(&insecure, None).expect("valid");
        assert!(!off.policy.is_enabled() && off.forwarders.is_empty());
    }

    #[test]
    fn two_agents_never_share_a_sqlite_file() {
        check_sqlite_files(&config("")).expect("a file per agent by default");
        let c = config("[up]\nstore = \"sqlite:/var/shared.db\"\n");
        let e = check_sqlite_files(&c).expect_err("shared").to_string();
        assert!(
            e.contains("agents echo and textstats would share the SQLite file /var/shared.db"),
            "{e}"
        );
        // Only one agent left on it.
        let c = config(
            "[up]\nstore = \"sqlite:/var/shared.db\"\n[up.agents.textstats]\n\
             store = \"memory\"\n[up.agents.summarize]\ndisabled = true\n\
             [up.agents.keywords]\nstore = \"sqlite:/var/k.db\"\n\
             [up.agents.research]\nstore = \"memory\"\n",
        );
        check_sqlite_files(&c).expect("echo alone on it");
    }

    #[test]
    fn several_replicas_share_one_store_and_never_a_sqlite_file() {
        let c = config("[up.agents.echo]\nreplicas = 2\n");
        let e = replica_stores(&c, "echo").expect_err("SQLite");
        assert!(e.to_string().contains("up.agents.echo.replicas = 2"), "{e}");
        assert!(e.to_string().contains("postgres://"), "{e}");
        assert_eq!(e.exit_code(), 64);
        assert_eq!(replica_stores(&c, "keywords").expect("one").len(), 1);

        let c = config("[up.agents.echo]\nreplicas = 3\nstore = \"memory\"\n");
        let stores = replica_stores(&c, "echo").expect("memory");
        let shared: Vec<_> = stores
            .iter()
            .map(|s| match s {
                StoreConfig::Custom(s) => Arc::as_ptr(s).cast::<()>(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(shared.len(), 3);
        assert!(shared.iter().all(|p| *p == shared[0]), "one store for all");

        let c = config(
            "[up]\nstore = \"postgres://app@127.0.0.1:1/db\"\n[up.agents.echo]\nreplicas = 2\n",
        );
        let stores = replica_stores(&c, "echo").expect("postgres");
        assert_eq!(stores.len(), 2);
        assert!(
            stores
                .iter()
                .all(|s| matches!(s, StoreConfig::Postgres { .. }))
        );
    }
}
