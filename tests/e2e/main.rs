//! End-to-end tests: real agent servers on 127.0.0.1:0 with their own data directories, driven
//! by the generated tonic clients (through `switchyard::Client`) and by the official Python
//! A2A SDK.

mod a2a_rpc;
mod agent_service;
mod bad_input;
mod cancel;
mod chaos;
mod chart;
mod clients;
mod connections;
mod console;
mod dns;
mod durability;
mod errors;
mod gateway;
mod gateway_card;
mod gateway_grpc;
mod gateway_grpc_web;
mod gateway_jsonrpc;
mod gateway_limits;
mod gateway_ops;
mod gateway_python;
mod gateway_rest;
mod gateway_sse;
mod gateway_ws;
mod idempotent;
mod image;
mod isolation;
mod large_messages;
mod mcp;
mod metrics;
mod ops;
mod postgres;
mod push;
mod python_sdk;
mod replicas;
mod replicas_gateway;
mod replicas_pg;
mod reply;
mod research;
mod research_markdown;
mod retention;
mod rude_peer;
mod trace;
mod tracing;
mod versions;
