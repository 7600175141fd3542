//! Stdio agents: a configured local process as a mesh agent (`[up.stdio_agents.<name>]`, and
//! `switchyard stdio-agent -- <command>` for one on its own).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use switchyard::{Agent, AgentServer, ServeConfig, StoreConfig, card};
use switchyard_mcp::{McpServerAgent, Process, StdioAgent};

use crate::{
    config::{Config, StdioAgentConfig, StdioKind},
    error::CliError,
};

/// The agent `name` of `config`, and the process to stop on drain (`a2a` agents; an MCP
/// server's session ends with the agent).
///
/// # Errors
/// [`CliError::Serve`] when an MCP server cannot start or list its tools.
pub async fn agent(
    name: &str,
    config: &StdioAgentConfig,
) -> Result<(Arc<dyn Agent>, Option<Process>), CliError> {
    match config.kind {
        StdioKind::A2a => {
            let process = Process::start(name, config.process()).map_err(CliError::Config)?;
            let description = if config.description.is_empty() {
                format!("The local process `{}`", config.command.join(" "))
            } else {
                config.description.clone()
            };
            let card = card::builder(name, description.clone())
                .input_modes(["text/plain", "application/json"])
                .output_modes(["text/plain", "application/json"])
                .skill(card::skill(
                    name,
                    name,
                    description,
                    ["stdio".to_owned()],
                    config.examples.clone(),
                ))
                .build();
            let agent = StdioAgent::new(card, process.clone());
            Ok((Arc::new(agent), Some(process)))
        }
        StdioKind::Mcp => {
            let agent = McpServerAgent::start(name, &config.description, config.process())
                .await
                .map_err(CliError::Serve)?;
            Ok((Arc::new(agent), None))
        }
    }
}

/// Options of `switchyard stdio-agent`.
#[derive(Debug, clap::Args)]
pub struct StdioAgentArgs {
    /// The agent's name.
    #[arg(long)]
    pub name: String,
    /// The command is an MCP server (its tools become the agent's skills) instead of an A2A
    /// JSON-RPC process.
    #[arg(long)]
    pub mcp: bool,
    /// The agent's description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// Serves one stdio agent until SIGINT/SIGTERM; prints `<name> <gRPC address>` once ready.
///
/// # Errors
/// [`CliError::Serve`] when the listener cannot be bound or an MCP server cannot start.
pub async fn run(config: &Config, args: &StdioAgentArgs) -> Result<(), CliError> {
    let agent_config = StdioAgentConfig {
        command: args.command.clone(),
        kind: if args.mcp {
            StdioKind::Mcp
        } else {
            StdioKind::A2a
        },
        description: args.description.clone(),
        examples: Vec::new(),
        env: Default::default(),
        cwd: None,
    };
    let (agent, process) = agent(&args.name, &agent_config).await?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| CliError::File {
        action: "create",
        path: config.data_dir.clone(),
        source,
    })?;
    let server = AgentServer::bind_arc(
        agent,
        ServeConfig {
            listen: args.listen,
            store: StoreConfig::Sqlite {
                path: config.data_dir.join(format!("{}.db", args.name)),
                durability: config.up.durability,
            },
            drain_timeout: Duration::from_secs_f64(config.up.drain_timeout_secs),
            disconnect_grace: Duration::from_secs_f64(config.up.disconnect_grace_secs),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| CliError::Serve(format!("{}: {e}", args.name)))?;
    println!("{} {}", args.name, server.local_addr());
    let stop = server.shutdown_handle();
    let join = tokio::spawn(server.run());
    switchyard::shutdown_signal().await;
    stop.shutdown();
    let _ = join.await;
    if let Some(p) = process {
        p.stop();
    }
    Ok(())
}
