//! The embedded durable task store: one SQLite database file, through sqlx.
//!
//! Why SQLite (over redb): `ListTasks` needs filtered, ordered, keyset-paged queries, which SQL
//! indexes give directly; WAL mode lets readers run beside the single writer; the fsync level is
//! one pragma ([`Durability`]); the file is inspectable with the `sqlite3` shell; and the same
//! sqlx query layer serves the PostgreSQL store used by several replicas.
//!
//! One process owns the file ([`owner`]), so the store keeps the message keys it holds in
//! memory ([`seen`]) and answers most idempotence lookups without a read.
//!
//! Durability: the runtime groups concurrent writes into one transaction per batch (group
//! commit). With [`Durability::Fsync`] each batch is fsynced before any of its events is
//! acknowledged or shown to a subscriber; with [`Durability::Os`] it is written to the OS and
//! fsynced at WAL checkpoints.

mod owner;
mod seen;

use std::{path::Path, str::FromStr as _, sync::Arc, time::Duration};

use futures::TryStreamExt as _;
use prost::Message as _;
use sqlx::{
    QueryBuilder, Row as _, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{
    Durability, MessageKey, PageCursor, StoreError, StoredEvent, StoredTask, SweepRule, TaskPage,
    TaskQuery, TaskStore, TaskWrite, event_batch,
};
use crate::pb::a2a::{Task, TaskPushNotificationConfig, TaskState};

/// Schema version stored in `PRAGMA user_version`. 2 added `task_counts`, 3 `task_messages`,
/// 4 `task_checkpoints` (each created by [`SCHEMA`]'s `IF NOT EXISTS` statements when an older
/// file is opened), 5 moved the snapshots from `tasks` into `task_snapshots`, 6 the events from
/// `task_events` (a row per event) into `task_event_batches` (a row per task and commit)
/// ([`migrate`]).
const SCHEMA_VERSION: i64 = 6;
/// Records [`SCHEMA_VERSION`].
const SET_SCHEMA_VERSION: &str = "PRAGMA user_version = 6";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    id         TEXT PRIMARY KEY NOT NULL,
    context_id TEXT NOT NULL,
    state      INTEGER NOT NULL,
    status_us  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_by_context ON tasks (context_id, status_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, status_us DESC, id DESC);
-- The task as of event `seq` (at most its `last_seq`); the events after it, up to `last_seq`,
-- are folded in when the task is read (TaskWrite::head_only). A row of its own, so that a
-- commit that only changes a task's head does not rewrite its snapshot: SQLite rewrites a
-- whole row, large values included, whatever column an UPDATE sets.
CREATE TABLE IF NOT EXISTS task_snapshots (
    task_id  TEXT PRIMARY KEY NOT NULL,
    seq      INTEGER NOT NULL,
    snapshot BLOB NOT NULL
);
-- The events one commit appended to a task, `first_seq` to `last_seq`, as one value
-- (event_batch.rs): a stream's commit writes one row, not one per event. A rowid table, as
-- its values are large (SQLite advises WITHOUT ROWID for small rows only).
CREATE TABLE IF NOT EXISTS task_event_batches (
    task_id   TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    events    BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS task_event_batches_by_task
    ON task_event_batches (task_id, last_seq);
-- Tasks per state, kept by triggers: ListTasks' totalSize without a context or timestamp
-- filter is a sum over at most nine rows instead of a scan of every task.
CREATE TABLE IF NOT EXISTS task_counts (
    state INTEGER PRIMARY KEY NOT NULL,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO task_counts (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS tasks_count_update AFTER UPDATE OF state ON tasks
    WHEN OLD.state != NEW.state BEGIN
    UPDATE task_counts SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO task_counts (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TABLE IF NOT EXISTS push_configs (
    task_id    TEXT NOT NULL,
    id         TEXT NOT NULL,
    created    INTEGER NOT NULL,
    config     BLOB NOT NULL,
    PRIMARY KEY (task_id, id)
) WITHOUT ROWID;
-- The task that accepted each message (idempotent SendMessage): keyed by the contextId the
-- client sent ('' when none) and the messageId; the first task recorded for a key keeps it.
CREATE TABLE IF NOT EXISTS task_messages (
    context_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    PRIMARY KEY (context_id, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_messages_by_task ON task_messages (task_id);
-- The running execution's checkpoint of each task (TaskEvents::checkpoint), committed with
-- the events it follows; a resumed execution starts from it.
CREATE TABLE IF NOT EXISTS task_checkpoints (
    task_id TEXT PRIMARY KEY NOT NULL,
    data    BLOB NOT NULL
) WITHOUT ROWID;
";

/// Tasks deleted per transaction of a sweep.
const SWEEP_BATCH: i64 = 1000;

/// Appends the condition "the task is terminal".
fn terminal(q: &mut QueryBuilder<Sqlite>) {
    q.push("state IN (");
    let mut list = q.separated(", ");
    for s in [
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Canceled,
        TaskState::Rejected,
    ] {
        list.push_bind(s as i32);
    }
    q.push(")");
}

/// Rows per multi-row INSERT; each row binds at most 6 values, far below SQLite's 32766.
const ROWS_PER_STATEMENT: usize = 500;

/// A [`TaskStore`] in one SQLite file (WAL mode), written by one connection and read by a pool,
/// owned by one process from [`open`](Self::open) to [`close`](Self::close).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    owner: Arc<owner::Owner>,
    /// The message keys in `task_messages`, approximately (no false negatives).
    seen: Arc<seen::SeenKeys>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, takes its lock (`<path>.lock`: one
    /// process owns a store; an open waits up to 5 s for a previous owner that is closing
    /// it) and migrates its schema.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be created or opened, another process
    /// holds it, or its schema is newer than this version understands.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        let owner = Arc::new(owner::Owner::acquire(path).await?);
        let synchronous = match durability {
            Durability::Fsync => SqliteSynchronous::Full,
            Durability::Os => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(backend)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            // Multi-row INSERTs differ by row count; keep each shape prepared.
            .statement_cache_capacity(1024)
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        migrate(&writer).await?;
        optimize(&writer).await;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend)?;
        // Sized by the tasks (a sum over at most nine rows kept by triggers), not by a count
        // of the keys, which would walk their whole table before the open returns.
        let tasks: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(n), 0) FROM task_counts")
            .fetch_one(&reader)
            .await
            .map_err(backend)?;
        let seen = Arc::new(seen::SeenKeys::new(usize::try_from(tasks).unwrap_or(0)));
        // Loaded beside the first calls (lookups read the file until it completes): an open
        // does not wait for a scan of every key.
        let (loading, pool) = (seen.clone(), reader.clone());
        tokio::spawn(async move {
            if let Err(e) = loading.load(&pool).await
                && !pool.is_closed()
            {
                tracing::warn!(error = %e, "loading the message keys failed: every idempotence lookup reads the store");
            }
        });
        Ok(Self {
            writer,
            reader,
            owner,
            seen,
        })
    }

    /// The task of a `(snapshot, last_seq, snapshot seq)` row, with the events after its
    /// snapshot folded in when it has some.
    async fn stored(&self, row: &sqlx::sqlite::SqliteRow) -> Result<StoredTask, StoreError> {
        let task: Task = decode(row.get::<&[u8], _>(0), "task")?;
        let last_seq = row.get::<i64, _>(1).max(0) as u64;
        let snapshot_seq = row.get::<i64, _>(2).max(0) as u64;
        let task = if snapshot_seq < last_seq {
            let events = self
                .events_between(&task.id, snapshot_seq, last_seq)
                .await?;
            super::fold(task, snapshot_seq, last_seq, &events)?
        } else {
            task
        };
        Ok(StoredTask { task, last_seq })
    }

    /// Events of task `id` with `after < seq <= upto`, in order.
    async fn events_between(
        &self,
        id: &str,
        after: u64,
        upto: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // The batches that hold an event in the range: they end after `after` and start at
        // or before `upto`.
        let rows = sqlx::query(
            "SELECT events FROM task_event_batches \
             WHERE task_id = ? AND last_seq > ? AND first_seq <= ? ORDER BY last_seq",
        )
        .bind(id)
        .bind(seq_to_i64(after))
        .bind(seq_to_i64(upto))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let mut events = Vec::new();
        for r in &rows {
            event_batch::decode(r.get::<&[u8], _>(0), after, upto, &mut events)?;
        }
        Ok(events)
    }

    /// Closes both pools, checkpointing the WAL, and releases the store's lock.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
        self.owner.release();
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(
            format!(
                "database schema version {version} is newer than this build's {SCHEMA_VERSION}"
            )
            .into(),
        ));
    }
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::raw_sql(SCHEMA)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let inline_snapshots: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name = 'snapshot'",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if inline_snapshots > 0 {
        // A file of version 4 or older: each task's snapshot is in its row, as of `last_seq`.
        sqlx::raw_sql(
            "INSERT INTO task_snapshots (task_id, seq, snapshot) \
             SELECT id, last_seq, snapshot FROM tasks; \
             ALTER TABLE tasks DROP COLUMN snapshot",
        )
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    let row_per_event: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'task_events'",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if row_per_event > 0 {
        batch_events(&mut tx).await?;
    }
    if version < 2 {
        // Tasks written before the counting triggers existed.
        sqlx::raw_sql(
            "DELETE FROM task_counts; \
             INSERT INTO task_counts (state, n) SELECT state, COUNT(*) FROM tasks GROUP BY state",
        )
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    sqlx::raw_sql(SET_SCHEMA_VERSION)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

/// Moves the events of a file of version 5 or older, a row each in `task_events`, into
/// `task_event_batches`: one row per task, holding all its events, their bytes copied as they
/// are.
async fn batch_events(tx: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    let tasks: Vec<String> = sqlx::query_scalar("SELECT DISTINCT task_id FROM task_events")
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    for id in tasks {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, event FROM task_events WHERE task_id = ? ORDER BY seq")
                .bind(&id)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        let (Some((first, _)), Some((last, _))) = (rows.first(), rows.last()) else {
            continue;
        };
        let mut batch = Vec::new();
        for (seq, event) in &rows {
            event_batch::append_encoded(&mut batch, (*seq).max(0) as u64, event);
        }
        sqlx::query(
            "INSERT INTO task_event_batches (task_id, first_seq, last_seq, events) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(first)
        .bind(last)
        .bind(batch)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    sqlx::raw_sql("DROP TABLE task_events")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Lets SQLite refresh the planner's statistics where they are stale (`PRAGMA optimize`,
/// bounded work), so that a query filtered by context and state picks the context index.
/// Run at open and after every retention sweep; a failure only costs plan quality.
async fn optimize(pool: &SqlitePool) {
    if let Err(e) = sqlx::raw_sql("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002")
        .execute(pool)
        .await
    {
        tracing::debug!(error = %e, "PRAGMA optimize failed");
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn decode<M: prost::Message + Default>(bytes: &[u8], what: &str) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn seq_to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

#[tonic::async_trait]
impl TaskStore for SqliteStore {
    async fn commit(&self, batch: &[TaskWrite]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Before the keys can be in the file (a failed commit leaves false positives only).
        for key in batch.iter().flat_map(|w| &w.messages) {
            self.seen.insert(key);
        }
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let whole: Vec<&TaskWrite> = batch.iter().filter(|w| !w.head_only).collect();
        for writes in whole.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO tasks (id, context_id, state, status_us, last_seq) ",
            );
            q.push_values(writes, |mut row, w| {
                row.push_bind(w.snapshot.id.clone())
                    .push_bind(w.snapshot.context_id.clone())
                    .push_bind(w.snapshot.state() as i32)
                    .push_bind(w.snapshot.status_micros())
                    .push_bind(seq_to_i64(w.last_seq));
            });
            q.push(
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                 status_us = excluded.status_us, last_seq = excluded.last_seq",
            );
            q.build().execute(&mut *tx).await.map_err(backend)?;
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO task_snapshots (task_id, seq, snapshot) ");
            q.push_values(writes, |mut row, w| {
                row.push_bind(w.snapshot.id.clone())
                    .push_bind(seq_to_i64(w.last_seq))
                    .push_bind(w.snapshot.encode_to_vec());
            });
            q.push(
                " ON CONFLICT (task_id) DO UPDATE SET seq = excluded.seq, \
                 snapshot = excluded.snapshot",
            );
            q.build().execute(&mut *tx).await.map_err(backend)?;
        }
        for w in batch.iter().filter(|w| w.head_only) {
            // The stored snapshot stays as it is, behind the task's events.
            let updated =
                sqlx::query("UPDATE tasks SET state = ?, status_us = ?, last_seq = ? WHERE id = ?")
                    .bind(w.snapshot.state() as i32)
                    .bind(w.snapshot.status_micros())
                    .bind(seq_to_i64(w.last_seq))
                    .bind(&w.snapshot.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            if updated.rows_affected() != 1 {
                return Err(super::head_of_unknown_task(&w.snapshot.id));
            }
        }
        // One row per task: its events of this commit.
        let events: Vec<&TaskWrite> = batch.iter().filter(|w| !w.events.is_empty()).collect();
        for rows in events.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO task_event_batches (task_id, first_seq, last_seq, events) ",
            );
            q.push_values(rows, |mut row, w| {
                let (first, last) = (&w.events[0], &w.events[w.events.len() - 1]);
                row.push_bind(w.snapshot.id.as_str())
                    .push_bind(seq_to_i64(first.seq))
                    .push_bind(seq_to_i64(last.seq))
                    .push_bind(event_batch::encode(&w.events));
            });
            q.build().execute(&mut *tx).await.map_err(backend)?;
        }
        let messages: Vec<(&str, &MessageKey)> = batch
            .iter()
            .flat_map(|w| w.messages.iter().map(|k| (w.snapshot.id.as_str(), k)))
            .collect();
        for rows in messages.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO task_messages (context_id, message_id, task_id) ",
            );
            q.push_values(rows, |mut row, (id, k)| {
                row.push_bind(k.context_id.clone())
                    .push_bind(k.message_id.clone())
                    .push_bind(id.to_string());
            });
            q.push(" ON CONFLICT (context_id, message_id) DO NOTHING");
            q.build().execute(&mut *tx).await.map_err(backend)?;
        }
        for w in batch {
            match &w.checkpoint {
                None => {}
                Some(c) if c.is_empty() => {
                    sqlx::query("DELETE FROM task_checkpoints WHERE task_id = ?")
                        .bind(&w.snapshot.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                Some(c) => {
                    sqlx::query(
                        "INSERT INTO task_checkpoints (task_id, data) VALUES (?, ?) \
                         ON CONFLICT (task_id) DO UPDATE SET data = excluded.data",
                    )
                    .bind(&w.snapshot.id)
                    .bind(c.as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn checkpoint(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT data FROM task_checkpoints WHERE task_id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    async fn task_for_message(&self, key: &MessageKey) -> Result<Option<String>, StoreError> {
        if !self.seen.may_hold(key) {
            return Ok(None);
        }
        sqlx::query_scalar(
            "SELECT task_id FROM task_messages WHERE context_id = ? AND message_id = ?",
        )
        .bind(&key.context_id)
        .bind(&key.message_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)
    }

    /// The keys the file may hold ([`seen`]), if any: one `SELECT` per [`ROWS_PER_STATEMENT`]
    /// of them, as a `VALUES` table joined with `task_messages` on its primary key.
    async fn tasks_for_messages(
        &self,
        keys: &[MessageKey],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let held: Vec<&MessageKey> = keys.iter().filter(|k| self.seen.may_hold(k)).collect();
        let mut rows = Vec::new();
        for chunk in held.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("WITH k(c, m) AS (");
            q.push_values(chunk, |mut row, k| {
                row.push_bind(k.context_id.as_str())
                    .push_bind(k.message_id.as_str());
            });
            q.push(
                ") SELECT t.context_id, t.message_id, t.task_id FROM k \
                 JOIN task_messages t ON t.context_id = k.c AND t.message_id = k.m",
            );
            rows.extend(
                q.build_query_as::<(String, String, String)>()
                    .fetch_all(&self.reader)
                    .await
                    .map_err(backend)?,
            );
        }
        Ok(MessageKey::place(keys, rows))
    }

    async fn task(&self, id: &str) -> Result<Option<StoredTask>, StoreError> {
        let row = sqlx::query(
            "SELECT s.snapshot, t.last_seq, s.seq FROM tasks t \
             JOIN task_snapshots s ON s.task_id = t.id WHERE t.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        match row {
            Some(r) => Ok(Some(self.stored(&r).await?)),
            None => Ok(None),
        }
    }

    async fn events_after(&self, id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_between(id, after, u64::MAX).await
    }

    async fn list(&self, query: &TaskQuery) -> Result<TaskPage, StoreError> {
        let filters = |q: &mut QueryBuilder<Sqlite>| {
            q.push(" WHERE 1 = 1");
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
            let mut q = QueryBuilder::<Sqlite>::new("SELECT COALESCE(SUM(n), 0) FROM task_counts");
            if let Some(state) = query.state {
                q.push(" WHERE state = ").push_bind(state as i32);
            }
            q
        } else {
            // Proportional to the matching tasks, through the context, state or timestamp index.
            let mut q = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM tasks");
            filters(&mut q);
            q
        };
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;

        // A snapshot older than its task also counts the events to fold in, so that the page
        // cut stays an upper bound of the folded tasks' size.
        let mut page = QueryBuilder::<Sqlite>::new(
            "SELECT s.snapshot, tasks.last_seq, s.seq, CASE WHEN s.seq = tasks.last_seq THEN 0 \
             ELSE (SELECT COALESCE(SUM(length(e.events)), 0) FROM task_event_batches e \
             WHERE e.task_id = tasks.id AND e.last_seq > s.seq AND e.first_seq <= tasks.last_seq) \
             END \
             FROM tasks JOIN task_snapshots s ON s.task_id = tasks.id",
        );
        filters(&mut page);
        if let Some(c) = &query.after {
            page.push(" AND (status_us < ")
                .push_bind(c.status_micros)
                .push(" OR (status_us = ")
                .push_bind(c.status_micros)
                .push(" AND id < ")
                .push_bind(c.task_id.clone())
                .push("))");
        }
        page.push(" ORDER BY status_us DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.page_size) + 1);
        // Streamed, so that a page cut short by bytes reads no further rows.
        let mut rows = page.build().fetch(&self.reader);
        let mut tasks = Vec::new();
        // Tasks whose snapshot is older than they are: (index in `tasks`, its seqs).
        let mut behind = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        while let Some(row) = rows.try_next().await.map_err(backend)? {
            let blob = row.get::<&[u8], _>(0);
            let size = blob.len() + row.get::<i64, _>(3).max(0) as usize;
            let full = tasks.len() >= query.page_size as usize
                || (!tasks.is_empty() && query.max_bytes.is_some_and(|m| bytes + size > m));
            if full {
                more = true;
                break;
            }
            bytes += size;
            let (last_seq, snapshot_seq) = (row.get::<i64, _>(1), row.get::<i64, _>(2));
            if snapshot_seq < last_seq {
                behind.push((tasks.len(), snapshot_seq.max(0) as u64, last_seq as u64));
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
            "SELECT s.snapshot, t.last_seq, s.seq FROM tasks t \
             JOIN task_snapshots s ON s.task_id = t.id WHERE t.state NOT IN (?, ?, ?, ?)",
        )
        .bind(TaskState::Completed as i32)
        .bind(TaskState::Failed as i32)
        .bind(TaskState::Canceled as i32)
        .bind(TaskState::Rejected as i32)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let mut tasks = Vec::with_capacity(rows.len());
        for r in &rows {
            tasks.push(self.stored(r).await?);
        }
        Ok(tasks)
    }

    async fn sweep(&self, rule: &SweepRule) -> Result<u64, StoreError> {
        let mut swept = 0;
        // One short transaction per batch, so group commits interleave with a long sweep.
        loop {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let mut q = QueryBuilder::<Sqlite>::new("SELECT id FROM (");
            if let Some(keep) = rule.keep_newest {
                q.push("SELECT id, status_us FROM (SELECT id, status_us FROM tasks WHERE ");
                terminal(&mut q);
                q.push(" ORDER BY status_us DESC, id DESC LIMIT -1 OFFSET ")
                    .push_bind(i64::try_from(keep).unwrap_or(i64::MAX))
                    .push(")");
            } else {
                q.push("SELECT NULL AS id, 0 AS status_us WHERE 0");
            }
            if let Some(older) = rule.older_than_micros {
                q.push(" UNION SELECT id, status_us FROM tasks WHERE status_us < ")
                    .push_bind(older)
                    .push(" AND ");
                terminal(&mut q);
            }
            q.push(") WHERE status_us < ")
                .push_bind(rule.settled_before_micros)
                .push(" LIMIT ")
                .push_bind(SWEEP_BATCH);
            let ids: Vec<String> = q
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            if ids.is_empty() {
                break;
            }
            for table in [
                "task_event_batches WHERE task_id",
                "push_configs WHERE task_id",
                "task_messages WHERE task_id",
                "task_checkpoints WHERE task_id",
                "task_snapshots WHERE task_id",
                "tasks WHERE id",
            ] {
                let mut d = QueryBuilder::<Sqlite>::new(format!("DELETE FROM {table} IN ("));
                let mut list = d.separated(", ");
                for id in &ids {
                    list.push_bind(id.as_str());
                }
                d.push(")");
                d.build().execute(&mut *tx).await.map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            swept += ids.len() as u64;
            if ids.len() < SWEEP_BATCH as usize {
                break;
            }
        }
        optimize(&self.writer).await;
        Ok(swept)
    }

    async fn put_push_config(&self, config: &TaskPushNotificationConfig) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO push_configs (task_id, id, created, config) \
             VALUES (?, ?, (SELECT COALESCE(MAX(created), 0) + 1 FROM push_configs), ?) \
             ON CONFLICT (task_id, id) DO UPDATE SET config = excluded.config",
        )
        .bind(&config.task_id)
        .bind(&config.id)
        .bind(config.encode_to_vec())
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn push_configs(
        &self,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        let rows =
            sqlx::query("SELECT config FROM push_configs WHERE task_id = ? ORDER BY created")
                .bind(task_id)
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(|r| decode(r.get::<&[u8], _>(0), "push config"))
            .collect()
    }

    async fn delete_push_config(&self, task_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM push_configs WHERE task_id = ? AND id = ?")
            .bind(task_id)
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::a2a::StreamResponse;

    /// A task in `state` with status timestamp `us`.
    fn write(id: &str, state: TaskState, us: i64) -> TaskWrite {
        TaskWrite {
            head_only: false,
            snapshot: Task {
                id: id.into(),
                context_id: "c".into(),
                status: Some(crate::pb::a2a::TaskStatus {
                    state: state as i32,
                    message: None,
                    timestamp: Some(crate::pb::Timestamp {
                        seconds: us / 1_000_000,
                        nanos: 0,
                    }),
                }),
                ..Default::default()
            }
            .into(),
            last_seq: 1,
            events: Vec::new(),
            epoch: None,
            messages: Vec::new(),
            checkpoint: None,
            creates: None,
        }
    }

    fn query(state: Option<TaskState>) -> TaskQuery {
        TaskQuery {
            state,
            page_size: 10,
            ..Default::default()
        }
    }

    /// A new store in a directory of its own (which lives as long as the store is used), and
    /// the path of its file.
    async fn fresh() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, Durability::Os)
            .await
            .expect("open");
        (dir, path, store)
    }

    /// A store whose file was turned back into an older schema by `downgrade` (SQL), then
    /// reopened, which must upgrade it to [`SCHEMA_VERSION`]. The directory lives as long as
    /// the store is used.
    async fn reopened_after(downgrade: &'static str) -> (tempfile::TempDir, SqliteStore) {
        let (dir, path, store) = fresh().await;
        sqlx::raw_sql(downgrade)
            .execute(&store.writer)
            .await
            .expect("downgrade");
        store.close().await;
        (dir, reopen(&path).await)
    }

    /// Opens the file at `path` again and checks that it is at [`SCHEMA_VERSION`] now.
    async fn reopen(path: &Path) -> SqliteStore {
        let store = SqliteStore::open(path, Durability::Os)
            .await
            .expect("reopen");
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&store.reader)
            .await
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        store
    }

    #[tokio::test]
    async fn a_v4_file_moves_its_snapshots_to_their_own_table_on_open() {
        let (_dir, path, store) = fresh().await;
        // Version 4: the snapshot in the task's row.
        sqlx::raw_sql(
            "DROP TABLE task_snapshots; \
             ALTER TABLE tasks ADD COLUMN snapshot BLOB NOT NULL DEFAULT x''; \
             PRAGMA user_version = 4",
        )
        .execute(&store.writer)
        .await
        .expect("downgrade");
        let old = write("a", TaskState::Working, 1_000_000);
        sqlx::query(
            "INSERT INTO tasks (id, context_id, state, status_us, last_seq, snapshot) \
             VALUES ('a', 'c', ?, 1000000, 1, ?)",
        )
        .bind(TaskState::Working as i32)
        .bind(old.snapshot.encode_to_vec())
        .execute(&store.writer)
        .await
        .expect("a version 4 row");
        store.close().await;

        let store = reopen(&path).await;
        let inline: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name = 'snapshot'",
        )
        .fetch_one(&store.reader)
        .await
        .expect("columns");
        assert_eq!(inline, 0, "the column is gone");
        let got = store.task("a").await.expect("get").expect("moved");
        assert_eq!((got.last_seq, &got.task), (1, &*old.snapshot));

        // A head-only write leaves the moved snapshot as it is.
        let mut head = write("a", TaskState::Working, 2_000_000);
        head.head_only = true;
        head.last_seq = 2;
        head.events = vec![StoredEvent {
            seq: 2,
            event: StreamResponse::default(),
        }];
        store.commit(&[head]).await.expect("head");
        let seqs: (i64, i64) = sqlx::query_as(
            "SELECT s.seq, t.last_seq FROM tasks t JOIN task_snapshots s ON s.task_id = t.id",
        )
        .fetch_one(&store.reader)
        .await
        .expect("row");
        assert_eq!(seqs, (1, 2));
        let got = store.task("a").await.expect("get").expect("stored");
        assert_eq!((got.last_seq, &got.task), (2, &*old.snapshot));
        store.close().await;
    }

    /// A status update to `state`, as event `seq` of task `a`.
    fn status(seq: u64, state: TaskState) -> StoredEvent {
        use crate::pb::a2a::{TaskStatus, TaskStatusUpdateEvent, stream_response::Payload};
        StoredEvent {
            seq,
            event: StreamResponse {
                payload: Some(Payload::StatusUpdate(TaskStatusUpdateEvent {
                    task_id: "a".into(),
                    context_id: "c".into(),
                    status: Some(TaskStatus {
                        state: state as i32,
                        ..Default::default()
                    }),
                    metadata: None,
                })),
            },
        }
    }

    #[tokio::test]
    async fn a_v5_file_moves_its_events_into_batches_on_open() {
        let (_dir, path, store) = fresh().await;
        store
            .commit(&[write("a", TaskState::Working, 1_000_000)])
            .await
            .expect("commit");
        // Version 5: a row per event; task `a` is at event 3, its snapshot at event 1.
        sqlx::raw_sql(
            "DROP TABLE task_event_batches; \
             CREATE TABLE task_events (task_id TEXT NOT NULL, seq INTEGER NOT NULL, \
                 event BLOB NOT NULL, PRIMARY KEY (task_id, seq)) WITHOUT ROWID; \
             UPDATE tasks SET last_seq = 3, state = 3; \
             PRAGMA user_version = 5",
        )
        .execute(&store.writer)
        .await
        .expect("downgrade");
        let events = [
            status(2, TaskState::InputRequired),
            status(3, TaskState::Completed),
        ];
        for e in &events {
            sqlx::query("INSERT INTO task_events (task_id, seq, event) VALUES ('a', ?, ?)")
                .bind(e.seq as i64)
                .bind(e.event.encode_to_vec())
                .execute(&store.writer)
                .await
                .expect("a version 5 row");
        }
        store.close().await;

        let store = reopen(&path).await;
        let old: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'task_events'")
                .fetch_one(&store.reader)
                .await
                .expect("tables");
        assert_eq!(old, 0, "the table is gone");
        assert_eq!(store.events_after("a", 0).await.expect("events"), events);
        assert_eq!(
            store.events_after("a", 2).await.expect("events"),
            events[1..]
        );
        let got = store.task("a").await.expect("get").expect("stored");
        assert_eq!((got.last_seq, got.task.state()), (3, TaskState::Completed));
        // The next commit appends after the moved events.
        let mut next = write("a", TaskState::Completed, 2_000_000);
        next.head_only = true;
        next.last_seq = 4;
        next.events = vec![status(4, TaskState::Completed)];
        store.commit(&[next]).await.expect("append");
        assert_eq!(store.events_after("a", 0).await.expect("events").len(), 3);
        store.close().await;
    }

    #[tokio::test]
    async fn a_v3_file_gains_the_checkpoint_table_on_open() {
        let (_dir, store) =
            reopened_after("DROP TABLE task_checkpoints; PRAGMA user_version = 3").await;
        let mut w = write("a", TaskState::Working, 1_000_000);
        w.checkpoint = Some(b"at 3".to_vec());
        store.commit(&[w]).await.expect("commit");
        assert_eq!(
            store.checkpoint("a").await.expect("get").as_deref(),
            Some(&b"at 3"[..])
        );
        store.close().await;
    }

    #[tokio::test]
    async fn message_keys_of_the_file_and_of_new_commits_are_found_once_the_keys_are_loaded() {
        let (_dir, path, store) = fresh().await;
        let key = |m: &str| MessageKey {
            context_id: "ctx".into(),
            message_id: m.into(),
        };
        let mut w = write("a", TaskState::Completed, 1_000_000);
        w.messages = vec![key("before")];
        store.commit(&[w]).await.expect("commit");
        store.close().await;

        let store = SqliteStore::open(&path, Durability::Os)
            .await
            .expect("reopen");
        let mut w = write("b", TaskState::Completed, 2_000_000);
        w.messages = vec![key("after")];
        store.commit(&[w]).await.expect("commit");
        tokio::time::timeout(Duration::from_secs(10), async {
            while !store.seen.loaded() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the keys load");
        let keys = [key("before"), key("after"), key("never")];
        assert_eq!(
            store.tasks_for_messages(&keys).await.expect("lookup"),
            [Some("a".to_owned()), Some("b".to_owned()), None]
        );
        assert_eq!(
            store
                .task_for_message(&keys[0])
                .await
                .expect("lookup")
                .as_deref(),
            Some("a")
        );
        assert!(!store.seen.may_hold(&keys[2]), "answered without a read");
        store.close().await;
    }

    #[tokio::test]
    async fn a_v2_file_gains_the_message_table_on_open() {
        // A version-2 database: no message table (nor the later checkpoint table).
        let (_dir, store) = reopened_after(
            "DROP TABLE task_messages; DROP TABLE task_checkpoints; PRAGMA user_version = 2",
        )
        .await;
        let key = MessageKey {
            context_id: String::new(),
            message_id: "m".into(),
        };
        let mut w = write("a", TaskState::Completed, 1_000_000);
        w.messages = vec![key.clone()];
        store.commit(&[w]).await.expect("commit");
        assert_eq!(
            store.task_for_message(&key).await.expect("get").as_deref(),
            Some("a")
        );
        store.close().await;
    }

    #[tokio::test]
    async fn counts_follow_inserts_updates_and_sweeps_and_survive_the_v1_upgrade() {
        let (_dir, path, store) = fresh().await;
        // A version-1 database: tasks but no counts.
        sqlx::raw_sql(
            "DROP TRIGGER tasks_count_insert; DROP TRIGGER tasks_count_update; \
             DROP TRIGGER tasks_count_delete; DROP TABLE task_counts; PRAGMA user_version = 1",
        )
        .execute(&store.writer)
        .await
        .expect("downgrade");
        let old = 1_000_000_000_000;
        store
            .commit(&[
                write("a", TaskState::Completed, old),
                write("b", TaskState::Working, old),
            ])
            .await
            .expect("commit");
        store.close().await;

        let store = SqliteStore::open(&path, Durability::Os)
            .await
            .expect("open");
        let total = |s: Option<TaskState>| {
            let store = store.clone();
            async move { store.list(&query(s)).await.expect("list").total }
        };
        assert_eq!(total(None).await, 2, "rebuilt on upgrade");
        store
            .commit(&[
                write("b", TaskState::Failed, old + 1),
                write("c", TaskState::InputRequired, old + 2),
            ])
            .await
            .expect("commit");
        assert_eq!(total(None).await, 3);
        assert_eq!(total(Some(TaskState::Failed)).await, 1, "b moved state");
        assert_eq!(total(Some(TaskState::Working)).await, 0);
        let swept = store
            .sweep(&SweepRule {
                older_than_micros: None,
                keep_newest: Some(1),
                settled_before_micros: i64::MAX,
            })
            .await
            .expect("sweep");
        assert_eq!(swept, 1, "the older of the two terminal tasks");
        assert!(store.task("a").await.expect("get").is_none());
        assert!(store.task("b").await.expect("get").is_some());
        assert_eq!(total(None).await, 2);
        assert_eq!(total(Some(TaskState::Completed)).await, 0);
    }
}
