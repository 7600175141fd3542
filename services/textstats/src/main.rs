//! `switchyard-textstats`: serves the textstats agent over gRPC (flags: see `switchyard::server::agent_main`).

/// mimalloc (v2) rather than glibc's malloc: ~12 % fewer instructions per call, idle memory per
/// connection within its budget (`bench/RESULTS.md` §10, "mimalloc").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard::server::agent_main("textstats", switchyard_textstats::TextStats).await
}
