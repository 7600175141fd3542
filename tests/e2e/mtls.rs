//! mTLS between workloads (issue 14): agents refuse plain text and certificates of another
//! CA, callers' SPIFFE IDs reach the agent (`TaskContext::peer_identity`), the research
//! agent's fan-out carries its own SPIFFE ID, certificate files and the CA bundle rotated
//! mid-run are picked up without a restart, and the gateway's edge speaks HTTPS with HTTP/2 via ALPN.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use switchyard::{
    Agent, AgentError, AgentServer, Client, Registry, RegistryConfig, ServeConfig, ShutdownHandle,
    StoreConfig, TaskContext, TaskEvents, card,
    identity::SpiffeId,
    pb::a2a::{AgentCard, Artifact, Part},
    registry::AgentConfig,
    resilience::ResilienceConfig,
    tls::{ClientTls, MeshTls, dev::DevCa},
};

const DOMAIN: &str = "switchyard.test";

/// The SPIFFE IDs (or `None`) of the callers an agent saw, in order.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// Records the SPIFFE ID of every caller and answers with it.
struct Whoami {
    name: &'static str,
    seen: Seen,
}

#[tonic::async_trait]
impl Agent for Whoami {
    fn card(&self) -> AgentCard {
        card::builder(self.name, "Answers with the caller's SPIFFE ID").build()
    }
    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let peer = ctx.peer_identity().map(|p| p.0.to_string());
        self.seen.lock().expect("lock").push(peer.clone());
        events
            .artifact(Artifact::new(
                "peer",
                vec![Part::text(peer.unwrap_or_else(|| "none".into()))],
            ))
            .await?;
        Ok(())
    }
}

fn id(path: &[&str]) -> SpiffeId {
    SpiffeId::workload(DOMAIN, path).expect("valid SPIFFE ID")
}

/// The mesh material of workload `name` (`agent/<name>`, or a bare path such as `cli`).
fn identity(ca: &DevCa, name: &str, path: &[&str]) -> MeshTls {
    let files = ca.issue(name, &id(path)).expect("issue");
    MeshTls::load(&files).expect("load")
}

struct Running {
    addr: std::net::SocketAddr,
    stop: ShutdownHandle,
    join: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.shutdown();
        let _ = self.join.await;
    }
}

async fn serve(agent: Arc<dyn Agent>, tls: Option<MeshTls>) -> Running {
    let server = AgentServer::bind_arc(
        agent,
        ServeConfig {
            store: StoreConfig::Memory,
            drain_timeout: Duration::from_secs(5),
            tls,
            ..Default::default()
        },
    )
    .await
    .expect("bind");
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let join = tokio::spawn(server.run());
    Running { addr, stop, join }
}

fn whoami(name: &'static str) -> (Arc<dyn Agent>, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    (
        Arc::new(Whoami {
            name,
            seen: seen.clone(),
        }),
        seen,
    )
}

/// The text of the artifact `peer` of a call from `client`.
async fn peer_seen_by(client: &Client) -> String {
    let task = client
        .clone()
        .with_timeout(Duration::from_secs(30))
        .send_text("who am I?")
        .await
        .expect("call");
    task.artifacts[0].parts[0]
        .as_text()
        .expect("text")
        .to_owned()
}

/// A call over `client` to `addr` that must fail: the connection or the call is refused.
async fn refused(addr: &str, tls: Option<&ClientTls>) -> String {
    match Client::connect_with(addr, tls).await {
        Err(e) => e.to_string(),
        Ok(c) => match c
            .with_timeout(Duration::from_secs(30))
            .send_text("let me in")
            .await
        {
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
                e.to_string()
            }
            Ok(t) => panic!("the agent answered a call it must refuse: {t:?}"),
        },
    }
}

