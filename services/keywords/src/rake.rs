//! RAKE, Rapid Automatic Keyword Extraction: Rose, S., Engel, D., Cramer, N. & Cowley, W.
//! (2010), "Automatic keyword extraction from individual documents", in *Text Mining:
//! Applications and Theory*, Wiley, ch. 1.
//!
//! 1. Candidates: each sentence is split into words (letters, digits, apostrophes, hyphens,
//!    and `.` between two letters or digits, so `e.g` and `U.S` stay whole). Punctuation ends
//!    a phrase; so does a word that is a stop word or holds no letter (a number). A candidate
//!    is a maximal run of the remaining words, normalised by
//!    [`term`](switchyard_textstats::segment::term).
//! 2. For every word `w` over all candidate occurrences: `freq(w)` is its number of
//!    occurrences, `deg(w)` the sum of the lengths (in words) of the candidates it occurs in,
//!    itself included (its degree in the word co-occurrence graph).
//! 3. `score(w) = deg(w) / freq(w)`; a candidate's score is the sum of its words' scores.
//! 4. Distinct candidates are ranked by score, ties by first occurrence.
//!
//! Unlike the paper, the number of keywords is chosen by the caller (not a third of the
//! words) and adjoining keywords (candidates joined by a stop word, `axis of evil`) are not
//! formed.

use std::collections::HashMap;

use switchyard_textstats::segment;

/// The method, as named in the output.
pub const METHOD: &str = "RAKE (Rapid Automatic Keyword Extraction, Rose et al. 2010): \
                          candidates are runs of content words between stop words and \
                          punctuation; word score = degree / frequency over the candidates; \
                          keyword score = sum of its word scores";

/// The candidate phrases of one sentence, in order, each a list of normalised words.
pub fn candidates(sentence: &str, is_stop: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    candidates_in(sentence, is_stop, false)
}

/// As [`candidates`], but for Markdown prose: an inline code span (`` `cargo run` ``) ends a
/// phrase and gives none, so commands and identifiers quoted in the prose are not keywords.
pub fn prose_candidates(sentence: &str, is_stop: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    candidates_in(sentence, is_stop, true)
}

fn candidates_in(
    sentence: &str,
    is_stop: impl Fn(&str) -> bool,
    skip_code: bool,
) -> Vec<Vec<String>> {
    let chars: Vec<char> = sentence.chars().collect();
    let mut out = Vec::new();
    let mut phrase = Vec::new();
    let mut word = String::new();
    let mut in_code = false;
    for i in 0..=chars.len() {
        let c = chars.get(i).copied().unwrap_or(' ');
        if skip_code && c == '`' {
            in_code = !in_code;
            word.clear();
            end_phrase(&mut out, &mut phrase);
            continue;
        }
        if in_code {
            continue;
        }
        let inner_dot = c == '.'
            && i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || matches!(c, '\'' | '’' | '-') || inner_dot {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            match segment::term(&word).filter(|t| !is_stop(t)) {
                Some(t) => phrase.push(t),
                None => end_phrase(&mut out, &mut phrase),
            }
            word.clear();
        }
        if !c.is_whitespace() {
            end_phrase(&mut out, &mut phrase);
        }
    }
    end_phrase(&mut out, &mut phrase);
    out
}

fn end_phrase(out: &mut Vec<Vec<String>>, phrase: &mut Vec<String>) {
    if !phrase.is_empty() {
        out.push(std::mem::take(phrase));
    }
}

/// One ranked keyword.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    /// The candidate's words, joined by single spaces (lower case).
    pub phrase: String,
    /// Its RAKE score (sum of `deg(w) / freq(w)` over its words).
    pub score: f64,
    /// How often it occurs as a candidate.
    pub occurrences: usize,
}

#[derive(Debug, Clone)]
struct Candidate {
    words: Vec<String>,
    occurrences: usize,
    first: usize,
}

/// The word co-occurrence statistics of a document, built up candidate by candidate.
#[derive(Debug, Clone, Default)]
pub struct Rake {
    /// `(freq, deg)` per word.
    words: HashMap<String, (usize, usize)>,
    candidates: HashMap<String, Candidate>,
    seen: usize,
}

impl Rake {
    /// Adds one occurrence of a candidate phrase.
    pub fn add(&mut self, phrase: Vec<String>) {
        for w in &phrase {
            let (freq, deg) = self.words.entry(w.clone()).or_default();
            *freq += 1;
            *deg += phrase.len();
        }
        let first = self.seen;
        self.seen += 1;
        self.candidates
            .entry(phrase.join(" "))
            .or_insert(Candidate {
                words: phrase,
                occurrences: 0,
                first,
            })
            .occurrences += 1;
    }

    /// Number of distinct candidates.
    pub fn distinct(&self) -> usize {
        self.candidates.len()
    }

