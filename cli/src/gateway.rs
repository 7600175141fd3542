//! The gateway under `switchyard up`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use switchyard::Registry;
use switchyard_gateway::{Gateway, GatewayConfig, ShutdownHandle};
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
    let g = &config.up.gateway;
    if g.disabled {
        return Ok(None);
    }
    let auth = config.up.auth.gateway_config().map_err(CliError::Config)?;
    let gateway = Gateway::bind(
        GatewayConfig {
            auth,
            listen: SocketAddr::new(config.up.host, g.port),
            public_url: g.public_url.clone(),
            cors_origins: g.cors_origins.clone(),
            drain_timeout: Duration::from_secs_f64(config.up.drain_timeout_secs),
            sse_keepalive: Duration::from_secs_f64(g.sse_keepalive_secs),
            stream_resume: g.stream_resume().map_err(CliError::Config)?,
            connections: config.up.connections.limits(),
            ..Default::default()
        },
        registry,
    )
    .await
    .map_err(|e| CliError::Serve(format!("gateway: {e}")))?;
    let url = gateway.url();
    let stop = gateway.shutdown_handle();
    Ok(Some(RunningGateway {
        url,
        stop,
        join: tokio::spawn(gateway.run()),
    }))
}
