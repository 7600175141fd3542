//! The shared task store for several replicas of one agent: PostgreSQL, through sqlx.
//!
//! # Layout
//! Each agent lives in its own schema (default: the agent's name, [`schema_for_agent`]), so
//! several agents can share one database; every replica of an agent uses the same schema. The
//! schema is created and migrated at start by sqlx's migrator with the embedded, versioned files
//! of `migrations/postgres/` (forward-only: a released file is never edited; sqlx refuses to
//! start when an applied migration's checksum differs). The migrator holds a PostgreSQL advisory
//! lock while it runs, so replicas that start together apply each migration once.
//!
//! # Writes
//! One transaction per [`TaskStore::commit`] batch (group commit) with multi-row statements
//! (`UNNEST` of arrays): fencing check, task upserts, per-state counts, events, and one
//! `pg_notify` per task, which PostgreSQL delivers to every replica when the transaction
//! commits. Sequence numbers stay unique and gap-free with several replicas because only the
//! lease holder writes a task, and its commits carry the lease epoch: the commit reads the
//! task's lease row `FOR SHARE` and refuses the whole batch ([`StoreError::Fenced`]) when the
//! epoch changed (or the task has no lease at all); a takeover's `UPDATE` of that row waits for
//! the commit, and the primary key `(task_id, seq)` rejects a duplicate event in any case.
//! A new task's first commit ([`TaskWrite::creates`]) takes no separate lease round trip: it
//! inserts the lease row (epoch 1) in the same transaction, or none when the task settles in
//! it; the task row and its lease become visible together, so no other replica ever sees the
//! task unleased. Its fencing is that the task is new: the lease insert finds no row (`ON
//! CONFLICT DO NOTHING`, waiting for a concurrent insert) and the old-state read finds no task.
//!
//! # Leases
//! A release keeps the row (marked released) so that epochs only grow: the next owner gets
//! `epoch + 1` without counting a takeover. [`TaskStore::renew_leases`] reports each task taken
//! from a replica once (the row remembers the displaced owner until it renews). All lease
//! times use the database clock, never a replica's, and its current reading
//! (`clock_timestamp()`), not the statement's start (`now()`): a takeover that waited for an
//! in-flight commit's row lock must not be granted a lease that expired while it waited. Lease
//! rows are always committed with the server's `synchronous_commit` (never relaxed by
//! [`Durability::Os`], not even in a commit that writes new tasks' leases).
//!
//! # Durability
//! [`Durability::Fsync`]: `synchronous_commit = on` (the server's default), a commit returns
//! once the server has flushed its WAL to disk. [`Durability::Os`]: each commit transaction runs
//! `SET LOCAL synchronous_commit = off`, so it returns before the WAL flush; a crash of the
//! database server (not of the agent) may lose the last ~0.6 s of commits (3 ×
//! `wal_writer_delay`), and never corrupts anything.
//!
//! # Notices
//! One dedicated connection `LISTEN`s on the schema's channel (`switchyard_<schema>`) and feeds
//! a broadcast channel ([`TaskStore::notices`]); it reconnects after a loss (notices sent while
//! it was away are lost: subscribers re-read the store). Payloads: `c <seq> <task id>`
//! (committed) and `x <task id>` (cancel requested).
//!
//! # Failures
//! A lost or refused connection gives [`StoreError::Unavailable`] (gRPC `UNAVAILABLE`); the pool
//! tests connections before use and opens new ones when the database is back.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::TryStreamExt as _;
use prost::Message as _;
use sqlx::{
    ConnectOptions as _, Connection as _, Executor as _, PgPool, Postgres, QueryBuilder, Row as _,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{
    DatabaseUrl, Durability, Lease, LeaseClaim, MessageKey, NewTask, PageCursor, StoreError,
    StoreNotice, StoredEvent, StoredTask, SweepRule, TaskPage, TaskQuery, TaskStore, TaskWrite,
};
use crate::pb::a2a::{StreamResponse, Task, TaskPushNotificationConfig, TaskState};

/// The embedded migrations, in version order. Append only.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "tasks",
        include_str!("../../migrations/postgres/0001_tasks.sql"),
    ),
    (
        2,
        "task messages",
        include_str!("../../migrations/postgres/0002_task_messages.sql"),
    ),
    (
        3,
        "task checkpoints",
        include_str!("../../migrations/postgres/0003_task_checkpoints.sql"),
    ),
    (
        4,
        "task snapshot seq",
        include_str!("../../migrations/postgres/0004_task_snapshot_seq.sql"),
    ),
];

/// Tasks deleted per transaction of a sweep.
const SWEEP_BATCH: i64 = 1000;

/// Capacity of the notice channel; a subscriber that lags further gets `Lagged` and re-reads.
const NOTICE_CAPACITY: usize = 4096;

const TERMINAL: [TaskState; 4] = [
    TaskState::Completed,
    TaskState::Failed,
    TaskState::Canceled,
    TaskState::Rejected,
];

