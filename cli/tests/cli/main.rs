//! The `switchyard` binary end to end: `switchyard up` on free ports in a temporary data
//! directory, then the README tour's commands against it, Ctrl-C drain, and the one-line
//! errors.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

mod mcp;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// A running `switchyard up`.
struct Up {
    child: Child,
    dir: tempfile::TempDir,
    banner: String,
}

impl Up {
    fn start(envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(BIN)
            .args(["up", "--data-dir"])
            .arg(dir.path())
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchyard up");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = String::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("switchyard up prints its banner");
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("ready:") {
                break;
            }
        }
        Self { child, dir, banner }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None)
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(args, stdin, &[])
    }

    /// Runs the CLI against this mesh with `stdin` fed in and `env` set.
    fn run_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .envs(env.iter().copied());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("wait")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit status.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (status, err)
    }
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A failed command: its exit code and its single stderr line.
fn failed(out: &Output) -> (i32, String) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(lines[0].starts_with("switchyard: "), "{err}");
    (out.status.code().expect("exit code"), lines[0].to_owned())
}

#[test]
fn the_readme_tour_works_against_a_running_mesh() {
    let up = Up::start(&[]);
    for name in ["echo", "textstats", "summarize", "keywords", "research"] {
        assert!(up.banner.contains(name), "{}", up.banner);
    }

    let agents = ok(&up.run(&["agents"]));
    for needle in [
        "echo (Echo)",
        "textstats (Text statistics",
        "research-report",
    ] {
        assert!(agents.contains(needle), "{agents}");
    }

    let sent = ok(&up.run(&["send", "echo", "hello", "world"]));
    assert!(sent.contains("── echo ──\nhello world\n"), "{sent}");
    assert!(sent.contains("COMPLETED"), "{sent}");

    let streamed = ok(&up.run(&["stream", "echo", "--meta", "chunks=3", "hi"]));
    let chunks = streamed.lines().filter(|l| l.contains("[artifact")).count();
    assert_eq!(chunks, 4, "three chunks and the echo:\n{streamed}");
    assert!(
        streamed.contains("[WORKING] 33% chunk 1 of 3"),
        "{streamed}"
    );

    let chat = ok(&up.run_with(&["chat", "echo"], Some("hello there\n")));
    assert!(chat.contains("echo> ── echo ──\nhello there"), "{chat}");

    let report = ok(&up.run(&[
        "stream",
        "research",
        "--file",
        repo_file("README.md").to_str().expect("utf-8 path"),
    ]));
    for needle in [
        "(1/3)",
        "(2/3)",
        "(3/3)",
        "## textstats",
        "## summarize",
        "## keywords",
    ] {
        assert!(report.contains(needle), "{needle} missing:\n{report}");
    }
    assert!(report.contains("3 of 3 parts complete"), "{report}");
    // `--file README.md` goes as text/markdown: read as Markdown, code blocks skipped.
    assert!(
        report.contains("Read as Markdown (") && report.contains(" code blocks"),
        "{report}"
    );

    let json = ok(&up.run(&["--json", "send", "echo", "kept"]));
    let task: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON task");
    let id = task["id"].as_str().expect("id");
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
    assert_utc_z(&task["status"]["timestamp"]);
    let got = ok(&up.run(&["task", "get", "echo", id]));
    assert!(got.contains("kept") && got.contains(id), "{got}");
    let list = ok(&up.run(&["task", "list", "echo"]));
    assert!(list.contains(id) && list.contains("tasks"), "{list}");
    let watched = ok(&up.run(&["task", "watch", "echo", id, "--after", "0"]));
    assert!(watched.contains("[COMPLETED]"), "{watched}");
    // `task watch` follows a task waiting for input through the answer to its end.
    let asked = ok(&up.run(&["--json", "send", "echo", "--meta", "ask=Who?", "hi"]));
    let asked: serde_json::Value = serde_json::from_str(asked.trim()).expect("one JSON task");
    let waiting = asked["id"].as_str().expect("id");
    let mut watch = Command::new(BIN)
        .arg("--data-dir")
        .arg(up.dir.path())
        .args(["task", "watch", "echo", waiting])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let snapshot = lines.next().expect("a first line").expect("utf-8");
    assert!(snapshot.contains("[INPUT_REQUIRED]"), "{snapshot}");
    ok(&up.run(&["send", "echo", "--task", waiting, "Ada"]));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(watch.wait().expect("watch exits").success());
    assert_eq!(
        rest.last().map(|l| l.contains("[COMPLETED]")),
        Some(true),
        "the watch goes on to the end: {rest:?}"
    );
    let replied = ok(&up.run(&[
        "send",
        "echo",
        "--meta",
        "reply=message",
        "direct",
        "answer",
    ]));
    assert_eq!(
        replied.trim(),
        "direct answer",
        "a message reply is printed as is"
    );

    let health = ok(&up.run(&["health"]));
    assert_eq!(
        health.lines().filter(|l| l.ends_with("SERVING")).count(),
        health.lines().count()
    );

    let data_dir = up.dir.path().to_owned();
    let (status, _) = up.interrupt();
    assert!(status.success(), "Ctrl-C drains and exits 0: {status:?}");
    assert!(
        !data_dir.join("mesh.json").exists(),
        "the mesh file is removed"
    );
}

