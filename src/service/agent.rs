//! `switchyard.v1.AgentService`: unary, server-, client- and bidi-streaming RPCs over the A2A
//! types (see `proto/switchyard/v1/agent.proto` for the contract of each).

use std::{collections::HashSet, pin::Pin, sync::Arc};

use futures::{Stream, StreamExt as _};
use prost::Message as _;
use tokio::{sync::mpsc, task::JoinSet};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument as _;

use super::{EventStream, decode_error, event_stream, streaming_send, unary_send, validate};
use crate::{
    error::RpcError,
    pb::{
        a2a::{
            AgentCard, Message, SendMessageRequest, SendMessageResponse, StreamResponse, part,
            stream_response,
        },
        agent::{
            ConverseError, ConverseRequest, ConverseResponse, GetAgentCardRequest,
            SendMessagePartsRequest, agent_service_server::AgentService, converse_request,
            converse_response, send_message_parts_request,
        },
    },
    runtime::{CallInfo, CancelReason, Follow, Runtime},
    task::new_id,
};

/// Frames buffered towards a slow Converse client before the session's tasks wait.
const CONVERSE_BUFFER: usize = 64;

/// The mesh-native service of one agent.
#[derive(Debug, Clone)]
pub(crate) struct AgentGrpc {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) card: Arc<AgentCard>,
    /// Largest total size of the parts of one SendMessageParts call, in bytes.
    pub(crate) max_parts_bytes: usize,
}

type ConverseStream = Pin<Box<dyn Stream<Item = Result<ConverseResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentGrpc {
    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let call = CallInfo::from_request(&request);
        unary_send(&self.rt, call, request.into_inner()).await
    }

    type SendStreamingMessageStream = EventStream;

    async fn send_streaming_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let call = CallInfo::from_request(&request);
        streaming_send(&self.rt, call, request.into_inner()).await
    }

    async fn send_message_parts(
        &self,
        request: Request<Streaming<SendMessagePartsRequest>>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let call = CallInfo::from_request(&request);
        let request = assemble_parts(request.into_inner(), self.max_parts_bytes).await?;
        unary_send(&self.rt, call, request).await
    }

    type ConverseStream = ConverseStream;

    async fn converse(
        &self,
        request: Request<Streaming<ConverseRequest>>,
    ) -> Result<Response<ConverseStream>, Status> {
        let call = CallInfo::from_request(&request);
        let (tx, rx) = mpsc::channel(CONVERSE_BUFFER);
        // The session runs under the call's server span, so the tasks it starts (their
        // `a2a.execute` spans) join the caller's trace, as unary and streaming sends do.
        let session = session(self.rt.clone(), call, request.into_inner(), tx);
        tokio::spawn(session.instrument(tracing::Span::current()));
        Ok(Response::new(ReceiverStream::new(rx).boxed()))
    }

    async fn get_agent_card(
        &self,
        _request: Request<GetAgentCardRequest>,
    ) -> Result<Response<AgentCard>, Status> {
        Ok(Response::new((*self.card).clone()))
    }
}

/// Reads a SendMessageParts stream into one request, enforcing the size limit as it goes.
async fn assemble_parts(
    mut frames: Streaming<SendMessagePartsRequest>,
    max_bytes: usize,
) -> Result<SendMessageRequest, RpcError> {
    use send_message_parts_request::Frame;
    let mut request: Option<SendMessageRequest> = None;
    let mut total = 0usize;
    let mut index = 0usize;
    while let Some(frame) = frames.message().await.map_err(|s| {
        let s = decode_error(s);
        match s.code() {
            tonic::Code::ResourceExhausted => RpcError::ResourceExhausted(s.message().into()),
            _ => RpcError::invalid(format!("frame[{index}]"), s.message()),
        }
    })? {
        let field = format!("frame[{index}]");
        index += 1;
        match frame.frame {
            None => {
                return Err(RpcError::invalid(
                    field,
                    "is empty (set header, part or raw_chunk)",
                ));
            }
            Some(Frame::Header(h)) => {
                if request.is_some() {
                    return Err(RpcError::invalid(
                        field,
                        "a second header; send exactly one, first",
                    ));
                }
                let Some(m) = &h.message else {
                    return Err(RpcError::invalid(
                        format!("{field}.header.message"),
                        "is required",
                    ));
                };
                total += m.parts.iter().map(|p| p.encoded_len()).sum::<usize>();
                request = Some(h);
            }
            Some(Frame::Part(p)) => {
                let m = message_of(&mut request, &field)?;
                total += p.encoded_len();
                m.parts.push(p);
            }
            Some(Frame::RawChunk(bytes)) => {
                let m = message_of(&mut request, &field)?;
                total += bytes.len();
                match m.parts.last_mut().and_then(|p| p.content.as_mut()) {
                    Some(part::Content::Raw(raw)) => raw.extend_from_slice(&bytes),
                    _ => {
                        return Err(RpcError::invalid(
                            field,
                            "a raw_chunk must follow a part whose content is raw",
                        ));
                    }
                }
            }
        }
        if total > max_bytes {
            return Err(RpcError::ResourceExhausted(format!(
                "the message's parts exceed the limit of {max_bytes} bytes"
            )));
        }
    }
    request.ok_or_else(|| RpcError::invalid("header", "the stream held no header frame"))
}

fn message_of<'a>(
    request: &'a mut Option<SendMessageRequest>,
    field: &str,
) -> Result<&'a mut crate::pb::a2a::Message, RpcError> {
    request
        .as_mut()
        .and_then(|r| r.message.as_mut())
        .ok_or_else(|| RpcError::invalid(field, "came before the header"))
}

