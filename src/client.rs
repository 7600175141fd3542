//! [`Client`]: a typed gRPC client for any agent — both `lf.a2a.v1.A2AService` and
//! `switchyard.v1.AgentService` — with deadlines, metadata and trace-context propagation.

pub mod lean;
pub mod transport;
mod versioned;

pub use transport::Transport;
pub use versioned::{A2aClient, AgentClient, Versioned};

use std::time::Duration;

use futures::Stream;
use tonic::{
    Request, Status, Streaming,
    metadata::{MetadataKey, MetadataMap, MetadataValue},
    transport::{Channel, Endpoint},
};

use tracing::Instrument as _;

use crate::{
    card::PROTOCOL_VERSION,
    error::{A2aErrorKind, a2a_error_kind},
    pb::{
        a2a::{
            AgentCard, CancelTaskRequest, GetTaskRequest, ListTasksRequest, ListTasksResponse,
            Message, SendMessageRequest, SendMessageResponse, StreamResponse,
            SubscribeToTaskRequest, Task, a2a_service_client::A2aServiceClient,
            send_message_response,
        },
        agent::{
            ConverseRequest, ConverseResponse, GetAgentCardRequest, SendMessagePartsRequest,
            agent_service_client::AgentServiceClient,
        },
    },
    service::{A2A_VERSION, LAST_EVENT_ID},
    tls::ClientTls,
    trace,
};

/// Largest reply a [`Client`] decodes, in bytes: 64 MiB. Agents served by this crate never
/// send more ([`ServeConfig::max_task_bytes`](crate::ServeConfig::max_task_bytes) is capped
/// below it), so every task they accepted can be read back.
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a `host:port` or `http://host:port` URL.
    #[error("invalid agent address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The agent answered with an error status.
    #[error("{}", describe(.0))]
    Status(#[from] Status),
    /// The agent answered SendMessage with a message instead of a task.
    #[error("the agent replied with a message instead of a task")]
    NotATask(Box<Message>),
}

fn describe(s: &Status) -> String {
    match a2a_error_kind(s) {
        Some(kind) => format!("{} ({kind}): {}", code_name(s.code()), s.message()),
        None => format!("{}: {}", code_name(s.code()), s.message()),
    }
}

/// Whether a call failed because its connection could not be opened (`connect` was refused:
/// nothing listens at the address any more), so that it never reached the agent and may be
/// made again elsewhere. Such a call fails with UNAVAILABLE.
pub fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// A status that tonic made from a broken connection (it carries the transport error as its
/// source; a status read from an agent's `grpc-status` never does) as UNAVAILABLE: tonic maps
/// HTTP/2 and hyper errors to UNKNOWN, INTERNAL, RESOURCE_EXHAUSTED ("h2 protocol error") or
/// CANCELLED (hyper's "operation was canceled": the connection closed under a queued call),
/// which would read as the agent's answer and not be retried; the connection's loss is
/// transient (gRPC status-code guide: UNAVAILABLE). Other statuses are returned unchanged.
pub fn transport_loss(status: Status) -> Status {
    let transport = std::error::Error::source(&status).is_some()
        && matches!(
            status.code(),
            tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::ResourceExhausted
                | tonic::Code::Cancelled
        );
    if !transport {
        return status;
    }
    let mut lost = Status::unavailable(format!(
        "the connection to the agent broke: {}",
        status.message()
    ));
    lost.set_source(std::sync::Arc::new(status));
    lost
}

/// The gRPC name of a status code, e.g. `NOT_FOUND`.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

impl ClientError {
    /// The gRPC status, when the agent answered with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Status(s) => Some(s),
            _ => None,
        }
    }

    /// The gRPC code: UNAVAILABLE for connection failures.
    pub fn code(&self) -> tonic::Code {
        match self {
            Self::Status(s) => s.code(),
            Self::Connect { .. } => tonic::Code::Unavailable,
            Self::InvalidAddress { .. } => tonic::Code::InvalidArgument,
            Self::NotATask(_) => tonic::Code::Unknown,
        }
    }

    /// The A2A error, from the status's `ErrorInfo`.
    pub fn a2a_kind(&self) -> Option<A2aErrorKind> {
        self.status().and_then(a2a_error_kind)
    }
}

