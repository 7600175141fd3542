//! [`McpServerAgent`]: an MCP server process (stdio transport) served as one mesh agent whose
//! skills are the server's tools, reachable over every front of the mesh.
//!
//! - Card: one skill per tool (id and name: the tool's name; description: the tool's; input
//!   modes `application/json` and `text/plain`), read with `tools/list` when the agent starts.
//! - Which tool a message calls: the message metadata `tool`, else the only tool.
//! - Arguments: the message's first data part (a JSON object); else its text parsed as a JSON
//!   object; else, when the tool's input schema has exactly one required property (or exactly
//!   one property), the text as that property; an empty object when the tool takes none.
//! - Result: text content → text parts, `structuredContent` → a data part, images and audio
//!   → raw parts with their media type, embedded resources → text or raw parts; `isError`
//!   fails the task with the content's text.
//! - The server process is started again (a new MCP session) on the next call after its
//!   session failed.

use std::sync::Arc;

use base64::Engine as _;
use rmcp::{
    RoleClient, ServiceExt as _,
    model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents, Tool},
    service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::Value;
use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents,
    card::{self, skill},
    pb::a2a::{AgentCard, Artifact, Part, part},
    task::value_to_json,
};
use tokio::sync::Mutex;

use crate::process::ProcessConfig;

type Session = RunningService<RoleClient, ()>;

/// An MCP server process as a mesh agent (see the module docs).
#[derive(Debug)]
pub struct McpServerAgent {
    name: String,
    config: ProcessConfig,
    tools: Vec<Tool>,
    card: AgentCard,
    session: Mutex<Option<Arc<Session>>>,
}

async fn connect(name: &str, config: &ProcessConfig) -> Result<Session, String> {
    let mut cmd = tokio::process::Command::new(&config.command[0]);
    cmd.args(&config.command[1..]).envs(&config.env);
    if let Some(d) = &config.cwd {
        cmd.current_dir(d);
    }
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "MCP server {name:?}: cannot start {:?}: {e}",
                config.command[0]
            )
        })?;
    if let Some(stderr) = stderr {
        let name = name.to_owned();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt as _;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(agent = %name, stderr = %line, "MCP server");
            }
        });
    }
    ().serve(transport)
        .await
        .map_err(|e| format!("MCP server {name:?}: initialization failed: {e}"))
}

