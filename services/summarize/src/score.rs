//! Frequency-based sentence scoring in the style of Luhn (1958), "The automatic creation of
//! literature abstracts", *IBM Journal of Research and Development* 2(2), 159–165.
//!
//! 1. The content words of a sentence are its words normalised as terms
//!    ([`term`](switchyard_textstats::segment::term)) that are not stop words
//!    ([`is_stop_word`](switchyard_textstats::stopwords::is_stop_word)).
//! 2. A term's frequency is its number of occurrences among the document's content words; its
//!    normalised frequency is that divided by the highest frequency (so 0 < f ≤ 1).
//! 3. A sentence's score is the sum of the normalised frequencies of its content words
//!    (every occurrence) divided by its number of content words; 0 without content words.
//! 4. The k best sentences are kept (ties: the earlier sentence first) and returned in their
//!    original order.
//!
//! Unlike Luhn, there is no stemming and no clustering of significant words within a sentence.

use std::collections::HashMap;

use switchyard_textstats::{segment, stopwords};

/// The method, as named in the output.
pub const METHOD: &str = "frequency-based sentence scoring (Luhn 1958 style): sentence score = \
                          sum of normalized content-word frequencies / number of content words; \
                          stop words excluded; complete prose sentences preferred over headings \
                          and fragments; top-k sentences returned in original order";

/// Without a requested length, one summary sentence per this many input sentences …
pub const SENTENCES_PER_SUMMARY_SENTENCE: usize = 5;

/// … and at most this many summary sentences.
pub const MAX_DEFAULT_SENTENCES: usize = 5;

/// The content words of a sentence, in order, normalised (see the module docs).
pub fn content_terms(sentence: &str) -> Vec<String> {
    segment::words(sentence)
        .filter_map(segment::term)
        .filter(|t| !stopwords::is_stop_word(t))
        .collect()
}

/// Content-word frequencies of a document, built up sentence by sentence.
#[derive(Debug, Clone, Default)]
pub struct Frequencies {
    counts: HashMap<String, usize>,
    max: usize,
}

impl Frequencies {
    /// Counts one more occurrence of every term in `terms`.
    pub fn add(&mut self, terms: &[String]) {
        for t in terms {
            let n = self.counts.entry(t.clone()).or_default();
            *n += 1;
            self.max = self.max.max(*n);
        }
    }

    /// Occurrences of `term`.
    pub fn count(&self, term: &str) -> usize {
        self.counts.get(term).copied().unwrap_or(0)
    }

    /// `count(term) / highest count`, in 0.0 ..= 1.0 (0 for an empty document).
    pub fn normalized(&self, term: &str) -> f64 {
        if self.max == 0 {
            return 0.0;
        }
        self.count(term) as f64 / self.max as f64
    }
}

/// A sentence's score: the mean normalised frequency of its content words (0 without any).
pub fn score(terms: &[String], frequencies: &Frequencies) -> f64 {
    if terms.is_empty() {
        return 0.0;
    }
    let sum: f64 = terms.iter().map(|t| frequencies.normalized(t)).sum();
    sum / terms.len() as f64
}

/// The default summary length for `sentences` input sentences:
/// `max(1, ⌈sentences / 5⌉)`, at most 5.
pub fn default_length(sentences: usize) -> usize {
    sentences
        .div_ceil(SENTENCES_PER_SUMMARY_SENTENCE)
        .clamp(1, MAX_DEFAULT_SENTENCES)
}

/// Fewest words of a sentence that is eligible on its own merit (see [`is_prose`]).
pub const MIN_PROSE_WORDS: usize = 4;

/// Whether a sentence reads as prose: it ends with `.`, `!`, `?` or `…` (closing quotes or
/// brackets may follow) and has at least [`MIN_PROSE_WORDS`] words. Markdown headings, table
/// rows, list fragments and code lines usually do not; they are chosen only when too few
/// prose sentences exist.
pub fn is_prose(sentence: &str, words: usize) -> bool {
    let end = sentence
        .trim_end()
        .trim_end_matches(['"', '\'', ')', ']', '”', '’', '»', '*', '_']);
    words >= MIN_PROSE_WORDS && end.ends_with(['.', '!', '?', '…']) && !end.starts_with(['#', '|'])
}

/// Indices of the `k` best sentences, in increasing order: prose sentences (`eligible`) first
/// by score, then the others by score (ties: lower index first).
pub fn select_eligible(scores: &[f64], eligible: &[bool], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        eligible[b]
            .cmp(&eligible[a])
            .then(scores[b].total_cmp(&scores[a]))
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order.sort_unstable();
    order
}

/// Indices of the `k` best scores (ties: lower index first), in increasing order.
pub fn select(scores: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(k);
    order.sort_unstable();
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn content_terms_skip_stop_words_numbers_and_punctuation() {
        assert_eq!(
            content_terms("The cat’s 3 toys — and it's Naïve!"),
            strings(&["cat", "toys", "naïve"])
        );
        assert!(content_terms("It is what it is.").is_empty());
    }

    #[test]
    fn prose_is_preferred_over_headings_and_table_rows() {
        assert!(is_prose("The runtime does the rest.", 5));
        assert!(is_prose("Is it \"done?\"", 4));
        assert!(!is_prose("## The gateway", 2));
        assert!(!is_prose("| front | route |", 4));
        assert!(!is_prose("Every agent is a service", 5));
        assert!(!is_prose("Too short.", 2));
        // The heading scores best, but two prose sentences exist for k = 2.
        let picked = select_eligible(&[0.9, 0.5, 0.1, 0.7], &[false, true, true, false], 2);
        assert_eq!(picked, [1, 2]);
        // Only one is prose: the best other sentence fills the second place.
        let picked = select_eligible(&[0.9, 0.5, 0.1, 0.7], &[false, true, false, false], 2);
        assert_eq!(picked, [0, 1]);
    }

    #[test]
    fn scores_by_hand() {
        // cats ×3 (max), dogs ×2, the rest ×1 → normalised 1, 2/3, 1/3.
        let sentences = [
            strings(&["cats", "great", "pets"]),
            strings(&["cats", "sleep", "lot"]),
            strings(&["dogs", "bark"]),
            strings(&["cats", "dogs", "play"]),
            strings(&[]),
        ];
        let mut f = Frequencies::default();
        sentences.iter().for_each(|s| f.add(s));
        assert_eq!(
            (f.count("cats"), f.count("dogs"), f.count("owl")),
            (3, 2, 0)
        );
        let scores: Vec<f64> = sentences.iter().map(|s| score(s, &f)).collect();
        let expected = [5.0 / 9.0, 5.0 / 9.0, 0.5, 2.0 / 3.0, 0.0];
        for (got, want) in scores.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(select(&scores, 1), [3]);
        // The tie between sentences 0 and 1 goes to the earlier one.
        assert_eq!(select(&scores, 2), [0, 3]);
        assert_eq!(select(&scores, 3), [0, 1, 3]);
        assert_eq!(select(&scores, 9), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn default_length_is_a_fifth_capped_at_five() {
        let cases = [
            (0, 1),
            (1, 1),
            (5, 1),
            (6, 2),
            (11, 3),
            (25, 5),
            (26, 5),
            (1_000, 5),
        ];
        for (n, k) in cases {
            assert_eq!(default_length(n), k, "{n} sentences");
        }
    }

    #[test]
    fn empty_document_scores_zero() {
        let f = Frequencies::default();
        assert_eq!(f.normalized("x"), 0.0);
        assert_eq!(score(&strings(&["x"]), &f), 0.0);
    }
}
