//! [`GatewayConfig`]: every setting of the gateway, with defaults that work on a laptop.

use std::{net::SocketAddr, time::Duration};

pub use switchyard::server::ConnectionLimits;

pub use crate::resume::StreamResume;

/// Settings of one gateway. `GatewayConfig::default()` works: loopback, a free port, CORS off.
///
/// Tests and embedders build this value directly; the binary fills it from flags and
/// environment variables (`switchyard-gateway --help`).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Address of the HTTP listener (HTTP/1.1 and HTTP/2 cleartext); port 0 picks a free port.
    /// Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Base URL clients reach the gateway at (scheme, host, optional port and path prefix, no
    /// trailing slash), used in the agent cards it serves, e.g. `https://agents.example.com`.
    /// Default: `http://<bound address>` (`127.0.0.1` when bound to an unspecified address).
    pub public_url: Option<String>,
    /// Origins of the browser pages allowed to use the gateway, e.g. `https://app.example.com`;
    /// `*` allows every origin. They get CORS on the HTTP routes and may open WebSocket
    /// sessions. Empty (the default) turns CORS off (pages of other origins cannot read
    /// responses) and lets only same-origin and loopback pages (`http://localhost:*`,
    /// `http://127.0.0.1:*`) open WebSockets; clients that send no `Origin` (non-browsers)
    /// are always allowed.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes; a larger one gets 413 (REST) or JSON-RPC
    /// -32600 without being read further. On the gRPC front it bounds each message instead
    /// (a stream may carry many): a larger one gets RESOURCE_EXHAUSTED before it is forwarded. Default 4 MiB, the agents' default
    /// `max_message_bytes` ([`switchyard::server::DEFAULT_MAX_MESSAGE_BYTES`]): a JSON body
    /// usually becomes a smaller protobuf request, but `data` parts and metadata of many small
    /// numbers can grow (each JSON number is a protobuf `Value` of about 11 bytes); the agent
    /// refuses such a request with RESOURCE_EXHAUSTED (the README's "Size limits").
    pub max_body_bytes: usize,
    /// How long a client may take to send its request body once the headers are in; a
    /// slower one gets 408 (REST) or JSON-RPC -32600. Default 10 s.
    pub body_read_timeout: Duration,
    /// Requests (including open SSE streams and WebSocket sessions) served at once; beyond
    /// it new requests are shed at once with 429 / RESOURCE_EXHAUSTED and `Retry-After`.
    /// `/healthz` and `/readyz` are never shed. Default 1024.
    pub max_concurrent_requests: usize,
    /// Deadline of a unary call when the client sends none (`grpc-timeout` or
    /// `X-Timeout-Ms`). Streams have no default deadline. Default 60 s.
    pub default_timeout: Duration,
    /// Longest deadline a client may ask for (`grpc-timeout`, `X-Timeout-Ms`): a longer one is
    /// cut to this, on every front. Default 1 hour.
    pub max_timeout: Duration,
    /// Subtracted from every deadline before it is passed to the agent as `grpc-timeout`, so
    /// the agent gives up before the client does and its error still reaches the client.
    /// Default 100 ms.
    pub deadline_margin: Duration,
    /// Interval of SSE keep-alive comments (`: ping`) on an otherwise silent stream; also how
    /// long a stream waits for its first event before it starts with a comment. Default 15 s.
    pub sse_keepalive: Duration,
    /// Events buffered between an agent and a slow SSE client; when the buffer stays full for
    /// [`slow_client_timeout`](Self::slow_client_timeout) the upstream call is cancelled and
    /// the stream ends with an error event. Default 16.
    pub sse_buffer_events: usize,
    /// How long a stream (SSE or WebSocket) waits for a client that does not read before it
    /// gives up on it. Default 30 s.
    pub slow_client_timeout: Duration,
    /// Largest WebSocket message (and frame) accepted, in bytes; a larger one closes the
    /// session with 1009. Default 1 MiB.
    pub ws_max_message_bytes: usize,
    /// Frames buffered per WebSocket session in each direction (client → agent and agent →
    /// client) before the gateway stops reading from the side that is ahead. Default 8.
    pub ws_buffer_frames: usize,
    /// Interval of WebSocket pings; a client that sends nothing (not even a pong) for two
    /// intervals is closed with 4004. Default 20 s.
    pub ws_ping_interval: Duration,
    /// How long a drain waits for open requests, streams and sessions to finish. Default 30 s.
    pub drain_timeout: Duration,
    /// Timeout of fetching an agent card from an agent. Default 5 s.
    pub card_timeout: Duration,
    /// `Cache-Control: max-age` of the agent cards served. Default 60 s.
    pub card_max_age: Duration,
    /// Limits on client connections: open connections (beyond it a connection is closed at
    /// once), the first request's deadline and the idle timeout ([`ConnectionLimits`];
    /// defaults 10,000, 10 s and 5 min). SSE streams and WebSocket sessions count as busy.
    pub connections: ConnectionLimits,
    /// How often `/mcp` fetches the agents' cards again, to follow agents that come and go
    /// (`notifications/tools/list_changed`). Default 5 s.
    pub mcp_refresh_interval: Duration,
    /// Authentication (API keys, bearer JWTs) and the authorization policy; off by default
    /// ([`AuthConfig`](crate::AuthConfig), the README's "Security").
    pub auth: crate::AuthConfig,
    /// HTTPS at the edge: the certificate chain (leaf first) and private key PEM files. Both
    /// set: the listener speaks only TLS (HTTP/2 via ALPN `h2`, else HTTP/1.1), the files are
    /// re-read when they change (no restart), and the default
    /// [`public_url`](Self::public_url) is `https://…`. Both unset (the default): plain HTTP.
    /// One without the other is refused. Binary: `--tls-cert`/`--tls-key`
    /// (`GATEWAY_TLS_CERT`/`GATEWAY_TLS_KEY`).
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of [`tls_cert`](Self::tls_cert).
    pub tls_key: Option<std::path::PathBuf>,
    /// How a task's upstream stream (SSE, WebSocket session) that breaks is resumed:
    /// attempts and backoff ([`StreamResume`]; defaults 12 attempts, 100 ms doubling to 1 s,
    /// 5 s per open; the README's "Resilience"). Binary: `--stream-resume-attempts`,
    /// `--stream-resume-backoff-ms`, `--stream-resume-max-backoff-ms`.
    pub stream_resume: StreamResume,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            cors_origins: Vec::new(),
            max_body_bytes: switchyard::server::DEFAULT_MAX_MESSAGE_BYTES,
            body_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(3600),
            deadline_margin: Duration::from_millis(100),
            sse_keepalive: Duration::from_secs(15),
            sse_buffer_events: 16,
            slow_client_timeout: Duration::from_secs(30),
            ws_max_message_bytes: 1024 * 1024,
            ws_buffer_frames: 8,
            ws_ping_interval: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(30),
            card_timeout: Duration::from_secs(5),
            card_max_age: Duration::from_secs(60),
            connections: ConnectionLimits::default(),
            mcp_refresh_interval: Duration::from_secs(5),
            auth: crate::AuthConfig::default(),
            tls_cert: None,
            tls_key: None,
            stream_resume: StreamResume::default(),
        }
    }
}

impl GatewayConfig {
    /// Checks the values that would make the gateway unusable.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("sse_buffer_events", self.sse_buffer_events),
            ("ws_max_message_bytes", self.ws_max_message_bytes),
            ("ws_buffer_frames", self.ws_buffer_frames),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        for (name, d) in [
            ("sse_keepalive", self.sse_keepalive),
            ("ws_ping_interval", self.ws_ping_interval),
            ("slow_client_timeout", self.slow_client_timeout),
            ("default_timeout", self.default_timeout),
            ("max_timeout", self.max_timeout),
            ("mcp_refresh_interval", self.mcp_refresh_interval),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be longer than zero"));
            }
        }
        if self.default_timeout > self.max_timeout {
            return Err(format!(
                "default_timeout ({:?}) must not exceed max_timeout ({:?})",
                self.default_timeout, self.max_timeout
            ));
        }
        self.connections.validate()?;
        self.stream_resume.validate()?;
        self.auth.validate()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tls_cert and tls_key must be set together (HTTPS needs both)".into());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "public_url {url:?} must start with http:// or https://"
            ));
        }
        Ok(())
    }
}
