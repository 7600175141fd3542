//! The message keys a SQLite store holds, kept in memory as a Bloom filter, so that an
//! idempotence lookup ([`TaskStore::tasks_for_messages`](crate::store::TaskStore)) of a key the
//! file has never held (every first send of a message: nearly all of them) is answered without
//! a read: a read is three round trips to one of sqlx's SQLite threads (a pool acquire, the
//! query, a release), and answering new keys from memory took 16 % off the agent's CPU per
//! `SendMessage` and 63 % of its context switches (`bench/RESULTS.md` §10, "Idempotence
//! lookups answered in memory").
//!
//! Sound because one process owns the file ([`super::owner`]): every key in the file was there
//! when the store opened, and is added by [`SeenKeys::load`], or was committed by this process,
//! which adds it before its transaction begins. A Bloom filter has no false negatives; a false
//! positive, or any lookup before the load completes, reads the file as before. A swept key
//! stays in the filter (a false positive until the next start), and past its capacity the
//! filter answers "maybe" more often: lookups read the file more, never answer wrongly.

use std::sync::atomic::{AtomicBool, Ordering};

use fastbloom::AtomicBloomFilter;
use futures::TryStreamExt as _;
use sqlx::{Row as _, SqlitePool};

use crate::store::MessageKey;

/// False-positive rate at the filter's capacity: ~9.6 bits (1.2 bytes) per key.
const FALSE_POSITIVES: f64 = 0.01;

/// Fewest keys the filter is sized for: 2^20 keys, 1.2 MiB.
const MIN_CAPACITY: usize = 1 << 20;

/// The keys of one store's `task_messages` table, approximately (no false negatives).
pub(super) struct SeenKeys {
    filter: AtomicBloomFilter,
    /// Set once every key the file held at open is in `filter`.
    loaded: AtomicBool,
}

impl std::fmt::Debug for SeenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenKeys")
            .field("bits", &self.filter.num_bits())
            .field("loaded", &self.loaded.load(Ordering::Relaxed))
            .finish()
    }
}

impl SeenKeys {
    /// An empty filter for a file that holds `tasks` tasks, sized for twice as many keys (a
    /// task records the key of each message that names one; at least [`MIN_CAPACITY`]);
    /// nothing is answered from it until [`load`](Self::load) completes.
    pub(super) fn new(tasks: usize) -> Self {
        Self {
            filter: AtomicBloomFilter::with_false_pos(FALSE_POSITIVES)
                .expected_items(tasks.saturating_mul(2).max(MIN_CAPACITY)),
            loaded: AtomicBool::new(false),
        }
    }

    /// Records `key`. Call before the transaction that writes it begins.
    pub(super) fn insert(&self, key: &MessageKey) {
        self.filter.insert(&hashed(key));
    }

    /// Whether the file may hold `key`; `false` only when it surely does not.
    pub(super) fn may_hold(&self, key: &MessageKey) -> bool {
        !self.loaded.load(Ordering::Acquire) || self.filter.contains(&hashed(key))
    }

    /// Whether [`load`](Self::load) has completed.
    #[cfg(test)]
    pub(super) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Adds every key of the file, as a reader of `pool` sees it, then answers from the
    /// filter. Keys committed meanwhile were added by [`insert`](Self::insert).
    ///
    /// # Errors
    /// The read failed; the filter then stays unused (every lookup reads the file).
    pub(super) async fn load(&self, pool: &SqlitePool) -> Result<(), sqlx::Error> {
        let mut rows = sqlx::query("SELECT context_id, message_id FROM task_messages").fetch(pool);
        while let Some(row) = rows.try_next().await? {
            self.filter
                .insert(&(row.get::<&str, _>(0), row.get::<&str, _>(1)));
        }
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }
}

/// What the filter hashes for `key`: its two strings as a pair (a string hashes its bytes
/// and a terminator, so no two keys hash the same input).
fn hashed(key: &MessageKey) -> (&str, &str) {
    (key.context_id.as_str(), key.message_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(context: &str, message: &str) -> MessageKey {
        MessageKey {
            context_id: context.into(),
            message_id: message.into(),
        }
    }

    #[test]
    fn answers_maybe_until_loaded_then_only_for_keys_it_holds() {
        let seen = SeenKeys::new(0);
        seen.insert(&key("c", "m1"));
        assert!(
            seen.may_hold(&key("c", "m2")),
            "not loaded: every key may be held"
        );
        seen.loaded.store(true, Ordering::Release);
        assert!(seen.may_hold(&key("c", "m1")));
        let absent = (0..10_000)
            .filter(|i| !seen.may_hold(&key("c", &format!("other-{i}"))))
            .count();
        assert!(
            absent > 9_800,
            "{absent} of 10,000 absent keys answered as absent"
        );
    }
}
