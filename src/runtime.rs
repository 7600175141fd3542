//! The task runtime behind both gRPC services: creates and continues tasks, runs the agent,
//! orders and persists events, fans them out to subscribers, cancels, lists and recovers.
//!
//! A message that names no task is first offered to the agent's direct reply (`reply`); only
//! when it declines is a task made.
//!
//! Data path of one event: [`TaskEvents`](crate::TaskEvents) → [`Runtime::accept`] (checks
//! the state rules, assigns the next sequence number) → the group-commit writer (folds into
//! the snapshot, commits the batch) → the task's broadcast → every [`Subscription`].
//!
//! On a store shared by several replicas ([`TaskStore::notices`] is `Some`), the live map
//! holds exactly the tasks whose lease this replica holds (module `replica`), and the new tasks
//! whose creation commit, which takes their lease, is on its way: the others are read from the
//! store, subscribed to through it, canceled through their owner, and taken over when their
//! owner dies.

mod execution;
mod live;
mod lookup;
mod metrics;
mod push;
mod replica;
mod reply;
mod subscription;
mod writer;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::metadata::MetadataMap;

pub(crate) use live::LiveTask;
use replica::Replica;
pub(crate) use replica::ReplicaConfig;
pub(crate) use subscription::Subscription;
use writer::{CommitResult, LiveMap, WriteOp};

use crate::{
    Agent,
    error::{A2aErrorKind, RpcError},
    events::EventError,
    pb::a2a::{
        ListTasksResponse, Message, SendMessageRequest, StreamResponse, Task, TaskState,
        TaskStatus, TaskStatusUpdateEvent, stream_response,
    },
    store::{MessageKey, StoreError, StoredTask, TaskQuery, TaskStore},
    task::{self, new_id, now_timestamp},
    trace::TraceHeaders,
};

/// Who publishes an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The runtime itself (creation, WORKING, cancellation, the outcome of `execute`).
    Runtime,
    /// The agent, from the execution with this id.
    Execution(u64),
}

/// Why a task is canceled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CancelReason {
    /// CancelTask, or a cancel request in a Converse session.
    Requested,
    /// The deadline of the call that waits for the task expired.
    Deadline,
    /// The caller of a unary SendMessage went away before the task settled.
    Disconnected,
}

impl CancelReason {
    fn message(self) -> &'static str {
        match self {
            Self::Requested => "Task canceled at the client's request.",
            Self::Deadline => "Task canceled: the caller's deadline expired.",
            Self::Disconnected => "Task canceled: the caller disconnected before it finished.",
        }
    }
}

/// What the runtime does at start-up with tasks a previous process left SUBMITTED or WORKING.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Run the agent again on the task's last user message ([`TaskContext::resumed`]
    /// is true). Suits agents whose work is idempotent.
    ///
    /// [`TaskContext::resumed`]: crate::TaskContext::resumed
    #[default]
    Resume,
    /// Mark such tasks FAILED with a message saying the server restarted.
    Fail,
}

/// Settings of the runtime (a subset of [`ServeConfig`](crate::ServeConfig)).
#[derive(Clone, Debug)]
pub(crate) struct RuntimeConfig {
    /// The agent's name, the `agent` label of its metrics.
    pub(crate) agent_name: Arc<str>,
    pub(crate) default_history_length: Option<i32>,
    pub(crate) cancel_grace: Duration,
    /// [`ServeConfig::disconnect_grace`](crate::ServeConfig::disconnect_grace).
    pub(crate) disconnect_grace: Duration,
    pub(crate) push_notifications: bool,
    /// Where push notifications may go.
    pub(crate) push: Arc<crate::outbound::PushPolicy>,
    /// The HTTP client of push deliveries, whose resolver enforces [`Self::push`].
    pub(crate) push_client: reqwest::Client,
    pub(crate) streaming: bool,
    pub(crate) recovery: Recovery,
    /// Largest encoded size of a stored task, in bytes ([`ServeConfig::max_task_bytes`]).
    ///
    /// [`ServeConfig::max_task_bytes`]: crate::ServeConfig::max_task_bytes
    pub(crate) max_task_bytes: usize,
    /// Places for running executions ([`ServeConfig::max_concurrent_executions`]); `None`:
    /// no limit.
    ///
    /// [`ServeConfig::max_concurrent_executions`]: crate::ServeConfig::max_concurrent_executions
    pub(crate) executions: Option<Arc<tokio::sync::Semaphore>>,
    /// Lease settings, used when the store is shared by several replicas.
    pub(crate) replica: ReplicaConfig,
}

/// The caller of an RPC, as far as the runtime cares.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallInfo {
    pub(crate) deadline: Option<Instant>,
    pub(crate) metadata: MetadataMap,
    pub(crate) trace: TraceHeaders,
    /// The mTLS peer's verified SPIFFE ID ([`crate::tls`]), when the server speaks mTLS.
    pub(crate) peer: Option<crate::identity::PeerIdentity>,
}

/// How the caller of [`Runtime::send`] follows the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Streams every event ([`Started::subscription`]).
    Stream,
    /// Waits until the task settles ([`Started::settled`]).
    Settle,
    /// Returns once the message is durable ([`Started::created`]).
    Nothing,
}

/// A message accepted by [`Runtime::send`].
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) task: Arc<LiveTask>,
    /// The task as it stands once the message is durable: with [`Follow::Nothing`], and for a
    /// repeated message (the others follow the live task instead).
    pub(crate) snapshot: Option<Task>,
    /// For a continuation with [`Follow::Stream`], and a repeated message streamed: the
    /// snapshot the stream starts with, with its sequence number. For a new task the
    /// subscription's first event is the task itself.
    pub(crate) initial: Option<(Task, u64)>,
    /// For a continuation: the sequence number of the task's last event before this message,
    /// so that a push config sent with the message covers every event the message brings,
    /// its `TASK_STATE_WORKING` first. `None` for a new task.
    pub(crate) continued_after: Option<u64>,
    /// With [`Follow::Stream`].
    pub(crate) subscription: Option<Subscription>,
    /// With [`Follow::Settle`]: fires when a committed event settles the task (`Err` when a
    /// commit failed).
    pub(crate) settled: Option<oneshot::Receiver<CommitResult>>,
    /// For a new task: fires when its creation is durable (continuations are durable already).
    pub(crate) created: Option<oneshot::Receiver<CommitResult>>,
    /// With [`Follow::Settle`]: the execution, run by [`settle`](Self::settle) on the caller's
    /// task; whatever is left of it when this is dropped runs spawned.
    pub(crate) execution: Option<execution::Inline>,
}

