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

struct Running {
    name: String,
    addr: SocketAddr,
    skills: Vec<String>,
    stop: ShutdownHandle,
    join: JoinHandle<()>,
}

async fn start(config: &Config, name: &str, agent: Arc<dyn Agent>) -> Result<Running, CliError> {
    let port = config.up.agents.get(name).map_or(0, |a| a.port);
    let server = AgentServer::bind_arc(
        agent,
        ServeConfig {
            listen: SocketAddr::new(config.up.host, port),
            store: StoreConfig::Sqlite {
                path: config.data_dir.join(format!("{name}.db")),
                durability: config.up.durability,
            },
            drain_timeout: Duration::from_secs_f64(config.up.drain_timeout_secs),
            retention: config.up.retention.retention(),
            connections: config.up.connections.limits(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| CliError::Serve(format!("{name}: {e}")))?;
    let skills = server.card().skills.iter().map(|s| s.id.clone()).collect();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    Ok(Running {
        name: name.to_owned(),
        addr,
        skills,
        stop,
        join: tokio::spawn(server.run()),
    })
}

fn enabled(config: &Config, name: &str) -> bool {
    !config.up.agents.get(name).is_some_and(|a| a.disabled)
}

fn entry(r: &Running) -> AgentConfig {
    AgentConfig {
        name: r.name.clone(),
        endpoints: vec![r.addr.to_string()],
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
    let agents: Vec<(String, SocketAddr)> =
        running.iter().map(|r| (r.name.clone(), r.addr)).collect();
    let bridges = crate::cmd::bus::start_bridges(config, &agents).await?;
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
    bridges.stop().await;
    if let Some(g) = &gateway {
        g.stop.shutdown();
    }
    for r in &running {
        r.stop.shutdown();
    }
    if let Some(g) = gateway {
        let _ = g.join.await;
    }
    for r in running {
        let _ = r.join.await;
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
            .map(|r| serde_json::json!({"name": r.name, "address": r.addr.to_string(), "skills": r.skills}))
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
            let _ = writeln!(out, "{:<10} {:<22} {}", r.name, r.addr, r.skills.join(", "));
        }
        if let Some(g) = gateway {
            let _ = writeln!(out, "gateway    {g}  (A2A JSON-RPC, REST, SSE, WebSocket)");
        }
        let _ = writeln!(out, "data       {}", config.data_dir.display());
        let _ = writeln!(out, "ready: press Ctrl-C to stop");
    }
    let _ = out.flush();
}
