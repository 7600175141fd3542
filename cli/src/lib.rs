//! The `switchyard` command: runs the mesh (`switchyard up`) and talks to its agents (`agents`,
//! `send`, `stream`, `chat`, `task …`, `health`) and serves them to MCP clients (`mcp`).
//!
//! Human-readable output by default, `--json` for scripts; on failure, one line on standard
//! error (`switchyard: …`) and a non-zero exit status (1; 64 for configuration errors; 2 for
//! bad command-line usage).
#![warn(missing_docs)]

pub mod cmd;
pub mod config;
pub mod conn;
pub mod error;
mod gateway;
pub mod mesh;
pub mod render;
pub mod stdio;
pub mod target;
pub mod up;
pub mod via_gateway;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    cmd::send::SendArgs, cmd::task::TaskCmd, config::Config, error::CliError, target::Mesh,
};

const EXAMPLES: &str = "\
Examples:
  switchyard up                                  # run every example agent and the gateway
  switchyard agents                              # list agents and their skills
  switchyard send echo hello                     # send and wait for the result
  switchyard stream research --file README.md    # watch a report being made
  switchyard send echo --meta chunks=3 hi        # message metadata (here: echo streams 3 chunks)
  switchyard chat echo                           # interactive session
  switchyard task list echo                      # tasks of an agent, newest first
  switchyard task watch research <task-id>       # follow a running task
  switchyard health                              # health of every agent and the gateway
  switchyard mcp                                 # the agents' skills as MCP tools on stdio
  switchyard stdio-agent --name upper -- python3 upper.py   # a local process as an agent
  switchyard bus request --url nats://127.0.0.1:4222 echo hi   # over a bus bridge";

/// Run the Switchyard mesh and talk to its agents.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Configuration file (TOML); default ./switchyard.toml when it exists.
    #[arg(long, global = true, env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (task databases, the running mesh's address file).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Deadline of the command's calls, in seconds.
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Credential for the gateway (`Authorization: Bearer`): a JWT or an API key. Also
    /// `SWITCHYARD_TOKEN` (preferred: a flag shows in the process list).
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs every example agent (echo, textstats, summarize, keywords, research) and the
    /// gateway in this process until Ctrl-C.
    Up,
    /// Lists the agents with their addresses and skills.
    Agents,
    /// Sends a message and waits for the result; prints the artifacts.
    Send(SendArgs),
    /// Sends a message and prints the task's events as they arrive, then the artifacts.
    Stream(SendArgs),
    /// Chats with an agent interactively (bidirectional streaming).
    Chat {
        /// The agent.
        agent: String,
    },
    /// Inspects, cancels or follows tasks.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Checks the health of every agent and the gateway.
    Health,
    /// Serves every agent skill as an MCP tool over stdin/stdout (for an MCP client that
    /// launches this command).
    Mcp(cmd::mcp::McpArgs),
    /// Serves a local process as a mesh agent (A2A JSON-RPC lines on stdin/stdout, or an
    /// MCP server with `--mcp`) until Ctrl-C.
    StdioAgent(stdio::StdioAgentArgs),
    /// Talks to agents over a message bus (a bridge must serve the agent there).
    Bus(cmd::bus::BusArgs),
}

/// Runs the command line `args` (including the program name) and returns the exit status.
pub async fn run(args: impl IntoIterator<Item = String>) -> u8 {
    switchyard::install_crypto_provider();
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid usage");
            eprintln!(
                "switchyard: {} (see `switchyard --help`)",
                first.trim_start_matches("error: ")
            );
            return 2;
        }
    };
    match execute(&cli).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("switchyard: {e}");
            e.exit_code()
        }
    }
}

async fn execute(cli: &Cli) -> Result<(), CliError> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(d) = &cli.data_dir {
        config.data_dir.clone_from(d);
    }
    if let Some(t) = &cli.token {
        config.token = Some(config::Token(t.clone()));
    }
    if let Some(t) = cli.timeout {
        config.timeout_secs = t;
        config.validate()?;
    }
    let up = matches!(cli.command, Command::Up | Command::StdioAgent(_));
    let mut telemetry = switchyard::telemetry::TelemetryConfig::from_env("switchyard");
    if config.otlp_endpoint.is_some() {
        telemetry.otlp_endpoint.clone_from(&config.otlp_endpoint);
    }
    if std::env::var_os(switchyard::telemetry::LOG_FORMAT_ENV).is_none() {
        telemetry.log_format = config.log_format;
    }
    // `up` logs what it serves; the client commands log only problems.
    telemetry.default_filter = if up { "info" } else { "warn" }.into();
    let telemetry = switchyard::telemetry::init(&telemetry)
        .map_err(|e| CliError::Config(format!("telemetry: {e}")))?;
    let result = if let Command::StdioAgent(a) = &cli.command {
        stdio::run(&config, a).await
    } else if up {
        up::up(&config, cli.json).await
    } else {
        run_command(cli, &config).await
    };
    telemetry.shutdown().await;
    result
}

async fn run_command(cli: &Cli, config: &Config) -> Result<(), CliError> {
    if let Command::Bus(b) = &cli.command {
        return cmd::bus::run(b, config, cli.json).await;
    }
    let mesh = Mesh::load(config)?;
    match &cli.command {
        Command::Up | Command::StdioAgent(_) => unreachable!("served commands do not get here"),
        Command::Agents => cmd::agents::agents(&mesh, cli.json).await,
        Command::Send(a) => cmd::send::send(&mesh, a, cli.json).await,
        Command::Stream(a) => cmd::send::stream(&mesh, a, cli.json).await,
        Command::Chat { agent } => cmd::chat::chat(&mesh, agent, cli.json).await,
        Command::Task(t) => cmd::task::run(&mesh, t, cli.json).await,
        Command::Health => cmd::agents::health(&mesh, cli.json).await,
        Command::Mcp(a) => cmd::mcp::mcp(&mesh, a).await,
        Command::Bus(_) => unreachable!("handled above"),
    }
}
