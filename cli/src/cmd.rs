//! The subcommands that talk to agents.

pub mod agents;
pub mod bus;
pub mod chat;
pub mod mcp;
pub mod send;
pub mod task;