/// Settings of a [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Schema holding this agent's tables (created when missing): lower-case letters, digits
    /// and `_`, starting with a letter or `_`, at most 48 bytes. Every replica of an agent must
    /// use the same one; different agents different ones.
    pub schema: String,
    /// When a commit counts as done (see the module documentation).
    pub durability: Durability,
    /// Largest number of pooled connections (besides the one that listens). Default 10.
    pub max_connections: u32,
    /// How long a call waits for a connection before failing with
    /// [`StoreError::Unavailable`]; also bounds the first connection. Default 5 s.
    pub acquire_timeout: Duration,
}

impl PostgresOptions {
    /// Defaults for `schema`.
    pub fn new(schema: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            durability: Durability::default(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The schema name an agent called `name` uses by default: lower-cased, every character other
/// than a letter, digit or `_` replaced by `_`, prefixed with `_` when it starts with a digit,
/// cut to 48 bytes (`text-stats` → `text_stats`).
pub fn schema_for_agent(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s.truncate(48);
    s
}

fn check_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend(
            format!(
                "invalid PostgreSQL schema name {schema:?}: use 1 to 48 lower-case letters, \
                 digits and '_', not starting with a digit"
            )
            .into(),
        ))
    }
}

/// A [`TaskStore`] in PostgreSQL, shared by every replica of an agent.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    durability: Durability,
    schema: String,
    channel: String,
    notices: broadcast::Sender<StoreNotice>,
    /// Stops the listener task when the store is dropped or closed.
    stop: CancellationToken,
    /// Where error messages say the database is (`host:port`, no password).
    host: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PostgresStore {
    /// Connects to the database at `url`, creates and migrates `options.schema`, and starts
    /// listening for other replicas' notices.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] naming `host:port` (never the password) when the database
    /// cannot be reached within `options.acquire_timeout`; [`StoreError::Backend`] for a
    /// malformed URL or schema name, a refused login, or a failed migration (e.g. the schema
    /// was migrated by a newer version).
    pub async fn connect(url: &DatabaseUrl, options: &PostgresOptions) -> Result<Self, StoreError> {
        check_schema(&options.schema)?;
        let host = url.host_port();
        let connect: PgConnectOptions = url.expose().parse().map_err(|e| {
            StoreError::Backend(format!("invalid PostgreSQL URL {url}: {e}").into())
        })?;
        let connect = connect
            .options([
                ("search_path", options.schema.as_str()),
                // Not the "already exists, skipping" notices of every start.
                ("client_min_messages", "warning"),
            ])
            .application_name("switchyard");
        // One direct connection first: the pool would retry until its timeout and report only
        // "pool timed out", where this gives the cause (refused, unknown host, bad password).
        let probe = tokio::time::timeout(options.acquire_timeout, connect.connect())
            .await
            .map_err(|_| {
                StoreError::Unavailable(
                    format!(
                        "cannot connect to PostgreSQL at {host}: no answer within {:?}",
                        options.acquire_timeout
                    )
                    .into(),
                )
            })?
            .map_err(|e| connect_error(&host, e))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .connect_with(connect.clone())
            .await
            .map_err(|e| connect_error(&host, e))?;
        let mut migrator = Migrator::with_migrations(
            MIGRATIONS
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        (*d).into(),
                        MigrationType::Simple,
                        sqlx::SqlSafeStr::into_sql_str(*sql),
                        false,
                    )
                })
                .collect(),
        );
        migrator.create_schema(options.schema.clone());
        migrator.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => connect_error(&host, e),
            e => StoreError::Backend(
                format!("migrating schema {} at {host}: {e}", options.schema).into(),
            ),
        })?;
        let channel = format!("switchyard_{}", options.schema);
        let (notices, _) = broadcast::channel(NOTICE_CAPACITY);
        let stop = CancellationToken::new();
        // The listener's own pool of one connection, so that it never waits for the others.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(connect);
        let mut listener = PgListener::connect_with(&listen_pool)
            .await
            .map_err(|e| connect_error(&host, e))?;
        listener
            .listen(&channel)
            .await
            .map_err(|e| connect_error(&host, e))?;
        tokio::spawn(listen(
            listener,
            listen_pool,
            channel.clone(),
            notices.clone(),
            stop.clone(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                durability: options.durability,
                schema: options.schema.clone(),
                channel,
                notices,
                stop,
                host,
            }),
        })
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The connection pool (for tools and tests).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Deletes this store's schema with every table and row in it (`DROP SCHEMA … CASCADE`),
    /// then closes the store: for tests and benchmarks. Irreversible.
    ///
    /// # Errors
    /// As any call ([`StoreError::Unavailable`], [`StoreError::Backend`]).
    pub async fn drop_schema(self) -> Result<(), StoreError> {
        // The name was checked by `connect` (letters, digits, '_').
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.inner.schema
        )))
        .execute(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.close().await;
        Ok(())
    }

    /// Stops listening and closes the pool's connections.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        self.inner.pool.close().await;
    }

    fn err(&self, e: sqlx::Error) -> StoreError {
        db_error(&self.inner.host, e)
    }

    /// The task of a `(snapshot, last_seq, snapshot_seq)` row, with the events after its
    /// snapshot folded in when it has some.
    async fn stored(&self, row: &sqlx::postgres::PgRow) -> Result<StoredTask, StoreError> {
        let task: Task = decode(row.get::<&[u8], _>(0), "task")?;
        let last_seq = row.get::<i64, _>(1).max(0) as u64;
        let task = match row.get::<Option<i64>, _>(2) {
            None => task,
            Some(snapshot_seq) => {
                let snapshot_seq = snapshot_seq.max(0) as u64;
                let events = self
                    .events_between(&task.id, snapshot_seq, last_seq)
                    .await?;
                super::fold(task, snapshot_seq, last_seq, &events)?
            }
        };
        Ok(StoredTask { task, last_seq })
    }

    /// [`stored`](Self::stored) of every row.
    async fn stored_all(
        &self,
        rows: &[sqlx::postgres::PgRow],
    ) -> Result<Vec<StoredTask>, StoreError> {
        let mut tasks = Vec::with_capacity(rows.len());
        for r in rows {
            tasks.push(self.stored(r).await?);
        }
        Ok(tasks)
    }

    /// Events of task `id` with `after < seq <= upto`, in order.
    async fn events_between(
        &self,
        id: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, event FROM task_events WHERE task_id = $1 AND seq > $2 AND seq <= $3 \
             ORDER BY seq",
        )
        .bind(id)
        .bind(seq_to_i64(after))
        .bind(seq_to_i64(upto))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter().map(event_row).collect()
    }
}

