//! A peer that breaks HTTP/2 on one call (an error trailer far over any header limit, which
//! makes the gateway's HTTP/2 client abort that connection) must not end other clients'
//! streams to it through the gateway, and the next call reaches it again.

use std::{net::SocketAddr, sync::Arc};

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::pb::a2a::{
    self, SendMessageRequest, StreamResponse, Task, TaskState, TaskStatus, TaskStatusUpdateEvent,
    a2a_service_server::{A2aService, A2aServiceServer},
    stream_response::Payload,
};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::gateway::{Gw, PATIENCE, agent, json_of, kind, msg};

/// Streams one task that completes when the gate opens; answers GetTask with a 2 MiB error
/// message (a protocol abuse: it travels in a trailer), ListTasks with an empty page.
struct Rude(Arc<Semaphore>);

fn event(payload: Payload) -> Result<StreamResponse, Status> {
    Ok(StreamResponse {
        payload: Some(payload),
    })
}

fn status(state: TaskState) -> Option<TaskStatus> {
    Some(TaskStatus {
        state: state as i32,
        ..Default::default()
    })
}

#[tonic::async_trait]
impl A2aService for Rude {
    async fn send_message(
        &self,
        _: Request<SendMessageRequest>,
    ) -> Result<Response<a2a::SendMessageResponse>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    type SendStreamingMessageStream = tonic::codegen::BoxStream<StreamResponse>;
    async fn send_streaming_message(
        &self,
        _: Request<SendMessageRequest>,
    ) -> Result<Response<Self::SendStreamingMessageStream>, Status> {
        let gate = self.0.clone();
        let task = Task {
            id: "t1".into(),
            context_id: "c1".into(),
            status: status(TaskState::Working),
            ..Default::default()
        };
        let done = TaskStatusUpdateEvent {
            task_id: "t1".into(),
            context_id: "c1".into(),
            status: status(TaskState::Completed),
            ..Default::default()
        };
        let first = futures::stream::iter([event(Payload::Task(task))]);
        let last = futures::stream::once(async move {
            let _permit = gate.acquire().await;
            event(Payload::StatusUpdate(done))
        });
        Ok(Response::new(Box::pin(first.chain(last))))
    }
    async fn get_task(&self, _: Request<a2a::GetTaskRequest>) -> Result<Response<Task>, Status> {
        Err(Status::not_found("x".repeat(2 * 1024 * 1024)))
    }
    async fn list_tasks(
        &self,
        _: Request<a2a::ListTasksRequest>,
    ) -> Result<Response<a2a::ListTasksResponse>, Status> {
        Ok(Response::new(a2a::ListTasksResponse::default()))
    }
    async fn cancel_task(
        &self,
        _: Request<a2a::CancelTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    type SubscribeToTaskStream = tonic::codegen::BoxStream<StreamResponse>;
    async fn subscribe_to_task(
        &self,
        _: Request<a2a::SubscribeToTaskRequest>,
    ) -> Result<Response<Self::SubscribeToTaskStream>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    async fn create_task_push_notification_config(
        &self,
        _: Request<a2a::TaskPushNotificationConfig>,
    ) -> Result<Response<a2a::TaskPushNotificationConfig>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    async fn get_task_push_notification_config(
        &self,
        _: Request<a2a::GetTaskPushNotificationConfigRequest>,
    ) -> Result<Response<a2a::TaskPushNotificationConfig>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    async fn list_task_push_notification_configs(
        &self,
        _: Request<a2a::ListTaskPushNotificationConfigsRequest>,
    ) -> Result<Response<a2a::ListTaskPushNotificationConfigsResponse>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    async fn get_extended_agent_card(
        &self,
        _: Request<a2a::GetExtendedAgentCardRequest>,
    ) -> Result<Response<a2a::AgentCard>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
    async fn delete_task_push_notification_config(
        &self,
        _: Request<a2a::DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        Err(Status::unimplemented("rude peer"))
    }
}

async fn start(gate: Arc<Semaphore>) -> SocketAddr {
    let incoming =
        tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
    let addr = incoming.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(A2aServiceServer::new(Rude(gate)))
            .serve_with_incoming(incoming),
    );
    addr
}

#[tokio::test]
async fn a_peers_protocol_error_on_one_call_leaves_other_streams_running() {
    let gate = Arc::new(Semaphore::new(0));
    let addr = start(gate.clone()).await;
    let gw = Gw::start(vec![agent("rude", addr)], |_| {}).await;
    let sse = gw
        .post_json(
            "/agents/rude/message:stream",
            &json!({"message": msg("hi", Value::Null)}),
        )
        .send()
        .await
        .expect("stream");
    assert_eq!(sse.status(), StatusCode::OK);
    let mut events = sse.bytes_stream().eventsource();
    let first = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("snapshot in time")
        .expect("an event")
        .expect("well-formed");
    assert_eq!(
        kind(&serde_json::from_str(&first.data).expect("JSON")),
        "task:WORKING"
    );

    // Another client's call makes the peer break the protocol: it gets a server-side error
    // that blames the agent (JSON-RPC -32603 with Retry-After; REST 502 UNAVAILABLE), not a
    // client error, and no transport internals.
    let failed = "agent \"rude\" failed to answer; retry later";
    let r = gw
        .post_json(
            "/agents/rude",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "t1"}}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[reqwest::header::RETRY_AFTER], "1");
    let r = json_of(r).await;
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert_eq!(r["error"]["message"], failed, "{r}");
    assert_eq!(r["error"]["data"][0]["reason"], "AGENT_FAILED", "{r}");
    assert_eq!(r["error"]["data"][0]["metadata"]["agent"], "rude", "{r}");
    let r = gw
        .req(reqwest::Method::GET, "/agents/rude/tasks/t1")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let text = r.text().await.expect("body");
    assert!(!text.contains("h2") && !text.contains("protocol"), "{text}");
    let e: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(e["error"]["status"], "UNAVAILABLE", "{e}");
    assert_eq!(e["error"]["message"], failed, "{e}");

    // The stream is untouched and completes; the next unary call reaches the peer again.
    gate.add_permits(1);
    let last = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the last event in time")
        .expect("an event")
        .expect("well-formed SSE, no broken stream");
    assert_ne!(last.event, "error", "{}", last.data);
    assert_eq!(
        kind(&serde_json::from_str(&last.data).expect("JSON")),
        "status:COMPLETED"
    );
    assert!(
        tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("the end in time")
            .is_none(),
        "the stream ends after the terminal state"
    );
    let r = gw.rpc("rude", "ListTasks", json!({})).await;
    assert_eq!(r["result"]["tasks"], json!([]), "{r}");
}