#[test]
fn with_a_sub_agent_stopped_the_report_names_the_missing_part_and_exits_zero() {
    let up = Up::start(&[("SWITCHYARD_UP__AGENTS__KEYWORDS__DISABLED", "true")]);
    let report = ok(&up.run(&["stream", "research", "summarize this text. it has words."]));
    assert!(report.contains("2 of 3 parts complete"), "{report}");
    assert!(
        report.contains("- **keywords**: not registered in the mesh"),
        "{report}"
    );
    let (status, _) = up.interrupt();
    assert!(status.success());
}

#[test]
fn ctrl_c_lets_an_in_flight_task_finish() {
    let up = Up::start(&[]);
    let slow = Command::new(BIN)
        .arg("--data-dir")
        .arg(up.dir.path())
        .args(["send", "echo", "--meta", "delay_ms=1500", "in flight"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    // Wait until the task is running, then press Ctrl-C.
    loop {
        let list = ok(&up.run(&["--json", "task", "list", "echo"]));
        if list.contains("TASK_STATE_WORKING") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, err) = up.interrupt();
    assert!(status.success(), "{err}");
    assert!(err.contains("draining"), "{err}");
    let out = slow.wait_with_output().expect("send finished");
    let stdout = ok(&out);
    assert!(
        stdout.contains("in flight") && stdout.contains("COMPLETED"),
        "{stdout}"
    );
}

#[test]
fn errors_are_one_clear_line_with_a_non_zero_exit() {
    let up = Up::start(&[]);

    let (code, line) = failed(&up.run(&["send", "nobody", "hi"]));
    assert_eq!(code, 1);
    assert!(
        line.contains("unknown agent \"nobody\"; known agents: echo, keywords"),
        "{line}"
    );

    let (code, line) = failed(&up.run(&["send", "echo", "--file", "/no/such/file"]));
    assert_eq!(code, 1);
    assert!(line.contains("cannot read /no/such/file"), "{line}");

    let (code, line) = failed(&up.run(&["send", "echo", "--bogus"]));
    assert_eq!(code, 2);
    assert!(line.contains("--bogus"), "{line}");

    let (code, line) = failed(&up.run(&["--config", "/no/such.toml", "agents"]));
    assert_eq!(code, 64);
    assert!(line.contains("/no/such.toml does not exist"), "{line}");

    let (code, line) = failed(&up.run(&["send", "echo", "--meta", "fail=broken", "x"]));
    assert_eq!(code, 1);
    assert!(line.contains("FAILED: broken"), "{line}");

    let (status, _) = up.interrupt();
    assert!(status.success());

    // Nothing listens on port 1: the agent is unreachable.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["send", "echo", "hi"])
        .env("SWITCHYARD_AGENTS", "echo=127.0.0.1:1")
        .output()
        .expect("run");
    let (code, line) = failed(&out);
    assert_eq!(code, 1);
    assert!(
        line.contains("cannot reach the agent at 127.0.0.1:1"),
        "{line}"
    );
}

/// `GET path` over HTTP/1.1; the response body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read as _;
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// A "collector" that accepts connections and never answers: the worst case for an exporter.
fn black_hole() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(64).flatten() {
            held.push(conn); // keep it open, read nothing, write nothing
        }
    });
    (addr, handle)
}

