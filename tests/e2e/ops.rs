//! Operations: gRPC health (NOT_SERVING while draining) and reflection (v1 and v1alpha).

use futures::StreamExt as _;
use serde_json::json;
use switchyard::pb::a2a::{SendMessageConfiguration, send_message_response};
use switchyard_e2e::{Served, collect, describe, message, request};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn health(channel: &Channel, service: &str) -> ServingStatus {
    let r = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(r.status).expect("status")
}

#[tokio::test]
async fn health_is_serving_then_not_serving_during_drain_and_in_flight_work_finishes() {
    let (echo, _dir) = Served::echo().await;
    let channel = Channel::from_shared(echo.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    for service in ["", "lf.a2a.v1.A2AService", "switchyard.v1.AgentService"] {
        assert_eq!(health(&channel, service).await, ServingStatus::Serving);
    }
    let mut req = request(message("in flight", json!({"delay_ms": 800})));
    req.configuration = Some(SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    let Some(send_message_response::Payload::Task(task)) =
        echo.client.send_message(req).await.expect("send").payload
    else {
        panic!("task")
    };
    echo.begin_shutdown();
    while health(&channel, "").await != ServingStatus::NotServing {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        health(&channel, "lf.a2a.v1.A2AService").await,
        ServingStatus::NotServing
    );
    let refused = echo
        .client
        .send_text("too late")
        .await
        .expect_err("draining");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused}");
    // Subscriptions still work while draining; the stream delivers the outcome, then the
    // server finishes its drain and stops.
    let events = collect(
        echo.client
            .subscribe(&task.id, None)
            .await
            .expect("subscribe"),
    )
    .await;
    let last = describe(&events).pop().expect("events");
    assert!(
        last.starts_with("status:COMPLETED"),
        "the in-flight task finished: {last}"
    );
    echo.stop().await;
}

#[tokio::test]
async fn reflection_lists_every_service_on_v1_and_v1alpha() {
    let (echo, _dir) = Served::echo().await;
    let channel = Channel::from_shared(echo.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .expect("reflection v1")
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = resp
        .next()
        .await
        .expect("response")
        .expect("ok")
        .message_response
    else {
        panic!("list services")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "lf.a2a.v1.A2AService",
        "switchyard.v1.AgentService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest as AlphaRequest,
        server_reflection_client::ServerReflectionClient as AlphaClient,
        server_reflection_request::MessageRequest as AlphaMessage,
        server_reflection_response::MessageResponse as AlphaResponse,
    };
    let req = AlphaRequest {
        host: String::new(),
        message_request: Some(AlphaMessage::FileContainingSymbol(
            "switchyard.v1.AgentService".into(),
        )),
    };
    let mut resp = AlphaClient::new(channel)
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let Some(AlphaResponse::FileDescriptorResponse(files)) = resp
        .next()
        .await
        .expect("response")
        .expect("ok")
        .message_response
    else {
        panic!("file descriptor")
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
