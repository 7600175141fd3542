//! The batched keyword-extraction job and its report.

use std::ops::Range;

use serde_json::{Value, json};
use switchyard_textstats::{
    batch,
    job::{InputError, Job, Progress, Report},
    segment::{self, Segmented},
    stopwords::is_stop_word,
};

use crate::rake::{self, Keyword, METHOD, Rake};

/// Name of the artifact.
pub const ARTIFACT_NAME: &str = "keywords";

/// Number of keywords returned when the caller does not ask for a number.
pub const DEFAULT_TOP: usize = 10;

/// The result of an extraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// Number of distinct candidate phrases found.
    pub candidates: usize,
    /// Number of keywords asked for.
    pub top: usize,
    /// The best candidates, best first (at most `top`).
    pub keywords: Vec<Keyword>,
}

/// Extracts keywords from `text` in one go (the same result as running a [`KeywordsJob`]).
///
/// # Example
/// ```
/// let e = switchyard_keywords::extract::extract("Fast keyword extraction is fun.", None).unwrap();
/// // One candidate of three words: each word scores deg 3 / freq 1 = 3, the phrase 9.
/// assert_eq!(e.keywords[0].phrase, "fast keyword extraction");
/// assert_eq!(e.keywords[0].score, 9.0);
/// ```
///
/// # Errors
/// As [`KeywordsJob::new`].
pub fn extract(text: &str, top: Option<usize>) -> Result<Extraction, InputError> {
    let mut job = KeywordsJob::new(text, top)?;
    while job.step().is_some() {}
    Ok(job.extraction())
}

/// Finds RAKE candidates in batches of sentences ([`batch::plan`]), one batch per step, with
/// the stop words of [`switchyard_textstats::stopwords`]; ranks them at the end.
#[derive(Debug, Clone)]
pub struct KeywordsJob<'a> {
    segmented: Segmented<'a>,
    batches: Vec<Range<usize>>,
    top: usize,
    rake: Rake,
    done: usize,
    prose: bool,
}

impl<'a> KeywordsJob<'a> {
    /// Segments `text` and plans the batches; `top` keywords are returned ([`DEFAULT_TOP`]
    /// when `None`).
    ///
    /// # Errors
    /// [`InputError::Empty`] for empty or whitespace-only text, [`InputError::NoWords`] for
    /// text without words.
    pub fn new(text: &'a str, top: Option<usize>) -> Result<Self, InputError> {
        if text.trim().is_empty() {
            return Err(InputError::Empty);
        }
        let segmented = segment::segment(text);
        if segmented.words == 0 {
            return Err(InputError::NoWords);
        }
        let words: Vec<usize> = segmented.sentences.iter().map(|s| s.words).collect();
        Ok(Self {
            batches: batch::plan(&words),
            top: top.unwrap_or(DEFAULT_TOP),
            segmented,
            rake: Rake::default(),
            done: 0,
            prose: false,
        })
    }

    /// Reads the text as Markdown prose ([`switchyard_textstats::markdown::prose`]): inline
    /// code spans give no keywords ([`rake::prose_candidates`]).
    pub fn markdown_prose(mut self) -> Self {
        self.prose = true;
        self
    }

    /// The keywords of the batches done so far (complete once every step is done).
    pub fn extraction(&self) -> Extraction {
        Extraction {
            candidates: self.rake.distinct(),
            top: self.top,
            keywords: self.rake.keywords(self.top),
        }
    }
}

impl Job for KeywordsJob<'_> {
    fn is_long(&self) -> bool {
        batch::is_long(self.segmented.words)
    }

    fn plan(&self) -> String {
        format!(
            "{} words in {} sentences, {} batches",
            self.segmented.words,
            self.segmented.sentences.len(),
            self.batches.len()
        )
    }

    fn step(&mut self) -> Option<Progress> {
        let range = self.batches.get(self.done)?.clone();
        for sentence in &self.segmented.sentences[range.clone()] {
            let phrases = if self.prose {
                rake::prose_candidates(sentence.text, is_stop_word)
            } else {
                rake::candidates(sentence.text, is_stop_word)
            };
            for phrase in phrases {
                self.rake.add(phrase);
            }
        }
        self.done += 1;
        Some(Progress {
            fraction: self.done as f64 / self.batches.len() as f64,
            message: format!(
                "found {} candidate phrases in sentences 1–{} of {} (batch {} of {})",
                self.rake.distinct(),
                range.end,
                self.segmented.sentences.len(),
                self.done,
                self.batches.len()
            ),
        })
    }

    fn finish(self) -> Report {
        report(&self.extraction())
    }
}

/// The report: artifact [`ARTIFACT_NAME`] with a numbered Markdown list and a data object
/// `{method, candidates, top, keywords: [{keyword, score, occurrences}]}`.
pub fn report(e: &Extraction) -> Report {
    let mut markdown = String::from("## Keywords\n\n");
    if e.keywords.is_empty() {
        markdown.push_str("No keywords: every word is a stop word or a number.\n");
    }
    for (i, k) in e.keywords.iter().enumerate() {
        markdown.push_str(&format!(
            "{}. **{}** — {:.2} ({}×)\n",
            i + 1,
            k.phrase,
            k.score,
            k.occurrences
        ));
    }
    markdown.push_str(&format!(
        "\n*{} of {} candidate phrases; method: {METHOD}.*\n",
        e.keywords.len(),
        e.candidates
    ));
    Report {
        name: ARTIFACT_NAME.into(),
        description: "Key phrases of the text, ranked by RAKE score.".into(),
        markdown,
        data: data(e),
    }
}

