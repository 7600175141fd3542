//! Segmentation of plain text into paragraphs, sentences and words.
//!
//! The definitions here are shared by the three text agents (textstats, summarize, keywords) so
//! that they agree on what a word and a sentence are:
//!
//! - **Paragraph**: a maximal run of non-blank lines (lines are split at `\n`; a blank line is
//!   empty or whitespace only) holding at least one word. Runs without words (e.g. `---`) are
//!   not paragraphs.
//! - **Sentence**: a run of whitespace-delimited tokens inside one paragraph, ended by a token
//!   whose last character is `.`, `!`, `?` or `…` (possibly followed by closing quotes or
//!   brackets, see [`CLOSERS`]), or by the end of the paragraph. A paragraph without terminal
//!   punctuation (a heading, a list item) is therefore one sentence. A token ending in `.` does
//!   not end a sentence when it is one of the [`ABBREVIATIONS`] (`Dr.`, `e.g.`, …); other
//!   abbreviations and initials (`U.S.`, `J. R. R.`) do end one: abbreviation handling is
//!   deliberately minimal. Decimal points (`3.14`) never end a sentence, as the `.` is not the
//!   token's last character. Sentences without words (a lone `...`) are dropped.
//! - **Word**: a whitespace-delimited token holding at least one letter or digit
//!   ([`char::is_alphanumeric`], so any script). `don't`, `well-known`, `3.14` and `e.g.` are
//!   one word each; a lone `—` or `-` is none.

/// Characters that may follow a sentence terminator inside the same token (`"Stop!"`, `(end.)`).
pub const CLOSERS: &[char] = &['"', '\'', ')', ']', '}', '”', '’', '»'];

/// Characters that end a sentence when they end a token (before any [`CLOSERS`]).
pub const TERMINATORS: &[char] = &['.', '!', '?', '…'];

/// Abbreviations (lower case, without the final `.`) after which a `.` does not end a sentence.
pub const ABBREVIATIONS: &[&str] = &[
    "cf", "dr", "e.g", "i.e", "jr", "mr", "mrs", "ms", "prof", "sr", "st", "vs",
];

/// Characters that may open a token before an abbreviation (`(e.g.`).
const OPENERS: &[char] = &['"', '\'', '(', '[', '{', '“', '‘', '«'];

/// One sentence of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sentence<'a> {
    /// The sentence as it appears in the input (a slice of it; inner line breaks kept).
    pub text: &'a str,
    /// The 0-based index of its paragraph.
    pub paragraph: usize,
    /// Its number of words.
    pub words: usize,
}

/// A text split into sentences, with paragraph and word totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmented<'a> {
    /// Every sentence, in order.
    pub sentences: Vec<Sentence<'a>>,
    /// Number of paragraphs.
    pub paragraphs: usize,
    /// Number of words (the sum over the sentences).
    pub words: usize,
}

/// Splits `text` into paragraphs and sentences; see the module docs for the definitions.
///
/// # Example
/// ```
/// let seg = switchyard_textstats::segment::segment("Hi there. Dr. Who?\n\nA heading");
/// let texts: Vec<_> = seg.sentences.iter().map(|s| s.text).collect();
/// assert_eq!(texts, ["Hi there.", "Dr. Who?", "A heading"]);
/// assert_eq!((seg.paragraphs, seg.words), (2, 6));
/// ```
pub fn segment(text: &str) -> Segmented<'_> {
    let mut sentences = Vec::new();
    let mut paragraphs = 0;
    for paragraph in paragraphs_of(text) {
        let found: Vec<&str> = sentences_of(paragraph);
        if found.is_empty() {
            continue;
        }
        for s in found {
            sentences.push(Sentence {
                text: s,
                paragraph: paragraphs,
                words: words(s).count(),
            });
        }
        paragraphs += 1;
    }
    let words = sentences.iter().map(|s| s.words).sum();
    Segmented {
        sentences,
        paragraphs,
        words,
    }
}

/// The non-blank line runs of `text`, trimmed (they may still hold no words).
pub fn paragraphs_of(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut offset = 0;
    for line in text.split('\n') {
        let line_end = offset + line.len();
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(text[s..end].trim());
            }
        } else {
            start.get_or_insert(offset);
            end = line_end;
        }
        offset = line_end + 1;
    }
    if let Some(s) = start {
        out.push(text[s..end].trim());
    }
    out
}

/// The sentences of one paragraph (slices of it), dropping those without words.
pub fn sentences_of(paragraph: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (pos, token) in tokens(paragraph) {
        let s = *start.get_or_insert(pos);
        if ends_sentence(token) {
            push_if_words(&mut out, &paragraph[s..pos + token.len()]);
            start = None;
        }
    }
    if let Some(s) = start {
        push_if_words(&mut out, paragraph[s..].trim_end());
    }
    out
}

