//! Ownership of tasks among several replicas of one agent on one shared store.
//!
//! A replica executes and commits a task only while it holds the task's lease
//! ([`TaskStore::acquire_lease`]): a new task's lease is taken by the commit that creates it
//! ([`TaskWrite::creates`]: the task exists nowhere before that commit, and from it on it is
//! leased; a fresh id no other replica can know, and a creation whose id exists is refused and
//! its execution stopped), and a task that settles in that same commit gets none; every commit
//! carries the lease epoch, so a store refuses the writes of a replica that lost the task
//! ([`StoreError::Fenced`]). One loop per replica renews its leases every
//! `ttl / 3`, stops the executions of leases it lost (or could not renew for `3/4 · ttl`, before
//! anyone else may take them), and every `ttl / 2` takes over orphaned tasks (no live lease:
//! their owner died) with the agent's [`Recovery`](super::Recovery) policy; a task taken over
//! more than `max_takeovers` times is failed as a poison task. A lease is released when its
//! task settles (terminal, or waiting for input: any replica may continue it) and when the
//! replica drains, so that another replica takes it at once.
//!
//! [`TaskWrite::creates`]: crate::store::TaskWrite::creates

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, Weak, atomic::Ordering},
    time::Duration,
};

use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::{Instant, MissedTickBehavior, interval_at},
};

use super::{CancelReason, LiveTask, Runtime, Subscription, not_cancelable, store_error};
use crate::{
    error::RpcError,
    pb::a2a::{Task, TaskState},
    store::{Lease, LeaseClaim, NewTask, StoreError, StoreNotice, StoredTask, TaskStore},
    telemetry::metrics,
};

/// How long [`Replica::wait_released`] waits for a release of the same task in flight.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// How often a CancelTask on a replica that does not own the task asks the owner again
/// while it waits for the committed cancellation.
const CANCEL_RETRY: Duration = Duration::from_secs(1);

/// How long such a CancelTask waits beyond the agent's cancel grace.
const CANCEL_CONFIRM: Duration = Duration::from_secs(5);

/// Lease settings of one replica (see [`ServeConfig`](crate::ServeConfig)).
#[derive(Clone, Debug)]
pub(crate) struct ReplicaConfig {
    /// This replica's name in leases.
    pub(crate) id: Arc<str>,
    /// Lease duration.
    pub(crate) lease_ttl: Duration,
    /// Takeovers after which a task is failed as poison.
    pub(crate) max_takeovers: u32,
}

/// The leases this replica holds.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) config: ReplicaConfig,
    store: Arc<dyn TaskStore>,
    held: Mutex<HashMap<String, Lease>>,
    /// Tasks whose release is in flight: an acquisition of one waits for it, or the release
    /// could land after the new acquisition (same owner, same epoch) and give the task away.
    releasing: Mutex<HashSet<String>>,
    /// Leases given up while the store could not be reached: released once it answers again,
    /// or this replica's next renewal would keep them alive with nobody running their tasks.
    stalled: Mutex<Vec<Lease>>,
    /// False from the moment this replica gave its leases up for want of renewals until a
    /// renewal succeeds and they are released: meanwhile it takes no lease (it could not
    /// keep one).
    healthy: std::sync::atomic::AtomicBool,
}

impl Replica {
    pub(crate) fn new(config: ReplicaConfig, store: Arc<dyn TaskStore>) -> Arc<Self> {
        Arc::new(Self {
            config,
            store,
            held: Mutex::default(),
            releasing: Mutex::default(),
            stalled: Mutex::default(),
            healthy: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The replica id.
    pub(crate) fn id(&self) -> &str {
        &self.config.id
    }

    /// Takes the lease of `task_id`; `Ok(None)` when another replica holds a live one.
    pub(crate) async fn acquire(&self, task_id: &str) -> Result<Option<Lease>, StoreError> {
        self.ensure_healthy()?;
        self.wait_released(task_id).await;
        match self
            .store
            .acquire_lease(task_id, self.id(), self.config.lease_ttl)
            .await?
        {
            LeaseClaim::Acquired(lease) => {
                self.held_lock().insert(task_id.to_owned(), lease.clone());
                Ok(Some(lease))
            }
            LeaseClaim::Held { .. } => Ok(None),
        }
    }

    /// Refuses with [`StoreError::Unavailable`] while this replica cannot keep leases (it gave
    /// them up for want of renewals): it takes no lease then, old task or new.
    pub(crate) fn ensure_healthy(&self) -> Result<(), StoreError> {
        if self.healthy.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "this replica cannot renew its task leases; retry on another replica".into(),
            ))
        }
    }

