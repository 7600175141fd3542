//! `switchyard-research`: serves the research agent over gRPC; its sub-agents, in report order,
//! are the agents of `--agents` / `SWITCHYARD_AGENTS` (`name=host:port;…` or
//! `name=dns:///host:port;…`, resolved as `SWITCHYARD_DNS_SERVER` /
//! `SWITCHYARD_DNS_REFRESH_SECS` say; without any, textstats, summarize and keywords). Other
//! flags: see `switchyard::server::agent_main`.

use std::{sync::Arc, time::Duration};

use clap::Arg;
use switchyard::{
    Registry, RegistryConfig,
    registry::{AGENTS_ENV, DiscoveryConfig},
};
use switchyard_research::{Research, ResearchConfig};

/// mimalloc (v2) rather than glibc's malloc: ~12 % fewer instructions per call, idle memory per
/// connection within its budget (`bench/RESULTS.md` §10, "mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let agents = Arg::new("agents")
        .long("agents")
        .env(AGENTS_ENV)
        .default_value("")
        .help(
            "The sub-agents: name=host:port[,host:port…][@card-url];… (or name=dns:///host:port)",
        );
    switchyard::server::agent_main_with("research", vec![agents], |matches| async move {
        let spec = matches
            .get_one::<String>("agents")
            .cloned()
            .unwrap_or_default();
        let config = RegistryConfig::from_env_value(&spec).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        let discovery = DiscoveryConfig::from_env().map_err(|e| e.to_string())?;
        let resilience =
            switchyard::resilience::ResilienceConfig::from_env().map_err(|e| e.to_string())?;
        let registry = Arc::new(
            Registry::with_settings(&config, discovery, resilience).map_err(|e| e.to_string())?,
        );
        for (name, e) in registry.load_cards(Duration::from_secs(5)).await {
            tracing::warn!(agent = %name, error = %e, "no card from a sub-agent yet");
        }
        // The sub-agents are the agents given, in order (the Helm chart's `calls`); without
        // any, the default three.
        let mut research = ResearchConfig::default();
        if !config.agents.is_empty() {
            research.agents = config.agents.iter().map(|a| a.name.clone()).collect();
        }
        Ok(Research::new(registry, research))
    })
    .await
}