/// The listener task: forwards notifications to `notices` until `stop`, reconnecting (with a
/// bounded back-off) after every failure.
async fn listen(
    listener: PgListener,
    pool: PgPool,
    channel: String,
    notices: broadcast::Sender<StoreNotice>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    // `None` while reconnecting: the old listener's connection must go back to the pool of
    // one before a new listener can take it.
    let mut listener = Some(listener);
    loop {
        let Some(l) = listener.as_mut() else {
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(&channel).await {
                    Ok(()) => {
                        tracing::info!("store listener reconnected");
                        listener = Some(l);
                        continue;
                    }
                    Err(e) => tracing::warn!(error = %e, "store listener: LISTEN failed"),
                },
                Err(e) => tracing::warn!(error = %e, "store listener: reconnect failed"),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        };
        let next = tokio::select! {
            () = stop.cancelled() => break,
            n = l.try_recv() => n,
        };
        match next {
            Ok(Some(n)) => {
                backoff = Duration::from_millis(100);
                if let Some(notice) = parse_notice(n.payload()) {
                    // No receiver is not an error.
                    let _ = notices.send(notice);
                } else {
                    tracing::warn!(payload = n.payload(), "unexpected store notification");
                }
            }
            // The connection was lost and re-established (sqlx LISTENs again).
            Ok(None) => tracing::warn!("store listener reconnected; notices may have been lost"),
            Err(e) => {
                tracing::warn!(error = %e, "store listener failed; reconnecting");
                listener = None;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    drop(listener);
    pool.close().await;
}

fn parse_notice(payload: &str) -> Option<StoreNotice> {
    let (kind, rest) = payload.split_once(' ')?;
    match kind {
        "c" => {
            let (seq, id) = rest.split_once(' ')?;
            Some(StoreNotice::Committed {
                task_id: id.to_owned(),
                last_seq: seq.parse().ok()?,
            })
        }
        "x" => Some(StoreNotice::CancelRequested {
            task_id: rest.to_owned(),
        }),
        _ => None,
    }
}

fn notice_payload(n: &StoreNotice) -> String {
    match n {
        StoreNotice::Committed { task_id, last_seq } => format!("c {last_seq} {task_id}"),
        StoreNotice::CancelRequested { task_id } => format!("x {task_id}"),
    }
}

/// The error of a failed connection at start: [`StoreError::Unavailable`] naming the server
/// when it cannot be reached, the database's own error otherwise.
fn connect_error(host: &str, e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(format!("cannot connect to PostgreSQL at {host}: {e}").into())
    } else {
        StoreError::Backend(format!("PostgreSQL at {host}: {e}").into())
    }
}

/// Whether `e` is connection-level: I/O, TLS, pool timeout, SQLSTATE class 08 ("connection
/// exception") or 57P01..57P03 (the server is shutting down or starting).
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Maps a driver error: connection-level ones ([`is_unavailable`]) to
/// [`StoreError::Unavailable`], everything else to [`StoreError::Backend`].
fn db_error(host: &str, e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(format!("PostgreSQL at {host}: {e}").into())
    } else {
        StoreError::Backend(Box::new(e))
    }
}

fn decode<M: prost::Message + Default>(bytes: &[u8], what: &str) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn seq_to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn ttl_micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

/// The event of a `(seq, event)` row.
fn event_row(r: &sqlx::postgres::PgRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: r.get::<i64, _>(0).max(0) as u64,
        event: decode::<StreamResponse>(r.get::<&[u8], _>(1), "event")?,
    })
}

