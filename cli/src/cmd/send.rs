//! `switchyard send` (blocking) and `switchyard stream` (events as they arrive).

use std::io::{IsTerminal as _, Write as _};

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use switchyard::{
    pb::a2a::{Message, Part, SendMessageRequest, Task, TaskState, send_message_response},
    task::{self, json_to_value},
};

use crate::{error::CliError, render, target::Mesh};

/// What to send: the text (words joined by spaces, or a file), metadata and task/context ids.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// The agent to send to.
    pub agent: String,
    /// The message text (words are joined with spaces).
    #[arg(conflicts_with = "file")]
    pub text: Vec<String>,
    /// Read the message text from a file (`-` for standard input). The part carries the file
    /// name, and media type `text/markdown` for `.md` / `.markdown` (the text agents then read
    /// it as Markdown) or `text/plain` for `.txt`.
    #[arg(long, short)]
    pub file: Option<std::path::PathBuf>,
    /// Message metadata, `key=value` (value parsed as JSON when it is, else a string);
    /// repeatable. E.g. `--meta chunks=5`.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Continue this task (one waiting for input).
    #[arg(long)]
    pub task: Option<String>,
    /// Send within this context.
    #[arg(long)]
    pub context: Option<String>,
}

impl SendArgs {
    /// The message to send.
    ///
    /// # Errors
    /// [`CliError::File`] for an unreadable file; [`CliError::Config`] for no text or a bad
    /// `--meta`.
    pub fn message(&self) -> Result<Message, CliError> {
        let text = match &self.file {
            Some(p) if p.as_os_str() == "-" => {
                std::io::read_to_string(std::io::stdin()).map_err(|source| CliError::File {
                    action: "read",
                    path: p.clone(),
                    source,
                })?
            }
            Some(p) => std::fs::read_to_string(p).map_err(|source| CliError::File {
                action: "read",
                path: p.clone(),
                source,
            })?,
            None => self.text.join(" "),
        };
        if text.trim().is_empty() {
            return Err(CliError::Config(
                "nothing to send: give the message as TEXT or --file FILE".into(),
            ));
        }
        let mut m = Message::user(vec![file_part(text, self.file.as_deref())]);
        if !self.meta.is_empty() {
            let mut fields = std::collections::HashMap::new();
            for kv in &self.meta {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    CliError::Config(format!("--meta {kv:?}: expected KEY=VALUE"))
                })?;
                let v = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v));
                fields.insert(k.to_owned(), json_to_value(v));
            }
            m.metadata = Some(pbjson_types::Struct { fields });
        }
        if let Some(t) = &self.task {
            m.task_id.clone_from(t);
        }
        if let Some(c) = &self.context {
            m.context_id.clone_from(c);
        }
        Ok(m)
    }
}

/// The text part of a message: for a file (not standard input), with its name and the media
/// type its extension implies (`text/markdown`, RFC 7763; `text/plain`), else unlabelled.
fn file_part(text: String, file: Option<&std::path::Path>) -> Part {
    let mut part = Part::text(text);
    let Some(path) = file.filter(|p| p.as_os_str() != "-") else {
        return part;
    };
    if let Some(name) = path.file_name() {
        part.filename = name.to_string_lossy().into_owned();
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    part.media_type = match extension.as_deref() {
        Some("md" | "markdown") => "text/markdown".into(),
        Some("txt") => "text/plain".into(),
        _ => String::new(),
    };
    part
}

/// Exit status of a finished task: terminal failures are errors.
pub fn outcome(task: &Task) -> Result<(), CliError> {
    match task.state() {
        TaskState::Failed | TaskState::Rejected | TaskState::Canceled => {
            Err(CliError::TaskFailed {
                task: task.id.clone(),
                state: render::state(task.state()).to_owned(),
                reason: render::status_text(task),
            })
        }
        _ => Ok(()),
    }
}

/// Prints a finished task for a person.
pub fn print_task(task: &Task) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", render::artifacts(&task.artifacts));
    match task.state() {
        TaskState::InputRequired | TaskState::AuthRequired => {
            let _ = writeln!(
                out,
                "{}\nreply with: switchyard send <agent> --task {} \"…\"",
                render::task_line(task),
                task.id
            );
        }
        _ => {
            let _ = writeln!(out, "{}", render::task_line(task));
        }
    }
}

/// Prints an agent's direct message reply (no task was made).
fn print_message(m: &Message, json: bool) {
    if json {
        println!("{}", render::json(m));
    } else {
        println!("{}", m.text());
    }
}

/// `switchyard send`.
///
/// # Errors
/// Unknown agent, unreachable agent, failed task.
pub async fn send(mesh: &Mesh, args: &SendArgs, json: bool) -> Result<(), CliError> {
    let answer = mesh.conn(&args.agent, false)?.send(args.message()?).await?;
    let task = match answer {
        send_message_response::Payload::Task(task) => task,
        send_message_response::Payload::Message(m) => {
            print_message(&m, json);
            return Ok(());
        }
    };
    if json {
        println!("{}", render::json(&task));
    } else {
        print_task(&task);
    }
    outcome(&task)
}

/// `switchyard stream`: prints each event as it arrives (a progress bar on a terminal), then
/// the artifacts.
///
/// # Errors
/// As [`send`].
pub async fn stream(mesh: &Mesh, args: &SendArgs, json: bool) -> Result<(), CliError> {
    let request = SendMessageRequest {
        message: Some(args.message()?),
        ..Default::default()
    };
    let mut events = mesh.conn(&args.agent, true)?.stream(request).await?;
    let bar = (!json && std::io::stdout().is_terminal()).then(|| {
        let b = ProgressBar::new(100);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {wide_msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let mut snapshot = Task::default();
    while let Some(event) = events.next().await {
        let event = event?;
        task::apply(&mut snapshot, &event);
        if json {
            println!("{}", render::json(&event));
            continue;
        }
        let line = render::event_line(&event);
        match &bar {
            Some(b) => {
                if let Some(f) = render::progress(&event) {
                    b.set_position((f * 100.0).round() as u64);
                }
                b.set_message(line.clone());
                b.println(line);
            }
            None => println!("{line}"),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if snapshot.id.is_empty() {
        // A direct message reply: its event line was the whole answer.
        return Ok(());
    }
    if !json {
        print_task(&snapshot);
    }
    outcome(&snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_part_is_labelled_by_its_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        let label = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "# Title\n\nText.").expect("write");
            let args = SendArgs {
                agent: "research".into(),
                text: Vec::new(),
                file: Some(path),
                meta: Vec::new(),
                task: None,
                context: None,
            };
            let part = args.message().expect("message").parts.remove(0);
            (part.filename, part.media_type)
        };
        assert_eq!(
            label("README.md"),
            ("README.md".into(), "text/markdown".into())
        );
        assert_eq!(
            label("notes.TXT"),
            ("notes.TXT".into(), "text/plain".into())
        );
        assert_eq!(label("notes"), ("notes".into(), String::new()));
        let words = SendArgs {
            agent: "echo".into(),
            text: vec!["hi".into()],
            file: None,
            meta: Vec::new(),
            task: None,
            context: None,
        };
        let part = words.message().expect("message").parts.remove(0);
        assert!(part.media_type.is_empty() && part.filename.is_empty());
    }
}
