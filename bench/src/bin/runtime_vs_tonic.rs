//! Unary `A2AService/SendMessage` and one stream's events/s, to the echo agent through the
//! Switchyard runtime (durable SQLite store; with `--postgres`, also the PostgreSQL store) versus
//! a bare tonic server that answers the same requests with the same tasks and events, at the
//! same concurrency, in interleaved rounds.
//!
//! Every measured server runs in a process of its own, pinned with `taskset` to
//! `--server-cpus`; the load generator (this process, and `h2load` with `--h2load`) is pinned to
//! `--client-cpus`, so that the client's cost is not charged to the server. The runtime's
//! processes install the telemetry of the `switchyard-echo` binary, as every agent does. Each
//! unary round also reads the server process's CPU time (all its threads:
//! [`process::with_cpu`]) and reports it per completed call, a figure this noisy machine moves
//! less than RPS.
//! `--profile` records a CPU profile (`perf record -g`) of the SQLite runtime's process during
//! one extra round.
//! `--instructions N` instead counts the instructions of one `SendMessage` (client and server
//! in one process, under callgrind) to each target, from runs of N and 2N sequential calls
//! ([`switchyard_bench::callgrind`]), and of one streamed event, from one stream of 4N and one
//! of 8N chunks: a figure the machine's load moves far less than seconds
//! (the runtime's hand-offs between threads still move a call's count by a few per cent from
//! run to run, and a streamed event's by up to ±10 %, as messages share frames and commits
//! differently: take the median of a few).
//!
//! `bench/runtime.sh` (installs `h2load`) or
//! `cargo run --release -p switchyard-bench --bin runtime_vs_tonic -- --help`

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt as _;
use switchyard::{
    AgentServer, ServeConfig, StoreConfig,
    client::{A2aClient, Transport, Versioned},
    pb::a2a::{
        Message, SendMessageRequest, TaskState, a2a_service_client::A2aServiceClient,
        send_message_response,
    },
    store::{DatabaseUrl, Durability, PostgresOptions, PostgresStore},
    task::json_to_value,
    telemetry::{self, Telemetry, TelemetryConfig},
};
use switchyard_bench::{
    Round,
    bare::start_bare,
    callgrind::Work,
    median,
    process::{self, Pinning},
    round, summarize,
};
use tokio::process::Child;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(about = "SendMessage through the Switchyard runtime vs a bare tonic server")]
struct Args {
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (interleaved).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The runtime's store: fsync (fsync per group commit), os (written to the OS per group
    /// commit; PostgreSQL: synchronous_commit off) or memory (volatile, for comparison only).
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// Also measure the runtime on this PostgreSQL database (in a schema of its own, dropped
    /// at the end), e.g. postgres://postgres@127.0.0.1:5432/test.
    #[arg(long, env = "SWITCHYARD_BENCH_POSTGRES")]
    postgres: Option<String>,
    /// Chunks of the one stream measured per round (2 events each, plus 4 per stream); 0: no
    /// stream.
    #[arg(long, default_value_t = 2000)]
    stream_chunks: u64,
    #[command(flatten)]
    pinning: Pinning,
    /// Also measure the bare server with `h2load` (nghttp2-client) in each round: one HTTP/2
    /// connection, `--concurrency` streams, one request body repeated (the runtime would
    /// answer a repeated messageId from its idempotence record, so it is not measured so):
    /// the ceiling of the load generator's own figure for the bare server.
    #[arg(long)]
    h2load: bool,
    /// Record a CPU profile of the SQLite runtime's process (`perf record -g`) during one
    /// extra round and write to this file the round's CPU per call against the 0.8× target
    /// (the bare server's; sqlx's SQLite threads, the tokio workers, fsync and page faults in
    /// µs per call) and the `perf report` summary (the raw data next to it, `<file>.data`); with
    /// `--stream-chunks`, also during one extra stream, to `<file stem>-stream.<extension>`.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Print the instructions (callgrind) of one `SendMessage` to the runtime in memory, the
    /// runtime on SQLite (durability `os`: an fsync adds only system calls, which callgrind
    /// does not count) and the bare server, each counted with its client in one process from
    /// runs of N and 2N sequential calls; then of one streamed event, from one stream of 4N
    /// and one of 8N chunks; then exit. Needs `valgrind` (Debian `valgrind`).
    #[arg(long)]
    instructions: Option<u64>,
    /// Internal: make this many sequential `SendMessage` calls to a `--serve`-like target
    /// started in this process, and exit (failing on the first error).
    #[arg(long, hide = true)]
    calls: Option<u64>,
    /// Internal: make one `SendStreamingMessage` call of this many chunks to a `--serve`-like
    /// target started in this process, and exit (failing unless every event arrived).
    #[arg(long, hide = true)]
    chunks: Option<u64>,
    /// Internal: serve one target in this process (`sqlite`, `memory`, `postgres`, `bare`),
    /// print `LISTENING <addr>` and run until stdin closes.
    #[arg(long, hide = true)]
    serve: Option<String>,
    /// Internal: the data directory of `--serve sqlite`.
    #[arg(long, hide = true)]
    data_dir: Option<PathBuf>,
    /// Internal: the PostgreSQL schema of `--serve postgres`.
    #[arg(long, hide = true)]
    schema: Option<String>,
}

