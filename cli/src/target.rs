//! Finding agents for a command: configured agents (file, `SWITCHYARD_AGENTS`) plus those a
//! running `switchyard up` publishes in the data directory's mesh file.

use std::{sync::Arc, time::Duration};

use switchyard::{AgentRef, Client, Registry, RegistryConfig};

use crate::{
    config::Config, conn::Conn, error::CliError, mesh::MeshFile, via_gateway::GatewayAgent,
};

/// The agents a command can reach.
#[derive(Debug)]
pub struct Mesh {
    registry: Arc<Registry>,
    /// The gateway of a running `switchyard up`, if any.
    pub gateway: Option<String>,
    /// The gateway commands go through (`gateway_url`), if configured.
    via: Option<String>,
    /// The credential for the gateway.
    token: Option<crate::config::Token>,
    timeout: Duration,
}

impl Mesh {
    /// Collects the agents of `config` and of the mesh file (configured ones win by name).
    ///
    /// # Errors
    /// [`CliError::File`] for an unreadable mesh file; [`CliError::Config`] for bad entries.
    pub fn load(config: &Config) -> Result<Self, CliError> {
        let mut agents = RegistryConfig::default();
        let mut gateway = None;
        if let Some(mesh) = MeshFile::read(&config.data_dir)? {
            agents.merge(RegistryConfig {
                agents: mesh.agents,
            });
            gateway = mesh.gateway;
            if let Some(files) = &mesh.tls {
                // The mesh speaks mTLS: every call of this process presents the CLI's
                // certificate (unless SWITCHYARD_TLS_* named another first).
                let tls = switchyard::tls::MeshTls::load(files)
                    .and_then(|t| t.client())
                    .map_err(|e| {
                        CliError::Config(format!(
                            "mesh TLS ({}): {e}",
                            MeshFile::path(&config.data_dir).display()
                        ))
                    })?;
                switchyard::tls::set_default_client(Some(tls));
            }
        }
        agents.merge(RegistryConfig {
            agents: config.agents.clone(),
        });
        let registry = switchyard::registry::DiscoveryConfig::from_env()
            .and_then(|discovery| Registry::with_discovery(&agents, discovery))
            .map_err(|e| CliError::Config(format!("agents: {e}")))?;
        Ok(Self {
            registry: Arc::new(registry),
            gateway,
            via: config.gateway_url.clone(),
            token: config.token.clone(),
            timeout: Duration::from_secs_f64(config.timeout_secs),
        })
    }

    /// The registry of every agent the command can reach.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The agent called `name`.
    ///
    /// # Errors
    /// [`CliError::UnknownAgent`], listing the known names.
    pub fn agent(&self, name: &str) -> Result<AgentRef, CliError> {
        self.registry.agent(name).map_err(|_| {
            let names: Vec<String> = self.names();
            CliError::UnknownAgent {
                name: name.to_owned(),
                known: if names.is_empty() {
                    "none (start the mesh with `switchyard up`, or configure agents)".into()
                } else {
                    names.join(", ")
                },
            }
        })
    }

    /// A client of `name` with the command's deadline.
    ///
    /// # Errors
    /// As [`agent`](Self::agent).
    pub fn client(&self, name: &str) -> Result<Client, CliError> {
        Ok(self.agent(name)?.client().with_timeout(self.timeout))
    }

    /// A client of `name` without a deadline (for streams that may run long).
    ///
    /// # Errors
    /// As [`agent`](Self::agent).
    pub fn streaming_client(&self, name: &str) -> Result<Client, CliError> {
        Ok(self.agent(name)?.client())
    }

    /// How to reach `name`: through the configured gateway, else over gRPC. `streaming`
    /// connections have no overall deadline.
    ///
    /// # Errors
    /// [`CliError::UnknownAgent`] (gRPC only: the gateway knows its own agents).
    pub fn conn(&self, name: &str, streaming: bool) -> Result<Conn, CliError> {
        if let Some(base) = &self.via {
            return Ok(Conn::Gateway(
                GatewayAgent::new(base, name, self.timeout)
                    .with_token(self.token.as_ref().map(|t| t.0.as_str())),
            ));
        }
        let client = if streaming {
            self.streaming_client(name)?
        } else {
            self.client(name)?
        };
        Ok(Conn::Grpc {
            agent: name.to_owned(),
            client: Box::new(client),
        })
    }

    /// Whether commands go through a gateway.
    pub fn via_gateway(&self) -> Option<&str> {
        self.via.as_deref()
    }

    /// Every agent.
    pub fn agents(&self) -> Vec<AgentRef> {
        self.registry.agents()
    }

    /// Every agent's name.
    pub fn names(&self) -> Vec<String> {
        self.agents().iter().map(|a| a.name().to_owned()).collect()
    }

    /// The deadline of a command's calls.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