impl Started {
    /// Waits until the message is durable.
    pub(crate) async fn durable(&mut self) -> Result<(), RpcError> {
        wait_ack(self.created.take()).await
    }

    /// Waits until the task settles (with [`Follow::Settle`]), running its execution inline
    /// meanwhile.
    pub(crate) async fn settle(&mut self) -> Result<(), RpcError> {
        let Some(mut rx) = self.settled.take() else {
            return Ok(());
        };
        let mut early = None;
        if let Some(exec) = self.execution.as_mut() {
            // Settled before `execute` returned (e.g. INPUT_REQUIRED): the rest of the
            // execution is spawned when `self` goes.
            early = tokio::select! {
                biased;
                r = &mut rx => Some(r),
                () = exec => None,
            };
        }
        let outcome = match early {
            Some(r) => r,
            None => rx.await,
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let msg = format!("task {} could not be persisted: {e}", self.task.id);
                // UNAVAILABLE when the store cannot be reached (retryable).
                Err(match *e {
                    StoreError::Unavailable(_) => RpcError::Unavailable(msg),
                    _ => RpcError::Internal(msg),
                })
            }
            Err(_) => Err(RpcError::Unavailable("the server is shutting down".into())),
        }
    }
}

/// A task looked up for an operation.
enum Found {
    /// Owned by this replica.
    Live(Arc<LiveTask>),
    /// Terminal, in the store.
    Finished(Box<StoredTask>),
    /// Not terminal, owned by another replica or by none (a shared store).
    Remote(Box<StoredTask>),
}

/// The runtime of one agent server.
#[derive(Debug)]
pub(crate) struct Runtime {
    agent: Arc<dyn Agent>,
    pub(crate) store: Arc<dyn TaskStore>,
    pub(crate) config: RuntimeConfig,
    live: Arc<LiveMap>,
    writer: mpsc::UnboundedSender<WriteOp>,
    tracker: TaskTracker,
    /// Fired when the server stops: open streams end.
    pub(crate) shutdown: CancellationToken,
    /// Set when the drain starts: new messages are refused.
    draining: AtomicBool,
    /// Tasks whose push notifications are being delivered.
    push_workers: std::sync::Mutex<std::collections::HashSet<String>>,
    closed: AtomicBool,
    /// This replica's leases, on a store shared by several replicas ([`TaskStore::notices`]
    /// is `Some`); `None`: this process is the store's only user.
    replica: Option<Arc<Replica>>,
    /// Messages being accepted right now (idempotent sends): the first send of a key claims
    /// it, and a concurrent duplicate waits for the task id it publishes. An entry goes once
    /// the store holds the key (the commit that records it), so that one of the two always
    /// answers a duplicate.
    accepting: Arc<Accepting>,
    /// The store lookups of those claims, gathered into batches.
    lookup: lookup::MessageLookup,
    /// This agent's task and store metrics.
    metrics: Arc<metrics::RuntimeMetrics>,
}

/// Claims of messages being accepted: the task id each became, once known.
type Accepting = std::sync::Mutex<HashMap<MessageKey, watch::Sender<Option<String>>>>;

/// The claim of one message key in [`Runtime::accepting`]; dropped, it releases the key.
#[derive(Debug)]
struct Claim {
    map: Arc<Accepting>,
    key: MessageKey,
    tx: watch::Sender<Option<String>>,
}

impl Claim {
    /// Tells concurrent duplicates which task the message went to.
    fn publish(&self, task_id: &str) {
        self.tx.send_replace(Some(task_id.to_owned()));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&self.key).is_some_and(|t| t.same_channel(&self.tx)) {
            map.remove(&self.key);
        }
    }
}

/// What [`Runtime::claim`] found for a message key.
enum Claimed {
    /// The key is this caller's to accept.
    Mine(Claim),
    /// The message was accepted already, by this task.
    Task(String),
}

impl std::fmt::Debug for dyn Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Agent")
    }
}

impl Runtime {
    /// Starts the writer and recovers unfinished tasks.
    pub(crate) async fn start(
        agent: Arc<dyn Agent>,
        store: Arc<dyn TaskStore>,
        config: RuntimeConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let live: Arc<LiveMap> = Arc::default();
        let notices = store.notices();
        let replica = notices
            .is_some()
            .then(|| Replica::new(config.replica.clone(), store.clone()));
        let metrics = Arc::new(metrics::RuntimeMetrics::new(&config.agent_name));
        tokio::spawn(writer::run(
            store.clone(),
            live.clone(),
            rx,
            metrics.clone(),
            replica.clone(),
        ));
        let lookup = lookup::MessageLookup::spawn(store.clone());
        let rt = Arc::new(Self {
            agent,
            store,
            config,
            live,
            writer: tx,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            draining: AtomicBool::new(false),
            push_workers: std::sync::Mutex::default(),
            closed: AtomicBool::new(false),
            replica,
            accepting: Arc::default(),
            lookup,
            metrics,
        });
        match notices {
            Some(notices) => {
                rt.take_over_orphans().await?;
                tokio::spawn(replica::lease_loop(Arc::downgrade(&rt)));
                tokio::spawn(replica::notice_listener(Arc::downgrade(&rt), notices));
            }
            None => rt.recover().await?,
        }
        Ok(rt)
    }

    pub(crate) fn agent(&self) -> &dyn Agent {
        &*self.agent
    }

