//! An English stop-word list: function words (articles, pronouns, prepositions, conjunctions,
//! auxiliaries and their contractions, common adverbs of degree and time) that carry little
//! topic on their own. Summarize (Luhn scoring) and keywords (RAKE) skip them.
//!
//! Written for these agents (228 words), in the spirit of the classic lists of Fox (1989) and
//! the SMART system, much shorter than either. Words are matched after
//! [`term`](crate::segment::term) normalisation, so `It's` is `it` and `Don’t` is `don't`.

/// The stop words, lower case, sorted by byte value (for binary search).
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "across", "after", "again", "against", "all", "almost", "along",
    "already", "also", "although", "always", "am", "among", "an", "and", "another", "any", "are",
    "aren't", "around", "as", "at", "be", "because", "been", "before", "behind", "being", "below",
    "beneath", "beside", "besides", "between", "beyond", "both", "but", "by", "can", "can't",
    "cannot", "could", "couldn't", "did", "didn't", "do", "does", "doesn't", "doing", "don't",
    "down", "during", "e.g", "each", "either", "else", "enough", "etc", "even", "ever", "every",
    "few", "for", "from", "further", "had", "hadn't", "has", "hasn't", "have", "haven't",
    "having", "he", "he'd", "he'll", "her", "here", "hers", "herself", "him", "himself", "his",
    "how", "however", "i", "i'd", "i'll", "i'm", "i've", "i.e", "if", "in", "into", "is", "isn't",
    "it", "its", "itself", "just", "least", "less", "let", "many", "may", "me", "might", "more",
    "most", "much", "must", "mustn't", "my", "myself", "neither", "no", "nor", "not", "now", "of",
    "off", "often", "on", "once", "one", "only", "onto", "or", "other", "others", "otherwise",
    "our", "ours", "ourselves", "out", "over", "own", "per", "quite", "rather", "same", "shall",
    "shan't", "she", "she'd", "she'll", "should", "shouldn't", "since", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "therefore",
    "these", "they", "they'd", "they'll", "they're", "they've", "this", "those", "though",
    "through", "throughout", "thus", "to", "too", "toward", "towards", "under", "until", "unto",
    "up", "upon", "us", "very", "via", "was", "wasn't", "we", "we'd", "we'll", "we're", "we've",
    "were", "weren't", "what", "whatever", "when", "whenever", "where", "whereas", "wherever",
    "whether", "which", "while", "who", "whoever", "whom", "whose", "why", "will", "with",
    "within", "without", "won't", "would", "wouldn't", "yet", "you", "you'd", "you'll", "you're",
    "you've", "your", "yours", "yourself", "yourselves",
];

/// Whether `term` (already normalised by [`term`](crate::segment::term)) is a stop word.
pub fn is_stop_word(term: &str) -> bool {
    STOP_WORDS.binary_search(&term).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::term;

    #[test]
    fn list_is_sorted_unique_lower_case() {
        assert_eq!(STOP_WORDS.len(), 228);
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOP_WORDS.iter().all(|w| w.to_lowercase() == *w));
    }

    #[test]
    fn matches_normalised_terms() {
        for word in ["The", "It's", "Don’t", "e.g.", "yourselves"] {
            let t = term(word).expect("a term");
            assert!(is_stop_word(&t), "{word}");
        }
        for word in ["keyword", "naïve", "system"] {
            assert!(!is_stop_word(word), "{word}");
        }
    }
}
