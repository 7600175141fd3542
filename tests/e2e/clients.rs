//! The generated clients of `clients/` (Python, TypeScript on Node, Go) against the echo agent,
//! directly and through the gateway's native gRPC (`x-switchyard-agent: echo`), each running
//! every AgentService call kind (unary, server streaming, client streaming, bidirectional) and
//! A2A SendMessage / SubscribeToTask / GetTask, and checking that a call without `a2a-version`
//! is refused; and the TypeScript client over gRPC-Web from headless Chromium through the
//! gateway (unary and server streaming). The check programs are `tests/python/client_python.py`,
//! `clients/typescript/test/node.ts` and `tests/go/clientcheck`; each prints `ALL OK` at the end.
//!
//! Needs what `scripts/test` installs: the Python client (`pip install -e clients/python` in the
//! venv), `clients/typescript/node_modules` (npm: the Connect packages, TypeScript, esbuild and
//! playwright-core 1.65.1), Debian's Go toolchain with grpc-go and protobuf-go (GOPATH mode; the
//! GOPATH and build cache live in the target directory) and Debian's `chromium`
//! (`$SWITCHYARD_CHROMIUM` names another binary).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use switchyard_e2e::{Served, python};
use tokio::process::Command;

use crate::gateway::{Gw, agent};

/// Bound on one check program's run or one build.
const PATIENCE: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end within [`PATIENCE`]; returns stdout and stderr, panicking with both
/// when it fails.
async fn run(mut cmd: Command, what: &str) -> String {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} finished within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{what} started: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The arguments of a check program: the target and, through the gateway, the agent's name.
fn target_args(target: &str, agent: Option<&str>) -> Vec<String> {
    std::iter::once(target.to_owned())
        .chain(agent.map(str::to_owned))
        .collect()
}

/// Runs the Python check program against `target`.
async fn python_client(target: &str, agent: Option<&str>) -> String {
    let mut args = vec!["tests/python/client_python.py".to_owned()];
    args.extend(target_args(target, agent));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python::run(&args).await
}

/// `clients/typescript`, with its npm packages installed.
fn typescript_dir() -> PathBuf {
    let dir = python::workspace().join("clients/typescript");
    assert!(
        dir.join("node_modules/@connectrpc/connect-node").exists(),
        "{}/node_modules is missing: run `scripts/test --setup-only` (npm install there)",
        dir.display()
    );
    dir
}

/// Compiles the TypeScript client and its test programs (tsc, `tsconfig.test.json`) into
/// `clients/typescript/dist-test/<name>` (one folder per test, so that tests running at the same
/// time do not write over each other); returns that folder.
async fn build_typescript(name: &str) -> PathBuf {
    let dir = typescript_dir();
    let out = dir.join("dist-test").join(name);
    let mut tsc = Command::new("npx");
    tsc.args([
        "--no-install",
        "tsc",
        "-p",
        "tsconfig.test.json",
        "--outDir",
    ])
    .arg(&out)
    .current_dir(&dir);
    run(tsc, "tsc -p tsconfig.test.json (clients/typescript)").await;
    out
}

/// Runs a compiled TypeScript test program (`test/<program>.js` under `out`) with Node, from
/// `clients/typescript`.
async fn node(out: &Path, program: &str, args: Vec<String>) -> String {
    let mut node = Command::new("node");
    node.arg(out.join("test").join(format!("{program}.js")))
        .args(args)
        .current_dir(typescript_dir());
    run(node, &format!("node test/{program}.ts")).await
}

