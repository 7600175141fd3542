//! The `keywords` agent: the key phrases of a plain or Markdown text, by RAKE.
//!
//! It extracts candidate phrases (runs of content words between stop words and punctuation)
//! and ranks them by RAKE score (Rose et al. 2010); see [`rake`] for the method. The result is
//! one artifact, `keywords`, with a numbered Markdown list and a JSON object
//! `{method, candidates, top, keywords: [{keyword, score, occurrences}]}`. Output is
//! deterministic.
//!
//! Message metadata `top` (an integer ≥ 1) sets the number of keywords; the default is
//! [`extract::DEFAULT_TOP`]. Inputs over
//! [`LONG_INPUT_WORDS`](switchyard_textstats::batch::LONG_INPUT_WORDS) words are processed in
//! batches with WORKING progress updates, and the artifact is streamed in two chunks (Markdown,
//! then data). Empty input, input without words, or a bad `top` value is REJECTED.
//!
//! Sentences, words and stop words are those of [`switchyard_textstats`]; Markdown input is read
//! as its prose ([`switchyard_textstats::input`]): no keyword comes from a code block, a table
//! or an inline code span.
#![warn(missing_docs)]

pub mod extract;
pub mod rake;

use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents,
    card::{self, skill},
    pb::a2a::AgentCard,
};
use switchyard_textstats::{
    input::{Format, Input},
    job,
};

/// Message metadata key of the number of keywords wanted (an integer ≥ 1).
pub const TOP_KEY: &str = "top";

/// The keywords agent.
#[derive(Debug, Clone, Default)]
pub struct Keywords;

#[tonic::async_trait]
impl Agent for Keywords {
    fn card(&self) -> AgentCard {
        card::builder(
            "keywords",
            "Extracts the key phrases of a plain or Markdown text (its prose: code blocks, tables and HTML skipped) with RAKE (Rapid Automatic Keyword \
             Extraction, Rose et al. 2010): candidate phrases between stop words and \
             punctuation, scored by word degree / frequency. Returns a ranked Markdown list and \
             a JSON object with the scores. Texts over 2,000 words are processed in batches \
             with progress updates.",
        )
        .input_modes(["text/plain", "text/markdown"])
        .output_modes(["text/markdown", "application/json"])
        .skill(skill(
            "keywords",
            "Keyword extraction (RAKE)",
            "Returns the top N key phrases with their RAKE scores and occurrence counts \
             (artifact \"keywords\"). N defaults to 10; message metadata {\"top\": N} \
             overrides it.",
            ["text", "keywords", "keyphrases", "rake"],
            [
                "Paste an abstract to get its key phrases.",
                "A long article (metadata: {\"top\": 5})",
            ],
        ))
        .build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let top = job::positive_count(TOP_KEY, ctx.message_metadata(TOP_KEY))?;
        let input = Input::read(ctx.message());
        let mut job = extract::KeywordsJob::new(&input.text, top)?;
        if input.format == Format::Markdown {
            job = job.markdown_prose();
        }
        job::drive(input.annotate(job), &ctx, &events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_is_honest_about_modes_and_skills() {
        let card = Keywords.card();
        assert_eq!(card.name, "keywords");
        assert!(!card.description.is_empty());
        assert_eq!(card.default_input_modes, ["text/plain", "text/markdown"]);
        assert_eq!(
            card.default_output_modes,
            ["text/markdown", "application/json"]
        );
        assert_eq!(card.skills.len(), 1);
        assert_eq!(card.skills[0].id, "keywords");
        assert!(!card.skills[0].examples.is_empty());
    }
}
