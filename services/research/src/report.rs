//! The research report: one artifact, a Markdown part (how the document was read, each
//! sub-agent's Markdown under its own heading, then the missing parts with reasons) and a JSON
//! data part (the input's format, each part's status and data).

use serde_json::{Map, Value, json};
use switchyard::{
    pb::a2a::{Artifact, Part, part},
    task::value_to_json,
};

use switchyard_textstats::{input::Input, segment};

use crate::fanout::{Outcome, PartResult};

/// Name of the report artifact.
pub const REPORT_ARTIFACT: &str = "report";

/// Builds the report artifact for the document read as `input` from the parts' results. The
/// word count is that of the analysed text ([`segment::words`]; for Markdown, its prose); for
/// Markdown the report says what was skipped, once (the sub-agents' own notes are dropped).
pub fn render(input: &Input, parts: &[PartResult]) -> Artifact {
    let words = segment::words(&input.text).count();
    let complete = parts.iter().filter(|p| p.outcome.is_ok()).count();
    let mut md = format!(
        "# Research report\n\n{words} words analysed by {} agents; {complete} of {} parts complete.\n",
        parts.len(),
        parts.len()
    );
    if let Some(note) = input.note() {
        md.push_str(&format!("{note}\n"));
    }
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
                                for line in t.trim_end().lines().filter(|l| !Input::is_note(l)) {
                                    md.push_str(line);
                                    md.push('\n');
                                }
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
        "input": input.to_json(),
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

    use switchyard_textstats::input::Format;

    use super::*;

    #[test]
    fn a_markdown_report_says_once_what_was_skipped() {
        let input = Input::from_text(
            "# Title\n\nTwo words.\n\n```\nsome code here\n```\n".into(),
            Format::Markdown,
        );
        let note = input.note().expect("markdown");
        let sub = |agent: &str| PartResult {
            agent: agent.into(),
            outcome: Outcome::Done(vec![Artifact::new(
                agent,
                vec![Part::text(format!("## {agent}\n\nresult\n\n_{note}_\n"))],
            )]),
            elapsed: Duration::from_millis(1),
        };
        let a = render(&input, &[sub("summarize"), sub("keywords")]);
        let md = a.parts[0].as_text().expect("markdown");
        assert!(
            md.contains("3 words analysed by 2 agents; 2 of 2 parts complete.\n"),
            "{md}"
        );
        assert_eq!(md.matches("skipped 1 code block").count(), 1, "{md}");
        let Some(part::Content::Data(d)) = &a.parts[1].content else {
            panic!("data")
        };
        assert_eq!(value_to_json(d)["input"]["skipped"]["code_blocks"], 1);
    }

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
        let input = Input::from_text("one two three".into(), Format::Plain);
        let a = render(&input, &[done, missing]);
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
        assert_eq!(d["input"]["format"], "plain");
        assert_eq!(d["missing"], json!(["keywords"]));
        assert_eq!(d["parts"]["textstats"]["data"]["words"], 3);
        assert_eq!(d["parts"]["keywords"]["status"], "missing");
    }
}
