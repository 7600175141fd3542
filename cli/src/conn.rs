//! A connection to one agent: direct gRPC, or through the gateway (A2A JSON-RPC and SSE, the
//! WebSocket for sessions) when `gateway_url` is configured. Commands use [`Conn`] and do not
//! care which.

use std::pin::Pin;

use futures::{SinkExt as _, Stream, StreamExt as _};
use switchyard::{
    Client,
    pb::{
        a2a::{
            CancelTaskRequest, GetTaskRequest, ListTasksRequest, ListTasksResponse, Message,
            SendMessageRequest, Task, send_message_response,
        },
        agent::{ConverseRequest, ConverseResponse},
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::tungstenite;

use crate::{
    error::CliError,
    via_gateway::{Events, GatewayAgent},
};

/// Frames of a session.
pub type Frames = Pin<Box<dyn Stream<Item = Result<ConverseResponse, CliError>> + Send>>;

/// How a command reaches its agent.
#[derive(Debug, Clone)]
pub enum Conn {
    /// Direct gRPC.
    Grpc {
        /// The agent's name.
        agent: String,
        /// Its client.
        client: Box<Client>,
    },
    /// Through the gateway.
    Gateway(GatewayAgent),
}

impl Conn {
    fn grpc_error(agent: &str, client: &Client, e: &switchyard::ClientError) -> CliError {
        CliError::call(agent, client.address(), e)
    }

    /// Sends a message and waits for the task; an agent may answer with a message instead
    /// (A2A v1.0.1 §3.1.1).
    ///
    /// # Errors
    /// Unreachable agent, protocol errors.
    pub async fn send(&self, message: Message) -> Result<send_message_response::Payload, CliError> {
        let request = SendMessageRequest {
            message: Some(message),
            ..Default::default()
        };
        match self {
            Self::Grpc { agent, client } => client
                .send_message(request)
                .await
                .map_err(|e| Self::grpc_error(agent, client, &e))?
                .payload
                .ok_or_else(|| CliError::Call {
                    agent: agent.clone(),
                    message: "an empty SendMessage result".into(),
                }),
            Self::Gateway(g) => g.send(request).await,
        }
    }

    /// Sends a message and streams the task's events.
    ///
    /// # Errors
    /// As [`send`](Self::send), before the first event.
    pub async fn stream(&self, request: SendMessageRequest) -> Result<Events, CliError> {
        match self {
            Self::Grpc { agent, client } => {
                let s = client
                    .send_streaming_message(request)
                    .await
                    .map_err(|e| Self::grpc_error(agent, client, &e))?;
                Ok(grpc_events(agent, client, s))
            }
            Self::Gateway(g) => g.stream(request).await,
        }
    }

    /// Follows a task's events, after `after` when given.
    ///
    /// # Errors
    /// As [`send`](Self::send), before the first event.
    pub async fn subscribe(&self, id: &str, after: Option<u64>) -> Result<Events, CliError> {
        match self {
            Self::Grpc { agent, client } => {
                let s = client
                    .subscribe(id, after)
                    .await
                    .map_err(|e| Self::grpc_error(agent, client, &e))?;
                Ok(grpc_events(agent, client, s))
            }
            Self::Gateway(g) => g.subscribe(id, after).await,
        }
    }

    /// `GetTask`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn get_task(&self, id: &str, history: Option<i32>) -> Result<Task, CliError> {
        match self {
            Self::Grpc { agent, client } => client
                .get_task(id, history)
                .await
                .map_err(|e| Self::grpc_error(agent, client, &e)),
            Self::Gateway(g) => {
                g.get_task(GetTaskRequest {
                    id: id.to_owned(),
                    history_length: history,
                    ..Default::default()
                })
                .await
            }
        }
    }

    /// `ListTasks`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn list_tasks(
        &self,
        request: ListTasksRequest,
    ) -> Result<ListTasksResponse, CliError> {
        match self {
            Self::Grpc { agent, client } => client
                .list_tasks(request)
                .await
                .map_err(|e| Self::grpc_error(agent, client, &e)),
            Self::Gateway(g) => g.list_tasks(request).await,
        }
    }

    /// `CancelTask`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn cancel_task(&self, id: &str) -> Result<Task, CliError> {
        match self {
            Self::Grpc { agent, client } => client
                .cancel_task(id)
                .await
                .map_err(|e| Self::grpc_error(agent, client, &e)),
            Self::Gateway(g) => {
                g.cancel_task(CancelTaskRequest {
                    id: id.to_owned(),
                    ..Default::default()
                })
                .await
            }
        }
    }

    /// Opens a session (`AgentService/Converse`, or the gateway's WebSocket): requests go into
    /// the sender; dropping it ends the session.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn converse(&self) -> Result<(mpsc::Sender<ConverseRequest>, Frames), CliError> {
        let (tx, rx) = mpsc::channel::<ConverseRequest>(16);
        match self {
            Self::Grpc { agent, client } => {
                let frames = client
                    .converse(ReceiverStream::new(rx))
                    .await
                    .map_err(|e| Self::grpc_error(agent, client, &e))?;
                let (agent, client) = (agent.clone(), client.clone());
                let frames = frames
                    .map(move |f| f.map_err(|s| Self::grpc_error(&agent, &client, &s.into())));
                Ok((tx, Box::pin(frames)))
            }
            Self::Gateway(g) => Ok((tx, websocket(g, rx).await?)),
        }
    }
}

fn grpc_events(
    agent: &str,
    client: &Client,
    stream: tonic::Streaming<switchyard::pb::a2a::StreamResponse>,
) -> Events {
    let (agent, client) = (agent.to_owned(), client.clone());
    Box::pin(
        stream.map(move |e| e.map_err(|s| CliError::call(&agent, client.address(), &s.into()))),
    )
}

/// A session over the gateway's WebSocket: JSON text frames (protobuf JSON) both ways.
async fn websocket(
    g: &GatewayAgent,
    mut rx: mpsc::Receiver<ConverseRequest>,
) -> Result<Frames, CliError> {
    // The version goes in the query: the gateway refuses a session that names none.
    let url = format!(
        "{}/ws?A2A-Version={}",
        g.url().replacen("http", "ws", 1),
        switchyard::card::PROTOCOL_VERSION
    );
    let fail = |message: String| CliError::Call {
        agent: g.name().to_owned(),
        message,
    };
    let (socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .map_err(|e| fail(format!("cannot open the session at {url}: {e}")))?;
    let (mut sink, stream) = socket.split();
    tokio::spawn(async move {
        while let Some(request) = rx.recv().await {
            let text = serde_json::to_string(&request).expect("generated messages serialize");
            if sink.send(tungstenite::Message::text(text)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(tungstenite::Message::Close(None)).await;
    });
    let agent = g.name().to_owned();
    let frames = stream.filter_map(move |m| {
        let agent = agent.clone();
        async move {
            let fail = |message: String| CliError::Call { agent, message };
            match m {
                Ok(tungstenite::Message::Text(t)) => Some(
                    serde_json::from_str::<ConverseResponse>(&t)
                        .map_err(|e| fail(format!("not a session frame: {e}"))),
                ),
                Ok(tungstenite::Message::Close(Some(f)))
                    if f.code != tungstenite::protocol::frame::coding::CloseCode::Normal =>
                {
                    Some(Err(fail(format!(
                        "session closed ({}): {}",
                        u16::from(f.code),
                        f.reason
                    ))))
                }
                Ok(_) => None,
                Err(e) => Some(Err(fail(format!("session: {e}")))),
            }
        }
    });
    Ok(Box::pin(frames))
}
