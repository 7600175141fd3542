//! A2A JSON-RPC `SendMessage` through the Switchyard gateway, versus the same call as direct
//! gRPC to the agent, versus the official a2a-sdk Python reference server (JSON-RPC, same echo
//! behaviour), at the same concurrency, in interleaved rounds; then the events per second of one
//! SSE stream through the gateway, versus the same stream over direct gRPC. Each is measured
//! twice: with the echo agent (durable store, `fsync`) behind the gateway, and with a bare tonic
//! A2A server (no task, no store: [`switchyard_bench::bare`]), which shows what the gateway
//! itself costs. With each SSE stream sent with `Accept: text/event-stream` it also reports the
//! CPU time the agent and the gateway processes spent on it, per event
//! ([`switchyard_bench::process::cpu_time`]): a figure the machine's other load moves far less
//! than events per second. Every unary round against an agent likewise reports the CPU time
//! per call of the agent and of the gateway, and from them the gateway / direct ratio that one
//! CPU shared by both predicts (the agent's CPU per direct call over the agent's plus the
//! gateway's per call through it). Then `wrk` (its own process; installed with apt-get when
//! missing) cross-checks the JSON-RPC figures.
//!
//! Every server (the echo agent, the bare agent, the gateway in front of both, the a2a-sdk
//! server) runs in a process of its own, pinned with `taskset` to `--server-cpus`; the load
//! generator (this process, and `wrk`) is pinned to `--client-cpus`, so that the client's
//! cost is not charged to the servers ([`switchyard_bench::process`]). The gateway shares
//! the server CPUs with the agents it calls, so a call through it pays for both. The gateway
//! and the echo agent install the telemetry their binaries install (logs, trace context,
//! metrics), so they cost what they cost in production.
//!
//! Then the echo agent and the gateway in one process, as `switchyard up` runs them: direct
//! gRPC to the agent against JSON-RPC through the gateway, which calls the agent in process
//! (`ServeConfig::in_process`) or over loopback TCP, in plain text; and with the mTLS
//! identities `up` gives its mesh by default (the direct client presenting the CLI's
//! certificate, the gateway calling the agent in process with its own identity).
//!
//! `--profile FILE` then records a CPU profile (`perf record -F 999 -g`) of the gateway
//! process during one extra round of JSON-RPC `SendMessage` to the bare agent, and writes the
//! `perf report` summaries to FILE. `--instructions N` instead counts the instructions
//! (valgrind's callgrind, not disturbed by the machine's load) of one JSON-RPC `SendMessage`
//! through the gateway to the bare agent, and of one direct gRPC call to it, from runs of N
//! and 2N sequential calls ([`switchyard_bench::callgrind`]).
//!
//! `cargo run --release -p switchyard-bench --bin gateway_vs_grpc -- --help`

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use futures::{FutureExt as _, StreamExt as _};
use switchyard::{
    AgentServer, Registry, RegistryConfig, ServeConfig, StoreConfig,
    authz::layer::AgentAuthz,
    client::{A2aClient, Transport, Versioned},
    identity::SpiffeId,
    pb::a2a::{
        Message, SendMessageRequest, TaskState, a2a_service_client::A2aServiceClient,
        send_message_response,
    },
    resilience::ResilienceConfig,
    store::Durability,
    task::json_to_value,
    tls::{MeshTls, dev::DevCa},
};
use switchyard_bench::{
    Round,
    callgrind::Work,
    median,
    process::{self, Pinning},
    round, summarize,
};
use tokio::{io::AsyncBufReadExt as _, process::Child};
use tonic::transport::Channel;

#[derive(Debug, Parser, Clone)]
#[command(about = "JSON-RPC through the gateway vs direct gRPC vs the a2a-sdk Python server")]
struct Args {
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (interleaved).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python with a2a-sdk installed (default: $SWITCHYARD_PYTHON, else the checkout's
    /// .venv/bin/python).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Events of the SSE stream measured.
    #[arg(long, default_value_t = 5_000)]
    stream_events: u64,
    /// Rounds of the stream measurement (interleaved).
    #[arg(long, default_value_t = 3)]
    stream_rounds: usize,
    /// Skip the `wrk` cross-check.
    #[arg(long)]
    no_wrk: bool,
    /// Record a CPU profile (`perf record -F 999 -g`, Debian `linux-perf`) of the gateway's
    /// process during one extra round of JSON-RPC `SendMessage` to the bare agent, and write
    /// the `perf report` summaries (by shared object, by symbol) to this file (the raw data
    /// next to it, `.data`).
    #[arg(long)]
    profile: Option<PathBuf>,
    #[command(flatten)]
    pinning: Pinning,
    /// Internal: serve one target in this process (`echo` with `--data-dir`, `bare`, or
    /// `gateway` with `--agents`), print `LISTENING <addr>` and run until standard input
    /// closes.
    #[arg(long, hide = true, value_enum)]
    serve: Option<Serve>,
    /// Internal: the data directory of `--serve echo`.
    #[arg(long, hide = true)]
    data_dir: Option<PathBuf>,
    /// Internal: the agents of `--serve gateway` (`name=host:port;…`).
    #[arg(long, hide = true)]
    agents: Option<String>,
    /// Print the instructions (callgrind) of one JSON-RPC `SendMessage` through the gateway to
    /// the bare agent, and of one direct gRPC `SendMessage` to it, from runs of this many and
    /// twice as many sequential calls; then of one streamed event of the bare agent through the
    /// gateway's SSE and over direct gRPC, from one stream of 4× and one of 8× this many chunks;
    /// then exit. Needs `valgrind` (Debian `valgrind`).
    #[arg(long)]
    instructions: Option<u64>,
    /// Internal: start the bare agent and a gateway in front of it, make this many sequential
    /// `SendMessage` calls to `--target`, and exit (failing on the first error).
    #[arg(long, hide = true)]
    calls: Option<u64>,
    /// Internal: like `--calls`, but one stream of this many chunks (`SendStreamingMessage`;
    /// through the gateway as SSE with `Accept: text/event-stream`).
    #[arg(long, hide = true)]
    chunks: Option<u64>,
    /// Internal: `--serve up` with the agent called in process.
    #[arg(long, hide = true)]
    in_process: bool,
    /// Internal: `--serve up` over mTLS, as `switchyard up` by default ([`UpMesh`]).
    #[arg(long, hide = true)]
    mtls: bool,
    /// Internal: where `--calls` and `--chunks` go.
    #[arg(long, hide = true, value_enum, default_value_t = CallTarget::Gateway)]
    target: CallTarget,
}

/// What `--serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Serve {
    /// The echo agent on the durable SQLite store (`fsync`), with the agent binaries'
    /// telemetry.
    Echo,
    /// The bare tonic A2A server ([`switchyard_bench::bare`]).
    Bare,
    /// The library gateway, default configuration, with the gateway binary's telemetry, in
    /// front of `--agents`.
    Gateway,
    /// The echo agent (as `echo`, with `--data-dir`) and the gateway in one process, as
    /// `switchyard up` runs them; with `--in-process`, the gateway calls the agent in process
    /// (`ServeConfig::in_process`, as `up` does), else over loopback TCP; with `--mtls`, the
    /// agent and the gateway have the identities `up` gives them by default ([`UpMesh`]).
    /// Prints `LISTENING <gateway> <agent>`.
    Up,
}