/// One Converse session: reads requests until the client half-closes, answers each message
/// with the agent's direct reply or forwards the events of the task it started, then ends
/// with OK once every task has settled.
async fn session(
    rt: Arc<Runtime>,
    call: CallInfo,
    mut inbound: Streaming<ConverseRequest>,
    tx: mpsc::Sender<Result<ConverseResponse, Status>>,
) {
    let mut context_id: Option<String> = None;
    let mut tasks: HashSet<String> = HashSet::new();
    let mut forwarders = JoinSet::new();
    loop {
        let request = tokio::select! {
            r = inbound.message() => r,
            () = tx.closed() => return forwarders.abort_all(),
            () = rt.shutdown.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("the server is shutting down"))).await;
                return forwarders.abort_all();
            }
        };
        let request = match request {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(status) => {
                // The client reset the call, or sent an undecodable frame.
                let _ = tx.send(Err(decode_error(status))).await;
                return forwarders.abort_all();
            }
        };
        match request.request {
            Some(converse_request::Request::Send(mut send)) => {
                let reply_to = send
                    .message
                    .as_ref()
                    .map(|m| m.message_id.clone())
                    .unwrap_or_default();
                if let Err(e) = prepare_send(&mut send, &mut context_id) {
                    send_error(&tx, reply_to, e).await;
                    continue;
                }
                let replied = tokio::select! {
                    r = rt.reply(&send, &call) => r,
                    () = tx.closed() => return forwarders.abort_all(),
                };
                match replied {
                    Ok(Some(message)) => {
                        let _ = tx.send(Ok(reply_frame(reply_to, message))).await;
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        send_error(&tx, reply_to, e).await;
                        continue;
                    }
                }
                let deadline = call.deadline;
                let started = rt
                    .send(send.clone(), call.clone(), deadline, Follow::Stream)
                    .await;
                match started {
                    Ok(s) => {
                        tasks.insert(s.task.id.clone());
                        let history_length =
                            send.configuration.as_ref().and_then(|c| c.history_length);
                        let sub = s.subscription.expect("Follow::Stream subscribes");
                        let events = event_stream(&rt, s.initial, sub, history_length);
                        forwarders.spawn(forward(events, reply_to, tx.clone()));
                    }
                    Err(e) => send_error(&tx, reply_to, e).await,
                }
            }
            Some(converse_request::Request::Cancel(c)) => {
                let reply_to = c.id.clone();
                if let Err(e) = validate::bounded(&c) {
                    send_error(&tx, String::new(), e).await;
                    continue;
                }
                if !tasks.contains(&c.id) {
                    let e = RpcError::task_not_found(&c.id);
                    send_error(&tx, reply_to, e).await;
                    continue;
                }
                // The CANCELED event reaches the client through the task's forwarder.
                if let Err(e) = rt.cancel(&c.id, CancelReason::Requested).await {
                    send_error(&tx, reply_to, e).await;
                }
            }
            None => {
                let e = RpcError::invalid("request", "is empty (set send or cancel)");
                send_error(&tx, new_id(), e).await;
            }
        }
    }
    while forwarders.join_next().await.is_some() {}
}

/// Validates a `send` of a session and binds it to the session's context.
fn prepare_send(
    send: &mut SendMessageRequest,
    context_id: &mut Option<String>,
) -> Result<(), RpcError> {
    validate::send_request(send)?;
    let m = send
        .message
        .as_mut()
        .ok_or_else(|| RpcError::invalid("send.message", "is required"))?;
    match context_id {
        Some(ctx) if !m.context_id.is_empty() && m.context_id != *ctx => Err(RpcError::invalid(
            "send.message.context_id",
            format!(
                "{:?} contradicts the session's context {ctx:?}",
                m.context_id
            ),
        )),
        Some(ctx) => {
            m.context_id.clone_from(ctx);
            Ok(())
        }
        None => {
            if m.context_id.is_empty() {
                m.context_id = new_id();
            }
            *context_id = Some(m.context_id.clone());
            Ok(())
        }
    }
}

async fn forward(
    mut events: EventStream,
    reply_to: String,
    tx: mpsc::Sender<Result<ConverseResponse, Status>>,
) {
    while let Some(item) = events.next().await {
        let frame = match item {
            Ok(event) => ConverseResponse {
                in_reply_to: reply_to.clone(),
                payload: Some(converse_response::Payload::Event(event)),
            },
            Err(status) => error_frame(reply_to.clone(), &status),
        };
        if tx.send(Ok(frame)).await.is_err() {
            return;
        }
    }
}

/// The frame of a direct reply ([`Agent::reply`](crate::Agent::reply)): one message event.
fn reply_frame(reply_to: String, message: Message) -> ConverseResponse {
    ConverseResponse {
        in_reply_to: reply_to,
        payload: Some(converse_response::Payload::Event(StreamResponse {
            payload: Some(stream_response::Payload::Message(message)),
        })),
    }
}

async fn send_error(
    tx: &mpsc::Sender<Result<ConverseResponse, Status>>,
    reply_to: String,
    e: RpcError,
) {
    let _ = tx.send(Ok(error_frame(reply_to, &Status::from(e)))).await;
}

/// The `ConverseError` frame answering `reply_to`: the status's code and message, and its A2A
/// `ErrorInfo.reason` when it carries one (`proto/switchyard/v1/agent.proto`).
fn error_frame(reply_to: String, status: &Status) -> ConverseResponse {
    ConverseResponse {
        in_reply_to: reply_to,
        payload: Some(converse_response::Payload::Error(ConverseError {
            code: status.code() as i32,
            message: status.message().to_owned(),
            reason: crate::error::a2a_error_kind(status)
                .map(|kind| kind.reason().to_owned())
                .unwrap_or_default(),
        })),
    }
}
