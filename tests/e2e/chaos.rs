//! Chaos tests of the resilience layers ([`switchyard::resilience`]): three echo replicas as
//! real processes (this test binary started again, like `dns`), one agent of the registry
//! with their three `host:port` endpoints, driven through the registry's `Client` and through
//! the gateway. Faults: SIGKILL, a slow replica and one answering UNAVAILABLE (both through a
//! fault-injecting HTTP/2 proxy in front of a real replica: the fault is switched at run time,
//! and the replica itself stays the unmodified echo agent), a full outage.
//!
//! Every wait is bounded; loads run for a fixed, short time.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::{
    AgentRef, Client, Registry, RegistryConfig,
    error::A2aErrorKind,
    pb::a2a::ListTasksRequest,
    registry::{AgentConfig, DiscoveryConfig},
    resilience::{OutlierConfig, ResilienceConfig, RetryConfig},
    telemetry::metrics,
};
use tokio::process::Child;
use tower::{Service as _, ServiceExt as _};

use crate::gateway::{Gw, msg};

/// Bound on every wait.
const PATIENCE: Duration = Duration::from_secs(20);

/// Health-check interval of these tests.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// An echo replica process on a free port (the DNS test's replica process).
async fn replica() -> (Child, SocketAddr) {
    crate::dns::replica(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// SIGKILLs a replica and waits for it to be gone.
async fn kill(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("killed in time")
        .expect("wait");
}

/// The resilience settings of these tests: quick health checks and ejections.
fn settings() -> ResilienceConfig {
    ResilienceConfig {
        connect_timeout: Duration::from_millis(500),
        health_interval: HEALTH_INTERVAL,
        outlier: OutlierConfig {
            consecutive_failures: 3,
            base_ejection_time: Duration::from_secs(1),
            ..OutlierConfig::default()
        },
        ..ResilienceConfig::default()
    }
}

/// A registry with the agent `echo` at `endpoints`, and its agent.
fn registry(endpoints: &[SocketAddr], settings: ResilienceConfig) -> (Arc<Registry>, AgentRef) {
    metrics::install();
    let config = RegistryConfig {
        agents: vec![AgentConfig {
            name: "echo".into(),
            endpoints: endpoints.iter().map(ToString::to_string).collect(),
            card_url: None,
            public_grpc: false,
        }],
    };
    let registry = Arc::new(
        Registry::with_settings(&config, DiscoveryConfig::default(), settings).expect("registry"),
    );
    let agent = registry.agent("echo").expect("echo");
    (registry, agent)
}

/// Waits until the endpoints' availability is `want` (by address).
async fn wait_health(agent: &AgentRef, want: &[(SocketAddr, bool)]) {
    let want: BTreeMap<String, bool> = want.iter().map(|(a, h)| (a.to_string(), *h)).collect();
    let result = tokio::time::timeout(PATIENCE, async {
        loop {
            let now: BTreeMap<String, bool> = agent.endpoint_health().into_iter().collect();
            if want.iter().all(|(a, h)| now.get(a) == Some(h)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "health never became {want:?}: {:?}",
        agent.endpoint_health()
    );
}

/// The sum of the samples of `name` whose labels include `labels`, in this process's metrics.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = metrics::render().expect("the recorder is installed");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// Calls sent to `endpoint` so far.
fn picks(endpoint: SocketAddr) -> f64 {
    metric(
        "switchyard_client_balancer_picks_total",
        &[("endpoint", &endpoint.to_string())],
    )
}

/// Outcomes of a load.
#[derive(Debug, Default)]
struct Tally {
    reads: u64,
    sends: u64,
    /// Failed reads, with their error.
    failed_reads: Vec<String>,
    /// Failed sends, with their error.
    failed_sends: Vec<String>,
    /// Latency of every successful read.
    read_latencies: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Self) {
        self.reads += other.reads;
        self.sends += other.sends;
        self.failed_reads.extend(other.failed_reads);
        self.failed_sends.extend(other.failed_sends);
        self.read_latencies.extend(other.read_latencies);
    }

    fn p99(&self) -> Duration {
        let mut l = self.read_latencies.clone();
        l.sort();
        l.get((l.len() * 99 / 100).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// One read: ListTasks, or GetTask of an id no replica has (TASK_NOT_FOUND is the answer a
/// healthy agent gives). `Err` when it did not get that answer.
async fn read(client: &Client, i: u64) -> Result<(), String> {
    if i.is_multiple_of(2) {
        client
            .list_tasks(ListTasksRequest {
                page_size: Some(1),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        match client.get_task("no-such-task", Some(0)).await {
            Err(e) if e.a2a_kind() == Some(A2aErrorKind::TaskNotFound) => Ok(()),
            Err(e) => Err(e.to_string()),
            Ok(_) => Err("a task that does not exist".into()),
        }
    }
}

/// Runs `workers` loops through `client` for `length`: each call a read, or a send every
/// `send_every` calls (0: reads only).
async fn load(client: &Client, workers: u64, length: Duration, send_every: u64) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + length;
    let loops = (0..workers).map(|w| {
        let client = client.clone();
        let tally = tally.clone();
        async move {
            let mut i = w;
            while Instant::now() < until {
                i += 1;
                let started = Instant::now();
                if send_every > 0 && i.is_multiple_of(send_every) {
                    let r = client.send_text("chaos").await;
                    let mut t = tally.lock().expect("tally");
                    t.sends += 1;
                    if let Err(e) = r {
                        t.failed_sends.push(e.to_string());
                    }
                } else {
                    let r = read(&client, i).await;
                    let mut t = tally.lock().expect("tally");
                    t.reads += 1;
                    match r {
                        Ok(()) => t.read_latencies.push(started.elapsed()),
                        Err(e) => t.failed_reads.push(e),
                    }
                }
            }
        }
    });
    futures::future::join_all(loops).await;
    Arc::try_unwrap(tally)
        .expect("loops done")
        .into_inner()
        .expect("tally")
}

/// The same mixed load through the gateway's REST front: ListTasks, and a send every third
/// call, for `length` and then on until `min_reads` reads were made (a loaded machine is slow),
/// at most `4 × length` in all; (reads, failed reads, sends, failed sends with their HTTP
/// status).
async fn gateway_load(
    gw: &Gw,
    length: Duration,
    min_reads: u64,
) -> (u64, Vec<String>, u64, Vec<StatusCode>) {
    let started = Instant::now();
    let (mut reads, mut sends) = (0, 0);
    let (mut failed_reads, mut failed_sends) = (Vec::new(), Vec::new());
    let mut i = 0u64;
    while started.elapsed() < length || (reads < min_reads && started.elapsed() < length * 4) {
        i += 1;
        if i.is_multiple_of(3) {
            sends += 1;
            let r = gw
                .post_json(
                    "/agents/echo/message:send",
                    &json!({"message": msg("chaos", Value::Null)}),
                )
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .expect("the gateway answers");
            if r.status() != StatusCode::OK {
                failed_sends.push(r.status());
            }
        } else {
            reads += 1;
            let r = gw
                .req(reqwest::Method::GET, "/agents/echo/tasks?pageSize=1")
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .expect("the gateway answers");
            if r.status() != StatusCode::OK {
                let status = r.status();
                failed_reads.push(format!("{status}: {}", r.text().await.unwrap_or_default()));
            }
        }
    }
    (reads, failed_reads, sends, failed_sends)
}

#[tokio::test]
async fn a_killed_replica_fails_no_read_and_leaves_the_rotation() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica().await);
    }
    let addrs: Vec<SocketAddr> = replicas.iter().map(|(_, a)| *a).collect();
    let (registry, agent) = registry(&addrs, settings());
    wait_health(
        &agent,
        &[(addrs[0], true), (addrs[1], true), (addrs[2], true)],
    )
    .await;
    let gw = Gw::start_with_registry(registry.clone(), |_| {}).await;
    let client = agent.client().with_timeout(Duration::from_secs(5));

    let length = Duration::from_secs(3);
    let direct = load(&client, 4, length, 3);
    let through_gateway = gateway_load(&gw, length, 30);
    let victim = &mut replicas[0].0;
    let chaos = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        kill(victim).await;
        // Out of rotation (its health watch broke) well within the health interval.
        wait_health(&agent, &[(addrs[0], false)]).await;
        let at = picks(addrs[0]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        at
    };
    let (tally, (g_reads, g_failed_reads, g_sends, g_failed_sends), picks_after_kill) =
        tokio::join!(direct, through_gateway, chaos);
    println!(
        "client: {} reads, {} sends ({} failed); gateway: {g_reads} reads, {g_sends} sends \
         ({} failed: {g_failed_sends:?})",
        tally.reads,
        tally.sends,
        tally.failed_sends.len(),
        g_failed_sends.len()
    );
    assert!(tally.reads > 100 && g_reads > 20, "a real load: {tally:?}");
    assert!(
        tally.failed_reads.is_empty(),
        "no idempotent call fails: {:?}",
        tally.failed_reads
    );
    assert!(
        g_failed_reads.is_empty(),
        "no idempotent call fails through the gateway: {g_failed_reads:?}"
    );
    // Only sends in flight on the killed replica may fail, as UNAVAILABLE (the agent died
    // under them), at most one per caller.
    assert!(tally.failed_sends.len() <= 4, "{:?}", tally.failed_sends);
    assert!(
        tally
            .failed_sends
            .iter()
            .all(|e| e.starts_with("UNAVAILABLE")),
        "{:?}",
        tally.failed_sends
    );
    assert!(g_failed_sends.len() <= 1, "{g_failed_sends:?}");
    assert!(
        g_failed_sends
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE || *s == StatusCode::BAD_GATEWAY),
        "{g_failed_sends:?}"
    );
    // Calls go to the others once it is out.
    assert_eq!(
        picks(addrs[0]),
        picks_after_kill,
        "no call to the dead replica"
    );
    assert!(picks(addrs[1]) > 0.0 && picks(addrs[2]) > 0.0);
    gw.stop().await;
}

/// What the fault proxy does to calls other than health checks.
#[derive(Debug, Default)]
struct Fault {
    /// 0: pass, 1: delay, 2: answer UNAVAILABLE.
    mode: AtomicU8,
    delay_ms: AtomicU64,
    /// Calls (health checks excluded) that reached the proxy.
    calls: AtomicU64,
}

const PASS: u8 = 0;
const DELAY: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// An HTTP/2 proxy in front of the gRPC server at `target`, injecting `fault` into every call
/// but the `grpc.health.v1` ones (so that only what the callers see can take the replica out).
async fn fault_proxy(target: SocketAddr, fault: Arc<Fault>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{target}"))
        .expect("endpoint")
        .connect_lazy();
    tokio::spawn(async move {
        loop {
            let Ok((io, _)) = listener.accept().await else {
                return;
            };
            let channel = channel.clone();
            let fault = fault.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let mut channel = channel.clone();
                        let fault = fault.clone();
                        async move {
                            if !req.uri().path().starts_with("/grpc.health.v1.Health/") {
                                fault.calls.fetch_add(1, Ordering::Relaxed);
                                match fault.mode.load(Ordering::Relaxed) {
                                    DELAY => {
                                        let ms = fault.delay_ms.load(Ordering::Relaxed);
                                        tokio::time::sleep(Duration::from_millis(ms)).await;
                                    }
                                    UNAVAILABLE => {
                                        let r = http::Response::builder()
                                            .header("content-type", "application/grpc")
                                            .header("grpc-status", "14")
                                            .header("grpc-message", "injected%20fault")
                                            .body(tonic::body::Body::empty())
                                            .expect("response");
                                        return Ok(r);
                                    }
                                    _ => {}
                                }
                            }
                            let req = req.map(tonic::body::Body::new);
                            channel.ready().await?.call(req).await
                        }
                    });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                        .await;
            });
        }
    });
    addr
}

