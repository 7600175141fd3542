//! The endpoints of an agent found by DNS: one refresh task per `dns:///` endpoint keeps the
//! set of [`Backend`]s equal to what DNS answers; the agent's router balances over them.
//!
//! A new address gets a backend (a lazily connecting client and a health watch); a removed
//! address's backend leaves the pool at once, while calls already running on it keep their
//! client — and so their connection — until they finish.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, RwLock, Weak},
};

use hickory_resolver::TokioResolver;
use tokio::{sync::Notify, time::Instant};

use super::{
    balance::Backend,
    dns::{self, DiscoveryConfig},
};
use crate::{resilience::ResilienceConfig, telemetry::metrics::REGISTRY_ENDPOINTS};

/// The discovered endpoints of one agent.
#[derive(Debug)]
pub(crate) struct Pool {
    agent: Arc<str>,
    resilience: ResilienceConfig,
    backends: RwLock<super::route::Backends>,
    /// The last answer for each `dns:///` endpoint; `None` before the first.
    answers: Mutex<Vec<Option<Vec<SocketAddr>>>>,
    /// The resolved addresses, once every endpoint has been resolved once.
    resolved: tokio::sync::watch::Sender<Option<Vec<SocketAddr>>>,
    /// Woken when a connection fails: the names are resolved again.
    failed: Arc<Notify>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Pool {
    /// Starts resolving `targets` (`(host, port)` of each `dns:///` endpoint). Needs a Tokio
    /// runtime.
    pub(crate) fn start(
        agent: &str,
        targets: Vec<(String, u16)>,
        config: &DiscoveryConfig,
        resilience: &ResilienceConfig,
        resolver: TokioResolver,
    ) -> Arc<Self> {
        let pool = Arc::new(Self {
            agent: agent.into(),
            resilience: resilience.clone(),
            backends: RwLock::new(Arc::new([])),
            answers: Mutex::new(vec![None; targets.len()]),
            resolved: tokio::sync::watch::Sender::new(None),
            failed: Arc::new(Notify::new()),
            tasks: Mutex::default(),
        });
        let tasks = targets
            .into_iter()
            .enumerate()
            .map(|(i, (host, port))| {
                let task = refresh(
                    Arc::downgrade(&pool),
                    i,
                    host,
                    port,
                    resolver.clone(),
                    config.clone(),
                    pool.failed.clone(),
                );
                tokio::spawn(task).abort_handle()
            })
            .collect();
        *pool.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        pool
    }

    /// The backends in the pool now (empty when DNS has no address for the agent, yet).
    pub(crate) fn backends(&self) -> super::route::Backends {
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The addresses in the pool now.
    pub(crate) fn addresses(&self) -> Vec<SocketAddr> {
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|b| b.addr.parse().ok())
            .collect()
    }

    /// A receiver of the resolved addresses (`None` until every endpoint was resolved once).
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Vec<SocketAddr>>> {
        self.resolved.subscribe()
    }

    /// Records the answer for endpoint `i` and brings the backends in line with all answers.
    fn update(&self, i: usize, addrs: Vec<SocketAddr>) {
        // The answers' lock is held until the backends match them, so two endpoints resolved
        // at once cannot leave the older union in place (lock order: answers, then backends;
        // `pick` takes only the backends).
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers[i] = Some(addrs);
        let complete = answers.iter().all(Option::is_some);
        let mut wanted: Vec<SocketAddr> = answers.iter().flatten().flatten().copied().collect();
        wanted.sort();
        wanted.dedup();
        {
            let mut backends = self.backends.write().unwrap_or_else(|e| e.into_inner());
            let wanted_text: Vec<String> = wanted.iter().map(ToString::to_string).collect();
            let before: Vec<&str> = backends.iter().map(|b| b.addr.as_str()).collect();
            if before != wanted_text {
                let mut next = Vec::with_capacity(wanted.len());
                for addr in &wanted_text {
                    match backends.iter().find(|b| b.addr == *addr) {
                        Some(b) => next.push(b.clone()),
                        None => next.push(Arc::new(
                            Backend::new(addr, &self.agent, self.failed.clone(), &self.resilience)
                                .expect("a socket address is a valid endpoint"),
                        )),
                    }
                }
                tracing::info!(agent = %self.agent, endpoints = ?wanted, "endpoints changed");
                *backends = next.into();
            }
        }
        drop(answers);
        metrics::gauge!(REGISTRY_ENDPOINTS, "agent" => self.agent.to_string())
            .set(wanted.len() as f64);
        if complete {
            self.resolved.send_replace(Some(wanted));
        }
    }

    /// Counts endpoint `i` as resolved (its resolution failed; the pool keeps what it had).
    fn keep(&self, i: usize) {
        let had = self.answers.lock().unwrap_or_else(|e| e.into_inner())[i]
            .clone()
            .unwrap_or_default();
        self.update(i, had);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            task.abort();
        }
    }
}

/// Resolves `host` for endpoint `i` of the pool until the pool is dropped: again when the
/// answer's TTL expires (within the configured bounds) and when a connection fails.
async fn refresh(
    pool: Weak<Pool>,
    i: usize,
    host: String,
    port: u16,
    resolver: TokioResolver,
    config: DiscoveryConfig,
    failed: Arc<Notify>,
) {
    loop {
        let started = Instant::now();
        let result = dns::resolve(&resolver, &host, port).await;
        let Some(p) = pool.upgrade() else { return };
        let wait = match result {
            Ok((addrs, valid_until)) => {
                p.update(i, addrs);
                config.next_refresh(valid_until)
            }
            Err(error) => {
                tracing::warn!(agent = %p.agent, %host, %error, "DNS resolution failed; keeping the last addresses");
                p.keep(i);
                config.min_refresh()
            }
        };
        drop(p);
        let failure = failed.notified();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = failure => tokio::time::sleep_until(started + config.min_refresh()).await,
        }
    }
}
