//! The container image (`Containerfile`, `scripts/image`): built with `buildah` and no container
//! engine from the debug binaries this test run built, in its lighter (dev) form; then started
//! with `buildah run --isolation chroot` as its configured user: every binary must start, and an
//! agent must serve as the non-root user 65532, write its task store, and answer
//! `grpc.health.v1` SERVING.
//!
//! Needs root (as CI runs) and buildah (`scripts/test` installs it; `scripts/image
//! --setup-only` alone does too). A missing tool fails the test with what to do.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::{Value, json};
use switchyard::{
    Client,
    pb::a2a::{TaskState, send_message_response},
};
use switchyard_e2e::{message, request, settle};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Command,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Every binary the image ships, at `/usr/local/bin/<name>`.
const BINARIES: [&str; 7] = [
    "switchyard",
    "switchyard-gateway",
    "switchyard-echo",
    "switchyard-textstats",
    "switchyard-summarize",
    "switchyard-keywords",
    "switchyard-research",
];

/// The repository root (this crate lives in `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The profile directory this test binary was built into (`target/debug/deps/e2e-…` →
/// `target/debug`), where `cargo build --workspace --all-targets` put the binaries (cargo builds
/// another package's binaries only when asked).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    for b in BINARIES {
        assert!(
            dir.join(b).is_file(),
            "{} is missing: the image test packs the binaries of this build; build them first \
             with `cargo build --workspace --all-targets` (scripts/test does)",
            dir.join(b).display()
        );
    }
    dir.to_path_buf()
}

/// `buildah` with this test's own storage under `dir`.
fn buildah(dir: &Path) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.arg("--storage-driver")
        .arg("vfs")
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"));
    cmd
}

/// Runs `cmd` to completion and returns its stdout; fails the test with its stderr otherwise.
async fn output(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().await.unwrap_or_else(|e| {
        panic!("{what}: cannot start ({e}); is buildah installed? run scripts/test --setup-only")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A `buildah run` child: SIGTERM on drop (buildah then ends the process in the container; a
/// SIGKILL would orphan it), so a failing assertion leaves nothing running.
struct Running(u32);

impl Running {
    fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// `(real, effective)` uid of the `name` process descended from `ancestor`, read from `/proc`.
fn uid_of_descendant(name: &str, ancestor: u32) -> Option<(u32, u32)> {
    let status = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
    let field = |s: &str, key: &str| -> Option<String> {
        s.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
    };
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let Some(s) = status(&pid) else { continue };
        if field(&s, "Name:").as_deref() != Some(name) {
            continue;
        }
        let mut parent = field(&s, "PPid:")?;
        while parent != "0" && parent != "1" {
            if parent == ancestor.to_string() {
                let uids = field(&s, "Uid:")?;
                let mut ids = uids.split_whitespace().map(|u| u.parse().ok());
                return Some((ids.next()??, ids.next()??));
            }
            parent = field(&status(&parent)?, "PPid:")?;
        }
    }
    None
}

#[tokio::test]
async fn image_built_without_an_engine_runs_an_agent_as_non_root_that_answers_health() {
    let bins = bin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("switchyard.oci.tar");

    // Build: scripts/image with this run's debug binaries, into an OCI archive.
    let mut build = Command::new(repo().join("scripts/image"));
    build
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--output")
        .arg(&archive)
        .arg("--tag")
        .arg("switchyard:e2e");
    output(build, "scripts/image").await;

    // Import the archive as a container and check the image's configuration and files.
    let mut from = buildah(dir.path());
    from.args(["from", "--quiet", "--name", "switchyard-e2e"])
        .arg(format!("oci-archive:{}", archive.display()));
    let ctr = output(from, "buildah from").await.trim().to_owned();
    let mut inspect = buildah(dir.path());
    inspect.args(["inspect", "--type", "container", &ctr]);
    let info: Value =
        serde_json::from_str(&output(inspect, "buildah inspect").await).expect("json");
    let config = &info["OCIv1"]["config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/switchyard"]));
    assert_eq!(config["WorkingDir"], "/data");
    assert_eq!(
        config["Labels"]["org.opencontainers.image.title"],
        "switchyard"
    );
    let mut mount = buildah(dir.path());
    mount.args(["mount", &ctr]);
    let root = PathBuf::from(output(mount, "buildah mount").await.trim());
    assert!(!root.join("bin/sh").exists(), "the image has no shell");
    // Every binary starts in the image (its shared libraries are there), found on its PATH.
    for b in BINARIES {
        let mut version = buildah(dir.path());
        version.args(["run", "--isolation", "chroot", &ctr, "--", b, "--version"]);
        let out = output(version, &format!("{b} --version in the image")).await;
        assert!(
            out.trim_end()
                .ends_with(concat!(" ", env!("CARGO_PKG_VERSION"))),
            "{b} --version printed {out:?}"
        );
    }

    // Run: the echo agent, as the image's user, on a free loopback port (host network).
    let mut run = buildah(dir.path());
    run.args(["run", "--isolation", "chroot", &ctr, "--"])
        .args(["/usr/local/bin/switchyard-echo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = run.spawn().expect("buildah run");
    let buildah_pid = child.id().expect("pid");
    let running = Running(buildah_pid);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the agent starts within 60 s")
        .expect("read stdout")
        .expect("the agent prints its address (exited early?)");
    let addr = first
        .strip_prefix("echo listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));

    assert_eq!(
        uid_of_descendant("switchyard-echo", buildah_pid),
        Some((65532, 65532)),
        "the agent runs as the image's non-root user"
    );

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect to the agent in the container");
    for service in ["", "lf.a2a.v1.A2AService"] {
        let r = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "health of {service:?}");
    }
    // A task goes through the SQLite store in /data, written by the non-root user.
    let client = Client::connect(addr).await.expect("client");
    let req = request(message("from the image", json!({})));
    let Some(send_message_response::Payload::Task(task)) =
        client.send_message(req).await.expect("send").payload
    else {
        panic!("expected a task")
    };
    let done = settle(&client, &task.id).await;
    assert_eq!(done.state(), TaskState::Completed);
    assert_eq!(done.artifacts[0].text(), "from the image");

    // SIGTERM to buildah ends the process it runs in the container.
    running.terminate();
    child.wait().await.expect("buildah run exits");
    assert_eq!(uid_of_descendant("switchyard-echo", buildah_pid), None);
}
