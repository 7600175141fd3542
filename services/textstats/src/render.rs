//! The textstats report: a Markdown table and a JSON object with every number.

use serde_json::{Value, json};

use crate::{
    job::Report,
    stats::{
        FLESCH_KINCAID_GRADE_LEVEL, FLESCH_READING_EASE, READING_TIME, READING_WORDS_PER_MINUTE,
        Stats,
    },
};

/// Name of the artifact.
pub const ARTIFACT_NAME: &str = "textstats";

/// The report for `stats`: artifact [`ARTIFACT_NAME`] with [`markdown`] and [`data`].
pub fn report(stats: &Stats) -> Report {
    Report {
        name: ARTIFACT_NAME.into(),
        description: "Word, sentence and paragraph counts, reading time, Flesch Reading Ease \
                      and Flesch–Kincaid Grade Level."
            .into(),
        markdown: markdown(stats),
        data: data(stats),
    }
}

/// A Markdown table of the statistics (ratios to 2 decimals, reading time to 0.1 s), with the
/// formulas and the reading speed below it.
pub fn markdown(s: &Stats) -> String {
    let c = &s.counts;
    let rows = [
        ("Words", c.words.to_string()),
        ("Sentences", c.sentences.to_string()),
        ("Paragraphs", c.paragraphs.to_string()),
        ("Syllables", c.syllables.to_string()),
        ("Characters (with spaces)", c.characters.to_string()),
        (
            "Characters (without spaces)",
            c.characters_no_spaces.to_string(),
        ),
        (
            "Average words per sentence",
            format!("{:.2}", s.average_words_per_sentence),
        ),
        (
            "Average syllables per word",
            format!("{:.2}", s.average_syllables_per_word),
        ),
        (
            "Reading time (238 wpm)",
            format!("{:.1} s", s.reading_time_seconds),
        ),
        (
            "Flesch Reading Ease",
            format!("{:.2}", s.flesch_reading_ease),
        ),
        (
            "Flesch–Kincaid Grade Level",
            format!("{:.2}", s.flesch_kincaid_grade_level),
        ),
    ];
    let mut out = String::from("## Text statistics\n\n| Measure | Value |\n|---|---:|\n");
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out.push_str(&format!(
        "\n- Flesch Reading Ease (Flesch 1948) = {FLESCH_READING_EASE}\n\
         - Flesch–Kincaid Grade Level (Kincaid et al. 1975) = {FLESCH_KINCAID_GRADE_LEVEL}\n\
         - Reading time = {READING_TIME}\n\
         - Syllables are estimated by a vowel-group heuristic with a silent-e rule.\n"
    ));
    out
}

/// Every number, under stable snake_case keys, plus the formulas as text under `formulas`.
pub fn data(s: &Stats) -> Value {
    let c = &s.counts;
    json!({
        "words": c.words,
        "sentences": c.sentences,
        "paragraphs": c.paragraphs,
        "syllables": c.syllables,
        "characters": c.characters,
        "characters_no_spaces": c.characters_no_spaces,
        "average_words_per_sentence": s.average_words_per_sentence,
        "average_syllables_per_word": s.average_syllables_per_word,
        "reading_time_seconds": s.reading_time_seconds,
        "reading_words_per_minute": READING_WORDS_PER_MINUTE,
        "flesch_reading_ease": s.flesch_reading_ease,
        "flesch_kincaid_grade_level": s.flesch_kincaid_grade_level,
        "formulas": {
            "flesch_reading_ease": FLESCH_READING_EASE,
            "flesch_kincaid_grade_level": FLESCH_KINCAID_GRADE_LEVEL,
            "reading_time_seconds": READING_TIME,
            "syllables": "vowel groups per word, silent final e not counted, at least 1",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::analyze;

    const TEXT: &str = "The cat sat on the mat. It was a sunny day. We went to the park!";

    #[test]
    fn markdown_table_shows_every_measure() {
        let md = markdown(&analyze(TEXT).expect("stats"));
        for row in [
            "| Words | 16 |",
            "| Sentences | 3 |",
            "| Paragraphs | 1 |",
            "| Syllables | 17 |",
            "| Characters (with spaces) | 64 |",
            "| Characters (without spaces) | 49 |",
            "| Average words per sentence | 5.33 |",
            "| Average syllables per word | 1.06 |",
            "| Reading time (238 wpm) | 4.0 s |",
            "| Flesch Reading Ease | 111.53 |",
            "| Flesch–Kincaid Grade Level | -0.97 |",
            "Flesch Reading Ease (Flesch 1948) = 206.835 − 1.015 × (words / sentences)",
        ] {
            assert!(md.contains(row), "missing {row:?} in\n{md}");
        }
    }

    #[test]
    fn data_has_every_number_under_stable_keys() {
        let d = data(&analyze(TEXT).expect("stats"));
        assert_eq!(d["words"], 16);
        assert_eq!(d["sentences"], 3);
        assert_eq!(d["paragraphs"], 1);
        assert_eq!(d["syllables"], 17);
        assert_eq!(d["characters"], 64);
        assert_eq!(d["characters_no_spaces"], 49);
        assert_eq!(d["reading_words_per_minute"], 238.0);
        assert_eq!(d["average_syllables_per_word"], 1.0625);
        let fre = 206.835 - 1.015 * (16.0 / 3.0) - 84.6 * (17.0 / 16.0);
        assert_eq!(d["flesch_reading_ease"], fre);
        let fk = 0.39 * (16.0 / 3.0) + 11.8 * (17.0 / 16.0) - 15.59;
        assert_eq!(d["flesch_kincaid_grade_level"], fk);
        assert_eq!(d["reading_time_seconds"], 16.0 / 238.0 * 60.0);
        assert_eq!(d["formulas"]["flesch_reading_ease"], FLESCH_READING_EASE);
    }
}