#[tokio::test]
async fn agents_refuse_plain_text_and_other_cas_and_see_the_callers_spiffe_id() {
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::ensure(&dir.path().join("certs"), DOMAIN).expect("CA");
    let (agent, seen) = whoami("whoami");
    let server = serve(agent, Some(identity(&ca, "whoami", &["agent", "whoami"]))).await;
    let addr = server.addr.to_string();

    // A caller of the mesh: its SPIFFE ID reaches the agent.
    let cli = identity(&ca, "cli", &["cli"]).client().expect("client");
    let client = Client::connect_with(&addr, Some(&cli))
        .await
        .expect("connect");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");
    // `https://` addresses work the same.
    let client = Client::connect_with(&format!("https://{addr}"), Some(&cli))
        .await
        .expect("connect https://");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");

    // Plain text: refused.
    refused(&addr, None).await;
    // `https://` without a certificate: refused before any connection, with the reason.
    let e = Client::connect(&format!("https://{addr}"))
        .await
        .expect_err("no TLS identity");
    assert!(e.to_string().contains("SWITCHYARD_TLS_CA"), "{e}");

    // Same trust domain, same names, another CA: refused.
    let other = DevCa::ensure(&dir.path().join("other"), DOMAIN).expect("other CA");
    let intruder = identity(&other, "cli", &["cli"]).client().expect("client");
    refused(&addr, Some(&intruder)).await;

    // And the client refuses a server of another CA.
    let (fake, fake_seen) = whoami("whoami");
    let impostor = serve(fake, Some(identity(&other, "whoami", &["agent", "whoami"]))).await;
    refused(&impostor.addr.to_string(), Some(&cli)).await;
    assert!(fake_seen.lock().expect("lock").is_empty());

    // A client of another trust domain, even with a certificate of this CA: refused.
    let foreign = ca
        .issue(
            "foreign",
            &SpiffeId::parse("spiffe://elsewhere.test/cli").expect("id"),
        )
        .expect("issue");
    let foreign = MeshTls::load(&foreign)
        .expect("load")
        .client()
        .expect("client");
    refused(&addr, Some(&foreign)).await;

    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        [
            Some("spiffe://switchyard.test/cli".to_owned()),
            Some("spiffe://switchyard.test/cli".to_owned())
        ],
        "only the two mesh calls reached the agent"
    );
    server.stop().await;
    impostor.stop().await;
}

#[tokio::test]
async fn the_research_agents_calls_carry_its_spiffe_id() {
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::ensure(&dir.path().join("certs"), DOMAIN).expect("CA");
    let (keywords, seen) = whoami("keywords");
    let keywords = serve(
        keywords,
        Some(identity(&ca, "keywords", &["agent", "keywords"])),
    )
    .await;
    let research_tls = identity(&ca, "research", &["agent", "research"]);
    let registry = Registry::with_settings(
        &RegistryConfig {
            agents: vec![AgentConfig {
                name: "keywords".into(),
                endpoints: vec![keywords.addr.to_string()],
                card_url: None,
                public_grpc: false,
            }],
        },
        Default::default(),
        ResilienceConfig {
            tls: Some(research_tls.client().expect("client")),
            ..ResilienceConfig::default()
        },
    )
    .expect("registry");
    let research = switchyard_research::Research::new(
        Arc::new(registry),
        switchyard_research::ResearchConfig {
            agents: vec!["keywords".into()],
            ..Default::default()
        },
    );
    let research = serve(Arc::new(research), Some(research_tls)).await;
    let cli = identity(&ca, "cli", &["cli"]).client().expect("client");
    let client = Client::connect_with(&research.addr.to_string(), Some(&cli))
        .await
        .expect("connect");
    let task = client
        .with_timeout(Duration::from_secs(60))
        .send_text("Switchyard routes messages between agents over mutual TLS.")
        .await
        .expect("research");
    assert!(!task.artifacts.is_empty(), "{task:?}");
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        [Some("spiffe://switchyard.test/agent/research".to_owned())],
        "the sub-agent saw research's SPIFFE ID, not the CLI's"
    );
    research.stop().await;
    keywords.stop().await;
}

/// The leaf certificate a server presents on a new connection (a new client config: no TLS
/// session to resume, which would skip the certificate).
async fn presented(addr: std::net::SocketAddr, tls: &MeshTls) -> Vec<u8> {
    let stream = tls
        .client()
        .expect("client")
        .connect("127.0.0.1", addr.port())
        .await
        .expect("handshake");
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("certificates")[0]
        .to_vec()
}

fn leaf_on_disk(path: &Path) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    CertificateDer::from_pem_file(path).expect("PEM").to_vec()
}

