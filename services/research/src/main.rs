//! `switchyard-research`: serves the research agent over gRPC; its sub-agents come from
//! `--agents` / `SWITCHYARD_AGENTS` (`name=host:port;…`). Other flags: see
//! `switchyard::server::agent_main`.

use std::{sync::Arc, time::Duration};

use clap::Arg;
use switchyard::{Registry, RegistryConfig, registry::AGENTS_ENV};
use switchyard_research::{Research, ResearchConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let agents = Arg::new("agents")
        .long("agents")
        .env(AGENTS_ENV)
        .default_value("")
        .help("The sub-agents: name=host:port[,host:port…][@card-url];…");
    switchyard::server::agent_main_with("research", vec![agents], |matches| async move {
        let spec = matches
            .get_one::<String>("agents")
            .cloned()
            .unwrap_or_default();
        let config = RegistryConfig::from_env_value(&spec).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        let registry = Arc::new(Registry::new(&config).map_err(|e| e.to_string())?);
        for (name, e) in registry.load_cards(Duration::from_secs(5)).await {
            tracing::warn!(agent = %name, error = %e, "no card from a sub-agent yet");
        }
        Ok(Research::new(registry, ResearchConfig::default()))
    })
    .await
}
