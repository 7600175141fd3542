//! `switchyard mcp`: every skill of every agent the command can reach (the running `switchyard
//! up`, the configured agents) as an MCP tool, served over standard input and output for a
//! desktop MCP client that launches this command ([`switchyard_mcp`]).

use std::time::Duration;

use switchyard_mcp::{McpConfig, MeshTools};
use tokio_util::sync::CancellationToken;

use crate::{error::CliError, target::Mesh};

/// Options of `switchyard mcp`.
#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Seconds between fetches of the agents' cards, to follow agents that come and go
    /// (`notifications/tools/list_changed`).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub refresh_secs: f64,
}

/// Serves the MCP server on stdin/stdout until the client closes stdin (or SIGINT/SIGTERM).
///
/// # Errors
/// [`CliError::Config`] for a refresh interval that is not a positive number of seconds;
/// [`CliError::Serve`] when the MCP session fails (e.g. the client sent no `initialize`).
pub async fn mcp(mesh: &Mesh, args: &McpArgs) -> Result<(), CliError> {
    if !(args.refresh_secs.is_finite() && args.refresh_secs > 0.0) {
        return Err(CliError::Config(format!(
            "--refresh-secs must be a positive number of seconds, not {}",
            args.refresh_secs
        )));
    }
    let stop = CancellationToken::new();
    let tools = MeshTools::start(
        mesh.registry(),
        McpConfig {
            refresh_interval: Duration::from_secs_f64(args.refresh_secs),
            call_timeout: mesh.timeout().max(Duration::from_secs(600)),
            ..Default::default()
        },
        stop.clone(),
    );
    let on_signal = stop.clone();
    tokio::spawn(async move {
        switchyard::shutdown_signal().await;
        on_signal.cancel();
    });
    let result = switchyard_mcp::serve_stdio(tools, stop.clone()).await;
    stop.cancel();
    result.map_err(|e| CliError::Serve(format!("MCP over stdio: {e}")))
}