fn data(e: &Extraction) -> Value {
    let keywords: Vec<Value> = e
        .keywords
        .iter()
        .map(|k| json!({"keyword": k.phrase, "score": k.score, "occurrences": k.occurrences}))
        .collect();
    json!({
        "method": METHOD,
        "candidates": e.candidates,
        "top": e.top,
        "keywords": keywords,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Candidates: [keyword extraction] [useful] [automatic keyword extraction] [fast].
    /// freq/deg: keyword 2/5, extraction 2/5, useful 1/1, automatic 1/3, fast 1/1 → word
    /// scores 2.5, 2.5, 1, 3, 1 → automatic keyword extraction 3 + 2.5 + 2.5 = 8, keyword
    /// extraction 5, useful 1, fast 1 (tie: first occurrence first).
    const TEXT: &str = "Keyword extraction is useful. Automatic keyword extraction is fast.";

    #[test]
    fn ranks_by_hand_computed_scores() {
        let e = extract(TEXT, None).expect("keywords");
        assert_eq!((e.candidates, e.top), (4, DEFAULT_TOP));
        let got: Vec<(&str, f64, usize)> = e
            .keywords
            .iter()
            .map(|k| (k.phrase.as_str(), k.score, k.occurrences))
            .collect();
        assert_eq!(
            got,
            [
                ("automatic keyword extraction", 8.0, 1),
                ("keyword extraction", 5.0, 1),
                ("useful", 1.0, 1),
                ("fast", 1.0, 1),
            ]
        );
        assert_eq!(extract(TEXT, Some(2)).expect("keywords").keywords.len(), 2);
    }

    #[test]
    fn report_lists_keywords_and_names_the_method() {
        let r = report(&extract(TEXT, Some(2)).expect("keywords"));
        assert_eq!(r.name, "keywords");
        assert_eq!(
            r.markdown,
            format!(
                "## Keywords\n\n1. **automatic keyword extraction** — 8.00 (1×)\n\
                 2. **keyword extraction** — 5.00 (1×)\n\n*2 of 4 candidate phrases; method: \
                 {METHOD}.*\n"
            )
        );
        assert_eq!(
            r.data,
            json!({
                "method": METHOD,
                "candidates": 4,
                "top": 2,
                "keywords": [
                    {"keyword": "automatic keyword extraction", "score": 8.0, "occurrences": 1},
                    {"keyword": "keyword extraction", "score": 5.0, "occurrences": 1},
                ],
            })
        );
    }

    #[test]
    fn edge_cases() {
        assert_eq!(extract("", None).unwrap_err(), InputError::Empty);
        assert_eq!(extract("\t\n", None).unwrap_err(), InputError::Empty);
        assert_eq!(extract("?!", None).unwrap_err(), InputError::NoWords);
        // One word, no punctuation.
        let e = extract("Hello", None).expect("keywords");
        assert_eq!(
            (e.keywords[0].phrase.as_str(), e.keywords[0].score),
            ("hello", 1.0)
        );
        // Only stop words: no keywords, still a report.
        let e = extract("It is what it is", None).expect("keywords");
        assert!(e.keywords.is_empty());
        assert!(report(&e).markdown.contains("No keywords"));
        // Unicode, across paragraphs: naïve café ×2 → naïve 2/4, café 2/4 → 2 + 2 = 4.
        let e = extract("Naïve café\n\nNaïve café!", None).expect("keywords");
        assert_eq!(
            e.keywords,
            [Keyword {
                phrase: "naïve café".into(),
                score: 4.0,
                occurrences: 2
            }]
        );
    }

    #[test]
    fn long_input_reports_progress_per_batch() {
        // 4 + 5 = 9 words a paragraph; 250 paragraphs = 2,250 words, 500 sentences →
        // ⌈2250/500⌉ = 5 batches of ⌈2250/5⌉ = 450 words = 100 sentences.
        let text = vec![TEXT; 250].join("\n\n");
        let mut job = KeywordsJob::new(&text, None).expect("job");
        assert!(job.is_long());
        assert_eq!(job.plan(), "2250 words in 500 sentences, 5 batches");
        let mut progress = Vec::new();
        while let Some(p) = job.step() {
            progress.push(p);
        }
        assert_eq!(progress.len(), 5);
        assert_eq!(
            progress[0].message,
            "found 4 candidate phrases in sentences 1–100 of 500 (batch 1 of 5)"
        );
        assert_eq!(progress[4].fraction, 1.0);
        let e = job.extraction();
        // Every count ×250: the same degree/frequency ratios, so the same scores.
        assert_eq!(e.keywords[0].phrase, "automatic keyword extraction");
        assert_eq!((e.keywords[0].score, e.keywords[0].occurrences), (8.0, 250));
        assert_eq!(e, extract(&text, None).expect("keywords"));
    }
}
