//! What issue 14's security costs on the unary path: A2A JSON-RPC `SendMessage` through the
//! gateway to the echo agent with security off (plain-text gRPC to the agent, no
//! authentication) versus on (mTLS between gateway and agent with certificates of the
//! development CA, `switchyard::tls::dev`; a bearer JWT, ES256, checked on every request
//! against a JWKS file; an authorization policy allowing the JWT's subject, enforced at the
//! gateway and again at the agent from the forwarded principal of the gateway's SPIFFE ID),
//! and on with the gateway's edge on HTTPS as well (HTTP/1.1 over TLS, keep-alive), and on with
//! the gateway calling the agent in process (`ServeConfig::in_process`, as `switchyard up`
//! does: the same identity and policy checks, no mTLS on the wire). Same
//! process layout for every target (agents, gateways and the load generator in this process),
//! same concurrency, interleaved rounds, medians. Each is measured with the echo agent on the
//! SQLite store (`fsync`, as in `gateway_vs_grpc`) and on the in-memory store (where the store
//! does not hide the security layers' cost).
//!
//! `cargo run --release -p switchyard-bench --bin security_overhead -- --help`

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use clap::{Parser, ValueEnum};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
};
use switchyard::{
    AgentServer, Registry, RegistryConfig, ServeConfig, StoreConfig,
    authz::{AgentPolicyConfig, Policy, layer::AgentAuthz},
    identity::SpiffeId,
    resilience::ResilienceConfig,
    store::Durability,
    tls::{MeshTls, dev::DevCa},
};
use switchyard_bench::{Round, round, summarize};
use switchyard_gateway::{AuthConfig, Gateway, GatewayConfig, JwksSource, JwtConfig};

#[derive(Debug, Parser, Clone)]
#[command(about = "JSON-RPC SendMessage through the gateway: mTLS + JWT on vs off")]
struct Args {
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (interleaved).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The echo agent's stores measured, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,memory")]
    stores: Vec<Store>,
}

/// The echo agent's task store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Store {
    /// SQLite, `fsync` at every commit.
    Sqlite,
    /// In memory.
    Memory,
}

/// What is switched on for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// Plain text to the agent, no authentication, no policy.
    Off,
    /// mTLS to the agent, JWT at the gateway, policy at the gateway and the agent.
    On,
    /// [`Security::On`] plus HTTPS at the gateway's edge.
    OnHttps,
    /// [`Security::On`], the gateway calling the agent in process (`ServeConfig::in_process`,
    /// as `switchyard up` does): no mTLS on the wire, the same identity and policy checks.
    OnInProcess,
}

impl Security {
    fn label(self) -> &'static str {
        match self {
            Self::Off => "off: plain-text gRPC to the agent, no authentication",
            Self::On => "on: mTLS to the agent + JWT (ES256, JWKS file) + policy",
            Self::OnHttps => "on + HTTPS edge (HTTP/1.1 over TLS)",
            Self::OnInProcess => "on, the agent called in process (as `switchyard up`)",
        }
    }
}

const TEXT: &str = "benchmark payload: the quick brown fox jumps over the lazy dog";
const DOMAIN: &str = "switchyard.bench";
const AUDIENCE: &str = "switchyard-bench";
const ISSUER: &str = "https://issuer.bench";
const SUBJECT: &str = "bench";

/// A JWKS with one ES256 key (`kid` `bench-1`) and a token for [`SUBJECT`] signed with it,
/// valid for a day.
fn jwt() -> anyhow::Result<(serde_json::Value, String)> {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| anyhow::anyhow!("P-256 key: {e}"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
        .map_err(|e| anyhow::anyhow!("P-256 key: {e}"))?;
    let point = pair.public_key().as_ref();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "bench-1", "alg": "ES256", "use": "sig",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
    }]});
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({"sub": SUBJECT, "aud": AUDIENCE, "iss": ISSUER,
        "iat": now, "nbf": now - 5, "exp": now + 86_400, "scope": "agents.call"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(doc.as_ref()),
    )?;
    Ok((jwks, token))
}