/// The delay of the slow replica: well above the healthy latency on a loaded 2-core machine
/// (tens of ms at the peaks), so that the balancer can tell them apart.
const SLOW_MS: u64 = 500;

/// Length of one round of load.
const ROUND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_slow_replica_gets_a_small_share_and_the_p99_holds() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica().await);
    }
    let fault = Arc::new(Fault::default());
    let slow = fault_proxy(replicas[2].1, fault.clone()).await;
    let addrs = [replicas[0].1, replicas[1].1, slow];
    let (_registry, agent) = registry(&addrs, settings());
    wait_health(
        &agent,
        &[(addrs[0], true), (addrs[1], true), (addrs[2], true)],
    )
    .await;
    let client = agent.client().with_timeout(Duration::from_secs(5));

    // Healthy first, for the reference p99; then slow rounds interleaved with healthy ones
    // (this machine's load varies by the second: the reference is taken at the same times).
    // One caller: the latency of each call is its own, not its queue's.
    let mut healthy = load(&client, 1, ROUND, 0).await;
    fault.delay_ms.store(SLOW_MS, Ordering::Relaxed);
    fault.mode.store(DELAY, Ordering::Relaxed);
    // Warm-up: the balancer learns the slow replica's latency from its first calls.
    load(&client, 1, Duration::from_millis(500), 0).await;
    let mut slowed = Tally::default();
    let mut to_slow = 0;
    for round in 0..3 {
        let before = fault.calls.load(Ordering::Relaxed);
        slowed.merge(load(&client, 1, ROUND, 0).await);
        to_slow += fault.calls.load(Ordering::Relaxed) - before;
        if round < 2 {
            fault.mode.store(PASS, Ordering::Relaxed);
            healthy.merge(load(&client, 1, ROUND, 0).await);
            fault.mode.store(DELAY, Ordering::Relaxed);
        }
    }
    let share = to_slow as f64 / slowed.reads as f64;
    println!(
        "healthy p99 {:?} ({} reads); with a replica slowed by {SLOW_MS} ms: p99 {:?} ({} reads), \
         {to_slow} calls ({:.2} %) to the slow one",
        healthy.p99(),
        healthy.reads,
        slowed.p99(),
        slowed.reads,
        share * 100.0
    );
    assert!(healthy.failed_reads.is_empty() && slowed.failed_reads.is_empty());
    assert!(share < 0.05, "the slow replica gets a small share: {share}");
    assert!(
        slowed.p99() < healthy.p99() * 2,
        "p99 {:?} stays below twice the healthy {:?}",
        slowed.p99(),
        healthy.p99()
    );
}

