//! One [`Call`] to one agent, shared by the JSON-RPC and REST fronts: the gRPC call, its
//! failure mapped to [`ApiError`], and its result as protobuf JSON (or an event stream).

use std::sync::Arc;

use std::pin::Pin;

use futures::Stream;
use serde::Serialize;
use serde_json::{Value, json};
use switchyard::{
    AgentRef,
    error::A2aErrorKind,
    pb::a2a::{GetTaskRequest, ListTasksResponse, StreamResponse},
    telemetry::span_attributes,
};
use tonic::{Status, metadata::MetadataValue};

use tonic::Code;
use tonic_types::StatusExt as _;
use tracing::Instrument as _;

use crate::{
    card,
    error::ApiError,
    lanes::Lanes,
    method::Call,
    resume,
    upstream::{Forward, Within, record_outcome, traced},
};

/// An open server stream of an agent, holding its place on a lane.
pub(crate) type Events = Pin<Box<dyn Stream<Item = Result<StreamResponse, Status>> + Send>>;

/// Who a call goes to, and with what context.
#[derive(Debug)]
pub(crate) struct Target {
    /// The agent.
    pub(crate) agent: AgentRef,
    /// Forwarded headers and the deadline.
    pub(crate) forward: Forward,
    /// The gateway's public base URL, for the cards it returns.
    pub(crate) base_url: Arc<str>,
    /// The security declarations of the cards returned.
    pub(crate) card_security: Arc<card::CardSecurity>,
    /// Connections for streams.
    pub(crate) lanes: Arc<Lanes>,
    /// How its streams are resumed when they break.
    pub(crate) resume: resume::StreamResume,
}

/// What an agent answered.
pub(crate) enum Answer {
    /// A unary result, as protobuf JSON text (serialized straight from the response message,
    /// with no intermediate `serde_json::Value`).
    Unary(String),
    /// A server stream, open; its first event is not read yet.
    Stream(Events),
}

/// protobuf JSON of a response message.
fn to_json(message: &impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(message).map_err(not_serializable)
}

/// protobuf JSON text of a response message.
fn to_text(message: &impl Serialize) -> Result<String, ApiError> {
    serde_json::to_string(message).map_err(not_serializable)
}

fn not_serializable(e: serde_json::Error) -> ApiError {
    ApiError::Upstream {
        agent: String::new(),
        status: tonic::Status::internal(format!("the response does not serialize: {e}")),
    }
}

/// A ListTasks result with every field present, defaults included (A2A v1.0: `tasks`,
/// `nextPageToken`, `pageSize` and `totalSize` are always emitted).
pub(crate) fn list_tasks_json(r: &ListTasksResponse) -> Result<Value, ApiError> {
    let mut v = to_json(r)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("tasks").or_insert_with(|| json!([]));
        o.entry("nextPageToken")
            .or_insert_with(|| json!(r.next_page_token));
        o.entry("pageSize").or_insert_with(|| json!(r.page_size));
        o.entry("totalSize").or_insert_with(|| json!(r.total_size));
    }
    Ok(v)
}

/// UnsupportedOperation when the agent's card says it does not stream (A2A v1.0: streaming
/// methods need `capabilities.streaming`). An agent whose card is not loaded is asked anyway.
fn check_streaming(agent: &AgentRef) -> Result<(), ApiError> {
    let Some(card) = agent.card() else {
        return Ok(());
    };
    if card.capabilities.as_ref().and_then(|c| c.streaming) == Some(true) {
        return Ok(());
    }
    Err(ApiError::A2a {
        kind: A2aErrorKind::UnsupportedOperation,
        message: format!(
            "agent {:?} does not support streaming (capabilities.streaming is not true)",
            agent.name()
        ),
    })
}

