//! Request/reply round trips per second over each message bus (a bus bridge in front of the
//! echo agent) versus the same SendMessage as direct gRPC, same agent, same run, interleaved
//! rounds. Buses: in-process, NATS JetStream, RabbitMQ, Redis Streams, MQTT 5, Kafka (brokers
//! on their default local ports; a missing one is reported and skipped).
//!
//! `cargo run --release -p switchyard-bench --bin bus_vs_grpc -- --help`

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::Parser;
use switchyard::{
    AgentServer, Client, ServeConfig, StoreConfig,
    pb::a2a::{Message, SendMessageRequest, TaskState},
    store::Durability,
};
use switchyard_bench::{Round, round, summarize};
use switchyard_bus::{
    Bridge, BridgeConfig, Bus, ConsumeOptions, Dedupe, Envelope,
    envelope::{self, header},
    naming,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Request/reply over message buses vs direct gRPC")]
struct Args {
    /// Concurrent callers.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (interleaved).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Bus URLs to measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "inproc:,nats://127.0.0.1:4222,amqp://guest:guest@127.0.0.1:5672/%2f,redis://127.0.0.1:6379,mqtt://127.0.0.1:1883,kafka://127.0.0.1:9092"
    )]
    buses: Vec<String>,
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Envelope>>>>;

/// One bus target: a bridge, plus a requester whose replies are dispatched by correlation id.
struct Target {
    name: String,
    bus: Arc<dyn Bus>,
    address: String,
    reply_to: String,
    waiters: Waiters,
    stop: CancellationToken,
}

impl Target {
    async fn start(url: &str, agent: &Client, dir: &std::path::Path) -> anyhow::Result<Self> {
        let prefix = format!(
            "sybench-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let bus = switchyard_bus::connect(url).await?;
        // The in-process bus only works within one bus value: share it.
        let bridge_bus = if url.starts_with("inproc") {
            bus.clone()
        } else {
            switchyard_bus::connect(url).await?
        };
        let mut config = BridgeConfig::new(&prefix, "echo");
        config.consume = ConsumeOptions {
            prefetch: 64,
            ack_wait: Duration::from_secs(30),
        };
        let address = config.address.clone();
        bus.ensure(&address, naming::BRIDGE_GROUP, config.consume)
            .await?;
        let dedupe = Dedupe::open(&dir.join(format!("{prefix}.db"))).await?;
        let stop = CancellationToken::new();
        tokio::spawn(Bridge::new(bridge_bus, agent.clone(), dedupe, config).run(stop.clone()));
        let reply_to = naming::reply(&prefix);
        let mut replies = bus.subscribe(&reply_to).await?;
        let waiters: Waiters = Arc::default();
        let w = waiters.clone();
        tokio::spawn(async move {
            while let Ok(reply) = replies.next().await {
                let tx = reply
                    .correlation_id()
                    .and_then(|c| w.lock().expect("lock").remove(c));
                if let Some(tx) = tx {
                    let _ = tx.send(reply);
                }
            }
        });
        Ok(Self {
            name: url.split(':').next().unwrap_or(url).to_owned(),
            bus,
            address,
            reply_to,
            waiters,
            stop,
        })
    }

    async fn call(bus: Arc<dyn Bus>, address: String, reply_to: String, waiters: Waiters) -> bool {
        let id = uuid::Uuid::new_v4().to_string();
        let mut message =
            Message::user_text("benchmark payload: the quick brown fox jumps over the lazy dog");
        message.message_id.clone_from(&id);
        let Ok(env) = Envelope::request(
            "echo",
            &SendMessageRequest {
                message: Some(message),
                ..Default::default()
            },
            envelope::JSON,
        ) else {
            return false;
        };
        let (tx, rx) = oneshot::channel();
        waiters.lock().expect("lock").insert(id.clone(), tx);
        if bus
            .publish(&address, env.with(header::REPLY_TO, &reply_to))
            .await
            .is_err()
        {
            waiters.lock().expect("lock").remove(&id);
            return false;
        }
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(reply)) => reply.get(header::TYPE) == Some(envelope::TASK_TYPE),
            _ => {
                waiters.lock().expect("lock").remove(&id);
                false
            }
        }
    }

    async fn round(&self, args: &Args, seconds: u64) -> Round {
        let (bus, address, reply_to, waiters) = (
            self.bus.clone(),
            self.address.clone(),
            self.reply_to.clone(),
            self.waiters.clone(),
        );
        round(args.concurrency, Duration::from_secs(seconds), move || {
            Self::call(
                bus.clone(),
                address.clone(),
                reply_to.clone(),
                waiters.clone(),
            )
        })
        .await
    }
}

