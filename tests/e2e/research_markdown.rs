//! The README tour's main job on Markdown: `switchyard stream research --file README.md` on the
//! repository's real README (sent as the CLI sends a `.md` file: media type `text/markdown`).
//! The summary quotes no line of a code block or table, and every keyword comes from the prose,
//! none from a code block; the sets of code-block and table lines are computed here, with
//! pulldown-cmark, independently of the agents.

use std::{ops::Range, time::Duration};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use switchyard::pb::a2a::{Message, Part, TaskState};

use crate::research::{mesh, report_data, standard};

const README: &str = include_str!("../../README.md");

/// Whitespace runs collapsed to one space, trimmed.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The source ranges of the README's code blocks and tables.
fn non_prose() -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let (mut code, mut tables) = (Vec::new(), Vec::new());
    for (event, range) in Parser::new_ext(README, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => code.push(range),
            Event::Start(Tag::Table(_)) => tables.push(range),
            _ => {}
        }
    }
    (code, tables)
}

/// The README's text outside code blocks, tables and HTML, with a line break at every break,
/// block end and inline code span (so no phrase spans one).
fn prose_text() -> String {
    let mut out = String::new();
    let mut skipping = 0usize;
    for event in Parser::new_ext(README, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::Table(_) | Tag::HtmlBlock) => skipping += 1,
            Event::End(TagEnd::CodeBlock | TagEnd::Table | TagEnd::HtmlBlock) => skipping -= 1,
            Event::Text(t) if skipping == 0 => out.push_str(&t),
            Event::Code(_) | Event::SoftBreak | Event::HardBreak | Event::End(_) => out.push('\n'),
            _ => {}
        }
    }
    out
}

/// The lines of `ranges` that could be quoted: collapsed, at least 8 characters, with a
/// letter or digit (fences and box-drawing rules alone are not).
fn lines_of(ranges: &[Range<usize>]) -> Vec<String> {
    ranges
        .iter()
        .flat_map(|r| README[r.clone()].lines())
        .map(collapse)
        .filter(|l| l.chars().count() >= 8 && l.chars().any(char::is_alphanumeric))
        .filter(|l| !l.starts_with("```"))
        .collect()
}

/// The words of `text` as the keywords agent normalises them (split where RAKE splits:
/// anything but letters, digits, `'`, `-` and `.` between two of them; then trimmed of
/// non-alphanumerics, lower-cased, a possessive `'s` dropped), space-separated and padded so
/// that a phrase matches whole words only.
fn word_sequence(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for i in 0..=chars.len() {
        let c = chars.get(i).copied().unwrap_or(' ');
        let inner_dot = c == '.'
            && i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || matches!(c, '\'' | '’' | '-') || inner_dot {
            word.push(c);
            continue;
        }
        let core = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
            .replace('’', "'");
        let core = core.strip_suffix("'s").unwrap_or(&core).to_owned();
        if !core.is_empty() {
            words.push(core);
        }
        word.clear();
    }
    format!(" {} ", words.join(" "))
}

#[tokio::test]
async fn the_readme_report_quotes_no_code_or_table_line_and_no_keyword_comes_from_code() {
    let (code, tables) = non_prose();
    assert!(
        code.len() >= 10 && !tables.is_empty(),
        "the README has code blocks and tables"
    );
    let m = mesh(standard(), Duration::from_millis(250)).await;
    let readme = Part {
        media_type: "text/markdown".into(),
        filename: "README.md".into(),
        ..Part::text(README)
    };
    let task = m
        .research
        .client
        .send(Message::user(vec![readme]))
        .await
        .expect("send");
    assert_eq!(task.state(), TaskState::Completed);
    let (md, data) = report_data(&task);
    assert_eq!(data["complete"], 3, "{data:#}");

    // The report says what was skipped.
    assert_eq!(data["input"]["format"], "markdown");
    assert_eq!(data["input"]["skipped"]["code_blocks"], code.len());
    assert_eq!(data["input"]["skipped"]["tables"], tables.len());
    assert!(
        md.contains(&format!(
            "skipped {} code blocks, {} tables",
            code.len(),
            tables.len()
        )),
        "{md}"
    );

    // The summary quotes no line of a code block or a table.
    let summary: Vec<String> = data["parts"]["summarize"]["data"]["summary"]
        .as_array()
        .expect("summary sentences")
        .iter()
        .map(|s| collapse(s.as_str().expect("sentence")))
        .collect();
    assert!(!summary.is_empty());
    let quoted = lines_of(&code).into_iter().chain(lines_of(&tables));
    for line in quoted {
        for sentence in &summary {
            assert!(
                !sentence.contains(&line),
                "summary sentence {sentence:?} quotes {line:?}"
            );
        }
    }

    // Every keyword occurs in the prose: the README's text outside code blocks, tables and
    // HTML (inline code spans apart, since they quote code too).
    let prose = word_sequence(&prose_text());
    let keywords: Vec<&str> = data["parts"]["keywords"]["data"]["keywords"]
        .as_array()
        .expect("keywords")
        .iter()
        .map(|k| k["keyword"].as_str().expect("keyword"))
        .collect();
    assert!(!keywords.is_empty());
    for k in &keywords {
        assert!(
            prose.contains(&format!(" {k} ")),
            "keyword {k:?} is not in the README's prose (from a code block?): {keywords:?}"
        );
    }
}
