//! One process owns a SQLite store: it holds an exclusive advisory lock (`flock`) on
//! `<file>.lock`, beside the database, from open to close (or to its exit: the kernel drops
//! the lock of a process that dies). Two agents on one file would both resume its unfinished
//! tasks, and each would miss the message keys the other records ([`super::seen`]); several
//! replicas share a PostgreSQL store instead.
//!
//! SQLite's own locks are POSIX record locks on the database file itself, which `flock` does
//! not touch; the lock file is a file of its own so that no platform mixes the two.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read as _, Seek as _, Write as _},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use crate::store::StoreError;

/// How long an open waits for the lock: a process (or a server in this process) that is
/// closing the store releases it within this time.
const WAIT: Duration = Duration::from_secs(5);

/// Between two attempts to take the lock.
const RETRY: Duration = Duration::from_millis(50);

/// The lock of one open store, released by [`release`](Self::release) or when dropped.
#[derive(Debug)]
pub(super) struct Owner {
    file: Mutex<Option<File>>,
}

impl Owner {
    /// Takes the lock of the database at `db`, waiting up to [`WAIT`] for its present owner,
    /// and writes this process's id into the lock file.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the lock file cannot be opened or written, or another
    /// owner still holds the lock after [`WAIT`]: the message names the file and, where the
    /// lock file says, that owner's process id.
    pub(super) async fn acquire(db: &Path) -> Result<Self, StoreError> {
        let path = lock_path(db);
        let io = |what: &str, e: std::io::Error| {
            StoreError::Backend(format!("{what} {}: {e}", path.display()).into())
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("opening the store's lock file", e))?;
        let give_up = tokio::time::Instant::now() + WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(RETRY).await;
                }
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = match holder.trim() {
                        "" => "another store".to_owned(),
                        pid => format!("process {pid}"),
                    };
                    return Err(StoreError::Backend(
                        format!(
                            "the SQLite store {} is already open: {holder} holds {}. A SQLite \
                             store belongs to one agent in one process: give each agent a file \
                             of its own; replicas share a PostgreSQL store",
                            db.display(),
                            path.display()
                        )
                        .into(),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(io("locking", e)),
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("writing", e))?;
        Ok(Self {
            file: Mutex::new(Some(file)),
        })
    }

    /// Releases the lock (once the store's connections are closed).
    pub(super) fn release(&self) {
        // Closing the file releases its lock.
        drop(self.file.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// `<db>.lock`: the database's file name with `.lock` appended, in its directory.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    db.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: the waits between attempts pass at once.
    #[tokio::test(start_paused = true)]
    async fn a_second_owner_waits_then_fails_naming_the_first_and_gets_the_lock_once_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        let first = Owner::acquire(&db).await.expect("first");
        let started = tokio::time::Instant::now();
        let e = Owner::acquire(&db).await.expect_err("held").to_string();
        assert!(
            started.elapsed() >= WAIT,
            "gave up after {:?}",
            started.elapsed()
        );
        let pid = std::process::id().to_string();
        assert!(e.contains("is already open") && e.contains(&pid), "{e}");
        assert!(e.contains("t.db.lock"), "{e}");
        first.release();
        let second = Owner::acquire(&db).await.expect("after release");
        drop(second);
        Owner::acquire(&db).await.expect("after drop");
    }
}
