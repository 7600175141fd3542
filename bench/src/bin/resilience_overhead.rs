//! The cost of the resilience layers on the healthy path ([`switchyard::resilience`]): the same
//! calls to the same echo agent through a registry's client (balancing, outlier bookkeeping,
//! retry budget, body kept for retries) versus a plain client over one channel, in interleaved
//! rounds of the same run.
//!
//! `cargo run --release -p switchyard-bench --bin resilience_overhead -- --help`

use std::time::Duration;

use clap::Parser;
use switchyard::{
    AgentServer, Client, Registry, RegistryConfig, ServeConfig, StoreConfig,
    pb::a2a::{ListTasksRequest, TaskState},
    registry::AgentConfig,
};
use switchyard_bench::{Round, round, summarize};

#[derive(Debug, Parser)]
#[command(about = "Calls through the resilience layers vs a plain client, same agent")]
struct Args {
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds per target and call (interleaved).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// What each caller does in a loop.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// `ListTasks` with a page of one (a read: retryable, its body kept for retries).
    Read,
    /// `SendMessage` to the echo agent (a write, in-memory store).
    Send,
}

async fn run_round(client: Client, call: Call, args: &Args) -> Round {
    round(
        args.concurrency,
        Duration::from_secs(args.seconds),
        move || {
            let client = client.clone();
            async move {
                match call {
                    Call::Read => client
                        .list_tasks(ListTasksRequest {
                            page_size: Some(1),
                            ..Default::default()
                        })
                        .await
                        .is_ok(),
                    Call::Send => client
                        .send_text("benchmark payload: the quick brown fox jumps over the lazy dog")
                        .await
                        .is_ok_and(|t| t.state() == TaskState::Completed),
                }
            }
        },
    )
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Metrics on, as in the gateway: the layers' counters cost what they cost there.
    switchyard::telemetry::metrics::install();
    let server = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: StoreConfig::Memory,
            ..Default::default()
        },
    )
    .await?;
    let addr = server.local_addr().to_string();
    tokio::spawn(server.run());

    let plain = Client::connect(&addr)
        .await?
        .with_timeout(Duration::from_secs(10));
    let registry = Registry::new(&RegistryConfig {
        agents: vec![AgentConfig {
            name: "echo".into(),
            endpoints: vec![addr.clone()],
            card_url: None,
            public_grpc: false,
        }],
    })?;
    let layered = registry
        .agent("echo")?
        .client()
        .with_timeout(Duration::from_secs(10));

    println!("| call | target | RPS (median) | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    for call in [Call::Read, Call::Send] {
        let warm = Args {
            seconds: 1,
            ..Args::parse()
        };
        run_round(layered.clone(), call, &warm).await;
        run_round(plain.clone(), call, &warm).await;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for i in 0..args.rounds {
            // Alternate which goes first, so drift in machine load hits both alike.
            if i % 2 == 0 {
                with.push(run_round(layered.clone(), call, &args).await);
                without.push(run_round(plain.clone(), call, &args).await);
            } else {
                without.push(run_round(plain.clone(), call, &args).await);
                with.push(run_round(layered.clone(), call, &args).await);
            }
            eprintln!(
                "{call:?} round {}: with {:?} | without {:?}",
                i + 1,
                with[i],
                without[i]
            );
        }
        let (wr, wp50, wp99) = summarize(&with);
        let (nr, np50, np99) = summarize(&without);
        let errors: u64 = with.iter().chain(&without).map(|x| x.errors).sum();
        println!("| {call:?} | with the layers | {wr:.0} | {wp50:.0} | {wp99:.0} |");
        println!("| {call:?} | plain client | {nr:.0} | {np50:.0} | {np99:.0} |");
        eprintln!(
            "{call:?}: with/without RPS {:.3} (target >= 0.95); errors {errors}",
            wr / nr
        );
    }
    Ok(())
}
