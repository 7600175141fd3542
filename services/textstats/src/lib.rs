//! The `textstats` agent: counts and readability of a plain or Markdown text.
//!
//! For the text parts of a message (Markdown read as its prose, see [`input`]) it returns one
//! artifact, `textstats`, with a Markdown table and a JSON object: word, sentence, paragraph, syllable and character counts, averages,
//! reading time at 238 words per minute (Brysbaert 2019), Flesch Reading Ease (Flesch 1948)
//! and Flesch–Kincaid Grade Level (Kincaid et al. 1975). Output is deterministic.
//!
//! Inputs over [`batch::LONG_INPUT_WORDS`] words are counted in batches with WORKING progress
//! updates, and the artifact is streamed in two chunks (Markdown, then data). Empty input, or
//! input without words, is REJECTED.
//!
//! Structure:
//! - [`segment`], [`syllable`]: what a paragraph, sentence, word and syllable are;
//! - [`input`], [`markdown`]: which text of a message is analysed: plain text as it is,
//!   Markdown (`text/markdown`, a `.md` file, or detected) as its prose, skipping code blocks,
//!   tables, HTML and link targets, with headings as paragraphs of their own;
//! - [`stats`]: the counts and formulas, computed by a batched [`stats::StatsJob`];
//! - [`render`]: the Markdown table and the JSON object;
//! - [`batch`], [`job`], [`stopwords`]: the shared machinery of the text agents. The
//!   `summarize` and `keywords` agents depend on this crate for them, so that the three agents
//!   agree on what a sentence and a word are.
#![warn(missing_docs)]

pub mod batch;
pub mod input;
pub mod job;
pub mod markdown;
pub mod render;
pub mod segment;
pub mod stats;
pub mod stopwords;
pub mod syllable;

use switchyard::{
    Agent, AgentError, TaskContext, TaskEvents,
    card::{self, skill},
    pb::a2a::AgentCard,
};

/// The textstats agent.
#[derive(Debug, Clone, Default)]
pub struct TextStats;

#[tonic::async_trait]
impl Agent for TextStats {
    fn card(&self) -> AgentCard {
        card::builder(
            "textstats",
            "Counts words, sentences, paragraphs, syllables and characters of a plain or Markdown \
             text (its prose: code blocks, tables and HTML skipped), and \
             computes reading time (238 words per minute, Brysbaert 2019), Flesch Reading Ease \
             and Flesch–Kincaid Grade Level. Returns a Markdown table and a JSON object. Texts \
             over 2,000 words are processed in batches with progress updates.",
        )
        .input_modes(["text/plain", "text/markdown"])
        .output_modes(["text/markdown", "application/json"])
        .skill(skill(
            "textstats",
            "Text statistics and readability",
            "Word, sentence, paragraph, syllable and character counts; average words per \
             sentence and syllables per word; reading time in seconds; Flesch Reading Ease = \
             206.835 − 1.015 × (words / sentences) − 84.6 × (syllables / words); Flesch–Kincaid \
             Grade Level = 0.39 × (words / sentences) + 11.8 × (syllables / words) − 15.59. \
             Returns the artifact \"textstats\".",
            ["text", "statistics", "readability", "flesch"],
            [
                "The cat sat on the mat. It was a sunny day. We went to the park!",
                "How readable is this paragraph for a ninth grader?",
            ],
        ))
        .build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let input = input::Input::read(ctx.message());
        let job = stats::StatsJob::new(&input.text)?;
        job::drive(input.annotate(job), &ctx, &events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_is_honest_about_modes_and_skills() {
        let card = TextStats.card();
        assert_eq!(card.name, "textstats");
        assert!(!card.description.is_empty());
        assert_eq!(card.default_input_modes, ["text/plain", "text/markdown"]);
        assert_eq!(
            card.default_output_modes,
            ["text/markdown", "application/json"]
        );
        assert_eq!(card.skills.len(), 1);
        assert_eq!(card.skills[0].id, "textstats");
        assert!(!card.skills[0].examples.is_empty());
    }
}
