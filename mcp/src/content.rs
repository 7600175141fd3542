//! A finished (or interrupted) task as an MCP tool result.
//!
//! | task | tool result |
//! |---|---|
//! | COMPLETED | the artifacts' parts as content: text → text; JSON data → text (the JSON) and `structuredContent`; raw bytes → an embedded resource (text for `text/*` UTF-8, else a base64 blob) named `switchyard://<agent>/tasks/<task>/artifacts/<artifact>`; a URL → a text line |
//! | INPUT_REQUIRED, AUTH_REQUIRED | not an error: the agent's question, the task id, and how to answer (call the tool again with `task_id`); `structuredContent` `{"task_id", "state", "question"}` |
//! | FAILED, REJECTED, CANCELED | `isError`: the state and the agent's reason |
//!
//! `structuredContent` of a completed task: the one JSON object of its data parts, else
//! `{"data": [every data value]}`; none without data parts.

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock as Content, ResourceContents};
use serde_json::{Value, json};
use switchyard::{
    pb::a2a::{Part, Task, TaskState, part},
    task::value_to_json,
};

/// The text of the task's status message, or `""`.
pub fn status_text(task: &Task) -> String {
    task.status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(|m| m.text())
        .unwrap_or_default()
}

/// `TASK_STATE_COMPLETED` → `COMPLETED`.
pub fn state_name(state: TaskState) -> &'static str {
    state.as_str_name().trim_start_matches("TASK_STATE_")
}

fn part_content(
    agent: &str,
    task: &Task,
    artifact: &str,
    p: &Part,
    data: &mut Vec<Value>,
) -> Option<Content> {
    match p.content.as_ref()? {
        part::Content::Text(t) => Some(Content::text(t.clone())),
        part::Content::Data(v) => {
            let v = value_to_json(v);
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            data.push(v);
            Some(Content::text(text))
        }
        part::Content::Raw(bytes) => {
            let mut uri = format!(
                "switchyard://{agent}/tasks/{}/artifacts/{artifact}",
                task.id
            );
            if !p.filename.is_empty() {
                uri.push('/');
                uri.push_str(&p.filename);
            }
            let media = if p.media_type.is_empty() {
                "application/octet-stream"
            } else {
                p.media_type.as_str()
            };
            let contents = match std::str::from_utf8(bytes) {
                Ok(text) if media.starts_with("text/") => {
                    ResourceContents::text(text, uri).with_mime_type(media)
                }
                _ => ResourceContents::blob(
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                    uri,
                )
                .with_mime_type(media),
            };
            Some(Content::resource(contents))
        }
        part::Content::Url(url) => Some(Content::text(if p.filename.is_empty() {
            format!("file: {url}")
        } else {
            format!("file {}: {url}", p.filename)
        })),
    }
}

/// The tool result for `task` of `agent` (see the module docs).
pub fn tool_result(agent: &str, tool: &str, task: &Task) -> CallToolResult {
    let state = task.state();
    let reason = status_text(task);
    match state {
        TaskState::Completed => {
            let mut data = Vec::new();
            let mut content: Vec<Content> = task
                .artifacts
                .iter()
                .flat_map(|a| {
                    a.parts
                        .iter()
                        .map(|p| (a.artifact_id.clone(), p))
                        .collect::<Vec<_>>()
                })
                .filter_map(|(id, p)| part_content(agent, task, &id, p, &mut data))
                .collect();
            if content.is_empty() {
                let text = if reason.is_empty() {
                    format!("task {} completed without artifacts", task.id)
                } else {
                    reason
                };
                content.push(Content::text(text));
            }
            let mut result = CallToolResult::success(content);
            result.structured_content = match data.len() {
                0 => None,
                1 if data[0].is_object() => data.pop(),
                _ => Some(json!({ "data": data })),
            };
            result
        }
        TaskState::InputRequired | TaskState::AuthRequired => {
            let what = if state == TaskState::InputRequired {
                "input"
            } else {
                "authentication"
            };
            let text = format!(
                "The agent needs {what} to go on: {reason}\nTask id: {id}. To answer, call \
                 {tool} again with task_id \"{id}\" and the answer as text.",
                id = task.id
            );
            let mut result = CallToolResult::success(vec![Content::text(text)]);
            result.structured_content = Some(json!({
                "task_id": task.id,
                "state": state_name(state),
                "question": reason,
            }));
            result
        }
        _ => {
            let text = if reason.is_empty() {
                format!("task {} ended {}", task.id, state_name(state))
            } else {
                format!("task {} ended {}: {reason}", task.id, state_name(state))
            };
            CallToolResult::error(vec![Content::text(text)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::pb::a2a::{Artifact, Message, TaskStatus};

    fn task(state: TaskState, text: &str, parts: Vec<Part>) -> Task {
        Task {
            id: "t1".into(),
            status: Some(TaskStatus {
                state: state as i32,
                message: (!text.is_empty()).then(|| Message::agent_text(text)),
                timestamp: None,
            }),
            artifacts: if parts.is_empty() {
                vec![]
            } else {
                vec![Artifact::new("out", parts)]
            },
            ..Default::default()
        }
    }

    fn json(r: &CallToolResult) -> Value {
        serde_json::to_value(r).expect("serializes")
    }

    #[test]
    fn completed_tasks_give_text_structured_data_and_blobs() {
        let t = task(
            TaskState::Completed,
            "",
            vec![
                Part::text("hello"),
                Part::data(json!({"words": 2})),
                Part::raw(vec![0u8, 159, 146, 150], "image/png"),
            ],
        );
        let v = json(&tool_result("echo", "echo.echo", &t));
        assert_eq!(v["content"][0], json!({"type": "text", "text": "hello"}));
        assert_eq!(v["structuredContent"], json!({"words": 2}));
        assert_eq!(v["content"][2]["type"], "resource");
        assert_eq!(v["content"][2]["resource"]["blob"], "AJ+Slg==");
        assert_eq!(v["content"][2]["resource"]["mimeType"], "image/png");
        assert!(v.get("isError").is_none_or(|e| e == false));
    }

    #[test]
    fn input_required_names_the_task_and_failures_are_errors() {
        let t = task(TaskState::InputRequired, "which city?", vec![]);
        let v = json(&tool_result("echo", "echo.echo", &t));
        assert_eq!(v["structuredContent"]["task_id"], "t1");
        assert!(
            v["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("which city?")
        );
        let t = task(TaskState::Failed, "boom", vec![]);
        let v = json(&tool_result("echo", "echo.echo", &t));
        assert_eq!(v["isError"], true);
        assert_eq!(v["content"][0]["text"], "task t1 ended FAILED: boom");
    }
}
