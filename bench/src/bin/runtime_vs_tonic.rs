//! Unary `A2AService/SendMessage` to the echo agent through the Switchyard runtime (durable
//! SQLite store on) versus a bare tonic server that answers the same request with the same
//! completed Task, from the same client, at the same concurrency, in interleaved rounds.
//!
//! `cargo run --release -p switchyard-bench --bin runtime_vs_tonic -- --help`

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use switchyard::{
    AgentServer, ServeConfig, StoreConfig,
    client::{A2aClient, Transport, Versioned},
    pb::a2a::{
        self, Artifact, Message, SendMessageRequest, SendMessageResponse, Task, TaskState,
        TaskStatus,
        a2a_service_client::A2aServiceClient,
        a2a_service_server::{A2aService, A2aServiceServer},
        send_message_response,
    },
    store::Durability,
    task::{new_id, now_timestamp},
};
use switchyard_bench::{Round, round, summarize};
use tonic::{Request, Response, Status, transport::Channel};

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
    /// The runtime's store: fsync (SQLite, fsync per group commit), os (SQLite, written to
    /// the OS per group commit) or memory (volatile, for comparison only).
    #[arg(long, default_value = "fsync")]
    durability: String,
}

/// The bare peer: answers SendMessage with a completed Task echoing the parts, no runtime.
#[derive(Debug, Clone, Copy)]
struct Bare;

#[tonic::async_trait]
impl A2aService for Bare {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let mut message = request
            .into_inner()
            .message
            .ok_or_else(|| Status::invalid_argument("message is required"))?;
        let (id, context) = (new_id(), new_id());
        message.task_id.clone_from(&id);
        message.context_id.clone_from(&context);
        let task = Task {
            id,
            context_id: context,
            status: Some(TaskStatus {
                state: TaskState::Completed as i32,
                message: None,
                timestamp: Some(now_timestamp()),
            }),
            artifacts: vec![Artifact::new("echo", message.parts.clone())],
            history: vec![message],
            metadata: None,
        };
        Ok(Response::new(SendMessageResponse {
            payload: Some(send_message_response::Payload::Task(task)),
        }))
    }

    type SendStreamingMessageStream = tonic::codegen::BoxStream<a2a::StreamResponse>;
    async fn send_streaming_message(
        &self,
        _: Request<SendMessageRequest>,
    ) -> Result<Response<Self::SendStreamingMessageStream>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn get_task(&self, _: Request<a2a::GetTaskRequest>) -> Result<Response<Task>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn list_tasks(
        &self,
        _: Request<a2a::ListTasksRequest>,
    ) -> Result<Response<a2a::ListTasksResponse>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn cancel_task(
        &self,
        _: Request<a2a::CancelTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    type SubscribeToTaskStream = tonic::codegen::BoxStream<a2a::StreamResponse>;
    async fn subscribe_to_task(
        &self,
        _: Request<a2a::SubscribeToTaskRequest>,
    ) -> Result<Response<Self::SubscribeToTaskStream>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn create_task_push_notification_config(
        &self,
        _: Request<a2a::TaskPushNotificationConfig>,
    ) -> Result<Response<a2a::TaskPushNotificationConfig>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn get_task_push_notification_config(
        &self,
        _: Request<a2a::GetTaskPushNotificationConfigRequest>,
    ) -> Result<Response<a2a::TaskPushNotificationConfig>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn list_task_push_notification_configs(
        &self,
        _: Request<a2a::ListTaskPushNotificationConfigsRequest>,
    ) -> Result<Response<a2a::ListTaskPushNotificationConfigsResponse>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn get_extended_agent_card(
        &self,
        _: Request<a2a::GetExtendedAgentCardRequest>,
    ) -> Result<Response<a2a::AgentCard>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn delete_task_push_notification_config(
        &self,
        _: Request<a2a::DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
}

async fn start_bare() -> anyhow::Result<SocketAddr> {
    let incoming =
        tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?
            .with_nodelay(Some(true));
    let addr = incoming.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(A2aServiceServer::new(Bare))
            .serve_with_incoming(incoming),
    );
    Ok(addr)
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let sqlite = |durability| StoreConfig::Sqlite {
        path: dir.path().join("bench.db"),
        durability,
    };
    let store = match args.durability.as_str() {
        "fsync" => sqlite(Durability::Fsync),
        "os" => sqlite(Durability::Os),
        "memory" => StoreConfig::Memory,
        other => anyhow::bail!("--durability must be fsync, os or memory, not {other:?}"),
    };
    let server = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store,
            ..Default::default()
        },
    )
    .await?;
    let runtime_addr = server.local_addr();
    tokio::spawn(server.run());
    let bare_addr = start_bare().await?;

    // Both name the A2A version (the runtime refuses calls that do not), so both carry it.
    let runtime =
        A2aServiceClient::with_interceptor(Transport::new(channel(runtime_addr).await?), Versioned);
    let bare =
        A2aServiceClient::with_interceptor(Transport::new(channel(bare_addr).await?), Versioned);
    // Warm up both (connections, allocator, SQLite cache).
    let warm = Args {
        seconds: 1,
        ..Args::parse()
    };
    run_round(runtime.clone(), &warm).await;
    run_round(bare.clone(), &warm).await;

    let (mut r, mut b) = (Vec::new(), Vec::new());
    for i in 0..args.rounds {
        // Alternate which goes first, so drift in machine load hits both alike.
        if i % 2 == 0 {
            r.push(run_round(runtime.clone(), &args).await);
            b.push(run_round(bare.clone(), &args).await);
        } else {
            b.push(run_round(bare.clone(), &args).await);
            r.push(run_round(runtime.clone(), &args).await);
        }
        eprintln!("round {}: runtime {:?} | bare {:?}", i + 1, r[i], b[i]);
    }
    let (rr, rp50, rp99) = summarize(&r);
    let (br, bp50, bp99) = summarize(&b);
    let errors: u64 = r.iter().chain(&b).map(|x| x.errors).sum();
    println!("| target | RPS (median) | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    println!(
        "| Switchyard runtime + echo, SQLite durability={} | {rr:.0} | {rp50:.0} | {rp99:.0} |",
        args.durability
    );
    println!("| bare tonic server, same answer | {br:.0} | {bp50:.0} | {bp99:.0} |");
    println!();
    println!(
        "ratio runtime/bare RPS: {:.2}x (target >= 0.80x); errors: {errors}",
        rr / br
    );
    Ok(())
}
