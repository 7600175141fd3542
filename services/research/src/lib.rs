//! The `research` agent: a coordinator. For a document (the text parts of a message) it finds
//! the analysis agents in the registry (`textstats`, `summarize` and `keywords` by default),
//! calls them **in parallel over gRPC** (streaming, so their progress is relayed as it happens),
//! and produces one report artifact, `report`, with a Markdown part and a JSON data part.
//!
//! - Deadline: each sub-call gets the task's own remaining deadline minus
//!   [`ResearchConfig::deadline_margin`] (or [`ResearchConfig::default_timeout`] when the caller
//!   set none), so the report is written before the caller gives up.
//! - Partial failure: a sub-agent that is not registered, unreachable, fails, rejects, is
//!   canceled or runs out of time becomes a "missing part" of the report, with the reason; the
//!   task still completes. It fails only when no part succeeded.
//! - Trace context flows into every sub-call (`switchyard::Client` passes it on).
//! - Markdown (`text/markdown`, a `.md` file, or detected; see [`switchyard_textstats::input`])
//!   is read as Markdown: the sub-agents analyse its prose, and the report says what was
//!   skipped (code blocks, tables, HTML, link targets).
#![warn(missing_docs)]

mod fanout;
mod report;

use std::{sync::Arc, time::Duration};

use switchyard::{
    Agent, AgentError, Registry, TaskContext, TaskEvents,
    card::{self, skill},
    pb::a2a::{AgentCard, Part},
};
use switchyard_textstats::input::{Format, Input, MARKDOWN};

pub use fanout::{Outcome, PartResult};
pub use report::{REPORT_ARTIFACT, render};

/// What `research` fans out to, and its time budget.
#[derive(Debug, Clone)]
pub struct ResearchConfig {
    /// Names of the sub-agents, in report order.
    pub agents: Vec<String>,
    /// Taken off the remaining deadline before it is passed on to sub-agents.
    pub deadline_margin: Duration,
    /// The sub-call timeout when the caller set no deadline.
    pub default_timeout: Duration,
}

impl Default for ResearchConfig {
    fn default() -> Self {
        Self {
            agents: vec!["textstats".into(), "summarize".into(), "keywords".into()],
            deadline_margin: Duration::from_millis(250),
            default_timeout: Duration::from_secs(60),
        }
    }
}

/// The research agent over a registry of the mesh's agents.
#[derive(Debug, Clone)]
pub struct Research {
    registry: Arc<Registry>,
    config: ResearchConfig,
}

impl Research {
    /// A research agent that finds its sub-agents in `registry`.
    pub fn new(registry: Arc<Registry>, config: ResearchConfig) -> Self {
        Self { registry, config }
    }

    /// The time each sub-call may take: the remaining deadline minus the margin (at least
    /// 1 ms), or the default timeout.
    fn budget(&self, ctx: &TaskContext) -> Duration {
        match ctx.remaining() {
            Some(left) => left
                .saturating_sub(self.config.deadline_margin)
                .max(Duration::from_millis(1)),
            None => self.config.default_timeout,
        }
    }
}

#[tonic::async_trait]
impl Agent for Research {
    fn card(&self) -> AgentCard {
        card::builder(
            "research",
            "Research coordinator: sends a document to the text-analysis agents (textstats, \
             summarize, keywords) in parallel and merges their results into one report. \
             Missing parts are named with the reason; progress is streamed as each part \
             advances.",
        )
        .input_modes(["text/plain", "text/markdown"])
        .output_modes(["text/markdown", "application/json"])
        .skill(skill(
            "research-report",
            "Document report",
            "Statistics, readability, an extractive summary and keywords of a document, as one \
             Markdown report plus a JSON object with each part's data.",
            ["research", "report", "coordinator", "fan-out"],
            [
                "Report on this document: <paste text>",
                "switchyard stream research --file README.md",
            ],
        ))
        .build()
    }

    async fn execute(&self, ctx: TaskContext, events: TaskEvents) -> Result<(), AgentError> {
        let text = ctx.text();
        if text.trim().is_empty() {
            return Err(AgentError::rejected(
                "the message has no text: send the document as a text part",
            ));
        }
        // Read once here for the report's word count and note; the sub-agents get the document
        // as it came, labelled with the format decided here, so they read it the same way.
        let input = Input::read(ctx.message());
        let document = Part {
            media_type: match input.format {
                Format::Markdown => MARKDOWN,
                Format::Plain => "text/plain",
            }
            .into(),
            ..Part::text(text)
        };
        let budget = self.budget(&ctx);
        events
            .progress(
                0.0,
                format!(
                    "asking {} in parallel (time budget {} ms)",
                    self.config.agents.join(", "),
                    budget.as_millis()
                ),
            )
            .await?;
        let parts = fanout::run(
            &self.registry,
            &self.config.agents,
            &document,
            budget,
            &ctx,
            &events,
        )
        .await?;
        if ctx.is_cancelled() {
            return Err(AgentError::Canceled);
        }
        if parts.iter().all(|p| !p.outcome.is_ok()) {
            let reasons: Vec<String> = parts
                .iter()
                .map(|p| format!("{}: {}", p.agent, p.outcome.reason()))
                .collect();
            return Err(AgentError::failed(format!(
                "no part of the report could be made ({})",
                reasons.join("; ")
            )));
        }
        events.artifact(render(&input, &parts)).await?;
        Ok(())
    }
}