    /// The lease a new task's creation commit takes for this replica
    /// ([`NewTask::Leased`]).
    pub(crate) fn new_lease(&self) -> NewTask {
        NewTask::Leased {
            owner: self.config.id.to_string(),
            ttl: self.config.lease_ttl,
        }
    }

    /// Records the lease of `task_id` that its creation commit took (epoch 1, no takeover),
    /// so that it is released like any other.
    pub(crate) fn hold_created(&self, task_id: &str) {
        let lease = Lease {
            task_id: task_id.to_owned(),
            owner: self.id().to_owned(),
            epoch: 1,
            takeovers: 0,
        };
        self.held_lock().insert(task_id.to_owned(), lease);
    }

    /// Forgets the lease of `task_id` without releasing it (it was lost).
    pub(crate) fn forget(&self, task_id: &str) -> Option<Lease> {
        self.held_lock().remove(task_id)
    }

    /// Releases the lease of `task_id` in the background, if held; an acquisition of the same
    /// task on this replica waits until the release is done.
    pub(crate) fn release(self: &Arc<Self>, task_id: &str) {
        let Some(lease) = self.forget(task_id) else {
            return;
        };
        self.releasing_lock().insert(task_id.to_owned());
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.store.release_lease(&lease).await {
                // The lease then expires and another replica takes the task over.
                tracing::warn!(task.id = %lease.task_id, error = %e, "could not release a lease");
            }
            me.releasing_lock().remove(&lease.task_id);
        });
    }

    /// Releases every held lease now (drain).
    pub(crate) async fn release_all(&self) {
        let leases: Vec<Lease> = self.held_lock().drain().map(|(_, l)| l).collect();
        for lease in leases {
            if let Err(e) = self.store.release_lease(&lease).await {
                tracing::warn!(task.id = %lease.task_id, error = %e, "could not release a lease");
            }
        }
    }

    /// Gives up the lease of `task_id` while the store cannot be reached; it is released by
    /// [`release_stalled`](Self::release_stalled) once the store answers again.
    pub(crate) fn stall(&self, task_id: &str) {
        self.healthy.store(false, Ordering::Release);
        if let Some(lease) = self.forget(task_id) {
            self.stalled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(lease);
        }
    }

    /// Releases the leases given up by [`stall`](Self::stall) (their tasks then go to whichever
    /// replica looks for orphans first, this one included); keeps those it cannot release yet.
    pub(crate) async fn release_stalled(&self) {
        let leases = std::mem::take(&mut *self.stalled.lock().unwrap_or_else(|e| e.into_inner()));
        let mut kept = Vec::new();
        for lease in leases {
            if self.store.release_lease(&lease).await.is_err() {
                kept.push(lease);
            }
        }
        let mut stalled = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        stalled.extend(kept);
        if stalled.is_empty() {
            self.healthy.store(true, Ordering::Release);
        }
    }

    /// Ids of every held lease.
    pub(crate) fn held_ids(&self) -> Vec<String> {
        self.held_lock().keys().cloned().collect()
    }

    async fn wait_released(&self, task_id: &str) {
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        while self.releasing_lock().contains(task_id) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn held_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lease>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn releasing_lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.releasing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renews this replica's leases every `ttl / 3` and takes orphaned tasks over every `ttl / 2`,
/// until the runtime shuts down (or is dropped).
pub(super) async fn lease_loop(rt: Weak<Runtime>) {
    let (replica, store, shutdown) = {
        let Some(rt) = rt.upgrade() else { return };
        let Some(r) = rt.replica.clone() else { return };
        (r, rt.store.clone(), rt.shutdown.clone())
    };
    let ttl = replica.config.lease_ttl;
    let start = Instant::now();
    let mut renew = interval_at(start + ttl / 3, ttl / 3);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut scan = interval_at(start + ttl / 2, ttl / 2);
    scan.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Every lease held now was taken or renewed after this instant.
    let mut renewed_at = start;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = renew.tick() => {
                let sent = Instant::now();
                let result = store.renew_leases(replica.id(), ttl).await;
                let Some(rt) = rt.upgrade() else { return };
                match result {
                    Ok(lost) => {
                        renewed_at = sent;
                        for id in lost {
                            rt.lose(&id);
                        }
                        replica.release_stalled().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew this replica's leases");
                        // Stop before any lease can expire and be taken over elsewhere.
                        if sent.duration_since(renewed_at) >= ttl * 3 / 4 {
                            replica.healthy.store(false, Ordering::Release);
                            for id in replica.held_ids() {
                                replica.stall(&id);
                                rt.lose(&id);
                            }
                        }
                    }
                }
            }
            _ = scan.tick() => {
                let Some(rt) = rt.upgrade() else { return };
                if let Err(e) = rt.take_over_orphans().await {
                    tracing::warn!(error = %e, "could not look for orphaned tasks");
                }
            }
        }
    }
}