async fn grpc_round(agent: &Client, args: &Args, seconds: u64) -> Round {
    let agent = agent.clone();
    round(args.concurrency, Duration::from_secs(seconds), move || {
        let agent = agent.clone();
        async move {
            matches!(
                agent.send(Message::user_text(
                    "benchmark payload: the quick brown fox jumps over the lazy dog",
                )).await,
                Ok(t) if t.state() == TaskState::Completed
            )
        }
    })
    .await
}

/// The allocator of the Switchyard binaries this benchmark stands for (mimalloc; see
/// `bench/RESULTS.md` §10, "mimalloc"), so that every peer served from this binary runs on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    switchyard::install_crypto_provider();
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let server = AgentServer::bind(
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
    let agent = Client::connect(&server.local_addr().to_string()).await?;
    tokio::spawn(server.run());

    let mut targets = Vec::new();
    for url in &args.buses {
        match Target::start(url, &agent, dir.path()).await {
            Ok(t) => targets.push(t),
            Err(e) => eprintln!("skipping {url}: {e}"),
        }
    }
    // Warm up.
    grpc_round(&agent, &args, 1).await;
    for t in &targets {
        t.round(&args, 1).await;
    }
    let mut grpc = Vec::new();
    let mut per_bus: Vec<Vec<Round>> = vec![Vec::new(); targets.len()];
    for _ in 0..args.rounds {
        grpc.push(grpc_round(&agent, &args, args.seconds).await);
        for (i, t) in targets.iter().enumerate() {
            per_bus[i].push(t.round(&args, args.seconds).await);
        }
    }
    let (g_rps, g_p50, g_p99) = summarize(&grpc);
    println!(
        "concurrency {}, {} rounds of {} s, medians",
        args.concurrency, args.rounds, args.seconds
    );
    println!("| target | round trips/s | p50 µs | p99 µs | errors | vs gRPC |");
    println!("|---|---|---|---|---|---|");
    let errors = |rs: &[Round]| rs.iter().map(|r| r.errors).sum::<u64>();
    println!(
        "| direct gRPC SendMessage | {g_rps:.0} | {g_p50:.0} | {g_p99:.0} | {} | 1.00× |",
        errors(&grpc)
    );
    for (t, rounds) in targets.iter().zip(&per_bus) {
        let (rps, p50, p99) = summarize(rounds);
        println!(
            "| {} bus → bridge → gRPC | {rps:.0} | {p50:.0} | {p99:.0} | {} | {:.2}× |",
            t.name,
            errors(rounds),
            rps / g_rps
        );
    }
    for t in &targets {
        t.stop.cancel();
        if t.bus.transport() == "kafka" {
            // librdkafka crashes when a topic is deleted under this process's own live clients
            // (the bridge's consumer may not have closed yet), so the bench's `sybench-…`
            // topics stay on the broker (delete them with the broker's own tools).
            continue;
        }
        let _ = t.bus.remove(&t.address, &[naming::BRIDGE_GROUP]).await;
        let _ = t
            .bus
            .remove(
                &naming::dead_letter(&t.address),
                &[naming::DEAD_LETTER_GROUP],
            )
            .await;
    }
    Ok(())
}
