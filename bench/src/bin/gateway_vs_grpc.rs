//! A2A JSON-RPC `SendMessage` through the Switchyard gateway, versus the same call as direct
//! gRPC to the agent, versus the official a2a-sdk Python reference server (JSON-RPC, same echo
//! behaviour), at the same concurrency, in interleaved rounds; then the events per second of one
//! SSE stream through the gateway, versus the same stream over direct gRPC.
//!
//! `cargo run --release -p switchyard-bench --bin gateway_vs_grpc -- --help`

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use futures::StreamExt as _;
use switchyard::{
    AgentServer, Registry, RegistryConfig, ServeConfig, StoreConfig,
    client::{A2aClient, Transport, Versioned},
    pb::a2a::{
        Message, SendMessageRequest, TaskState, a2a_service_client::A2aServiceClient,
        send_message_response,
    },
    store::Durability,
    task::json_to_value,
};
use switchyard_bench::{Round, round, summarize};
use tokio::io::AsyncBufReadExt as _;
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
    /// Python with a2a-sdk installed (default: .venv/bin/python, or $SWITCHYARD_PYTHON).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Events of the SSE stream measured.
    #[arg(long, default_value_t = 5_000)]
    stream_events: u64,
}

const TEXT: &str = "benchmark payload: the quick brown fox jumps over the lazy dog";

fn jsonrpc_body(n: u64) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": n, "method": "SendMessage",
        "params": {"message": {"messageId": format!("m{n}"), "role": "ROLE_USER",
            "parts": [{"text": TEXT}]}}
    })
    .to_string()
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
                let Ok(r) = http
                    .post(&url)
                    .header("A2A-Version", "1.0")
                    .header("Content-Type", "application/json")
                    .body(jsonrpc_body(n))
                    .send()
                    .await
                else {
                    return false;
                };
                r.text()
                    .await
                    .is_ok_and(|t| t.contains("TASK_STATE_COMPLETED"))
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

/// Starts the a2a-sdk reference server; its JSON-RPC URL.
async fn start_python(args: &Args) -> anyhow::Result<(tokio::process::Child, String)> {
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("SWITCHYARD_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".venv/bin/python"));
    let mut child = tokio::process::Command::new(&python)
        .arg("bench/python/sdk_jsonrpc_echo.py")
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

/// Events per second of one stream of `n` chunks: through the gateway (SSE) and direct (gRPC).
async fn stream_rates(
    http: &reqwest::Client,
    gateway: &str,
    grpc: &A2aClient,
    n: u64,
) -> anyhow::Result<(f64, f64, u64)> {
    let metadata = |n: u64| {
        let mut m = Message::user_text("stream");
        m.metadata = Some(pbjson_types::Struct {
            fields: [("chunks".to_owned(), json_to_value(n.into()))].into(),
        });
        m
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage",
        "params": {"message": serde_json::to_value(metadata(n))?}
    });
    let started = Instant::now();
    let response = http
        .post(format!("{gateway}/agents/echo"))
        .header("A2A-Version", "1.0")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let mut sse = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut events = 0u64;
    while let Some(e) = sse.next().await {
        e?;
        events += 1;
    }
    let sse_rate = events as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut stream = grpc
        .clone()
        .send_streaming_message(SendMessageRequest {
            message: Some(metadata(n)),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut grpc_events = 0u64;
    while let Some(e) = stream.next().await {
        e?;
        grpc_events += 1;
    }
    let grpc_rate = grpc_events as f64 / started.elapsed().as_secs_f64();
    Ok((sse_rate, grpc_rate, events))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let echo = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: StoreConfig::Sqlite {
                path: dir.path().join("echo.db"),
                durability: Durability::Fsync,
            },
            ..Default::default()
        },
    )
    .await?;
    let echo_addr = echo.local_addr();
    tokio::spawn(echo.run());
    let registry = Arc::new(Registry::new(&RegistryConfig::from_env_value(&format!(
        "echo={echo_addr}"
    ))?)?);
    registry.load_cards(Duration::from_secs(5)).await;
    let gateway = switchyard_gateway::Gateway::bind(Default::default(), registry).await?;
    let gateway_url = gateway.url();
    tokio::spawn(gateway.run());
    let (_python, python_url) = start_python(&args).await?;

    let grpc = A2aServiceClient::with_interceptor(
        Transport::new(
            Channel::from_shared(format!("http://{echo_addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        ),
        Versioned,
    );
    let http = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let via_gateway = format!("{gateway_url}/agents/echo");

    let warm = Args {
        seconds: 1,
        ..args.clone()
    };
    grpc_round(grpc.clone(), &warm).await;
    jsonrpc_round(http.clone(), via_gateway.clone(), &warm).await;
    jsonrpc_round(http.clone(), python_url.clone(), &warm).await;

    let (mut g, mut d, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.rounds {
        d.push(grpc_round(grpc.clone(), &args).await);
        g.push(jsonrpc_round(http.clone(), via_gateway.clone(), &args).await);
        p.push(jsonrpc_round(http.clone(), python_url.clone(), &args).await);
        eprintln!(
            "round {}: direct {:?} | gateway {:?} | a2a-sdk {:?}",
            i + 1,
            d[i],
            g[i],
            p[i]
        );
    }
    let (dr, d50, d99) = summarize(&d);
    let (gr, g50, g99) = summarize(&g);
    let (pr, p50, p99) = summarize(&p);
    let errors: u64 = d.iter().chain(&g).chain(&p).map(|r| r.errors).sum();
    println!(
        "| target (SendMessage, concurrency {}) | RPS (median) | p50 µs | p99 µs |",
        args.concurrency
    );
    println!("|---|---|---|---|");
    println!("| direct gRPC to the echo agent | {dr:.0} | {d50:.0} | {d99:.0} |");
    println!("| A2A JSON-RPC through the Switchyard gateway | {gr:.0} | {g50:.0} | {g99:.0} |");
    println!("| a2a-sdk 1.3.0 Python server, JSON-RPC | {pr:.0} | {p50:.0} | {p99:.0} |");
    println!();
    println!("gateway / direct gRPC: {:.2}x (target >= 0.50x)", gr / dr);
    println!(
        "gateway / a2a-sdk: {:.0}x (target >= 100x); errors: {errors}",
        gr / pr
    );

    let (sse, direct, events) =
        stream_rates(&http, &gateway_url, &grpc, args.stream_events).await?;
    println!();
    println!(
        "one stream of {events} events: SSE through the gateway {sse:.0} events/s; direct gRPC {direct:.0} events/s"
    );
    Ok(())
}
