//! The tool catalog: one MCP tool per skill of every agent that answers.
//!
//! - Name: `<agent>.<skill id>`, every character outside MCP's tool-name alphabet
//!   (`A-Z a-z 0-9 _ - .`, MCP 2025-11-25 "Tool names") replaced by `_`, cut to 128
//!   characters; a name taken by an earlier agent (in name order) gets `_2`, `_3`, … .
//! - Title: the skill's name. Description: the skill's description, the agent's description,
//!   the accepted input modes and the card's examples.
//! - Input schema ([`input_schema`]): `text` (the message text), `data` (a JSON value sent as a
//!   data part, offered when the skill accepts `application/json`), `metadata` (the message's
//!   metadata: agent-specific options) and `task_id` (continue a task that asked for input).

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};
use switchyard::{
    Registry,
    pb::a2a::{AgentCard, AgentSkill},
};

/// Longest MCP tool name (MCP 2025-11-25, "Tool names": 1 to 128 characters).
pub const MAX_TOOL_NAME: usize = 128;

/// One tool and the agent skill behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The MCP tool.
    pub tool: Tool,
    /// The agent's registry name.
    pub agent: String,
    /// The skill's id in the agent's card.
    pub skill: String,
    /// Whether the skill takes a JSON data part.
    pub accepts_json: bool,
}

/// `<agent>.<skill>` in MCP's tool-name alphabet (see the module docs).
pub fn tool_name(agent: &str, skill: &str) -> String {
    let raw = format!("{agent}.{skill}");
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(MAX_TOOL_NAME);
    name
}

fn modes<'a>(skill: &'a AgentSkill, card: &'a AgentCard) -> &'a [String] {
    if skill.input_modes.is_empty() {
        &card.default_input_modes
    } else {
        &skill.input_modes
    }
}

fn takes_json(modes: &[String]) -> bool {
    modes.iter().any(|m| m == "application/json")
}

/// The JSON Schema of a tool's arguments (see the module docs).
pub fn input_schema(accepts_json: bool) -> JsonObject {
    let mut properties = json!({
        "text": {
            "type": "string",
            "description": "The message to the agent (a text part)."
        },
        "metadata": {
            "type": "object",
            "description": "Message metadata: options the agent documents (e.g. echo's delay_ms).",
            "additionalProperties": true
        },
        "task_id": {
            "type": "string",
            "description": "Continue this task (one that asked for input): the text is the answer."
        }
    });
    if accepts_json {
        properties["data"] = json!({
            "description": "A JSON value sent as a data part (application/json)."
        });
    }
    let schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    match schema {
        Value::Object(o) => o,
        _ => unreachable!("a JSON object literal"),
    }
}

fn description(card: &AgentCard, skill: &AgentSkill, modes: &[String]) -> String {
    let mut d = skill.description.trim().to_owned();
    if !card.description.is_empty() {
        d.push_str(&format!(
            "\n\nAgent `{}`: {}",
            card.name,
            card.description.trim()
        ));
    }
    if !modes.is_empty() {
        d.push_str(&format!("\nAccepts: {}.", modes.join(", ")));
    }
    if !skill.examples.is_empty() {
        d.push_str("\nExamples:");
        for e in &skill.examples {
            d.push_str(&format!("\n- {e}"));
        }
    }
    d
}

/// The tools of `agent`'s `card`, named unless in `taken` (which gains their names).
pub fn tools_of(agent: &str, card: &AgentCard, taken: &mut BTreeSet<String>) -> Vec<Entry> {
    let mut out = Vec::new();
    for skill in &card.skills {
        let base = tool_name(agent, &skill.id);
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            let suffix = format!("_{n}");
            let mut b = base.clone();
            b.truncate(MAX_TOOL_NAME - suffix.len());
            name = format!("{b}{suffix}");
            n += 1;
        }
        taken.insert(name.clone());
        let modes = modes(skill, card);
        let accepts_json = takes_json(modes);
        let mut tool = Tool::new(
            name,
            description(card, skill, modes),
            Arc::new(input_schema(accepts_json)),
        );
        if !skill.name.is_empty() {
            tool = tool.with_title(skill.name.clone());
        }
        out.push(Entry {
            tool,
            agent: agent.to_owned(),
            skill: skill.id.clone(),
            accepts_json,
        });
    }
    out
}

/// The tools of every agent of `registry` whose card can be fetched within `timeout` now
/// (an agent that does not answer has no tools until it answers again), in agent name order.
pub async fn load(registry: &Registry, timeout: Duration) -> Vec<Entry> {
    let agents = registry.agents();
    let cards = futures::future::join_all(agents.iter().map(|a| a.refresh_card(timeout))).await;
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for (agent, card) in agents.iter().zip(cards) {
        match card {
            Ok(card) => out.extend(tools_of(agent.name(), &card, &mut taken)),
            Err(e) => {
                tracing::debug!(agent = %agent.name(), error = %e, "agent left the MCP tool list")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::card::{builder, skill};

    #[test]
    fn names_follow_the_mcp_alphabet_and_stay_unique() {
        assert_eq!(tool_name("echo", "echo"), "echo.echo");
        assert_eq!(tool_name("my agent", "sum/up!"), "my_agent.sum_up_");
        assert_eq!(tool_name(&"a".repeat(200), "s").len(), MAX_TOOL_NAME);
        let card = builder("x", "X")
            .skill(skill("a b", "A", "first", ["t"], ["ex one"]))
            .skill(skill("a_b", "B", "second", ["t"], Vec::<&str>::new()))
            .build();
        let mut taken = BTreeSet::new();
        let tools = tools_of("x", &card, &mut taken);
        let names: Vec<_> = tools.iter().map(|t| t.tool.name.to_string()).collect();
        assert_eq!(names, ["x.a_b", "x.a_b_2"]);
        let d = tools[0].tool.description.as_deref().unwrap_or_default();
        assert!(d.starts_with("first") && d.contains("- ex one"), "{d}");
        assert_eq!(tools[0].tool.title.as_deref(), Some("A"));
    }

    #[test]
    fn data_is_offered_only_to_json_skills() {
        assert!(input_schema(true)["properties"].get("data").is_some());
        assert!(input_schema(false)["properties"].get("data").is_none());
    }
}
