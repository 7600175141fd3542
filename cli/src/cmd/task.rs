//! `switchyard task get|list|cancel|watch`.

use futures::StreamExt as _;
use switchyard::pb::a2a::{ListTasksRequest, Task, TaskState};

use crate::{cmd::send::print_task, error::CliError, render, target::Mesh};

/// Task commands; each names the agent that holds the task.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TaskCmd {
    /// Shows a task: state, status message and artifacts.
    Get {
        /// The agent.
        agent: String,
        /// The task id.
        id: String,
        /// Most recent history messages to include in --json output.
        #[arg(long)]
        history: Option<i32>,
    },
    /// Lists an agent's tasks, newest first.
    List {
        /// The agent.
        agent: String,
        /// Only tasks of this context.
        #[arg(long)]
        context: Option<String>,
        /// Only tasks in this state (e.g. completed, working, input_required).
        #[arg(long)]
        state: Option<String>,
        /// Tasks per page (1..=100).
        #[arg(long, default_value_t = 20)]
        limit: i32,
    },
    /// Cancels a task.
    Cancel {
        /// The agent.
        agent: String,
        /// The task id.
        id: String,
    },
    /// Follows a task's events until it finishes; a task that waits for input (or
    /// authentication) is followed on through the answer (A2A SubscribeToTask).
    Watch {
        /// The agent.
        agent: String,
        /// The task id.
        id: String,
        /// Resume after this event sequence number instead of starting from the task's state.
        #[arg(long)]
        after: Option<u64>,
    },
}

fn parse_state(s: &str) -> Result<TaskState, CliError> {
    let name = format!(
        "TASK_STATE_{}",
        s.trim().to_ascii_uppercase().replace('-', "_")
    );
    TaskState::from_str_name(&name)
        .filter(|s| *s != TaskState::Unspecified)
        .ok_or_else(|| {
            CliError::Config(format!(
                "--state {s:?}: use submitted, working, completed, failed, canceled, \
                 input_required, rejected or auth_required"
            ))
        })
}

/// Runs a task command.
///
/// # Errors
/// Unknown agent or task, unreachable agent.
pub async fn run(mesh: &Mesh, cmd: &TaskCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        TaskCmd::Get { agent, id, history } => {
            let t = mesh.conn(agent, false)?.get_task(id, *history).await?;
            if json {
                println!("{}", render::json(&t));
            } else {
                print_task(&t);
            }
            Ok(())
        }
        TaskCmd::List {
            agent,
            context,
            state,
            limit,
        } => {
            let request = ListTasksRequest {
                context_id: context.clone().unwrap_or_default(),
                status: state
                    .as_deref()
                    .map(parse_state)
                    .transpose()?
                    .unwrap_or_default() as i32,
                page_size: Some(*limit),
                history_length: Some(0),
                ..Default::default()
            };
            let page = mesh.conn(agent, false)?.list_tasks(request).await?;
            if json {
                println!("{}", render::json(&page));
            } else {
                println!("{:<38} {:<15} CONTEXT", "TASK", "STATE");
                for t in &page.tasks {
                    println!(
                        "{:<38} {:<15} {}",
                        t.id,
                        render::state(t.state()),
                        t.context_id
                    );
                }
                println!("{} of {} tasks", page.tasks.len(), page.total_size);
            }
            Ok(())
        }
        TaskCmd::Cancel { agent, id } => {
            let t = mesh.conn(agent, false)?.cancel_task(id).await?;
            if json {
                println!("{}", render::json(&t));
            } else {
                println!("{}", render::task_line(&t));
            }
            Ok(())
        }
        TaskCmd::Watch { agent, id, after } => {
            let mut events = mesh.conn(agent, true)?.subscribe(id, *after).await?;
            let mut snapshot = Task::default();
            while let Some(event) = events.next().await {
                let event = event?;
                switchyard::task::apply(&mut snapshot, &event);
                if json {
                    println!("{}", render::json(&event));
                    continue;
                }
                println!("{}", render::event_line(&event));
                if snapshot.state().is_interrupted() {
                    eprintln!(
                        "(task {id} waits; answer with `switchyard send {agent} --task {id} …` — \
                         still watching, Ctrl-C to stop)"
                    );
                }
            }
            Ok(())
        }
    }
}
