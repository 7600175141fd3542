//! `switchyard-summarize`: serves the summarize agent over gRPC (flags: see `switchyard::server::agent_main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard::server::agent_main("summarize", switchyard_summarize::Summarize).await
}
