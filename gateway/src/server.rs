//! [`Gateway`]: bind, serve, drain.
//!
//! Drain, on [`ShutdownHandle::shutdown`] (or the `signal` of [`Gateway::run_until`]):
//! 1. `/readyz` turns 503 and new requests get 503 + `Retry-After` (+ `Connection: close`);
//! 2. open SSE streams end with an error event (resume elsewhere with `Last-Event-ID`) and
//!    WebSocket sessions close with 1001; the agents' tasks go on;
//! 3. the listener stops accepting; HTTP/2 connections get GOAWAY and in-flight unary calls
//!    finish, for at most `drain_timeout`.

use std::{future::Future, net::SocketAddr, sync::Arc};

use switchyard::{Registry, ShutdownHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    GatewayConfig,
    app::{self, AppState, Shared},
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("invalid gateway configuration: {0}")]
    Config(String),
}

/// The HTTP gateway in front of every agent of a [`Registry`].
///
/// # Example
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use switchyard::{Registry, RegistryConfig};
/// use switchyard_gateway::{Gateway, GatewayConfig};
///
/// let registry = Arc::new(Registry::new(&RegistryConfig::from_env_value("echo=127.0.0.1:50051")?)?);
/// let gateway = Gateway::bind(GatewayConfig::default(), registry).await?;
/// println!("gateway at {}", gateway.url());
/// gateway.run_until(switchyard::shutdown_signal()).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    state: AppState,
    stop: ShutdownHandle,
    tls: Option<switchyard::tls::ServerTls>,
}

impl Gateway {
    /// Checks the configuration and binds the listener. Agents are reached lazily; cards the
    /// registry has not loaded yet are loaded when the gateway runs.
    ///
    /// # Errors
    /// [`GatewayError::Config`] for an unusable setting (zero sizes, a bad public URL or CORS
    /// origin); [`GatewayError::Bind`] when the address is taken or not allowed.
    pub async fn bind(
        config: GatewayConfig,
        registry: Arc<Registry>,
    ) -> Result<Self, GatewayError> {
        switchyard::telemetry::metrics::install();
        config.validate().map_err(GatewayError::Config)?;
        let cors = app::cors(&config.cors_origins).map_err(GatewayError::Config)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(
                switchyard::tls::ServerTls::edge(cert, key)
                    .map_err(|e| GatewayError::Config(e.to_string()))?,
            ),
            _ => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
        let base_url = match &config.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = local_addr;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                let scheme = if tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{addr}")
            }
        };
        let authenticator = if config.auth.is_enabled() {
            let a = crate::auth::Authenticator::new(&config.auth)
                .await
                .map_err(GatewayError::Config)?;
            Some(Arc::new(a))
        } else {
            None
        };
        tracing::info!(
            authentication = if authenticator.is_some() { "on" } else { "off" },
            api_keys = config.auth.api_keys.len(),
            jwt = config.auth.jwt.is_some(),
            authorization = if config.auth.policy.is_enabled() {
                "on"
            } else {
                "off"
            },
            "gateway authentication {}",
            if authenticator.is_some() {
                "on"
            } else {
                "off (every caller is anonymous)"
            }
        );
        let state = AppState(Arc::new(Shared {
            authenticator,
            card_security: Arc::new(crate::card::CardSecurity::of(&config.auth)),
            registry,
            config,
            base_url: base_url.into(),
            draining: CancellationToken::new(),
            lanes: Default::default(),
            modified: Default::default(),
        }));
        let router = app::router(state.clone(), cors);
        Ok(Self {
            listener,
            local_addr,
            router,
            state,
            stop: ShutdownHandle::new(),
            tls,
        })
    }

    /// Whether the listener speaks HTTPS ([`GatewayConfig::tls_cert`]).
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The public base URL (`public_url`, else `http://<bound address>`, `https://…` with TLS), without a trailing
    /// slash; agent `x` is at `<url>/agents/x`.
    pub fn url(&self) -> String {
        self.state.base_url.to_string()
    }

    /// A handle that starts the drain ([`switchyard::ShutdownHandle`], the type agents use).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Serves until [`ShutdownHandle::shutdown`], then drains (see the module docs).
    pub async fn run(self) {
        let stop = self.stop.clone();
        self.run_until(async move { stop.triggered().await }).await;
    }

    /// Serves until `signal` completes (or [`ShutdownHandle::shutdown`]), then drains.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) {
        let state = self.state;
        if !state.registry.is_loaded() {
            let registry = state.registry.clone();
            let timeout = state.config.card_timeout;
            tokio::spawn(async move {
                for (agent, error) in registry.load_cards(timeout).await {
                    tracing::warn!(%agent, %error, "agent card not loaded");
                }
            });
        }
        let connections = CancellationToken::new();
        let serving = tokio::spawn(switchyard::server::listener::serve(
            self.listener,
            self.router,
            connections.clone(),
            state.config.drain_timeout,
            state.config.connections,
            self.tls,
        ));
        tracing::info!(addr = %self.local_addr, url = %state.base_url, "gateway serving");
        tokio::select! {
            () = signal => {}
            () = self.stop.triggered() => {}
        }
        tracing::info!(addr = %self.local_addr, "gateway draining");
        state.draining.cancel();
        connections.cancel();
        let _ = serving.await;
        tracing::info!(addr = %self.local_addr, "gateway stopped");
    }
}
