//! `switchyard`: see the crate documentation of `switchyard_cli`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    ExitCode::from(switchyard_cli::run(std::env::args()).await)
}