#[tokio::test]
async fn an_unavailable_replica_is_ejected_within_the_failures_and_returns_after_recovery() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica().await);
    }
    let fault = Arc::new(Fault::default());
    let bad = fault_proxy(replicas[2].1, fault.clone()).await;
    let addrs = [replicas[0].1, replicas[1].1, bad];
    let config = settings();
    let (_registry, agent) = registry(&addrs, config.clone());
    wait_health(
        &agent,
        &[(addrs[0], true), (addrs[1], true), (addrs[2], true)],
    )
    .await;
    let client = agent.client().with_timeout(Duration::from_secs(5));
    let ejected = |addr: SocketAddr| {
        metric(
            "switchyard_client_endpoint_ejected",
            &[("endpoint", &addr.to_string())],
        )
    };

    fault.mode.store(UNAVAILABLE, Ordering::Relaxed);
    // One caller, so that the calls the bad replica gets are counted exactly; for as long as
    // the balancer takes to pick it that many times (a loaded machine makes fewer calls in a
    // fixed time; at most 10 s), then a while more, in which an ejected replica gets none.
    let failures = u64::from(config.outlier.consecutive_failures);
    let mut during = Tally::default();
    let give_up = Instant::now() + Duration::from_secs(10);
    while fault.calls.load(Ordering::Relaxed) < failures && Instant::now() < give_up {
        during.merge(load(&client, 1, Duration::from_millis(200), 0).await);
    }
    during.merge(load(&client, 1, Duration::from_millis(300), 0).await);
    let hits = fault.calls.load(Ordering::Relaxed);
    assert!(
        during.failed_reads.is_empty(),
        "reads are retried on the others: {:?}",
        during.failed_reads
    );
    assert_eq!(ejected(bad), 1.0, "ejected");
    assert_eq!(
        hits, failures,
        "ejected after exactly the configured failures"
    );
    assert!(
        metric(
            "switchyard_client_retries_total",
            &[("reason", "unavailable")]
        ) >= 3.0
    );
    assert!(!agent.endpoint_health()[2].1, "unavailable while ejected");

    // Recovered: after the ejection time, one probe brings it back.
    fault.mode.store(PASS, Ordering::Relaxed);
    tokio::time::sleep(config.outlier.base_ejection_time).await;
    let after = load(&client, 2, Duration::from_millis(800), 0).await;
    assert!(after.failed_reads.is_empty(), "{:?}", after.failed_reads);
    assert_eq!(ejected(bad), 0.0, "back in rotation");
    assert!(
        fault.calls.load(Ordering::Relaxed) > hits + 5,
        "it takes calls again"
    );
}

