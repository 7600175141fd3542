//! The `summarize` agent: an extractive summary of a plain or Markdown text.
//!
//! It keeps the text's highest-scoring sentences, in their original order, by
//! frequency-based sentence scoring in the style of Luhn (1958); see [`score`] for the method.
//! The result is one artifact, `summary`, with the summary as Markdown and a JSON object
//! `{method, sentences_in, sentences_out, summary, scores, positions}`. Output is
//! deterministic.
//!
//! Message metadata `sentences` (an integer ≥ 1) sets the summary length; the default is
//! `max(1, ⌈sentences / 5⌉)`, at most 5. Inputs over
//! [`LONG_INPUT_WORDS`](switchyard_textstats::batch::LONG_INPUT_WORDS) words are processed in
//! batches with WORKING progress updates, and the artifact is streamed in two chunks (Markdown,
//! then data). Empty input, input without words, or a bad `sentences` value is REJECTED.
//!
//! Sentences and words are those of [`switchyard_textstats::segment`]; Markdown input is read
//! as its prose ([`switchyard_textstats::input`]), and headings are never summary sentences.
#![warn(missing_docs)]

pub mod score;
pub mod summary;

use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents,
    card::{self, skill},
    pb::a2a::AgentCard,
};
use switchyard_textstats::{input::Input, job};

/// Message metadata key of the requested summary length (an integer ≥ 1).
pub const LENGTH_KEY: &str = "sentences";

/// The summarize agent.
#[derive(Debug, Clone, Default)]
pub struct Summarize;

#[tonic::async_trait]
impl Agent for Summarize {
    fn card(&self) -> AgentCard {
        card::builder(
            "summarize",
            "Summarizes a plain or Markdown text (its prose: code blocks, tables and HTML skipped) by extracting its most representative sentences: \
             frequency-based sentence scoring (Luhn 1958 style), stop words excluded, best \
             sentences returned in their original order. Returns Markdown and a JSON object \
             with the scores. Texts over 2,000 words are processed in batches with progress \
             updates.",
        )
        .input_modes(["text/plain", "text/markdown"])
        .output_modes(["text/markdown", "application/json"])
        .skill(skill(
            "summarize",
            "Extractive summary",
            "Scores every sentence by the mean normalized frequency of its content words and \
             returns the top k in original order (artifact \"summary\"). k defaults to \
             max(1, ceil(sentences / 5)), at most 5; message metadata {\"sentences\": k} \
             overrides it.",
            ["text", "summarization", "extractive", "luhn"],
            [
                "Paste an article to get its key sentences.",
                "A long report (metadata: {\"sentences\": 3})",
            ],
        ))
        .build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let length = job::positive_count(LENGTH_KEY, ctx.message_metadata(LENGTH_KEY))?;
        let input = Input::read(ctx.message());
        let job = summary::SummarizeJob::new(&input.text, length)?;
        job::drive(input.annotate(job), &ctx, &events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_is_honest_about_modes_and_skills() {
        let card = Summarize.card();
        assert_eq!(card.name, "summarize");
        assert!(!card.description.is_empty());
        assert_eq!(card.default_input_modes, ["text/plain", "text/markdown"]);
        assert_eq!(
            card.default_output_modes,
            ["text/markdown", "application/json"]
        );
        assert_eq!(card.skills.len(), 1);
        assert_eq!(card.skills[0].id, "summarize");
        assert!(!card.skills[0].examples.is_empty());
    }
}
