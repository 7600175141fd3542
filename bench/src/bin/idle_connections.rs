//! Memory per idle connection of the gateway: N open SSE subscriptions, then N open WebSocket
//! sessions, to a `switchyard-gateway` process in front of a `switchyard-echo` process; the
//! gateway's resident set (`VmRSS`) is read before and after, and the difference divided by N.
//!
//! Needs release builds of both binaries:
//! `cargo build --release -p switchyard-echo -p switchyard-gateway`, then
//! `cargo run --release -p switchyard-bench --bin idle_connections -- --connections 10000`.

use std::{process::Stdio, time::Duration};

use clap::Parser;
use futures::{StreamExt as _, stream};
use tokio::{io::AsyncBufReadExt as _, process::Child, task::JoinHandle};

#[derive(Debug, Parser)]
#[command(about = "Gateway memory per idle SSE stream and per idle WebSocket session")]
struct Args {
    /// Connections of each kind.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connections opened at once while ramping up.
    #[arg(long, default_value_t = 100)]
    ramp: usize,
    /// Measure only `sse`, `sse-no-accept`, `sse-h2` or `ws` (default: all four).
    #[arg(long)]
    only: Option<String>,
    /// SSE over HTTP/2 (`h2c`, prior knowledge): subscriptions per HTTP/2 connection.
    #[arg(long, default_value_t = 1000)]
    h2_streams_per_connection: usize,
    /// Seconds to hold the connections open after the measurement (time for a heap profiler
    /// attached to the gateway, e.g. `vgdb detailed_snapshot` under valgrind massif).
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Directory of the release binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: String,
}

/// Starts a binary and returns it with the value after `marker` on its first matching line.
async fn start(path: &str, args: &[&str], marker: &str) -> anyhow::Result<(Child, String)> {
    let mut child = tokio::process::Command::new(path)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("{path}: {e} (build it with --release first)"))?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    while let Some(line) =
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??
    {
        if let Some(v) = line.split(marker).nth(1) {
            return Ok((child, v.trim().to_owned()));
        }
    }
    anyhow::bail!("{path} exited before printing {marker:?}")
}

/// Starts a gateway in front of the echo agent and a task that runs until the benchmark ends
/// (every subscription waits on it): the process, its URL and the task id.
async fn start_gateway(
    dir: &str,
    echo_addr: &str,
    args: &Args,
    http: &reqwest::Client,
) -> anyhow::Result<(Child, String, String)> {
    let limit = (args.connections + 1000).to_string();
    let agents = format!("echo={echo_addr}");
    let (gateway, url) = start(
        &format!("{dir}/switchyard-gateway"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--agents",
            &agents,
            "--max-concurrent-requests",
            &limit,
            "--max-connections",
            &limit,
        ],
        "listening on",
    )
    .await?;
    let start_task = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {"message": {"messageId": switchyard::task::new_id(), "role": "ROLE_USER",
            "parts": [{"text": "idle"}], "metadata": {"delay_ms": 3_600_000}},
            "configuration": {"returnImmediately": true}}
    });
    let answer: serde_json::Value = serde_json::from_slice(
        &http
            .post(format!("{url}/agents/echo"))
            .header("A2A-Version", "1.0")
            .header("Content-Type", "application/json")
            .body(start_task.to_string())
            .send()
            .await?
            .bytes()
            .await?,
    )?;
    let task = answer["result"]["task"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no task: {answer}"))?
        .to_owned();
    Ok((gateway, url, task))
}

/// Stops a process with SIGTERM (a clean drain) and waits up to 60 s for it.
async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    }
}

/// Resident set of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// Opens one SSE subscription and keeps reading it (keep-alives) until aborted. With
/// `accept_events`, the request carries `Accept: text/event-stream`, as a browser's
/// `EventSource` and the A2A SDKs send it (an HTTP/1.1 gateway then serves the stream on the
/// socket, without hyper's buffers).
async fn sse(
    http: reqwest::Client,
    url: String,
    task: String,
    accept_events: bool,
) -> anyhow::Result<JoinHandle<()>> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": task}});
    let mut request = http
        .post(url)
        .header("A2A-Version", "1.0")
        .header("Content-Type", "application/json");
    if accept_events {
        request = request.header("Accept", "text/event-stream");
    }
    let response = request.body(body.to_string()).send().await?;
    anyhow::ensure!(response.status() == 200, "subscribe: {}", response.status());
    let mut bytes = response.bytes_stream();
    // The first event (the task snapshot) proves the stream is open end to end.
    bytes
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
    Ok(tokio::spawn(async move {
        while bytes.next().await.is_some() {}
    }))
}

