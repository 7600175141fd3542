//! The HTTP gateway (`switchyard-gateway`) in front of real agents, all on 127.0.0.1:0, driven
//! with real HTTP, SSE and WebSocket clients. This module holds the fixture; the tests are in
//! `gateway_ops` (routing, ops, drain), `gateway_limits` (deadlines, sizes, load, CORS) and one
//! module per front (`gateway_jsonrpc`, `gateway_rest`, `gateway_sse`, `gateway_ws`,
//! `gateway_card`, `gateway_python`).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde_json::{Value, json};
use switchyard::{Registry, RegistryConfig, registry::AgentConfig};
use switchyard_e2e::{Served, assert_utc_timestamps};
use switchyard_gateway::{Gateway, GatewayConfig, ShutdownHandle};
use tokio::task::JoinHandle;

/// Bound on every wait of these tests.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A gateway serving a test.
pub(crate) struct Gw {
    /// `http://127.0.0.1:port`.
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    stop: ShutdownHandle,
    join: JoinHandle<()>,
}

/// An agent entry for the registry.
pub(crate) fn agent(name: &str, addr: SocketAddr) -> AgentConfig {
    AgentConfig {
        name: name.into(),
        endpoints: vec![addr.to_string()],
        card_url: None,
        public_grpc: false,
    }
}

/// A `host:port` where nothing listens.
pub(crate) async fn dead_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

impl Gw {
    /// A gateway for `agents`, with cards loaded, after `tweak` adjusts the config.
    pub(crate) async fn start(
        agents: Vec<AgentConfig>,
        tweak: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        let registry = Arc::new(Registry::new(&RegistryConfig { agents }).expect("registry"));
        Self::start_with_registry(registry, tweak).await
    }

    /// A gateway for the agents of `registry`, with cards loaded, after `tweak` adjusts the
    /// config.
    pub(crate) async fn start_with_registry(
        registry: Arc<Registry>,
        tweak: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        switchyard::install_crypto_provider();
        registry.load_cards(Duration::from_secs(5)).await;
        let mut config = GatewayConfig {
            drain_timeout: Duration::from_secs(5),
            ..GatewayConfig::default()
        };
        tweak(&mut config);
        let gateway = Gateway::bind(config, registry).await.expect("bind");
        let url = format!("http://{}", gateway.local_addr());
        let stop = gateway.shutdown_handle();
        let join = tokio::spawn(gateway.run());
        let http = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .expect("client");
        Self {
            url,
            http,
            stop,
            join,
        }
    }

    /// The echo agent as `echo`, behind a gateway with config changes.
    pub(crate) async fn echo_with(
        tweak: impl FnOnce(&mut GatewayConfig),
    ) -> (Self, Served, Arc<tempfile::TempDir>) {
        let (echo, dir) = Served::echo().await;
        let gw = Self::start(vec![agent("echo", echo.addr)], tweak).await;
        (gw, echo, dir)
    }

    /// The echo agent as `echo`, behind a default gateway.
    pub(crate) async fn echo() -> (Self, Served, Arc<tempfile::TempDir>) {
        Self::echo_with(|_| {}).await
    }

    /// A request to `path` carrying `A2A-Version: 1.0`.
    pub(crate) fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("A2A-Version", "1.0")
    }

    /// POSTs a JSON body.
    pub(crate) fn post_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.req(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    /// A JSON-RPC call to `agent`; asserts HTTP 200 and returns the response object.
    pub(crate) async fn rpc(&self, agent: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let r = self
            .post_json(&format!("/agents/{agent}"), &body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK, "JSON-RPC answers are HTTP 200");
        json_of(r).await
    }

    /// Starts the drain and waits until the gateway has stopped.
    pub(crate) async fn stop(self) {
        self.stop.shutdown();
        tokio::time::timeout(PATIENCE, self.join)
            .await
            .expect("drained in time")
            .expect("gateway task");
    }
}

/// The body as JSON; asserts every timestamp in it is UTC with `Z` (ProtoJSON).
pub(crate) async fn json_of(r: Response) -> Value {
    let bytes = r.bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert_utc_timestamps(&v);
    v
}

/// A user message as protobuf JSON, with test-behaviour metadata for the echo agent.
pub(crate) fn msg(text: &str, metadata: Value) -> Value {
    let mut m = json!({
        "messageId": format!("m-{text}-{}", uuid_like()),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
    });
    if metadata.is_object() {
        m["metadata"] = metadata;
    }
    m
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One SSE event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sse {
    /// `event:` (`message` when absent).
    pub(crate) event: String,
    /// `id:` (the last one seen, as EventSource keeps it).
    pub(crate) id: String,
    pub(crate) data: Value,
}

/// Reads every event of an SSE response until the server closes it; asserts every timestamp in
/// the events is UTC with `Z`.
pub(crate) async fn sse_all(r: Response) -> Vec<Sse> {
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut events = r.bytes_stream().eventsource();
    let mut out = Vec::new();
    let read = async {
        while let Some(e) = events.next().await {
            let e = e.expect("well-formed SSE");
            let data = serde_json::from_str(&e.data).expect("JSON data");
            assert_utc_timestamps(&data);
            out.push(Sse {
                event: e.event,
                id: e.id,
                data,
            });
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("stream ended in time");
    out
}

/// `task:SUBMITTED`, `status:WORKING`, `artifact:echo`, `message` for a StreamResponse JSON.
pub(crate) fn kind(event: &Value) -> String {
    let state = |s: &Value| {
        s["state"]
            .as_str()
            .unwrap_or("?")
            .trim_start_matches("TASK_STATE_")
            .to_owned()
    };
    if let Some(t) = event.get("task") {
        format!("task:{}", state(&t["status"]))
    } else if let Some(u) = event.get("statusUpdate") {
        format!("status:{}", state(&u["status"]))
    } else if let Some(u) = event.get("artifactUpdate") {
        format!("artifact:{}", u["artifact"]["name"].as_str().unwrap_or("?"))
    } else if event.get("message").is_some() {
        "message".into()
    } else {
        format!("other:{event}")
    }
}

/// Starts a task that runs in the background (returnImmediately); returns its id.
pub(crate) async fn start_task(gw: &Gw, agent: &str, message: Value) -> String {
    let r = gw
        .rpc(
            agent,
            "SendMessage",
            json!({"message": message, "configuration": {"returnImmediately": true}}),
        )
        .await;
    r["result"]["task"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {r}"))
        .to_owned()
}
