//! Push-notification delivery (A2A v1.0, "Push notifications"): every committed event of a
//! task that has push-notification configs is POSTed to each config's URL.
//!
//! - Request: `POST <url>`, `Content-Type: application/a2a+json`, body = one `StreamResponse`
//!   in protobuf JSON (its metadata carries `switchyard.sequence`), `Authorization: <scheme>
//!   <credentials>` when the config has authentication, `X-A2A-Notification-Token: <token>`
//!   when it has a token.
//! - At-least-once: a 2xx acknowledges; network errors, 408, 429 and 5xx are retried with
//!   exponential backoff ([`RETRIES`] times, from [`FIRST_BACKOFF`]); other 4xx answers give up
//!   on that event for that config. Events go out in sequence order; a receiver deduplicates
//!   by `switchyard.sequence`.
//! - One delivery worker per task, from the moment the first config is created until the task
//!   is terminal; configs are re-read for every event, so later configs get later events.
//! - Each config's delivery cursor (the last sequence number it was delivered, or given up
//!   on) is stored after every delivery ([`TaskStore::set_push_cursor`]): after a restart or a
//!   takeover, delivery goes on after it, with no full replay (at most the event in flight is
//!   sent again).

use std::{collections::HashMap, sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable as _};

use super::{Found, Runtime, live::LiveTask, subscription::Subscription};
use crate::{
    outbound,
    pb::a2a::{StreamResponse, TaskPushNotificationConfig, TaskState},
    store::{StoreError, TaskStore},
    telemetry::metrics,
};

/// Retries after the first attempt of one delivery.
pub(crate) const RETRIES: usize = 5;
/// The first backoff; it doubles up to 10 s.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Header carrying the config's token.
pub(crate) const TOKEN_HEADER: &str = "X-A2A-Notification-Token";
/// Per-request timeout of one delivery attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the delivery worker of `task_id` (events after `after`) unless one runs.
pub(crate) fn watch(rt: &Arc<Runtime>, task_id: &str, after: u64) {
    {
        let mut workers = rt.push_workers.lock().unwrap_or_else(|e| e.into_inner());
        if !workers.insert(task_id.to_owned()) {
            return;
        }
    }
    let rt = rt.clone();
    let task_id = task_id.to_owned();
    tokio::spawn(async move {
        if let Err(e) = run(&rt, &task_id, after).await {
            tracing::warn!(task.id = %task_id, error = %e, "push delivery stopped");
        }
        rt.push_workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&task_id);
    });
}

/// Where delivery of `task_id` resumes: the oldest cursor of its configs.
pub(crate) async fn resume_point(store: &dyn TaskStore, task_id: &str) -> Result<u64, StoreError> {
    let mut oldest: Option<u64> = None;
    for c in store.push_configs(task_id).await? {
        let cursor = store.push_cursor(task_id, &c.id).await?;
        oldest = Some(oldest.map_or(cursor, |o| o.min(cursor)));
    }
    Ok(oldest.unwrap_or(0))
}

