//! The bus bridge: consumes an agent's address, delivers each request to the agent as
//! `SendMessage` (or `SendStreamingMessage` when it publishes an event stream), publishes the
//! settled Task to the request's reply address, and acknowledges only then.
//!
//! Per delivery, in order:
//! 1. validate the envelope and decode the `SendMessageRequest`; a malformed message, or one
//!    whose `ce-deadline` passed, goes to the dead-letter address (reason in
//!    `ce-deadletterreason`) and is acknowledged;
//! 2. claim its message id in the [`Dedupe`] store: an id answered before is answered again
//!    from the store (no second task); an id another live bridge is running is handed back
//!    (nack with delay); an id whose previous owner died is taken over — the bridge first looks
//!    for the task the owner may have started (the bridge sets `contextId` to
//!    `bus-<messageId>` when the publisher left it empty; ListTasks by context, matched on the
//!    message id) and waits for it instead of sending again;
//! 3. call the agent under the message's deadline — SendMessage with `returnImmediately`, then
//!    SubscribeToTask until the task settles, so the task does not die with a crashed bridge
//!    (a blocking call's disconnect cancels it); RESOURCE_EXHAUSTED / UNAVAILABLE (the agent
//!    sheds load) are retried in place with exponential backoff while the delivery is held,
//!    which slows the bridge down;
//! 4. success: store and publish the reply, ack. Failure: republish with `ce-attempt` + 1 and
//!    ack, or after [`BridgeConfig::max_attempts`] dead-letter it.
//!
//! At most [`ConsumeOptions::prefetch`] deliveries are held at once (the broker's window and
//! the bridge's semaphore).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use switchyard::{
    Client, ClientError,
    pb::a2a::{
        ListTasksRequest, Message, SendMessageRequest, StreamResponse, Task, send_message_response,
        stream_response,
    },
    task::sequence_of,
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Delivery},
    dedupe::{Claim, Dedupe},
    envelope::{self, Envelope, EnvelopeError, header},
};

/// `ce-type` of a direct message reply (the agent answered without a task).
pub const MESSAGE_TYPE: &str = "lf.a2a.v1.Message";

/// One bridge's settings. Tests build it directly; `switchyard up` reads it from config.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The agent's name (`ce-subject` of replies and events).
    pub agent: String,
    /// The address consumed, e.g. [`naming::agent`](crate::naming::agent).
    pub address: String,
    /// The consumer group; bridges with the same group compete for messages.
    pub group: String,
    /// Where poison and malformed messages go.
    pub dead_letter: String,
    /// Where the agent's task events are published in sequence order (`None`: not published).
    pub events: Option<String>,
    /// Attempts before a failing message is dead-lettered (≥ 1).
    pub max_attempts: u32,
    /// Broker window and redelivery timing.
    pub consume: ConsumeOptions,
    /// How long a claim stays with this bridge without renewal (renewed every third of it).
    pub lease: Duration,
    /// This instance's name (consumer name, dedupe owner, `ce-source`).
    pub name: String,
    /// Encoding of replies and events ([`envelope::JSON`] or [`envelope::PROTOBUF`]).
    pub content_type: String,
    /// First backoff when the agent sheds load (doubles, 5 tries).
    pub shed_backoff: Duration,
}

impl BridgeConfig {
    /// The defaults for `agent` under `prefix` (see [`naming`](crate::naming)).
    pub fn new(prefix: &str, agent: &str) -> Self {
        let address = crate::naming::agent(prefix, agent);
        Self {
            agent: agent.into(),
            dead_letter: crate::naming::dead_letter(&address),
            address,
            group: crate::naming::BRIDGE_GROUP.into(),
            events: None,
            max_attempts: 3,
            consume: ConsumeOptions::default(),
            lease: Duration::from_secs(30),
            name: format!("bridge-{}", uuid::Uuid::new_v4().simple()),
            content_type: envelope::JSON.into(),
            shed_backoff: Duration::from_millis(100),
        }
    }
}