/// A client of one agent.
///
/// Every call carries `a2a-version: 1.0`, the configured metadata, the current W3C trace
/// context (so calls made inside [`Agent::execute`](crate::Agent::execute) continue the
/// caller's trace) and, with [`with_timeout`](Self::with_timeout), a deadline (`grpc-timeout`)
/// that is also enforced locally.
///
/// # Example
/// ```no_run
/// # async fn demo() -> Result<(), switchyard::ClientError> {
/// use std::time::Duration;
/// let client = switchyard::Client::connect("127.0.0.1:50051")
///     .await?
///     .with_timeout(Duration::from_secs(10));
/// let task = client.send_text("hello").await?;
/// println!("{:?}: {:?}", task.state(), task.artifacts);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    addr: std::sync::Arc<str>,
    streams: lean::LeanStreams,
    transport: Transport,
    a2a: A2aClient,
    agent: AgentClient,
    timeout: Option<Duration>,
    metadata: MetadataMap,
}

/// Largest header block (response headers or trailers) a client accepts, in bytes. A larger
/// one fails only its own call; beyond four times this size HTTP/2 implementations abort the
/// whole connection, with every call on it (h2's guard against header abuse), so the bound is
/// well above hyper's 16 KiB default: a peer that echoes a long id into its error trailers
/// hurts nobody else.
const MAX_HEADER_LIST_BYTES: u32 = 256 * 1024;

/// Normalizes `host:port` (the A2A gRPC URL form) to `http://host:port`; `https://` and
/// `grpcs://` are accepted too (the connection then needs a [`ClientTls`]: see [`channel`]).
pub(crate) fn endpoint(addr: &str) -> Result<Endpoint, ClientError> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    // The TLS connector below does the TLS; tonic sees plain HTTP/2 over it.
    let uri = uri
        .replacen("grpcs://", "http://", 1)
        .replacen("https://", "http://", 1)
        .replacen("grpc://", "http://", 1);
    Endpoint::from_shared(uri)
        .map(|e| {
            e.tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
                .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
                .connect_timeout(Duration::from_secs(5))
        })
        .map_err(|e| ClientError::InvalidAddress {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })
}

/// The TLS settings of a connection to `addr`: `tls` if given, else the process-wide
/// [`default_client`](crate::tls::default_client); an `https://`/`grpcs://` address without
/// either is refused (never silently plain text).
pub(crate) fn tls_for(
    addr: &str,
    tls: Option<&ClientTls>,
) -> Result<Option<ClientTls>, ClientError> {
    let invalid = |reason: String| ClientError::InvalidAddress {
        addr: addr.to_owned(),
        reason,
    };
    let tls = match tls {
        Some(t) => Some(t.clone()),
        None => crate::tls::default_client().map_err(invalid)?,
    };
    if tls.is_none() && (addr.starts_with("https://") || addr.starts_with("grpcs://")) {
        return Err(invalid(format!(
            "TLS needs the mesh CA and a client certificate: set {}, {} and {}",
            crate::tls::ENV_CA,
            crate::tls::ENV_CERT,
            crate::tls::ENV_KEY
        )));
    }
    Ok(tls)
}

/// A channel over `endpoint`: mTLS with `tls` ([`ClientTls::connect`]), else plain text;
/// connected on first use when `lazy`.
pub(crate) async fn channel(
    endpoint: Endpoint,
    tls: Option<ClientTls>,
    lazy: bool,
) -> Result<Channel, tonic::transport::Error> {
    match (tls, lazy) {
        (None, true) => Ok(endpoint.connect_lazy()),
        (None, false) => endpoint.connect().await,
        (Some(t), true) => Ok(endpoint.connect_with_connector_lazy(TlsConnector(t))),
        (Some(t), false) => endpoint.connect_with_connector(TlsConnector(t)).await,
    }
}

/// A lazy [`channel`] (no await needed).
pub(crate) fn lazy_channel(endpoint: Endpoint, tls: Option<ClientTls>) -> Channel {
    match tls {
        None => endpoint.connect_lazy(),
        Some(t) => endpoint.connect_with_connector_lazy(TlsConnector(t)),
    }
}

/// The connector of mTLS channels: TCP, then the TLS handshake of [`ClientTls::connect`].
#[derive(Clone, Debug)]
struct TlsConnector(ClientTls);

impl tower::Service<http::Uri> for TlsConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = std::io::Error;
    type Future = futures::future::BoxFuture<'static, std::io::Result<Self::Response>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().to_owned();
            let port = uri.port_u16().unwrap_or(443);
            tls.connect(&host, port)
                .await
                .map(hyper_util::rt::TokioIo::new)
        })
    }
}

