//! `switchyard chat AGENT`: an interactive session over `AgentService/Converse`.
//!
//! Each line you type is a message in the session's context; the agent's events stream back
//! while you type. When the agent asks for input, your next line answers that task. `/cancel`
//! cancels the task in progress, `/quit` (or end of input) ends the session once every task
//! has finished.

use std::{
    collections::HashMap,
    io::{IsTerminal as _, Write as _},
};

use futures::StreamExt as _;
use switchyard::pb::{
    a2a::{CancelTaskRequest, Message, SendMessageRequest, Task, stream_response},
    agent::{ConverseRequest, ConverseResponse, converse_request, converse_response},
};
use tokio::io::AsyncBufReadExt as _;

use crate::{error::CliError, render, target::Mesh};

/// Runs a chat with `agent` on standard input and output.
///
/// # Errors
/// Unknown or unreachable agent.
pub async fn chat(mesh: &Mesh, agent: &str, json: bool) -> Result<(), CliError> {
    let (tx, mut frames) = mesh.conn(agent, true)?.converse().await?;
    let interactive = std::io::stdin().is_terminal();
    let mut session = Session::default();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut tx = Some(tx);
    let mut closing = false;
    if interactive {
        println!("chatting with {agent}; /cancel cancels the running task, /quit ends");
        prompt();
    }
    loop {
        tokio::select! {
            line = lines.next_line(), if tx.is_some() => {
                let line = line.map_err(|source| CliError::File {
                    action: "read",
                    path: "standard input".into(),
                    source,
                })?;
                let Some(line) = line else {
                    // End of input: close once every task this session started has settled.
                    closing = true;
                    if session.idle() {
                        tx = None;
                    }
                    continue;
                };
                let line = line.trim();
                let sender = tx.as_ref().expect("checked by the select guard");
                match line {
                    "" => {}
                    "/quit" | "/exit" => {
                        closing = true;
                        if session.idle() {
                            tx = None;
                        }
                    }
                    "/cancel" => match session.current.clone() {
                        Some(id) => {
                            let _ = sender.send(ConverseRequest {
                                request: Some(converse_request::Request::Cancel(CancelTaskRequest {
                                    id,
                                    ..Default::default()
                                })),
                            }).await;
                        }
                        None => println!("(no task is running)"),
                    },
                    text => {
                        let mut m = Message::user_text(text);
                        if let Some(id) = session.waiting.take() {
                            m.task_id = id;
                        }
                        session.pending += 1;
                        let _ = sender.send(ConverseRequest {
                            request: Some(converse_request::Request::Send(SendMessageRequest {
                                message: Some(m),
                                ..Default::default()
                            })),
                        }).await;
                    }
                }
                if interactive && tx.is_some() {
                    prompt();
                }
            }
            frame = frames.next() => {
                match frame {
                    None => break,
                    Some(Err(e)) => return Err(e),
                    Some(Ok(f)) => {
                        if json {
                            println!("{}", render::json(&f));
                        }
                        session.on_frame(agent, &f, !json);
                        if closing && session.idle() {
                            tx = None;
                        }
                        if interactive && tx.is_some() && session.printed {
                            prompt();
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn prompt() {
    print!("you> ");
    let _ = std::io::stdout().flush();
}

/// What the chat tracks: each task's folded state, the running one, the one waiting for input.
#[derive(Default)]
struct Session {
    tasks: HashMap<String, Task>,
    /// Messages sent whose first answer has not come yet.
    pending: usize,
    current: Option<String>,
    waiting: Option<String>,
    printed: bool,
}

impl Session {
    /// No message waits for an answer and no task runs.
    fn idle(&self) -> bool {
        self.pending == 0 && self.tasks.values().all(|t| t.state().settles())
    }

    fn on_frame(&mut self, agent: &str, f: &ConverseResponse, print: bool) {
        self.printed = false;
        let first_answer = match &f.payload {
            Some(converse_response::Payload::Error(_)) => true,
            Some(converse_response::Payload::Event(e)) => matches!(
                e.payload,
                Some(stream_response::Payload::Task(_) | stream_response::Payload::Message(_))
            ),
            None => false,
        };
        if first_answer {
            self.pending = self.pending.saturating_sub(1);
        }
        match &f.payload {
            Some(converse_response::Payload::Error(e)) if print => {
                println!("error: {}", e.message);
                self.printed = true;
            }
            Some(converse_response::Payload::Error(_)) => {}
            Some(converse_response::Payload::Event(event)) => {
                if let Some(stream_response::Payload::Message(m)) = &event.payload {
                    // A direct reply: no task to follow.
                    if print {
                        println!("{agent}> {}", m.text());
                        self.printed = true;
                    }
                    return;
                }
                let id = match &event.payload {
                    Some(stream_response::Payload::Task(t)) => t.id.clone(),
                    Some(stream_response::Payload::StatusUpdate(u)) => u.task_id.clone(),
                    Some(stream_response::Payload::ArtifactUpdate(u)) => u.task_id.clone(),
                    _ => return,
                };
                let task = self.tasks.entry(id.clone()).or_default();
                switchyard::task::apply(task, event);
                let state = task.state();
                if !state.settles() {
                    self.current = Some(id);
                    return;
                }
                if self.current.as_deref() == Some(id.as_str()) {
                    self.current = None;
                }
                if state.is_interrupted() {
                    self.waiting = Some(id.clone());
                }
                if print {
                    let reply = render::artifacts(&task.artifacts);
                    if !reply.is_empty() {
                        print!("{agent}> {reply}");
                    }
                    let msg = render::status_text(task);
                    if state.is_interrupted() {
                        println!("{agent} asks> {msg}");
                    } else if state != switchyard::pb::a2a::TaskState::Completed {
                        println!("({} {})", render::state(state), msg);
                    }
                    self.printed = true;
                }
                if state.is_terminal() {
                    self.tasks.remove(&id);
                }
            }
            None => {}
        }
    }
}
