//! Unary `A2AService/SendMessage` and one stream's events/s, to the echo agent through the
//! Switchyard runtime (durable SQLite store; with `--postgres`, also the PostgreSQL store) versus
//! a bare tonic server that answers the same requests with the same tasks and events, from the
//! same client, at the same concurrency, in interleaved rounds.
//!
//! `cargo run --release -p switchyard-bench --bin runtime_vs_tonic -- --help`

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

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
};
use switchyard_bench::{Round, bare::start_bare, median, round, summarize};
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

/// One measured server.
struct Target {
    label: String,
    client: A2aClient,
    unary: Vec<Round>,
    stream: Vec<f64>,
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

async fn client(addr: SocketAddr) -> anyhow::Result<A2aClient> {
    // The runtime refuses calls that do not name the A2A version, so every target gets it.
    Ok(A2aServiceClient::with_interceptor(
        Transport::new(channel(addr).await?),
        Versioned,
    ))
}

/// Warms up, runs the interleaved rounds and prints the table.
async fn measure(args: &Args, targets: Vec<(String, SocketAddr)>) -> anyhow::Result<()> {
    let mut targets: Vec<Target> = {
        let mut out = Vec::new();
        for (label, addr) in targets {
            out.push(Target {
                label,
                client: client(addr).await?,
                unary: Vec::new(),
                stream: Vec::new(),
            });
        }
        out
    };
    // Warm up every target (connections, allocator, store caches).
    let warm = Args {
        seconds: 1,
        ..Args::parse()
    };
    for t in &targets {
        run_round(t.client.clone(), &warm).await;
    }

    let n = targets.len();
    for i in 0..args.rounds {
        // Rotate which goes first, so drift in machine load hits every target alike.
        for k in 0..n {
            let t = &mut targets[(i + k) % n];
            t.unary.push(run_round(t.client.clone(), args).await);
            if args.stream_chunks > 0 {
                t.stream
                    .push(stream_rate(&t.client, args.stream_chunks).await?);
            }
        }
        let line: Vec<String> = targets
            .iter()
            .map(|t| {
                format!(
                    "{}: {:?} stream {:.0} ev/s",
                    t.label,
                    t.unary[i],
                    t.stream.get(i).copied().unwrap_or(0.0)
                )
            })
            .collect();
        eprintln!("round {}: {}", i + 1, line.join(" | "));
    }
    let bare_rps = summarize(&targets[n - 1].unary).0;
    let bare_stream = median(&mut targets[n - 1].stream.clone());
    println!(
        "| target | RPS (median) | p50 µs | p99 µs | vs bare | one stream, events/s | vs bare |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut errors = 0;
    for t in &mut targets {
        let (rps, p50, p99) = summarize(&t.unary);
        let ev = median(&mut t.stream);
        errors += t.unary.iter().map(|r| r.errors).sum::<u64>();
        println!(
            "| {} | {rps:.0} | {p50:.0} | {p99:.0} | {:.2}x | {ev:.0} | {:.2}x |",
            t.label,
            rps / bare_rps,
            if bare_stream > 0.0 {
                ev / bare_stream
            } else {
                0.0
            }
        );
    }
    println!();
    println!("errors: {errors}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let durability = match args.durability.as_str() {
        "fsync" => Some(Durability::Fsync),
        "os" => Some(Durability::Os),
        "memory" => None,
        other => anyhow::bail!("--durability must be fsync, os or memory, not {other:?}"),
    };
    let mut targets = Vec::new();
    let sqlite = match durability {
        Some(durability) => StoreConfig::Sqlite {
            path: dir.path().join("bench.db"),
            durability,
        },
        None => StoreConfig::Memory,
    };
    let label = match durability {
        Some(_) => format!(
            "Switchyard runtime + echo, SQLite durability={}",
            args.durability
        ),
        None => "Switchyard runtime + echo, in memory".to_owned(),
    };
    targets.push((label, serve(sqlite).await?));
    let schema = format!("bench_{}", std::process::id());
    if let Some(url) = &args.postgres {
        let store = StoreConfig::Postgres {
            url: DatabaseUrl::new(url.clone()),
            schema: Some(schema.clone()),
            durability: durability.unwrap_or_default(),
        };
        targets.push((
            format!(
                "Switchyard runtime + echo, PostgreSQL durability={}",
                args.durability
            ),
            serve(store).await?,
        ));
    }
    targets.push((
        "bare tonic server, same answers".to_owned(),
        start_bare().await?,
    ));
    // The schema goes whatever happens to the measurement.
    let result = measure(&args, targets).await;
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
