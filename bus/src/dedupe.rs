//! The bridge's message-id store: at most one task per A2A `messageId`, even when the bus
//! delivers a message twice (at-least-once) or to two competing bridges.
//!
//! Until the runtime's SendMessage is idempotent itself, every bridge sharing a queue shares
//! this SQLite table (one file per host; [`Dedupe::open`]). A row is a *claim* with a lease:
//! the bridge that inserted it runs the message and renews the lease while the agent works; a
//! second delivery of the same id waits while the lease is live, takes over when it expired
//! (the owner died), and answers with the stored reply once the first finished. Rows are kept
//! for [`Dedupe::retention`] (a day by default), longer than any broker redelivers.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// A claim's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This bridge runs the message. `takeover` = an earlier owner's lease expired, so the
    /// agent may already have a task for it.
    Won {
        /// Whether an earlier claim existed.
        takeover: bool,
    },
    /// Another bridge is running it and its lease is live.
    Busy,
    /// It was answered before: the stored reply (`ce-type`, body, content type).
    Done {
        /// `ce-type` of the reply.
        reply_type: String,
        /// The reply's content type.
        content_type: String,
        /// The reply body.
        body: Vec<u8>,
    },
    /// It was dead-lettered before.
    Dead,
}

/// The dedupe table.
#[derive(Debug, Clone)]
pub struct Dedupe {
    pool: SqlitePool,
    /// How long answered ids are remembered.
    pub retention: Duration,
}

/// A dedupe store error.
#[derive(Debug, thiserror::Error)]
#[error("bridge dedupe store: {0}")]
pub struct DedupeError(#[from] sqlx::Error);

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Dedupe {
    /// Opens (creating) the table in the SQLite file `path`; bridges on one host share it.
    ///
    /// # Errors
    /// The file cannot be opened or created.
    pub async fn open(path: &Path) -> Result<Self, DedupeError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        Self::with(
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?,
        )
        .await
    }

    /// A private in-memory table (one bridge, nothing survives).
    ///
    /// # Errors
    /// SQLite cannot start.
    pub async fn memory() -> Result<Self, DedupeError> {
        let options = SqliteConnectOptions::new().in_memory(true);
        Self::with(
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?,
        )
        .await
    }

    async fn with(pool: SqlitePool) -> Result<Self, DedupeError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bus_dedupe (
                message_id   TEXT PRIMARY KEY,
                owner        TEXT NOT NULL,
                lease_until  INTEGER NOT NULL,
                state        TEXT NOT NULL,
                takeovers    INTEGER NOT NULL DEFAULT 0,
                reply_type   TEXT,
                content_type TEXT,
                reply        BLOB,
                updated      INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await?;
        Ok(Self {
            pool,
            retention: Duration::from_secs(24 * 3600),
        })
    }

    /// Claims `message_id` for `owner` for `lease`.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn claim(
        &self,
        message_id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Claim, DedupeError> {
        let now = now_ms();
        let won = sqlx::query(
            "INSERT INTO bus_dedupe (message_id, owner, lease_until, state, updated)
             VALUES (?1, ?2, ?3, 'running', ?4)
             ON CONFLICT (message_id) DO UPDATE
               SET owner = excluded.owner, lease_until = excluded.lease_until,
                   takeovers = takeovers + 1, updated = excluded.updated
               WHERE bus_dedupe.state = 'running' AND bus_dedupe.lease_until < ?4
             RETURNING takeovers",
        )
        .bind(message_id)
        .bind(owner)
        .bind(now + ms(lease))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = won {
            let takeovers: i64 = row.get(0);
            return Ok(Claim::Won {
                takeover: takeovers > 0,
            });
        }
        let row = sqlx::query(
            "SELECT state, reply_type, content_type, reply FROM bus_dedupe WHERE message_id = ?1",
        )
        .bind(message_id)
        .fetch_one(&self.pool)
        .await?;
        let state: String = row.get(0);
        Ok(match state.as_str() {
            "done" => Claim::Done {
                reply_type: row.get::<Option<String>, _>(1).unwrap_or_default(),
                content_type: row.get::<Option<String>, _>(2).unwrap_or_default(),
                body: row.get::<Option<Vec<u8>>, _>(3).unwrap_or_default(),
            },
            "dead" => Claim::Dead,
            _ => Claim::Busy,
        })
    }

    /// Extends `owner`'s lease on `message_id`.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn renew(
        &self,
        message_id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<(), DedupeError> {
        sqlx::query(
            "UPDATE bus_dedupe SET lease_until = ?3 WHERE message_id = ?1 AND owner = ?2 AND state = 'running'",
        )
        .bind(message_id)
        .bind(owner)
        .bind(now_ms() + ms(lease))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the reply of `message_id`.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn done(
        &self,
        message_id: &str,
        reply_type: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), DedupeError> {
        sqlx::query(
            "UPDATE bus_dedupe SET state = 'done', reply_type = ?2, content_type = ?3, reply = ?4, updated = ?5
             WHERE message_id = ?1",
        )
        .bind(message_id)
        .bind(reply_type)
        .bind(content_type)
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks `message_id` dead-lettered.
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn dead(&self, message_id: &str) -> Result<(), DedupeError> {
        sqlx::query("UPDATE bus_dedupe SET state = 'dead', updated = ?2 WHERE message_id = ?1")
            .bind(message_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the claim of `message_id` (a failed attempt that will be retried).
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn release(&self, message_id: &str, owner: &str) -> Result<(), DedupeError> {
        sqlx::query(
            "DELETE FROM bus_dedupe WHERE message_id = ?1 AND owner = ?2 AND state = 'running'",
        )
        .bind(message_id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes answered and dead rows older than [`retention`](Self::retention).
    ///
    /// # Errors
    /// SQLite errors.
    pub async fn prune(&self) -> Result<u64, DedupeError> {
        let r = sqlx::query("DELETE FROM bus_dedupe WHERE state != 'running' AND updated < ?1")
            .bind(now_ms() - ms(self.retention))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_owner_then_busy_then_takeover_then_done() {
        let d = Dedupe::memory().await.expect("dedupe");
        let lease = Duration::from_millis(200);
        assert_eq!(
            d.claim("m", "a", lease).await.unwrap(),
            Claim::Won { takeover: false }
        );
        assert_eq!(d.claim("m", "b", lease).await.unwrap(), Claim::Busy);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            d.claim("m", "b", lease).await.unwrap(),
            Claim::Won { takeover: true }
        );
        d.done("m", "t", "application/json", b"{}").await.unwrap();
        assert_eq!(
            d.claim("m", "a", lease).await.unwrap(),
            Claim::Done {
                reply_type: "t".into(),
                content_type: "application/json".into(),
                body: b"{}".to_vec()
            }
        );
        d.release("n", "a").await.unwrap();
        assert_eq!(
            d.claim("n", "a", lease).await.unwrap(),
            Claim::Won { takeover: false }
        );
        d.release("n", "a").await.unwrap();
        assert_eq!(
            d.claim("n", "b", lease).await.unwrap(),
            Claim::Won { takeover: false }
        );
        d.dead("n").await.unwrap();
        assert_eq!(d.claim("n", "a", lease).await.unwrap(), Claim::Dead);
    }
}
