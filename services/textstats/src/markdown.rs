//! Markdown read as Markdown: the prose of a CommonMark (+ GitHub tables) document, parsed with
//! `pulldown-cmark`, as a plain text the [`segment`](crate::segment) rules apply to.
//!
//! - **Kept**: the text of paragraphs, headings, list items, block quotes and footnotes, with
//!   emphasis and link text as written and inline code in backticks (`` `cargo run` ``, so a
//!   summary sentence still reads as Markdown and the keywords agent can leave code out). Every block is its own paragraph (a blank
//!   line apart), so a heading or a list item never runs into the next sentence.
//! - **Headings are structure**: each keeps a leading `#` marker (`# Title`), so it is one
//!   paragraph of its own that never reads as prose (the summarizer does not pick it) while its
//!   words still count.
//! - **Skipped** (and counted in [`Skipped`]): code blocks (fenced and indented), tables, HTML
//!   (blocks and inline tags), link and image targets (a link's text stays; an autolink, whose
//!   text is its target, goes), images (alt text included) and front matter.

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};

/// What the prose leaves out of a Markdown document, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Code blocks, fenced or indented.
    pub code_blocks: usize,
    /// Tables (GitHub-flavoured).
    pub tables: usize,
    /// HTML blocks and inline HTML tags.
    pub html: usize,
    /// Link targets (URLs) of links and autolinks.
    pub link_targets: usize,
    /// Images.
    pub images: usize,
}

impl Skipped {
    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// A phrase for people, e.g. `"12 code blocks, 3 tables, 40 link targets"` (kinds with a
    /// count of 0 left out; `"nothing"` when all are 0).
    pub fn describe(&self) -> String {
        let kinds = [
            (self.code_blocks, "code block", "code blocks"),
            (self.tables, "table", "tables"),
            (self.html, "HTML element", "HTML elements"),
            (self.link_targets, "link target", "link targets"),
            (self.images, "image", "images"),
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }

    /// The counts as a JSON object with snake_case keys.
    pub fn to_json(&self) -> Value {
        json!({
            "code_blocks": self.code_blocks,
            "tables": self.tables,
            "html": self.html,
            "link_targets": self.link_targets,
            "images": self.images,
        })
    }
}

/// The prose of a Markdown document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prose {
    /// The kept text: blocks separated by blank lines, headings marked with `# `.
    pub text: String,
    /// Number of headings.
    pub headings: usize,
    /// What was left out.
    pub skipped: Skipped,
}

/// The parser options: CommonMark plus the common GitHub extensions, so that tables,
/// strikethrough, task lists, footnotes and front matter are recognised as such.
pub fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
}

/// The prose of `markdown`; see the module docs for what is kept and skipped.
///
/// # Example
/// ```
/// let md = "# Setup\n\nRun it with `up`. See [the docs](https://x.example).\n\n\
///           ```bash\ncargo run\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
/// let p = switchyard_textstats::markdown::prose(md);
/// assert_eq!(p.text, "# Setup\n\nRun it with `up`. See the docs.");
/// assert_eq!(p.skipped.describe(), "1 code block, 1 table, 1 link target");
/// ```
pub fn prose(markdown: &str) -> Prose {
    let mut w = Writer::default();
    for event in Parser::new_ext(markdown, options()) {
        w.event(event);
    }
    w.flush();
    Prose {
        text: w.out,
        headings: w.headings,
        skipped: w.skipped,
    }
}

/// Whether unlabelled text looks like Markdown: it has an ATX or setext heading, a fenced
/// code block or a table. Indented blocks, emphasis and lists alone do not count (plain text
/// has them too).
pub fn looks_like_markdown(text: &str) -> bool {
    Parser::new_ext(text, options()).any(|e| {
        matches!(
            e,
            Event::Start(
                Tag::Heading { .. }
                    | Tag::Table(_)
                    | Tag::CodeBlock(pulldown_cmark::CodeBlockKind::Fenced(_))
            )
        )
    })
}

#[derive(Default)]
struct Writer {
    out: String,
    block: String,
    /// Depth of open elements whose text is skipped (code, tables, HTML, images, front matter).
    skipping: usize,
    /// Depth of open autolinks (their text is the target).
    autolink: usize,
    headings: usize,
    skipped: Skipped,
}

