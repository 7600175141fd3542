//! The cost of the resilience layers on the healthy path ([`switchyard::resilience`]): the same
//! calls to the same echo agent through a registry's client (balancing, outlier bookkeeping,
//! retry budget, body kept for retries) versus a plain client over one channel, in interleaved
//! rounds of the same run.
//!
//! With `--instructions N` it counts instead, under valgrind's callgrind
//! ([`switchyard_bench::callgrind`]): instructions per call (client and server) through each
//! client, N calls per run shared by the `--concurrency` callers; the machine's load does not
//! move that count.
//!
//! `cargo run --release -p switchyard-bench --bin resilience_overhead -- --help`

use std::time::{Duration, Instant};

use clap::Parser;
use switchyard::{
    AgentServer, Client, Registry, RegistryConfig, ServeConfig, StoreConfig,
    pb::a2a::{ListTasksRequest, TaskState},
    registry::AgentConfig,
    store::Retention,
};
use switchyard_bench::{Round, callgrind, median, round, summarize};

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
    /// Count instructions per call under callgrind instead (N calls per run, shared by
    /// `--concurrency` callers).
    #[arg(long, value_name = "N")]
    instructions: Option<u64>,
    /// (Internal, run under callgrind) make this many calls (`--concurrency` callers) and exit.
    #[arg(long, requires_all = ["target", "call"], hide = true)]
    calls: Option<u64>,
    /// (Internal) the client of `--calls`.
    #[arg(long, value_enum, hide = true)]
    target: Option<Target>,
    /// (Internal) the call of `--calls`.
    #[arg(long, value_enum, hide = true)]
    call: Option<Call>,
}

/// Which client makes the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// A registry's client: balancer, outlier state, retry budget, body kept for retries.
    Layered,
    /// A plain `Client` over one channel.
    Plain,
}

/// What each caller does in a loop.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Call {
    /// `ListTasks` with a page of one (a read: retryable, its body kept for retries).
    Read,
    /// `SendMessage` to the echo agent (a write, in-memory store).
    Send,
}

/// One call; whether it succeeded.
async fn make(client: &Client, call: Call) -> bool {
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

/// A round, and the process's CPU time per completed call in it (µs; client and server).
async fn run_round(client: Client, call: Call, args: &Args) -> (Round, f64) {
    let (cpu, start) = (process_cpu_time(), Instant::now());
    let r = round(
        args.concurrency,
        Duration::from_secs(args.seconds),
        move || {
            let client = client.clone();
            async move { make(&client, call).await }
        },
    )
    .await;
    let calls = r.rps * start.elapsed().as_secs_f64();
    let cpu_us = (process_cpu_time() - cpu).as_secs_f64() * 1e6 / calls.max(1.0);
    (r, cpu_us)
}

/// User plus system CPU time of this process so far (`/proc/self/stat` fields 14 and 15, in
/// clock ticks of 10 ms: Linux's `USER_HZ` is 100).
fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// `--instructions N`: instructions per call through each client, counted by callgrind.
fn count_instructions(n: u64, concurrency: usize) -> anyhow::Result<()> {
    println!(
        "| call | callers | with the layers (instructions/call) | plain client | with / plain |"
    );
    println!("|---|---|---|---|---|");
    for call in [Call::Read, Call::Send] {
        let per = |target: &str| {
            let call = format!("{call:?}").to_lowercase();
            let args = [
                "--target",
                target,
                "--call",
                &call,
                "--concurrency",
                &concurrency.to_string(),
            ]
            .map(str::to_owned);
            callgrind::per_call(&args, n)
        };
        let (with, plain) = (per("layered")?, per("plain")?);
        println!(
            "| {call:?} | {concurrency} | {with:.0} | {plain:.0} | {:.3} |",
            with / plain
        );
    }
    Ok(())
}

/// The allocator of the Switchyard binaries this benchmark stands for (mimalloc; see
/// `bench/RESULTS.md` §10, "mimalloc"), so that every peer served from this binary runs on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(n) = args.instructions {
        return count_instructions(n, args.concurrency);
    }
    // Metrics on, as in the gateway: the layers' counters cost what they cost there.
    switchyard::telemetry::metrics::install();
    let server = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: StoreConfig::Memory,
            // Rounds of sends leave hundreds of thousands of tasks: past retention's default
            // cap (100,000), its minutely sweep would land in whichever round runs then.
            retention: Retention::keep_all(),
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
    if let (Some(n), Some(target), Some(call)) = (args.calls, args.target, args.call) {
        let client = if target == Target::Layered {
            layered
        } else {
            plain
        };
        // `--concurrency` callers share the calls, as in a round.
        let callers = (args.concurrency as u64).clamp(1, n.max(1));
        callgrind::counting_starts();
        let workers: Vec<_> = (0..callers)
            .map(|i| {
                let client = client.clone();
                let share = n / callers + u64::from(i < n % callers);
                tokio::spawn(async move {
                    for _ in 0..share {
                        anyhow::ensure!(make(&client, call).await, "a {call:?} call failed");
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.await??;
        }
        return Ok(());
    }

    println!("| call | target | RPS (median) | p50 µs | p99 µs | CPU µs/call (median) |");
    println!("|---|---|---|---|---|---|");
    for call in [Call::Read, Call::Send] {
        let warm = Args {
            seconds: 1,
            ..Args::parse()
        };
        run_round(layered.clone(), call, &warm).await;
        run_round(plain.clone(), call, &warm).await;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        let (mut with_cpu, mut without_cpu) = (Vec::new(), Vec::new());
        let mut ratios = Vec::new();
        for i in 0..args.rounds {
            // Alternate which goes first, so drift in machine load hits both alike.
            let (w, n) = if i % 2 == 0 {
                let w = run_round(layered.clone(), call, &args).await;
                (w, run_round(plain.clone(), call, &args).await)
            } else {
                let n = run_round(plain.clone(), call, &args).await;
                (run_round(layered.clone(), call, &args).await, n)
            };
            eprintln!(
                "{call:?} round {}: with {:?} {:.1} CPU µs/call | without {:?} {:.1} CPU µs/call",
                i + 1,
                w.0,
                w.1,
                n.0,
                n.1
            );
            ratios.push(w.0.rps / n.0.rps);
            with.push(w.0);
            with_cpu.push(w.1);
            without.push(n.0);
            without_cpu.push(n.1);
        }
        let (wr, wp50, wp99) = summarize(&with);
        let (nr, np50, np99) = summarize(&without);
        let (wc, nc) = (median(&mut with_cpu), median(&mut without_cpu));
        let errors: u64 = with.iter().chain(&without).map(|x| x.errors).sum();
        println!("| {call:?} | with the layers | {wr:.0} | {wp50:.0} | {wp99:.0} | {wc:.1} |");
        println!("| {call:?} | plain client | {nr:.0} | {np50:.0} | {np99:.0} | {nc:.1} |");
        eprintln!(
            "{call:?}: with/without RPS {:.3} (median of per-round ratios {:.3}; target >= 0.95), \
             CPU per call {:.3}; errors {errors}",
            wr / nr,
            median(&mut ratios),
            wc / nc
        );
    }
    Ok(())
}