#[tokio::test]
async fn a_full_outage_is_a_fast_clear_error_and_the_budget_caps_retries() {
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica().await);
    }
    let addrs: Vec<SocketAddr> = replicas.iter().map(|(_, a)| *a).collect();
    // A small floor, so that the share is what limits.
    let config = ResilienceConfig {
        retry: RetryConfig {
            budget_min_per_sec: 1,
            budget_window: Duration::from_secs(1),
            ..RetryConfig::default()
        },
        ..settings()
    };
    let (_registry, agent) = registry(&addrs, config.clone());
    wait_health(
        &agent,
        &[(addrs[0], true), (addrs[1], true), (addrs[2], true)],
    )
    .await;
    for (child, _) in &mut replicas {
        kill(child).await;
    }
    wait_health(
        &agent,
        &[(addrs[0], false), (addrs[1], false), (addrs[2], false)],
    )
    .await;
    let client = agent.client().with_timeout(Duration::from_secs(5));
    let attempts = || addrs.iter().map(|a| picks(*a)).sum::<f64>();
    let before = attempts();
    let started = Instant::now();
    let calls = 200u64;
    let mut slowest = Duration::ZERO;
    for i in 0..calls {
        let t = Instant::now();
        let e = read(&client, i).await.expect_err("everything is down");
        slowest = slowest.max(t.elapsed());
        assert!(e.starts_with("UNAVAILABLE"), "a clear error: {e}");
    }
    let elapsed = started.elapsed();
    let extra = attempts() - before - calls as f64;
    let exhausted = metric("switchyard_client_retry_budget_exhausted_total", &[]);
    println!(
        "{calls} calls in {elapsed:?} (slowest {slowest:?}): {extra} retries, budget refused \
         {exhausted}"
    );
    // 20 % of the calls plus the floor (1 per second, over the run and one window of
    // reserve), with a margin for the budget's time slots; without a budget it would be two
    // retries per call.
    let cap = calls as f64 * (f64::from(config.retry.budget_percent) + 5.0) / 100.0
        + f64::from(config.retry.budget_min_per_sec)
            * (elapsed.as_secs_f64() + config.retry.budget_window.as_secs_f64() + 1.0);
    assert!(extra <= cap, "{extra} retries, cap {cap}");
    assert!(extra >= 1.0, "some calls were retried");
    assert!(exhausted > 0.0, "the budget said no");
    assert!(slowest < Duration::from_secs(1), "fast: {slowest:?}");
}