/// Opens one WebSocket session and keeps reading it (answering pings) until aborted.
async fn ws(url: String) -> anyhow::Result<JoinHandle<()>> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (_sink, mut read) = socket.split();
    Ok(tokio::spawn(async move {
        let _keep = _sink;
        while read.next().await.is_some() {}
    }))
}

async fn measure<F, Fut>(name: &str, pid: u32, args: &Args, open: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<JoinHandle<()>>>,
{
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let handles: Vec<JoinHandle<()>> = stream::iter(0..args.connections)
        .map(open)
        .buffer_unordered(args.ramp)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / args.connections as f64;
    println!(
        "| idle {name} | {} | {:.1} MiB → {:.1} MiB | {:.1} KiB |",
        args.connections,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        per / 1024.0
    );
    if args.hold_secs > 0 {
        eprintln!(
            "holding {} connections for {} s",
            args.connections, args.hold_secs
        );
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    }
    for h in handles {
        h.abort();
    }
    Ok(per)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    switchyard::install_crypto_provider();
    let dir = &args.bin_dir;
    let (_echo, echo_addr) = start(
        &format!("{dir}/switchyard-echo"),
        &["--listen", "127.0.0.1:0", "--memory"],
        "listening on",
    )
    .await?;
    println!("| connection | count | gateway RSS before → after | per connection |");
    println!("|---|---|---|---|");
    let http = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()?;
    // A fresh gateway per kind, so neither measures memory the other freed.
    let (mut per_sse, mut per_no_accept) = (f64::NAN, f64::NAN);
    for (kind, name, accept_events, per) in [
        ("sse", "SSE subscription", true, &mut per_sse),
        (
            "sse-no-accept",
            "SSE subscription without `Accept: text/event-stream` (hyper)",
            false,
            &mut per_no_accept,
        ),
    ] {
        if args.only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let (gateway, url, task) = start_gateway(dir, &echo_addr, &args, &http).await?;
        let sse_url = format!("{url}/agents/echo");
        *per = measure(name, gateway.id().expect("running"), &args, |_| {
            sse(http.clone(), sse_url.clone(), task.clone(), accept_events)
        })
        .await?;
        stop(gateway).await;
    }
    let mut per_h2 = f64::NAN;
    if args.only.as_deref().is_none_or(|o| o == "sse-h2") {
        let (gateway, url, task) = start_gateway(dir, &echo_addr, &args, &http).await?;
        let sse_url = format!("{url}/agents/echo");
        let per_connection = args.h2_streams_per_connection.max(1);
        let clients = (0..args.connections.div_ceil(per_connection))
            .map(|_| reqwest::Client::builder().http2_prior_knowledge().build())
            .collect::<Result<Vec<_>, _>>()?;
        let name = format!("SSE subscription over HTTP/2 ({per_connection} per connection)");
        per_h2 = measure(&name, gateway.id().expect("running"), &args, |i| {
            sse(
                clients[i / per_connection].clone(),
                sse_url.clone(),
                task.clone(),
                true,
            )
        })
        .await?;
        stop(gateway).await;
    }
    let mut per_ws = f64::NAN;
    if args.only.as_deref().is_none_or(|o| o == "ws") {
        let (gateway, url, _) = start_gateway(dir, &echo_addr, &args, &http).await?;
        let ws_url = format!(
            "{}/agents/echo/ws?A2A-Version=1.0",
            url.replacen("http", "ws", 1)
        );
        per_ws = measure(
            "WebSocket session",
            gateway.id().expect("running"),
            &args,
            |_| ws(ws_url.clone()),
        )
        .await?;
        stop(gateway).await;
    }
    println!();
    println!(
        "targets: SSE {:.1} KiB over HTTP/1.1 ({:.1} KiB without the Accept header), {:.1} KiB over HTTP/2 (<= 16 KiB), WebSocket {:.1} KiB (<= 16 KiB)",
        per_sse / 1024.0,
        per_no_accept / 1024.0,
        per_h2 / 1024.0,
        per_ws / 1024.0
    );
    Ok(())
}
