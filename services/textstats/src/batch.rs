//! Batches: how a long input is cut into units of work for progress updates.

use std::ops::Range;

/// Inputs with more words than this are *long*: the text agents process them in batches,
/// publish a WORKING progress update per batch, and stream their artifact in chunks. At the
/// ~238 words per minute of silent reading (Brysbaert 2019), 2,000 words is ~8 minutes of text.
pub const LONG_INPUT_WORDS: usize = 2_000;

/// Largest mean size of a long input's batches, in words.
pub const BATCH_WORDS: usize = 500;

/// Whether an input of `words` words is long ([`LONG_INPUT_WORDS`]).
pub fn is_long(words: usize) -> bool {
    words > LONG_INPUT_WORDS
}

/// Plans batches over sentences, given each sentence's word count: consecutive, non-empty
/// ranges of sentence indices that cover `0..sentence_words.len()` in order.
///
/// A short input is one batch. A long input gets `n = ⌈words / BATCH_WORDS⌉` (≥ 5) batches of
/// about `⌈words / n⌉` words: a batch ends after the sentence that brings it to that size.
/// Sentences are never split, so very long sentences make fewer, larger batches. No sentences,
/// no batches.
pub fn plan(sentence_words: &[usize]) -> Vec<Range<usize>> {
    let total: usize = sentence_words.iter().sum();
    if sentence_words.is_empty() {
        return Vec::new();
    }
    if !is_long(total) {
        return std::iter::once(0..sentence_words.len()).collect();
    }
    let target = total.div_ceil(total.div_ceil(BATCH_WORDS));
    let mut batches = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, &w) in sentence_words.iter().enumerate() {
        size += w;
        if size >= target {
            batches.push(start..i + 1);
            start = i + 1;
            size = 0;
        }
    }
    if start < sentence_words.len() {
        batches.push(start..sentence_words.len());
    }
    batches
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init, reason = "one batch is one range")]
mod tests {
    use super::*;

    fn sizes(words: &[usize], batches: &[Range<usize>]) -> Vec<usize> {
        batches
            .iter()
            .map(|r| words[r.clone()].iter().sum())
            .collect()
    }

    #[test]
    fn short_input_is_one_batch() {
        assert!(plan(&[]).is_empty());
        assert_eq!(plan(&[3, 4]), [0..2]);
        // Exactly the threshold is still short.
        assert_eq!(plan(&[1_000, 1_000]), [0..2]);
    }

    #[test]
    fn long_input_is_cut_into_balanced_batches() {
        // 2,001 one-word sentences: n = ⌈2001/500⌉ = 5, target = ⌈2001/5⌉ = 401.
        let words = vec![1; 2_001];
        let batches = plan(&words);
        assert_eq!(sizes(&words, &batches), [401, 401, 401, 401, 397]);
        assert_eq!(batches[0], 0..401);
        assert_eq!(batches[4], 1_604..2_001);
    }

    #[test]
    fn batches_cover_every_sentence_once_in_order() {
        // 10 sentences of 300 words: 3,000 words, n = 6, target 500 → two sentences a batch.
        let words = vec![300; 10];
        let batches = plan(&words);
        assert_eq!(batches, [0..2, 2..4, 4..6, 6..8, 8..10]);
        let mixed = [5, 900, 12, 40, 1_200, 7, 7, 300, 2];
        let batches = plan(&mixed);
        let flat: Vec<usize> = batches.iter().flat_map(Clone::clone).collect();
        assert_eq!(flat, (0..mixed.len()).collect::<Vec<_>>());
        // 2,473 words: n = 5, target 495: [5+900], [12+40+1200], [7+7+300+2].
        assert_eq!(sizes(&mixed, &batches), [905, 1_252, 316]);
    }

    #[test]
    fn a_huge_sentence_is_not_split() {
        assert_eq!(plan(&[5_000]), [0..1]);
        assert_eq!(plan(&[10, 5_000, 10]), [0..2, 2..3]);
    }
}