/// Where the counted calls of `--calls` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CallTarget {
    /// JSON-RPC `SendMessage` through the gateway (HTTP/1.1) to the bare agent.
    Gateway,
    /// gRPC `SendMessage` straight to the bare agent.
    Direct,
}

const TEXT: &str = "benchmark payload: the quick brown fox jumps over the lazy dog";

/// A JSON-RPC `SendMessage` of a new message: its `messageId` is random, since the agent
/// answers a repeated one from its idempotence record instead of running a task (A2A:
/// `messageId` identifies a message).
fn jsonrpc_body(n: u64) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": n, "method": "SendMessage",
        "params": {"message": {"messageId": switchyard::task::new_id(), "role": "ROLE_USER",
            "parts": [{"text": TEXT}]}}
    })
    .to_string()
}

/// Prints the first failed call of each URL (a round counts failures, this says what they are).
fn report_failure(url: &str, failure: &str) {
    static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    if !reported.iter().any(|u| u == url) {
        reported.push(url.to_owned());
        eprintln!(
            "a JSON-RPC call to {url} failed (the first; later ones are only counted): {failure}"
        );
    }
}

async fn jsonrpc_round(http: reqwest::Client, url: String, args: &Args) -> Round {
    let counter = Arc::new(AtomicU64::new(0));
    round(
        args.concurrency,
        Duration::from_secs(args.seconds),
        move || {
            let (http, url) = (http.clone(), url.clone());
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let failure = match http
                    .post(&url)
                    .header("A2A-Version", "1.0")
                    .header("Content-Type", "application/json")
                    .body(jsonrpc_body(n))
                    .send()
                    .await
                {
                    Err(e) => format!("no answer: {e:#}"),
                    Ok(r) => match r.text().await {
                        Ok(t) if t.contains("TASK_STATE_COMPLETED") => return true,
                        Ok(t) => format!("an answer without a completed task: {t}"),
                        Err(e) => format!("the answer's body failed: {e:#}"),
                    },
                };
                report_failure(&url, &failure);
                false
            }
        },
    )
    .await
}

async fn grpc_round(client: A2aClient, args: &Args) -> Round {
    round(args.concurrency, Duration::from_secs(args.seconds), move || {
        let mut c = client.clone();
        async move {
            let req = SendMessageRequest {
                message: Some(Message::user_text(TEXT)),
                ..Default::default()
            };
            matches!(
                c.send_message(req).await.map(|r| r.into_inner().payload),
                Ok(Some(send_message_response::Payload::Task(t))) if t.state() == TaskState::Completed
            )
        }
    })
    .await
}

/// The a2a-sdk reference server's script, relative to the checkout's root.
const SDK_SERVER: &str = "bench/python/sdk_jsonrpc_echo.py";

/// The checkout whose a2a-sdk server and `.venv` the benchmark uses: the working directory
/// when it holds [`SDK_SERVER`], else the checkout this binary was built from (so that a
/// copied release binary runs from anywhere while its checkout exists).
///
/// # Errors
/// Neither holds [`SDK_SERVER`].
fn checkout_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [cwd.clone(), built]
        .into_iter()
        .find(|root| root.join(SDK_SERVER).is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{SDK_SERVER} is neither under the working directory {} nor under the checkout \
                 this binary was built from ({}): run gateway_vs_grpc from the checkout's root",
                cwd.display(),
                env!("CARGO_MANIFEST_DIR")
            )
        })
}

/// Starts the a2a-sdk reference server; its JSON-RPC URL.
///
/// # Errors
/// No checkout holds the script ([`checkout_root`]), Python cannot be started, or the server
/// does not print `READY <port>` within 30 s.
async fn start_python(args: &Args) -> anyhow::Result<(tokio::process::Child, String)> {
    let root = checkout_root()?;
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("SWITCHYARD_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let mut child = args
        .pinning
        .server(&python)
        .arg(root.join(SDK_SERVER))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("{}: {e} (run scripts/test --setup-only)", python.display())
        })?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .ok_or_else(|| anyhow::anyhow!("the Python server exited"))?;
    let port = line
        .strip_prefix("READY ")
        .ok_or_else(|| anyhow::anyhow!("unexpected line {line:?}"))?;
    Ok((child, format!("http://127.0.0.1:{port}/jsonrpc")))
}

