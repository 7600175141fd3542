//! The shape every text agent shares: a [`Job`] that works in batches, a [`Report`] artifact,
//! and [`drive`], which runs a job for a task (progress, cancellation, chunked artifact).

use serde_json::Value;
use switchyard::{
    AgentError, TaskContext, TaskEvents,
    pb::a2a::{Artifact, Part},
};

/// Why a text agent declines its input; the agent REJECTS the task with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The message holds no text, or only whitespace.
    #[error("the message has no text to analyse: send the text as a text part")]
    Empty,
    /// The text holds no word (no letter or digit), e.g. only punctuation.
    #[error("the text has no words (runs of characters with a letter or digit) to analyse")]
    NoWords,
    /// A message metadata option is not a positive integer.
    #[error("message metadata \"{key}\" must be a positive integer, got {value}")]
    BadOption {
        /// The metadata key.
        key: &'static str,
        /// The value sent, as JSON.
        value: String,
    },
}

impl From<InputError> for AgentError {
    fn from(e: InputError) -> Self {
        AgentError::rejected(e.to_string())
    }
}

/// Reads an optional positive-integer option from message metadata (`None` when absent).
///
/// # Errors
/// [`InputError::BadOption`] for anything but an integer ≥ 1 (`0`, `2.5`, `"3"`, `null`).
pub fn positive_count(
    key: &'static str,
    value: Option<Value>,
) -> Result<Option<usize>, InputError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n >= 1 => Ok(Some(n)),
        _ => Err(InputError::BadOption {
            key,
            value: value.to_string(),
        }),
    }
}

/// One progress report of a job: `fraction` done (0.0 ..= 1.0) and what was done.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Fraction of the work done, 0.0 ..= 1.0.
    pub fraction: f64,
    /// What was done, e.g. `"counted 802 of 2401 words (batch 2 of 5)"`.
    pub message: String,
}

/// A text agent's work on one input, in steps (one batch of sentences each).
pub trait Job {
    /// Whether the input is long ([`batch::is_long`](crate::batch::is_long)): the work is then
    /// reported with progress updates and the artifact streamed in chunks.
    fn is_long(&self) -> bool;

    /// What is about to be done, e.g. `"2401 words in 124 sentences, 5 batches"`.
    fn plan(&self) -> String;

    /// Does the next step; `None` once all are done.
    fn step(&mut self) -> Option<Progress>;

    /// The result, once every step is done.
    fn finish(self) -> Report;
}

/// A text agent's result: one artifact with a Markdown part and a JSON data part.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Artifact name, e.g. `"textstats"`.
    pub name: String,
    /// Artifact description.
    pub description: String,
    /// Human-readable result (`text/markdown`).
    pub markdown: String,
    /// Machine-readable result (`application/json`): an object with stable snake_case keys.
    pub data: Value,
}

/// One artifact update to publish (see [`TaskEvents::artifact_chunk`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The artifact (same `artifact_id` in every chunk of a report).
    pub artifact: Artifact,
    /// Whether the parts append to the artifact's earlier chunks.
    pub append: bool,
    /// Whether this is the artifact's final chunk.
    pub last_chunk: bool,
}

impl Report {
    /// The report as artifact updates: unchunked, one update with both parts; chunked, the
    /// Markdown part (`append = false`) then the data part (`append = true`, `last_chunk`).
    pub fn chunks(self, chunked: bool) -> Vec<Chunk> {
        let markdown = markdown_part(self.markdown);
        let data = Part::data(self.data);
        let mut first = Artifact::new(self.name, vec![markdown]);
        first.description = self.description;
        if !chunked {
            first.parts.push(data);
            return vec![Chunk {
                artifact: first,
                append: false,
                last_chunk: true,
            }];
        }
        let second = Artifact {
            artifact_id: first.artifact_id.clone(),
            name: first.name.clone(),
            parts: vec![data],
            ..Default::default()
        };
        vec![
            Chunk {
                artifact: first,
                append: false,
                last_chunk: false,
            },
            Chunk {
                artifact: second,
                append: true,
                last_chunk: true,
            },
        ]
    }
}

/// A text part with media type `text/markdown`.
pub fn markdown_part(markdown: String) -> Part {
    Part {
        media_type: "text/markdown".into(),
        ..Part::text(markdown)
    }
}