#[tokio::test]
async fn rotated_certificate_files_are_served_without_a_restart() {
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::ensure(&dir.path().join("certs"), DOMAIN).expect("CA");
    let (agent, seen) = whoami("whoami");
    let files = ca
        .issue("whoami", &id(&["agent", "whoami"]))
        .expect("issue");
    let server = serve(agent, Some(MeshTls::load(&files).expect("load"))).await;
    let cli_tls = identity(&ca, "cli", &["cli"]);
    let cli = cli_tls.client().expect("client");
    let before = presented(server.addr, &cli_tls).await;
    assert_eq!(before, leaf_on_disk(&files.cert));
    let client = Client::connect_with(&server.addr.to_string(), Some(&cli))
        .await
        .expect("connect");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");

    // Rotate the server's files (atomic renames, as cert-manager or `up` do) and the
    // client's: new handshakes use the new certificates, nothing restarts.
    ca.issue_new("whoami", &id(&["agent", "whoami"]))
        .expect("rotate");
    ca.issue_new("cli", &id(&["cli"])).expect("rotate client");
    let after = presented(server.addr, &cli_tls).await;
    assert_ne!(after, before, "a new certificate");
    assert_eq!(after, leaf_on_disk(&files.cert), "the one on disk now");
    // The connection made before the rotation keeps working, and so do new ones.
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");
    let fresh = Client::connect_with(&server.addr.to_string(), Some(&cli))
        .await
        .expect("connect after rotation");
    assert_eq!(peer_seen_by(&fresh).await, "spiffe://switchyard.test/cli");

    // A half-written rotation (a key that does not match) keeps the previous pair in use.
    std::fs::write(&files.key, b"-----BEGIN PRIVATE KEY-----\nbroken\n").expect("write");
    assert_eq!(presented(server.addr, &cli_tls).await, after);
    assert_eq!(seen.lock().expect("lock").len(), 3);
    server.stop().await;
}

