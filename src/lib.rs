//! # Switchyard: the A2A contracts and the agent runtime
//!
//! Switchyard is a gRPC-first service mesh for AI agents. This crate is what an agent author
//! needs: the protobuf contracts ([`pb`]), the [`Agent`] trait, and the runtime that serves one
//! `Agent` implementation as a production gRPC service ([`AgentServer`], [`serve`]):
//!
//! - `lf.a2a.v1.A2AService`, the standard A2A v1.0 gRPC binding (all 11 RPCs);
//! - `switchyard.v1.AgentService`, the mesh-native service with unary, server-, client- and
//!   bidi-streaming RPCs over the same A2A types;
//! - `grpc.health.v1.Health` and gRPC reflection (v1 and v1alpha).
//!
//! Tasks are durable ([`store`]): every event gets a per-task sequence number, is group-committed
//! to the embedded SQLite store before any subscriber sees it, and survives a restart; a
//! subscriber resumes after any sequence number with nothing lost or repeated. Cancellation
//! (CancelTask, the caller's deadline, a unary caller's disconnect) reaches the agent through
//! [`TaskContext::cancellation`]. W3C trace context flows from callers through the runtime to
//! the agent's own calls ([`Client`]).
//!
//! ## Layout
//! - [`Agent`], [`AgentError`]: what an author implements;
//! - [`TaskContext`], [`TaskEvents`]: what an execution gets; [`MessageContext`]: what a
//!   direct reply ([`Agent::reply`]) gets;
//! - [`AgentServer`], [`ServeConfig`], [`serve`]: serving;
//! - [`Client`]: calling agents; [`Registry`]: the agents of the mesh, whose clients balance,
//!   eject outliers and retry ([`resilience`]);
//! - [`store`]: [`TaskStore`](store::TaskStore) and its implementations;
//! - [`card`], [`task`], [`error`], [`trace`], [`deadline`]: protocol helpers;
//! - [`limits`]: the bounds on ids and JSON nesting every edge enforces;
//! - [`identity`]: who is calling (mTLS SPIFFE IDs, gateway-authenticated principals);
//! - [`outbound`]: where push notifications may go ([`outbound::PushPolicy`]).
#![warn(missing_docs)]

mod agent;
pub mod authz;
pub mod card;
pub mod client;
mod context;
pub mod deadline;
pub mod error;
mod events;
pub mod identity;
pub mod limits;
pub mod outbound;
pub mod pb;
pub mod registry;
pub mod resilience;
mod runtime;
pub mod server;
mod service;
pub mod store;
pub mod task;
pub mod telemetry;
pub mod tls;
pub mod trace;

pub use agent::{Agent, AgentError};
pub use client::{Client, ClientError};
pub use context::{MessageContext, TaskContext};
pub use events::{EventError, MAX_CHECKPOINT_BYTES, PROGRESS_KEY, TaskEvents};
pub use registry::{AgentRef, Registry, RegistryConfig};
pub use runtime::Recovery;
pub use server::{
    AgentServer, ServeConfig, ServeError, ShutdownHandle, StoreConfig, serve, shutdown_signal,
};
pub use service::{A2A_VERSION, LAST_EVENT_ID};
pub use store::Retention;

/// The README's Rust examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Installs rustls's `ring` provider as the process-wide default, once. Every TLS user in the
/// mesh (HTTP clients, gRPC with TLS) relies on it; call it early in `main` if you build your
/// own rustls configurations.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The process-wide HTTP client (HTTP/1.1 and HTTP/2, rustls with `ring`): agent cards by URL,
/// push notifications.
pub(crate) fn http_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        install_crypto_provider();
        reqwest::Client::builder()
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("the TLS provider is installed and the builder takes no fallible settings")
    })
}