#[tokio::test]
async fn a_dead_agent_is_unavailable_in_readyz_and_agents_and_its_stream_ends_unavailable() {
    let (mut child, addr) = replica().await;
    let (registry, agent) = registry(&[addr], settings());
    wait_health(&agent, &[(addr, true)]).await;
    let gw = Gw::start_with_registry(registry, |_| {}).await;
    let ready = |gw: &Gw| {
        let r = gw.req(reqwest::Method::GET, "/readyz").send();
        async move {
            let body = r.await.expect("readyz").bytes().await.expect("body");
            serde_json::from_slice::<Value>(&body).expect("json")
        }
    };
    let available = |gw: &Gw| {
        let r = gw.req(reqwest::Method::GET, "/agents").send();
        async move {
            let body = r.await.expect("agents").bytes().await.expect("body");
            let v: Value = serde_json::from_slice(&body).expect("json");
            v["agents"][0]["available"].clone()
        }
    };
    assert_eq!(ready(&gw).await["status"], "ready");
    assert_eq!(available(&gw).await, json!(true));

    // A stream in progress when the agent dies.
    let r = gw
        .post_json(
            "/agents/echo/message:stream",
            &json!({"message": msg("long", json!({"chunks": 100, "chunk_delay_ms": 50}))}),
        )
        .send()
        .await
        .expect("stream");
    assert_eq!(r.status(), StatusCode::OK);
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    let first = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event in time");
    assert!(first.is_some());
    kill(&mut child).await;
    let killed = Instant::now();
    let last = tokio::time::timeout(PATIENCE, async {
        let mut last = None;
        while let Some(e) = events.next().await {
            last = Some(e.expect("well-formed SSE"));
        }
        last.expect("an event")
    })
    .await
    .expect("the stream ends in time");
    assert_eq!(last.event, "error", "{last:?}");
    let error: Value = serde_json::from_str(&last.data).expect("JSON");
    // UNAVAILABLE (retryable), not 500 UNKNOWN: 502 as the agent failed to answer.
    assert_eq!(error["error"]["status"], "UNAVAILABLE", "{error}");
    assert!(
        error["error"]["code"] == 502 || error["error"]["code"] == 503,
        "{error}"
    );

    // Readiness and the directory within the health-check interval.
    let seen = tokio::time::timeout(HEALTH_INTERVAL * 2, async {
        loop {
            let r = ready(&gw).await;
            if r["unavailable"] == json!(["echo"]) && available(&gw).await == json!(false) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dead agent shows within the interval");
    assert_eq!(seen["status"], "degraded");
    println!("dead agent reported {:?} after the kill", killed.elapsed());
    gw.stop().await;
}

#[tokio::test]
async fn an_agent_at_its_limit_pushes_back_and_callers_go_elsewhere_or_get_429() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limited = |c: &mut switchyard::ServeConfig| c.max_concurrent_executions = Some(1);
    let busy =
        switchyard_e2e::Served::start_in(switchyard_echo::Echo, &dir.path().join("a"), limited)
            .await;
    let other =
        switchyard_e2e::Served::start_in(switchyard_echo::Echo, &dir.path().join("b"), limited)
            .await;
    // Occupy the one place of `busy`.
    let long = switchyard_e2e::message("hold", json!({"delay_ms": 20000}));
    let mut hold = switchyard_e2e::request(long);
    hold.configuration = Some(switchyard::pb::a2a::SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    busy.client.send_message(hold.clone()).await.expect("held");

    // Straight to it: RESOURCE_EXHAUSTED with the pushback, and no task created.
    let status = switchyard_e2e::status_of(busy.client.send_text("more").await);
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get(switchyard::resilience::retry::PUSHBACK)
            .expect("pushback"),
        "200"
    );

    // Through a registry of both: the pushback sends the call to the other replica, and the
    // busy one is not ejected for it.
    let (registry, agent) = registry(&[busy.addr, other.addr], settings());
    wait_health(&agent, &[(busy.addr, true), (other.addr, true)]).await;
    let client = agent.client().with_timeout(Duration::from_secs(5));
    for _ in 0..10 {
        client
            .send_text("elsewhere")
            .await
            .expect("the other replica");
    }
    assert!(metric("switchyard_client_pushback_total", &[("retry", "true")]) >= 1.0);
    assert_eq!(
        metric(
            "switchyard_client_ejections_total",
            &[("endpoint", &busy.addr.to_string())]
        ),
        0.0,
        "load is not a failure"
    );

    // Both busy: the gateway answers 429 with Retry-After.
    other.client.send_message(hold).await.expect("held");
    let gw = Gw::start_with_registry(registry, |_| {}).await;
    let r = gw
        .post_json(
            "/agents/echo/message:send",
            &json!({"message": msg("full", Value::Null)}),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[reqwest::header::RETRY_AFTER], "1");
    gw.stop().await;
}

/// What each execution saw: the agent, its remaining deadline, and when.
type Seen = Arc<Mutex<Vec<(&'static str, Option<Duration>, Instant)>>>;

/// Records the deadline each execution sees, then runs the inner agent.
struct Recorded<A> {
    inner: A,
    seen: Seen,
    name: &'static str,
}

#[tonic::async_trait]
impl<A: switchyard::Agent> switchyard::Agent for Recorded<A> {
    fn card(&self) -> switchyard::pb::a2a::AgentCard {
        self.inner.card()
    }
    async fn execute(
        &self,
        ctx: switchyard::TaskContext,
        events: switchyard::TaskEvents,
    ) -> Result<(), switchyard::AgentError> {
        self.seen
            .lock()
            .expect("seen")
            .push((self.name, ctx.remaining(), Instant::now()));
        self.inner.execute(ctx, events).await
    }
}

/// Waits until canceled (by its deadline), and records when.
struct UntilCanceled(Arc<Mutex<Option<Instant>>>);

#[tonic::async_trait]
impl switchyard::Agent for UntilCanceled {
    fn card(&self) -> switchyard::pb::a2a::AgentCard {
        switchyard::card::builder("slow", "Waits until canceled").build()
    }
    async fn execute(
        &self,
        ctx: switchyard::TaskContext,
        _events: switchyard::TaskEvents,
    ) -> Result<(), switchyard::AgentError> {
        ctx.cancellation().cancelled().await;
        *self.0.lock().expect("slot") = Some(Instant::now());
        Err(switchyard::AgentError::Canceled)
    }
}

#[tokio::test]
async fn a_deadline_shrinks_over_three_hops_and_nothing_runs_past_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stopped = Arc::new(Mutex::new(None));
    let textstats = switchyard_e2e::Served::start_arc_in(
        Arc::new(Recorded {
            inner: switchyard_textstats::TextStats,
            seen: seen.clone(),
            name: "textstats",
        }),
        &dir.path().join("textstats"),
        |_| {},
    )
    .await;
    let slow = switchyard_e2e::Served::start_arc_in(
        Arc::new(Recorded {
            inner: UntilCanceled(stopped.clone()),
            seen: seen.clone(),
            name: "slow",
        }),
        &dir.path().join("slow"),
        |_| {},
    )
    .await;
    let subs = Registry::new(&RegistryConfig {
        agents: vec![
            crate::gateway::agent("textstats", textstats.addr),
            crate::gateway::agent("slow", slow.addr),
        ],
    })
    .expect("registry");
    let research = switchyard_research::Research::new(
        Arc::new(subs),
        switchyard_research::ResearchConfig {
            agents: vec!["textstats".into(), "slow".into()],
            deadline_margin: Duration::from_millis(200),
            ..Default::default()
        },
    );
    let research = switchyard_e2e::Served::start_arc_in(
        Arc::new(Recorded {
            inner: research,
            seen: seen.clone(),
            name: "research",
        }),
        &dir.path().join("research"),
        |_| {},
    )
    .await;
    let gw = Gw::start(
        vec![crate::gateway::agent("research", research.addr)],
        |_| {},
    )
    .await;

    let timeout = Duration::from_millis(2000);
    let sent = Instant::now();
    let caller_deadline = sent + timeout;
    let r = gw
        .post_json(
            "/agents/research/message:send",
            &json!({"message": msg("Deadlines shrink. Every hop passes on less.", Value::Null)}),
        )
        .header("x-timeout-ms", timeout.as_millis().to_string())
        .send()
        .await
        .expect("answer");
    let answered = Instant::now();
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(answered <= caller_deadline, "answered in time");

    let seen = seen.lock().expect("seen").clone();
    let at = |name: &str| {
        seen.iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} ran: {seen:?}"))
    };
    let (_, research_left, research_at) = at("research");
    let (_, stats_left, stats_at) = at("textstats");
    let (_, slow_left, _) = at("slow");
    let research_left = research_left.expect("research has a deadline");
    let stats_left = stats_left.expect("textstats has a deadline");
    let slow_left = slow_left.expect("slow has a deadline");
    println!(
        "caller {timeout:?} → research {research_left:?} → textstats {stats_left:?}, slow \
         {slow_left:?}"
    );
    // Each hop sees less than the one before, by at least what the time in between took.
    assert!(research_left < timeout);
    assert!(stats_left < research_left);
    assert!(slow_left < research_left);
    assert!(*research_at + research_left <= caller_deadline + Duration::from_millis(5));
    assert!(*stats_at + stats_left <= *research_at + research_left);
    // The sub-agent that would run forever was stopped before the caller's deadline.
    let stopped = stopped.lock().expect("slot").expect("slow was canceled");
    assert!(stopped <= caller_deadline, "nothing runs past the deadline");
    gw.stop().await;
}

/// One SSE stream's events: each event's `id:` (sequence number) and its JSON, and whether
/// an `event: error` came.
#[derive(Debug, Default)]
struct Streamed {
    ids: Vec<u64>,
    events: Vec<Value>,
    errors: Vec<String>,
}

impl Streamed {
    fn push(&mut self, e: eventsource_stream::Event) {
        if e.event == "error" {
            self.errors.push(e.data);
            return;
        }
        if let Ok(id) = e.id.parse() {
            self.ids.push(id);
        }
        self.events
            .push(serde_json::from_str(&e.data).expect("an event is JSON"));
    }

    /// One WebSocket frame of the send `reply_to` (`{"inReplyTo","event"|"error"}`): its
    /// event with the sequence number the agent stamped on it, or its error.
    fn push_frame(&mut self, frame: &Value, reply_to: &str) {
        assert_eq!(frame["inReplyTo"], json!(reply_to), "{frame}");
        if frame.get("error").is_some() {
            self.errors.push(frame["error"].to_string());
            return;
        }
        let event = &frame["event"];
        let seq = event
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|p| p["metadata"]["switchyard.sequence"].as_f64());
        if let Some(seq) = seq {
            self.ids.push(seq as u64);
        }
        self.events.push(event.clone());
    }

    /// The artifacts as a client reassembles them (A2A: `append` adds the chunk's parts, else
    /// the chunk replaces the artifact), by name (ids differ between tasks), and how many
    /// artifact updates came.
    fn artifacts(&self) -> (BTreeMap<String, Vec<Value>>, usize) {
        let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut updates = 0;
        for e in &self.events {
            let Some(u) = e.get("artifactUpdate") else {
                continue;
            };
            updates += 1;
            let a = &u["artifact"];
            let name = a["name"].as_str().unwrap_or_default().to_owned();
            let parts = a["parts"].as_array().cloned().unwrap_or_default();
            if u["append"] == json!(true) {
                out.entry(name).or_default().extend(parts);
            } else {
                out.insert(name, parts);
            }
        }
        (out, updates)
    }

    /// The state of the last status update.
    fn last_state(&self) -> Value {
        self.events
            .iter()
            .rev()
            .find_map(|e| e.get("statusUpdate").map(|u| u["status"]["state"].clone()))
            .unwrap_or(Value::Null)
    }
}