/// A message asking the agent for a stream of `n` chunks.
fn stream_request(n: u64) -> Message {
    let mut m = Message::user_text("stream");
    m.metadata = Some(pbjson_types::Struct {
        fields: [("chunks".to_owned(), json_to_value(n.into()))].into(),
    });
    m
}

/// Events per second of one stream of `n` chunks through the gateway (SSE, agent `agent`),
/// and the events counted. With `accept_events` the request carries `Accept:
/// text/event-stream` (as a browser's `EventSource` and the A2A SDKs send it: the gateway
/// then writes the stream on the socket itself); without, hyper serves it. The client only
/// counts events (blank-line terminated blocks), so that its parsing is not what is measured.
async fn sse_rate(
    http: &reqwest::Client,
    gateway: &str,
    agent: &str,
    n: u64,
    accept_events: bool,
) -> anyhow::Result<(f64, u64)> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage",
        "params": {"message": serde_json::to_value(stream_request(n))?}
    });
    let started = Instant::now();
    let mut request = http
        .post(format!("{gateway}/agents/{agent}"))
        .header("A2A-Version", "1.0")
        .header("Content-Type", "application/json");
    if accept_events {
        request = request.header("Accept", "text/event-stream");
    }
    let response = request.body(body.to_string()).send().await?;
    let mut bytes = response.bytes_stream();
    let (mut events, mut newline, mut error) = (0u64, false, None::<String>);
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk?;
        match &mut error {
            // What follows the error event (its data), up to 1 KiB.
            Some(text) if text.len() < 1024 => text.push_str(&String::from_utf8_lossy(&chunk)),
            Some(_) => {}
            None => {
                if let Some(at) = chunk.windows(12).position(|w| w == b"event: error") {
                    error = Some(String::from_utf8_lossy(&chunk[at..]).into_owned());
                }
            }
        }
        for &b in chunk.iter() {
            if b == b'\n' {
                if newline {
                    events += 1;
                }
                newline = !newline;
            } else {
                newline = false;
            }
        }
    }
    if let Some(error) = error {
        anyhow::bail!("the SSE stream ended with an error event: {error}");
    }
    Ok((events as f64 / started.elapsed().as_secs_f64(), events))
}

