//! Text statistics and readability scores: the counts, the formulas, and the batched job.
//!
//! Sources of the constants:
//! - Flesch Reading Ease: Flesch, R. (1948), "A new readability yardstick", *Journal of Applied
//!   Psychology* 32(3), 221–233.
//! - Flesch–Kincaid Grade Level: Kincaid, J. P., Fishburne, R. P., Rogers, R. L. & Chissom,
//!   B. S. (1975), *Derivation of new readability formulas … for Navy enlisted personnel*,
//!   Research Branch Report 8-75.
//! - Reading speed: Brysbaert, M. (2019), "How many words do we read per minute? A review and
//!   meta-analysis of reading rate", *Journal of Memory and Language* 109, 104047: silent
//!   reading of English non-fiction averages 238 words per minute.

use std::ops::Range;

use crate::{
    batch,
    job::{InputError, Job, Progress, Report},
    segment::{self, Segmented},
    syllable::syllables,
};

/// Silent reading speed for the reading time, in words per minute (Brysbaert 2019).
pub const READING_WORDS_PER_MINUTE: f64 = 238.0;

/// The Flesch Reading Ease formula (Flesch 1948), as shown in the output.
pub const FLESCH_READING_EASE: &str =
    "206.835 − 1.015 × (words / sentences) − 84.6 × (syllables / words)";

/// The Flesch–Kincaid Grade Level formula (Kincaid et al. 1975), as shown in the output.
pub const FLESCH_KINCAID_GRADE_LEVEL: &str =
    "0.39 × (words / sentences) + 11.8 × (syllables / words) − 15.59";

/// The reading-time formula, as shown in the output.
pub const READING_TIME: &str = "words / 238 × 60 seconds (238 words per minute, Brysbaert 2019)";

/// The raw counts of a text; see [`segment`] and
/// [`syllable`](crate::syllable) for what is counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Words.
    pub words: usize,
    /// Sentences.
    pub sentences: usize,
    /// Paragraphs.
    pub paragraphs: usize,
    /// Syllables, summed over the words.
    pub syllables: usize,
    /// Characters (Unicode scalar values, not grapheme clusters) other than line breaks
    /// (`\n`, `\r`); spaces and tabs count.
    pub characters: usize,
    /// Characters that are not whitespace.
    pub characters_no_spaces: usize,
}

/// Counts and the measures derived from them. Ratios with a zero denominator are 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The raw counts.
    pub counts: Counts,
    /// words / sentences.
    pub average_words_per_sentence: f64,
    /// syllables / words.
    pub average_syllables_per_word: f64,
    /// Reading time in seconds: [`READING_TIME`].
    pub reading_time_seconds: f64,
    /// [`FLESCH_READING_EASE`]: about 0 (very hard) to 100 (very easy); can leave that range.
    pub flesch_reading_ease: f64,
    /// [`FLESCH_KINCAID_GRADE_LEVEL`]: a US school grade; can be negative.
    pub flesch_kincaid_grade_level: f64,
}