/// The words of `text`: whitespace-delimited tokens with at least one letter or digit.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
        .filter(|t| t.chars().any(char::is_alphanumeric))
}

/// A word normalised as a term for counting: surrounding non-alphanumeric characters trimmed,
/// lower-cased, `’` written `'`, a trailing possessive `'s` removed. `None` when the result
/// holds no letter (numbers and punctuation are not terms).
///
/// `"Model’s,"` → `model`; `"(Well-known"` → `well-known`; `"2010"` → `None`.
pub fn term(word: &str) -> Option<String> {
    let core = word.trim_matches(|c: char| !c.is_alphanumeric());
    let mut t = core.to_lowercase().replace('’', "'");
    if t.len() > 2 && t.ends_with("'s") {
        t.truncate(t.len() - 2);
    }
    t.chars().any(char::is_alphabetic).then_some(t)
}

/// Whitespace-delimited tokens with their byte offsets.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(b)) => {
                out.push((b, &s[b..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, &s[b..]));
    }
    out
}

fn ends_sentence(token: &str) -> bool {
    let core = token.trim_end_matches(CLOSERS);
    match core.chars().last() {
        Some('.') => !is_abbreviation(core),
        Some(c) => TERMINATORS.contains(&c),
        None => false,
    }
}

fn is_abbreviation(core: &str) -> bool {
    let stem = core.trim_end_matches('.').trim_start_matches(OPENERS);
    ABBREVIATIONS.contains(&stem.to_lowercase().as_str())
}

fn push_if_words<'a>(out: &mut Vec<&'a str>, sentence: &'a str) {
    if words(sentence).next().is_some() {
        out.push(sentence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_terminators_followed_by_space_or_end() {
        let s = sentences_of("Hello world. How are you? Fine! Pi is 3.14 today");
        assert_eq!(
            s,
            ["Hello world.", "How are you?", "Fine!", "Pi is 3.14 today"]
        );
    }

    #[test]
    fn closers_abbreviations_and_wordless_runs() {
        let s = sentences_of("He said \"Stop!\" Then Dr. Who left (e.g. fast). ... Done…");
        assert_eq!(
            s,
            [
                "He said \"Stop!\"",
                "Then Dr. Who left (e.g. fast).",
                "Done…"
            ]
        );
        // Documented limitation: other abbreviations end a sentence.
        assert_eq!(sentences_of("The U.S. army").len(), 2);
    }

    #[test]
    fn paragraphs_are_runs_of_non_blank_lines() {
        let text = "  First line\nsame paragraph.\n \t\r\nSecond.\n\n\n---\n\nThird";
        assert_eq!(
            paragraphs_of(text),
            ["First line\nsame paragraph.", "Second.", "---", "Third"]
        );
        let seg = segment(text);
        // `---` has no words: not a paragraph.
        assert_eq!(seg.paragraphs, 3);
        assert_eq!(seg.sentences.len(), 3);
        assert_eq!(seg.sentences[2].paragraph, 2);
        assert_eq!(seg.words, 4 + 1 + 1);
    }

    #[test]
    fn a_paragraph_break_ends_a_sentence_without_punctuation() {
        let seg = segment("A heading\n\nBody text here");
        let texts: Vec<_> = seg.sentences.iter().map(|s| s.text).collect();
        assert_eq!(texts, ["A heading", "Body text here"]);
        assert_eq!(seg.paragraphs, 2);
    }

    #[test]
    fn words_need_a_letter_or_digit() {
        let w: Vec<_> = words("don't — well-known 3.14 e.g. - naïve café").collect();
        assert_eq!(w, ["don't", "well-known", "3.14", "e.g.", "naïve", "café"]);
    }

    #[test]
    fn empty_and_blank_text_have_nothing() {
        for text in ["", "   \n\t\n", "— ... !"] {
            let seg = segment(text);
            assert_eq!((seg.paragraphs, seg.words), (0, 0), "{text:?}");
            assert!(seg.sentences.is_empty());
        }
    }

    #[test]
    fn terms_are_normalised() {
        assert_eq!(term("Model’s,").as_deref(), Some("model"));
        assert_eq!(term("(Well-known").as_deref(), Some("well-known"));
        assert_eq!(term("Café!").as_deref(), Some("café"));
        assert_eq!(term("it's").as_deref(), Some("it"));
        assert_eq!(term("2010"), None);
        assert_eq!(term("—"), None);
    }
}