/// Runs `job` for a task: for a long input, a progress update with the plan, then one per
/// step, then the artifact in chunks; for a short input, just the whole artifact. Checks for
/// cancellation before every step and every chunk.
///
/// Each published update commits with a checkpoint counting the updates published so far
/// (`{"published": n}`): a task resumed after a restart runs the (deterministic) job again but
/// publishes only the updates after the checkpoint, so its clients see no progress update and
/// no artifact chunk twice (issue 13 item 8).
///
/// # Errors
/// [`AgentError::Canceled`] once the task is canceled; [`AgentError::Events`] when publishing
/// fails.
pub async fn drive(
    mut job: impl Job,
    ctx: &TaskContext,
    events: &TaskEvents,
) -> Result<(), AgentError> {
    let mut out = Published {
        skip: ctx
            .checkpoint_json::<Value>()
            .ok()
            .flatten()
            .and_then(|c| c.get(PUBLISHED).and_then(Value::as_u64))
            .unwrap_or(0),
        n: 0,
        events,
    };
    let long = job.is_long();
    if long {
        out.progress(0.0, job.plan()).await?;
    }
    loop {
        if ctx.is_cancelled() {
            return Err(AgentError::Canceled);
        }
        let Some(progress) = job.step() else { break };
        if long {
            out.progress(progress.fraction, progress.message).await?;
        }
    }
    for chunk in job.finish().chunks(long) {
        if ctx.is_cancelled() {
            return Err(AgentError::Canceled);
        }
        out.chunk(chunk).await?;
    }
    Ok(())
}

/// The checkpoint's field: updates published (and committed) so far.
const PUBLISHED: &str = "published";

/// Publishes a job's updates in order, skipping the first `skip` (published by an interrupted
/// execution) and checkpointing after each.
struct Published<'a> {
    skip: u64,
    n: u64,
    events: &'a TaskEvents,
}

impl Published<'_> {
    /// Whether the next update is new (not published before the checkpoint).
    fn next_is_new(&mut self) -> bool {
        self.n += 1;
        self.n > self.skip
    }

    async fn progress(&mut self, fraction: f64, message: String) -> Result<(), AgentError> {
        if self.next_is_new() {
            self.checkpointed()?.progress(fraction, message).await?;
        }
        Ok(())
    }

    async fn chunk(&mut self, chunk: Chunk) -> Result<(), AgentError> {
        if self.next_is_new() {
            self.checkpointed()?
                .artifact_chunk(chunk.artifact, chunk.append, chunk.last_chunk)
                .await?;
        }
        Ok(())
    }

    /// A publisher whose next event commits with the checkpoint that counts it.
    fn checkpointed(&self) -> Result<TaskEvents, AgentError> {
        Ok(self
            .events
            .with_checkpoint_json(&serde_json::json!({ PUBLISHED: self.n }))?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report() -> Report {
        Report {
            name: "r".into(),
            description: "d".into(),
            markdown: "# r".into(),
            data: json!({"n": 1}),
        }
    }

    #[test]
    fn unchunked_report_is_one_whole_artifact() {
        let chunks = report().chunks(false);
        assert_eq!(chunks.len(), 1);
        let c = &chunks[0];
        assert!(!c.append && c.last_chunk);
        assert_eq!(c.artifact.name, "r");
        assert_eq!(c.artifact.description, "d");
        assert_eq!(c.artifact.parts.len(), 2);
        assert_eq!(c.artifact.parts[0].media_type, "text/markdown");
        assert_eq!(c.artifact.parts[0].as_text(), Some("# r"));
        assert_eq!(c.artifact.parts[1].media_type, "application/json");
    }

    #[test]
    fn chunked_report_streams_markdown_then_data() {
        let chunks = report().chunks(true);
        let flags: Vec<_> = chunks.iter().map(|c| (c.append, c.last_chunk)).collect();
        assert_eq!(flags, [(false, false), (true, true)]);
        assert!(!chunks[0].artifact.artifact_id.is_empty());
        assert_eq!(
            chunks[0].artifact.artifact_id,
            chunks[1].artifact.artifact_id
        );
        assert_eq!(chunks[0].artifact.parts[0].as_text(), Some("# r"));
        assert_eq!(chunks[1].artifact.parts[0].media_type, "application/json");
        assert_eq!(chunks[1].artifact.name, "r");
    }

    #[test]
    fn positive_count_accepts_only_integers_from_one() {
        assert_eq!(positive_count("k", None), Ok(None));
        assert_eq!(positive_count("k", Some(json!(3))), Ok(Some(3)));
        for bad in [json!(0), json!(-2), json!(2.5), json!("3"), json!(null)] {
            let err = positive_count("k", Some(bad.clone())).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("message metadata \"k\" must be a positive integer, got {bad}")
            );
        }
    }

    #[test]
    fn input_errors_reject() {
        let e: AgentError = InputError::Empty.into();
        assert!(matches!(e, AgentError::Rejected(m) if m.contains("no text")));
    }
}
