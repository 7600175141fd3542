//! The official A2A Python SDK (`a2a-sdk[grpc]==1.3.0`) against our servers: schema
//! compatibility and the SDK's gRPC client against the echo agent.

use switchyard_e2e::{Served, python};

#[tokio::test]
async fn our_a2a_proto_matches_the_sdk_schema_exactly() {
    let out = python::run(&["tests/python/check_schema.py", "."]).await;
    assert!(out.contains("0 differences"), "{out}");
}

#[tokio::test]
async fn the_sdk_grpc_client_sends_streams_gets_lists_cancels_and_subscribes() {
    let (echo, _dir) = Served::echo().await;
    let out = python::run(&["tests/python/sdk_grpc_client.py", &echo.addr.to_string()]).await;
    assert!(out.contains("ALL OK"), "{out}");
}