    /// Accepts an event for `task`: checks the state rules, assigns the next sequence number
    /// and queues it for the writer. With `ack`, the returned receiver fires once it committed.
    pub(crate) fn accept(
        &self,
        task: &Arc<LiveTask>,
        event: StreamResponse,
        origin: Origin,
        ack: bool,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Option<oneshot::Receiver<CommitResult>>, EventError> {
        let mut st = task.lock();
        self.accept_locked(task, &mut st, event, origin, ack, permit)
    }

    /// [`accept`](Self::accept) with the task's lock already held.
    fn accept_locked(
        &self,
        task: &Arc<LiveTask>,
        st: &mut live::LiveState,
        mut event: StreamResponse,
        origin: Origin,
        ack: bool,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<Option<oneshot::Receiver<CommitResult>>, EventError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EventError::ShuttingDown);
        }
        let new_state = match &event.payload {
            Some(stream_response::Payload::StatusUpdate(u)) => {
                let state = u
                    .status
                    .as_ref()
                    .and_then(|s| TaskState::try_from(s.state).ok())
                    .unwrap_or(TaskState::Unspecified);
                if matches!(state, TaskState::Unspecified | TaskState::Submitted)
                    && origin != Origin::Runtime
                {
                    return Err(EventError::Invalid(format!(
                        "an agent cannot set the state {}",
                        state.as_str_name()
                    )));
                }
                Some(state)
            }
            Some(stream_response::Payload::ArtifactUpdate(u)) => {
                match &u.artifact {
                    Some(a) if !a.artifact_id.is_empty() && !a.parts.is_empty() => {}
                    _ => {
                        return Err(EventError::Invalid(
                            "an artifact needs an artifact_id and at least one part".into(),
                        ));
                    }
                }
                None
            }
            Some(stream_response::Payload::Task(_)) if origin == Origin::Runtime => None,
            _ => {
                return Err(EventError::Invalid(
                    "agents publish status and artifact updates only".into(),
                ));
            }
        };
        if !st.owned {
            // Another replica owns the task now (or any may continue it).
            return Err(EventError::TaskClosed { state: st.pending });
        }
        if st.poisoned {
            return Err(EventError::Store(Arc::new(StoreError::Corrupt(
                "an earlier commit of this task failed".into(),
            ))));
        }
        let closed = st.pending.is_terminal()
            || match origin {
                Origin::Runtime => false,
                Origin::Execution(id) => !st.is_current(id) || st.pending.is_interrupted(),
            };
        if closed {
            return Err(EventError::TaskClosed { state: st.pending });
        }
        let event_bytes = prost::Message::encoded_len(&event);
        // The runtime's own events (creation, WORKING, the outcome) are small and always fit
        // in the reply's headroom; the agent's are bounded so the task stays readable.
        let limit = self.config.max_task_bytes;
        if origin != Origin::Runtime && st.bytes + event_bytes > limit {
            // The estimate counts every event committed since the snapshot was last measured
            // in full: measure it now before refusing.
            let measured = prost::Message::encoded_len(&*st.snapshot);
            st.bytes = st.bytes.saturating_sub(st.committed_bytes) + measured;
            st.committed_bytes = measured;
        }
        if origin != Origin::Runtime && st.bytes + event_bytes > limit {
            return Err(EventError::TaskTooLarge { event_bytes, limit });
        }
        st.bytes += event_bytes;
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(s) = new_state {
            st.pending = s;
        }
        match &mut event.payload {
            Some(stream_response::Payload::StatusUpdate(u)) => {
                task::set_sequence(&mut u.metadata, seq);
                if let Some(s) = &mut u.status
                    && s.timestamp.is_none()
                {
                    s.timestamp = Some(now_timestamp());
                }
            }
            Some(stream_response::Payload::ArtifactUpdate(u)) => {
                task::set_sequence(&mut u.metadata, seq);
            }
            Some(stream_response::Payload::Task(t)) => task::set_sequence(&mut t.metadata, seq),
            _ => {}
        }
        let (ack_tx, ack_rx) = if ack {
            let (t, r) = oneshot::channel();
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        // Sent under the task lock so the writer sees this task's events in sequence order.
        self.writer
            .send(WriteOp::Event {
                task: task.clone(),
                seq,
                event,
                bytes: event_bytes,
                ack: ack_tx,
                permit,
                checkpoint: st.next_checkpoint.take(),
            })
            .map_err(|_| EventError::ShuttingDown)?;
        Ok(ack_rx)
    }

