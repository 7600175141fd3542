//! [`MeshTools`]: the MCP server whose tools are the mesh's agent skills, and its transports.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use futures::StreamExt as _;
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
        PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
    },
    service::{NotificationContext, RequestContext},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::Value;
use switchyard::{
    PROGRESS_KEY, Registry,
    pb::a2a::{
        Message, Part, SendMessageRequest, StreamResponse, Task, TaskState, stream_response,
    },
    task::{apply, json_to_value, value_to_json},
};
use tokio_util::sync::CancellationToken;

use crate::{
    catalog::{self, Entry},
    content,
};

/// Settings of the MCP server.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// How often the agents' cards are fetched again to follow agents that come and go.
    /// Default 5 s.
    pub refresh_interval: Duration,
    /// How long one card fetch may take before its agent counts as gone. Default 3 s.
    pub card_timeout: Duration,
    /// Deadline of one tool call (the task's gRPC deadline). Default 10 minutes.
    pub call_timeout: Duration,
    /// Authorization of tool calls: the tool's agent and skill against the
    /// [`Principal`](switchyard::identity::Principal) the HTTP layer in front put in the
    /// request's extensions (the gateway's authentication); a refused call is a tool error
    /// starting `PERMISSION_DENIED:` (or `UNAUTHENTICATED:`). Default: empty, every call
    /// allowed.
    pub policy: Arc<switchyard::authz::Policy>,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(5),
            card_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(600),
            policy: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    registry: Arc<Registry>,
    config: McpConfig,
    tools: RwLock<Arc<BTreeMap<String, Entry>>>,
    /// Every initialized client session, told when the tool list changes.
    peers: Mutex<Vec<Peer<RoleServer>>>,
    stop: CancellationToken,
    /// Whether the first fetch of the cards has ended.
    loaded: tokio::sync::watch::Sender<bool>,
}

/// The MCP server over a mesh: one tool per agent skill (see the crate docs). Cheap to
/// clone; all clones share the tool list and the refresh task.
#[derive(Debug, Clone)]
pub struct MeshTools(Arc<Shared>);

impl MeshTools {
    /// Starts following the agents of `registry`: their cards are fetched at once and then
    /// every [`McpConfig::refresh_interval`], until `stop` is cancelled. Requests that arrive
    /// before the first fetch ends wait for it. Needs a Tokio runtime.
    pub fn start(registry: Arc<Registry>, config: McpConfig, stop: CancellationToken) -> Self {
        let (loaded, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            registry,
            config,
            tools: RwLock::default(),
            peers: Mutex::default(),
            stop,
            loaded,
        });
        let tools = Self(shared);
        let follower = tools.clone();
        tokio::spawn(async move {
            let every = follower.0.config.refresh_interval;
            follower.refresh().await;
            follower.0.loaded.send_replace(true);
            loop {
                tokio::select! {
                    () = follower.0.stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                if follower.refresh().await {
                    follower.notify_changed().await;
                }
            }
        });
        tools
    }