/// Counters of one bridge (also exported as `switchyard_bus_*` metrics).
#[derive(Debug, Default)]
pub struct Stats {
    /// Deliveries taken from the bus.
    pub consumed: AtomicU64,
    /// Deliveries the broker marked as redelivered.
    pub redeliveries: AtomicU64,
    /// Requests answered by the agent (a reply stored).
    pub answered: AtomicU64,
    /// Deliveries of ids answered (or dead-lettered) before, answered from the store.
    pub duplicates: AtomicU64,
    /// Envelopes published (replies, events, retries, dead letters).
    pub published: AtomicU64,
    /// Failed attempts republished for another try.
    pub retries: AtomicU64,
    /// Messages sent to the dead-letter address.
    pub dead_letters: AtomicU64,
    /// Of those, the ones that could not be parsed.
    pub malformed: AtomicU64,
    /// Messages waiting for this bridge's group at the last look (where the broker tells).
    pub lag: AtomicU64,
}

impl Stats {
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A bridge between one bus address and one agent.
#[derive(Debug, Clone)]
pub struct Bridge {
    bus: Arc<dyn Bus>,
    agent: Client,
    dedupe: Dedupe,
    config: Arc<BridgeConfig>,
    stats: Arc<Stats>,
}

struct Headers<'a>(&'a Envelope);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.headers.keys().map(String::as_str).collect()
    }
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    Agent(ClientError),
    Bus(BusError),
}

