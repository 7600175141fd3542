//! Idempotence lookups gathered like group commits: the `messageId` lookups of concurrent
//! sends (issue 13 item 4) go to the store together, one round trip for a batch
//! ([`TaskStore::tasks_for_messages`]) instead of one per send.
//!
//! One task owns the store calls. While a batch is with the store, the keys of new sends queue
//! up and form the next batch, so a lone send pays one round trip as before and a busy agent
//! pays one per batch (issue 15 item 1: fewer hand-offs to the store's threads).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{MessageKey, StoreError, TaskStore};

/// Most keys answered by one store call.
const MAX_BATCH: usize = 256;

/// The answer to one key: the task that accepted it, if any, or the store's failure (shared by
/// every key of the batch).
type Answer = Result<Option<String>, Arc<StoreError>>;

/// Handle to the lookup task; the task ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct MessageLookup {
    tx: mpsc::UnboundedSender<(MessageKey, oneshot::Sender<Answer>)>,
}

impl MessageLookup {
    /// Starts the lookup task on `store` (call within a Tokio runtime).
    pub(crate) fn spawn(store: Arc<dyn TaskStore>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// The task that accepted the message `key`, as [`TaskStore::task_for_message`] answers.
    ///
    /// # Errors
    /// The store's failure; [`StoreError::Backend`] when the lookup task is gone (the runtime
    /// is being dropped).
    pub(crate) async fn task_for(&self, key: MessageKey) -> Answer {
        let (tx, rx) = oneshot::channel();
        let gone = || Arc::new(StoreError::Backend("the message lookup task ended".into()));
        self.tx.send((key, tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(
    store: Arc<dyn TaskStore>,
    mut rx: mpsc::UnboundedReceiver<(MessageKey, oneshot::Sender<Answer>)>,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    let mut keys = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        for (key, reply) in queued.drain(..) {
            keys.push(key);
            replies.push(reply);
        }
        let found = match keys.as_slice() {
            [key] => store.task_for_message(key).await.map(|t| vec![t]),
            _ => store.tasks_for_messages(&keys).await,
        }
        .and_then(|found| {
            if found.len() == keys.len() {
                Ok(found)
            } else {
                Err(StoreError::Corrupt(format!(
                    "tasks_for_messages answered {} of {} message keys (one answer per key \
                     expected)",
                    found.len(),
                    keys.len()
                )))
            }
        });
        keys.clear();
        match found {
            Ok(found) => {
                for (reply, task) in replies.drain(..).zip(found) {
                    let _ = reply.send(Ok(task));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, TaskWrite};

    fn key(id: &str) -> MessageKey {
        MessageKey {
            context_id: String::new(),
            message_id: id.into(),
        }
    }

    /// Concurrent lookups each get their own key's answer, whatever batch they went in.
    #[tokio::test]
    async fn concurrent_lookups_get_their_own_answers() {
        let store = Arc::new(MemoryStore::default());
        let mut w = TaskWrite {
            head_only: false,
            snapshot: crate::pb::a2a::Task {
                id: "t-7".into(),
                context_id: "c".into(),
                ..Default::default()
            }
            .into(),
            last_seq: 0,
            events: Vec::new(),
            epoch: None,
            messages: vec![key("m-7")],
            checkpoint: None,
            creates: None,
        };
        store
            .commit(std::slice::from_ref(&w))
            .await
            .expect("commit");
        Arc::make_mut(&mut w.snapshot).id = "t-9".into();
        w.messages = vec![key("m-9")];
        store.commit(&[w]).await.expect("commit");
        let lookup = Arc::new(MessageLookup::spawn(store));
        let answers = futures::future::join_all((0..600).map(|i| {
            let lookup = lookup.clone();
            async move { lookup.task_for(key(&format!("m-{}", i % 10))).await }
        }))
        .await;
        for (i, a) in answers.into_iter().enumerate() {
            let expected = match i % 10 {
                7 => Some("t-7".to_owned()),
                9 => Some("t-9".to_owned()),
                _ => None,
            };
            assert_eq!(a.expect("lookup"), expected, "send {i}");
        }
    }
}