fn request() -> SendMessageRequest {
    SendMessageRequest {
        message: Some(Message::user_text(
            "benchmark payload: the quick brown fox jumps over the lazy dog",
        )),
        ..Default::default()
    }
}

async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

async fn run_round(client: A2aClient, args: &Args) -> Round {
    round(args.concurrency, Duration::from_secs(args.seconds), move || {
        let mut c = client.clone();
        async move {
            matches!(
                c.send_message(request()).await.map(|r| r.into_inner().payload),
                Ok(Some(send_message_response::Payload::Task(t))) if t.state() == TaskState::Completed
            )
        }
    })
    .await
}

/// Events per second of one stream of `chunks` chunks.
async fn stream_rate(client: &A2aClient, chunks: u64) -> anyhow::Result<f64> {
    let mut m = Message::user_text("stream");
    m.metadata = Some(pbjson_types::Struct {
        fields: [("chunks".to_owned(), json_to_value(chunks.into()))].into(),
    });
    let started = Instant::now();
    let mut stream = client
        .clone()
        .send_streaming_message(SendMessageRequest {
            message: Some(m),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut events = 0u64;
    while let Some(e) = stream.next().await {
        e?;
        events += 1;
    }
    anyhow::ensure!(
        events == 2 * chunks + 4,
        "a stream of {chunks} chunks had {events} events"
    );
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

async fn client(addr: SocketAddr) -> anyhow::Result<A2aClient> {
    // The runtime refuses calls that do not name the A2A version, so every target gets it.
    Ok(A2aServiceClient::with_interceptor(
        Transport::new(channel(addr).await?),
        Versioned,
    ))
}

/// One measured server.
struct Target {
    label: String,
    client: A2aClient,
    addr: SocketAddr,
    /// Its process; dropping it (and its stdin) stops the server.
    process: Child,
    unary: Vec<Round>,
    /// Per unary round: the server process's CPU time per completed call, µs.
    cpu_us: Vec<f64>,
    stream: Vec<f64>,
    h2load: Vec<H2Round>,
    /// The bare tonic server (the only one h2load measures).
    bare: bool,
}

/// What one h2load run measured.
#[derive(Debug, Clone, Copy, Default)]
struct H2Round {
    rps: f64,
    mean_us: f64,
    failed: u64,
}

fn durability_of(name: &str) -> anyhow::Result<Option<Durability>> {
    match name {
        "fsync" => Ok(Some(Durability::Fsync)),
        "os" => Ok(Some(Durability::Os)),
        "memory" => Ok(None),
        other => anyhow::bail!("--durability must be fsync, os or memory, not {other:?}"),
    }
}

/// Starts one target (`sqlite`, `memory`, `postgres`, `bare`) in this process. The runtime's
/// targets install the telemetry the `switchyard-echo` binary installs (logs, trace context,
/// metrics; no OTLP export), which every agent process runs; the bare server none. Returns
/// the address and the telemetry, to keep while the target serves.
async fn start(kind: &str, args: &Args) -> anyhow::Result<(SocketAddr, Option<Telemetry>)> {
    let durability = durability_of(&args.durability)?;
    let telemetry = match kind {
        "bare" => None,
        _ => Some(telemetry::init(&TelemetryConfig::from_env(
            "switchyard-echo",
        ))?),
    };
    let addr = match kind {
        "bare" => start_bare().await,
        "sqlite" | "memory" => {
            let store = match (kind, durability) {
                ("sqlite", Some(durability)) => StoreConfig::Sqlite {
                    path: args
                        .data_dir
                        .clone()
                        .context("--serve sqlite needs --data-dir")?
                        .join("bench.db"),
                    durability,
                },
                _ => StoreConfig::Memory,
            };
            serve(store).await
        }
        "postgres" => {
            serve(StoreConfig::Postgres {
                url: DatabaseUrl::new(args.postgres.clone().context("--postgres")?),
                schema: args.schema.clone(),
                durability: durability.unwrap_or_default(),
            })
            .await
        }
        other => anyhow::bail!("unknown --serve target {other:?}"),
    }?;
    Ok((addr, telemetry))
}

/// `--serve`: one target in this process until stdin closes.
async fn serve_one(kind: &str, args: &Args) -> anyhow::Result<()> {
    let (addr, _telemetry) = start(kind, args).await?;
    process::announce(addr);
    process::until_stdin_closes().await;
    Ok(())
}

/// `--calls n` or `--chunks n` with `--serve kind`: starts `kind` in this process (SQLite in a
/// new data directory), then does `work` against it.
///
/// # Errors
/// Setup fails, or a call fails or does not complete its task (with the call's number), or
/// the stream misses events.
async fn make_calls(kind: &str, work: Work) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The other options as given on the command line.
    let args = Args {
        data_dir: Some(dir.path().to_owned()),
        ..Args::parse()
    };
    let (addr, _telemetry) = start(kind, &args).await?;
    let c = client(addr).await?;
    switchyard_bench::callgrind::counting_starts();
    let n = match work {
        Work::Calls(n) => n,
        Work::Chunks(chunks) => return stream_rate(&c, chunks).await.map(drop),
    };
    for i in 0..n {
        let r = c
            .clone()
            .send_message(request())
            .await?
            .into_inner()
            .payload;
        anyhow::ensure!(
            matches!(&r, Some(send_message_response::Payload::Task(t))
                if t.state() == TaskState::Completed),
            "call {i} to {kind}: {r:?}"
        );
    }
    Ok(())
}

/// `--instructions n`: instructions per call to each target, from callgrind runs of this
/// binary with `--calls n` and `--calls 2n`; then per streamed event, from runs with
/// `--chunks 4n` and `--chunks 8n` (half the difference per chunk: a chunk is two events).
fn print_instructions(n: u64) -> anyhow::Result<()> {
    println!(
        "| SendMessage, {n} and {} sequential calls, client and server in one process | \
         instructions per call |",
        2 * n
    );
    println!("|---|---|");
    let targets = [
        ("runtime + echo, in memory", "memory", "memory"),
        ("runtime + echo, SQLite durability=os", "sqlite", "os"),
        ("bare tonic server, same answers", "bare", "os"),
    ];
    for (name, kind, durability) in targets {
        let run = ["--serve", kind, "--durability", durability].map(str::to_owned);
        let per_call = switchyard_bench::callgrind::per_call(&run, n)?;
        println!("| {name} | {per_call:.0} |");
    }
    let chunks = 4 * n;
    println!();
    println!(
        "| one stream, {chunks} and {} chunks (2 events each), client and server in one \
         process | instructions per event |",
        2 * chunks
    );
    println!("|---|---|");
    for (name, kind, durability) in targets {
        let run = ["--serve", kind, "--durability", durability].map(str::to_owned);
        let per_chunk = switchyard_bench::callgrind::per_unit(&run, "--chunks", chunks)?;
        println!("| {name} | {:.0} |", per_chunk / 2.0);
    }
    Ok(())
}

async fn serve(store: StoreConfig) -> anyhow::Result<SocketAddr> {
    let server = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store,
            ..Default::default()
        },
    )
    .await?;
    let addr = server.local_addr();
    tokio::spawn(server.run());
    Ok(addr)
}