/// Events per second of one stream of `n` chunks over gRPC straight to the agent, and the
/// events counted.
async fn grpc_rate(grpc: &A2aClient, n: u64) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let mut stream = grpc
        .clone()
        .send_streaming_message(SendMessageRequest {
            message: Some(stream_request(n)),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut events = 0u64;
    while let Some(e) = stream.next().await {
        e?;
        events += 1;
    }
    Ok((events as f64 / started.elapsed().as_secs_f64(), events))
}

/// `wrk` (installed with apt-get when missing); `None` when it cannot be had.
async fn wrk() -> Option<PathBuf> {
    let found = |p: &str| Path::new(p).exists().then(|| PathBuf::from(p));
    if let Some(p) = found("/usr/bin/wrk") {
        return Some(p);
    }
    eprintln!("wrk is missing: apt-get install -y wrk");
    let ok = tokio::process::Command::new("apt-get")
        .args(["install", "-y", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("could not install wrk; skipping the cross-check");
    }
    found("/usr/bin/wrk")
}

/// The Lua script that makes wrk send JSON-RPC `SendMessage`s, each with its own messageId:
/// `RUN-<n>`, with `RUN` replaced by a random id per wrk run ([`jsonrpc_body`] says why).
const WRK_SCRIPT: &str = r#"
local n = 0
local headers = {["Content-Type"] = "application/json", ["A2A-Version"] = "1.0"}
request = function()
  n = n + 1
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"SendMessage","params":{"message":{"messageId":"RUN-%d","role":"ROLE_USER","parts":[{"text":"benchmark payload: the quick brown fox jumps over the lazy dog"}]}}}', n, n)
  return wrk.format("POST", nil, headers, body)
end
"#;

/// One wrk run (1 thread, `concurrency` connections, `seconds`): its requests per second and
/// non-2xx count, from its summary.
async fn wrk_round(
    wrk: &Path,
    script: &Path,
    url: &str,
    args: &Args,
) -> anyhow::Result<(f64, u64)> {
    let out = args
        .pinning
        .client(wrk)
        .args([
            "-t1",
            &format!("-c{}", args.concurrency),
            &format!("-d{}s", args.seconds),
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected wrk output: {text}"))?;
    let bad = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok((rps, bad))
}

/// A gRPC client of `addr` over its own HTTP/2 connection.
async fn grpc_client(addr: SocketAddr) -> anyhow::Result<A2aClient> {
    Ok(A2aServiceClient::with_interceptor(
        Transport::new(
            Channel::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        ),
        Versioned,
    ))
}

/// Logs, trace context and metrics as the `switchyard-gateway` and agent binaries install
/// them (`RUST_LOG`, default `info`; OTLP export only with `OTEL_EXPORTER_OTLP_ENDPOINT`), so
/// that the gateway and the echo agent measured cost what they cost in production.
fn telemetry(service: &str) -> anyhow::Result<switchyard::telemetry::Telemetry> {
    Ok(switchyard::telemetry::init(
        &switchyard::telemetry::TelemetryConfig::from_env(service),
    )?)
}

/// `--serve`: one target in this process until standard input closes.
async fn serve_one(serve: Serve, args: &Args) -> anyhow::Result<()> {
    match serve {
        Serve::Echo => {
            let _telemetry = telemetry("switchyard-echo")?;
            let echo = bind_echo(args, false, None).await?;
            process::announce(echo.local_addr());
            tokio::spawn(echo.run());
            process::until_stdin_closes().await;
        }
        Serve::Up => {
            let _telemetry = telemetry("switchyard")?;
            let mesh = if args.mtls {
                Some(UpMesh::open(data_dir(args)?)?)
            } else {
                None
            };
            let echo = bind_echo(args, args.in_process, mesh.as_ref()).await?;
            let agent = echo.local_addr();
            tokio::spawn(echo.run());
            let tls = match &mesh {
                Some(m) => Some(m.workload("gateway", &["gateway"])?.client()?),
                None => None,
            };
            let registry = Arc::new(Registry::with_settings(
                &RegistryConfig::from_env_value(&format!("echo={agent}"))?,
                Default::default(),
                ResilienceConfig {
                    tls,
                    ..ResilienceConfig::default()
                },
            )?);
            if let Some((agent, error)) = registry.load_cards(Duration::from_secs(10)).await.pop() {
                anyhow::bail!("gateway: no card for {agent}: {error}");
            }
            let gateway = switchyard_gateway::Gateway::bind(Default::default(), registry).await?;
            process::announce_all(&[gateway.local_addr(), agent]);
            let stop = gateway.shutdown_handle();
            let join = tokio::spawn(gateway.run());
            process::until_stdin_closes().await;
            stop.shutdown();
            let _ = join.await;
        }
        Serve::Bare => {
            process::announce(switchyard_bench::bare::start_bare().await?);
            process::until_stdin_closes().await;
        }
        Serve::Gateway => {
            let _telemetry = telemetry("switchyard-gateway")?;
            let agents = args
                .agents
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("--serve gateway needs --agents"))?;
            let registry = Arc::new(Registry::new(&RegistryConfig::from_env_value(agents)?)?);
            // The bare agent serves no card (JSON-RPC calls do not need one).
            for (agent, error) in registry.load_cards(Duration::from_secs(10)).await {
                eprintln!("gateway: no card for {agent}: {error}");
            }
            let gateway = switchyard_gateway::Gateway::bind(Default::default(), registry).await?;
            process::announce(gateway.local_addr());
            let stop = gateway.shutdown_handle();
            let join = tokio::spawn(gateway.run());
            process::until_stdin_closes().await;
            stop.shutdown();
            let _ = join.await;
        }
    }
    Ok(())
}

/// `--data-dir`.
fn data_dir(args: &Args) -> anyhow::Result<&Path> {
    args.data_dir
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--serve echo and up need --data-dir"))
}

/// The echo agent on the durable SQLite store (`fsync`) in `--data-dir`, bound, not yet
/// serving; `in_process` as [`ServeConfig::in_process`]; over mTLS with `mesh`'s certificate
/// for it, trusting the gateway's forwarded principal, as under `up`.
async fn bind_echo(
    args: &Args,
    in_process: bool,
    mesh: Option<&UpMesh>,
) -> anyhow::Result<AgentServer> {
    let (tls, authz) = match mesh {
        Some(m) => (
            Some(m.workload("echo", &["agent", "echo"])?),
            Arc::new(AgentAuthz {
                policy: Arc::default(),
                forwarders: vec![SpiffeId::workload(UP_TRUST_DOMAIN, &["gateway"])?],
            }),
        ),
        None => (None, Arc::default()),
    };
    Ok(AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: StoreConfig::Sqlite {
                path: data_dir(args)?.join("echo.db"),
                durability: Durability::Fsync,
            },
            tls,
            authz,
            in_process,
            ..Default::default()
        },
    )
    .await?)
}

/// `switchyard up`'s default trust domain.
const UP_TRUST_DOMAIN: &str = "switchyard.local";

/// The workload identities `switchyard up` gives its mesh by default: a development CA in
/// `<data dir>/certs` ([`DevCa`]), certificates for `spiffe://switchyard.local/agent/echo`,
/// `…/gateway` and `…/cli`; an empty policy, the gateway as the only trusted forwarder.
struct UpMesh {
    ca: DevCa,
}

impl UpMesh {
    /// Opens (or creates) the CA in `data_dir`.
    fn open(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            ca: DevCa::ensure(&data_dir.join("certs"), UP_TRUST_DOMAIN)?,
        })
    }

    /// The material of workload `name` at `spiffe://switchyard.local/<path>`.
    fn workload(&self, name: &str, path: &[&str]) -> anyhow::Result<MeshTls> {
        let id = SpiffeId::workload(UP_TRUST_DOMAIN, path)?;
        Ok(MeshTls::load(&self.ca.issue(name, &id)?)?)
    }
}

/// Starts `--serve serve` (with `extra` arguments) in a process of its own, pinned to the
/// server CPUs; its process and address.
async fn spawn_server(
    args: &Args,
    serve: &str,
    extra: &[&str],
) -> anyhow::Result<(Child, SocketAddr)> {
    let (child, addrs) = spawn_server_addrs(args, serve, extra).await?;
    Ok((child, addrs[0]))
}

/// [`spawn_server`] for a process that listens on several addresses (`--serve up`).
async fn spawn_server_addrs(
    args: &Args,
    serve: &str,
    extra: &[&str],
) -> anyhow::Result<(Child, Vec<SocketAddr>)> {
    let mut cmd = args.pinning.server(&std::env::current_exe()?);
    cmd.args(["--serve", serve]).args(extra);
    process::spawn_server_addrs(cmd).await
}

/// How a `--serve up` process calls its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpMode {
    /// In process, plain text (`[up] insecure = true`).
    InProcess,
    /// Over loopback TCP, plain text.
    Tcp,
    /// In process, with the identities `up` gives its mesh by default ([`UpMesh`]).
    Mtls,
}