/// Makes the call. `last_event_id` resumes a SubscribeToTask after that sequence number.
/// Unary calls are balanced and retried by the agent's client ([`switchyard::resilience`]);
/// a stream, which goes over a lane of its own, is opened again on the endpoint picked then
/// when its connection was refused (it never reached the agent: a killed or removed
/// replica), up to [`ATTEMPTS`] times.
///
/// # Errors
/// [`ApiError::BadRequest`] for a call over a bound ([`crate::bounds`]); the agent's status
/// ([`ApiError::Upstream`], UNAVAILABLE when it cannot be reached),
/// [`ApiError::DeadlineExceeded`], or UnsupportedOperation for a streaming call to an agent
/// that does not stream.
pub(crate) async fn dispatch(
    target: &Target,
    call: Call,
    last_event_id: Option<u64>,
) -> Result<Answer, ApiError> {
    crate::bounds::check_call(&call)?;
    let name = target.agent.name();
    let method = call_name(&call);
    if span_attributes() {
        tracing::Span::current().record("a2a.method", method);
    }
    let streaming = is_stream(&call);
    let mut call = Some(call);
    let mut attempt = 1;
    loop {
        // Only a stream is attempted again: a unary call is moved, not copied.
        let this = match &call {
            Some(c) if streaming && attempt < ATTEMPTS => c.clone(),
            _ => call.take().expect("no attempt follows the last"),
        };
        let client = target.agent.client();
        let (f, span) = target
            .forward
            .client_span(A2A_SERVICE, method, name, client.address());
        // Boxed: the calls of every method make a future of kilobytes, which the futures
        // holding it (this one, the handler's, axum's) would otherwise carry, and copy each
        // time they are moved.
        let result = Box::pin(calls(target, this, last_event_id, &f, client.a2a(), &span))
            .instrument(span.clone())
            .await;
        match &result {
            Ok(_) => record_outcome(&span, Code::Ok),
            Err(e) => record_outcome(&span, e.code()),
        }
        match &result {
            Err(ApiError::Upstream { status, .. })
                if attempt < ATTEMPTS && streaming && switchyard::client::never_sent(status) =>
            {
                tracing::debug!(
                    agent = name,
                    endpoint = client.address(),
                    "connection refused; trying another endpoint"
                );
                attempt += 1;
            }
            _ => return result,
        }
    }
}

/// Whether the call opens a server stream (on a lane, outside the agent's client).
fn is_stream(call: &Call) -> bool {
    matches!(
        call,
        Call::SendStreamingMessage(_) | Call::SubscribeToTask(_)
    )
}

/// Attempts of one stream whose connection attempts are refused (each may go to another
/// endpoint of the agent); a call that reached an agent is never repeated.
const ATTEMPTS: u32 = 3;

/// The gRPC service every JSON-RPC and REST call goes to.
const A2A_SERVICE: &str = "lf.a2a.v1.A2AService";

/// The RPC name of a call.
fn call_name(call: &Call) -> &'static str {
    match call {
        Call::SendMessage(_) => "SendMessage",
        Call::SendStreamingMessage(_) => "SendStreamingMessage",
        Call::GetTask(_) => "GetTask",
        Call::ListTasks(_) => "ListTasks",
        Call::CancelTask(_) => "CancelTask",
        Call::SubscribeToTask(_) => "SubscribeToTask",
        Call::CreatePushConfig(_) => "CreateTaskPushNotificationConfig",
        Call::GetPushConfig(_) => "GetTaskPushNotificationConfig",
        Call::ListPushConfigs(_) => "ListTaskPushNotificationConfigs",
        Call::DeletePushConfig(_) => "DeleteTaskPushNotificationConfig",
        Call::GetExtendedAgentCard(_) => "GetExtendedAgentCard",
    }
}