fn terminal_states() -> Vec<i32> {
    TERMINAL.iter().map(|s| *s as i32).collect()
}

#[tonic::async_trait]
impl TaskStore for PostgresStore {
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // The last write of each task wins (PostgreSQL's upsert cannot touch a row twice in
        // one statement); sorted by id so that concurrent commits lock rows in one order.
        let mut latest: BTreeMap<&str, &TaskWrite> = BTreeMap::new();
        for w in batch {
            latest.insert(w.snapshot.id.as_str(), w);
        }
        let ids: Vec<String> = latest.keys().map(|k| (*k).to_owned()).collect();
        // New tasks' leases, by task id (sorted: rows are locked in one order).
        let mut new_leases: BTreeMap<&str, (&str, f64)> = BTreeMap::new();
        for w in batch {
            if let Some(NewTask::Leased { owner, ttl }) = &w.creates {
                new_leases.insert(
                    w.snapshot.id.as_str(),
                    (owner.as_str(), ttl_micros(*ttl) as f64),
                );
            }
        }
        let mut tx = self.inner.pool.begin().await.map_err(|e| self.err(e))?;
        // A transaction that writes lease rows keeps the server's `synchronous_commit`.
        if self.inner.durability == Durability::Os && new_leases.is_empty() {
            tx.execute("SET LOCAL synchronous_commit = off")
                .await
                .map_err(|e| self.err(e))?;
        }

        // New tasks' leases: epoch 1, on the clock after the row lock (a concurrent insert of
        // the same id is waited for). A task that has a lease row already is refused.
        if !new_leases.is_empty() {
            let mut lease_ids = Vec::with_capacity(new_leases.len());
            let mut owners = Vec::with_capacity(new_leases.len());
            let mut ttls = Vec::with_capacity(new_leases.len());
            for (id, (owner, ttl)) in &new_leases {
                lease_ids.push((*id).to_owned());
                owners.push((*owner).to_owned());
                ttls.push(*ttl);
            }
            let inserted: Vec<String> = sqlx::query_scalar(
                "INSERT INTO task_leases (task_id, owner, epoch, expires_at) \
                 SELECT t, o, 1, clock_timestamp() + make_interval(secs => us / 1e6) \
                 FROM UNNEST($1::text[], $2::text[], $3::float8[]) AS n(t, o, us) ORDER BY t \
                 ON CONFLICT (task_id) DO NOTHING \
                 RETURNING task_id",
            )
            .bind(&lease_ids)
            .bind(&owners)
            .bind(&ttls)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            if inserted.len() < lease_ids.len()
                && let Some(taken) = lease_ids.into_iter().find(|id| !inserted.contains(id))
            {
                return Err(StoreError::Fenced {
                    task_id: taken,
                    epoch: 1,
                });
            }
        }

