//! The streaming RPCs with small codec buffers, for long-lived, mostly idle streams
//! (subscriptions, SSE fronts, sessions).
//!
//! The generated clients use tonic's default codec buffers: 8 KiB for encoding the request
//! stream and 8 KiB for decoding the response stream, allocated per call and kept for its whole
//! life. A gateway holding ten thousand idle subscriptions would spend 160 MiB on them.
//! [`LeanStreams`] makes the same calls with [`LEAN_BUFFER`]-byte buffers, which grow on demand
//! for larger messages.

use tonic::{
    Request, Response, Status, Streaming,
    codec::BufferSettings,
    codegen::{GrpcMethod, http::uri::PathAndQuery},
};

use super::Transport;
use crate::pb::{
    a2a::{SendMessageRequest, StreamResponse, SubscribeToTaskRequest},
    agent::{ConverseRequest, ConverseResponse},
    codec::PbCodec,
};

/// Initial size of each codec buffer of a lean stream, in bytes.
pub const LEAN_BUFFER: usize = 512;

/// The generated clients' codec with [`LEAN_BUFFER`]-byte buffers.
fn lean<T, U>() -> PbCodec<T, U> {
    PbCodec::with_buffers(BufferSettings::new(LEAN_BUFFER, 32 * 1024))
}

/// The streaming RPCs of both services over one channel, with small buffers.
#[derive(Debug, Clone)]
pub struct LeanStreams {
    grpc: tonic::client::Grpc<Transport>,
}

impl LeanStreams {
    /// Streams over `transport`, accepting messages up to `max_message_bytes`.
    pub fn new(transport: Transport, max_message_bytes: usize) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(transport).max_decoding_message_size(max_message_bytes),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))
    }

    /// `lf.a2a.v1.A2AService/SendStreamingMessage`.
    ///
    /// # Errors
    /// The agent's status before the first event.
    pub async fn send_streaming_message(
        &mut self,
        mut request: Request<SendMessageRequest>,
    ) -> Result<Response<Streaming<StreamResponse>>, Status> {
        self.ready().await?;
        request.extensions_mut().insert(GrpcMethod::new(
            "lf.a2a.v1.A2AService",
            "SendStreamingMessage",
        ));
        let path = PathAndQuery::from_static("/lf.a2a.v1.A2AService/SendStreamingMessage");
        self.grpc.server_streaming(request, path, lean()).await
    }

    /// `lf.a2a.v1.A2AService/SubscribeToTask`.
    ///
    /// # Errors
    /// The agent's status before the first event.
    pub async fn subscribe_to_task(
        &mut self,
        mut request: Request<SubscribeToTaskRequest>,
    ) -> Result<Response<Streaming<StreamResponse>>, Status> {
        self.ready().await?;
        request
            .extensions_mut()
            .insert(GrpcMethod::new("lf.a2a.v1.A2AService", "SubscribeToTask"));
        let path = PathAndQuery::from_static("/lf.a2a.v1.A2AService/SubscribeToTask");
        self.grpc.server_streaming(request, path, lean()).await
    }

    /// `switchyard.v1.AgentService/Converse`.
    ///
    /// # Errors
    /// The agent's status when the session cannot start.
    pub async fn converse<S>(
        &mut self,
        mut request: Request<S>,
    ) -> Result<Response<Streaming<ConverseResponse>>, Status>
    where
        S: futures::Stream<Item = ConverseRequest> + Send + 'static,
    {
        self.ready().await?;
        request
            .extensions_mut()
            .insert(GrpcMethod::new("switchyard.v1.AgentService", "Converse"));
        let path = PathAndQuery::from_static("/switchyard.v1.AgentService/Converse");
        self.grpc.streaming(request, path, lean()).await
    }
}