/// Acts on other replicas' notices: cancels the executions this replica owns when asked.
pub(super) async fn notice_listener(rt: Weak<Runtime>, mut rx: broadcast::Receiver<StoreNotice>) {
    let Some(shutdown) = rt.upgrade().map(|rt| rt.shutdown.clone()) else {
        return;
    };
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            n = rx.recv() => n,
        };
        match notice {
            Ok(StoreNotice::CancelRequested { task_id }) => {
                let Some(rt) = rt.upgrade() else { return };
                if let Some(live) = rt.live_task(&task_id) {
                    tokio::spawn(async move {
                        let _ = rt.cancel_live(&live, CancelReason::Requested).await;
                    });
                }
            }
            Ok(StoreNotice::Committed { .. }) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

impl Runtime {
    /// Takes over every orphaned task (no live lease: its owner died or drained) that needs an
    /// execution, runs it again with the agent's [`Recovery`](super::Recovery) policy, and
    /// fails the ones taken over more than `max_takeovers` times (poison tasks).
    pub(super) async fn take_over_orphans(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(r) = self.replica.clone() else {
            return Ok(());
        };
        if !r.healthy.load(Ordering::Acquire) {
            return Ok(());
        }
        for orphan in self.store.orphaned().await? {
            if self.draining.load(Ordering::Acquire) {
                return Ok(());
            }
            let state = orphan.task.state();
            // A task waiting for input needs no execution: whoever continues it takes it.
            if state.is_terminal()
                || state.is_interrupted()
                || self.live_task(&orphan.task.id).is_some()
            {
                continue;
            }
            let Some((live, lease)) = self.adopt(&orphan.task.id).await? else {
                continue;
            };
            if live.lock().pending.is_interrupted() {
                r.release(&live.id);
                self.drop_live(&live);
                continue;
            }
            let max = r.config.max_takeovers;
            if lease.takeovers > max {
                tracing::error!(
                    task.id = %live.id,
                    takeovers = lease.takeovers,
                    "poison task: failed instead of running it again"
                );
                ::metrics::counter!(
                    metrics::TASKS_POISONED,
                    "agent" => self.config.agent_name.to_string()
                )
                .increment(1);
                let text = format!(
                    "Task failed: poison task: its owner died {} times (max_takeovers = {max}).",
                    lease.takeovers
                );
                let _ = self.runtime_status(&live, TaskState::Failed, Some(&text));
                continue;
            }
            let why = if lease.takeovers == 0 {
                "the replica running it stopped".to_owned()
            } else {
                format!(
                    "the replica running it died (takeover {} of at most {max})",
                    lease.takeovers
                )
            };
            self.restart(&live, &why).await?;
        }
        Ok(())
    }

    /// Takes the lease of `task_id` and the task into the live map, read again from the store
    /// after the lease is ours (the previous owner may have committed until then). `None`
    /// when another replica holds the lease, or the task is gone or terminal.
    async fn adopt(&self, task_id: &str) -> Result<Option<(Arc<LiveTask>, Lease)>, StoreError> {
        let r = self.replica.as_ref().expect("adopt runs on a shared store");
        let Some(lease) = r.acquire(task_id).await? else {
            return Ok(None);
        };
        let stored = match self.store.task(task_id).await {
            Ok(Some(s)) if !s.task.state().is_terminal() => s,
            Ok(_) => {
                r.release(task_id);
                return Ok(None);
            }
            Err(e) => {
                r.release(task_id);
                return Err(e);
            }
        };
        let mut map = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = map.get(task_id)
            && l.lock().owned
        {
            return Ok(Some((l.clone(), lease)));
        }
        let live = live_from(stored, Some(lease.epoch));
        map.insert(task_id.to_owned(), live.clone());
        Ok(Some((live, lease)))
    }

    /// [`adopt`](Self::adopt) for an operation on `stored`: the task owned here now, or
    /// `None` when another replica holds its lease. A task that became terminal meanwhile
    /// comes back as a terminal task outside the live map, which refuses every change.
    pub(super) async fn adopt_if_free(
        &self,
        stored: StoredTask,
    ) -> Result<Option<Arc<LiveTask>>, RpcError> {
        let id = stored.task.id.clone();
        if let Some((live, _)) = self.adopt(&id).await.map_err(store_error)? {
            return Ok(Some(live));
        }
        match self.store.task(&id).await.map_err(store_error)? {
            Some(s) if s.task.state().is_terminal() => Ok(Some(live_from(s, None))),
            Some(_) => Ok(None),
            None => Err(RpcError::task_not_found(&id)),
        }
    }

    /// Takes a task out of the live map (it is no longer owned here).
    fn drop_live(&self, live: &Arc<LiveTask>) {
        live.disown(true);
        let mut map = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&live.id).is_some_and(|l| Arc::ptr_eq(l, live)) {
            map.remove(&live.id);
        }
    }

    /// This replica lost the lease of `task_id`: its execution stops here (another replica
    /// runs it; fencing refuses whatever this one still commits).
    pub(super) fn lose(&self, task_id: &str) {
        if let Some(r) = &self.replica {
            r.forget(task_id);
        }
        if let Some(live) = self.live_task(task_id) {
            tracing::warn!(task.id = %task_id, "lease lost: the task goes on on another replica");
            self.drop_live(&live);
        }
    }

    /// CancelTask for a task this replica does not own. A task nobody runs (its owner died,
    /// or it waits for input) is taken and canceled here; otherwise its owner is asked
    /// ([`StoreNotice::CancelRequested`]) and the call waits, bounded, until CANCELED is
    /// committed.
    pub(super) async fn cancel_remote(&self, stored: StoredTask) -> Result<Task, RpcError> {
        let id = stored.task.id.clone();
        let mut notices = self.store.notices();
        if let Some(live) = self.adopt_if_free(stored).await? {
            self.cancel_live(&live, CancelReason::Requested).await?;
            return Ok(live.snapshot());
        }
        let wait = self.config.cancel_grace + CANCEL_CONFIRM;
        let deadline = Instant::now() + wait;
        loop {
            self.store
                .notify(&StoreNotice::CancelRequested {
                    task_id: id.clone(),
                })
                .await
                .map_err(store_error)?;
            let tick = (Instant::now() + CANCEL_RETRY).min(deadline);
            let committed = async {
                let Some(rx) = notices.as_mut() else {
                    return std::future::pending().await;
                };
                loop {
                    match rx.recv().await {
                        Ok(StoreNotice::Committed { task_id, .. }) if task_id == id => return,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return,
                        Err(RecvError::Closed) => return std::future::pending().await,
                    }
                }
            };
            let _ = tokio::time::timeout_at(tick, committed).await;
            let now = self
                .store
                .task(&id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| RpcError::task_not_found(&id))?;
            match now.task.state() {
                TaskState::Canceled => return Ok(now.task),
                s if s.is_terminal() => return Err(not_cancelable(&now.task)),
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(RpcError::Unavailable(format!(
                    "the replica running task {id} did not confirm its cancellation within \
                     {} s; retry",
                    wait.as_secs()
                )));
            }
            // The owner may have died meanwhile: then cancel it here.
            if let Some(live) = self.adopt_if_free(now).await? {
                let snapshot = live.snapshot();
                if snapshot.state() == TaskState::Canceled {
                    // Canceled at our request between the read above and the adoption.
                    return Ok(snapshot);
                }
                self.cancel_live(&live, CancelReason::Requested).await?;
                return Ok(live.snapshot());
            }
        }
    }

    /// SubscribeToTask for a task this replica does not own: follows the store.
    pub(super) fn subscribe_remote(
        &self,
        stored: StoredTask,
        after: Option<u64>,
    ) -> Result<(Option<(Task, u64)>, Subscription), RpcError> {
        let committed = stored.last_seq;
        let id = &stored.task.id;
        let mut sub = Subscription::from_store(id, self.store.clone(), committed, after);
        sub.until_terminal();
        if let Some(a) = after {
            if a > committed {
                return Err(RpcError::invalid(
                    "last-event-id",
                    format!("task {id} has no event {a}; its last event is {committed}"),
                ));
            }
            sub.finish_if(stored.task.state().is_terminal());
            return Ok((None, sub));
        }
        Ok((Some((stored.task, committed)), sub))
    }
}

/// A live task from its stored snapshot, committing with `epoch`.
fn live_from(stored: StoredTask, epoch: Option<u64>) -> Arc<LiveTask> {
    let state = stored.task.state();
    let live = LiveTask::new(stored.task, stored.last_seq, state);
    live.lock().epoch = epoch;
    live
}