        // Fencing: every write that carries an epoch must match its task's lease (a creation
        // was checked above, and below against existing tasks).
        let mut fenced: BTreeMap<&str, u64> = BTreeMap::new();
        for w in batch {
            if let (Some(e), None) = (w.epoch, &w.creates) {
                fenced.insert(w.snapshot.id.as_str(), e);
            }
        }
        if !fenced.is_empty() {
            let fence_ids: Vec<String> = fenced.keys().map(|k| (*k).to_owned()).collect();
            let rows = sqlx::query(
                "SELECT task_id, epoch FROM task_leases WHERE task_id = ANY($1) \
                 ORDER BY task_id FOR SHARE",
            )
            .bind(&fence_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let current: BTreeMap<String, i64> = rows
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect();
            for (id, epoch) in fenced {
                if current.get(id) != Some(&seq_to_i64(epoch)) {
                    return Err(StoreError::Fenced {
                        task_id: id.to_owned(),
                        epoch,
                    });
                }
            }
        }

        // A head stands for a task only once it is stored (or written whole in this batch).
        let whole: BTreeMap<&str, &TaskWrite> = batch
            .iter()
            .filter(|w| !w.head_only)
            .map(|w| (w.snapshot.id.as_str(), w))
            .collect();
        let heads: Vec<&TaskWrite> = latest.values().copied().filter(|w| w.head_only).collect();

        // Old states, for the per-state counts (row locks taken in id order).
        let old: Vec<(String, i32)> =
            sqlx::query_as("SELECT id, state FROM tasks WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        // A creation must find its task new.
        if let Some(w) = batch
            .iter()
            .find(|w| w.creates.is_some() && old.iter().any(|(id, _)| *id == w.snapshot.id))
        {
            return Err(StoreError::Fenced {
                task_id: w.snapshot.id.clone(),
                epoch: 1,
            });
        }
        if let Some(w) = heads.iter().find(|w| {
            w.creates.is_some()
                || !(whole.contains_key(w.snapshot.id.as_str())
                    || old.iter().any(|(id, _)| *id == w.snapshot.id))
        }) {
            return Err(super::head_of_unknown_task(&w.snapshot.id));
        }
        let mut deltas: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, state) in &old {
            *deltas.entry(*state).or_default() -= 1;
        }

        for w in latest.values() {
            *deltas.entry(w.snapshot.state() as i32).or_default() += 1;
        }
        if !whole.is_empty() {
            let n = whole.len();
            let (mut id, mut ctx, mut state, mut status, mut last, mut snap) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for w in whole.values() {
                id.push(w.snapshot.id.clone());
                ctx.push(w.snapshot.context_id.clone());
                state.push(w.snapshot.state() as i32);
                status.push(w.snapshot.status_micros());
                last.push(seq_to_i64(w.last_seq));
                snap.push(w.snapshot.encode_to_vec());
            }
            sqlx::query(
                "INSERT INTO tasks (id, context_id, state, status_us, last_seq, snapshot) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::int8[], \
                 $5::int8[], $6::bytea[]) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                 status_us = excluded.status_us, last_seq = excluded.last_seq, \
                 snapshot = excluded.snapshot, snapshot_seq = NULL",
            )
            .bind(&id)
            .bind(&ctx)
            .bind(&state)
            .bind(&status)
            .bind(&last)
            .bind(&snap)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        if !heads.is_empty() {
            let n = heads.len();
            let (mut id, mut state, mut status, mut last) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for w in &heads {
                id.push(w.snapshot.id.clone());
                state.push(w.snapshot.state() as i32);
                status.push(w.snapshot.status_micros());
                last.push(seq_to_i64(w.last_seq));
            }
            // The stored snapshot stays; it is now as of the event it was as of before.
            sqlx::query(
                "UPDATE tasks t SET state = n.state, status_us = n.status_us, \
                 snapshot_seq = COALESCE(t.snapshot_seq, t.last_seq), last_seq = n.last_seq \
                 FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::int8[]) \
                 AS n(id, state, status_us, last_seq) WHERE t.id = n.id",
            )
            .bind(&id)
            .bind(&state)
            .bind(&status)
            .bind(&last)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }

        deltas.retain(|_, d| *d != 0);
        if !deltas.is_empty() {
            let (states, ns): (Vec<i32>, Vec<i64>) = deltas.into_iter().unzip();
            sqlx::query(
                "INSERT INTO task_counts (state, n) \
                 SELECT * FROM UNNEST($1::int4[], $2::int8[]) ORDER BY 1 \
                 ON CONFLICT (state) DO UPDATE SET n = task_counts.n + excluded.n",
            )
            .bind(&states)
            .bind(&ns)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }

        let events = batch.iter().map(|w| w.events.len()).sum();
        if events > 0 {
            let (mut tid, mut seq, mut ev) = (
                Vec::with_capacity(events),
                Vec::with_capacity(events),
                Vec::with_capacity(events),
            );
            for w in batch {
                for e in &w.events {
                    tid.push(w.snapshot.id.clone());
                    seq.push(seq_to_i64(e.seq));
                    ev.push(e.event.encode_to_vec());
                }
            }
            sqlx::query(
                "INSERT INTO task_events (task_id, seq, event) \
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::bytea[])",
            )
            .bind(&tid)
            .bind(&seq)
            .bind(&ev)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }

        let messages = batch.iter().map(|w| w.messages.len()).sum();
        if messages > 0 {
            let (mut ctx, mut mid, mut tid) = (
                Vec::with_capacity(messages),
                Vec::with_capacity(messages),
                Vec::with_capacity(messages),
            );
            for w in batch {
                for k in &w.messages {
                    ctx.push(k.context_id.clone());
                    mid.push(k.message_id.clone());
                    tid.push(w.snapshot.id.clone());
                }
            }
            sqlx::query(
                "INSERT INTO task_messages (context_id, message_id, task_id) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
                 ON CONFLICT (context_id, message_id) DO NOTHING",
            )
            .bind(&ctx)
            .bind(&mid)
            .bind(&tid)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }

        // Checkpoints: the last one of each task in the batch wins (`Some(empty)` deletes).
        let mut checkpoints: BTreeMap<&str, &[u8]> = BTreeMap::new();
        for w in batch {
            if let Some(c) = &w.checkpoint {
                checkpoints.insert(w.snapshot.id.as_str(), c.as_slice());
            }
        }
        if !checkpoints.is_empty() {
            let (cleared, set): (Vec<_>, Vec<_>) =
                checkpoints.into_iter().partition(|(_, c)| c.is_empty());
            let cleared: Vec<String> = cleared.into_iter().map(|(id, _)| id.to_owned()).collect();
            if !cleared.is_empty() {
                sqlx::query("DELETE FROM task_checkpoints WHERE task_id = ANY($1)")
                    .bind(&cleared)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            if !set.is_empty() {
                let (tid, data): (Vec<String>, Vec<Vec<u8>>) = set
                    .into_iter()
                    .map(|(id, c)| (id.to_owned(), c.to_vec()))
                    .unzip();
                sqlx::query(
                    "INSERT INTO task_checkpoints (task_id, data) \
                     SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                     ON CONFLICT (task_id) DO UPDATE SET data = excluded.data",
                )
                .bind(&tid)
                .bind(&data)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
        }

        // Delivered to every listener when (and only if) the transaction commits.
        let payloads: Vec<String> = latest
            .values()
            .map(|w| {
                notice_payload(&StoreNotice::Committed {
                    task_id: w.snapshot.id.clone(),
                    last_seq: w.last_seq,
                })
            })
            .collect();
        sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
            .bind(&self.inner.channel)
            .bind(&payloads)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn checkpoint(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT data FROM task_checkpoints WHERE task_id = $1")
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| self.err(e))
    }

    async fn task_for_message(&self, key: &MessageKey) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT task_id FROM task_messages WHERE context_id = $1 AND message_id = $2",
        )
        .bind(&key.context_id)
        .bind(&key.message_id)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// One `SELECT` for every key: the keys as two `UNNEST`ed arrays joined with
    /// `task_messages` on its primary key.
    async fn tasks_for_messages(
        &self,
        keys: &[MessageKey],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let (contexts, messages): (Vec<&str>, Vec<&str>) = keys
            .iter()
            .map(|k| (k.context_id.as_str(), k.message_id.as_str()))
            .unzip();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT t.context_id, t.message_id, t.task_id \
             FROM UNNEST($1::text[], $2::text[]) AS k(c, m) \
             JOIN task_messages t ON t.context_id = k.c AND t.message_id = k.m",
        )
        .bind(contexts)
        .bind(messages)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(MessageKey::place(keys, rows))
    }

    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        let row = sqlx::query("SELECT snapshot, last_seq, snapshot_seq FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| self.err(e))?;
        match row {
            Some(r) => Ok(Some(self.stored(&r).await?)),
            None => Ok(None),
        }
    }

    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_between(id, after, u64::MAX).await
    }