impl Writer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => self.text(&t),
            Event::Code(t) => self.text(&format!("`{t}`")),
            Event::InlineMath(t) | Event::DisplayMath(t) => self.text(&t),
            Event::SoftBreak | Event::HardBreak => self.text("\n"),
            Event::Html(_) => {}
            Event::InlineHtml(_) => self.skipped.html += 1,
            Event::Rule => self.flush(),
            Event::FootnoteReference(_) | Event::TaskListMarker(_) => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::CodeBlock(_) => self.skip(|s| s.code_blocks += 1),
            Tag::Table(_) => self.skip(|s| s.tables += 1),
            Tag::HtmlBlock => self.skip(|s| s.html += 1),
            Tag::Image { .. } => self.skip(|s| s.images += 1),
            Tag::MetadataBlock(_) => self.skip(|_| {}),
            Tag::Link { link_type, .. } => {
                if self.skipping == 0 {
                    self.skipped.link_targets += 1;
                }
                if matches!(link_type, LinkType::Autolink | LinkType::Email) {
                    self.autolink += 1;
                }
            }
            Tag::Heading { .. } => {
                self.flush();
                if self.skipping == 0 {
                    self.headings += 1;
                    self.block.push_str("# ");
                }
            }
            Tag::Paragraph
            | Tag::Item
            | Tag::BlockQuote(_)
            | Tag::List(_)
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition => self.flush(),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::CodeBlock | TagEnd::Table | TagEnd::HtmlBlock | TagEnd::MetadataBlock(_) => {
                self.skipping = self.skipping.saturating_sub(1);
                if self.skipping == 0 {
                    self.flush();
                }
            }
            TagEnd::Image => self.skipping = self.skipping.saturating_sub(1),
            TagEnd::Link => self.autolink = self.autolink.saturating_sub(1),
            TagEnd::Heading(_)
            | TagEnd::Paragraph
            | TagEnd::Item
            | TagEnd::BlockQuote(_)
            | TagEnd::List(_)
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition => self.flush(),
            _ => {}
        }
    }

    /// Enters an element whose text is skipped; counts it unless it is inside another one.
    fn skip(&mut self, count: impl FnOnce(&mut Skipped)) {
        if self.skipping == 0 {
            count(&mut self.skipped);
        }
        self.skipping += 1;
    }

    fn text(&mut self, t: &str) {
        if self.skipping == 0 && self.autolink == 0 {
            self.block.push_str(t);
        }
    }

    /// Ends the current block: appends it (trimmed, if it holds more than a heading marker) to
    /// the output as its own paragraph.
    fn flush(&mut self) {
        let block = std::mem::take(&mut self.block);
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let text = lines.join("\n");
        if text.is_empty() || text == "#" {
            return;
        }
        if !self.out.is_empty() {
            self.out.push_str("\n\n");
        }
        self.out.push_str(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_paragraphs_and_headings_keep_their_marker() {
        let md = "Intro line one\nline two.\n\n## Usage\n\n- first item\n- second *item*\n\n\
                  > quoted **text** with `code`.\n\n1. one\n2. two\n";
        let p = prose(md);
        assert_eq!(
            p.text,
            "Intro line one\nline two.\n\n# Usage\n\nfirst item\n\nsecond item\n\n\
             quoted text with `code`.\n\none\n\ntwo"
        );
        assert_eq!(p.headings, 1);
        assert!(p.skipped.is_empty());
    }

    #[test]
    fn code_tables_html_images_and_link_targets_are_skipped_and_counted() {
        let md = "Text with [a link](http://x.example \"title\") and <https://auto.example>.\n\n\
                  ```text\n┌──┐ diagram\n```\n\n    indented code\n\n\
                  | k | v |\n|---|---|\n| key | value |\n\n<div>\nraw html\n</div>\n\n\
                  An ![alt words](img.png) image and <b>bold</b> html.\n";
        let p = prose(md);
        assert_eq!(p.text, "Text with a link and .\n\nAn  image and bold html.");
        assert_eq!(
            p.skipped,
            Skipped {
                code_blocks: 2,
                tables: 1,
                html: 3,
                link_targets: 2,
                images: 1,
            }
        );
        assert_eq!(
            p.skipped.describe(),
            "2 code blocks, 1 table, 3 HTML elements, 2 link targets, 1 image"
        );
        assert_eq!(p.skipped.to_json()["code_blocks"], 2);
    }

    #[test]
    fn front_matter_is_not_prose() {
        let p = prose("---\ntitle: x\n---\n\nBody.\n");
        assert_eq!(p.text, "Body.");
    }

    #[test]
    fn detection_needs_a_heading_a_fence_or_a_table() {
        for md in [
            "# Title\n\nText.",
            "Title\n=====\n\nText.",
            "Text.\n\n```\ncode\n```",
            "| a | b |\n|---|---|\n| 1 | 2 |",
        ] {
            assert!(looks_like_markdown(md), "{md:?}");
        }
        for plain in [
            "Just a sentence. And another one!",
            "A list:\n- one\n- two",
            "Some *emphasis* and a poem\n\n    indented verse",
            "",
        ] {
            assert!(!looks_like_markdown(plain), "{plain:?}");
        }
    }
}
