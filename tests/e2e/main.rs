//! End-to-end tests: real agent servers on 127.0.0.1:0 with their own data directories, driven
//! by the generated tonic clients (through `switchyard::Client`) and by the official Python
//! A2A SDK.

mod a2a_rpc;
mod agent_service;
mod cancel;
mod durability;
mod errors;
mod ops;
mod python_sdk;
mod trace;
