//! The batched summarizing job and its report.

use std::ops::Range;

use serde_json::{Value, json};
use switchyard_textstats::{
    batch,
    job::{InputError, Job, Progress, Report},
    segment::{self, Segmented},
};

use crate::score::{self, Frequencies, METHOD};

/// Name of the artifact.
pub const ARTIFACT_NAME: &str = "summary";

/// An extractive summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Number of sentences of the input.
    pub sentences_in: usize,
    /// 0-based positions of the chosen sentences in the input, increasing.
    pub positions: Vec<usize>,
    /// The chosen sentences, in input order, with runs of whitespace collapsed to one space.
    pub sentences: Vec<String>,
    /// The score of each chosen sentence ([`score::score`]), aligned with `sentences`.
    pub scores: Vec<f64>,
}

/// Summarizes `text` in one go (the same result as running a [`SummarizeJob`]).
///
/// # Example
/// ```
/// let text = "Cats purr loudly tonight. Cats chase dogs outside. Rain falls.";
/// let s = switchyard_summarize::summary::summarize(text, Some(1)).unwrap();
/// // cats ×2 normalises to 1, every other term to ½: "Cats purr loudly tonight." scores
/// // (1 + ½ + ½ + ½) / 4 = ⅝, "Cats chase dogs outside." ⅝ too (the earlier wins the tie),
/// // "Rain falls." ½ and is too short to count as prose anyway.
/// assert_eq!(s.sentences, ["Cats purr loudly tonight."]);
/// assert_eq!(s.scores, [0.625]);
/// ```
///
/// # Errors
/// As [`SummarizeJob::new`].
pub fn summarize(text: &str, length: Option<usize>) -> Result<Summary, InputError> {
    let mut job = SummarizeJob::new(text, length)?;
    while job.step().is_some() {}
    Ok(job.summary())
}

/// Summarizes in two passes over batches of sentences ([`batch::plan`]): the first counts
/// content-word frequencies, the second scores sentences. One step is one batch of one pass.
#[derive(Debug, Clone)]
pub struct SummarizeJob<'a> {
    segmented: Segmented<'a>,
    batches: Vec<Range<usize>>,
    length: usize,
    terms: Vec<Vec<String>>,
    frequencies: Frequencies,
    scores: Vec<f64>,
    done: usize,
}

impl<'a> SummarizeJob<'a> {
    /// Segments `text` and plans the batches. `length` is the number of summary sentences
    /// (at most the number of input sentences); `None` means [`score::default_length`].
    ///
    /// # Errors
    /// [`InputError::Empty`] for empty or whitespace-only text, [`InputError::NoWords`] for
    /// text without words.
    pub fn new(text: &'a str, length: Option<usize>) -> Result<Self, InputError> {
        if text.trim().is_empty() {
            return Err(InputError::Empty);
        }
        let segmented = segment::segment(text);
        if segmented.words == 0 {
            return Err(InputError::NoWords);
        }
        let n = segmented.sentences.len();
        let words: Vec<usize> = segmented.sentences.iter().map(|s| s.words).collect();
        Ok(Self {
            batches: batch::plan(&words),
            length: length.unwrap_or_else(|| score::default_length(n)).min(n),
            terms: Vec::with_capacity(n),
            frequencies: Frequencies::default(),
            scores: Vec::with_capacity(n),
            segmented,
            done: 0,
        })
    }

    /// The summary from the scores computed so far (complete once every step is done): the
    /// best-scoring prose sentences ([`score::is_prose`]) first.
    pub fn summary(&self) -> Summary {
        let eligible: Vec<bool> = self
            .segmented
            .sentences
            .iter()
            .take(self.scores.len())
            .map(|s| score::is_prose(s.text, s.words))
            .collect();
        let positions = score::select_eligible(&self.scores, &eligible, self.length);
        let sentences = positions
            .iter()
            .map(|&i| collapse(self.segmented.sentences[i].text))
            .collect();
        Summary {
            sentences_in: self.segmented.sentences.len(),
            scores: positions.iter().map(|&i| self.scores[i]).collect(),
            positions,
            sentences,
        }
    }
}

impl Job for SummarizeJob<'_> {
    fn is_long(&self) -> bool {
        batch::is_long(self.segmented.words)
    }

    fn plan(&self) -> String {
        format!(
            "{} words in {} sentences: 2 passes of {} batches",
            self.segmented.words,
            self.segmented.sentences.len(),
            self.batches.len()
        )
    }

    fn step(&mut self) -> Option<Progress> {
        let batches = self.batches.len().max(1);
        let pass = self.done / batches;
        let range = self.batches.get(self.done % batches)?.clone();
        let verb = match pass {
            0 => {
                for sentence in &self.segmented.sentences[range.clone()] {
                    let terms = score::content_terms(sentence.text);
                    self.frequencies.add(&terms);
                    self.terms.push(terms);
                }
                "counted the content words of"
            }
            1 => {
                for terms in &self.terms[range.clone()] {
                    self.scores.push(score::score(terms, &self.frequencies));
                }
                "scored"
            }
            _ => return None,
        };
        self.done += 1;
        Some(Progress {
            fraction: self.done as f64 / (2 * batches) as f64,
            message: format!(
                "{verb} sentences {}–{} of {} (pass {} of 2)",
                range.start + 1,
                range.end,
                self.segmented.sentences.len(),
                pass + 1
            ),
        })
    }

    fn finish(self) -> Report {
        report(&self.summary())
    }
}

