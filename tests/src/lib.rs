//! Helpers for Switchyard's end-to-end tests: agents served on `127.0.0.1:0` with their own
//! data directory, message builders, and compact renderings of event streams for assertions.

pub mod json;
pub mod pods;
pub mod python;

pub use json::assert_utc_timestamps;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use futures::StreamExt as _;
use switchyard::{
    Agent, AgentServer, Client, ServeConfig, ShutdownHandle, StoreConfig,
    pb::a2a::{Message, SendMessageRequest, StreamResponse, TaskState, stream_response},
    store::Durability,
    task::{json_to_value, sequence_of},
};
use tokio::task::JoinHandle;

/// An agent served for a test.
#[derive(Debug)]
pub struct Served {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// A client of it.
    pub client: Client,
    stop: ShutdownHandle,
    join: JoinHandle<()>,
}

impl Served {
    /// Serves `agent` with a SQLite store in `dir`, after `tweak` adjusts the config.
    pub async fn start_in(
        agent: impl Agent,
        dir: &Path,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let mut config = ServeConfig {
            store: StoreConfig::Sqlite {
                path: dir.join("tasks.db"),
                durability: Durability::Fsync,
            },
            drain_timeout: Duration::from_secs(10),
            cancel_grace: Duration::from_millis(500),
            ..Default::default()
        };
        tweak(&mut config);
        let server = AgentServer::bind(agent, config).await.expect("bind");
        Self::run(server).await
    }

    /// [`start_in`](Self::start_in) for an agent behind an `Arc`.
    pub async fn start_arc_in(
        agent: Arc<dyn Agent>,
        dir: &Path,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let mut config = ServeConfig {
            store: StoreConfig::Sqlite {
                path: dir.join("tasks.db"),
                durability: Durability::Fsync,
            },
            drain_timeout: Duration::from_secs(10),
            cancel_grace: Duration::from_millis(500),
            ..Default::default()
        };
        tweak(&mut config);
        let server = AgentServer::bind_arc(agent, config).await.expect("bind");
        Self::run(server).await
    }

    async fn run(server: AgentServer) -> Self {
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let join = tokio::spawn(server.run());
        let client = Client::connect(&addr.to_string()).await.expect("connect");
        Self {
            addr,
            client,
            stop,
            join,
        }
    }

    /// The echo agent with its own temporary data directory (kept for the test's life).
    pub async fn echo() -> (Self, Arc<tempfile::TempDir>) {
        Self::echo_with(|_| {}).await
    }

    /// The echo agent with config changes.
    pub async fn echo_with(tweak: impl FnOnce(&mut ServeConfig)) -> (Self, Arc<tempfile::TempDir>) {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let s = Self::start_in(switchyard_echo::Echo, dir.path(), tweak).await;
        (s, dir)
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the drain without waiting for it.
    pub fn begin_shutdown(&self) {
        self.stop.shutdown();
    }

    /// Drains and waits until the server has stopped.
    pub async fn stop(self) {
        self.stop.shutdown();
        self.join.await.expect("server task");
    }
}

/// Accepts push-notification configs and lets them reach receivers on this host over plain
/// http (the default [`PushPolicy`](switchyard::outbound::PushPolicy) refuses both).
pub fn local_push(c: &mut ServeConfig) {
    c.push_notifications = true;
    c.push_policy = switchyard::outbound::PushPolicy {
        allow_http: true,
        allow: vec![
            "127.0.0.0/8".parse().expect("network"),
            "::1/128".parse().expect("network"),
        ],
    };
}

/// A user text message whose metadata is `metadata` (a JSON object, or null for none).
pub fn message(text: &str, metadata: serde_json::Value) -> Message {
    let mut m = Message::user_text(text);
    if let serde_json::Value::Object(o) = metadata {
        let fields = o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect();
        m.metadata = Some(pbjson_types::Struct { fields });
    }
    m
}

/// A SendMessageRequest for `message`.
pub fn request(message: Message) -> SendMessageRequest {
    SendMessageRequest {
        message: Some(message),
        ..Default::default()
    }
}

/// Reads a stream to its end; panics on an error status.
pub async fn collect(mut stream: tonic::Streaming<StreamResponse>) -> Vec<StreamResponse> {
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        out.push(item.expect("stream event"));
    }
    out
}

/// One line per event: `task:SUBMITTED#1`, `status:WORKING#2`, `artifact:echo#3`.
pub fn describe(events: &[StreamResponse]) -> Vec<String> {
    events.iter().map(describe_one).collect()
}

/// The line of [`describe`] for one event.
pub fn describe_one(e: &StreamResponse) -> String {
    let seq = sequence_of(e).map_or_else(|| "?".to_owned(), |s| s.to_string());
    match &e.payload {
        Some(stream_response::Payload::Task(t)) => {
            format!("task:{}#{seq}", short(t.state()))
        }
        Some(stream_response::Payload::StatusUpdate(u)) => {
            let s = u
                .status
                .as_ref()
                .and_then(|s| TaskState::try_from(s.state).ok())
                .unwrap_or_default();
            format!("status:{}#{seq}", short(s))
        }
        Some(stream_response::Payload::ArtifactUpdate(u)) => format!(
            "artifact:{}#{seq}",
            u.artifact.as_ref().map_or("", |a| a.name.as_str())
        ),
        Some(stream_response::Payload::Message(_)) => format!("message#{seq}"),
        None => "empty".into(),
    }
}

/// `TASK_STATE_WORKING` → `WORKING`.
pub fn short(s: TaskState) -> &'static str {
    s.as_str_name().trim_start_matches("TASK_STATE_")
}

/// The `ErrorInfo.reason` of an A2A error status.
pub fn reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
}

/// The fields of a `BadRequest` detail.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The status of a failed call.
pub fn status_of<T: std::fmt::Debug>(r: Result<T, switchyard::ClientError>) -> tonic::Status {
    match r {
        Err(switchyard::ClientError::Status(s)) => s,
        other => panic!("expected an error status, got {other:?}"),
    }
}

/// Waits (by subscribing, not polling) until task `id` is terminal (a subscription goes on
/// through interrupted states); returns its final snapshot.
pub async fn settle(client: &Client, id: &str) -> switchyard::pb::a2a::Task {
    match client.subscribe(id, None).await {
        Ok(s) => {
            collect(s).await;
        }
        Err(e) => assert_eq!(
            e.a2a_kind(),
            Some(switchyard::error::A2aErrorKind::UnsupportedOperation),
            "{e}"
        ),
    }
    client.get_task(id, None).await.expect("get task")
}