/// Issue 13 items 6 and 8: an SSE stream, then a WebSocket session, through the gateway while
/// their agent is SIGKILLed and restarted on the same data dir (one setup and one
/// uninterrupted reference run for both). The gateway re-subscribes after the last event it
/// forwarded; the restarted agent resumes the task from its checkpoint: the client sees no
/// error, sequence numbers without gap or duplicate, and the same artifacts (and as many
/// artifact updates) as an uninterrupted run. On the WebSocket, a message sent after the
/// break (the Converse call's request half is gone) gets a retryable UNAVAILABLE `error`
/// frame, and the session closes with 1013 once its task completed.
#[tokio::test]
async fn an_sse_stream_and_a_websocket_session_survive_their_agent_killed_and_restarted() {
    const CHUNKS: u64 = 30;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("echo.db");
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (mut child, addr) = crate::dns::replica_with_store(any, Some(&db)).await;
    let (registry, agent) = registry(&[addr], settings());
    wait_health(&agent, &[(addr, true)]).await;
    let gw = Gw::start_with_registry(registry, |_| {}).await;
    let open = |gw: &Gw| {
        let body = json!({"message": msg(
            "survive",
            json!({"chunks": CHUNKS, "chunk_delay_ms": 30}),
        )});
        let r = gw.post_json("/agents/echo/message:stream", &body).send();
        async move {
            let r = r.await.expect("stream");
            assert_eq!(r.status(), StatusCode::OK);
            eventsource_stream::Eventsource::eventsource(r.bytes_stream())
        }
    };

    // An uninterrupted run.
    let mut reference = Streamed::default();
    let mut events = open(&gw).await;
    tokio::time::timeout(PATIENCE, async {
        while let Some(e) = events.next().await {
            reference.push(e.expect("well-formed SSE"));
        }
    })
    .await
    .expect("the uninterrupted run ends in time");
    let (want, want_updates) = reference.artifacts();
    assert!(reference.errors.is_empty(), "{:?}", reference.errors);
    assert_eq!(want_updates as u64, CHUNKS + 1, "{want:?}");
    assert_eq!(want["chunks"].len() as u64, CHUNKS);

    // The same run, its agent killed after a few chunks and restarted on the same store.
    let mut run = Streamed::default();
    let mut events = open(&gw).await;
    tokio::time::timeout(PATIENCE, async {
        while run.artifacts().1 < 5 {
            let e = events.next().await.expect("the stream goes on");
            run.push(e.expect("well-formed SSE"));
        }
    })
    .await
    .expect("five chunks in time");
    kill(&mut child).await;
    let resumes = || {
        metric(
            "switchyard_gateway_stream_resumes_total",
            &[("outcome", "resumed")],
        )
    };
    let before = resumes();
    let (mut restarted, again) = crate::dns::replica_with_store(addr, Some(&db)).await;
    assert_eq!(again, addr);
    tokio::time::timeout(PATIENCE, async {
        while let Some(e) = events.next().await {
            run.push(e.expect("well-formed SSE"));
        }
    })
    .await
    .expect("the resumed stream ends in time");

    assert!(run.errors.is_empty(), "no error event: {:?}", run.errors);
    let first = run.ids[0];
    let expected: Vec<u64> = (first..first + run.ids.len() as u64).collect();
    assert_eq!(run.ids, expected, "no gap, no duplicate");
    assert_eq!(run.last_state(), json!("TASK_STATE_COMPLETED"));
    let (got, updates) = run.artifacts();
    assert_eq!(
        got, want,
        "the reassembled artifacts of an uninterrupted run"
    );
    assert_eq!(updates, want_updates, "no artifact chunk twice");
    assert!(resumes() > before, "the gateway re-subscribed");

    // A WebSocket session's task, its agent killed and restarted again.
    use crate::gateway_ws::{close_of, connect, next, send};
    let mut ws = connect(&gw, "echo").await;
    let mut m = msg("survive", json!({"chunks": CHUNKS, "chunk_delay_ms": 30}));
    m["messageId"] = json!("w1");
    send(&mut ws, json!({"send": {"message": m}})).await;
    let mut run = Streamed::default();
    while run.artifacts().1 < 5 {
        run.push_frame(&next(&mut ws).await, "w1");
    }
    kill(&mut restarted).await;
    // Sent as the call breaks: its request half is lost, the client is told to retry.
    let mut late = msg("late", Value::Null);
    late["messageId"] = json!("w2");
    send(&mut ws, json!({"send": {"message": late}})).await;
    let before = resumes();
    let (_restarted, again) = crate::dns::replica_with_store(addr, Some(&db)).await;
    assert_eq!(again, addr);
    let mut refused = None;
    while run.last_state() != json!("TASK_STATE_COMPLETED") {
        let frame = next(&mut ws).await;
        if frame["inReplyTo"] == "w2" {
            refused = Some(frame);
            continue;
        }
        run.push_frame(&frame, "w1");
    }
    let (code, reason) = close_of(&mut ws).await;
    let refused = refused.expect("an error frame for the message sent after the break");
    assert_eq!(
        refused["error"]["code"],
        json!(14),
        "UNAVAILABLE: {refused}"
    );
    assert!(run.errors.is_empty(), "no error frame: {:?}", run.errors);
    let first = run.ids[0];
    let expected: Vec<u64> = (first..first + run.ids.len() as u64).collect();
    assert_eq!(run.ids, expected, "no gap, no duplicate");
    let (got, updates) = run.artifacts();
    assert_eq!(
        got, want,
        "the reassembled artifacts of an uninterrupted run"
    );
    assert_eq!(updates, want_updates, "no artifact chunk twice");
    assert!(resumes() > before, "the gateway re-subscribed");
    assert_eq!(code, 1013, "try again later: {reason}");
    gw.stop().await;
}