    /// Waits (bounded) until the first fetch of the cards has ended.
    async fn loaded(&self) {
        let mut rx = self.0.loaded.subscribe();
        let wait = self.0.config.card_timeout + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, rx.wait_for(|l| *l)).await;
    }

    /// Fetches the cards again; whether the tool list changed.
    async fn refresh(&self) -> bool {
        let entries = catalog::load(&self.0.registry, self.0.config.card_timeout).await;
        let new: BTreeMap<String, Entry> = entries
            .into_iter()
            .map(|e| (e.tool.name.to_string(), e))
            .collect();
        let mut tools = self.0.tools.write().unwrap_or_else(|e| e.into_inner());
        if **tools == new {
            return false;
        }
        tracing::info!(tools = new.len(), "MCP tool list changed");
        *tools = Arc::new(new);
        true
    }

    async fn notify_changed(&self) {
        let peers: Vec<_> = {
            let mut peers = self.0.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        for p in peers {
            if let Err(e) = p.notify_tool_list_changed().await {
                tracing::debug!(error = %e, "could not tell an MCP client that the tools changed");
            }
        }
    }

    /// The current tools, by name.
    pub fn tools(&self) -> Vec<Tool> {
        self.snapshot().values().map(|e| e.tool.clone()).collect()
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, Entry>> {
        self.0
            .tools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why the policy refuses this call, if it does.
    fn refusal(&self, entry: &Entry, context: &RequestContext<RoleServer>) -> Option<String> {
        use switchyard::authz::Decision;
        let policy = &self.0.config.policy;
        if !policy.is_enabled() {
            return None;
        }
        let principal = principal_of(context);
        match policy.check("gateway", &entry.agent, Some(&entry.skill), principal) {
            Decision::Allow => None,
            Decision::Deny(reason) => Some(format!("PERMISSION_DENIED: {reason}")),
            Decision::Unauthenticated => {
                Some("UNAUTHENTICATED: this tool needs an authenticated caller".into())
            }
        }
    }

    /// Runs one tool call: the message, the task's events (progress), cancellation.
    async fn call(
        &self,
        entry: &Entry,
        args: serde_json::Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResult, McpError> {
        if let Some(refusal) = self.refusal(entry, context) {
            return Ok(rmcp::model::CallToolResult::error(vec![
                rmcp::model::ContentBlock::text(refusal),
            ]));
        }
        let message = message(entry, args)?;
        let agent = self
            .0
            .registry
            .agent(&entry.agent)
            .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        let mut client = agent.client().with_timeout(self.0.config.call_timeout);
        // Behind the gateway: the agent runtime decides on the end user, as on the other
        // fronts (it trusts this header from the gateway's SPIFFE ID only).
        if let Some(principal) = principal_of(context) {
            client = client
                .with_metadata(
                    switchyard::identity::PRINCIPAL_HEADER,
                    &principal.to_header(),
                )
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        }
        let request = SendMessageRequest {
            message: Some(message),
            ..Default::default()
        };
        let failure = |e: switchyard::ClientError| {
            rmcp::model::CallToolResult::error(vec![rmcp::model::ContentBlock::text(format!(
                "calling agent {}: {e}",
                entry.agent
            ))])
        };
        let mut stream = match client.send_streaming_message(request).await {
            Ok(s) => s,
            Err(e) => return Ok(failure(e)),
        };
        let progress_token = context.meta.get_progress_token();
        let mut progress = Progress::default();
        let mut task = Task::default();
        loop {
            let event = tokio::select! {
                () = context.ct.cancelled() => {
                    if task.id.is_empty() {
                        // Cancelled before the first event: its task snapshot names the task.
                        let first = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
                        if let Ok(Some(Ok(e))) = first {
                            apply(&mut task, &e);
                        }
                    }
                    if !task.id.is_empty() {
                        let cancel = client.clone().with_timeout(Duration::from_secs(10));
                        match cancel.cancel_task(&task.id).await {
                            Ok(t) => tracing::info!(task = %t.id, state = ?t.state(), "MCP request cancelled: task cancelled"),
                            Err(e) => tracing::warn!(task = %task.id, error = %e, "MCP request cancelled: CancelTask failed"),
                        }
                    }
                    return Err(McpError::internal_error("the request was cancelled", None));
                }
                event = stream.next() => event,
            };
            let event: StreamResponse = match event {
                Some(Ok(e)) => e,
                Some(Err(status)) => return Ok(failure(status.into())),
                None => break,
            };
            if let Some(stream_response::Payload::Message(m)) = &event.payload {
                // The agent answered with a message instead of a task.
                let mut t = Task {
                    status: Some(switchyard::pb::a2a::TaskStatus {
                        state: TaskState::Completed as i32,
                        message: None,
                        timestamp: None,
                    }),
                    ..Default::default()
                };
                t.artifacts
                    .push(switchyard::pb::a2a::Artifact::new("reply", m.parts.clone()));
                return Ok(content::tool_result(&entry.agent, &entry.tool.name, &t));
            }
            apply(&mut task, &event);
            if let (Some(token), Some(stream_response::Payload::StatusUpdate(u))) =
                (&progress_token, &event.payload)
                && let Some(status) = &u.status
                && status.state == TaskState::Working as i32
            {
                let fraction = u
                    .metadata
                    .as_ref()
                    .and_then(|m| m.fields.get(PROGRESS_KEY))
                    .map(value_to_json)
                    .and_then(|v| v.as_f64());
                let text = status.message.as_ref().map(|m| m.text());
                let mut param =
                    ProgressNotificationParam::new(token.clone(), progress.next(fraction));
                param.total = progress.total();
                param.message = text.filter(|t| !t.is_empty());
                if let Err(e) = context.peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "progress notification not sent");
                }
            }
            let state = task.state();
            if state.is_terminal() || state.is_interrupted() {
                break;
            }
        }
        Ok(content::tool_result(&entry.agent, &entry.tool.name, &task))
    }
}

/// The principal the gateway authenticated for this MCP request (a request extension set by
/// its authentication layer); `None` outside the gateway or when authentication is off.
fn principal_of(context: &RequestContext<RoleServer>) -> Option<&switchyard::identity::Principal> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<switchyard::identity::Principal>())
}

/// Progress values: the agent's fraction as percent of 100 when it gives one, else one step
/// per update; never decreasing (MCP: "The progress value MUST increase with each
/// notification").
#[derive(Debug, Default)]
struct Progress {
    last: f64,
    fractional: bool,
}

impl Progress {
    fn next(&mut self, fraction: Option<f64>) -> f64 {
        match fraction {
            Some(f) => {
                self.fractional = true;
                self.last = (f * 100.0).max(self.last);
            }
            None if self.fractional => {}
            None => self.last += 1.0,
        }
        self.last
    }

