//! `switchyard-research`: serves the research agent over gRPC; its sub-agents come from
//! `--agents` / `SWITCHYARD_AGENTS` (`name=host:port;…`).

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use switchyard::{Registry, RegistryConfig, ServeConfig, StoreConfig, store::Durability};
use switchyard_research::{Research, ResearchConfig};

/// Serves the research agent (A2A gRPC binding + switchyard.v1.AgentService).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "RESEARCH_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Task database file (SQLite).
    #[arg(
        long,
        env = "RESEARCH_DB",
        default_value = "switchyard-data/research.db"
    )]
    db: PathBuf,
    /// The sub-agents: `name=host:port[,host:port];…`.
    #[arg(long, env = "SWITCHYARD_AGENTS", default_value = "")]
    agents: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let telemetry = switchyard::telemetry::init(
        &switchyard::telemetry::TelemetryConfig::from_env("research"),
    )?;
    let config = RegistryConfig::from_env_value(&args.agents)?;
    config.validate()?;
    let registry = Arc::new(Registry::new(&config)?);
    let failures = registry.load_cards(Duration::from_secs(5)).await;
    for (name, e) in failures {
        eprintln!("warning: no card from {name}: {e}");
    }
    let agent = Research::new(registry, ResearchConfig::default());
    let server = switchyard::AgentServer::bind(
        agent,
        ServeConfig {
            listen: args.listen,
            store: StoreConfig::Sqlite {
                path: args.db,
                durability: Durability::default(),
            },
            ..Default::default()
        },
    )
    .await?;
    println!("research listening on {}", server.local_addr());
    server.run_until(switchyard::shutdown_signal()).await;
    telemetry.shutdown().await;
    Ok(())
}
