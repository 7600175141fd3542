//! The text a text agent analyses, read from a message as plain text or as Markdown.
//!
//! A message is Markdown ([`Format::Markdown`]) when one of its text parts says so — media type
//! `text/markdown` (A2A `Part.media_type`; parameters such as `; charset=utf-8` ignored) or,
//! without a media type, a file name ending in `.md` / `.markdown` (`Part.filename`) — or, when no text part gives a media type, when the text
//! [looks like Markdown](crate::markdown::looks_like_markdown). A part labelled `text/plain`
//! (or any other media type) keeps the text plain. Markdown is reduced to its prose ([`crate::markdown::prose`]); plain
//! text is analysed as it is.

use serde_json::{Value, json};
use switchyard::pb::a2a::{Message, Part, part};

use crate::{
    job::{Job, Progress, Report},
    markdown::{self, Skipped},
};

/// Media type of Markdown text (RFC 7763).
pub const MARKDOWN: &str = "text/markdown";

/// How the input was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// As it is.
    Plain,
    /// As Markdown: its prose only.
    Markdown,
}

/// The text to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The text: the message's text parts joined by newlines, reduced to prose for Markdown.
    pub text: String,
    /// How it was read.
    pub format: Format,
    /// Headings of a Markdown input (0 for plain text).
    pub headings: usize,
    /// What a Markdown input left out (nothing for plain text).
    pub skipped: Skipped,
}

impl Input {
    /// Reads `message`'s text parts in the format [`format_of`] gives.
    pub fn read(message: &Message) -> Self {
        Self::from_text(message.text(), format_of(message))
    }

    /// Reads `text` in `format`.
    pub fn from_text(text: String, format: Format) -> Self {
        match format {
            Format::Plain => Self {
                text,
                format,
                headings: 0,
                skipped: Skipped::default(),
            },
            Format::Markdown => {
                let p = markdown::prose(&text);
                Self {
                    text: p.text,
                    format,
                    headings: p.headings,
                    skipped: p.skipped,
                }
            }
        }
    }

    /// One line for a report, e.g. `"Read as Markdown (24 headings); skipped 12 code
    /// blocks, 3 tables."`; `None` for plain text.
    pub fn note(&self) -> Option<String> {
        (self.format == Format::Markdown).then(|| {
            format!(
                "Read as Markdown ({} heading{}); skipped {}.",
                self.headings,
                if self.headings == 1 { "" } else { "s" },
                self.skipped.describe()
            )
        })
    }

    /// Whether `line` of a report's Markdown is a [`note`](Self::note) (as
    /// [`annotate`](Self::annotate) writes it), so a report that merges several reports on one
    /// input can show it once.
    pub fn is_note(line: &str) -> bool {
        line.starts_with("_Read as Markdown (") && line.ends_with("._")
    }

    /// The input's description for a report's data: `{"format": "markdown", "headings": n,
    /// "skipped": {…}}` or `{"format": "plain"}`.
    pub fn to_json(&self) -> Value {
        match self.format {
            Format::Plain => json!({"format": "plain"}),
            Format::Markdown => json!({
                "format": "markdown",
                "headings": self.headings,
                "skipped": self.skipped.to_json(),
            }),
        }
    }

    /// `job`, whose report also says how the input was read: the [`note`](Self::note) after
    /// the Markdown (for Markdown input) and the [`to_json`](Self::to_json) object as `input`
    /// in the data.
    pub fn annotate<J: Job>(&self, job: J) -> Annotated<J> {
        Annotated {
            job,
            note: self.note(),
            data: self.to_json(),
        }
    }
}

/// A [`Job`] whose report says how its input was read (see [`Input::annotate`]).
#[derive(Debug)]
pub struct Annotated<J> {
    job: J,
    note: Option<String>,
    data: Value,
}

impl<J: Job> Job for Annotated<J> {
    fn is_long(&self) -> bool {
        self.job.is_long()
    }

    fn plan(&self) -> String {
        self.job.plan()
    }

    fn step(&mut self) -> Option<Progress> {
        self.job.step()
    }

    fn finish(self) -> Report {
        let mut report = self.job.finish();
        if let Some(note) = self.note {
            report.markdown = format!("{}\n\n_{note}_\n", report.markdown.trim_end());
        }
        if let Some(o) = report.data.as_object_mut() {
            o.insert("input".into(), self.data);
        }
        report
    }
}

/// How to read `message`: see the module docs.
pub fn format_of(message: &Message) -> Format {
    let texts: Vec<&Part> = message
        .parts
        .iter()
        .filter(|p| matches!(p.content, Some(part::Content::Text(_))))
        .collect();
    if texts.iter().any(|p| is_markdown_part(p)) {
        return Format::Markdown;
    }
    let labelled = texts.iter().any(|p| !p.media_type.is_empty());
    if !labelled && markdown::looks_like_markdown(&message.text()) {
        return Format::Markdown;
    }
    Format::Plain
}

/// Whether a part says it is Markdown: by its media type, or, when it has none, by its file
/// name.
fn is_markdown_part(part: &Part) -> bool {
    if !part.media_type.is_empty() {
        let essence = part.media_type.split(';').next().unwrap_or("").trim();
        return essence.eq_ignore_ascii_case(MARKDOWN);
    }
    let name = part.filename.to_ascii_lowercase();
    name.ends_with(".md") || name.ends_with(".markdown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str, media_type: &str, filename: &str) -> Message {
        Message::user(vec![Part {
            media_type: media_type.into(),
            filename: filename.into(),
            ..Part::text(text)
        }])
    }

    #[test]
    fn the_part_label_decides_and_detection_fills_in() {
        let md = "# Title\n\nBody text.";
        for (m, want) in [
            (
                message("Body.", "text/markdown; charset=utf-8", ""),
                Format::Markdown,
            ),
            (message("Body.", "", "notes.MD"), Format::Markdown),
            (message(md, "text/plain", ""), Format::Plain),
            (message(md, "text/plain", "README.md"), Format::Plain),
            (message(md, "", ""), Format::Markdown),
            (message("Plain. Text!", "", ""), Format::Plain),
            (message(md, "", "notes.txt"), Format::Markdown),
        ] {
            assert_eq!(format_of(&m), want, "{m:?}");
        }
    }

    #[test]
    fn plain_text_is_kept_as_it_is() {
        let text = "# not a heading here\n\n```\nkept\n```";
        let input = Input::read(&message(text, "text/plain", ""));
        assert_eq!(input.text, text);
        assert_eq!(input.note(), None);
        assert_eq!(input.to_json(), json!({"format": "plain"}));
    }

    #[test]
    fn markdown_reports_what_it_skipped() {
        let input = Input::read(&message(
            "# T\n\nProse here.\n\n```\ncode\n```\n",
            MARKDOWN,
            "",
        ));
        assert_eq!(input.text, "# T\n\nProse here.");
        assert_eq!(
            input.note().as_deref(),
            Some("Read as Markdown (1 heading); skipped 1 code block.")
        );
        assert_eq!(input.to_json()["skipped"]["code_blocks"], 1);
        let note = format!("_{}_", input.note().expect("note"));
        assert!(Input::is_note(&note), "{note}");
        assert!(!Input::is_note("_Read as Markdown, or not_"));
    }
}
