//! The PostgreSQL store from the outside (issue 11, bad input): an agent binary pointed at a
//! database that does not answer exits with one clear line; a database lost while an agent runs
//! gives UNAVAILABLE, and the agent recovers when it returns, with every accepted task intact.
//!
//! Needs PostgreSQL at `SWITCHYARD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test works in its own schema.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use switchyard::{
    StoreConfig,
    pb::a2a::{ListTasksRequest, TaskState},
    store::{DatabaseUrl, Durability, PostgresOptions, PostgresStore},
};
use switchyard_e2e::{Served, status_of};
use tokio::{net::TcpListener, task::JoinHandle};

/// Bound on every wait of these tests.
const PATIENCE: Duration = Duration::from_secs(30);

fn test_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The directory of the workspace binaries: the test binary is `<target>/<profile>/deps/e2e-…`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Arguments and environment of one way to give the store.
type Way<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

#[tokio::test]
async fn an_agent_binary_with_an_unreachable_database_exits_with_one_clear_line() {
    let echo = bin_dir().join("switchyard-echo");
    assert!(
        echo.is_file(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`; \
         scripts/test does)",
        echo.display()
    );
    let port = closed_port();
    let dsn = format!("postgres://app:hunter2@127.0.0.1:{port}/tasks");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store");
    std::fs::write(&file, format!("{dsn}\n")).expect("write spec file");
    let file = file.to_str().expect("utf-8 path").to_owned();
    // The same DSN by flag, by environment variable and from a file (a mounted Secret).
    let ways: [Way<'_>; 3] = [
        (&["--store", &dsn], &[]),
        (&[], &[("ECHO_STORE", &dsn)]),
        (&["--store-file", &file], &[]),
    ];
    for (args, env) in ways {
        let out = tokio::time::timeout(
            PATIENCE,
            tokio::process::Command::new(&echo)
                .args(args)
                .env_clear()
                .envs(env.iter().copied())
                .current_dir(dir.path())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("exits in time")
        .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?} {env:?}: {stderr}");
        // Without --tls-* the binary first warns that it runs in plain text (by design); the
        // failure itself is one line.
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("INSECURE: no --tls-ca"))
            .collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "password printed: {stderr}");
        assert!(out.stdout.is_empty(), "never listened");
    }
}

/// A TCP proxy in front of PostgreSQL that a test can cut (every connection reset, new ones
/// refused) and restore: the database "lost" and "back" without stopping the shared server.
struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (down, conns) = (down.clone(), conns.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let conn = tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.lock().expect("lock").push(conn);
                }
            }
        });
        Self {
            addr,
            down,
            conns,
            accept,
        }
    }

    /// Resets every connection and refuses new ones.
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.conns.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_gives_unavailable_and_the_agent_recovers_without_losing_a_task() {
    let url = DatabaseUrl::new(test_url());
    let proxy = Proxy::start(url.host_port()).await;
    // The test database's URL with the proxy's address in place of its host:port.
    let through = DatabaseUrl::new(url.expose().replacen(
        &url.host_port(),
        &proxy.addr.to_string(),
        1,
    ));
    assert_ne!(through, url, "the URL names its host:port explicitly");
    let schema = format!("t_{}", uuid_like());
    let (echo, _dir) = Served::echo_with(|c| {
        c.store = StoreConfig::Postgres {
            url: through.clone(),
            schema: Some(schema.clone()),
            durability: Durability::Fsync,
        };
    })
    .await;

    let mut accepted = Vec::new();
    for i in 0..5 {
        let t = echo
            .client
            .send_text(&format!("before {i}"))
            .await
            .expect("send");
        assert_eq!(
            t.status.as_ref().map(|s| s.state()),
            Some(TaskState::Completed)
        );
        accepted.push(t.id);
    }

    proxy.cut();
    let list = || {
        echo.client.list_tasks(ListTasksRequest {
            page_size: Some(100),
            ..Default::default()
        })
    };
    let status = status_of(
        tokio::time::timeout(PATIENCE, list())
            .await
            .expect("in time"),
    );
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let status = status_of(
        tokio::time::timeout(PATIENCE, echo.client.send_text("while down"))
            .await
            .expect("in time"),
    );
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    proxy.restore();
    // Back within the bound: a new message is accepted and completes.
    let t = tokio::time::timeout(PATIENCE, async {
        loop {
            match echo.client.send_text("after").await {
                Ok(t) => break t,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await
    .expect("the agent recovers when the database returns");
    assert_eq!(
        t.status.as_ref().map(|s| s.state()),
        Some(TaskState::Completed)
    );
    accepted.push(t.id);
    for id in &accepted {
        let got = echo
            .client
            .get_task(id, None)
            .await
            .expect("accepted task kept");
        assert_eq!(
            got.status.map(|s| s.state()),
            Some(TaskState::Completed),
            "{id}"
        );
    }
    let page = list().await.expect("list");
    for id in &accepted {
        assert!(page.tasks.iter().any(|t| &t.id == id), "{id} listed");
    }
    echo.stop().await;

    let store = PostgresStore::connect(&url, &PostgresOptions::new(schema.clone()))
        .await
        .expect("connect");
    store.drop_schema().await.expect("drop schema");
}

/// 32 lower-case hex digits, unique enough for a schema name.
fn uuid_like() -> String {
    use std::hash::{BuildHasher as _, RandomState};
    let a = RandomState::new().hash_one(std::process::id());
    let b = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{a:016x}{b:016x}")
}

/// A DSN with `sslmode=require` works (sqlx over rustls with ring), and the session really is
/// encrypted (`pg_stat_ssl`).
#[tokio::test]
async fn a_dsn_with_sslmode_require_connects_over_tls() {
    let base = test_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}sslmode=require");
    let pool = sqlx::PgPool::connect(&url).await.expect("TLS connection");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("pg_stat_ssl");
    assert!(ssl, "the session is TLS");
    pool.close().await;
    let schema = format!("sslmode_{}", &uuid_like()[..12]);
    let store = PostgresStore::connect(
        &DatabaseUrl::new(&url),
        &PostgresOptions::new(schema.clone()),
    )
    .await
    .expect("the task store over TLS");
    store.drop_schema().await.expect("drop schema");
}