/// A `--serve up` process: its pid, the gateway's address, and a gRPC client of the agent
/// (over mTLS with the CLI's identity for [`UpMode::Mtls`], as `switchyard send` calls it).
struct Up {
    pid: u32,
    gateway: SocketAddr,
    agent: A2aClient,
}

/// Starts `--serve up` as `mode` on its own data directory under `dir`.
async fn spawn_up(
    args: &Args,
    dir: &Path,
    mode: UpMode,
    servers: &mut Vec<Child>,
) -> anyhow::Result<Up> {
    let (name, flags): (_, &[&str]) = match mode {
        UpMode::InProcess => ("up-in-process", &["--in-process"]),
        UpMode::Tcp => ("up-tcp", &[]),
        UpMode::Mtls => ("up-mtls", &["--in-process", "--mtls"]),
    };
    let data = dir.join(name);
    std::fs::create_dir_all(&data)?;
    let data_str = data
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("temp dir not UTF-8"))?;
    let mut extra = vec!["--data-dir", data_str];
    extra.extend(flags);
    let (up, addrs) = spawn_server_addrs(args, "up", &extra).await?;
    let pid = up.id();
    servers.push(up);
    let pid = pid.ok_or_else(|| anyhow::anyhow!("the {name} process is gone"))?;
    let [gateway, agent] = addrs[..] else {
        anyhow::bail!("--serve up listens on {addrs:?}, not a gateway and an agent");
    };
    let agent = if mode == UpMode::Mtls {
        // The process created the CA before it announced its addresses.
        let cli = UpMesh::open(&data)?.workload("cli", &["cli"])?.client()?;
        let client = switchyard::Client::connect_with(&agent.to_string(), Some(&cli)).await?;
        A2aServiceClient::with_interceptor(client.transport(), Versioned)
    } else {
        grpc_client(agent).await?
    };
    Ok(Up {
        pid,
        gateway,
        agent,
    })
}

/// Records `perf record -g` of the gateway process `pid` during one round of JSON-RPC
/// `SendMessage` to `url` and writes the report summaries to `out`.
async fn profile_gateway(
    args: &Args,
    http: &reqwest::Client,
    pid: u32,
    url: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let data = out.with_extension("data");
    let mut perf = args
        .pinning
        .client(Path::new("perf"))
        .args(["record", "-F", "999", "-g", "-o"])
        .arg(&data)
        .args([
            "-p",
            &pid.to_string(),
            "--",
            "sleep",
            &args.seconds.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("running perf (Debian linux-perf): {e}"))?;
    let r = jsonrpc_round(http.clone(), url.to_owned(), args).await;
    anyhow::ensure!(perf.wait().await?.success(), "perf record failed");
    let summary = switchyard_bench::perf_summary(&data, 0.5).await?;
    let text = format!(
        "# perf record -F 999 -g of the gateway process (JSON-RPC SendMessage to the bare agent) \
         during one {}s round: {:.0} RPS, p50 {} µs, concurrency {}, {} errors; {}\n\n\
         {summary}",
        args.seconds,
        r.rps,
        r.p50_us,
        args.concurrency,
        r.errors,
        args.pinning.describe(),
    );
    std::fs::write(out, text)?;
    eprintln!(
        "gateway profile written to {} ({:.0} RPS in the profiled round)",
        out.display(),
        r.rps
    );
    Ok(())
}

/// `--calls n` or `--chunks n`: the bare agent and a gateway in front of it (as in the rounds,
/// for either target, so that both runs have the same setup; the gateway binary's telemetry
/// installed in the process), then `work` against `target`: `n` sequential `SendMessage`
/// calls, or one stream of `n` chunks.
///
/// # Errors
/// Setup fails, or any call fails or does not complete its task (with the call's number and
/// what came back), or the stream misses events.
async fn make_calls(target: CallTarget, work: Work) -> anyhow::Result<()> {
    let _telemetry = telemetry("switchyard-gateway")?;
    let bare_addr = switchyard_bench::bare::start_bare().await?;
    let registry = Arc::new(Registry::new(&RegistryConfig::from_env_value(&format!(
        "bare={bare_addr}"
    ))?)?);
    // The bare agent serves no card; JSON-RPC calls do not need one.
    registry.load_cards(Duration::from_secs(5)).await;
    let gateway = switchyard_gateway::Gateway::bind(Default::default(), registry).await?;
    let gateway_url = gateway.url();
    let url = format!("{gateway_url}/agents/bare");
    tokio::spawn(gateway.run());
    let http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .build()?;
    let mut grpc = grpc_client(bare_addr).await?;
    switchyard_bench::callgrind::counting_starts();
    let n = match work {
        Work::Calls(n) => n,
        Work::Chunks(chunks) => {
            return stream_events(&http, &gateway_url, &grpc, target, chunks).await;
        }
    };
    for i in 0..n {
        match target {
            CallTarget::Gateway => {
                let r = http
                    .post(&url)
                    .header("A2A-Version", "1.0")
                    .header("Content-Type", "application/json")
                    .body(jsonrpc_body(i))
                    .send()
                    .await?;
                let status = r.status();
                let text = r.text().await?;
                anyhow::ensure!(
                    status.is_success() && text.contains("TASK_STATE_COMPLETED"),
                    "call {i} through the gateway: HTTP {status}: {text}"
                );
            }
            CallTarget::Direct => {
                let req = SendMessageRequest {
                    message: Some(Message::user_text(TEXT)),
                    ..Default::default()
                };
                let r = grpc.send_message(req).await?.into_inner().payload;
                anyhow::ensure!(
                    matches!(&r, Some(send_message_response::Payload::Task(t))
                        if t.state() == TaskState::Completed),
                    "direct call {i}: {r:?}"
                );
            }
        }
    }
    Ok(())
}

/// `--chunks n`: one stream of `chunks` chunks from the bare agent, through the gateway's SSE
/// (`Accept: text/event-stream`) or over direct gRPC.
///
/// # Errors
/// The stream fails or misses events.
async fn stream_events(
    http: &reqwest::Client,
    gateway_url: &str,
    grpc: &A2aClient,
    target: CallTarget,
    chunks: u64,
) -> anyhow::Result<()> {
    let (_, events) = match target {
        CallTarget::Gateway => sse_rate(http, gateway_url, "bare", chunks, true).await?,
        CallTarget::Direct => grpc_rate(grpc, chunks).await?,
    };
    // The bare agent's stream: two events per chunk and four more.
    anyhow::ensure!(
        events == 2 * chunks + 4,
        "a stream of {chunks} chunks carried {events} events"
    );
    Ok(())
}

/// `--instructions n`: instructions per call, gateway then direct, from callgrind runs of this
/// binary with `--calls n` and `--calls 2n`.
fn print_instructions(n: u64) -> anyhow::Result<()> {
    println!(
        "| SendMessage to the bare agent, {n} and {} sequential calls | instructions per call |",
        2 * n
    );
    println!("|---|---|");
    for (name, target) in [
        (
            "A2A JSON-RPC through the gateway (client, gateway, agent)",
            "gateway",
        ),
        ("direct gRPC (client, agent)", "direct"),
    ] {
        let per_call =
            switchyard_bench::callgrind::per_call(&["--target".to_owned(), target.to_owned()], n)?;
        println!("| {name} | {per_call:.0} |");
    }
    let chunks = 4 * n;
    println!();
    println!(
        "| one stream of the bare agent, {chunks} and {} chunks (2 events each) | instructions \
         per event |",
        2 * chunks
    );
    println!("|---|---|");
    for (name, target) in [
        (
            "SSE (`Accept: text/event-stream`) through the gateway (client, gateway, agent)",
            "gateway",
        ),
        ("direct gRPC (client, agent)", "direct"),
    ] {
        let run = ["--target".to_owned(), target.to_owned()];
        let per_chunk = switchyard_bench::callgrind::per_unit(&run, "--chunks", chunks)?;
        println!("| {name} | {:.0} |", per_chunk / 2.0);
    }
    Ok(())
}

/// The allocator of the Switchyard binaries this benchmark stands for (mimalloc; see
/// `bench/RESULTS.md` §10, "mimalloc"), so that every peer served from this binary runs on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    switchyard::install_crypto_provider();
    let work = Work::from_flags(args.calls, args.chunks);
    if args.serve.is_none() && work.is_none() && args.instructions.is_none() {
        // Before the runtime starts its threads: its worker count follows the affinity.
        args.pinning.pin_self()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if let Some(serve) = args.serve {
            return serve_one(serve, &args).await;
        }
        if let Some(work) = work {
            return make_calls(args.target, work).await;
        }
        if let Some(n) = args.instructions {
            return tokio::task::spawn_blocking(move || print_instructions(n)).await?;
        }
        let dir = tempfile::tempdir()?;
        let mut servers = Vec::new();
        let result = run(&args, dir.path(), &mut servers).await;
        for s in &mut servers {
            process::stop_server(s).await;
        }
        result
    })
}

