//! `switchyard-research`: serves the research agent over gRPC; its sub-agents come from
//! `--agents` / `SWITCHYARD_AGENTS` (`name=host:port;…` or `name=dns:///host:port;…`, resolved
//! as `SWITCHYARD_DNS_SERVER` / `SWITCHYARD_DNS_REFRESH_SECS` say). Other flags: see
//! `switchyard::server::agent_main`.

use std::{sync::Arc, time::Duration};

use clap::Arg;
use switchyard::{
    Registry, RegistryConfig,
    registry::{AGENTS_ENV, DiscoveryConfig},
};
use switchyard_research::{Research, ResearchConfig};

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
        let registry =
            Arc::new(Registry::with_discovery(&config, discovery).map_err(|e| e.to_string())?);
        for (name, e) in registry.load_cards(Duration::from_secs(5)).await {
            tracing::warn!(agent = %name, error = %e, "no card from a sub-agent yet");
        }
        Ok(Research::new(registry, ResearchConfig::default()))
    })
    .await
}