impl McpServerAgent {
    /// Starts the MCP server `config`, lists its tools and builds the agent `name`.
    ///
    /// # Errors
    /// The command is empty or cannot start, the MCP initialization or `tools/list` fails, or
    /// the server has no tools.
    pub async fn start(
        name: &str,
        description: &str,
        config: ProcessConfig,
    ) -> Result<Self, String> {
        if config.command.is_empty() || config.command[0].is_empty() {
            return Err(format!("MCP server {name:?}: the command is empty"));
        }
        let session = connect(name, &config).await?;
        let tools = session
            .list_all_tools()
            .await
            .map_err(|e| format!("MCP server {name:?}: tools/list failed: {e}"))?;
        if tools.is_empty() {
            return Err(format!("MCP server {name:?} has no tools"));
        }
        let description = if description.is_empty() {
            format!(
                "MCP server `{}` as an agent: its tools are its skills",
                config.command.join(" ")
            )
        } else {
            description.to_owned()
        };
        let mut b = card::builder(name, description)
            .input_modes(["application/json", "text/plain"])
            .output_modes(["text/plain", "application/json"]);
        for t in &tools {
            b = b.skill(skill(
                t.name.to_string(),
                t.title.clone().unwrap_or_else(|| t.name.to_string()),
                t.description.as_deref().unwrap_or_default().to_owned(),
                ["mcp"],
                Vec::<&str>::new(),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            config,
            tools,
            card: b.build(),
            session: Mutex::new(Some(Arc::new(session))),
        })
    }

    async fn session(&self) -> Result<Arc<Session>, AgentError> {
        let mut s = self.session.lock().await;
        if let Some(live) = s.as_ref().filter(|l| !l.is_transport_closed()) {
            return Ok(live.clone());
        }
        let fresh = Arc::new(
            connect(&self.name, &self.config)
                .await
                .map_err(AgentError::failed)?,
        );
        *s = Some(fresh.clone());
        Ok(fresh)
    }

    fn tool(&self, ctx: &TaskContext) -> Result<&Tool, AgentError> {
        match ctx.message_metadata("tool") {
            Some(Value::String(name)) => {
                self.tools.iter().find(|t| t.name == name).ok_or_else(|| {
                    AgentError::rejected(format!(
                        "no tool {name:?}; tools: {}",
                        self.tools
                            .iter()
                            .map(|t| t.name.as_ref())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            }
            Some(_) => Err(AgentError::rejected(
                "metadata `tool` must be a tool name (a string)",
            )),
            None if self.tools.len() == 1 => Ok(&self.tools[0]),
            None => Err(AgentError::rejected(format!(
                "say which tool with the message metadata `tool`: one of {}",
                self.tools
                    .iter()
                    .map(|t| t.name.as_ref())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// The tool arguments of a message (see the module docs).
fn arguments(tool: &Tool, ctx: &TaskContext) -> Result<serde_json::Map<String, Value>, AgentError> {
    let data = ctx.message().parts.iter().find_map(|p| match &p.content {
        Some(part::Content::Data(v)) => Some(value_to_json(v)),
        _ => None,
    });
    if let Some(d) = data {
        return match d {
            Value::Object(o) => Ok(o),
            _ => Err(AgentError::rejected(
                "the data part must be a JSON object of tool arguments",
            )),
        };
    }
    let text = ctx.text();
    if let Ok(Value::Object(o)) = serde_json::from_str(text.trim()) {
        return Ok(o);
    }
    let schema = &tool.input_schema;
    let props: Vec<&String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let target = match (required.as_slice(), props.as_slice()) {
        ([one], _) => Some((*one).to_owned()),
        ([], [one]) => Some((*one).clone()),
        _ => None,
    };
    match target {
        Some(key) => Ok([(key, Value::String(text))].into_iter().collect()),
        None if props.is_empty() => Ok(Default::default()),
        None => Err(AgentError::rejected(format!(
            "tool {} takes several arguments ({}): send them as a JSON object (a data part or the text)",
            tool.name,
            props
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The parts of a tool result.
fn parts(result: &CallToolResult) -> Vec<Part> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).ok();
    let mut out: Vec<Part> = result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(Part::text(t.text.clone())),
            ContentBlock::Image(i) => b64(&i.data).map(|d| Part::raw(d, i.mime_type.clone())),
            ContentBlock::Audio(a) => b64(&a.data).map(|d| Part::raw(d, a.mime_type.clone())),
            ContentBlock::Resource(r) => match &r.resource {
                ResourceContents::TextResourceContents { text, .. } => {
                    Some(Part::text(text.clone()))
                }
                ResourceContents::BlobResourceContents {
                    blob, mime_type, ..
                } => b64(blob.as_str()).map(|d| {
                    Part::raw(
                        d,
                        mime_type
                            .clone()
                            .unwrap_or_else(|| "application/octet-stream".into()),
                    )
                }),
                _ => None,
            },
            _ => None,
        })
        .collect();
    if let Some(s) = &result.structured_content {
        out.push(Part::data(s.clone()));
    }
    out
}

#[tonic::async_trait]
impl Agent for McpServerAgent {
    fn card(&self) -> AgentCard {
        self.card.clone()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let tool = self.tool(&ctx)?;
        let args = arguments(tool, &ctx)?;
        let session = self.session().await?;
        let mut params = CallToolRequestParams::new(tool.name.clone());
        params.arguments = Some(args);
        let result = tokio::select! {
            r = session.call_tool(params) => r,
            () = ctx.cancelled() => return Err(AgentError::Canceled),
        };
        let result = result.map_err(|e| {
            AgentError::failed(format!(
                "MCP server {:?}: tools/call {} failed: {e}",
                self.name, tool.name
            ))
        })?;
        let parts = parts(&result);
        if result.is_error == Some(true) {
            let text: Vec<String> = parts
                .iter()
                .filter_map(|p| p.as_text().map(str::to_owned))
                .collect();
            return Err(AgentError::failed(format!(
                "tool {} failed: {}",
                tool.name,
                text.join("\n")
            )));
        }
        if parts.is_empty() {
            return Err(AgentError::failed(format!(
                "tool {} returned no content",
                tool.name
            )));
        }
        events
            .artifact(Artifact::new(tool.name.to_string(), parts))
            .await?;
        Ok(())
    }
}