impl Bridge {
    /// A bridge delivering `config.address` on `bus` to `agent`, deduplicating in `dedupe`.
    pub fn new(bus: Arc<dyn Bus>, agent: Client, dedupe: Dedupe, config: BridgeConfig) -> Self {
        Self {
            bus,
            agent,
            dedupe,
            config: Arc::new(config),
            stats: Arc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Its settings.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    /// Consumes until `shutdown`, then waits for the deliveries in hand.
    ///
    /// # Errors
    /// The bus's errors when attaching, or when the consumer ends.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let c = &self.config;
        self.bus
            .ensure(&c.dead_letter, crate::naming::DEAD_LETTER_GROUP, c.consume)
            .await?;
        if let Some(events) = &c.events {
            self.bus
                .ensure(events, crate::naming::REPLAY_GROUP, c.consume)
                .await?;
        }
        let mut consumer = self
            .bus
            .consume(&c.address, &c.group, &c.name, c.consume)
            .await?;
        let _ = self.dedupe.prune().await;
        tracing::info!(transport = self.bus.transport(), address = %c.address, agent = %c.agent, "bus bridge consuming");
        // Aborted with this future too: a bridge task that is aborted (a crash in tests) must
        // not leave its lag watcher polling the broker forever.
        let lag = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(self.clone().watch_lag()));
        let window = Arc::new(Semaphore::new(c.consume.prefetch.max(1)));
        let mut inflight = JoinSet::new();
        let result = loop {
            let permit = tokio::select! {
                p = window.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                () = shutdown.cancelled() => break Ok(()),
            };
            let delivery = tokio::select! {
                d = consumer.next() => d,
                () = shutdown.cancelled() => break Ok(()),
            };
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => break Err(e),
            };
            let this = self.clone();
            inflight.spawn(async move {
                this.handle(delivery).await;
                drop(permit);
            });
            while inflight.try_join_next().is_some() {}
        };
        lag.abort();
        while inflight.join_next().await.is_some() {}
        result
    }

    async fn watch_lag(self) {
        let labels = self.labels();
        loop {
            if let Ok(Some(n)) = self.bus.lag(&self.config.address, &self.config.group).await {
                self.stats.lag.store(n, Ordering::Relaxed);
                metrics::gauge!("switchyard_bus_lag", &labels).set(n as f64);
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }

    fn labels(&self) -> [(&'static str, String); 2] {
        [
            ("transport", self.bus.transport().to_owned()),
            ("agent", self.config.agent.clone()),
        ]
    }

    fn count(&self, name: &'static str, c: &AtomicU64) {
        bump(c);
        metrics::counter!(name, &self.labels()).increment(1);
    }

    /// Handles one delivery; never panics on bad input.
    pub async fn handle(&self, delivery: Delivery) {
        self.count("switchyard_bus_consumed_total", &self.stats.consumed);
        if delivery.redelivered {
            self.count(
                "switchyard_bus_redeliveries_total",
                &self.stats.redeliveries,
            );
        }
        let Delivery {
            envelope: env,
            acker,
            ..
        } = delivery;
        let span = tracing::info_span!(
            "bus.process",
            otel.name = %format_args!("{} process", self.config.address),
            otel.kind = "consumer",
            messaging.system = self.bus.transport(),
            messaging.destination.name = %self.config.address,
            messaging.message.id = env.id().unwrap_or_default(),
            messaging.operation.type = "process",
        );
        if env.get(header::TRACEPARENT).is_some() {
            let _ = span.set_parent(TraceContextPropagator::new().extract(&Headers(&env)));
        }
        self.process(env, acker).instrument(span).await;
    }

    fn parse(env: &Envelope) -> Result<SendMessageRequest, EnvelopeError> {
        env.validate()?;
        match env.get(header::TYPE) {
            Some(envelope::REQUEST_TYPE) => {}
            Some(other) => {
                return Err(EnvelopeError::Malformed {
                    name: header::TYPE,
                    value: other.into(),
                });
            }
            None => return Err(EnvelopeError::Missing(header::TYPE)),
        }
        let mut req: SendMessageRequest = env.decode("SendMessageRequest")?;
        let message = req
            .message
            .as_mut()
            .ok_or(EnvelopeError::Missing("message"))?;
        if message.message_id.is_empty() {
            message.message_id = env.id().unwrap_or_default().to_owned();
        }
        if message.context_id.is_empty() {
            message.context_id = format!("bus-{}", message.message_id);
        }
        Ok(req)
    }

    async fn process(&self, env: Envelope, acker: Box<dyn Acker>) {
        let req = match Self::parse(&env) {
            Ok(r) => r,
            Err(e) => {
                bump(&self.stats.malformed);
                return self
                    .dead_letter(env, format!("malformed: {e}"), acker)
                    .await;
            }
        };
        let deadline = env.deadline().ok().flatten();
        let remaining = match deadline {
            Some(d) => match (d - chrono::Utc::now()).to_std() {
                Ok(r) if !r.is_zero() => Some(r),
                _ => {
                    return self
                        .dead_letter(env, "deadline expired before delivery".into(), acker)
                        .await;
                }
            },
            None => None,
        };
        let message = req.message.as_ref().expect("parse checked the message");
        let id = message.message_id.clone();
        let context = message.context_id.clone();
        let c = &self.config;
        let claim = match self.dedupe.claim(&id, &c.name, c.lease).await {
            Ok(claim) => claim,
            Err(e) => {
                tracing::warn!(error = %e, "dedupe claim failed; delivery handed back");
                let _ = acker.nack(Duration::from_secs(1)).await;
                return;
            }
        };
        let takeover = match claim {
            Claim::Won { takeover } => takeover,
            Claim::Busy => {
                let _ = acker.nack((c.lease / 4).min(Duration::from_secs(2))).await;
                return;
            }
            Claim::Dead => {
                self.count("switchyard_bus_duplicates_total", &self.stats.duplicates);
                let _ = acker.ack().await;
                return;
            }
            Claim::Done {
                reply_type,
                content_type,
                body,
            } => {
                self.count("switchyard_bus_duplicates_total", &self.stats.duplicates);
                let mut reply = Envelope {
                    body: body.into(),
                    ..Default::default()
                };
                reply.set(header::CONTENT_TYPE, &content_type);
                self.finish(&env, reply, &reply_type, acker).await;
                return;
            }
        };
        // Renews the claim while the agent works; dropped (aborted) with this future, so a
        // crashed bridge's claim expires.
        let heartbeat = {
            let (dedupe, id, name, lease) =
                (self.dedupe.clone(), id.clone(), c.name.clone(), c.lease);
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let _ = dedupe.renew(&id, &name, lease).await;
                }
            }))
        };
        let agent = match remaining {
            Some(r) => self.agent.clone().with_timeout(r),
            None => self.agent.clone(),
        };
        let agent = match (
            env.get(header::TRACEPARENT),
            switchyard::trace::outgoing().traceparent,
        ) {
            (Some(tp), None) => agent
                .with_metadata(header::TRACEPARENT, tp)
                .unwrap_or_else(|_| self.agent.clone()),
            _ => agent,
        };
        let result = self.run_once(&agent, req, &id, &context, takeover).await;
        drop(heartbeat);
        match result {
            Ok((reply_type, reply)) => {
                let ct = reply
                    .get(header::CONTENT_TYPE)
                    .unwrap_or(envelope::JSON)
                    .to_owned();
                if let Err(e) = self.dedupe.done(&id, &reply_type, &ct, &reply.body).await {
                    tracing::warn!(error = %e, "dedupe record failed");
                }
                self.count("switchyard_bus_answered_total", &self.stats.answered);
                self.finish(&env, reply, &reply_type, acker).await;
            }
            Err(failure) => {
                let reason = match &failure {
                    Failure::Agent(e) => format!("agent {}: {e}", c.agent),
                    Failure::Bus(e) => e.to_string(),
                };
                let attempt = env.attempt();
                if attempt >= c.max_attempts {
                    let _ = self.dedupe.dead(&id).await;
                    self.dead_letter(env, format!("{reason} (after {attempt} attempts)"), acker)
                        .await;
                } else {
                    let _ = self.dedupe.release(&id, &c.name).await;
                    let retry = env.with(header::ATTEMPT, &(attempt + 1).to_string());
                    match self.bus.publish(&c.address, retry).await {
                        Ok(()) => {
                            self.count("switchyard_bus_published_total", &self.stats.published);
                            self.count("switchyard_bus_retries_total", &self.stats.retries);
                            let _ = acker.ack().await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "retry publish failed; delivery handed back");
                            let _ = acker.nack(Duration::from_secs(1)).await;
                        }
                    }
                }
            }
        }
    }

    /// Runs the request once (looking for an earlier owner's task first on a takeover) and
    /// returns the reply envelope (body and content type set) and its `ce-type`.
    async fn run_once(
        &self,
        agent: &Client,
        req: SendMessageRequest,
        id: &str,
        context: &str,
        takeover: bool,
    ) -> Result<(String, Envelope), Failure> {
        let existing = if takeover {
            self.find_task(agent, context, id).await
        } else {
            None
        };
        let settled = match existing {
            Some(task) => Reply::Task(self.wait_settled(agent, task).await?),
            None => self.send(agent, req).await?,
        };
        let ct = self.config.content_type.as_str();
        let encoded = match &settled {
            Reply::Task(t) => Envelope::new(
                envelope::TASK_TYPE,
                &uuid::Uuid::new_v4().to_string(),
                t,
                ct,
            ),
            Reply::Message(m) => {
                Envelope::new(MESSAGE_TYPE, &uuid::Uuid::new_v4().to_string(), m, ct)
            }
        };
        let reply_type = match settled {
            Reply::Task(_) => envelope::TASK_TYPE,
            Reply::Message(_) => MESSAGE_TYPE,
        };
        let reply = encoded.map_err(|e| Failure::Bus(BusError::Invalid(e.to_string())))?;
        Ok((reply_type.into(), reply))
    }

    async fn find_task(&self, agent: &Client, context: &str, id: &str) -> Option<Task> {
        let list = agent
            .list_tasks(ListTasksRequest {
                context_id: context.into(),
                page_size: Some(100),
                ..Default::default()
            })
            .await
            .ok()?;
        list.tasks
            .into_iter()
            .find(|t| t.history.iter().any(|m| m.message_id == id))
    }

    /// Follows the task until it settles (SubscribeToTask, which ends there), then reads it
    /// with GetTask (which, unlike ListTasks, carries the artifacts).
    async fn wait_settled(&self, agent: &Client, task: Task) -> Result<Task, Failure> {
        let settled = |t: &Task| t.status.as_ref().is_some_and(|s| s.state().settles());
        if settled(&task) && !task.artifacts.is_empty() {
            return Ok(task);
        }
        loop {
            let task = agent
                .get_task(&task.id, None)
                .await
                .map_err(Failure::Agent)?;
            if settled(&task) {
                return Ok(task);
            }
            if let Ok(mut events) = agent.subscribe(&task.id, None).await {
                while let Some(Ok(_)) = events.next().await {}
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Sends, retrying in place while the agent sheds load.
    async fn send(&self, agent: &Client, req: SendMessageRequest) -> Result<Reply, Failure> {
        let mut backoff = self.config.shed_backoff;
        let mut tries = 0;
        // The task must not depend on this call: a blocking SendMessage whose caller goes away
        // (this bridge crashing) cancels the task, and the bridge that takes the message over
        // would find it CANCELED. So: return at once, then follow the task.
        let mut detached = req.clone();
        detached
            .configuration
            .get_or_insert_with(Default::default)
            .return_immediately = true;
        loop {
            let result = match &self.config.events {
                Some(events) => self.send_streaming(agent, req.clone(), events).await,
                None => match agent.send_message(detached.clone()).await {
                    Ok(r) => match r.payload {
                        Some(send_message_response::Payload::Task(t)) => {
                            self.wait_settled(agent, t).await.map(Reply::Task)
                        }
                        Some(send_message_response::Payload::Message(m)) => Ok(Reply::Message(m)),
                        None => Err(Failure::Bus(BusError::Invalid(
                            "empty SendMessageResponse".into(),
                        ))),
                    },
                    Err(e) => Err(Failure::Agent(e)),
                },
            };
            match result {
                Err(Failure::Agent(e))
                    if tries < 5
                        && matches!(
                            e.code(),
                            tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                        ) =>
                {
                    tries += 1;
                    metrics::counter!("switchyard_bus_agent_shed_total", &self.labels())
                        .increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                other => return other,
            }
        }
    }

    /// Streams the task's events to the event address, then reads the settled task.
    async fn send_streaming(
        &self,
        agent: &Client,
        req: SendMessageRequest,
        events: &str,
    ) -> Result<Reply, Failure> {
        let mut stream = agent
            .send_streaming_message(req)
            .await
            .map_err(Failure::Agent)?;
        let mut task_id = None;
        while let Some(event) = stream.next().await {
            let event: StreamResponse = event.map_err(|s| Failure::Agent(s.into()))?;
            match &event.payload {
                Some(stream_response::Payload::Message(m)) => return Ok(Reply::Message(m.clone())),
                Some(stream_response::Payload::Task(t)) => task_id = Some(t.id.clone()),
                _ => {}
            }
            self.publish_event(events, &event, task_id.as_deref().unwrap_or_default())
                .await
                .map_err(Failure::Bus)?;
        }
        let id = task_id
            .ok_or_else(|| Failure::Bus(BusError::Invalid("the stream carried no task".into())))?;
        let task = agent.get_task(&id, None).await.map_err(Failure::Agent)?;
        Ok(Reply::Task(task))
    }

    async fn publish_event(
        &self,
        events: &str,
        event: &StreamResponse,
        task_id: &str,
    ) -> Result<(), BusError> {
        let seq = sequence_of(event).unwrap_or_default();
        let mut env = Envelope::new(
            envelope::EVENT_TYPE,
            &format!("{task_id}:{seq}"),
            event,
            &self.config.content_type,
        )
        .map_err(|e| BusError::Invalid(e.to_string()))?;
        env.set(header::SUBJECT, &self.config.agent);
        env.set(header::SEQUENCE, &seq.to_string());
        env.set(header::SOURCE, &self.config.name);
        self.publish_traced(events, env).await
    }

    async fn publish_traced(&self, address: &str, mut env: Envelope) -> Result<(), BusError> {
        let t = switchyard::trace::outgoing();
        if let Some(tp) = &t.traceparent {
            env.set(header::TRACEPARENT, tp);
        }
        self.bus.publish(address, env).await?;
        self.count("switchyard_bus_published_total", &self.stats.published);
        Ok(())
    }

    /// Publishes `reply` to the request's reply address (if any) and acks.
    async fn finish(
        &self,
        request: &Envelope,
        mut reply: Envelope,
        reply_type: &str,
        acker: Box<dyn Acker>,
    ) {
        let Some(to) = request.reply_to() else {
            let _ = acker.ack().await;
            return;
        };
        reply.set(header::SPECVERSION, "1.0");
        reply.set(header::BUSVERSION, envelope::BUS_VERSION);
        reply.set(header::ID, &uuid::Uuid::new_v4().to_string());
        reply.set(header::TYPE, reply_type);
        reply.set(header::SOURCE, &self.config.name);
        reply.set(header::SUBJECT, &self.config.agent);
        if let Some(c) = request.correlation_id() {
            reply.set(header::CORRELATION_ID, c);
        }
        match self.publish_traced(to, reply).await {
            Ok(()) => {
                let _ = acker.ack().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, reply_to = to, "reply publish failed; delivery handed back");
                let _ = acker.nack(Duration::from_secs(1)).await;
            }
        }
    }

    async fn dead_letter(&self, env: Envelope, reason: String, acker: Box<dyn Acker>) {
        tracing::warn!(address = %self.config.address, %reason, id = env.id().unwrap_or_default(), "dead letter");
        let dead = env.with(header::DEAD_LETTER_REASON, &reason);
        match self.bus.publish(&self.config.dead_letter, dead).await {
            Ok(()) => {
                self.count(
                    "switchyard_bus_dead_letters_total",
                    &self.stats.dead_letters,
                );
                let _ = acker.ack().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "dead-letter publish failed; delivery handed back");
                let _ = acker.nack(Duration::from_secs(1)).await;
            }
        }
    }
}

enum Reply {
    Task(Task),
    Message(Message),
}
