//! Shared load-generation code for Switchyard's benchmarks: a closed-loop load of N concurrent
//! callers for a fixed time, with latency percentiles; interleaved rounds so that machine noise
//! hits every target alike.

pub mod bare;
pub mod callgrind;
pub mod process;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// What one round against one target measured.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Completed calls per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th-percentile latency, µs.
    pub p99_us: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls that completed.
    pub calls: u64,
}

/// Runs `call` from `concurrency` callers for `duration` and measures it.
pub async fn round<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Round
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let stop = Instant::now() + duration;
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0;
            while Instant::now() < stop {
                let t = Instant::now();
                if call().await {
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.await.expect("worker");
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Round {
        rps: all.len() as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors,
        calls: all.len() as u64,
    }
}

/// The median of `xs` (upper median for even lengths).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// Medians over rounds: (rps, p50 µs, p99 µs).
pub fn summarize(rounds: &[Round]) -> (f64, f64, f64) {
    let mut rps: Vec<f64> = rounds.iter().map(|r| r.rps).collect();
    let mut p50: Vec<f64> = rounds.iter().map(|r| r.p50_us as f64).collect();
    let mut p99: Vec<f64> = rounds.iter().map(|r| r.p99_us as f64).collect();
    (median(&mut rps), median(&mut p50), median(&mut p99))
}

/// The shares of the samples of the recording `data` (a `perf.data` file) that one `perf
/// report --sort <sort>` gives its entries, in percent, keyed by the last word of each entry's
/// line (a thread name with `comm`, a symbol with `sym`): the first percentage of the line,
/// the entry's own samples with `children = false`, its samples and its callees' with
/// `children = true` (a recording with call graphs, `perf record -g`). The first line of a
/// key wins.
///
/// # Errors
/// `perf` cannot be run (Debian package `linux-perf`).
pub async fn perf_shares(
    data: &std::path::Path,
    sort: &str,
    children: bool,
) -> std::io::Result<std::collections::HashMap<String, f64>> {
    let out = tokio::process::Command::new("perf")
        .args(["report", "--stdio", "-g", "none", "-i"])
        .arg(data)
        .args(["--sort", sort])
        .arg(if children {
            "--children"
        } else {
            "--no-children"
        })
        .output()
        .await?;
    let mut shares = std::collections::HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split_whitespace();
        let Some(share) = fields
            .next()
            .and_then(|f| f.strip_suffix('%'))
            .and_then(|f| f.parse::<f64>().ok())
        else {
            continue;
        };
        if let Some(name) = fields.last() {
            shares.entry(name.to_owned()).or_insert(share);
        }
    }
    Ok(shares)
}

/// The `perf report` summaries of the recording `data` (a `perf.data` file), as the section
/// text of a profile file: `## by shared object` (`--sort dso`, entries ≥ 0.5 %) then
/// `## by symbol` (`--sort dso,symbol`, entries ≥ `symbol_limit` %), each `--no-children`,
/// call graphs off.
///
/// # Errors
/// `perf` cannot be run (Debian package `linux-perf`).
pub async fn perf_summary(data: &std::path::Path, symbol_limit: f64) -> std::io::Result<String> {
    let report = |sort: &str, limit: String| {
        let mut c = tokio::process::Command::new("perf");
        c.args(["report", "--stdio", "--no-children", "-g", "none", "-i"])
            .arg(data)
            .args(["--sort", sort, "--percent-limit", &limit]);
        c
    };
    let by_dso = report("dso", "0.5".into()).output().await?;
    let by_symbol = report("dso,symbol", symbol_limit.to_string())
        .output()
        .await?;
    Ok(format!(
        "## by shared object\n{}\n## by symbol\n{}",
        String::from_utf8_lossy(&by_dso.stdout),
        String::from_utf8_lossy(&by_symbol.stdout)
    ))
}