    /// Publishes an event from an agent, bounded by the task's in-flight limit.
    pub(crate) async fn publish(
        &self,
        task: &Arc<LiveTask>,
        event: StreamResponse,
        origin: Origin,
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), EventError> {
        let permit = task
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EventError::ShuttingDown)?;
        let mut st = task.lock();
        // Taken by the event's write op, under this same lock.
        st.next_checkpoint = checkpoint;
        let accepted = self.accept_locked(task, &mut st, event, origin, false, Some(permit));
        st.next_checkpoint = None;
        accepted.map(drop)
    }

    /// Queues execution `execution`'s checkpoint of `task`: it commits with the events the
    /// execution published before it (the writer's queue is ordered).
    pub(crate) fn checkpoint(
        &self,
        task: &Arc<LiveTask>,
        execution: u64,
        data: Vec<u8>,
    ) -> Result<(), EventError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EventError::ShuttingDown);
        }
        crate::events::check_checkpoint(&data)?;
        let st = task.lock();
        if !st.owned
            || st.pending.is_terminal()
            || st.pending.is_interrupted()
            || !st.is_current(execution)
        {
            return Err(EventError::TaskClosed { state: st.pending });
        }
        // Sent under the task lock, like events, so it lands after the ones before it.
        self.writer
            .send(WriteOp::Checkpoint {
                task: task.clone(),
                data,
            })
            .map_err(|_| EventError::ShuttingDown)
    }

    /// A status update made by the runtime, acknowledged once committed.
    fn runtime_status(
        &self,
        task: &Arc<LiveTask>,
        state: TaskState,
        text: Option<&str>,
    ) -> Result<Option<oneshot::Receiver<CommitResult>>, EventError> {
        self.accept(
            task,
            status_event(task, state, text),
            Origin::Runtime,
            true,
            None,
        )
    }

    /// Waits until everything queued so far has committed.
    pub(crate) async fn flush(&self) -> Result<(), EventError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(WriteOp::Barrier { ack: tx })
            .map_err(|_| EventError::ShuttingDown)?;
        match rx.await {
            Ok(r) => r.map_err(EventError::Store),
            Err(_) => Err(EventError::ShuttingDown),
        }
    }

    /// Creates a task for `request`, or continues the task it names, and starts the agent.
    /// Returns once the message is durable.
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: SendMessageRequest,
        call: CallInfo,
        task_deadline: Option<Instant>,
        follow: Follow,
    ) -> Result<Started, RpcError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(RpcError::Unavailable(
                "the agent is draining and accepts no new messages; retry on another replica"
                    .into(),
            ));
        }
        let accepted_output_modes = request
            .configuration
            .as_ref()
            .map(|c| c.accepted_output_modes.clone())
            .unwrap_or_default();
        let push = request
            .configuration
            .as_ref()
            .and_then(|c| c.task_push_notification_config.clone());
        if push.is_some() && !self.config.push_notifications {
            return Err(RpcError::a2a(
                A2aErrorKind::PushNotificationNotSupported,
                "this agent does not support push notifications",
            ));
        }
        if let Some(p) = &push {
            self.check_push_url("configuration.task_push_notification_config.url", &p.url)?;
        }
        let mut message = request
            .message
            .ok_or_else(|| RpcError::invalid("message", "is required"))?;
        // Idempotence (issue 13 item 4): the key is the message as the client sent it.
        let claim = if message.message_id.is_empty() {
            None
        } else {
            let key = MessageKey {
                context_id: message.context_id.clone(),
                message_id: message.message_id.clone(),
            };
            match self.claim(key).await? {
                Claimed::Mine(c) => Some(c),
                Claimed::Task(id) => return self.repeated(&id, follow).await,
            }
        };
        let permit = match &self.config.executions {
            None => None,
            Some(places) => Some(places.clone().try_acquire_owned().map_err(|_| {
                RpcError::Overloaded {
                    message: format!(
                        "agent {} is running its maximum of concurrent executions; retry later \
                         or on another replica",
                        self.config.agent_name
                    ),
                    retry_after: crate::server::OVERLOAD_PUSHBACK,
                }
            })?),
        };
        let start = execution::Start {
            call,
            deadline: task_deadline,
            accepted_output_modes,
            resumed: false,
            checkpoint: None,
            permit,
        };
        let started = if message.task_id.is_empty() {
            let task_id = new_id();
            let context_id = if message.context_id.is_empty() {
                new_id()
            } else {
                message.context_id.clone()
            };
            message.task_id.clone_from(&task_id);
            message.context_id.clone_from(&context_id);
            let snapshot = Task {
                id: task_id,
                context_id,
                status: Some(TaskStatus {
                    state: TaskState::Submitted as i32,
                    message: None,
                    timestamp: Some(now_timestamp()),
                }),
                artifacts: Vec::new(),
                history: vec![message.clone()],
                metadata: None,
            };
            if prost::Message::encoded_len(&snapshot) > self.config.max_task_bytes {
                return Err(task_too_large(&snapshot.id, self.config.max_task_bytes));
            }
            // On a shared store the creation commit takes the lease (epoch 1): no round trip
            // here. A fresh id no other replica knows; should it exist, the commit is refused
            // and the execution stopped.
            if let Some(r) = &self.replica {
                r.ensure_healthy().map_err(store_error)?;
            }
            let key = claim.as_ref().map(|c| &c.key);
            let started = self.create(snapshot, message, start, follow, key)?;
            if let Some(claim) = claim {
                claim.publish(&started.task.id);
                // Released once the creation (which records the key) has committed: the writer
                // drops it after the commit of what was queued before.
                let _ = self.writer.send(WriteOp::Release {
                    guard: Box::new(claim),
                });
            }
            started
        } else {
            // Durable (and the key recorded) when this returns; the claim goes then.
            self.continue_task(message, start, follow, claim.as_ref().map(|c| &c.key))
                .await?
        };
        if let Some(mut config) = push {
            config.task_id.clone_from(&started.task.id);
            // Inline with the message that creates the task: every event of the task.
            let after = started.continued_after.unwrap_or(0);
            self.put_push_config(config, Some(after)).await?;
        }
        Ok(started)
    }

    fn create(
        self: &Arc<Self>,
        snapshot: Task,
        message: Message,
        start: execution::Start,
        follow: Follow,
        key: Option<&MessageKey>,
    ) -> Result<Started, RpcError> {
        let live = LiveTask::new(
            Task {
                id: snapshot.id.clone(),
                context_id: snapshot.context_id.clone(),
                ..Default::default()
            },
            0,
            TaskState::Submitted,
        );
        {
            let mut st = live.lock();
            if self.replica.is_some() {
                // The epoch its creation commit grants.
                st.epoch = Some(1);
                st.creating = true;
            }
            st.messages.extend(key.cloned());
        }
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(live.id.clone(), live.clone());
        self.metrics.tasks_created.increment(1);
        let subscription = (follow == Follow::Stream)
            .then(|| Subscription::new(live.clone(), self.store.clone(), None).0);
        let settled = (follow == Follow::Settle).then(|| settle_waiter(&live));
        // Copies of the initial task: the agent's and, with `Follow::Nothing`, the reply's;
        // the event takes the original.
        let for_agent = snapshot.clone();
        let reply = (follow == Follow::Nothing).then(|| snapshot.clone());
        let event = StreamResponse {
            payload: Some(stream_response::Payload::Task(snapshot)),
        };
        let created = self
            .accept(
                &live,
                event,
                Origin::Runtime,
                follow == Follow::Nothing,
                None,
            )
            .map_err(event_error)?;
        let exec = live.lock().begin_execution();
        let execution = self.run_execution(&live, exec, for_agent, message, start, follow);
        Ok(Started {
            task: live,
            snapshot: reply,
            initial: None,
            continued_after: None,
            subscription,
            settled,
            created,
            execution,
        })
    }

    /// Starts an execution: inline in the caller's wait with [`Follow::Settle`] (returned),
    /// spawned otherwise.
    fn run_execution(
        self: &Arc<Self>,
        live: &Arc<LiveTask>,
        exec: live::Execution,
        snapshot: Task,
        message: Message,
        start: execution::Start,
        follow: Follow,
    ) -> Option<execution::Inline> {
        let (rt, live) = (self.clone(), live.clone());
        if follow == Follow::Settle {
            Some(execution::inline(rt, live, exec, snapshot, message, start))
        } else {
            execution::spawn(rt, live, exec, snapshot, message, start);
            None
        }
    }

    async fn continue_task(
        self: &Arc<Self>,
        message: Message,
        mut start: execution::Start,
        follow: Follow,
        key: Option<&MessageKey>,
    ) -> Result<Started, RpcError> {
        // A task this replica just gave up (it went to INPUT_REQUIRED) is taken again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .try_continue(message.clone(), &mut start, follow, attempts >= 3, key)
                .await?
            {
                Some(started) => return Ok(started),
                None => continue,
            }
        }
    }

    /// One attempt of [`continue_task`](Self::continue_task); `None` when the task left this
    /// replica meanwhile (try again).
    async fn try_continue(
        self: &Arc<Self>,
        mut message: Message,
        start: &mut execution::Start,
        follow: Follow,
        last_attempt: bool,
        key: Option<&MessageKey>,
    ) -> Result<Option<Started>, RpcError> {
        let live = match self.find(&message.task_id).await? {
            Found::Live(l) => l,
            Found::Finished(f) => {
                return Err(RpcError::unsupported(format!(
                    "task {} is {} and accepts no more messages",
                    f.task.id,
                    f.task.state().as_str_name()
                )));
            }
            Found::Remote(r) => {
                let state = r.task.state();
                if !state.is_interrupted() {
                    return Err(RpcError::unsupported(format!(
                        "task {} is {}; only a task in TASK_STATE_INPUT_REQUIRED or \
                         TASK_STATE_AUTH_REQUIRED accepts a message",
                        r.task.id,
                        state.as_str_name()
                    )));
                }
                self.adopt_to_continue(*r).await?
            }
        };
        if !message.context_id.is_empty() && message.context_id != live.context_id {
            return Err(RpcError::invalid(
                "message.context_id",
                format!(
                    "{:?} contradicts the context {:?} of task {}",
                    message.context_id, live.context_id, live.id
                ),
            ));
        }
        message.context_id.clone_from(&live.context_id);
        let message_bytes = prost::Message::encoded_len(&message);
        let before;
        let (exec, ack) = {
            let mut st = live.lock();
            if !st.owned {
                if last_attempt {
                    return Err(RpcError::Unavailable(format!(
                        "task {} moved between replicas; retry",
                        live.id
                    )));
                }
                return Ok(None);
            }
            if st.bytes + message_bytes > self.config.max_task_bytes {
                return Err(task_too_large(&live.id, self.config.max_task_bytes));
            }
            if !st.pending.is_interrupted() {
                let state = st.pending.as_str_name();
                return Err(RpcError::unsupported(if st.pending.is_terminal() {
                    format!("task {} is {state} and accepts no more messages", live.id)
                } else {
                    format!(
                        "task {} is {state}; only a task in TASK_STATE_INPUT_REQUIRED or \
                         TASK_STATE_AUTH_REQUIRED accepts a message",
                        live.id
                    )
                }));
            }
            st.bytes += message_bytes;
            st.messages.extend(key.cloned());
            before = st.next_seq.saturating_sub(1);
            self.writer
                .send(WriteOp::History {
                    task: live.clone(),
                    message: message.clone(),
                    bytes: message_bytes,
                })
                .map_err(|_| RpcError::Unavailable("the server is shutting down".into()))?;
            let working = status_event(&live, TaskState::Working, None);
            let ack = self
                .accept_locked(&live, &mut st, working, Origin::Runtime, true, None)
                .map_err(event_error)?;
            (st.begin_execution(), ack)
        };
        wait_ack(ack).await?;
        let (subscription, seq) = Subscription::new(live.clone(), self.store.clone(), None);
        let subscription = (follow == Follow::Stream).then_some(subscription);
        let settled = (follow == Follow::Settle).then(|| settle_waiter(&live));
        // One copy of the task for the agent; a second only for what `follow` answers with
        // (a stream's first event, or the reply), never both.
        let snapshot = live.snapshot();
        let initial = (follow == Follow::Stream).then(|| (snapshot.clone(), seq));
        let reply = (follow == Follow::Nothing).then(|| snapshot.clone());
        let start = execution::Start {
            call: start.call.clone(),
            deadline: start.deadline,
            accepted_output_modes: start.accepted_output_modes.clone(),
            resumed: start.resumed,
            checkpoint: None,
            permit: start.permit.take(),
        };
        let execution = self.run_execution(&live, exec, snapshot, message, start, follow);
        Ok(Some(Started {
            task: live,
            initial,
            continued_after: Some(before),
            snapshot: reply,
            subscription,
            settled,
            created: None,
            execution,
        }))
    }

    /// Claims message `key` for this caller, or finds the task that accepted it already: in
    /// the store, or from a concurrent send of the same key in this process (waited for, up
    /// to [`CLAIM_WAIT`]).
    async fn claim(&self, key: MessageKey) -> Result<Claimed, RpcError> {
        const CLAIM_WAIT: Duration = Duration::from_secs(10);
        let give_up = Instant::now() + CLAIM_WAIT;
        loop {
            let pending = {
                let mut map = self.accepting.lock().unwrap_or_else(|e| e.into_inner());
                match map.get(&key) {
                    Some(tx) => Some(tx.subscribe()),
                    None => {
                        let tx = watch::Sender::new(None);
                        map.insert(key.clone(), tx.clone());
                        None
                    }
                }
            };
            let Some(mut rx) = pending else {
                break;
            };
            let waited = tokio::time::timeout_at(give_up, rx.wait_for(Option::is_some)).await;
            match waited {
                Ok(Ok(id)) => return Ok(Claimed::Task(id.clone().unwrap_or_default())),
                // The first send failed before it made a task: claim again.
                Ok(Err(_)) => continue,
                Err(_) => {
                    return Err(RpcError::Unavailable(format!(
                        "message {:?} is still being accepted by an earlier send; retry",
                        key.message_id
                    )));
                }
            }
        }
        let claim = Claim {
            tx: self
                .accepting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned()
                .unwrap_or_else(|| watch::Sender::new(None)),
            map: self.accepting.clone(),
            key,
        };
        match self.lookup.task_for(claim.key.clone()).await {
            Ok(Some(id)) => Ok(Claimed::Task(id)),
            Ok(None) => Ok(Claimed::Mine(claim)),
            Err(e) => Err(shared_store_error(&e)),
        }
    }

    /// The answer to a message the agent accepted already (a client's retry): the task it
    /// went to, followed as `follow` asks, like a first send of it: a stream of every event of
    /// the task from its first one, or its settled (or current) state. Nothing is appended.
    async fn repeated(self: &Arc<Self>, id: &str, follow: Follow) -> Result<Started, RpcError> {
        self.metrics.sends_repeated.increment(1);
        tracing::debug!(task.id = %id, "repeated message: answering with its task");
        if follow == Follow::Stream {
            let (initial, subscription) = self.subscribe(id, Some(0)).await?;
            let task = match self.find(id).await? {
                Found::Live(l) => {
                    l.lock().reattached = true;
                    l
                }
                Found::Finished(f) | Found::Remote(f) => detached(*f),
            };
            let snapshot = task.snapshot();
            return Ok(Started {
                task,
                snapshot: Some(snapshot),
                initial,
                continued_after: None,
                subscription: Some(subscription),
                settled: None,
                created: None,
                execution: None,
            });
        }
        let (task, remote) = match self.find(id).await? {
            Found::Live(l) => {
                l.lock().reattached = true;
                (l, false)
            }
            Found::Finished(f) => (detached(*f), false),
            Found::Remote(f) => (detached(*f), true),
        };
        let snapshot = task.snapshot();
        let settled = (follow == Follow::Settle).then(|| {
            if remote && !snapshot.state().settles() {
                // Another replica runs it: follow its snapshot in the store.
                let (tx, rx) = oneshot::channel();
                tokio::spawn(poll_settled(self.store.clone(), task.clone(), tx));
                rx
            } else {
                settle_waiter(&task)
            }
        });
        Ok(Started {
            task,
            snapshot: Some(snapshot),
            initial: None,
            continued_after: None,
            subscription: None,
            settled,
            created: None,
            execution: None,
        })
    }

    /// Takes an interrupted task that another replica may still hold for a moment (its owner
    /// releases the lease just after committing the interrupted state) to continue it here.
    async fn adopt_to_continue(&self, stored: StoredTask) -> Result<Arc<LiveTask>, RpcError> {
        const HANDOVER: Duration = Duration::from_secs(3);
        let id = stored.task.id.clone();
        let deadline = Instant::now() + HANDOVER;
        let mut stored = stored;
        loop {
            if let Some(live) = self.adopt_if_free(stored).await? {
                return Ok(live);
            }
            if Instant::now() >= deadline {
                return Err(RpcError::Unavailable(format!(
                    "task {id} is held by another replica; retry"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            stored = self
                .store
                .task(&id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| RpcError::task_not_found(&id))?;
            let state = stored.task.state();
            if !state.is_interrupted() {
                // Continued (or finished) elsewhere meanwhile.
                return Err(RpcError::unsupported(format!(
                    "task {id} is {}; only a task in TASK_STATE_INPUT_REQUIRED or \
                     TASK_STATE_AUTH_REQUIRED accepts a message",
                    state.as_str_name()
                )));
            }
        }
    }

    /// Looks a task up: live in memory, or finished in the store (loading unfinished ones).
    async fn find(&self, id: &str) -> Result<Found, RpcError> {
        if let Some(l) = self.live_task(id) {
            return Ok(Found::Live(l));
        }
        let stored = self
            .store
            .task(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| RpcError::task_not_found(id))?;
        if stored.task.state().is_terminal() {
            return Ok(Found::Finished(Box::new(stored)));
        }
        if self.replica.is_some() {
            return Ok(Found::Remote(Box::new(stored)));
        }
        let state = stored.task.state();
        let fresh = LiveTask::new(stored.task, stored.last_seq, state);
        let mut map = self.live.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Found::Live(
            map.entry(id.to_owned()).or_insert(fresh).clone(),
        ))
    }

    fn live_task(&self, id: &str) -> Option<Arc<LiveTask>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// GetTask: the committed snapshot with at most `history_length` history messages.
    pub(crate) async fn get_task(
        &self,
        id: &str,
        history_length: Option<i32>,
    ) -> Result<Task, RpcError> {
        let mut t = match self.find(id).await? {
            Found::Live(l) => l.snapshot(),
            Found::Finished(f) | Found::Remote(f) => f.task,
        };
        task::trim_history(
            &mut t,
            history_length.or(self.config.default_history_length),
        );
        Ok(t)
    }

    /// ListTasks (A2A v1.0): newest status first, filtered, paged.
    pub(crate) async fn list_tasks(
        &self,
        mut query: TaskQuery,
        history_length: Option<i32>,
        include_artifacts: bool,
    ) -> Result<ListTasksResponse, RpcError> {
        // Every stored task is at most `max_task_bytes` (plus the runtime's own small events),
        // so a page cut there always fits the reply limit (A2A lets a page hold fewer tasks
        // than `page_size`; `next_page_token` continues it).
        query.max_bytes = Some(self.config.max_task_bytes);
        let page = self.store.list(&query).await.map_err(store_error)?;
        let history_length = history_length.or(self.config.default_history_length);
        let tasks = page
            .tasks
            .into_iter()
            .map(|mut t| {
                task::trim_history(&mut t, history_length);
                if !include_artifacts {
                    t.artifacts.clear();
                }
                t
            })
            .collect();
        Ok(ListTasksResponse {
            tasks,
            next_page_token: page.next.map(|c| c.to_token()).unwrap_or_default(),
            page_size: i32::try_from(query.page_size).unwrap_or(i32::MAX),
            total_size: i32::try_from(page.total).unwrap_or(i32::MAX),
        })
    }

    /// CancelTask: cancels the execution and marks the task CANCELED.
    pub(crate) async fn cancel(&self, id: &str, reason: CancelReason) -> Result<Task, RpcError> {
        let live = match self.find(id).await? {
            Found::Live(l) => l,
            Found::Finished(f) => return Err(not_cancelable(&f.task)),
            Found::Remote(r) => return self.cancel_remote(*r).await,
        };
        self.cancel_live(&live, reason).await?;
        Ok(live.snapshot())
    }

    /// Cancels a live task and waits until CANCELED is durable.
    pub(crate) async fn cancel_live(
        &self,
        live: &Arc<LiveTask>,
        reason: CancelReason,
    ) -> Result<(), RpcError> {
        let ack = {
            let mut st = live.lock();
            if st.pending.is_terminal() {
                return Err(not_cancelable(&st.snapshot));
            }
            if let Some(exec) = &st.execution {
                exec.cancel.cancel();
            }
            let canceled = status_event(live, TaskState::Canceled, Some(reason.message()));
            self.accept_locked(live, &mut st, canceled, Origin::Runtime, true, None)
                .map_err(event_error)?
        };
        wait_ack(ack).await
    }

    /// SubscribeToTask: the current snapshot (unless resuming) and a subscription.
    ///
    /// The subscription goes on through interrupted states (INPUT_REQUIRED, AUTH_REQUIRED) and
    /// ends only after the event that makes the task terminal (A2A v1.0.1 §3.1.6), so a
    /// subscriber of a task waiting for input sees its continuation.
    ///
    /// Without `after`: a terminal task fails with UNSUPPORTED_OPERATION. With `after` (the
    /// last sequence number the client received): the events after it, also for a task that
    /// finished meanwhile; `after` beyond the task's last event is INVALID_ARGUMENT.
    pub(crate) async fn subscribe(
        &self,
        id: &str,
        after: Option<u64>,
    ) -> Result<(Option<(Task, u64)>, Subscription), RpcError> {
        let live = match self.find(id).await? {
            Found::Live(l) => l,
            Found::Remote(r) => return self.subscribe_remote(*r, after),
            Found::Finished(f) if after.is_some() => {
                let f = *f;
                LiveTask::new(f.task, f.last_seq, TaskState::Completed)
            }
            Found::Finished(f) => {
                return Err(RpcError::unsupported(format!(
                    "task {} is {}; a terminal task has no events to subscribe to",
                    f.task.id,
                    f.task.state().as_str_name()
                )));
            }
        };
        let (mut sub, committed) = Subscription::new(live.clone(), self.store.clone(), after);
        sub.until_terminal();
        let snapshot = live.snapshot();
        if let Some(a) = after {
            if a > committed {
                return Err(RpcError::invalid(
                    "last-event-id",
                    format!("task {id} has no event {a}; its last event is {committed}"),
                ));
            }
            sub.finish_if(snapshot.state().is_terminal());
            return Ok((None, sub));
        }
        if snapshot.state().is_terminal() {
            return Err(RpcError::unsupported(format!(
                "task {id} is {}; a terminal task has no events to subscribe to",
                snapshot.state().as_str_name()
            )));
        }
        Ok((Some((snapshot, committed)), sub))
    }

    /// Checks that task `id` exists.
    pub(crate) async fn ensure_task(&self, id: &str) -> Result<(), RpcError> {
        self.find(id).await.map(drop)
    }

    /// Refuses a push-notification URL the agent's [`PushPolicy`](crate::outbound::PushPolicy)
    /// refuses without DNS (scheme, IP-literal host) with INVALID_ARGUMENT on `field`; names
    /// are checked at every delivery.
    pub(crate) fn check_push_url(&self, field: &str, url: &str) -> Result<(), RpcError> {
        self.config
            .push
            .check_url(url)
            .map(drop)
            .map_err(|e| RpcError::invalid(field, e.to_string()))
    }

    /// Creates or replaces a push-notification config and makes sure the task's events are
    /// delivered: those after `after`, or after its last committed event when `None`.
    pub(crate) async fn put_push_config(
        self: &Arc<Self>,
        config: crate::pb::a2a::TaskPushNotificationConfig,
        after: Option<u64>,
    ) -> Result<crate::pb::a2a::TaskPushNotificationConfig, RpcError> {
        let mut config = config;
        if config.id.is_empty() {
            config.id = new_id();
        }
        self.store
            .put_push_config(&config)
            .await
            .map_err(store_error)?;
        let after = match after {
            Some(a) => a,
            None => match self.find(&config.task_id).await? {
                Found::Live(l) => l.lock().committed_seq,
                Found::Remote(r) => r.last_seq,
                Found::Finished(_) => return Ok(config),
            },
        };
        push::watch(self, &config.task_id, after);
        Ok(config)
    }

    /// Starts executions for tasks a previous process left unfinished (a store this process
    /// alone uses).
    async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        for stored in self.store.unfinished().await? {
            let state = stored.task.state();
            let live = LiveTask::new(stored.task, stored.last_seq, state);
            self.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(live.id.clone(), live.clone());
            self.restart(&live, "the server restarted while it was running")
                .await?;
        }
        Ok(())
    }

    /// Runs an unfinished task again that this process did not start (after a restart or a
    /// takeover), with the agent's [`Recovery`] policy; `why` completes "Task failed: …".
    async fn restart(self: &Arc<Self>, live: &Arc<LiveTask>, why: &str) -> Result<(), StoreError> {
        if self.config.push_notifications && !self.store.push_configs(&live.id).await?.is_empty() {
            // At least once, from the oldest delivery cursor of the task's configs.
            let after = push::resume_point(&*self.store, &live.id).await?;
            push::watch(self, &live.id, after);
        }
        let state = live.lock().pending;
        if state.is_interrupted() {
            return Ok(());
        }
        let snapshot = live.snapshot();
        match self.config.recovery {
            Recovery::Fail => {
                let _ = self.runtime_status(
                    live,
                    TaskState::Failed,
                    Some(&format!("Task failed: {why}.")),
                );
            }
            Recovery::Resume => {
                let Some(message) = snapshot
                    .history
                    .iter()
                    .rev()
                    .find(|m| m.role == crate::pb::a2a::Role::User as i32)
                    .cloned()
                else {
                    let _ = self.runtime_status(
                        live,
                        TaskState::Failed,
                        Some("Task failed: no user message to resume from."),
                    );
                    return Ok(());
                };
                let checkpoint = self.store.checkpoint(&live.id).await?;
                tracing::info!(
                    task.id = %live.id,
                    why,
                    checkpoint = checkpoint.is_some(),
                    "resuming task"
                );
                let exec = live.lock().begin_execution();
                let start = execution::Start {
                    call: CallInfo::default(),
                    deadline: None,
                    accepted_output_modes: Vec::new(),
                    resumed: true,
                    checkpoint,
                    permit: None,
                };
                execution::spawn(self.clone(), live.clone(), exec, snapshot, message, start);
            }
        }
        Ok(())
    }

    /// Stops the runtime: waits up to `timeout` for running executions, ends open streams,
    /// and flushes the writer. Tasks still running stay WORKING in the store and are recovered
    /// by the next start; on a shared store their executions stop here and their leases are
    /// released, so another replica takes them over at once.
    pub(crate) async fn drain(&self, timeout: Duration) {
        self.draining.store(true, Ordering::Release);
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.tracker.len(),
                "drain timeout: unfinished tasks stay in the store and resume on restart"
            );
        }
        // Commit and deliver the last events (e.g. the final COMPLETED) before streams end.
        let _ = self.flush().await;
        self.shutdown.cancel();
        self.closed.store(true, Ordering::Release);
        if let Some(r) = &self.replica {
            // Tasks still running go to another replica at once (no takeover counted).
            let live: Vec<_> = self
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .map(|(_, l)| l)
                .collect();
            for l in live {
                l.disown(true);
            }
            r.release_all().await;
        }
    }

    /// Running executions.
    pub(crate) fn running(&self) -> usize {
        self.tracker.len()
    }
}