impl Stats {
    /// Derives the measures from the counts.
    pub fn from_counts(counts: Counts) -> Self {
        let wps = ratio(counts.words, counts.sentences);
        let spw = ratio(counts.syllables, counts.words);
        Self {
            counts,
            average_words_per_sentence: wps,
            average_syllables_per_word: spw,
            reading_time_seconds: counts.words as f64 / READING_WORDS_PER_MINUTE * 60.0,
            flesch_reading_ease: 206.835 - 1.015 * wps - 84.6 * spw,
            flesch_kincaid_grade_level: 0.39 * wps + 11.8 * spw - 15.59,
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The statistics of `text` in one go (the same result as running a [`StatsJob`]).
///
/// # Example
/// ```
/// let s = switchyard_textstats::stats::analyze("The cat sat. It ran. We hid!").unwrap();
/// assert_eq!((s.counts.words, s.counts.sentences, s.counts.syllables), (7, 3, 7));
/// // 206.835 − 1.015 × 7/3 − 84.6 × 7/7 = 119.8667
/// assert_eq!(format!("{:.2}", s.flesch_reading_ease), "119.87");
/// ```
///
/// # Errors
/// As [`StatsJob::new`].
pub fn analyze(text: &str) -> Result<Stats, InputError> {
    let mut job = StatsJob::new(text)?;
    while job.step().is_some() {}
    Ok(job.stats())
}

/// Computes [`Stats`] in batches of sentences ([`batch::plan`]).
#[derive(Debug, Clone)]
pub struct StatsJob<'a> {
    segmented: Segmented<'a>,
    batches: Vec<Range<usize>>,
    done: usize,
    counts: Counts,
}

impl<'a> StatsJob<'a> {
    /// Segments `text` and plans the batches.
    ///
    /// # Errors
    /// [`InputError::Empty`] for empty or whitespace-only text, [`InputError::NoWords`] for
    /// text without words.
    pub fn new(text: &'a str) -> Result<Self, InputError> {
        if text.trim().is_empty() {
            return Err(InputError::Empty);
        }
        let segmented = segment::segment(text);
        if segmented.words == 0 {
            return Err(InputError::NoWords);
        }
        let sentence_words: Vec<usize> = segmented.sentences.iter().map(|s| s.words).collect();
        let counts = Counts {
            sentences: segmented.sentences.len(),
            paragraphs: segmented.paragraphs,
            characters: text.chars().filter(|c| !matches!(c, '\n' | '\r')).count(),
            characters_no_spaces: text.chars().filter(|c| !c.is_whitespace()).count(),
            ..Counts::default()
        };
        Ok(Self {
            batches: batch::plan(&sentence_words),
            segmented,
            done: 0,
            counts,
        })
    }

    /// The statistics of the batches done so far.
    pub fn stats(&self) -> Stats {
        Stats::from_counts(self.counts)
    }

    /// The planned batches (ranges of sentence indices).
    pub fn batches(&self) -> &[Range<usize>] {
        &self.batches
    }
}

impl Job for StatsJob<'_> {
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
        for sentence in &self.segmented.sentences[range] {
            self.counts.words += sentence.words;
            self.counts.syllables += segment::words(sentence.text)
                .map(|w| syllables(w) as usize)
                .sum::<usize>();
        }
        self.done += 1;
        Some(Progress {
            fraction: self.done as f64 / self.batches.len() as f64,
            message: format!(
                "counted {} of {} words (batch {} of {})",
                self.counts.words,
                self.segmented.words,
                self.done,
                self.batches.len()
            ),
        })
    }