/// The policy of the "on" targets: `echo` only for the JWT subject [`SUBJECT`].
fn policy() -> anyhow::Result<Arc<Policy>> {
    let agents = BTreeMap::from([(
        "echo".to_owned(),
        AgentPolicyConfig {
            allow: vec![format!("jwt:{SUBJECT}")],
            skills: BTreeMap::new(),
        },
    )]);
    Ok(Arc::new(
        Policy::from_config(&agents).map_err(anyhow::Error::msg)?,
    ))
}

/// One gateway in front of its own echo agent, and the client to call it with.
struct Target {
    label: String,
    url: String,
    http: reqwest::Client,
    authorization: Option<String>,
}

/// Everything the "on" targets share: the CA, the gateway's identity, the JWKS file, the
/// token.
struct Material {
    ca: DevCa,
    gateway: MeshTls,
    jwks: std::path::PathBuf,
    token: String,
}

fn store_config(store: Store, dir: &std::path::Path, name: &str) -> StoreConfig {
    match store {
        Store::Sqlite => StoreConfig::Sqlite {
            path: dir.join(format!("{name}.db")),
            durability: Durability::Fsync,
        },
        Store::Memory => StoreConfig::Memory,
    }
}

fn http_client(args: &Args, ca_pem: Option<&[u8]>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency * 2);
    if let Some(pem) = ca_pem {
        b = b.tls_certs_only([reqwest::Certificate::from_pem(pem)?]);
    }
    Ok(b.build()?)
}

async fn start(
    args: &Args,
    store: Store,
    security: Security,
    dir: &std::path::Path,
    m: &Material,
) -> anyhow::Result<Target> {
    let name = format!("{store:?}-{security:?}").to_lowercase();
    let on = security != Security::Off;
    let (agent_tls, authz) = if on {
        let id = SpiffeId::workload(DOMAIN, &["agent", "echo"])?;
        let files = m.ca.issue(&format!("echo-{name}"), &id)?;
        let authz = AgentAuthz {
            policy: policy()?,
            forwarders: vec![m.gateway.spiffe_id().clone()],
        };
        (Some(MeshTls::load(&files)?), Arc::new(authz))
    } else {
        (None, Arc::default())
    };
    let echo = AgentServer::bind(
        switchyard_echo::Echo,
        ServeConfig {
            store: store_config(store, dir, &name),
            tls: agent_tls,
            authz,
            in_process: security == Security::OnInProcess,
            ..Default::default()
        },
    )
    .await?;
    let addr = echo.local_addr();
    tokio::spawn(echo.run());
    let resilience = ResilienceConfig {
        tls: if on { Some(m.gateway.client()?) } else { None },
        ..ResilienceConfig::default()
    };
    let registry = Arc::new(Registry::with_settings(
        &RegistryConfig::from_env_value(&format!("echo={addr}"))?,
        Default::default(),
        resilience,
    )?);
    let unloaded = registry.load_cards(Duration::from_secs(10)).await;
    anyhow::ensure!(unloaded.is_empty(), "agent card not loaded: {unloaded:?}");
    let mut config = GatewayConfig::default();
    if on {
        config.auth = AuthConfig {
            api_keys: Vec::new(),
            jwt: Some(JwtConfig::new(
                JwksSource::File(m.jwks.clone()),
                vec![AUDIENCE.into()],
                Some(ISSUER.into()),
            )),
            policy: policy()?,
        };
    }
    let ca_pem;
    if security == Security::OnHttps {
        let files = m.gateway.files();
        config.tls_cert = Some(files.cert.clone());
        config.tls_key = Some(files.key.clone());
        ca_pem = Some(std::fs::read(m.ca.ca_path())?);
    } else {
        ca_pem = None;
    }
    let gateway = Gateway::bind(config, registry).await?;
    let url = format!("{}/agents/echo", gateway.url());
    tokio::spawn(gateway.run());
    Ok(Target {
        label: format!("{store:?} store, security {}", security.label()),
        url,
        http: http_client(args, ca_pem.as_deref())?,
        authorization: on.then(|| format!("Bearer {}", m.token)),
    })
}

