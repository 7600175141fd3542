//! # switchyard-mcp: Switchyard and the Model Context Protocol
//!
//! Two bridges between the mesh and MCP clients and servers, both through the official Rust
//! MCP SDK ([`rmcp`]); no MCP message is written by hand here.
//!
//! - **Mesh agents as MCP tools** ([`MeshTools`]): every skill of every agent of a
//!   [`switchyard::Registry`] is one MCP tool ([`catalog`] names and describes them). A tool
//!   call sends one A2A message over gRPC (`SendStreamingMessage`), relays the task's WORKING
//!   updates as MCP progress notifications, cancels the task (`CancelTask`) when the MCP
//!   request is cancelled, and turns the task's artifacts into MCP content ([`content`]).
//!   Agents that stop answering leave the tool list and come back when they answer again;
//!   every connected client then gets `notifications/tools/list_changed`. Transports:
//!   [`serve_stdio`] (what `switchyard mcp` runs) and [`http_service`] (streamable HTTP,
//!   mounted at the gateway's `/mcp`).
//! - **Local processes as mesh agents**: [`StdioAgent`] serves a process that speaks
//!   newline-delimited JSON-RPC with A2A method names and types ([`stdio_agent`] has the
//!   protocol); [`McpServerAgent`] serves an MCP server process, its tools as the agent's
//!   skills. Both are [`switchyard::Agent`]s, so the runtime serves them over gRPC and the
//!   gateway over every front. [`process`] supervises the child (restart with backoff,
//!   stderr to the logs, garbage on stdout fails the tasks in flight, not the mesh).
//!
//! ## Layout
//! - [`MeshTools`], [`McpConfig`]: the MCP server over the mesh; [`catalog`]: tools from
//!   agent cards; [`content`]: task → tool result;
//! - [`serve_stdio`], [`http_service`]: the transports;
//! - [`process`], [`stdio_agent`], [`mcp_agent`]: processes as agents.
#![warn(missing_docs)]

pub mod catalog;
pub mod content;
pub mod mcp_agent;
pub mod process;
mod server;
pub mod stdio_agent;

pub use mcp_agent::McpServerAgent;
pub use process::{Process, ProcessConfig};
pub use server::{McpConfig, MeshTools, http_service, serve_stdio};
pub use stdio_agent::StdioAgent;
