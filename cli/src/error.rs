//! Command failures: one line for the user, an exit code for scripts.

use std::path::PathBuf;

use switchyard::ClientError;

/// Why a command failed. `Display` is the one line printed after `switchyard: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration is invalid (exit 64, as `EX_USAGE`).
    #[error("{0}")]
    Config(String),
    /// No agent has this name.
    #[error("unknown agent {name:?}; known agents: {known}")]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated (or a hint when there are none).
        known: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    File {
        /// What was attempted, e.g. "read".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An agent could not be reached or answered with an error.
    #[error("{agent}: {message}")]
    Call {
        /// The agent called.
        agent: String,
        /// What went wrong.
        message: String,
    },
    /// The task ended in a failed state (FAILED, REJECTED, CANCELED).
    #[error("task {task} {state}: {reason}")]
    TaskFailed {
        /// The task id.
        task: String,
        /// Its final state, e.g. "FAILED".
        state: String,
        /// The agent's message.
        reason: String,
    },
    /// Serving (`switchyard up`) failed.
    #[error("{0}")]
    Serve(String),
}

impl CliError {
    /// The process exit code: 64 for configuration errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 64,
            _ => 1,
        }
    }

    /// A call failure, explained for a person.
    pub fn call(agent: &str, address: &str, e: &ClientError) -> Self {
        let message = match e.code() {
            tonic::Code::Unavailable => format!(
                "cannot reach the agent at {address} (is `switchyard up` running?): {}",
                e.status()
                    .map_or_else(|| e.to_string(), |s| s.message().to_owned())
            ),
            tonic::Code::DeadlineExceeded => {
                "the call timed out (raise --timeout for long tasks)".to_owned()
            }
            _ => e.to_string(),
        };
        Self::Call {
            agent: agent.to_owned(),
            message,
        }
    }
}