/// Starts `--serve kind` in a process of its own, pinned to the server CPUs.
async fn spawn_server(
    args: &Args,
    kind: &str,
    data_dir: &Path,
    schema: &str,
) -> anyhow::Result<(Child, SocketAddr)> {
    let mut cmd = args.pinning.server(&std::env::current_exe()?);
    cmd.args(["--serve", kind, "--durability", &args.durability])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--schema", schema]);
    if let Some(url) = &args.postgres {
        cmd.args(["--postgres", url]);
    }
    process::spawn_server(cmd).await
}

/// The gRPC frame of [`request`], for h2load's `-d`.
fn grpc_frame() -> Vec<u8> {
    let body = prost::Message::encode_to_vec(&request());
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// One h2load run against `addr`: one connection, `concurrency` streams, `seconds` long.
async fn h2load(args: &Args, addr: SocketAddr, frame: &Path) -> anyhow::Result<H2Round> {
    let mut cmd = args.pinning.client(Path::new("h2load"));
    let out = cmd
        .args(["-c", "1", "-t", "1", "-m", &args.concurrency.to_string()])
        .args(["-D", &args.seconds.to_string()])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-H", "a2a-version: 1.0", "-d"])
        .arg(frame)
        .arg(format!("http://{addr}/lf.a2a.v1.A2AService/SendMessage"))
        .output()
        .await
        .context("running h2load (bench/runtime.sh installs it: nghttp2-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "h2load failed: {text}");
    let mut r = H2Round::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in ") {
            // "finished in 5.00s, 12345.60 req/s, 2.34MB/s"
            r.rps = rest
                .split(", ")
                .nth(1)
                .and_then(|s| s.strip_suffix(" req/s"))
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("h2load line {line:?}"))?;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // "requests: N total, N started, N done, N succeeded, F failed, E errored, …"
            r.failed = rest
                .split(", ")
                .find_map(|f| f.strip_suffix(" failed"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // min max mean sd ±sd, each with a unit
            r.mean_us = rest.split_whitespace().nth(2).map_or(0.0, micros);
        }
    }
    Ok(r)
}

/// h2load's durations ("1.23ms", "456us", "2.00s") in µs.
fn micros(s: &str) -> f64 {
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().map_or(0.0, |n| n * scale)
}

/// Starts `perf record -F 499 -g` of `target`'s process into `data`, on the client CPUs, for
/// `seconds` (else until it gets SIGINT).
fn record(
    args: &Args,
    target: &Target,
    data: &Path,
    seconds: Option<u64>,
) -> anyhow::Result<tokio::process::Child> {
    let pid = target.process.id().context("server pid")?;
    let mut perf = args.pinning.client(Path::new("perf"));
    perf.args(["record", "-F", "499", "-g", "-o"])
        .arg(data)
        .args(["-p", &pid.to_string()]);
    if let Some(s) = seconds {
        perf.args(["--", "sleep", &s.to_string()]);
    }
    perf.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("running perf (Debian linux-perf)")
}

/// Records `perf record -g` of `pid` for one round of load and writes the report summary,
/// after the round's CPU budget ([`budget`]) against `bare_cpu`, the bare server's CPU per
/// call in the measured rounds (µs).
async fn profile(args: &Args, target: &Target, bare_cpu: f64, out: &Path) -> anyhow::Result<()> {
    let data = out.with_extension("data");
    let pid = target.process.id().context("the server exited")?;
    let mut perf = record(args, target, &data, Some(args.seconds))?;
    let (r, [cpu]) = process::with_cpu([pid], run_round(target.client.clone(), args)).await?;
    perf.wait().await?;
    let budget = budget(&data, cpu, bare_cpu).await?;
    let summary = switchyard_bench::perf_summary(&data, 0.7).await?;
    let text = format!(
        "# perf record -F 499 -g of the SQLite runtime process during one {}s round \
         ({:.0} RPS, concurrency {})\n\n{budget}\n{summary}",
        args.seconds, r.rps, args.concurrency,
    );
    std::fs::write(out, text)?;
    eprintln!("profile written to {}", out.display());
    if args.stream_chunks > 0 {
        profile_stream(args, target, out).await?;
    }
    Ok(())
}

/// Threads and kernel functions whose share of a profile [`budget`] converts to µs per call:
/// (what the line says, whether it is a thread (else a kernel function, inclusive of its
/// callees), its name). sqlx runs each SQLite connection on a thread of its own (named
/// `sqlx-sqlite-worker-N`, 15 characters kept by the kernel); `do_fsync` is the kernel's side
/// of every `fsync` (one per group commit with `--durability fsync`, and the WAL
/// checkpoints'); `asm_exc_page_fault` the kernel giving the process new pages (the in-memory
/// store keeps every task it is given).
const BUDGET_ENTRIES: [(&str, bool, &str); 4] = [
    (
        "sqlx's SQLite threads (the store's statements and commits)",
        true,
        "sqlx-sqlite-wor",
    ),
    ("the tokio workers", true, "tokio-rt-worker"),
    ("fsync, in the kernel", false, "do_fsync"),
    ("page faults, in the kernel", false, "asm_exc_page_fault"),
];

/// The section of a profile that puts the 0.8× target of issue 15 in CPU per call: the
/// runtime's process spent `cpu` µs per call in the profiled round (`data` its recording), the
/// bare server `bare_cpu` in the measured rounds. Both servers are CPU-bound on the same
/// pinned CPU, so a ratio of calls per second is the inverse ratio of CPU per call: at 0.8× of
/// the bare server's RPS the runtime may spend `bare_cpu / 0.8` µs per call, and each entry of
/// [`BUDGET_ENTRIES`] is its share of the samples times `cpu`.
async fn budget(data: &Path, cpu: f64, bare_cpu: f64) -> anyhow::Result<String> {
    let allowed = bare_cpu / 0.8;
    let mut text = format!(
        "## CPU per call against the 0.8× target\n\
         the runtime's process, this round: {cpu:.1} µs per call; the bare server: {bare_cpu:.1} \
         µs (median of the measured rounds)\n\
         at 0.8× of the bare server's RPS the runtime may spend {allowed:.1} µs per call: \
         {:.1} µs over the bare server's\n",
        allowed - bare_cpu
    );
    let threads = switchyard_bench::perf_shares(data, "comm", false).await?;
    let functions = switchyard_bench::perf_shares(data, "sym", true).await?;
    for (what, thread, name) in BUDGET_ENTRIES {
        let shares = if thread { &threads } else { &functions };
        let line = match shares.get(name) {
            Some(share) => format!(
                "{what}: {share:.1} % of the samples, {:.1} µs per call\n",
                share / 100.0 * cpu
            ),
            None => format!("{what}: not in the profile\n"),
        };
        text.push_str(&line);
    }
    Ok(text)
}

/// Records `perf record -g` of the SQLite runtime's process during one stream of
/// `--stream-chunks` chunks (stopped with SIGINT when the stream ends) and writes the summary
/// next to `out`.
async fn profile_stream(args: &Args, target: &Target, out: &Path) -> anyhow::Result<()> {
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("profile");
    let ext = out.extension().and_then(|s| s.to_str()).unwrap_or("txt");
    let out = out.with_file_name(format!("{stem}-stream.{ext}"));
    let data = out.with_extension("data");
    let mut perf = record(args, target, &data, None)?;
    // perf attaches before the stream starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rate = stream_rate(&target.client, args.stream_chunks).await;
    let perf_pid = perf.id().context("perf pid")?;
    tokio::process::Command::new("kill")
        .args(["-INT", &perf_pid.to_string()])
        .status()
        .await?;
    perf.wait().await?;
    let rate = rate?;
    let summary = switchyard_bench::perf_summary(&data, 0.7).await?;
    let text = format!(
        "# perf record -F 499 -g of the SQLite runtime process during one stream of {} chunks \
         ({rate:.0} events/s)\n\n{summary}",
        args.stream_chunks,
    );
    std::fs::write(&out, text)?;
    eprintln!("stream profile written to {}", out.display());
    Ok(())
}

/// Warms up, runs the interleaved rounds and prints the table.
async fn measure(args: &Args, targets: &mut [Target]) -> anyhow::Result<()> {
    // Warm up every target (connections, allocator, store caches).
    let warm = Args {
        seconds: 1,
        ..Args::parse()
    };
    for t in targets.iter() {
        run_round(t.client.clone(), &warm).await;
    }
    let frame_dir = tempfile::tempdir()?;
    let frame = frame_dir.path().join("send_message.grpc");
    std::fs::write(&frame, grpc_frame())?;

    let n = targets.len();
    for i in 0..args.rounds {
        // Rotate which goes first, so drift in machine load hits every target alike.
        for k in 0..n {
            let t = &mut targets[(i + k) % n];
            let pid = t.process.id().context("the server exited")?;
            let (r, [cpu]) = process::with_cpu([pid], run_round(t.client.clone(), args)).await?;
            t.cpu_us.push(cpu);
            t.unary.push(r);
            if args.stream_chunks > 0 {
                t.stream
                    .push(stream_rate(&t.client, args.stream_chunks).await?);
            }
            // Only the bare server: h2load repeats one request body, and the runtime answers a
            // repeated messageId with its first task (idempotent SendMessage) instead of
            // running a new one, which is not the same work.
            if args.h2load && t.bare {
                t.h2load.push(h2load(args, t.addr, &frame).await?);
            }
        }
        let line: Vec<String> = targets
            .iter()
            .map(|t| {
                format!(
                    "{}: {:?} server CPU {:.1} µs/call stream {:.0} ev/s h2load {:?}",
                    t.label,
                    t.unary[i],
                    t.cpu_us[i],
                    t.stream.get(i).copied().unwrap_or(0.0),
                    t.h2load.get(i)
                )
            })
            .collect();
        eprintln!("round {}: {}", i + 1, line.join(" | "));
    }
    let bare_rps = summarize(&targets[n - 1].unary).0;
    let bare_stream = median(&mut targets[n - 1].stream.clone());
    let h2_rps = |t: &Target| median(&mut t.h2load.iter().map(|r| r.rps).collect::<Vec<_>>());
    let bare_h2 = h2_rps(&targets[n - 1]);
    println!(
        "| target | RPS (median) | p50 µs | p99 µs | vs bare | server CPU µs / call | vs bare \
         | one stream, events/s | vs bare | h2load RPS | h2load mean µs | vs bare |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let bare_cpu = median(&mut targets[n - 1].cpu_us.clone());
    let mut errors = 0;
    for t in targets.iter_mut() {
        let (rps, p50, p99) = summarize(&t.unary);
        let cpu = median(&mut t.cpu_us);
        let ev = median(&mut t.stream);
        let h2 = h2_rps(t);
        let h2_mean = median(&mut t.h2load.iter().map(|r| r.mean_us).collect::<Vec<_>>());
        errors += t.unary.iter().map(|r| r.errors).sum::<u64>();
        errors += t.h2load.iter().map(|r| r.failed).sum::<u64>();
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        println!(
            "| {} | {rps:.0} | {p50:.0} | {p99:.0} | {:.2}x | {cpu:.1} | {:.2}x | {ev:.0} | \
             {:.2}x | {h2:.0} | {h2_mean:.0} | {:.2}x |",
            t.label,
            ratio(rps, bare_rps),
            ratio(cpu, bare_cpu),
            ratio(ev, bare_stream),
            ratio(h2, bare_h2),
        );
    }
    println!();
    println!("errors: {errors}");
    Ok(())
}

/// The allocator of the Switchyard binaries this benchmark stands for (mimalloc; see
/// `bench/RESULTS.md` §10, "mimalloc"), so that every peer served from this binary runs on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(n) = args.instructions {
        return print_instructions(n);
    }
    if args.serve.is_none() {
        // Before the runtime starts its threads: its worker count follows the affinity.
        args.pinning.pin_self()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match (
        args.serve.clone(),
        Work::from_flags(args.calls, args.chunks),
    ) {
        (Some(kind), Some(work)) => rt.block_on(make_calls(&kind, work)),
        (Some(kind), None) => rt.block_on(serve_one(&kind, &args)),
        (None, _) => rt.block_on(run(args)),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let durability = durability_of(&args.durability)?;
    let schema = format!("bench_{}", std::process::id());
    let mut specs = vec![(
        match durability {
            Some(_) => format!("runtime + echo, SQLite durability={}", args.durability),
            None => "runtime + echo, in memory".to_owned(),
        },
        if durability.is_some() {
            "sqlite"
        } else {
            "memory"
        },
    )];
    if args.postgres.is_some() {
        specs.push((
            format!("runtime + echo, PostgreSQL durability={}", args.durability),
            "postgres",
        ));
    }
    specs.push(("bare tonic server, same answers".to_owned(), "bare"));
    let mut targets = Vec::new();
    for (label, kind) in specs {
        let (process, addr) = spawn_server(&args, kind, dir.path(), &schema).await?;
        targets.push(Target {
            label,
            client: client(addr).await?,
            addr,
            process,
            unary: Vec::new(),
            cpu_us: Vec::new(),
            stream: Vec::new(),
            h2load: Vec::new(),
            bare: kind == "bare",
        });
    }
    eprintln!("{}", args.pinning.describe());
    let mut result = measure(&args, &mut targets).await;
    if result.is_ok()
        && let Some(out) = &args.profile
    {
        let bare_cpu = median(&mut targets[targets.len() - 1].cpu_us.clone());
        result = profile(&args, &targets[0], bare_cpu, out).await;
    }
    // The servers stop when their stdin closes.
    for t in &mut targets {
        process::stop_server(&mut t.process).await;
    }
    // The schema goes whatever happens to the measurement.
    if let Some(url) = &args.postgres {
        let store = PostgresStore::connect(
            &DatabaseUrl::new(url.clone()),
            &PostgresOptions::new(&schema),
        )
        .await?;
        store.drop_schema().await?;
    }
    result
}
