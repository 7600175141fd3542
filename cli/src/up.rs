//! `switchyard up`: every example agent in one process, each on its own loopback gRPC port
//! with its own embedded durable store, plus the gateway; drained on Ctrl-C or SIGTERM.

use std::{io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use switchyard::{
    Agent, AgentServer, Registry, RegistryConfig, ServeConfig, ShutdownHandle, StoreConfig,
    registry::AgentConfig,
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

/// Starts the `replicas` servers of agent `name` (see [`UpAgent::replicas`]).
///
/// [`UpAgent::replicas`]: crate::config::UpAgent::replicas
async fn start(config: &Config, name: &str, agent: Arc<dyn Agent>) -> Result<Running, CliError> {
    let port = config.up.agents.get(name).map_or(0, |a| a.port);
    let replicas = config.up.replicas(name);
    let mut running = Running {
        name: name.to_owned(),
        addrs: Vec::new(),
        skills: Vec::new(),
        servers: Vec::new(),
    };
    for i in 0..replicas {
        let server = AgentServer::bind_arc(
            agent.clone(),
            ServeConfig {
                listen: SocketAddr::new(config.up.host, port),
                store: store_of(config, name),
                drain_timeout: Duration::from_secs_f64(config.up.drain_timeout_secs),
                retention: config.up.retention.retention(),
                connections: config.up.connections.limits(),
                replica_id: format!("{}-{name}-{i}", switchyard::server::default_replica_id()),
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

/// The task store of agent `name`'s servers.
fn store_of(config: &Config, name: &str) -> StoreConfig {
    StoreConfig::Sqlite {
        path: config.data_dir.join(format!("{name}.db")),
        durability: config.up.durability,
    }
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
    let mut running = Vec::new();
    let simple: [(&str, Arc<dyn Agent>); 4] = [
        ("echo", Arc::new(switchyard_echo::Echo)),
        ("textstats", Arc::new(switchyard_textstats::TextStats)),
        ("summarize", Arc::new(switchyard_summarize::Summarize)),
        ("keywords", Arc::new(switchyard_keywords::Keywords)),
    ];
    for (name, agent) in simple {
        if enabled(config, name) {
            running.push(start(config, name, agent).await?);
        }
    }
    let registry = Arc::new(
        Registry::new(&RegistryConfig {
            agents: running.iter().map(entry).collect(),
        })
        .map_err(|e| CliError::Serve(e.to_string()))?,
    );
    if enabled(config, "research") {
        let research = switchyard_research::Research::new(
            registry.clone(),
            switchyard_research::ResearchConfig {
                agents: config.up.research_agents.clone(),
                deadline_margin: Duration::from_millis(config.up.research_margin_ms),
                ..Default::default()
            },
        );
        let r = start(config, "research", Arc::new(research)).await?;
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
    let mesh = MeshFile {
        pid: std::process::id(),
        gateway: gateway.as_ref().map(|g| g.url.clone()),
        agents: running.iter().map(entry).collect(),
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
            let _ = writeln!(out, "gateway    {g}  (A2A JSON-RPC, REST, SSE, WebSocket)");
        }
        let _ = writeln!(out, "data       {}", config.data_dir.display());
        let _ = writeln!(out, "ready: press Ctrl-C to stop");
    }
    let _ = out.flush();
}