/// The rounds, the stream rates, the profile and wrk; the server processes it starts go to
/// `servers` (stopped by the caller).
async fn run(args: &Args, dir: &Path, servers: &mut Vec<Child>) -> anyhow::Result<()> {
    // First: it fails at once when not run from the checkout's root.
    let (_python, python_url) = start_python(args).await?;
    let data_dir = dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("temp dir not UTF-8"))?;
    let (echo, echo_addr) = spawn_server(args, "echo", &["--data-dir", data_dir]).await?;
    let echo_pid = echo.id();
    servers.push(echo);
    let (bare, bare_addr) = spawn_server(args, "bare", &[]).await?;
    let bare_pid = bare.id();
    servers.push(bare);
    let agents = format!("echo={echo_addr};bare={bare_addr}");
    let (gateway, gateway_addr) = spawn_server(args, "gateway", &["--agents", &agents]).await?;
    let gateway_pid = gateway.id();
    servers.push(gateway);
    let gateway_url = format!("http://{gateway_addr}");
    let up = spawn_up(args, dir, UpMode::InProcess, servers).await?;
    let tcp = spawn_up(args, dir, UpMode::Tcp, servers).await?;
    let mtls = spawn_up(args, dir, UpMode::Mtls, servers).await?;
    eprintln!("{}", args.pinning.describe());

    let grpc = grpc_client(echo_addr).await?;
    let grpc_bare = grpc_client(bare_addr).await?;
    let http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let via_gateway = format!("{gateway_url}/agents/echo");
    let via_gateway_bare = format!("{gateway_url}/agents/bare");
    let via_up = format!("http://{}/agents/echo", up.gateway);
    let via_up_tcp = format!("http://{}/agents/echo", tcp.gateway);
    let via_up_mtls = format!("http://{}/agents/echo", mtls.gateway);

    let warm = Args {
        seconds: 1,
        ..args.clone()
    };
    grpc_round(grpc.clone(), &warm).await;
    grpc_round(grpc_bare.clone(), &warm).await;
    jsonrpc_round(http.clone(), via_gateway.clone(), &warm).await;
    jsonrpc_round(http.clone(), via_gateway_bare.clone(), &warm).await;
    jsonrpc_round(http.clone(), python_url.clone(), &warm).await;
    grpc_round(up.agent.clone(), &warm).await;
    jsonrpc_round(http.clone(), via_up.clone(), &warm).await;
    jsonrpc_round(http.clone(), via_up_tcp.clone(), &warm).await;
    grpc_round(mtls.agent.clone(), &warm).await;
    jsonrpc_round(http.clone(), via_up_mtls.clone(), &warm).await;

    let gone = |name: &str| anyhow::anyhow!("the {name} process is gone");
    let echo_pid = echo_pid.ok_or_else(|| gone("echo agent"))?;
    let bare_pid = bare_pid.ok_or_else(|| gone("bare agent"))?;
    let gateway_pid = gateway_pid.ok_or_else(|| gone("gateway"))?;
    let mut r: [Vec<Round>; 5] = Default::default();
    // CPU per call of [agent, gateway] in the rounds of targets 0–3.
    let mut cpu: [Vec<[f64; 2]>; 4] = Default::default();
    // Agent and gateway in one process: direct gRPC to the agent, through the gateway calling
    // it in process, through the gateway calling it over TCP; then over mTLS, direct gRPC
    // and through the gateway calling it in process; the rounds and the process's CPU per
    // call.
    let mut up_rounds: [Vec<Round>; 5] = Default::default();
    let mut up_cpu: [Vec<f64>; 5] = Default::default();
    for i in 0..args.rounds {
        for (t, agent_pid, round) in [
            (0, echo_pid, grpc_round(grpc.clone(), args).boxed()),
            (
                1,
                echo_pid,
                jsonrpc_round(http.clone(), via_gateway.clone(), args).boxed(),
            ),
            (2, bare_pid, grpc_round(grpc_bare.clone(), args).boxed()),
            (
                3,
                bare_pid,
                jsonrpc_round(http.clone(), via_gateway_bare.clone(), args).boxed(),
            ),
        ] {
            let (round, per_call) = process::with_cpu([agent_pid, gateway_pid], round).await?;
            r[t].push(round);
            cpu[t].push(per_call);
        }
        r[4].push(jsonrpc_round(http.clone(), python_url.clone(), args).await);
        for (t, pid, round) in [
            (0, up.pid, grpc_round(up.agent.clone(), args).boxed()),
            (
                1,
                up.pid,
                jsonrpc_round(http.clone(), via_up.clone(), args).boxed(),
            ),
            (
                2,
                tcp.pid,
                jsonrpc_round(http.clone(), via_up_tcp.clone(), args).boxed(),
            ),
            (3, mtls.pid, grpc_round(mtls.agent.clone(), args).boxed()),
            (
                4,
                mtls.pid,
                jsonrpc_round(http.clone(), via_up_mtls.clone(), args).boxed(),
            ),
        ] {
            let (round, [per_call]) = process::with_cpu([pid], round).await?;
            up_rounds[t].push(round);
            up_cpu[t].push(per_call);
        }
        eprintln!(
            "round {}: direct {:?} | gateway {:?} | direct bare {:?} | gateway bare {:?} | a2a-sdk {:?} | one process: direct {:?}, gateway in process {:?}, gateway over TCP {:?}; mTLS: direct {:?}, gateway in process {:?}",
            i + 1,
            r[0][i],
            r[1][i],
            r[2][i],
            r[3][i],
            r[4][i],
            up_rounds[0][i],
            up_rounds[1][i],
            up_rounds[2][i],
            up_rounds[3][i],
            up_rounds[4][i]
        );
    }
    let [
        (dr, d50, d99),
        (gr, g50, g99),
        (br, b50, b99),
        (gbr, gb50, gb99),
        (pr, p50, p99),
    ] = [0, 1, 2, 3, 4].map(|i| summarize(&r[i]));
    let errors: u64 = r.iter().flatten().map(|x| x.errors).sum();
    println!(
        "| target (SendMessage, concurrency {}) | RPS (median) | p50 µs | p99 µs |",
        args.concurrency
    );
    println!("|---|---|---|---|");
    println!("| direct gRPC to the echo agent | {dr:.0} | {d50:.0} | {d99:.0} |");
    println!(
        "| A2A JSON-RPC through the gateway to the echo agent | {gr:.0} | {g50:.0} | {g99:.0} |"
    );
    println!("| direct gRPC to the bare tonic agent | {br:.0} | {b50:.0} | {b99:.0} |");
    println!(
        "| A2A JSON-RPC through the gateway to the bare tonic agent | {gbr:.0} | {gb50:.0} | {gb99:.0} |"
    );
    println!("| a2a-sdk 1.3.0 Python server, JSON-RPC | {pr:.0} | {p50:.0} | {p99:.0} |");
    println!();
    println!(
        "gateway / direct gRPC, echo agent: {:.2}x (target >= 0.70x)",
        gr / dr
    );
    println!(
        "gateway / direct gRPC, bare agent: {:.2}x (target >= 0.70x)",
        gbr / br
    );
    println!(
        "gateway (echo) / a2a-sdk: {:.0}x; gateway (bare) / a2a-sdk: {:.0}x (target >= 100x); errors: {errors}",
        gr / pr,
        gbr / pr
    );
    println!();
    println!("| CPU per call (medians of the rounds) | agent, µs | gateway, µs |");
    println!("|---|---|---|");
    let [d, g, db, gb] = cpu.map(|rounds| {
        let of = |k: usize| median(&mut rounds.iter().map(|c| c[k]).collect::<Vec<_>>());
        [of(0), of(1)]
    });
    println!("| direct gRPC to the echo agent | {:.1} | — |", d[0]);
    println!(
        "| A2A JSON-RPC through the gateway to the echo agent | {:.1} | {:.1} |",
        g[0], g[1]
    );
    println!("| direct gRPC to the bare tonic agent | {:.1} | — |", db[0]);
    println!(
        "| A2A JSON-RPC through the gateway to the bare tonic agent | {:.1} | {:.1} |",
        gb[0], gb[1]
    );
    println!(
        "with agent and gateway on one CPU these predict gateway / direct gRPC of {:.2}x (echo), {:.2}x (bare)",
        d[0] / (g[0] + g[1]),
        db[0] / (gb[0] + gb[1])
    );

    println!();
    println!(
        "| the echo agent and the gateway in one process (`switchyard up`), concurrency {} | RPS (median) | p50 µs | p99 µs | the process's CPU per call, µs |",
        args.concurrency
    );
    println!("|---|---|---|---|---|");
    let mut up_rps = [0.0; 5];
    for (t, what) in [
        "plain text: direct gRPC to the agent",
        "plain text: A2A JSON-RPC through the gateway, which calls the agent in process (as `up`)",
        "plain text: A2A JSON-RPC through the gateway, which calls the agent over loopback TCP",
        "mTLS (`up`'s default): direct gRPC to the agent with the CLI's identity",
        "mTLS (`up`'s default): A2A JSON-RPC through the gateway, which calls the agent in process with its identity",
    ]
    .into_iter()
    .enumerate()
    {
        let (rps, p50, p99) = summarize(&up_rounds[t]);
        up_rps[t] = rps;
        let cpu = median(&mut up_cpu[t]);
        println!("| {what} | {rps:.0} | {p50:.0} | {p99:.0} | {cpu:.1} |");
    }
    let up_errors: u64 = up_rounds.iter().flatten().map(|x| x.errors).sum();
    println!(
        "one process: gateway / direct gRPC {:.2}x in process, {:.2}x over TCP, {:.2}x with mTLS (in process; target >= 0.70x); in process / over TCP {:.2}x; errors: {up_errors}",
        up_rps[1] / up_rps[0],
        up_rps[2] / up_rps[0],
        up_rps[4] / up_rps[3],
        up_rps[1] / up_rps[2]
    );

    println!();
    println!(
        "| one stream of {} chunks | SSE through the gateway (hyper), events/s | SSE, `Accept: text/event-stream`, events/s | direct gRPC, events/s | ratios | CPU per event with `Accept`: agent / gateway, µs |",
        args.stream_events
    );
    println!("|---|---|---|---|---|---|");
    // Each stream on a connection of its own: the listener serves an `Accept:
    // text/event-stream` request itself only as the first request of a connection.
    let stream_http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .build()?;
    for (agent, client, agent_pid) in [("echo", &grpc, echo_pid), ("bare", &grpc_bare, bare_pid)] {
        let (mut sse, mut accept, mut direct, mut events) = (Vec::new(), Vec::new(), Vec::new(), 0);
        let (mut agent_cpu, mut gateway_cpu) = (Vec::new(), Vec::new());
        for _ in 0..args.stream_rounds {
            let n = args.stream_events;
            let (s, sn) = sse_rate(&stream_http, &gateway_url, agent, n, false).await?;
            let cpu = process::cpu_time;
            let before = (cpu(agent_pid)?, cpu(gateway_pid)?);
            let (a, an) = sse_rate(&stream_http, &gateway_url, agent, n, true).await?;
            let after = (cpu(agent_pid)?, cpu(gateway_pid)?);
            let per_event = |from: Duration, to: Duration| {
                to.saturating_sub(from).as_secs_f64() * 1e6 / an.max(1) as f64
            };
            agent_cpu.push(per_event(before.0, after.0));
            gateway_cpu.push(per_event(before.1, after.1));
            let (d, dn) = grpc_rate(client, n).await?;
            anyhow::ensure!(
                sn == dn && an == dn,
                "SSE carried {sn} and {an} events, gRPC {dn}"
            );
            eprintln!(
                "{agent} stream: {dn} events, SSE {s:.0}/s, SSE with Accept {a:.0}/s, gRPC {d:.0}/s"
            );
            sse.push(s);
            accept.push(a);
            direct.push(d);
            events = dn;
        }
        let (s, a, d) = (median(&mut sse), median(&mut accept), median(&mut direct));
        println!(
            "| {agent} agent, {events} events | {s:.0} | {a:.0} | {d:.0} | {:.2}x, {:.2}x | {:.2} / {:.2} |",
            s / d,
            a / d,
            median(&mut agent_cpu),
            median(&mut gateway_cpu)
        );
    }

    if let Some(out) = &args.profile {
        profile_gateway(args, &http, gateway_pid, &via_gateway_bare, out).await?;
    }

    if let Some(wrk) = if args.no_wrk { None } else { wrk().await } {
        let script = dir.join("send.lua");
        println!();
        println!(
            "| wrk -t1 -c{} -d{}s, JSON-RPC SendMessage | RPS (median of {} rounds) | non-2xx |",
            args.concurrency, args.seconds, args.rounds
        );
        println!("|---|---|---|");
        for (name, url) in [
            ("gateway → echo agent", &via_gateway),
            ("gateway → bare agent", &via_gateway_bare),
            ("a2a-sdk server", &python_url),
        ] {
            let (mut rps, mut bad) = (Vec::new(), 0);
            for _ in 0..args.rounds {
                std::fs::write(
                    &script,
                    WRK_SCRIPT.replace("RUN", &switchyard::task::new_id()),
                )?;
                let (r, b) = wrk_round(&wrk, &script, url, args).await?;
                eprintln!("wrk {name}: {r:.0} RPS, {b} non-2xx");
                rps.push(r);
                bad += b;
            }
            println!("| {name} | {:.0} | {bad} |", median(&mut rps));
        }
    }
    Ok(())
}