/// Builds `tests/go/clientcheck` against `clients/go` with Debian's Go in GOPATH mode: a GOPATH
/// under the target directory links the repository's packages at their import path
/// (`github.com/switchyard-mesh/switchyard/...`) beside Debian's `/usr/share/gocode`.
async fn build_go() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let repo = tmp.join("gopath/src/github.com/switchyard-mesh/switchyard");
    let ws = python::workspace();
    for (link, to) in [
        (repo.join("clients"), ws.join("clients")),
        (repo.join("tests/go"), ws.join("tests/go")),
    ] {
        if std::fs::read_link(&link).ok().as_deref() != Some(to.as_path()) {
            std::fs::create_dir_all(link.parent().expect("parent")).expect("gopath dirs");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&to, &link).expect("link into the GOPATH");
        }
    }
    let binary = tmp.join("clientcheck");
    let mut go = Command::new("go");
    go.current_dir(&ws)
        .args(["build", "-o"])
        .arg(&binary)
        .arg("github.com/switchyard-mesh/switchyard/tests/go/clientcheck")
        .env("GO111MODULE", "off")
        .env(
            "GOPATH",
            format!("{}:/usr/share/gocode", tmp.join("gopath").display()),
        )
        .env("GOCACHE", tmp.join("cache"))
        .env("GOFLAGS", "");
    run(go, "go build (Debian golang-go; scripts/test installs it)").await;
    binary
}

/// The echo agent and a gateway in front of it as `echo`; the gateway's `host:port`.
async fn echo_and_gateway() -> (Served, Gw, String, Arc<tempfile::TempDir>) {
    let (echo, dir) = Served::echo().await;
    let gw = Gw::start(vec![agent("echo", echo.addr)], |_| {}).await;
    let addr = gw
        .url
        .strip_prefix("http://")
        .expect("the gateway URL is http://host:port")
        .to_owned();
    (echo, gw, addr, dir)
}

/// Checks a check program's output: every check passed, health included.
fn assert_all_ok(out: &str) {
    assert!(out.contains("ALL OK"), "{out}");
    assert!(!out.contains("FAIL:"), "{out}");
    assert!(out.contains("ok: health: SERVING"), "{out}");
}

#[tokio::test]
async fn the_python_client_calls_every_kind_and_a2a_directly_and_through_the_gateway() {
    let (echo, gw, gateway, _dir) = echo_and_gateway().await;
    assert_all_ok(&python_client(&echo.addr.to_string(), None).await);
    assert_all_ok(&python_client(&gateway, Some("echo")).await);
    gw.stop().await;
}

#[tokio::test]
async fn the_typescript_client_calls_every_kind_and_a2a_from_node_directly_and_through_the_gateway()
{
    let out = build_typescript("node").await;
    let (echo, gw, gateway, _dir) = echo_and_gateway().await;
    let direct = node(&out, "node", target_args(&echo.addr.to_string(), None)).await;
    assert_all_ok(&direct);
    let through = node(&out, "node", target_args(&gateway, Some("echo"))).await;
    assert_all_ok(&through);
    gw.stop().await;
}

#[tokio::test]
async fn the_go_client_calls_every_kind_and_a2a_directly_and_through_the_gateway() {
    let binary = build_go().await;
    let (echo, gw, gateway, _dir) = echo_and_gateway().await;
    for args in [
        target_args(&echo.addr.to_string(), None),
        target_args(&gateway, Some("echo")),
    ] {
        let mut check = Command::new(&binary);
        check.args(args);
        assert_all_ok(&run(check, "tests/go/clientcheck").await);
    }
    gw.stop().await;
}

/// One headless Chromium run (playwright-core 1.65.1, Debian's /usr/bin/chromium): a page on
/// another loopback origin calls echo through the gateway over gRPC-Web with the TypeScript
/// client, unary and server streaming.
#[tokio::test]
async fn the_typescript_client_calls_unary_and_server_streaming_over_grpc_web_from_chromium() {
    let out = build_typescript("chromium").await;
    let (_echo, gw, _gateway, _dir) = echo_and_gateway().await;
    let page = node(&out, "chromium", vec![gw.url.clone(), "echo".into()]).await;
    assert!(page.contains("ALL OK"), "{page}");
    for call in [
        "gRPC-Web unary AgentService.SendMessage",
        "gRPC-Web server-streaming AgentService.SendStreamingMessage",
        "gRPC-Web unary A2AService.GetTask",
    ] {
        assert!(page.contains(&format!("ok: {call}")), "{page}");
    }
    gw.stop().await;
}
