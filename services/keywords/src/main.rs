//! `switchyard-keywords`: serves the keywords agent over gRPC (flags: see `switchyard::server::agent_main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard::server::agent_main("keywords", switchyard_keywords::Keywords).await
}
