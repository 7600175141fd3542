//! Reaching an agent through the gateway (when `gateway_url` is configured): A2A JSON-RPC 2.0
//! for unary calls, SSE for streams (A2A v1.0 "JSON-RPC binding", "Streaming").

use std::{pin::Pin, time::Duration};

use eventsource_stream::Eventsource as _;
use futures::{Stream, StreamExt as _};
use serde::{Serialize, de::DeserializeOwned};
use switchyard::{
    card::PROTOCOL_VERSION,
    pb::a2a::{
        CancelTaskRequest, GetTaskRequest, ListTasksRequest, ListTasksResponse, SendMessageRequest,
        SendMessageResponse, StreamResponse, SubscribeToTaskRequest, Task, send_message_response,
    },
};

use crate::error::CliError;

/// A stream of task events, from gRPC or SSE.
pub type Events = Pin<Box<dyn Stream<Item = Result<StreamResponse, CliError>> + Send>>;

/// One agent behind the gateway.
#[derive(Debug, Clone)]
pub struct GatewayAgent {
    http: reqwest::Client,
    url: String,
    agent: String,
    timeout: Duration,
}

/// A JSON-RPC response envelope.
#[derive(serde::Deserialize)]
struct Envelope<R> {
    result: Option<R>,
    error: Option<RpcError>,
}

#[derive(serde::Deserialize)]
struct RpcError {
    code: i64,
    message: String,
}

impl GatewayAgent {
    /// The agent `agent` behind the gateway at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, agent: &str, timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("{}/agents/{agent}", base.trim_end_matches('/')),
            agent: agent.to_owned(),
            timeout,
        }
    }

    /// Sends `token` (a JWT or an API key) as `Authorization: Bearer <token>` on every call,
    /// marked sensitive so that no log shows it. A token that is not a valid header value is
    /// dropped (the gateway then answers 401, which says what is missing).
    #[must_use]
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        let Some(token) = token else {
            return self;
        };
        let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        else {
            return self;
        };
        value.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        if let Ok(client) = reqwest::Client::builder().default_headers(headers).build() {
            self.http = client;
        }
        self
    }

    /// The agent's base URL on the gateway (`<gateway>/agents/<name>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.agent
    }

    fn fail(&self, message: impl Into<String>) -> CliError {
        CliError::Call {
            agent: self.agent.clone(),
            message: message.into(),
        }
    }

    fn request<P: Serialize>(&self, method: &str, params: &P) -> reqwest::RequestBuilder {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": switchyard::task::new_id(),
            "method": method,
            "params": params,
        });
        self.http
            .post(&self.url)
            .header("A2A-Version", PROTOCOL_VERSION)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        if e.is_timeout() {
            self.fail("the call timed out (raise --timeout for long tasks)")
        } else {
            self.fail(format!("cannot reach the gateway at {}: {e}", self.url))
        }
    }

    /// One unary JSON-RPC call.
    async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, CliError> {
        let response = self
            .request(method, params)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        let envelope: Envelope<R> = serde_json::from_slice(&body).map_err(|e| {
            self.fail(format!(
                "the gateway answered HTTP {status} with no JSON-RPC response ({e})"
            ))
        })?;
        match (envelope.result, envelope.error) {
            (_, Some(e)) if status == reqwest::StatusCode::UNAUTHORIZED => Err(self.fail(format!(
                "{} (JSON-RPC {}; pass a JWT or API key with --token or SWITCHYARD_TOKEN)",
                e.message, e.code
            ))),
            (_, Some(e)) => Err(self.fail(format!("{} (JSON-RPC {})", e.message, e.code))),
            (Some(r), None) => Ok(r),
            (None, None) => Err(self.fail("a JSON-RPC response with neither result nor error")),
        }
    }

    /// `SendMessage`, waiting for the task: the task, or the agent's direct message reply.
    ///
    /// # Errors
    /// Unreachable gateway, JSON-RPC errors, an empty result.
    pub async fn send(
        &self,
        request: SendMessageRequest,
    ) -> Result<send_message_response::Payload, CliError> {
        let r: SendMessageResponse = self.call("SendMessage", &request).await?;
        r.payload
            .ok_or_else(|| self.fail("an empty SendMessage result"))
    }

    /// `GetTask`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn get_task(&self, request: GetTaskRequest) -> Result<Task, CliError> {
        self.call("GetTask", &request).await
    }

    /// `ListTasks`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn list_tasks(
        &self,
        request: ListTasksRequest,
    ) -> Result<ListTasksResponse, CliError> {
        self.call("ListTasks", &request).await
    }

    /// `CancelTask`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn cancel_task(&self, request: CancelTaskRequest) -> Result<Task, CliError> {
        self.call("CancelTask", &request).await
    }

    /// `SendStreamingMessage` over SSE.
    ///
    /// # Errors
    /// As [`send`](Self::send), before the first event.
    pub async fn stream(&self, request: SendMessageRequest) -> Result<Events, CliError> {
        self.sse(self.request("SendStreamingMessage", &request))
            .await
    }

    /// `SubscribeToTask` over SSE; with `after`, resumes after that event (`Last-Event-ID`).
    ///
    /// # Errors
    /// As [`send`](Self::send), before the first event.
    pub async fn subscribe(&self, id: &str, after: Option<u64>) -> Result<Events, CliError> {
        let request = SubscribeToTaskRequest {
            id: id.to_owned(),
            ..Default::default()
        };
        let mut builder = self.request("SubscribeToTask", &request);
        if let Some(a) = after {
            builder = builder.header("Last-Event-ID", a.to_string());
        }
        self.sse(builder).await
    }

    async fn sse(&self, builder: reqwest::RequestBuilder) -> Result<Events, CliError> {
        let response = builder
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // An error known before the first event is a plain JSON-RPC error.
            let body = response.bytes().await.map_err(|e| self.unreachable(&e))?;
            let envelope: Envelope<StreamResponse> = serde_json::from_slice(&body)
                .map_err(|e| self.fail(format!("not a JSON-RPC response: {e}")))?;
            let e = envelope.error.map_or_else(
                || "no event stream".to_owned(),
                |e| format!("{} (JSON-RPC {})", e.message, e.code),
            );
            return Err(self.fail(e));
        }
        let agent = self.agent.clone();
        let events = response.bytes_stream().eventsource().map(move |item| {
            let fail = |message: String| CliError::Call {
                agent: agent.clone(),
                message,
            };
            let event = item.map_err(|e| fail(format!("event stream: {e}")))?;
            let envelope: Envelope<StreamResponse> = serde_json::from_str(&event.data)
                .map_err(|e| fail(format!("not a JSON-RPC event: {e}")))?;
            match (envelope.result, envelope.error) {
                (_, Some(e)) => Err(fail(format!("{} (JSON-RPC {})", e.message, e.code))),
                (Some(r), None) => Ok(r),
                (None, None) => Err(fail("an event with neither result nor error".into())),
            }
        });
        Ok(Box::pin(events))
    }
}