/// A status update event made by the runtime.
fn status_event(task: &LiveTask, state: TaskState, text: Option<&str>) -> StreamResponse {
    let message = text.map(|t| {
        let mut m = Message::agent_text(t);
        m.task_id.clone_from(&task.id);
        m.context_id.clone_from(&task.context_id);
        m
    });
    StreamResponse {
        payload: Some(stream_response::Payload::StatusUpdate(
            TaskStatusUpdateEvent {
                task_id: task.id.clone(),
                context_id: task.context_id.clone(),
                status: Some(TaskStatus {
                    state: state as i32,
                    message,
                    timestamp: Some(now_timestamp()),
                }),
                metadata: None,
            },
        )),
    }
}

/// A task this replica does not run, in memory only to answer a repeated message: it refuses
/// every event (so a cancel on the caller's behalf cannot write it).
fn detached(stored: StoredTask) -> Arc<LiveTask> {
    let state = stored.task.state();
    let live = LiveTask::new(stored.task, stored.last_seq, state);
    live.lock().owned = false;
    live
}

/// Polls the stored snapshot of `task` (run by another replica) until it settles, then fires
/// `done`; stops when nobody waits any more.
async fn poll_settled(
    store: Arc<dyn TaskStore>,
    task: Arc<LiveTask>,
    mut done: oneshot::Sender<CommitResult>,
) {
    const POLL: Duration = Duration::from_millis(50);
    loop {
        tokio::select! {
            () = done.closed() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        match store.task(&task.id).await {
            Ok(Some(stored)) if stored.task.state().settles() => {
                let mut st = task.lock();
                st.committed_seq = stored.last_seq;
                st.snapshot = Arc::new(stored.task);
                drop(st);
                let _ = done.send(Ok(()));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = done.send(Err(Arc::new(e)));
                return;
            }
        }
    }
}

/// Registers a waiter fired when the task settles.
fn settle_waiter(live: &LiveTask) -> oneshot::Receiver<CommitResult> {
    let (tx, rx) = oneshot::channel();
    let mut st = live.lock();
    if st.snapshot.state().settles() && st.committed_seq > 0 {
        let _ = tx.send(Ok(()));
    } else {
        st.settle_waiters.push(tx);
    }
    rx
}

/// Waits for a commit acknowledgement.
async fn wait_ack(ack: Option<oneshot::Receiver<CommitResult>>) -> Result<(), RpcError> {
    match ack {
        Some(rx) => match rx.await {
            Ok(Ok(())) => Ok(()),
            // UNAVAILABLE when the store cannot be reached (retryable), INTERNAL otherwise.
            Ok(Err(e)) => Err(match *e {
                StoreError::Unavailable(_) => RpcError::Unavailable(e.to_string()),
                _ => RpcError::Internal(e.to_string()),
            }),
            Err(_) => Err(RpcError::Unavailable("the server is shutting down".into())),
        },
        None => Ok(()),
    }
}

fn not_cancelable(t: &Task) -> RpcError {
    let mut metadata = HashMap::new();
    metadata.insert("taskId".to_owned(), t.id.clone());
    RpcError::A2a {
        kind: A2aErrorKind::TaskNotCancelable,
        message: format!(
            "task {} is {} and cannot be canceled",
            t.id,
            t.state().as_str_name()
        ),
        metadata,
    }
}

pub(crate) fn store_error(e: StoreError) -> RpcError {
    shared_store_error(&e)
}

/// [`store_error`] of a failure shared by several callers (a batch's).
fn shared_store_error(e: &StoreError) -> RpcError {
    match e {
        StoreError::Unavailable(_) => RpcError::Unavailable(e.to_string()),
        other => RpcError::Internal(other.to_string()),
    }
}

/// A message refused because the task would outgrow `limit` (RESOURCE_EXHAUSTED).
fn task_too_large(id: &str, limit: usize) -> RpcError {
    RpcError::ResourceExhausted(format!(
        "the message would take task {id} past the largest task size of {limit} bytes \
         (max_task_bytes); start a new task"
    ))
}

fn event_error(e: EventError) -> RpcError {
    match e {
        EventError::ShuttingDown => RpcError::Unavailable("the server is shutting down".into()),
        // The store cannot be reached (e.g. PostgreSQL lost): retryable, not an internal fault.
        EventError::Store(s) if matches!(*s, StoreError::Unavailable(_)) => {
            RpcError::Unavailable(s.to_string())
        }
        other => RpcError::Internal(other.to_string()),
    }
}