/// Replaces `path` with `pems` concatenated, by rename (as cert-manager and Kubernetes do).
fn write_bundle(path: &Path, pems: &[&Path]) {
    let mut bundle = Vec::new();
    for p in pems {
        bundle.extend(std::fs::read(p).expect("read CA"));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bundle).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// `files` with its CA file replaced by `ca`.
fn trusting(mut files: switchyard::tls::TlsFiles, ca: &Path) -> MeshTls {
    files.ca = ca.to_owned();
    MeshTls::load(&files).expect("load")
}

#[tokio::test]
async fn a_rotated_ca_bundle_is_trusted_without_a_restart() {
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let old = DevCa::ensure(&dir.path().join("old"), DOMAIN).expect("CA");
    let new = DevCa::ensure(&dir.path().join("new"), DOMAIN).expect("new CA");
    let (old_ca, new_ca) = (old.ca_path(), new.ca_path());

    // Server side: an agent of the old CA whose CA file gains the new CA mid-run.
    let server_bundle = dir.path().join("server-ca.pem");
    write_bundle(&server_bundle, &[&old_ca]);
    let (agent, seen) = whoami("whoami");
    let files = old
        .issue("whoami", &id(&["agent", "whoami"]))
        .expect("issue");
    let server = serve(agent, Some(trusting(files, &server_bundle))).await;
    let addr = server.addr.to_string();
    // Each call uses a new client config: no TLS session to resume, which would skip the
    // certificate check.
    let old_cli = || identity(&old, "cli", &["cli"]).client().expect("client");
    // A workload with a certificate of the new CA, trusting both CAs.
    let both = dir.path().join("both.pem");
    write_bundle(&both, &[&old_ca, &new_ca]);
    let newcomer = || {
        trusting(new.issue("cli", &id(&["cli"])).expect("issue"), &both)
            .client()
            .expect("client")
    };
    refused(&addr, Some(&newcomer())).await;
    write_bundle(&server_bundle, &[&old_ca, &new_ca]);
    let client = Client::connect_with(&addr, Some(&newcomer()))
        .await
        .expect("connect after the CA bundle changed");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");
    let client = Client::connect_with(&addr, Some(&old_cli()))
        .await
        .expect("the old CA is still in the bundle");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");
    // A half-written bundle keeps the previous one in use.
    std::fs::write(&server_bundle, b"-----BEGIN CERTIFICATE-----\nbroken\n").expect("write");
    let client = Client::connect_with(&addr, Some(&newcomer()))
        .await
        .expect("connect");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");
    // The old CA retired: its certificates are refused from the next handshake on.
    write_bundle(&server_bundle, &[&new_ca]);
    refused(&addr, Some(&old_cli())).await;
    assert_eq!(seen.lock().expect("lock").len(), 3);

    // Client side: a client trusting only the old CA refuses a server of the new CA until its
    // own CA file gains the new CA (same client config, no restart).
    let (agent, _) = whoami("whoami");
    let rotated = serve(
        agent,
        Some(trusting(
            new.issue("whoami", &id(&["agent", "whoami"]))
                .expect("issue"),
            &both,
        )),
    )
    .await;
    let client_bundle = dir.path().join("client-ca.pem");
    write_bundle(&client_bundle, &[&old_ca]);
    let caller = trusting(
        old.issue("cli", &id(&["cli"])).expect("issue"),
        &client_bundle,
    )
    .client()
    .expect("client");
    let raddr = rotated.addr.to_string();
    refused(&raddr, Some(&caller)).await;
    write_bundle(&client_bundle, &[&old_ca, &new_ca]);
    let client = Client::connect_with(&raddr, Some(&caller))
        .await
        .expect("connect after the client's CA bundle changed");
    assert_eq!(peer_seen_by(&client).await, "spiffe://switchyard.test/cli");
    server.stop().await;
    rotated.stop().await;
}

#[tokio::test]
async fn the_gateway_edge_speaks_https_with_http2_and_calls_agents_over_mtls() {
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::ensure(&dir.path().join("certs"), DOMAIN).expect("CA");
    let (agent, seen) = whoami("whoami");
    let agent = serve(agent, Some(identity(&ca, "whoami", &["agent", "whoami"]))).await;
    let gateway_tls = identity(&ca, "gateway", &["gateway"]);
    let registry = Arc::new(
        Registry::with_settings(
            &RegistryConfig {
                agents: vec![AgentConfig {
                    name: "whoami".into(),
                    endpoints: vec![agent.addr.to_string()],
                    card_url: None,
                    public_grpc: false,
                }],
            },
            Default::default(),
            ResilienceConfig {
                tls: Some(gateway_tls.client().expect("client")),
                ..ResilienceConfig::default()
            },
        )
        .expect("registry"),
    );
    assert!(
        registry
            .load_cards(Duration::from_secs(10))
            .await
            .is_empty()
    );
    let files = gateway_tls.files().clone();
    let gateway = switchyard_gateway::Gateway::bind(
        switchyard_gateway::GatewayConfig {
            tls_cert: Some(files.cert.clone()),
            tls_key: Some(files.key.clone()),
            drain_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        registry,
    )
    .await
    .expect("bind");
    assert!(
        gateway.url().starts_with("https://127.0.0.1:"),
        "{}",
        gateway.url()
    );
    let port = gateway.local_addr().port();
    let stop = gateway.shutdown_handle();
    let join = tokio::spawn(gateway.run());

    let ca_pem = std::fs::read(&files.ca).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).expect("CA")])
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let url = format!("https://localhost:{port}");
    let r = http
        .post(format!("{url}/agents/whoami/message:send"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("A2A-Version", "1.0")
        .body(
            serde_json::json!({"message": {
                "role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "hi"}]
            }})
            .to_string(),
        )
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(r.version(), http::Version::HTTP_2, "ALPN h2");
    assert_eq!(r.status(), http::StatusCode::OK);
    let v: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON");
    assert_eq!(
        v["task"]["artifacts"][0]["parts"][0]["text"], "spiffe://switchyard.test/gateway",
        "{v}"
    );
    assert_eq!(seen.lock().expect("lock").len(), 1);

    // Plain HTTP to the HTTPS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
    );

    // The edge certificate is reloaded too.
    let before = http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(before.status().is_success());
    ca.issue_new("gateway", &id(&["gateway"])).expect("rotate");
    let fresh = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).expect("CA")])
        .tls_info(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let r = fresh
        .get(format!("{url}/healthz"))
        .send()
        .await
        .expect("healthz");
    let info = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        .expect("TLS info");
    assert_eq!(info, leaf_on_disk(&files.cert), "the rotated certificate");

    stop.shutdown();
    let _ = join.await;
    agent.stop().await;
}

