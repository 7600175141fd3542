//! Measured servers in processes of their own, pinned apart from the load generator.
//!
//! A benchmark binary re-executes itself to serve one target (its own hidden `--serve…`
//! flag): the child prints `LISTENING <addr>` on standard output once it accepts
//! connections ([`announce`]) and runs until its standard input closes
//! ([`until_stdin_closes`]). With [`Pinning`], servers run under `taskset -c <server CPUs>`
//! and the load generator (the benchmark process itself, pinned before its Tokio runtime
//! starts, and any external load tool) on the client CPUs, so that the client's cost is not
//! charged to the server (issue 15, item 5). Tokio sizes its worker pool from the affinity,
//! so a process pinned to one CPU runs one worker.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use anyhow::Context as _;

use crate::Round;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader},
    process::{Child, Command},
};

/// Which CPUs the servers and the load generator run on (`taskset -c` lists).
#[derive(Debug, Clone, clap::Args)]
pub struct Pinning {
    /// CPUs of the measured servers, a `taskset -c` list (each server in its own process).
    #[arg(long, default_value = "0")]
    pub server_cpus: String,
    /// CPUs of the load generator (this process and the external load tools), a
    /// `taskset -c` list.
    #[arg(long, default_value = "1")]
    pub client_cpus: String,
    /// Pin nothing (where `taskset` is not allowed, or on a single CPU).
    #[arg(long)]
    pub no_pin: bool,
}

impl Pinning {
    /// `program` under `taskset -c <server CPUs>` (or as it is with `--no-pin`).
    pub fn server(&self, program: &Path) -> Command {
        self.command(&self.server_cpus, program)
    }

    /// `program` under `taskset -c <client CPUs>` (or as it is with `--no-pin`).
    pub fn client(&self, program: &Path) -> Command {
        self.command(&self.client_cpus, program)
    }

    fn command(&self, cpus: &str, program: &Path) -> Command {
        if self.no_pin {
            Command::new(program)
        } else {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(program);
            c
        }
    }

    /// Pins this process, all its threads, to the client CPUs; call it before the Tokio
    /// runtime starts, so that the runtime sizes its worker pool from the affinity. Does
    /// nothing with `--no-pin`.
    ///
    /// # Errors
    /// `taskset` (Debian `util-linux`) cannot be run or refuses the list.
    pub fn pin_self(&self) -> anyhow::Result<()> {
        if self.no_pin {
            return Ok(());
        }
        let status = std::process::Command::new("taskset")
            .args([
                "-a",
                "-p",
                "-c",
                &self.client_cpus,
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .context("running taskset (util-linux); --no-pin runs unpinned")?;
        anyhow::ensure!(
            status.success(),
            "taskset -c {} failed; --no-pin runs unpinned",
            self.client_cpus
        );
        Ok(())
    }

    /// One line for the report: where servers and load generator ran.
    pub fn describe(&self) -> String {
        format!(
            "servers on CPUs {}, load generator on CPUs {}{}",
            self.server_cpus,
            self.client_cpus,
            if self.no_pin { " (not pinned)" } else { "" }
        )
    }
}

/// Starts `cmd` (a server that prints `LISTENING <addr>`, see [`announce`]) with piped
/// standard input and output, killed when the returned [`Child`] is dropped; waits up to 60 s
/// for its address.
///
/// # Errors
/// The process cannot be started, exits before listening, or prints something else.
pub async fn spawn_server(cmd: Command) -> anyhow::Result<(Child, SocketAddr)> {
    let (child, addrs) = spawn_server_addrs(cmd).await?;
    Ok((child, addrs[0]))
}

/// [`spawn_server`] for a server that listens on several addresses (`LISTENING <addr>
/// <addr>…`, see [`announce_all`]): all of them, in order (at least one).
///
/// # Errors
/// As [`spawn_server`].
pub async fn spawn_server_addrs(mut cmd: Command) -> anyhow::Result<(Child, Vec<SocketAddr>)> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a server process")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("server start timed out")??
        .context("the server process exited before listening")?;
    let addrs = line
        .strip_prefix("LISTENING ")
        .with_context(|| format!("unexpected server output {line:?}"))?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<SocketAddr>, _>>()
        .with_context(|| format!("unexpected server address in {line:?}"))?;
    anyhow::ensure!(!addrs.is_empty(), "no server address in {line:?}");
    Ok((child, addrs))
}

/// Stops a server started by [`spawn_server`]: closes its standard input and waits up to 10 s.
pub async fn stop_server(child: &mut Child) {
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

/// What a served target prints once it accepts connections at `addr`.
pub fn announce(addr: SocketAddr) {
    announce_all(&[addr]);
}

/// Prints the `LISTENING <addr> <addr>…` line [`spawn_server_addrs`] waits for.
pub fn announce_all(addrs: &[SocketAddr]) {
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    println!("LISTENING {}", addrs.join(" "));
}

/// Returns when standard input closes (the parent stopped the server, or died).
pub async fn until_stdin_closes() {
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}

/// CPU time process `pid` has run so far, all its threads (the first field of each thread's
/// `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds; Linux with scheduler statistics).
/// Taken before and after a measurement, it charges that process's own CPU to the work,
/// whatever the machine's other load does to seconds. A thread that ends in between takes its
/// time with it: the difference is then too low (a server's runtime and store threads live as
/// long as it does).
///
/// # Errors
/// The process is gone, or the kernel keeps no scheduler statistics.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let mut nanos: u64 = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("no /proc entry for process {pid}"))?;
    for task in tasks {
        let path = task?.path().join("schedstat");
        // A thread that ended meanwhile has no file any more: it adds nothing.
        let Ok(stat) = std::fs::read_to_string(&path) else {
            continue;
        };
        let first = stat.split_whitespace().next().unwrap_or_default();
        nanos += first
            .parse::<u64>()
            .with_context(|| format!("{}: not a schedstat line: {stat:?}", path.display()))?;
    }
    Ok(Duration::from_nanos(nanos))
}

/// Runs `round` and measures the CPU time each of `pids` spent meanwhile ([`cpu_time`]), per
/// completed call, in µs.
///
/// # Errors
/// A process's `/proc` entry cannot be read (it exited).
pub async fn with_cpu<const N: usize>(
    pids: [u32; N],
    round: impl Future<Output = Round>,
) -> anyhow::Result<(Round, [f64; N])> {
    let mut before = [Duration::ZERO; N];
    for (b, &pid) in before.iter_mut().zip(&pids) {
        *b = cpu_time(pid)?;
    }
    let r = round.await;
    let calls = r.calls.max(1) as f64;
    let mut per_call = [0.0; N];
    for ((c, &pid), b) in per_call.iter_mut().zip(&pids).zip(before) {
        *c = cpu_time(pid)?.saturating_sub(b).as_secs_f64() * 1e6 / calls;
    }
    Ok((r, per_call))
}