    async fn list(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        let filters = |q: &mut QueryBuilder<Postgres>| {
            q.push(" WHERE TRUE");
            if let Some(ctx) = &query.context_id {
                q.push(" AND context_id = ").push_bind(ctx.clone());
            }
            if let Some(state) = query.state {
                q.push(" AND state = ").push_bind(state as i32);
            }
            if let Some(after) = query.status_after_micros {
                q.push(" AND status_us > ").push_bind(after);
            }
        };
        let mut count = if query.context_id.is_none() && query.status_after_micros.is_none() {
            let mut q =
                QueryBuilder::<Postgres>::new("SELECT COALESCE(SUM(n), 0)::int8 FROM task_counts");
            if let Some(state) = query.state {
                q.push(" WHERE state = ").push_bind(state as i32);
            }
            q
        } else {
            let mut q = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM tasks");
            filters(&mut q);
            q
        };
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|e| self.err(e))?;

        // A snapshot older than its task also counts the events to fold in, so that the page
        // cut stays an upper bound of the folded tasks' size.
        let mut page = QueryBuilder::<Postgres>::new(
            "SELECT snapshot, last_seq, snapshot_seq, CASE WHEN snapshot_seq IS NULL THEN 0 \
             ELSE (SELECT COALESCE(SUM(octet_length(e.event)), 0)::int8 FROM task_events e \
             WHERE e.task_id = tasks.id AND e.seq > tasks.snapshot_seq \
             AND e.seq <= tasks.last_seq) END FROM tasks",
        );
        filters(&mut page);
        if let Some(c) = &query.after {
            page.push(" AND (status_us, id) < (")
                .push_bind(c.status_micros)
                .push(", ")
                .push_bind(c.task_id.clone())
                .push(")");
        }
        page.push(" ORDER BY status_us DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.page_size) + 1);
        let mut rows = page.build().fetch(&self.inner.pool);
        let mut tasks = Vec::new();
        // Tasks whose snapshot is older than they are: (index in `tasks`, its seqs).
        let mut behind = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        while let Some(row) = rows.try_next().await.map_err(|e| self.err(e))? {
            let blob = row.get::<&[u8], _>(0);
            let size = blob.len() + row.get::<i64, _>(3).max(0) as usize;
            let full = tasks.len() >= query.page_size as usize
                || (!tasks.is_empty() && query.max_bytes.is_some_and(|m| bytes + size > m));
            if full {
                more = true;
                break;
            }
            bytes += size;
            if let Some(snapshot_seq) = row.get::<Option<i64>, _>(2) {
                let last_seq = row.get::<i64, _>(1).max(0) as u64;
                behind.push((tasks.len(), snapshot_seq.max(0) as u64, last_seq));
            }
            tasks.push(decode::<Task>(blob, "task")?);
        }
        drop(rows);
        for (i, snapshot_seq, last_seq) in behind {
            let task = std::mem::take(&mut tasks[i]);
            let events = self
                .events_between(&task.id, snapshot_seq, last_seq)
                .await?;
            tasks[i] = super::fold(task, snapshot_seq, last_seq, &events)?;
        }
        let next = more.then(|| tasks.last()).flatten().map(|t| PageCursor {
            status_micros: t.status_micros(),
            task_id: t.id.clone(),
        });
        Ok(TaskPage {
            tasks,
            next,
            total: total.max(0) as u64,
        })
    }