#[test]
fn with_the_collector_down_requests_succeed_and_the_span_queue_stays_bounded() {
    let (collector, _hole) = black_hole();
    let endpoint = format!("http://{collector}");
    let up = Up::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
    ]);
    // Every request succeeds although no span can leave the process.
    for i in 0..12 {
        let sent = ok(&up.run(&["send", "echo", &format!("traced {i}")]));
        assert!(sent.contains("COMPLETED"), "{sent}");
    }
    let mesh: serde_json::Value =
        serde_json::from_slice(&std::fs::read(up.dir.path().join("mesh.json")).expect("mesh file"))
            .expect("json");
    // The agents speak mTLS only; the gateway's plain-HTTP `/metrics` is the same process's.
    let gateway = mesh["gateway"]
        .as_str()
        .expect("gateway URL")
        .trim_start_matches("http://")
        .to_owned();
    let metrics = http_get(&gateway, "/metrics");
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_trace_spans_dropped_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-spans counter in:\n{metrics}"));
    // 12 requests make more spans than the queue of 8 holds while the exporter hangs: the queue
    // stayed bounded and what did not fit was counted, not buffered.
    assert!(dropped >= 1.0, "dropped {dropped}");
    let (status, _) = up.interrupt();
    assert!(status.success());
}

#[test]
fn commands_work_through_the_gateway_when_one_is_configured() {
    let up = Up::start(&[]);
    let gateway = up
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("gateway    "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the banner names the gateway")
        .to_owned();
    // The web console is at the gateway's root (README, "A five-minute tour").
    assert!(
        up.banner.contains(&format!("console    {gateway}/")),
        "{}",
        up.banner
    );
    let page = http_get(gateway.trim_start_matches("http://"), "/");
    assert!(page.contains("<title>Switchyard console</title>"), "{page}");
    let via = |args: &[&str], stdin: Option<&str>| {
        up.run_env(args, stdin, &[("SWITCHYARD_GATEWAY_URL", gateway.as_str())])
    };
    let sent = ok(&via(&["--json", "send", "echo", "via", "json-rpc"], None));
    let task: serde_json::Value = serde_json::from_str(sent.trim()).expect("a JSON task");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "via json-rpc");
    assert_utc_z(&task["status"]["timestamp"]);
    let id = task["id"].as_str().expect("id");

    let streamed = ok(&via(&["stream", "echo", "--meta", "chunks=2", "sse"], None));
    assert_eq!(
        streamed.lines().filter(|l| l.contains("[artifact")).count(),
        3,
        "{streamed}"
    );
    assert!(
        streamed.contains("#1 [SUBMITTED]"),
        "SSE events keep their sequence: {streamed}"
    );

    let got = ok(&via(&["task", "get", "echo", id], None));
    assert!(got.contains("via json-rpc"), "{got}");
    let watched = ok(&via(&["task", "watch", "echo", id, "--after", "2"], None));
    assert_eq!(
        watched.lines().next().map(|l| l.starts_with("#3 ")),
        Some(true),
        "{watched}"
    );

    let replied = ok(&via(
        &["send", "echo", "--meta", "reply=message", "direct"],
        None,
    ));
    assert_eq!(replied.trim(), "direct", "{replied}");
    let streamed = ok(&via(
        &["stream", "echo", "--meta", "reply=message", "direct"],
        None,
    ));
    assert_eq!(streamed.trim(), "[message] direct", "{streamed}");

    let chat = ok(&via(&["chat", "echo"], Some("over the websocket\n")));
    assert!(
        chat.contains("echo> ── echo ──\nover the websocket"),
        "{chat}"
    );

    let (code, line) = failed(&via(&["send", "nobody", "hi"], None));
    assert_eq!(code, 1);
    assert!(line.contains("nobody"), "{line}");
    let (status, _) = up.interrupt();
    assert!(status.success());
}

/// `--json` writes timestamps as ProtoJSON does: RFC 3339 in UTC with a `Z` suffix.
fn assert_utc_z(stamp: &serde_json::Value) {
    let s = stamp.as_str().expect("a timestamp string");
    assert!(
        s.len() >= 20 && s.ends_with('Z') && !s.contains('+'),
        "not UTC with Z: {s}"
    );
}

