//! Human-readable output of tasks and events, and the JSON forms for `--json`.

use std::fmt::Write as _;

use switchyard::{
    PROGRESS_KEY,
    pb::a2a::{Artifact, Part, StreamResponse, Task, TaskState, part, stream_response},
    task::{sequence_of, value_to_json},
};

/// `TASK_STATE_COMPLETED` → `COMPLETED`.
pub fn state(s: TaskState) -> &'static str {
    s.as_str_name().trim_start_matches("TASK_STATE_")
}

/// The status message of a task, if any.
pub fn status_text(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(|m| m.text())
        .unwrap_or_default()
}

/// `task <id> COMPLETED` plus the status message when there is one.
pub fn task_line(t: &Task) -> String {
    let msg = status_text(t);
    if msg.is_empty() {
        format!("task {} {}", t.id, state(t.state()))
    } else {
        format!("task {} {}: {msg}", t.id, state(t.state()))
    }
}

/// Every artifact: a header line, then text parts as they are, files and URLs as one line
/// each, and data parts as pretty JSON when the artifact has no text (the full data is in
/// `--json` output).
pub fn artifacts(artifacts: &[Artifact]) -> String {
    let mut out = String::new();
    for a in artifacts {
        let _ = writeln!(
            out,
            "── {} ──",
            if a.name.is_empty() {
                &a.artifact_id
            } else {
                &a.name
            }
        );
        let has_text = a.parts.iter().any(|p| p.as_text().is_some());
        for p in &a.parts {
            if has_text && matches!(p.content, Some(part::Content::Data(_))) {
                continue;
            }
            out.push_str(&part_text(p));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

fn part_text(p: &Part) -> String {
    match &p.content {
        Some(part::Content::Text(t)) => t.clone(),
        Some(part::Content::Data(d)) => {
            serde_json::to_string_pretty(&value_to_json(d)).unwrap_or_default()
        }
        Some(part::Content::Raw(b)) => format!(
            "[{} bytes{}{}]",
            b.len(),
            if p.media_type.is_empty() {
                String::new()
            } else {
                format!(", {}", p.media_type)
            },
            if p.filename.is_empty() {
                String::new()
            } else {
                format!(", {}", p.filename)
            }
        ),
        Some(part::Content::Url(u)) => format!("[link] {u}"),
        None => String::new(),
    }
}

/// The progress fraction (0.0 ..= 1.0) a WORKING update carries, if any.
pub fn progress(event: &StreamResponse) -> Option<f64> {
    match &event.payload {
        Some(stream_response::Payload::StatusUpdate(u)) => u
            .metadata
            .as_ref()?
            .fields
            .get(PROGRESS_KEY)
            .map(value_to_json)?
            .as_f64(),
        _ => None,
    }
}

/// One line describing a streamed event, e.g. `[WORKING] 40% chunk 2 of 5`.
pub fn event_line(event: &StreamResponse) -> String {
    let seq = sequence_of(event).map_or_else(String::new, |s| format!("#{s} "));
    match &event.payload {
        Some(stream_response::Payload::Task(t)) => {
            format!("{seq}[{}] task {}", state(t.state()), t.id)
        }
        Some(stream_response::Payload::StatusUpdate(u)) => {
            let s = u
                .status
                .as_ref()
                .and_then(|s| TaskState::try_from(s.state).ok())
                .unwrap_or_default();
            let msg = u
                .status
                .as_ref()
                .and_then(|s| s.message.as_ref())
                .map(|m| m.text())
                .unwrap_or_default();
            format!("{seq}[{}] {msg}", state(s)).trim_end().to_owned()
        }
        Some(stream_response::Payload::ArtifactUpdate(u)) => {
            let name = u.artifact.as_ref().map_or("", |a| a.name.as_str());
            let kind = if u.append {
                "artifact chunk"
            } else {
                "artifact"
            };
            let last = if u.last_chunk { "" } else { " …" };
            format!("{seq}[{kind}] {name}{last}")
        }
        Some(stream_response::Payload::Message(m)) => format!("{seq}[message] {}", m.text()),
        None => format!("{seq}[empty event]"),
    }
}

/// Protobuf JSON of any generated message, on one line.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("generated messages always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_render_every_part_kind() {
        let mut raw = Part::raw(vec![1, 2, 3], "image/png");
        raw.filename = "a.png".into();
        let a = Artifact {
            name: "out".into(),
            parts: vec![Part::data(serde_json::json!({"k": 1})), raw],
            ..Default::default()
        };
        assert_eq!(
            artifacts(&[a]),
            "── out ──\n{\n  \"k\": 1\n}\n[3 bytes, image/png, a.png]\n"
        );
        let b = Artifact {
            name: "report".into(),
            parts: vec![
                Part::text("# Title"),
                Part::data(serde_json::json!({"k": 1})),
            ],
            ..Default::default()
        };
        assert_eq!(
            artifacts(&[b]),
            "── report ──\n# Title\n",
            "data is for --json"
        );
    }
}
