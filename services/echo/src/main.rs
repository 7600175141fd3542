//! `switchyard-echo`: serves the echo agent over gRPC (flags: see `switchyard::server::agent_main`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    switchyard::server::agent_main("echo", switchyard_echo::Echo).await
}