/// Holds a task whose text is `hold` until `release` is notified (`started` is notified when
/// it runs); completes any other at once.
struct Hold {
    started: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl Agent for Hold {
    fn card(&self) -> AgentCard {
        card::builder("hold", "Holds its tasks until released").build()
    }
    async fn execute(&self, ctx: TaskContext, _: TaskEvents) -> Result<(), AgentError> {
        if ctx.text() == "hold" {
            self.started.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }
}

/// `GET http://{addr}{path}` in plain text: the status and body, or the error's text.
async fn plain_get(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<(u16, String), String> {
    let r = http
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.map_err(|e| e.to_string())?))
}

#[tokio::test]
async fn an_mtls_agent_serves_metrics_and_probes_in_plain_text_only_on_its_metrics_address() {
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = DevCa::ensure(&dir.path().join("certs"), DOMAIN).expect("CA");
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let server = AgentServer::bind_arc(
        Arc::new(Hold {
            started: started.clone(),
            release: release.clone(),
        }),
        ServeConfig {
            store: StoreConfig::Memory,
            drain_timeout: Duration::from_secs(20),
            metrics_listen: Some(([127, 0, 0, 1], 0).into()),
            tls: Some(identity(&ca, "hold", &["agent", "hold"])),
            ..Default::default()
        },
    )
    .await
    .expect("bind");
    let (grpc, metrics) = (
        server.local_addr(),
        server.metrics_addr().expect("metrics address"),
    );
    assert_ne!(grpc, metrics);
    let stop = server.shutdown_handle();
    let join = tokio::spawn(server.run());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    // A call over mTLS that completes, then one held running.
    let cli = identity(&ca, "cli", &["cli"]).client().expect("client");
    let client = Client::connect_with(&grpc.to_string(), Some(&cli))
        .await
        .expect("connect")
        .with_timeout(Duration::from_secs(60));
    client.send_text("quick").await.expect("a call over mTLS");
    let call = tokio::spawn(async move { client.send_text("hold").await });
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .expect("the task started");

    // Plain text on the metrics address: metrics (with that call) and both probes.
    let (status, body) = plain_get(&http, metrics, "/metrics").await.expect("scrape");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("switchyard_") && l.contains("agent=\"hold\"")),
        "no metric of the agent in:\n{body}"
    );
    assert_eq!(
        plain_get(&http, metrics, "/healthz").await,
        Ok((200, "ok\n".into()))
    );
    assert_eq!(
        plain_get(&http, metrics, "/readyz").await,
        Ok((200, "ready\n".into()))
    );
    // Nothing else there: no card, no gRPC.
    for path in [
        "/.well-known/agent-card.json",
        "/lf.a2a.v1.A2AService/GetTask",
    ] {
        assert_eq!(
            plain_get(&http, metrics, path).await.map(|r| r.0),
            Ok(404),
            "{path}"
        );
    }
    // The gRPC port still refuses plain text, metrics included.
    let e = plain_get(&http, grpc, "/metrics")
        .await
        .expect_err("plain text on the mTLS port");
    assert!(!e.is_empty());

    // Draining: not ready, still alive and scrapable, until the held task ends.
    stop.shutdown();
    let mut readyz = (0, String::new());
    for _ in 0..100 {
        readyz = plain_get(&http, metrics, "/readyz")
            .await
            .expect("readyz while draining");
        if readyz.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(readyz, (503, "draining\n".into()));
    assert_eq!(
        plain_get(&http, metrics, "/healthz").await.map(|r| r.0),
        Ok(200)
    );
    assert_eq!(
        plain_get(&http, metrics, "/metrics").await.map(|r| r.0),
        Ok(200)
    );
    release.notify_one();
    let task = call.await.expect("join").expect("the held call completes");
    assert_eq!(task.state(), switchyard::pb::a2a::TaskState::Completed);
    tokio::time::timeout(Duration::from_secs(30), join)
        .await
        .expect("drained in time")
        .expect("join");
    // Closed with the gRPC listener.
    assert!(plain_get(&http, metrics, "/healthz").await.is_err());
}