    fn finish(self) -> Report {
        crate::render::report(&self.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn three_sentences_by_hand() {
        // Words 6 + 5 + 5 = 16. Syllables: "The cat sat on the mat" 6; "It was a sun-ny day"
        // 1+1+1+2+1 = 6 ("ay" is one group); "We went to the park" 5 → 17. Characters: 64,
        // of which 15 spaces → 49.
        let s = analyze("The cat sat on the mat. It was a sunny day. We went to the park!")
            .expect("stats");
        let expected = Counts {
            words: 16,
            sentences: 3,
            paragraphs: 1,
            syllables: 17,
            characters: 64,
            characters_no_spaces: 49,
        };
        assert_eq!(s.counts, expected);
        // FRE = 206.835 − 1.015 × 16/3 − 84.6 × 17/16 = 206.835 − 5.41333 − 89.8875 = 111.53
        assert_eq!(format!("{:.2}", s.flesch_reading_ease), "111.53");
        // FKGL = 0.39 × 16/3 + 11.8 × 17/16 − 15.59 = 2.08 + 12.5375 − 15.59 = −0.9725
        assert_eq!(format!("{:.2}", s.flesch_kincaid_grade_level), "-0.97");
        assert!(close(s.average_words_per_sentence, 16.0 / 3.0));
        assert!(close(s.average_syllables_per_word, 1.0625));
        // 16 words at 238 wpm = 16 / 238 × 60 = 4.0336 s.
        assert_eq!(format!("{:.4}", s.reading_time_seconds), "4.0336");
    }

    #[test]
    fn paragraphs_and_unicode() {
        // Paragraph 1: na-ïve 2, ca-fé 2, own-ers 2, smile 1 (silent e) = 7.
        // Paragraph 2 (no final punctuation, one sentence): they 1, serve 1, cof-fee 2 = 4.
        let s = analyze("Naïve café owners smile.\n\nThey serve coffee").expect("stats");
        assert_eq!(
            (s.counts.words, s.counts.sentences, s.counts.paragraphs),
            (7, 2, 2)
        );
        assert_eq!(s.counts.syllables, 11);
        // 24 + 17 characters; the two line breaks are not counted; 3 + 2 spaces.
        assert_eq!(s.counts.characters, 41);
        assert_eq!(s.counts.characters_no_spaces, 36);
        let fre = 206.835 - 1.015 * (7.0 / 2.0) - 84.6 * (11.0 / 7.0);
        assert!(close(s.flesch_reading_ease, fre));
        assert_eq!(format!("{:.2}", s.flesch_reading_ease), "70.34");
    }

    #[test]
    fn one_word_without_punctuation() {
        let s = analyze("Hello").expect("stats");
        assert_eq!(
            (s.counts.words, s.counts.sentences, s.counts.syllables),
            (1, 1, 2)
        );
        // FRE = 206.835 − 1.015 − 169.2 = 36.62; FKGL = 0.39 + 23.6 − 15.59 = 8.40.
        assert_eq!(format!("{:.2}", s.flesch_reading_ease), "36.62");
        assert_eq!(format!("{:.2}", s.flesch_kincaid_grade_level), "8.40");
    }

    #[test]
    fn empty_and_wordless_input_is_refused() {
        assert_eq!(analyze("").unwrap_err(), InputError::Empty);
        assert_eq!(analyze(" \n\t ").unwrap_err(), InputError::Empty);
        assert_eq!(analyze("— ... !").unwrap_err(), InputError::NoWords);
    }

    #[test]
    fn zero_denominators_give_zero() {
        let s = Stats::from_counts(Counts::default());
        assert_eq!(s.average_words_per_sentence, 0.0);
        assert_eq!(s.average_syllables_per_word, 0.0);
        assert_eq!(s.reading_time_seconds, 0.0);
    }

    #[test]
    fn long_input_reports_progress_and_matches_one_shot() {
        // 200 paragraphs of "The cat sat on the mat. It was a sunny day." = 11 words each.
        let text = vec!["The cat sat on the mat. It was a sunny day."; 200].join("\n\n");
        let mut job = StatsJob::new(&text).expect("job");
        assert!(job.is_long());
        assert_eq!(job.plan(), "2200 words in 400 sentences, 5 batches");
        let mut progress = Vec::new();
        while let Some(p) = job.step() {
            progress.push(p);
        }
        assert_eq!(progress.len(), 5);
        assert_eq!(
            progress[0].message,
            "counted 440 of 2200 words (batch 1 of 5)"
        );
        assert_eq!(progress[4].fraction, 1.0);
        assert!(progress.windows(2).all(|w| w[0].fraction < w[1].fraction));
        let s = job.stats();
        // 200 × (6 + 5) words, 200 × (6 + 6) syllables, 200 × 2 sentences.
        assert_eq!(s.counts.words, 2_200);
        assert_eq!(s.counts.syllables, 2_400);
        assert_eq!((s.counts.sentences, s.counts.paragraphs), (400, 200));
        assert_eq!(s, analyze(&text).expect("stats"));
        assert_eq!(job.finish().chunks(true).len(), 2);
    }
}