#[test]
fn up_runs_several_replicas_of_an_agent_on_one_store_and_refuses_them_on_sqlite() {
    let up = Up::start(&[
        ("SWITCHYARD_UP__AGENTS__ECHO__REPLICAS", "2"),
        ("SWITCHYARD_UP__AGENTS__ECHO__STORE", "memory"),
    ]);
    assert!(up.banner.contains("(replica 2)"), "{}", up.banner);
    let mesh: serde_json::Value =
        serde_json::from_slice(&std::fs::read(up.dir.path().join("mesh.json")).expect("mesh file"))
            .expect("json");
    let endpoints: Vec<String> = mesh["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "echo")
        .expect("echo")["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| e.as_str().expect("endpoint").to_owned())
        .collect();
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");
    // A task sent to one replica is read on the other.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // The mesh speaks mTLS: present the CLI's certificate from mesh.json.
        let files: switchyard::tls::TlsFiles = serde_json::from_value(mesh["tls"].clone())
            .expect("mesh.json names the CLI's TLS files");
        let tls = switchyard::tls::MeshTls::load(&files)
            .expect("load")
            .client()
            .expect("client");
        let one = switchyard::Client::connect_with(&endpoints[0], Some(&tls))
            .await
            .expect("A");
        let two = switchyard::Client::connect_with(&endpoints[1], Some(&tls))
            .await
            .expect("B");
        let t = one.send_text("twice").await.expect("send on A");
        let got = two.get_task(&t.id, None).await.expect("get on B");
        assert_eq!(got.state(), switchyard::pb::a2a::TaskState::Completed);
        assert_eq!(got.artifacts[0].text(), "twice");
    });
    // Through the CLI's registry (either replica).
    for i in 0..4 {
        let sent = ok(&up.run(&["send", "echo", &format!("hello {i}")]));
        assert!(sent.contains("COMPLETED"), "{sent}");
    }
    let (status, _) = up.interrupt();
    assert!(status.success());

    // SQLite (the default store) is one process's file.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .env("SWITCHYARD_UP__AGENTS__ECHO__REPLICAS", "2")
        .output()
        .expect("run");
    let (code, line) = failed(&out);
    assert_eq!(code, 64);
    assert!(line.contains("up.agents.echo.replicas = 2"), "{line}");
}

/// `switchyard up` is mTLS by default: a development CA and per-workload certificates in the
/// data directory, named in mesh.json; agents refuse plain text.
/// Plain text only with `[up] insecure = true`, said loudly at start.
#[test]
fn up_uses_mtls_by_default_and_plain_text_only_when_told() {
    let up = Up::start(&[]);
    let certs = up.dir.path().join("certs");
    for f in [
        "ca.pem",
        "ca.key",
        "echo.pem",
        "research.pem",
        "gateway.pem",
        "cli.pem",
    ] {
        assert!(certs.join(f).is_file(), "{f} in {}", certs.display());
    }
    let mesh: serde_json::Value =
        serde_json::from_slice(&std::fs::read(up.dir.path().join("mesh.json")).expect("mesh file"))
            .expect("json");
    let files: switchyard::tls::TlsFiles =
        serde_json::from_value(mesh["tls"].clone()).expect("tls in mesh.json");
    let tls = switchyard::tls::MeshTls::load(&files).expect("load");
    assert_eq!(tls.spiffe_id().as_str(), "spiffe://switchyard.local/cli");
    let echo = mesh["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "echo")
        .expect("echo")["endpoints"][0]
        .as_str()
        .expect("endpoint")
        .to_owned();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let plain = match switchyard::Client::connect(&echo).await {
            Err(_) => true,
            Ok(c) => c.send_text("plain").await.is_err(),
        };
        assert!(plain, "plain text is refused");
        let client = switchyard::Client::connect_with(&echo, Some(&tls.client().expect("client")))
            .await
            .expect("mTLS");
        let t = client.send_text("over mTLS").await.expect("send");
        assert_eq!(t.artifacts[0].text(), "over mTLS");
    });
    // The CLI finds its certificate through mesh.json; research's fan-out works over mTLS.
    let sent = ok(&up.run(&[
        "send",
        "research",
        "Mutual TLS protects every hop of the mesh.",
    ]));
    assert!(sent.contains("COMPLETED"), "{sent}");
    let (status, _) = up.interrupt();
    assert!(status.success());

    // Plain text only when told, and said at start.
    let insecure = Up::start(&[("SWITCHYARD_UP__INSECURE", "true")]);
    let mesh: serde_json::Value = serde_json::from_slice(
        &std::fs::read(insecure.dir.path().join("mesh.json")).expect("mesh file"),
    )
    .expect("json");
    assert!(mesh.get("tls").is_none(), "{mesh}");
    let sent = ok(&insecure.run(&["send", "echo", "plain"]));
    assert!(sent.contains("COMPLETED"), "{sent}");
    let (status, err) = insecure.interrupt();
    assert!(status.success());
    assert!(err.contains("INSECURE"), "{err}");
}