    /// `deg(word) / freq(word)`; 0 for a word never seen.
    pub fn word_score(&self, word: &str) -> f64 {
        match self.words.get(word) {
            Some(&(freq, deg)) if freq > 0 => deg as f64 / freq as f64,
            _ => 0.0,
        }
    }

    /// The `top` best keywords: score descending, ties by first occurrence.
    pub fn keywords(&self, top: usize) -> Vec<Keyword> {
        let mut ranked: Vec<(f64, usize, &String, &Candidate)> = self
            .candidates
            .iter()
            .map(|(phrase, c)| {
                let score = c.words.iter().map(|w| self.word_score(w)).sum();
                (score, c.first, phrase, c)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked
            .into_iter()
            .take(top)
            .map(|(score, _, phrase, c)| Keyword {
                phrase: phrase.clone(),
                score,
                occurrences: c.occurrences,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Rose et al. (2010), §1.2.1, with the paper's stop words.
    const PAPER: &str = "Compatibility of systems of linear constraints over the set of natural \
        numbers. Criteria of compatibility of a system of linear Diophantine equations, strict \
        inequations, and nonstrict inequations are considered. Upper bounds for components of \
        a minimal set of solutions and algorithms of construction of minimal generating sets \
        of solutions for all types of systems are given. These criteria and the corresponding \
        algorithms for constructing a minimal supporting set of solutions can be used in \
        solving all the considered types of systems and systems of mixed types.";

    fn paper_stop(w: &str) -> bool {
        "of over the a and are considered for given these can be used in all"
            .split(' ')
            .any(|s| s == w)
    }

    #[test]
    fn reproduces_the_papers_worked_example() {
        let mut rake = Rake::default();
        for phrase in candidates(PAPER, paper_stop) {
            rake.add(phrase);
        }
        assert_eq!(rake.distinct(), 23);
        // deg/freq by hand: minimal 8/3, set 6/3, linear 5/2, inequations 4/2, systems 4/4,
        // types 4/3, algorithms 3/2, solutions 3/3, generating 3/1, sets 3/1.
        assert_eq!(rake.word_score("minimal"), 8.0 / 3.0);
        assert_eq!(rake.word_score("linear"), 2.5);
        assert_eq!(rake.word_score("systems"), 1.0);
        let got: Vec<(String, String)> = rake
            .keywords(10)
            .into_iter()
            .map(|k| (k.phrase, format!("{:.2}", k.score)))
            .collect();
        // The paper's table: 8.7, 8.5, 7.7, 4.7, 4.5, 4, 4, 4, 4, 3.5.
        let want = [
            ("minimal generating sets", "8.67"),      // 8/3 + 3 + 3
            ("linear diophantine equations", "8.50"), // 5/2 + 3 + 3
            ("minimal supporting set", "7.67"),       // 8/3 + 3 + 2
            ("minimal set", "4.67"),                  // 8/3 + 2
            ("linear constraints", "4.50"),           // 5/2 + 2
            ("natural numbers", "4.00"),
            ("strict inequations", "4.00"),
            ("nonstrict inequations", "4.00"),
            ("upper bounds", "4.00"),
            ("corresponding algorithms", "3.50"), // 2 + 3/2
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
            .collect();
        assert_eq!(got, want);
        let all = rake.keywords(100);
        assert_eq!(all.len(), 23);
        let systems = all.iter().find(|k| k.phrase == "systems").expect("systems");
        assert_eq!((systems.score, systems.occurrences), (1.0, 4));
    }

    #[test]
    fn code_spans_in_prose_give_no_candidates() {
        let s = "Run `cargo build -p cli` to build fast binaries";
        let stop = |w: &str| matches!(w, "to");
        assert_eq!(
            prose_candidates(s, stop),
            [vec!["run"], vec!["build", "fast", "binaries"]]
        );
        assert_eq!(candidates(s, stop)[0], ["run"]);
        assert_eq!(candidates(s, stop)[1], ["cargo", "build", "p", "cli"]);
    }

    #[test]
    fn punctuation_numbers_and_stop_words_end_phrases() {
        let got = candidates(
            "Fast keyword extraction (e.g. RAKE) beats 3 slow, manual methods; the U.S. Naïve \
             café-owners' lists!",
            |w| w == "the" || w == "e.g",
        );
        let want: Vec<Vec<String>> = [
            vec!["fast", "keyword", "extraction"],
            vec!["rake"],
            vec!["beats"],
            vec!["slow"],
            vec!["manual", "methods"],
            // The `.` after `U.S` is punctuation: it ends the phrase.
            vec!["u.s"],
            vec!["naïve", "café-owners", "lists"],
        ]
        .iter()
        .map(|p| p.iter().map(|w| (*w).to_owned()).collect())
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            candidates("no final stop", |_| false),
            [["no", "final", "stop"]]
        );
        assert!(candidates("", |_| false).is_empty());
        assert!(candidates("— 42 ...", |_| false).is_empty());
    }
}