/// The report: artifact [`ARTIFACT_NAME`] with the summary as a Markdown paragraph and a data
/// object `{method, sentences_in, sentences_out, summary, scores, positions}`.
pub fn report(summary: &Summary) -> Report {
    let markdown = format!(
        "## Summary\n\n{}\n\n*{} of {} sentences; method: {METHOD}.*\n",
        summary.sentences.join(" "),
        summary.sentences.len(),
        summary.sentences_in,
    );
    Report {
        name: ARTIFACT_NAME.into(),
        description: "An extractive summary: the highest-scoring sentences of the text, in \
                      their original order."
            .into(),
        markdown,
        data: data(summary),
    }
}

fn data(summary: &Summary) -> Value {
    json!({
        "method": METHOD,
        "sentences_in": summary.sentences_in,
        "sentences_out": summary.sentences.len(),
        "summary": summary.sentences,
        "scores": summary.scores,
        "positions": summary.positions,
    })
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content words by hand: cats great pets | cats sleep lot | dogs bark | cats dogs play |
    /// weather nice. Frequencies: cats 3 (max), dogs 2, others 1. Scores: (1 + 1/3 + 1/3)/3 =
    /// 5/9, 5/9, (2/3 + 1/3)/2 = 1/2, (1 + 2/3 + 1/3)/3 = 2/3, (1/3 + 1/3)/2 = 1/3.
    const TEXT: &str = "Cats are great pets. Cats sleep a lot.\n\nDogs bark. Cats and dogs \
                        play.\n\nThe weather is nice.";

    #[test]
    fn default_length_picks_the_best_sentence() {
        // 5 sentences → ⌈5/5⌉ = 1 summary sentence: the 2/3 one.
        let s = summarize(TEXT, None).expect("summary");
        assert_eq!(s.sentences_in, 5);
        assert_eq!(s.positions, [3]);
        assert_eq!(s.sentences, ["Cats and dogs play."]);
        assert!((s.scores[0] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn requested_length_keeps_original_order() {
        // Top 3: 2/3 (#3), then the 5/9 tie (#0, #1).
        let s = summarize(TEXT, Some(3)).expect("summary");
        assert_eq!(s.positions, [0, 1, 3]);
        assert_eq!(
            s.sentences,
            [
                "Cats are great pets.",
                "Cats sleep a lot.",
                "Cats and dogs play."
            ]
        );
        // More than there are: every sentence.
        assert_eq!(
            summarize(TEXT, Some(50)).expect("summary").positions.len(),
            5
        );
    }

    #[test]
    fn report_names_the_method() {
        let r = report(&summarize(TEXT, Some(2)).expect("summary"));
        assert_eq!(r.name, "summary");
        assert_eq!(
            r.markdown,
            format!(
                "## Summary\n\nCats are great pets. Cats and dogs play.\n\n*2 of 5 sentences; \
                 method: {METHOD}.*\n"
            )
        );
        assert_eq!(r.data["method"], METHOD);
        assert_eq!(r.data["sentences_in"], 5);
        assert_eq!(r.data["sentences_out"], 2);
        assert_eq!(r.data["summary"][1], "Cats and dogs play.");
        assert_eq!(r.data["positions"], json!([0, 3]));
        assert_eq!(r.data["scores"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn edge_cases() {
        assert_eq!(summarize("  \n ", None).unwrap_err(), InputError::Empty);
        assert_eq!(summarize("...", None).unwrap_err(), InputError::NoWords);
        // One word, no punctuation: the whole text; no content word scores 0.
        let s = summarize("Hello", None).expect("summary");
        assert_eq!(
            (s.sentences, s.scores),
            (vec!["Hello".to_owned()], vec![1.0])
        );
        let s = summarize("It is.", None).expect("summary");
        assert_eq!(s.scores, [0.0]);
        // Unicode terms: naïve ×2 (max), café, idea, rain ×1 → scores (1 + 1/2)/2 = 3/4 twice
        // and 1/2: the tie goes to the first sentence.
        let s = summarize("Naïve café.\n\nA naïve\n   idea. Rain.", Some(1)).expect("summary");
        assert_eq!(s.sentences, ["Naïve café."]);
        // naïve ×3, idea ×2, café ×1 → (1 + 1/3)/2 = 2/3, then (1 + 2/3)/2 = 5/6 twice: the
        // second sentence wins, its inner line break and indent collapsed to one space.
        let s =
            summarize("Naïve café.\n\nA naïve\n   idea. Naïve idea!", Some(1)).expect("summary");
        assert_eq!(s.sentences, ["A naïve idea."]);
    }

    #[test]
    fn long_input_runs_in_two_passes_of_batches() {
        let paragraph = "Cats are great pets. Cats sleep a lot. Dogs bark. Cats and dogs play. \
                         The weather is nice.";
        // 4 + 4 + 2 + 4 + 4 = 18 words a paragraph; 130 paragraphs = 2,340 words, 650 sentences.
        let text = vec![paragraph; 130].join("\n\n");
        let mut job = SummarizeJob::new(&text, None).expect("job");
        assert!(job.is_long());
        // ⌈2340/500⌉ = 5 batches of about ⌈2340/5⌉ = 468 words.
        assert_eq!(
            job.plan(),
            "2340 words in 650 sentences: 2 passes of 5 batches"
        );
        let mut progress = Vec::new();
        while let Some(p) = job.step() {
            progress.push(p);
        }
        assert_eq!(progress.len(), 10);
        assert_eq!(progress[4].fraction, 0.5);
        assert_eq!(progress[9].fraction, 1.0);
        assert!(progress[5].message.starts_with("scored sentences 1–"));
        let s = job.summary();
        // 650 sentences → 5 (the cap); the 2/3 sentences of the first five paragraphs.
        assert_eq!(s.positions, [3, 8, 13, 18, 23]);
        assert_eq!(s, summarize(&text, None).expect("summary"));
    }
}
