//! `lf.a2a.v1.A2AService`: the standard A2A gRPC binding, all 11 RPCs (A2A v1.0).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{EventStream, LAST_EVENT_ID, event_stream, streaming_send, unary_send, validate};
use crate::{
    error::{A2aErrorKind, RpcError},
    limits::Bounded,
    pb::a2a::{
        AgentCard, CancelTaskRequest, DeleteTaskPushNotificationConfigRequest,
        GetExtendedAgentCardRequest, GetTaskPushNotificationConfigRequest, GetTaskRequest,
        ListTaskPushNotificationConfigsRequest, ListTaskPushNotificationConfigsResponse,
        ListTasksRequest, ListTasksResponse, SendMessageRequest, SendMessageResponse,
        SubscribeToTaskRequest, Task, TaskPushNotificationConfig, a2a_service_server::A2aService,
    },
    runtime::{CallInfo, CancelReason, Runtime, store_error},
};

/// Default and largest page of `ListTaskPushNotificationConfigs`.
const PUSH_PAGE_SIZE: usize = 100;

/// The A2A gRPC service of one agent.
#[derive(Debug, Clone)]
pub(crate) struct A2aGrpc {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) card: Arc<AgentCard>,
}

impl A2aGrpc {
    fn check_streaming(&self) -> Result<(), RpcError> {
        if self.rt.config.streaming {
            Ok(())
        } else {
            Err(RpcError::unsupported(
                "this agent does not support streaming (capabilities.streaming is false)",
            ))
        }
    }

    fn check_push(&self) -> Result<(), RpcError> {
        if self.rt.config.push_notifications {
            Ok(())
        } else {
            Err(RpcError::a2a(
                A2aErrorKind::PushNotificationNotSupported,
                "this agent does not support push notifications",
            ))
        }
    }
}

/// Reads the call (its protocol version was checked by [`crate::server::version`]) and checks
/// the request's bounds ([`crate::limits`]).
fn call_of<T: Bounded>(req: &Request<T>) -> Result<CallInfo, Status> {
    validate::bounded(req.get_ref())?;
    Ok(CallInfo::from_request(req))
}

