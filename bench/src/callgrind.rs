//! Instructions per call, counted by valgrind's callgrind: the same count for the same binary
//! and inputs whatever else the machine is doing, so a per-call cost can be compared where
//! seconds scatter.
//!
//! The benchmark binary runs itself under `valgrind --tool=callgrind` twice per target, making
//! `n` and then `2n` calls after the same setup; the difference of the two totals, divided by
//! `n`, is what one call costs (client and server, every thread of the process), without the
//! setup. The counted run calls [`counting_starts`] once its setup is done, and callgrind
//! zeroes its counts there, so setup that does not repeat exactly (the Prometheus recorder's
//! clock calibration spins for a wall-clock time) stays out of both totals. Needs `valgrind`
//! on `PATH` (Debian package `valgrind`).

use std::process::Command;

/// What a counted run does once its setup is done: the benchmarks' hidden `--calls n` and
/// `--chunks n` (the flags [`per_call`] and [`per_unit`] pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// This many sequential `SendMessage` calls, each a new message.
    Calls(u64),
    /// One `SendStreamingMessage` call of this many chunks.
    Chunks(u64),
}

impl Work {
    /// From the `--calls` and `--chunks` flags (`--calls` wins when both are given); `None`
    /// when neither is.
    pub fn from_flags(calls: Option<u64>, chunks: Option<u64>) -> Option<Self> {
        calls.map(Self::Calls).or(chunks.map(Self::Chunks))
    }
}

/// Total instructions (`Ir`) of the current executable run under callgrind with `args`.
///
/// # Errors
/// valgrind cannot be started, the run fails, or its report has no `Collected :` line.
pub fn total(args: &[String]) -> anyhow::Result<u64> {
    let exe = std::env::current_exe()?;
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--dump-line=no",
            "--zero-before=switchyard_bench::callgrind::counting_starts",
        ])
        .arg(&exe)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run valgrind (Debian package `valgrind`): {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        anyhow::bail!(
            "{} {args:?} under callgrind: {}\n{stderr}",
            exe.display(),
            out.status
        );
    }
    stderr
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().to_owned())
        })
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no `Collected :` line in callgrind's report:\n{stderr}"))
}

/// Instructions per call: runs `args` followed by `--calls n` and by `--calls 2n` under
/// callgrind and returns `(total(2n) − total(n)) / n`.
///
/// # Errors
/// As [`total`]; also when the longer run counted fewer instructions.
pub fn per_call(args: &[String], n: u64) -> anyhow::Result<f64> {
    per_unit(args, "--calls", n)
}

/// Instructions per unit of work: runs `args` followed by `flag n` and by `flag 2n` (e.g.
/// `--chunks`: one stream of n chunks) under callgrind and returns `(total(2n) − total(n)) / n`.
///
/// # Errors
/// As [`total`]; also when the longer run counted fewer instructions.
pub fn per_unit(args: &[String], flag: &str, n: u64) -> anyhow::Result<f64> {
    let run = |units: u64| {
        let mut a = args.to_vec();
        a.extend([flag.to_owned(), units.to_string()]);
        total(&a)
    };
    let (once, twice) = (run(n)?, run(2 * n)?);
    let extra = twice.checked_sub(once).ok_or_else(|| {
        anyhow::anyhow!("{n} more units counted fewer instructions ({once} then {twice})")
    })?;
    Ok(extra as f64 / n as f64)
}

/// Marks the end of a counted run's setup: callgrind zeroes its counts when this is entered
/// (`--zero-before`, see [`total`]). Call it once, after the servers and clients are built and
/// before the first counted call (a connection a client makes lazily, at its first call, is
/// then counted in both runs alike and cancels out). Outside callgrind it does nothing.
///
/// Without it, `quanta`'s clock calibration (run by the Prometheus recorder's install) loops
/// for a fixed wall-clock time, so its count differs between two runs under valgrind: one
/// `gateway_vs_grpc --instructions 1000` pair counted 7.5M instructions (7.5k per call) more
/// of it in one run than in the other.
#[inline(never)]
pub fn counting_starts() {
    std::hint::black_box(());
}