#[test]
fn agents_under_up_enforce_the_policy_so_research_may_be_denied_a_sub_agent() {
    // The caller (the CLI's certificate, or the API key `ci` through the gateway) may call
    // research; research may call summarize and textstats but not keywords; keywords only
    // answers `ci`.
    let conf = tempfile::tempdir().expect("tempdir");
    let file = conf.path().join("switchyard.toml");
    let key = "k-sec-test-1";
    let research_id = "spiffe://switchyard.local/agent/research";
    std::fs::write(
        &file,
        format!(
            "[up.auth.api_keys]\nci = \"{}\"\n\
             [up.auth.policy.research]\nallow = [\"spiffe://switchyard.local/cli\", \"api-key:ci\"]\n\
             [up.auth.policy.summarize]\nallow = [\"{research_id}\"]\n\
             [up.auth.policy.textstats]\nallow = [\"{research_id}\"]\n\
             [up.auth.policy.keywords]\nallow = [\"api-key:ci\"]\n",
            switchyard_gateway::hash_api_key(key)
        ),
    )
    .expect("write config");
    let up = Up::start(&[("SWITCHYARD_CONFIG", file.to_str().expect("utf-8"))]);
    let text = "Mutual TLS and policies protect every hop. Agents call agents.";

    // Directly, over mTLS as spiffe://switchyard.local/cli: research answers, and its call to
    // keywords is refused by keywords itself, with the reason in the report.
    let report = ok(&up.run(&["stream", "research", text]));
    assert!(report.contains("2 of 3 parts complete"), "{report}");
    assert!(
        report.contains("- **keywords**: PERMISSION_DENIED:")
            && report.contains(research_id)
            && report.contains("may not call agent \"keywords\""),
        "{report}"
    );
    assert!(!report.contains("- **summarize**"), "{report}");
    assert!(!report.contains("- **textstats**"), "{report}");

    // A direct call to keywords from a principal not in its policy: PERMISSION_DENIED.
    let (code, line) = failed(&up.run(&["send", "keywords", "let me in"]));
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("PERMISSION_DENIED") || line.to_lowercase().contains("permission denied"),
        "{line}"
    );
    assert!(line.contains("spiffe://switchyard.local/cli"), "{line}");

    // Through the gateway the agents trust the principal it forwards (its own SPIFFE ID is the
    // forwarder): `ci` may call keywords; research's fan-out is still research's own identity.
    let gateway = up
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("gateway    "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the banner names the gateway")
        .to_owned();
    let via = |args: &[&str]| {
        up.run_env(
            args,
            None,
            &[
                ("SWITCHYARD_GATEWAY_URL", gateway.as_str()),
                ("SWITCHYARD_TOKEN", key),
            ],
        )
    };
    let sent = ok(&via(&["send", "keywords", "keywords keywords of a text"]));
    assert!(sent.contains("COMPLETED"), "{sent}");
    let report = ok(&via(&["stream", "research", text]));
    assert!(
        report.contains("2 of 3 parts complete")
            && report.contains("- **keywords**: PERMISSION_DENIED:"),
        "{report}"
    );
    // MCP tool calls through the gateway forward the principal too: keywords answers `ci`.
    let (error, answer) = mcp_tool_call(&gateway, key, "keywords.keywords", "mesh mesh words");
    assert!(!error, "{answer}");
    assert!(answer.contains("mesh"), "{answer}");
    let (status, _) = up.interrupt();
    assert!(status.success());
}

/// One MCP session over the gateway's `/mcp` with the API key `key`: initialize, then call
/// `tool` with `text`; whether the result is an error, and its first text.
fn mcp_tool_call(gateway: &str, key: &str, tool: &str, text: &str) -> (bool, String) {
    switchyard::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let post = |body: serde_json::Value, session: Option<&str>| {
            let mut r = http
                .post(format!("{gateway}/mcp"))
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body.to_string());
            if let Some(s) = session {
                r = r.header("mcp-session-id", s);
            }
            r
        };
        // The JSON-RPC answer: plain JSON, or the `data:` of the SSE event that answers.
        let answer = |body: String| -> serde_json::Value {
            serde_json::from_str(&body).unwrap_or_else(|_| {
                body.lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
                    .find(|v| v.get("result").is_some() || v.get("error").is_some())
                    .unwrap_or_else(|| panic!("no MCP answer in {body}"))
            })
        };
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}});
        let r = post(init, None).send().await.expect("initialize");
        assert!(r.status().is_success(), "{}", r.status());
        let session = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("a session")
            .to_owned();
        answer(r.text().await.expect("body"));
        let r = post(
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            Some(&session),
        )
        .send()
        .await
        .expect("initialized");
        assert!(r.status().is_success(), "{}", r.status());
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": {"text": text}}});
        let r = post(call, Some(&session)).send().await.expect("call");
        let v = answer(r.text().await.expect("body"));
        let result = &v["result"];
        (
            result["isError"].as_bool().unwrap_or(false),
            result["content"][0]["text"]
                .as_str()
                .map_or_else(|| v.to_string(), ToOwned::to_owned),
        )
    })
}
