//! `switchyard`: see the crate documentation of `switchyard_cli`.

use std::process::ExitCode;

/// mimalloc (v2) rather than glibc's malloc: ~12 % fewer instructions per call, idle memory per
/// connection within its budget (`bench/RESULTS.md` §10, "mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    ExitCode::from(switchyard_cli::run(std::env::args()).await)
}
