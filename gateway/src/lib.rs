//! # switchyard-gateway: every agent of the mesh over HTTP
//!
//! One HTTP listener (HTTP/1.1 and HTTP/2) in front of the agents of a
//! [`switchyard::Registry`], translating into their gRPC services (or passing gRPC through):
//!
//! | front | route (per agent `{agent}`) | gRPC call |
//! |---|---|---|
//! | A2A JSON-RPC 2.0 | `POST /agents/{agent}` (and `/agents/{agent}/`) | `lf.a2a.v1.A2AService/*` |
//! | A2A REST (HTTP+JSON) | `/agents/{agent}/message:send`, `/tasks/{id}`, … | `lf.a2a.v1.A2AService/*` |
//! | SSE | the streaming methods of both; `Last-Event-ID` resumes | server streaming |
//! | WebSocket | `GET /agents/{agent}/ws` | `switchyard.v1.AgentService/Converse` |
//! | native gRPC, gRPC-Web | `/{package.Service}/{Method}` + `x-switchyard-agent`, or `/agents/{agent}/{package.Service}/{Method}` | proxied as is (see `grpc`) |
//! | agent card | `GET /agents/{agent}/.well-known/agent-card.json` | the agent's card, URLs rewritten |
//! | directory | `GET /agents`, `GET /.well-known/agent-card.json` | every agent |
//! | MCP (streamable HTTP) | `/mcp`: every skill of every agent as a tool | `A2AService/SendStreamingMessage`, `CancelTask` |
//! | ops | `/healthz`, `/readyz` | — |
//! | web console | `GET /` (assets under `/console/`), `POST /console/render` (Markdown → safe HTML) | uses the fronts above |
//!
//! Each request picks the next endpoint of its agent (round robin per request, see
//! [`switchyard::AgentRef::client`]). The wire rules are those of A2A v1.0
//! (`design/A2A.md`); the tower layers and their order are in `layers`; errors become
//! answers in exactly one place per edge: JSON-RPC error objects, the REST envelope with the
//! googleapis HTTP status table, WebSocket close codes, and gRPC statuses (see `error`).
//!
//! ## Native gRPC and gRPC-Web
//! The same port takes `application/grpc` (HTTP/2 with prior knowledge) and gRPC-Web
//! (`application/grpc-web`, `application/grpc-web+proto`, `application/grpc-web-text`,
//! `application/grpc-web-text+proto`; HTTP/1.1 or HTTP/2, translated by `tonic-web`) for
//! `lf.a2a.v1.A2AService`, `switchyard.v1.AgentService`, `grpc.health.v1.Health` and
//! reflection, and forwards each call to its agent as it is. The agent is named by the
//! metadata header `x-switchyard-agent: <name>` on the usual path `/<package.Service>/<Method>`,
//! or by the path prefix `/agents/<name>/<package.Service>/<Method>` (stripped on the way; the
//! form A2A cards carry, since many gRPC clients cannot add a header). No agent named is
//! INVALID_ARGUMENT naming the header; an unknown agent NOT_FOUND; a message over
//! [`GatewayConfig::max_body_bytes`] RESOURCE_EXHAUSTED; broken framing INTERNAL — always a
//! gRPC status (trailers-only, or in the trailers once the agent has answered).
//!
//! ## Layout
//! - [`Gateway`], [`GatewayConfig`], [`ShutdownHandle`], [`GatewayError`]: the public API;
//! - `jsonrpc`, `rest`, `sse`, `ws`, `grpc`, `card`, `ops`: the fronts; `console`: the web
//!   console (files in `gateway/console/`, embedded);
//! - `call`, `method`, `upstream`, `lanes`: one call to one agent; `bounds`: the id and
//!   nesting limits of [`switchyard::limits`] at the edge;
//! - `error`: the error type and its four edges; `layers`: the middleware;
//! - `grpc`: the native gRPC and gRPC-Web front (dispatch by content type, `tonic-web`, the
//!   proxy, framing checks).
//!
//! ## Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use switchyard::{Registry, RegistryConfig};
//! use switchyard_gateway::{Gateway, GatewayConfig};
//!
//! let agents = RegistryConfig::from_env_value("echo=127.0.0.1:50051")?;
//! let gateway = Gateway::bind(GatewayConfig::default(), Arc::new(Registry::new(&agents)?)).await?;
//! let stop = gateway.shutdown_handle();
//! tokio::spawn(async move {
//!     switchyard::shutdown_signal().await;
//!     stop.shutdown();
//! });
//! gateway.run().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod app;
mod auth;
mod bounds;
mod call;
mod card;
mod config;
mod console;
mod error;
mod grpc;
mod headers;
mod jsonrpc;
mod lanes;
mod layers;
mod mcp;
mod method;
mod ops;
mod origin;
mod query;
mod rest;
mod resume;
mod server;
mod sse;
mod upstream;
mod ws;

pub use auth::{ApiKey, AuthConfig, JwksSource, JwtConfig, api_key::hash as hash_api_key};
pub use config::{ConnectionLimits, GatewayConfig, StreamResume};
pub use server::{Gateway, GatewayError};
/// Starts the drain of a running [`Gateway`]; the same handle agents use.
pub use switchyard::ShutdownHandle;
