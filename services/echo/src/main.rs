//! `switchyard-echo`: serves the echo agent over gRPC.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use switchyard::{ServeConfig, StoreConfig, store::Durability};

/// Serves the echo agent (A2A gRPC binding + switchyard.v1.AgentService).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "ECHO_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Task database file (SQLite).
    #[arg(long, env = "ECHO_DB", default_value = "switchyard-data/echo.db")]
    db: PathBuf,
    /// Keep tasks in memory only.
    #[arg(long)]
    memory: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let telemetry =
        switchyard::telemetry::init(&switchyard::telemetry::TelemetryConfig::from_env("echo"))?;
    let config = ServeConfig {
        listen: args.listen,
        store: if args.memory {
            StoreConfig::Memory
        } else {
            StoreConfig::Sqlite {
                path: args.db,
                durability: Durability::default(),
            }
        },
        ..Default::default()
    };
    let server = switchyard::AgentServer::bind(switchyard_echo::Echo, config).await?;
    println!("echo listening on {}", server.local_addr());
    server.run_until(switchyard::shutdown_signal()).await;
    telemetry.shutdown().await;
    Ok(())
}
