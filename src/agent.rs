//! The [`Agent`] trait: the one thing an agent author implements.

use crate::{
    MessageContext, TaskContext, TaskEvents,
    events::EventError,
    pb::a2a::{AgentCard, Message},
};

/// An agent: a card that describes it, an `execute` that works on tasks and, optionally, a
/// `reply` that answers a message directly, without a task.
///
/// The runtime ([`AgentServer`](crate::AgentServer)) serves both `lf.a2a.v1.A2AService` and
/// `switchyard.v1.AgentService` from one implementation. For every execution of a task it
/// calls [`execute`](Self::execute) with the task's [`TaskContext`] and a [`TaskEvents`]
/// publisher. Before `execute` runs, the task is WORKING. When `execute` returns:
/// - `Ok(())` with the task still WORKING: the runtime completes it (COMPLETED);
/// - `Ok(())` after the agent set a terminal or interrupted state: nothing more happens;
/// - `Err(AgentError::Rejected)`: the task is REJECTED; any other `Err`: FAILED, with the error's
///   message as the status message (internal errors show a generic message and are logged).
///
/// ## Message or task?
/// A2A lets an agent answer a message with a `Message` instead of a `Task` (A2A v1.0.1
/// §3.1.1–3.1.2). For every message that names no task the runtime first calls
/// [`reply`](Self::reply); `Some(message)` is the answer and no task is created (nothing is
/// stored, there is nothing to get, cancel or subscribe to), `None` (the default) creates a task
/// and calls `execute`. Reply with a message when the answer is immediate and there is nothing
/// to follow: a greeting, a quick lookup, a clarifying question before any work starts, a
/// refusal that needs no record. Use a task when the work takes time, reports progress or
/// streams artifacts, may be canceled, asks for input, or must survive a restart.
///
/// A panic in `execute` fails the task. A canceled task is CANCELED at once, whatever the agent
/// does; it should stop promptly when [`TaskContext::cancellation`] fires, and the runtime stops
/// polling it after a grace period.
///
/// # Example
/// ```
/// use switchyard::{Agent, AgentError, TaskContext, TaskEvents, pb::a2a::{AgentCard, Artifact, Part}};
///
/// struct Shout;
///
/// #[tonic::async_trait]
/// impl Agent for Shout {
///     fn card(&self) -> AgentCard {
///         switchyard::card::builder("shout", "Upper-cases text").build()
///     }
///
///     async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
///         let loud = ctx.text().to_uppercase();
///         events.artifact(Artifact::new("shout", vec![Part::text(loud)])).await?;
///         Ok(())
///     }
/// }
/// ```
#[tonic::async_trait]
pub trait Agent: Send + Sync + 'static {
    /// The agent's public card: name, description, skills, modes and capabilities. The runtime
    /// adds the interfaces it serves and the capabilities it implements.
    fn card(&self) -> AgentCard;

    /// The extended card for authenticated callers (`GetExtendedAgentCard`); `None` (the
    /// default) answers EXTENDED_AGENT_CARD_NOT_CONFIGURED.
    fn extended_card(&self) -> Option<AgentCard> {
        None
    }

    /// Answers a message that names no task directly, without creating one; `None` (the
    /// default) creates a task and runs [`execute`](Self::execute) instead.
    ///
    /// The runtime fills in the reply's `message_id` (when empty), `role` (AGENT, when
    /// unspecified) and `context_id` (the context's, when empty), and clears its `task_id`.
    /// The caller gets `{"message": …}` from SendMessage, exactly one message event from
    /// SendStreamingMessage (then the stream ends), and one event frame in a Converse session.
    /// A reply without parts fails the call with INVALID_AGENT_RESPONSE; a panic with
    /// INTERNAL. Keep it quick: it runs within the caller's call (in a Converse session it
    /// holds up the session's next request), bounded by the caller's deadline.
    ///
    /// # Example
    /// ```
    /// use switchyard::{Agent, AgentError, MessageContext, TaskContext, TaskEvents,
    ///     pb::a2a::{AgentCard, Message, Part}};
    ///
    /// struct Greeter;
    ///
    /// #[tonic::async_trait]
    /// impl Agent for Greeter {
    ///     fn card(&self) -> AgentCard {
    ///         switchyard::card::builder("greeter", "Says hello, or works on a task").build()
    ///     }
    ///
    ///     async fn reply(&self, ctx: &MessageContext) -> Option<Message> {
    ///         let text = ctx.text();
    ///         (text.trim() == "hi").then(|| ctx.agent_message(vec![Part::text("hello!")]))
    ///     }
    ///
    ///     async fn execute(&self, _ctx: TaskContext, _events: TaskEvents) -> Result<(), AgentError> {
    ///         Ok(())
    ///     }
    /// }
    /// ```
    async fn reply(&self, ctx: &MessageContext) -> Option<Message> {
        let _ = ctx;
        None
    }

    /// Works on one execution of a task; see the trait documentation for what the return
    /// value does to the task.
    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError>;
}

/// Why an execution failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The task fails (FAILED) with this message, shown to the client.
    #[error("{0}")]
    Failed(String),
    /// The agent declines the task (REJECTED) with this message, shown to the client.
    #[error("{0}")]
    Rejected(String),
    /// The agent stopped because the task was canceled.
    #[error("canceled")]
    Canceled,
    /// Publishing an event failed (typically: the task was canceled meanwhile).
    #[error(transparent)]
    Events(#[from] EventError),
    /// Any other failure: the task fails with a generic message; the error is logged.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl AgentError {
    /// A failure with a message for the client.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// A rejection with a message for the client.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::Rejected(message.into())
    }

    /// Wraps any error as [`AgentError::Internal`].
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }
}