    async fn unfinished(&self) -> Result<Vec<StoredTask>, StoreError> {
        let rows = sqlx::query(
            "SELECT snapshot, last_seq, snapshot_seq FROM tasks WHERE state <> ALL($1)",
        )
        .bind(terminal_states())
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.stored_all(&rows).await
    }

    async fn sweep(&self, rule: &SweepRule) -> Result<u64, StoreError> {
        let mut swept = 0;
        let terminal = terminal_states();
        // One short transaction per batch, so that commits interleave with a long sweep.
        loop {
            let mut tx = self.inner.pool.begin().await.map_err(|e| self.err(e))?;
            let mut q = QueryBuilder::<Postgres>::new("SELECT id FROM (");
            if let Some(keep) = rule.keep_newest {
                q.push("(SELECT id, status_us FROM tasks WHERE state = ANY(")
                    .push_bind(terminal.clone())
                    .push(") ORDER BY status_us DESC, id DESC OFFSET ")
                    .push_bind(i64::try_from(keep).unwrap_or(i64::MAX))
                    .push(")");
            } else {
                q.push("(SELECT NULL::text AS id, 0::int8 AS status_us WHERE FALSE)");
            }
            if let Some(older) = rule.older_than_micros {
                q.push(" UNION (SELECT id, status_us FROM tasks WHERE status_us < ")
                    .push_bind(older)
                    .push(" AND state = ANY(")
                    .push_bind(terminal.clone())
                    .push("))");
            }
            q.push(") AS doomed WHERE status_us < ")
                .push_bind(rule.settled_before_micros)
                .push(" ORDER BY id LIMIT ")
                .push_bind(SWEEP_BATCH);
            let ids: Vec<String> = q
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            if ids.is_empty() {
                break;
            }
            // Only tasks still terminal (a task never leaves a terminal state, but be exact).
            let gone: Vec<(String, i32)> = sqlx::query_as(
                "DELETE FROM tasks WHERE id = ANY($1) AND state = ANY($2) RETURNING id, state",
            )
            .bind(&ids)
            .bind(&terminal)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let gone_ids: Vec<String> = gone.iter().map(|(id, _)| id.clone()).collect();
            for table in [
                "task_events WHERE task_id",
                "push_configs WHERE task_id",
                "task_leases WHERE task_id",
                "task_messages WHERE task_id",
                "task_checkpoints WHERE task_id",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} = ANY($1)"
                )))
                .bind(&gone_ids)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            let mut deltas: BTreeMap<i32, i64> = BTreeMap::new();
            for (_, s) in &gone {
                *deltas.entry(*s).or_default() -= 1;
            }
            if !deltas.is_empty() {
                let (states, ns): (Vec<i32>, Vec<i64>) = deltas.into_iter().unzip();
                sqlx::query(
                    "UPDATE task_counts SET n = task_counts.n + d.n \
                     FROM UNNEST($1::int4[], $2::int8[]) AS d(state, n) \
                     WHERE task_counts.state = d.state",
                )
                .bind(&states)
                .bind(&ns)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            tx.commit().await.map_err(|e| self.err(e))?;
            swept += gone.len() as u64;
            if ids.len() < SWEEP_BATCH as usize {
                break;
            }
        }
        Ok(swept)
    }

    async fn put_push_config(&self, config: &TaskPushNotificationConfig) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO push_configs (task_id, id, config) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id, id) DO UPDATE SET config = excluded.config",
        )
        .bind(&config.task_id)
        .bind(&config.id)
        .bind(config.encode_to_vec())
        .execute(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn push_configs(
        &self,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        let rows =
            sqlx::query("SELECT config FROM push_configs WHERE task_id = $1 ORDER BY created")
                .bind(task_id)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| decode(r.get::<&[u8], _>(0), "push config"))
            .collect()
    }

    async fn delete_push_config(&self, task_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM push_configs WHERE task_id = $1 AND id = $2")
            .bind(task_id)
            .bind(id)
            .execute(&self.inner.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn acquire_lease(
        &self,
        task_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseClaim, StoreError> {
        // Granted when there is no lease, when `owner` holds it (same epoch), when it was
        // released (new epoch, not a takeover) or when it expired (new epoch, a takeover).
        // The update's expiry is read from the clock after the row lock is ours (`excluded`
        // was computed before any wait for an in-flight commit).
        let row: Option<(i64, i32)> = sqlx::query_as(
            "INSERT INTO task_leases AS l (task_id, owner, epoch, expires_at) \
             VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::float8 / 1e6)) \
             ON CONFLICT (task_id) DO UPDATE SET \
               epoch = CASE WHEN l.owner = excluded.owner AND NOT l.released \
                            THEN l.epoch ELSE l.epoch + 1 END, \
               takeovers = CASE WHEN l.owner <> excluded.owner AND NOT l.released \
                                THEN l.takeovers + 1 ELSE l.takeovers END, \
               previous_owner = CASE WHEN l.owner <> excluded.owner AND NOT l.released \
                                     THEN l.owner ELSE l.previous_owner END, \
               owner = excluded.owner, \
               expires_at = clock_timestamp() + make_interval(secs => $3::float8 / 1e6), \
               released = FALSE \
             WHERE l.owner = excluded.owner OR l.released OR l.expires_at <= clock_timestamp() \
             RETURNING epoch, takeovers",
        )
        .bind(task_id)
        .bind(owner)
        .bind(ttl_micros(ttl) as f64)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        if let Some((epoch, takeovers)) = row {
            return Ok(LeaseClaim::Acquired(Lease {
                task_id: task_id.to_owned(),
                owner: owner.to_owned(),
                epoch: epoch.max(0) as u64,
                takeovers: takeovers.max(0) as u32,
            }));
        }
        let holder: Option<String> =
            sqlx::query_scalar("SELECT owner FROM task_leases WHERE task_id = $1")
                .bind(task_id)
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(LeaseClaim::Held {
            owner: holder.unwrap_or_default(),
        })
    }

    async fn renew_leases(&self, owner: &str, ttl: Duration) -> Result<Vec<String>, StoreError> {
        let mut tx = self.inner.pool.begin().await.map_err(|e| self.err(e))?;
        // Still ours (even if expired, nobody took it): extend.
        sqlx::query(
            "UPDATE task_leases \
             SET expires_at = clock_timestamp() + make_interval(secs => $2::float8 / 1e6) \
             WHERE owner = $1 AND NOT released",
        )
        .bind(owner)
        .bind(ttl_micros(ttl) as f64)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        // Taken from us since the last renewal.
        let lost: Vec<String> = sqlx::query_scalar(
            "UPDATE task_leases SET previous_owner = NULL \
             WHERE previous_owner = $1 AND owner <> $1 RETURNING task_id",
        )
        .bind(owner)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(lost)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE task_leases SET released = TRUE, expires_at = clock_timestamp() \
             WHERE task_id = $1 AND owner = $2 AND epoch = $3",
        )
        .bind(&lease.task_id)
        .bind(&lease.owner)
        .bind(seq_to_i64(lease.epoch))
        .execute(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn orphaned(&self) -> Result<Vec<StoredTask>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.snapshot, t.last_seq, t.snapshot_seq FROM tasks t \
             LEFT JOIN task_leases l ON l.task_id = t.id \
             WHERE t.state <> ALL($1) \
               AND (l.task_id IS NULL OR l.released OR l.expires_at <= clock_timestamp())",
        )
        .bind(terminal_states())
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.stored_all(&rows).await
    }

    async fn notify(&self, notice: &StoreNotice) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.inner.channel)
            .bind(notice_payload(notice))
            .execute(&self.inner.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn notices(&self) -> Option<broadcast::Receiver<StoreNotice>> {
        Some(self.inner.notices.subscribe())
    }

    async fn push_cursor(&self, task_id: &str, config_id: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT delivered_seq FROM push_configs WHERE task_id = $1 AND id = $2",
        )
        .bind(task_id)
        .bind(config_id)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    async fn set_push_cursor(
        &self,
        task_id: &str,
        config_id: &str,
        seq: u64,
    ) -> Result<(), StoreError> {
        // Never moves back (two deliveries racing after a takeover).
        sqlx::query(
            "UPDATE push_configs SET delivered_seq = GREATEST(delivered_seq, $3) \
             WHERE task_id = $1 AND id = $2",
        )
        .bind(task_id)
        .bind(config_id)
        .bind(seq_to_i64(seq))
        .execute(&self.inner.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert_eq!(schema_for_agent("text-stats"), "text_stats");
        assert_eq!(schema_for_agent("9lives"), "_9lives");
        assert_eq!(schema_for_agent("Echo"), "echo");
        assert!(check_schema("echo").is_ok());
        for bad in ["", "Echo", "a-b", "1a", "x;drop", &"a".repeat(49)] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn notice_payloads_round_trip() {
        for n in [
            StoreNotice::Committed {
                task_id: "a b".into(),
                last_seq: 7,
            },
            StoreNotice::CancelRequested {
                task_id: "t-1".into(),
            },
        ] {
            assert_eq!(parse_notice(&notice_payload(&n)), Some(n));
        }
        assert_eq!(parse_notice("z 1"), None);
        assert_eq!(parse_notice("c x t"), None);
    }
}