    fn total(&self) -> Option<f64> {
        self.fractional.then_some(100.0)
    }
}

/// The A2A message of a tool call's arguments.
fn message(entry: &Entry, mut args: serde_json::Map<String, Value>) -> Result<Message, McpError> {
    let bad = |m: String| McpError::invalid_params(m, None);
    let mut parts = Vec::new();
    match args.remove("text") {
        Some(Value::String(t)) => parts.push(Part::text(t)),
        Some(Value::Null) | None => {}
        Some(_) => return Err(bad("`text` must be a string".into())),
    }
    if let Some(d) = args.remove("data") {
        if !entry.accepts_json {
            return Err(bad(format!(
                "tool {} takes no `data` (its skill does not accept application/json)",
                entry.tool.name
            )));
        }
        parts.push(Part::data(d));
    }
    if parts.is_empty() {
        return Err(bad("give `text` (or `data`)".into()));
    }
    let mut m = Message::user(parts);
    match args.remove("metadata") {
        Some(Value::Object(o)) => {
            m.metadata = Some(pbjson_types::Struct {
                fields: o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
            });
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(bad("`metadata` must be an object".into())),
    }
    match args.remove("task_id") {
        Some(Value::String(t)) => m.task_id = t,
        Some(Value::Null) | None => {}
        Some(_) => return Err(bad("`task_id` must be a string".into())),
    }
    if let Some(k) = args.keys().next() {
        return Err(bad(format!(
            "unknown argument `{k}`; tool {} takes text, data, metadata, task_id",
            entry.tool.name
        )));
    }
    Ok(m)
}

impl ServerHandler for MeshTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("switchyard", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Every tool is one skill of one agent of a Switchyard mesh (`<agent>.<skill>`). \
             Tools take `text`, optional `metadata`, `data` for JSON skills, and `task_id` to \
             answer a task that asked for input.",
        )
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.0
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.loaded().await;
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.snapshot().get(name).map(|e| e.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.loaded().await;
        let Some(entry) = self.snapshot().get(request.name.as_ref()).cloned() else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        self.call(&entry, args, &context).await.map(Into::into)
    }
}

/// Serves `tools` over standard input and output (newline-delimited JSON-RPC, the MCP stdio
/// transport) until the client closes standard input or `stop` is cancelled.
///
/// # Errors
/// The initialization failed (the client sent no valid `initialize`).
pub async fn serve_stdio(
    tools: MeshTools,
    stop: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let running = tools.serve_with_ct(rmcp::transport::stdio(), stop).await?;
    running.waiting().await?;
    Ok(())
}

/// The MCP streamable HTTP endpoint over `tools` (a tower service; the gateway mounts it at
/// `/mcp`), with sessions held in memory. `allowed_hosts`: the `Host` values accepted (DNS
/// rebinding protection: loopback names plus the public host); the service stops when `stop`
/// is cancelled.
pub fn http_service(
    tools: MeshTools,
    allowed_hosts: Vec<String>,
    stop: CancellationToken,
) -> StreamableHttpService<MeshTools, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts)
        .with_cancellation_token(stop);
    StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_decreases() {
        let mut p = Progress::default();
        assert_eq!(p.next(None), 1.0);
        assert_eq!(p.next(None), 2.0);
        assert_eq!(p.next(Some(0.5)), 50.0);
        assert_eq!(p.next(Some(0.25)), 50.0);
        assert_eq!(p.next(None), 50.0);
        assert_eq!(p.total(), Some(100.0));
    }

    #[test]
    fn arguments_become_one_message() {
        let entry = catalog::tools_of(
            "echo",
            &switchyard::card::builder("echo", "")
                .skill(switchyard::card::skill("echo", "Echo", "", ["t"], ["x"]))
                .build(),
            &mut Default::default(),
        )
        .remove(0);
        let args = serde_json::json!({"text": "hi", "metadata": {"delay_ms": 5}, "task_id": "t9"});
        let Value::Object(args) = args else {
            unreachable!()
        };
        let m = message(&entry, args).expect("valid");
        assert_eq!(m.text(), "hi");
        assert_eq!(m.task_id, "t9");
        assert!(m.metadata.is_some());
        let Value::Object(args) = serde_json::json!({"texte": "hi"}) else {
            unreachable!()
        };
        let e = message(&entry, args).expect_err("no text");
        assert!(e.message.contains("give `text`"), "{}", e.message);
        let Value::Object(args) = serde_json::json!({"text": "a", "extra": 1}) else {
            unreachable!()
        };
        let e = message(&entry, args).expect_err("unknown key");
        assert!(
            e.message.contains("unknown argument `extra`"),
            "{}",
            e.message
        );
    }
}
