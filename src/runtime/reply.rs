//! Direct replies: a message that names no task is offered to
//! [`Agent::reply`](crate::Agent::reply) before a task is made (A2A v1.0.1 §3.1.1: SendMessage
//! answers with a Task or a Message). A reply touches neither the task store nor the live map.

use std::{panic::AssertUnwindSafe, sync::atomic::Ordering};

use futures::FutureExt as _;

use super::{CallInfo, Runtime};
use crate::{
    MessageContext,
    error::{A2aErrorKind, RpcError},
    pb::a2a::{Message, Role, SendMessageRequest},
    task::new_id,
    trace::INCOMING,
};

impl Runtime {
    /// Offers `request` to the agent's [`reply`](crate::Agent::reply). `Ok(None)`: the message
    /// names a task, or the agent wants one; go on with [`send`](Self::send).
    ///
    /// # Errors
    /// UNAVAILABLE while draining; PUSH_NOTIFICATION_NOT_SUPPORTED for an inline push config
    /// the agent cannot serve; DEADLINE_EXCEEDED when the caller's deadline passes first;
    /// INVALID_AGENT_RESPONSE for a reply without parts; INTERNAL when `reply` panics.
    pub(crate) async fn reply(
        &self,
        request: &SendMessageRequest,
        call: &CallInfo,
    ) -> Result<Option<Message>, RpcError> {
        let Some(message) = request.message.as_ref().filter(|m| m.task_id.is_empty()) else {
            return Ok(None);
        };
        if self.draining.load(Ordering::Acquire) {
            return Err(RpcError::Unavailable(
                "the agent is draining and accepts no new messages; retry on another replica"
                    .into(),
            ));
        }
        let push = request
            .configuration
            .as_ref()
            .is_some_and(|c| c.task_push_notification_config.is_some());
        if push && !self.config.push_notifications {
            return Err(RpcError::a2a(
                A2aErrorKind::PushNotificationNotSupported,
                "this agent does not support push notifications",
            ));
        }
        let mut message = message.clone();
        if message.context_id.is_empty() {
            message.context_id = new_id();
        }
        let ctx = MessageContext {
            message,
            metadata: call.metadata.clone(),
            peer: call.peer.clone(),
            deadline: call.deadline,
            trace: call.trace.clone(),
            accepted_output_modes: request
                .configuration
                .as_ref()
                .map(|c| c.accepted_output_modes.clone())
                .unwrap_or_default(),
        };
        let answer = INCOMING.scope(
            ctx.trace.clone(),
            AssertUnwindSafe(self.agent().reply(&ctx)).catch_unwind(),
        );
        let answer = match call.deadline {
            Some(d) => tokio::time::timeout_at(d, answer).await.map_err(|_| {
                RpcError::DeadlineExceeded("the deadline expired before the agent replied".into())
            })?,
            None => answer.await,
        };
        let reply = match answer {
            Ok(reply) => reply,
            Err(_) => return Err(RpcError::Internal("the agent panicked in reply".into())),
        };
        reply.map(|m| own(m, &ctx)).transpose()
    }
}

/// Completes a reply: id, role and context filled in, no task.
fn own(mut m: Message, ctx: &MessageContext) -> Result<Message, RpcError> {
    if m.parts.is_empty() {
        return Err(RpcError::a2a(
            A2aErrorKind::InvalidAgentResponse,
            "the agent replied with a message without parts",
        ));
    }
    if m.message_id.is_empty() {
        m.message_id = new_id();
    }
    if m.role == Role::Unspecified as i32 {
        m.role = Role::Agent as i32;
    }
    if m.context_id.is_empty() {
        m.context_id = ctx.context_id().to_owned();
    }
    m.task_id.clear();
    Ok(m)
}