#[tonic::async_trait]
impl A2aService for A2aGrpc {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let call = call_of(&request)?;
        unary_send(&self.rt, call, request.into_inner()).await
    }

    type SendStreamingMessageStream = EventStream;

    async fn send_streaming_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let call = call_of(&request)?;
        self.check_streaming()?;
        streaming_send(&self.rt, call, request.into_inner()).await
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        call_of(&request)?;
        let r = request.into_inner();
        validate::id("id", &r.id)?;
        validate::history_length(r.history_length)?;
        let task = self.rt.get_task(&r.id, r.history_length).await?;
        super::record_task(&task.id, &task.context_id);
        super::record_state(task.state());
        Ok(Response::new(task))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        call_of(&request)?;
        let r = request.into_inner();
        let query = validate::list_request(&r)?;
        let include_artifacts = r.include_artifacts.unwrap_or(false);
        Ok(Response::new(
            self.rt
                .list_tasks(query, r.history_length, include_artifacts)
                .await?,
        ))
    }

    async fn cancel_task(
        &self,
        request: Request<CancelTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        call_of(&request)?;
        let r = request.into_inner();
        validate::id("id", &r.id)?;
        let task = self.rt.cancel(&r.id, CancelReason::Requested).await?;
        super::record_task(&task.id, &task.context_id);
        super::record_state(task.state());
        Ok(Response::new(task))
    }

    type SubscribeToTaskStream = EventStream;

    async fn subscribe_to_task(
        &self,
        request: Request<SubscribeToTaskRequest>,
    ) -> Result<Response<EventStream>, Status> {
        call_of(&request)?;
        self.check_streaming()?;
        let after = match request.metadata().get(LAST_EVENT_ID) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(validate::last_event_id)
                    .ok_or_else(|| {
                        RpcError::invalid(LAST_EVENT_ID, "must be a decimal sequence number")
                    })?,
            ),
        };
        let r = request.into_inner();
        validate::id("id", &r.id)?;
        let (initial, sub) = self.rt.subscribe(&r.id, after).await?;
        Ok(Response::new(event_stream(&self.rt, initial, sub, None)))
    }

    async fn create_task_push_notification_config(
        &self,
        request: Request<TaskPushNotificationConfig>,
    ) -> Result<Response<TaskPushNotificationConfig>, Status> {
        call_of(&request)?;
        self.check_push()?;
        let config = request.into_inner();
        validate::push_config(&config)?;
        self.rt.check_push_url("url", &config.url)?;
        self.rt.ensure_task(&config.task_id).await?;
        Ok(Response::new(self.rt.put_push_config(config, None).await?))
    }

    async fn get_task_push_notification_config(
        &self,
        request: Request<GetTaskPushNotificationConfigRequest>,
    ) -> Result<Response<TaskPushNotificationConfig>, Status> {
        call_of(&request)?;
        self.check_push()?;
        let r = request.into_inner();
        validate::id("task_id", &r.task_id)?;
        validate::id("id", &r.id)?;
        self.rt.ensure_task(&r.task_id).await?;
        let configs = self
            .rt
            .store
            .push_configs(&r.task_id)
            .await
            .map_err(store_error)?;
        let config = configs
            .into_iter()
            .find(|c| c.id == r.id)
            .ok_or_else(|| push_config_not_found(&r.task_id, &r.id))?;
        Ok(Response::new(config))
    }

    async fn list_task_push_notification_configs(
        &self,
        request: Request<ListTaskPushNotificationConfigsRequest>,
    ) -> Result<Response<ListTaskPushNotificationConfigsResponse>, Status> {
        call_of(&request)?;
        self.check_push()?;
        let r = request.into_inner();
        validate::id("task_id", &r.task_id)?;
        let size = match r.page_size {
            0 => PUSH_PAGE_SIZE,
            n if n > 0 => (n as usize).min(PUSH_PAGE_SIZE),
            n => return Err(RpcError::invalid("page_size", format!("{n} is negative")).into()),
        };
        let start = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse::<usize>()
                .map_err(|_| RpcError::invalid("page_token", "is not a token this server issued"))?
        };
        self.rt.ensure_task(&r.task_id).await?;
        let all = self
            .rt
            .store
            .push_configs(&r.task_id)
            .await
            .map_err(store_error)?;
        let end = (start + size).min(all.len());
        let configs = all.get(start..end).map(<[_]>::to_vec).unwrap_or_default();
        let next_page_token = if end < all.len() {
            end.to_string()
        } else {
            String::new()
        };
        Ok(Response::new(ListTaskPushNotificationConfigsResponse {
            configs,
            next_page_token,
        }))
    }

    async fn get_extended_agent_card(
        &self,
        request: Request<GetExtendedAgentCardRequest>,
    ) -> Result<Response<AgentCard>, Status> {
        call_of(&request)?;
        let extended = self.rt.agent().extended_card().ok_or_else(|| {
            RpcError::a2a(
                A2aErrorKind::ExtendedAgentCardNotConfigured,
                "this agent has no extended agent card",
            )
        })?;
        Ok(Response::new(crate::card::complete_extended(
            &self.card, extended,
        )))
    }

    async fn delete_task_push_notification_config(
        &self,
        request: Request<DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        call_of(&request)?;
        self.check_push()?;
        let r = request.into_inner();
        validate::id("task_id", &r.task_id)?;
        validate::id("id", &r.id)?;
        self.rt.ensure_task(&r.task_id).await?;
        let deleted = self
            .rt
            .store
            .delete_push_config(&r.task_id, &r.id)
            .await
            .map_err(store_error)?;
        if !deleted {
            return Err(push_config_not_found(&r.task_id, &r.id).into());
        }
        Ok(Response::new(pbjson_types::Empty::default()))
    }
}

fn push_config_not_found(task_id: &str, id: &str) -> RpcError {
    RpcError::NotFound(format!(
        "push notification config {id:?} of task {task_id:?} not found"
    ))
}