async fn run(rt: &Arc<Runtime>, task_id: &str, after: u64) -> Result<(), String> {
    let mut sub = match rt.find(task_id).await.map_err(|e| e.to_string())? {
        Found::Live(l) => Subscription::new(l, rt.store.clone(), Some(after)).0,
        Found::Finished(f) => {
            Subscription::new(
                LiveTask::new(f.task, f.last_seq, TaskState::Completed),
                rt.store.clone(),
                Some(after),
            )
            .0
        }
        Found::Remote(r) => {
            Subscription::from_store(task_id, rt.store.clone(), r.last_seq, Some(after))
        }
    };
    sub.until_terminal();
    // Delivery cursor of each config seen so far.
    let mut cursors: HashMap<String, u64> = HashMap::new();
    loop {
        let next = tokio::select! {
            next = sub.next() => next,
            () = rt.shutdown.cancelled() => return Ok(()),
        };
        let Some(event) = next else { return Ok(()) };
        let event = event.map_err(|e| e.to_string())?;
        let configs = rt
            .store
            .push_configs(task_id)
            .await
            .map_err(|e| e.to_string())?;
        let body: bytes::Bytes = serde_json::to_vec(&event.event)
            .expect("generated messages always serialize")
            .into();
        let mut due = Vec::new();
        for c in &configs {
            let cursor = match cursors.get(&c.id) {
                Some(v) => *v,
                None => {
                    let v = rt
                        .store
                        .push_cursor(task_id, &c.id)
                        .await
                        .map_err(|e| e.to_string())?;
                    cursors.insert(c.id.clone(), v);
                    v
                }
            };
            if cursor < event.seq {
                due.push(c);
            }
        }
        let deliveries = due
            .iter()
            .map(|c| deliver(rt, c, body.clone(), &event.event));
        futures::future::join_all(deliveries).await;
        for c in due {
            // Delivered or given up on: either way this event is done for this config.
            rt.store
                .set_push_cursor(task_id, &c.id, event.seq)
                .await
                .map_err(|e| e.to_string())?;
            cursors.insert(c.id.clone(), event.seq);
        }
    }
}

/// Why one attempt failed, and whether to try again.
#[derive(Debug)]
struct Failed {
    retry: bool,
    /// The policy refused the destination ([`crate::outbound`]).
    refused: bool,
    /// Never the URL's path, query or credentials, nor the token.
    reason: String,
}

/// Delivers one event to one config, checking the destination against the agent's push
/// policy first (scheme and IP literal here, resolved addresses in the client's resolver).
async fn deliver(
    rt: &Runtime,
    config: &TaskPushNotificationConfig,
    body: bytes::Bytes,
    event: &StreamResponse,
) {
    let origin = outbound::origin(&config.url);
    let attempt = || async {
        if let Err(e) = rt.config.push.check_url(&config.url) {
            return Err(Failed {
                retry: false,
                refused: true,
                reason: format!("{origin} refused: {e}"),
            });
        }
        let mut request = rt
            .config
            .push_client
            .post(config.url.trim())
            .header(http::header::CONTENT_TYPE, "application/a2a+json")
            .timeout(ATTEMPT_TIMEOUT)
            .body(body.clone());
        if let Some(auth) = &config.authentication
            && !auth.credentials.is_empty()
        {
            request = request.header(
                http::header::AUTHORIZATION,
                format!("{} {}", auth.scheme, auth.credentials),
            );
        }
        if !config.token.is_empty() {
            request = request.header(TOKEN_HEADER, &config.token);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let s = r.status();
                Err(Failed {
                    retry: s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429,
                    refused: false,
                    reason: format!("{origin} answered {s}"),
                })
            }
            Err(e) => match outbound::refused_by_resolver(&e) {
                Some(r) => Err(Failed {
                    retry: false,
                    refused: true,
                    reason: format!("{origin} refused: {r}"),
                }),
                None => Err(Failed {
                    retry: true,
                    refused: false,
                    reason: format!("{origin}: {}", error_chain(&e.without_url())),
                }),
            },
        }
    };
    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(FIRST_BACKOFF)
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(RETRIES),
        )
        .when(|f: &Failed| f.retry)
        .await;
    let outcome = match &result {
        Ok(()) => "delivered",
        Err(f) => {
            tracing::warn!(
                config.id = %config.id,
                task.id = %config.task_id,
                seq = crate::task::sequence_of(event),
                reason = %f.reason,
                "push notification not delivered"
            );
            if f.refused { "refused" } else { "failed" }
        }
    };
    ::metrics::counter!(
        metrics::PUSH_DELIVERIES,
        "agent" => rt.config.agent_name.to_string(),
        "outcome" => outcome
    )
    .increment(1);
}

/// `e` and its sources, joined by ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
