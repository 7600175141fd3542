//! The research report: one artifact, a Markdown part (each sub-agent's Markdown under its own
//! heading, then the missing parts with reasons) and a JSON data part (each part's status and
//! data).

use serde_json::{Map, Value, json};
use switchyard::{
    pb::a2a::{Artifact, Part, part},
    task::value_to_json,
};

use crate::fanout::{Outcome, PartResult};

/// Name of the report artifact.
pub const REPORT_ARTIFACT: &str = "report";

/// Builds the report artifact for `document` from the parts' results.
pub fn render(document: &str, parts: &[PartResult]) -> Artifact {
    let words = document.split_whitespace().count();
    let complete = parts.iter().filter(|p| p.outcome.is_ok()).count();
    let mut md = format!(
        "# Research report\n\n{words} words analysed by {} agents; {complete} of {} parts complete.\n",
        parts.len(),
        parts.len()
    );
    let mut data = Map::new();
    for p in parts {
        match &p.outcome {
            Outcome::Done(artifacts) => {
                md.push_str(&format!("\n## {}\n\n", p.agent));
                let mut part_data = Vec::new();
                for a in artifacts {
                    for part in &a.parts {
                        match &part.content {
                            Some(part::Content::Text(t)) => {
                                md.push_str(t.trim_end());
                                md.push('\n');
                            }
                            Some(part::Content::Data(d)) => part_data.push(value_to_json(d)),
                            _ => {}
                        }
                    }
                }
                let data_value = match part_data.len() {
                    0 => Value::Null,
                    1 => part_data.remove(0),
                    _ => Value::Array(part_data),
                };
                data.insert(
                    p.agent.clone(),
                    json!({"status": "ok", "elapsed_ms": p.elapsed.as_millis() as u64, "data": data_value}),
                );
            }
            Outcome::Missing(reason) => {
                data.insert(
                    p.agent.clone(),
                    json!({"status": "missing", "reason": reason, "elapsed_ms": p.elapsed.as_millis() as u64}),
                );
            }
        }
    }
    let missing: Vec<&PartResult> = parts.iter().filter(|p| !p.outcome.is_ok()).collect();
    if !missing.is_empty() {
        md.push_str("\n## Missing parts\n\n");
        for p in &missing {
            md.push_str(&format!("- **{}**: {}\n", p.agent, p.outcome.reason()));
        }
    }
    let summary = json!({
        "words": words,
        "complete": complete,
        "missing": missing.iter().map(|p| p.agent.as_str()).collect::<Vec<_>>(),
        "parts": Value::Object(data),
    });
    let mut markdown = Part::text(md);
    markdown.media_type = "text/markdown".into();
    let mut artifact = Artifact::new(REPORT_ARTIFACT, vec![markdown, Part::data(summary)]);
    artifact.description =
        "Research report: each sub-agent's result, and the missing parts.".into();
    artifact
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_report_holds_every_part_and_names_the_missing_ones() {
        let done = PartResult {
            agent: "textstats".into(),
            outcome: Outcome::Done(vec![Artifact::new(
                "textstats",
                vec![Part::text("| words | 3 |"), Part::data(json!({"words": 3}))],
            )]),
            elapsed: Duration::from_millis(5),
        };
        let missing = PartResult {
            agent: "keywords".into(),
            outcome: Outcome::Missing("timed out after 100 ms".into()),
            elapsed: Duration::from_millis(100),
        };
        let a = render("one two three", &[done, missing]);
        assert_eq!(a.name, REPORT_ARTIFACT);
        let md = a.parts[0].as_text().expect("markdown");
        assert!(
            md.contains("3 words analysed by 2 agents; 1 of 2 parts complete."),
            "{md}"
        );
        assert!(md.contains("## textstats\n\n| words | 3 |"), "{md}");
        assert!(
            md.contains("## Missing parts\n\n- **keywords**: timed out after 100 ms"),
            "{md}"
        );
        let Some(part::Content::Data(d)) = &a.parts[1].content else {
            panic!("data")
        };
        let d = value_to_json(d);
        assert_eq!(d["complete"], 1);
        assert_eq!(d["missing"], json!(["keywords"]));
        assert_eq!(d["parts"]["textstats"]["data"]["words"], 3);
        assert_eq!(d["parts"]["keywords"]["status"], "missing");
    }
}
