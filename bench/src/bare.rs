//! The bare tonic peer of the runtime benchmarks: an `A2AService` that answers SendMessage with
//! the completed Task the echo agent would return, and SendStreamingMessage with the echo
//! agent's chunked stream, with no task life cycle and no store.

use std::net::SocketAddr;

use switchyard::{
    pb::a2a::{
        self, Artifact, Part, SendMessageRequest, SendMessageResponse, Task, TaskState, TaskStatus,
        a2a_service_server::{A2aService, A2aServiceServer},
        send_message_response, stream_response,
    },
    task::{new_id, now_timestamp},
};
use tonic::{Request, Response, Status};

/// The bare peer: answers SendMessage with a completed Task echoing the parts, no runtime.
#[derive(Debug, Clone, Copy)]
pub struct Bare;

#[tonic::async_trait]
impl A2aService for Bare {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let mut message = request
            .into_inner()
            .message
            .ok_or_else(|| Status::invalid_argument("message is required"))?;
        let (id, context) = (new_id(), new_id());
        message.task_id.clone_from(&id);
        message.context_id.clone_from(&context);
        let task = Task {
            id,
            context_id: context,
            status: Some(TaskStatus {
                state: TaskState::Completed as i32,
                message: None,
                timestamp: Some(now_timestamp()),
            }),
            artifacts: vec![Artifact::new("echo", message.parts.clone())],
            history: vec![message],
            metadata: None,
        };
        Ok(Response::new(SendMessageResponse {
            payload: Some(send_message_response::Payload::Task(task)),
        }))
    }

    type SendStreamingMessageStream = tonic::codegen::BoxStream<a2a::StreamResponse>;
    /// The echo agent's chunked stream without a runtime (`{"chunks": N}` in the message
    /// metadata): the task, WORKING, per chunk a WORKING progress update and an artifact chunk,
    /// the echo artifact, COMPLETED: 2N + 4 events, as the runtime sends them.
    async fn send_streaming_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<Self::SendStreamingMessageStream>, Status> {
        let message = request
            .into_inner()
            .message
            .ok_or_else(|| Status::invalid_argument("message is required"))?;
        let chunks = message
            .metadata
            .as_ref()
            .and_then(|m| m.fields.get("chunks"))
            .and_then(|v| match v.kind {
                Some(pbjson_types::value::Kind::NumberValue(n)) => Some(n as u64),
                _ => None,
            })
            .unwrap_or(0);
        let (id, context) = (new_id(), new_id());
        let status = move |state: TaskState| TaskStatus {
            state: state as i32,
            message: None,
            timestamp: Some(now_timestamp()),
        };
        let update = {
            let (id, context) = (id.clone(), context.clone());
            move |state| a2a::StreamResponse {
                payload: Some(stream_response::Payload::StatusUpdate(
                    a2a::TaskStatusUpdateEvent {
                        task_id: id.clone(),
                        context_id: context.clone(),
                        status: Some(status(state)),
                        metadata: None,
                    },
                )),
            }
        };
        let artifact_id = new_id();
        let chunk = {
            let (id, context) = (id.clone(), context.clone());
            move |i: u64| a2a::StreamResponse {
                payload: Some(stream_response::Payload::ArtifactUpdate(
                    a2a::TaskArtifactUpdateEvent {
                        task_id: id.clone(),
                        context_id: context.clone(),
                        artifact: Some(Artifact {
                            artifact_id: artifact_id.clone(),
                            ..Artifact::new("echo", vec![Part::text(format!("{i}/{chunks}"))])
                        }),
                        append: i > 1,
                        last_chunk: i == chunks,
                        metadata: None,
                    },
                )),
            }
        };
        let echo = a2a::StreamResponse {
            payload: Some(stream_response::Payload::ArtifactUpdate(
                a2a::TaskArtifactUpdateEvent {
                    task_id: id.clone(),
                    context_id: context.clone(),
                    artifact: Some(Artifact::new("echo", message.parts.clone())),
                    append: false,
                    last_chunk: true,
                    metadata: None,
                },
            )),
        };
        let first = a2a::StreamResponse {
            payload: Some(stream_response::Payload::Task(Task {
                id: id.clone(),
                context_id: context.clone(),
                status: Some(status(TaskState::Submitted)),
                artifacts: Vec::new(),
                history: vec![message],
                metadata: None,
            })),
        };
        let working = update(TaskState::Working);
        let last = [echo, update(TaskState::Completed)];
        let events = [first, working]
            .into_iter()
            .chain((1..=chunks).flat_map(move |i| [update(TaskState::Working), chunk(i)]))
            .chain(last)
            .map(Ok);
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }
    async fn get_task(&self, _: Request<a2a::GetTaskRequest>) -> Result<Response<Task>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn list_tasks(
        &self,
        _: Request<a2a::ListTasksRequest>,
    ) -> Result<Response<a2a::ListTasksResponse>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn cancel_task(
        &self,
        _: Request<a2a::CancelTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    type SubscribeToTaskStream = tonic::codegen::BoxStream<a2a::StreamResponse>;
    async fn subscribe_to_task(
        &self,
        _: Request<a2a::SubscribeToTaskRequest>,
    ) -> Result<Response<Self::SubscribeToTaskStream>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn create_task_push_notification_config(
        &self,
        _: Request<a2a::TaskPushNotificationConfig>,
    ) -> Result<Response<a2a::TaskPushNotificationConfig>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn get_task_push_notification_config(
        &self,
        _: Request<a2a::GetTaskPushNotificationConfigRequest>,
    ) -> Result<Response<a2a::TaskPushNotificationConfig>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn list_task_push_notification_configs(
        &self,
        _: Request<a2a::ListTaskPushNotificationConfigsRequest>,
    ) -> Result<Response<a2a::ListTaskPushNotificationConfigsResponse>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn get_extended_agent_card(
        &self,
        _: Request<a2a::GetExtendedAgentCardRequest>,
    ) -> Result<Response<a2a::AgentCard>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
    async fn delete_task_push_notification_config(
        &self,
        _: Request<a2a::DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        Err(Status::unimplemented("bench peer"))
    }
}

/// Serves [`Bare`] on a free loopback port; returns its address.
///
/// # Errors
/// When the port cannot be bound.
pub async fn start_bare() -> anyhow::Result<SocketAddr> {
    let incoming =
        tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?
            .with_nodelay(Some(true));
    let addr = incoming.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(A2aServiceServer::new(Bare))
            .serve_with_incoming(incoming),
    );
    Ok(addr)
}
