//! `switchyard-textstats`: serves the textstats agent over gRPC (flags: see `switchyard::server::agent_main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard::server::agent_main("textstats", switchyard_textstats::TextStats).await
}