impl Client {
    /// Connects to the agent at `addr` (`host:port` or `http://host:port`).
    ///
    /// # Errors
    /// [`ClientError::InvalidAddress`], or [`ClientError::Connect`] when nothing answers.
    ///
    /// With a process-wide client identity ([`crate::tls::default_client`]: the
    /// `SWITCHYARD_TLS_*` variables), the connection is mTLS; else plain text (`https://` is
    /// then refused).
    pub async fn connect(addr: &str) -> Result<Self, ClientError> {
        Self::connect_with(addr, None).await
    }

    /// Connects to the agent at `addr` over mTLS with `tls` (its certificate presented, the
    /// agent verified by SPIFFE ID: [`crate::tls`]); `None`: as [`connect`](Self::connect).
    ///
    /// # Errors
    /// As [`connect`](Self::connect); a refused handshake is [`ClientError::Connect`].
    pub async fn connect_with(addr: &str, tls: Option<&ClientTls>) -> Result<Self, ClientError> {
        let tls = tls_for(addr, tls)?;
        let channel = channel(endpoint(addr)?, tls, false)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        Ok(Self::from_channel(channel).named(addr))
    }

    /// A client that connects on first use (and reconnects after failures); TLS as
    /// [`connect`](Self::connect).
    ///
    /// # Errors
    /// [`ClientError::InvalidAddress`].
    pub fn lazy(addr: &str) -> Result<Self, ClientError> {
        Self::lazy_with(addr, None)
    }

    /// [`lazy`](Self::lazy) over mTLS with `tls` (`None`: as [`lazy`](Self::lazy)).
    ///
    /// # Errors
    /// [`ClientError::InvalidAddress`].
    pub fn lazy_with(addr: &str, tls: Option<&ClientTls>) -> Result<Self, ClientError> {
        let tls = tls_for(addr, tls)?;
        Ok(Self::from_channel(lazy_channel(endpoint(addr)?, tls)).named(addr))
    }

    pub(crate) fn named(mut self, addr: &str) -> Self {
        self.addr = addr.into();
        self
    }

    /// The address this client calls (empty for [`from_channel`](Self::from_channel)).
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// A client over an existing channel.
    pub fn from_channel(channel: Channel) -> Self {
        Self::over(Transport::new(channel))
    }

    /// A client over `transport`.
    pub(crate) fn over(transport: Transport) -> Self {
        Self {
            addr: "".into(),
            streams: lean::LeanStreams::new(transport.clone(), MAX_REPLY_BYTES),
            a2a: A2aServiceClient::with_interceptor(transport.clone(), Versioned)
                .max_decoding_message_size(MAX_REPLY_BYTES),
            agent: AgentServiceClient::with_interceptor(transport.clone(), Versioned)
                .max_decoding_message_size(MAX_REPLY_BYTES),
            transport,
            timeout: None,
            metadata: MetadataMap::new(),
        }
    }