/// A JSON-RPC `SendMessage` of a new message: its `messageId` is random, since the agent
/// answers a repeated one from its idempotence record instead of running a task.
fn jsonrpc_body(n: u64) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": n, "method": "SendMessage",
        "params": {"message": {"messageId": switchyard::task::new_id(), "role": "ROLE_USER",
            "parts": [{"text": TEXT}]}}
    })
    .to_string()
}

async fn jsonrpc_round(t: &Target, args: &Args) -> Round {
    let counter = Arc::new(AtomicU64::new(0));
    let (http, url, auth) = (t.http.clone(), t.url.clone(), t.authorization.clone());
    round(
        args.concurrency,
        Duration::from_secs(args.seconds),
        move || {
            let (http, url, auth) = (http.clone(), url.clone(), auth.clone());
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let mut r = http
                    .post(&url)
                    .header("A2A-Version", "1.0")
                    .header("Content-Type", "application/json");
                if let Some(a) = auth {
                    r = r.header("Authorization", a);
                }
                let Ok(r) = r.body(jsonrpc_body(n)).send().await else {
                    return false;
                };
                r.text()
                    .await
                    .is_ok_and(|t| t.contains("TASK_STATE_COMPLETED"))
            }
        },
    )
    .await
}

/// The allocator of the Switchyard binaries this benchmark stands for (mimalloc; see
/// `bench/RESULTS.md` §10, "mimalloc"), so that every peer served from this binary runs on it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(!args.stores.is_empty(), "--stores names no store");
    switchyard::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let ca = DevCa::ensure(&dir.path().join("certs"), DOMAIN)?;
    let gateway = MeshTls::load(&ca.issue("gateway", &SpiffeId::workload(DOMAIN, &["gateway"])?)?)?;
    let (jwks, token) = jwt()?;
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string())?;
    let material = Material {
        ca,
        gateway,
        jwks: jwks_path,
        token,
    };

    let mut targets = Vec::new();
    for &store in &args.stores {
        for security in [
            Security::Off,
            Security::On,
            Security::OnHttps,
            Security::OnInProcess,
        ] {
            targets.push(
                start(&args, store, security, dir.path(), &material)
                    .await
                    .with_context(|| format!("starting {store:?} {security:?}"))?,
            );
        }
    }
    // Every target answers (and a call without the token is refused where security is on).
    for t in &targets {
        let r = t
            .http
            .post(&t.url)
            .header("A2A-Version", "1.0")
            .header("Content-Type", "application/json")
            .body(jsonrpc_body(0))
            .send()
            .await?;
        let anonymous = r.status().as_u16();
        anyhow::ensure!(
            (anonymous == 401) == t.authorization.is_some(),
            "{}: an anonymous call got HTTP {anonymous}",
            t.label
        );
    }

    let warm = Args {
        seconds: 1,
        ..args.clone()
    };
    for t in &targets {
        let r = jsonrpc_round(t, &warm).await;
        anyhow::ensure!(r.rps > 0.0, "{}: no call succeeded in warm-up", t.label);
    }
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); targets.len()];
    for i in 0..args.rounds {
        for (t, r) in targets.iter().zip(rounds.iter_mut()) {
            r.push(jsonrpc_round(t, &args).await);
        }
        let line: Vec<String> = rounds.iter().map(|r| format!("{:.0}", r[i].rps)).collect();
        eprintln!("round {}: RPS {}", i + 1, line.join(" | "));
    }

    println!(
        "| JSON-RPC SendMessage through the gateway, concurrency {} | RPS (median) | p50 µs | p99 µs | vs off |",
        args.concurrency
    );
    println!("|---|---|---|---|---|");
    let errors: u64 = rounds.iter().flatten().map(|r| r.errors).sum();
    let per_store = 4;
    for (chunk_t, chunk_r) in targets.chunks(per_store).zip(rounds.chunks(per_store)) {
        let off = summarize(&chunk_r[0]).0;
        for (t, r) in chunk_t.iter().zip(chunk_r) {
            let (rps, p50, p99) = summarize(r);
            println!(
                "| {} | {rps:.0} | {p50:.0} | {p99:.0} | {:.2}x |",
                t.label,
                rps / off
            );
        }
    }
    println!();
    println!("errors: {errors}");
    Ok(())
}