async fn calls(
    target: &Target,
    call: Call,
    last_event_id: Option<u64>,
    f: &Within<'_>,
    mut a2a: switchyard::client::A2aClient,
    span: &tracing::Span,
) -> Result<Answer, ApiError> {
    let name = target.agent.name();
    let value = match call {
        Call::SendMessage(r) => to_text(&f.call(name, a2a.send_message(f.unary(r))).await?)?,
        Call::GetTask(r) => to_text(&f.call(name, a2a.get_task(f.unary(r))).await?)?,
        Call::ListTasks(r) => {
            list_tasks_json(&f.call(name, a2a.list_tasks(f.unary(r))).await?)?.to_string()
        }
        Call::CancelTask(r) => to_text(&f.call(name, a2a.cancel_task(f.unary(r))).await?)?,
        Call::CreatePushConfig(r) => to_text(
            &f.call(name, a2a.create_task_push_notification_config(f.unary(r)))
                .await?,
        )?,
        Call::GetPushConfig(r) => to_text(
            &f.call(name, a2a.get_task_push_notification_config(f.unary(r)))
                .await?,
        )?,
        Call::ListPushConfigs(r) => to_text(
            &f.call(name, a2a.list_task_push_notification_configs(f.unary(r)))
                .await?,
        )?,
        Call::DeletePushConfig(r) => {
            f.call(name, a2a.delete_task_push_notification_config(f.unary(r)))
                .await?;
            "{}".to_owned()
        }
        Call::GetExtendedAgentCard(r) => {
            let extended = f
                .call(name, a2a.get_extended_agent_card(f.unary(r)))
                .await?;
            card::document(&card::rewrite(
                extended,
                &target.agent,
                &target.base_url,
                &target.card_security,
            ))
            .to_string()
        }
        Call::SendStreamingMessage(r) => {
            check_streaming(&target.agent)?;
            let tenant = r.tenant.clone();
            let (client, slot) = target.lanes.client(&target.agent);
            let stream = opened(
                &target.agent,
                client.address(),
                f.call(
                    name,
                    client.streams().send_streaming_message(f.streaming(r)),
                )
                .await,
            )?;
            return Ok(Answer::Stream(resume::resumable(
                Box::pin(slot.hold(traced(stream, span.clone()))),
                upstream(target, client.address(), tenant),
            )));
        }
        Call::SubscribeToTask(r) => {
            check_streaming(&target.agent)?;
            let id = r.id.clone();
            let tenant = r.tenant.clone();
            let mut req = f.streaming(r);
            if let Some(n) = last_event_id {
                req.metadata_mut()
                    .insert(switchyard::LAST_EVENT_ID, MetadataValue::from(n));
            }
            let (client, slot) = target.lanes.client(&target.agent);
            let stream = match f.call(name, client.streams().subscribe_to_task(req)).await {
                Err(e) if past_the_end(&e) && finished(&id, f, name, &mut a2a).await => {
                    return Ok(Answer::Stream(Box::pin(futures::stream::empty())));
                }
                other => opened(&target.agent, client.address(), other)?,
            };
            return Ok(Answer::Stream(resume::resumable(
                Box::pin(slot.hold(traced(stream, span.clone()))),
                upstream(target, client.address(), tenant),
            )));
        }
    };
    Ok(Answer::Unary(value))
}

/// What [`resume::resumable`] needs to open a stream to `target` again.
fn upstream(target: &Target, endpoint: &str, tenant: String) -> resume::Upstream {
    resume::Upstream {
        agent: target.agent.clone(),
        lanes: target.lanes.clone(),
        forward: target.forward.clone(),
        endpoint: endpoint.to_owned(),
        tenant,
        settings: target.resume,
    }
}

/// `result` of opening a stream on a lane to `endpoint`, its failure to reach the agent
/// counted in the endpoint's outlier state (a lane's calls go around the agent's client).
pub(crate) fn opened<T>(
    agent: &AgentRef,
    endpoint: &str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Err(ApiError::Upstream { status, .. } | ApiError::AgentFailed { status, .. }) = &result
        && resume::broken(status)
    {
        agent.report_endpoint(endpoint, true);
    }
    result
}

/// Whether the agent refused a resume because its `last-event-id` is past the task's last
/// event (INVALID_ARGUMENT naming that field).
fn past_the_end(error: &ApiError) -> bool {
    let ApiError::Upstream { status, .. } = error else {
        return false;
    };
    status.code() == Code::InvalidArgument
        && status.get_error_details().bad_request().is_some_and(|b| {
            b.field_violations
                .iter()
                .any(|v| v.field == switchyard::LAST_EVENT_ID)
        })
}

/// Whether task `id` has finished (GetTask, without history): a resume past its end then has
/// nothing left to send, and gets an empty stream (`204` on REST, which stops a browser
/// `EventSource`) instead of an error.
async fn finished(
    id: &str,
    f: &Within<'_>,
    name: &str,
    a2a: &mut switchyard::client::A2aClient,
) -> bool {
    let get = GetTaskRequest {
        id: id.to_owned(),
        history_length: Some(0),
        ..Default::default()
    };
    f.call(name, a2a.get_task(f.unary(get)))
        .await
        .is_ok_and(|t| t.state().is_terminal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_tasks_emits_defaults() {
        let v = list_tasks_json(&ListTasksResponse::default()).expect("json");
        assert_eq!(
            v,
            json!({"tasks": [], "nextPageToken": "", "pageSize": 0, "totalSize": 0})
        );
    }
}