    /// The connection this client's calls go through, e.g. for another generated client
    /// (`HealthClient::new(client.transport())`).
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    /// Sets the deadline of every call made with this client, relative to its start.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds metadata sent with every call (e.g. `authorization`).
    ///
    /// # Errors
    /// A key or value that is not valid gRPC ASCII metadata (a lowercase token key; a visible
    /// ASCII value) gives an INVALID_ARGUMENT status naming the key.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Result<Self, ClientError> {
        let k = MetadataKey::from_bytes(key.as_bytes())
            .map_err(|_| Status::invalid_argument(format!("invalid metadata key {key:?}")))?;
        let v = MetadataValue::try_from(value)
            .map_err(|_| Status::invalid_argument(format!("invalid metadata value for {key}")))?;
        self.metadata.insert(k, v);
        Ok(self)
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        let md = req.metadata_mut();
        for kv in self.metadata.iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                md.insert(k.clone(), v.clone());
            }
        }
        md.insert(A2A_VERSION, MetadataValue::from_static(PROTOCOL_VERSION));
        trace::outgoing().inject(md);
        if let Some(t) = self.timeout {
            req.set_timeout(t);
        }
        req
    }

    /// Runs a unary call under the client's deadline.
    async fn unary<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, ClientError> {
        let result = match self.timeout {
            // A little slack so the server's own DEADLINE_EXCEEDED (with its message) wins.
            Some(t) => tokio::time::timeout(t + Duration::from_millis(250), call)
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("the deadline expired"))),
            None => call.await,
        };
        // tonic's channel enforces `grpc-timeout` too and reports it as CANCELLED; gRPC
        // semantics (and every other implementation) say DEADLINE_EXCEEDED.
        let result = result.map_err(|s| {
            if s.code() == tonic::Code::Cancelled && s.message() == "Timeout expired" {
                Status::deadline_exceeded("the deadline expired")
            } else {
                transport_loss(s)
            }
        });
        Ok(result?.into_inner())
    }

    /// Runs one call in a client span (OpenTelemetry RPC conventions: `rpc.system`,
    /// `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, `server.address`, `server.port`).
    /// The span's context is what the request carries as `traceparent`, so the callee's server
    /// span becomes its child.
    async fn call<T, R, Fut>(
        &self,
        service: &'static str,
        method: &'static str,
        message: T,
        adjust: impl FnOnce(&mut Request<T>),
        send: impl FnOnce(Request<T>) -> Fut,
    ) -> Result<R, ClientError>
    where
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let (host, port) = self.addr.rsplit_once(':').unwrap_or((&self.addr, ""));
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = tracing::field::Empty,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = tracing::field::Empty,
            rpc.service = tracing::field::Empty,
            rpc.method = tracing::field::Empty,
            rpc.grpc.status_code = tracing::field::Empty,
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
        );
        if crate::telemetry::record_rpc(&span, service, method) {
            span.record("server.address", host.trim_start_matches("http://"));
            span.record("server.port", port);
        }
        let mut request = span.in_scope(|| self.request(message));
        adjust(&mut request);
        let result = self.unary(send(request)).instrument(span.clone()).await;
        let code = result.as_ref().map_or_else(|e| e.code() as i32, |_| 0);
        crate::telemetry::record_rpc_status(&span, code, crate::telemetry::RpcSide::Client);
        result
    }

    /// `A2AService.SendMessage`.
    ///
    /// # Errors
    /// The agent's status ([`ClientError::Status`]).
    pub async fn send_message(
        &self,
        request: SendMessageRequest,
    ) -> Result<SendMessageResponse, ClientError> {
        let mut c = self.a2a.clone();
        self.call(
            "lf.a2a.v1.A2AService",
            "SendMessage",
            request,
            |_| {},
            |r| async move { c.send_message(r).await },
        )
        .await
    }

    /// Sends one message and waits for the task (SendMessage, blocking).
    ///
    /// # Errors
    /// As [`send_message`](Self::send_message); [`ClientError::NotATask`] for a message reply.
    pub async fn send(&self, message: Message) -> Result<Task, ClientError> {
        let response = self
            .send_message(SendMessageRequest {
                message: Some(message),
                ..Default::default()
            })
            .await?;
        match response.payload {
            Some(send_message_response::Payload::Task(t)) => Ok(t),
            Some(send_message_response::Payload::Message(m)) => {
                Err(ClientError::NotATask(Box::new(m)))
            }
            None => Err(Status::internal("empty SendMessageResponse").into()),
        }
    }

    /// Sends a text message and waits for the task.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_text(&self, text: &str) -> Result<Task, ClientError> {
        self.send(Message::user_text(text)).await
    }

    /// `A2AService.SendStreamingMessage`: the task's events as they happen.
    ///
    /// # Errors
    /// The agent's status, before the first event.
    pub async fn send_streaming_message(
        &self,
        request: SendMessageRequest,
    ) -> Result<Streaming<StreamResponse>, ClientError> {
        let mut c = self.streams.clone();
        self.call(
            "lf.a2a.v1.A2AService",
            "SendStreamingMessage",
            request,
            |_| {},
            |r| async move { c.send_streaming_message(r).await },
        )
        .await
    }

    /// `A2AService.GetTask`.
    ///
    /// # Errors
    /// TASK_NOT_FOUND and the like.
    pub async fn get_task(
        &self,
        id: &str,
        history_length: Option<i32>,
    ) -> Result<Task, ClientError> {
        let mut c = self.a2a.clone();
        let req = GetTaskRequest {
            id: id.to_owned(),
            history_length,
            ..Default::default()
        };
        self.call(
            "lf.a2a.v1.A2AService",
            "GetTask",
            req,
            |_| {},
            |r| async move { c.get_task(r).await },
        )
        .await
    }

    /// `A2AService.ListTasks`.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for bad filters.
    pub async fn list_tasks(
        &self,
        request: ListTasksRequest,
    ) -> Result<ListTasksResponse, ClientError> {
        let mut c = self.a2a.clone();
        self.call(
            "lf.a2a.v1.A2AService",
            "ListTasks",
            request,
            |_| {},
            |r| async move { c.list_tasks(r).await },
        )
        .await
    }

    /// `A2AService.CancelTask`.
    ///
    /// # Errors
    /// TASK_NOT_FOUND, TASK_NOT_CANCELABLE.
    pub async fn cancel_task(&self, id: &str) -> Result<Task, ClientError> {
        let mut c = self.a2a.clone();
        let req = CancelTaskRequest {
            id: id.to_owned(),
            ..Default::default()
        };
        self.call(
            "lf.a2a.v1.A2AService",
            "CancelTask",
            req,
            |_| {},
            |r| async move { c.cancel_task(r).await },
        )
        .await
    }

    /// `A2AService.SubscribeToTask`; with `after`, resumes after that sequence number (no
    /// snapshot, only the events after it).
    ///
    /// # Errors
    /// TASK_NOT_FOUND; UNSUPPORTED_OPERATION for a terminal task without `after`.
    pub async fn subscribe(
        &self,
        id: &str,
        after: Option<u64>,
    ) -> Result<Streaming<StreamResponse>, ClientError> {
        let mut c = self.streams.clone();
        let req = SubscribeToTaskRequest {
            id: id.to_owned(),
            ..Default::default()
        };
        let resume = |r: &mut Request<SubscribeToTaskRequest>| {
            if let Some(a) = after {
                r.metadata_mut()
                    .insert(LAST_EVENT_ID, MetadataValue::from(a));
            }
        };
        self.call(
            "lf.a2a.v1.A2AService",
            "SubscribeToTask",
            req,
            resume,
            |r| async move { c.subscribe_to_task(r).await },
        )
        .await
    }

    /// `AgentService.GetAgentCard`: the agent's public card.
    ///
    /// # Errors
    /// The agent's status; UNIMPLEMENTED for an agent that serves only `A2AService`.
    pub async fn agent_card(&self) -> Result<AgentCard, ClientError> {
        let mut c = self.agent.clone();
        self.call(
            "switchyard.v1.AgentService",
            "GetAgentCard",
            GetAgentCardRequest {},
            |_| {},
            |r| async move { c.get_agent_card(r).await },
        )
        .await
    }

    /// `AgentService.SendMessageParts`: one message whose parts are streamed.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED beyond the server's size limit, and those of SendMessage.
    pub async fn send_message_parts(
        &self,
        frames: impl Stream<Item = SendMessagePartsRequest> + Send + 'static,
    ) -> Result<SendMessageResponse, ClientError> {
        let mut c = self.agent.clone();
        self.call(
            "switchyard.v1.AgentService",
            "SendMessageParts",
            frames,
            |_| {},
            |r| async move { c.send_message_parts(r).await },
        )
        .await
    }

    /// `AgentService.Converse`: a bidirectional session.
    ///
    /// # Errors
    /// The agent's status when the session cannot start.
    pub async fn converse(
        &self,
        requests: impl Stream<Item = ConverseRequest> + Send + 'static,
    ) -> Result<Streaming<ConverseResponse>, ClientError> {
        let mut c = self.streams.clone();
        self.call(
            "switchyard.v1.AgentService",
            "Converse",
            requests,
            |_| {},
            |r| async move { c.converse(r).await },
        )
        .await
    }

    /// The streaming RPCs with small codec buffers ([`lean`]), for long-lived streams.
    pub fn streams(&self) -> lean::LeanStreams {
        self.streams.clone()
    }

    /// The generated `A2AService` client, for calls not wrapped here; it sends
    /// `a2a-version: 1.0` unless a request names a version itself.
    pub fn a2a(&self) -> A2aClient {
        self.a2a.clone()
    }

    /// The generated `AgentService` client; it sends `a2a-version: 1.0` unless a request
    /// names a version itself.
    pub fn agent(&self) -> AgentClient {
        self.agent.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_never_sent_and_an_agent_status_is() {
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        let e = Client::lazy(&dead.to_string())
            .expect("lazy")
            .send_text("x")
            .await
            .expect_err("nothing listens");
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(never_sent(e.status().expect("a status")), "{e}");
        assert!(!never_sent(&Status::unavailable("draining")));
    }

    #[test]
    fn a_broken_connection_is_unavailable_and_an_agents_status_is_kept() {
        let mut h2 = Status::internal("h2 protocol error: connection reset");
        h2.set_source(std::sync::Arc::new(std::io::Error::other("reset")));
        let s = transport_loss(h2);
        assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
        assert!(s.message().contains("connection reset"));
        let s = transport_loss(Status::internal("the agent's own INTERNAL"));
        assert_eq!(s.code(), tonic::Code::Internal);
    }
}
