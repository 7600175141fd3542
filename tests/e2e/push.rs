//! Push notifications: config CRUD behind the capability, and real delivery to an HTTP
//! receiver — every event, in order, with the configured credentials, retried on failure;
//! outbound safety: internal destinations refused by default, at creation when the host is
//! an IP literal and at delivery (after DNS resolution) when it is a name.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, http::HeaderMap, routing::post};
use serde_json::json;
use switchyard::{
    pb::a2a::{
        AuthenticationInfo, DeleteTaskPushNotificationConfigRequest,
        GetTaskPushNotificationConfigRequest, ListTaskPushNotificationConfigsRequest, Message,
        SendMessageConfiguration, SendMessageRequest, StreamResponse, Task,
        TaskPushNotificationConfig,
    },
    task::sequence_of,
};
use switchyard_e2e::{
    Served, assert_utc_timestamps, bad_fields, describe, message, reason, request,
};
use tokio::sync::mpsc;

/// What the receiver got: headers, the decoded event and the body as JSON.
type Received = (HeaderMap, StreamResponse, serde_json::Value);

#[derive(Clone)]
struct Receiver {
    tx: mpsc::UnboundedSender<Received>,
    attempts: Arc<AtomicUsize>,
}

/// An HTTP receiver on port 0; its first request fails with 503.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        tx,
        attempts: Arc::new(AtomicUsize::new(0)),
    };
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(s): State<Receiver>, headers: HeaderMap, body: String| async move {
                    if s.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                        return http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let event: StreamResponse = serde_json::from_str(&body).expect("protobuf JSON");
                    let raw = serde_json::from_str(&body).expect("JSON");
                    let _ = s.tx.send((headers, event, raw));
                    http::StatusCode::OK
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn config(url: &str) -> TaskPushNotificationConfig {
    TaskPushNotificationConfig {
        url: url.into(),
        token: "tok-123".into(),
        authentication: Some(AuthenticationInfo {
            scheme: "Bearer".into(),
            credentials: "secret".into(),
        }),
        ..Default::default()
    }
}

async fn take(rx: &mut mpsc::UnboundedReceiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    while got.len() < n {
        let item = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
            .await
            .expect("delivered in time")
            .expect("receiver alive");
        got.push(item);
    }
    got
}

/// An echo agent that delivers push notifications locally, and a task of it waiting for
/// input (INPUT_REQUIRED after its events 1–3).
async fn waiting_task() -> (Served, Arc<tempfile::TempDir>, Task) {
    let (echo, dir) = Served::echo_with(switchyard_e2e::local_push).await;
    let task = echo
        .client
        .send(message("wait", json!({"ask": "more?"})))
        .await
        .expect("send");
    (echo, dir, task)
}

/// A SendMessage of `message` with a push config to `url` in its configuration.
fn with_push(message: Message, url: &str) -> SendMessageRequest {
    let mut req = request(message);
    req.configuration = Some(SendMessageConfiguration {
        task_push_notification_config: Some(config(url)),
        ..Default::default()
    });
    req
}

/// The sequence numbers of delivered `events`.
fn seqs_of(events: &[StreamResponse]) -> Vec<u64> {
    events
        .iter()
        .map(|e| sequence_of(e).expect("seq"))
        .collect()
}

#[tokio::test]
async fn every_event_is_pushed_in_order_with_credentials_after_a_retry() {
    let (echo, _dir) = Served::echo_with(switchyard_e2e::local_push).await;
    let card = echo.client.agent_card().await.expect("card");
    assert_eq!(
        card.capabilities.and_then(|c| c.push_notifications),
        Some(true)
    );
    let (url, mut rx) = receiver().await;
    let req = with_push(message("pushed", json!({"chunks": 2})), &url);
    echo.client.send_message(req).await.expect("send");
    let got = take(&mut rx, 8).await;
    let events: Vec<StreamResponse> = got.iter().map(|(_, e, _)| e.clone()).collect();
    let seqs = seqs_of(&events);
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<_>>(),
        "every event once, in order: {:?}",
        describe(&events)
    );
    assert!(describe(&events)[7].starts_with("status:COMPLETED"));
    let stamps: usize = got
        .iter()
        .map(|(_, _, raw)| assert_utc_timestamps(raw))
        .sum();
    assert!(
        stamps >= 2,
        "the bodies carry status timestamps, in UTC with Z"
    );
    let (headers, _, _) = &got[0];
    assert_eq!(headers["content-type"], "application/a2a+json");
    assert_eq!(headers["authorization"], "Bearer secret");
    assert_eq!(headers["x-a2a-notification-token"], "tok-123");
}

#[tokio::test]
async fn config_crud_and_delivery_of_a_continued_task() {
    let (echo, _dir, task) = waiting_task().await;
    let mut a2a = echo.client.a2a();
    let (url, mut rx) = receiver().await;
    let mut c = config(&url);
    c.task_id.clone_from(&task.id);
    let created = a2a
        .create_task_push_notification_config(c)
        .await
        .expect("create")
        .into_inner();
    assert!(!created.id.is_empty(), "the server made an id");
    let got = a2a
        .get_task_push_notification_config(GetTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, created);
    let listed = a2a
        .list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.configs, std::slice::from_ref(&created));

    // Events after the config was created are delivered: the continuation's.
    let mut more = Message::user_text("yes");
    more.task_id.clone_from(&task.id);
    echo.client.send(more).await.expect("continue");
    let delivered = take(&mut rx, 3).await;
    let seqs: Vec<u64> = delivered
        .iter()
        .map(|(_, e, _)| sequence_of(e).expect("seq"))
        .collect();
    assert_eq!(seqs, [4, 5, 6]);

    a2a.delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest {
        task_id: task.id.clone(),
        id: created.id.clone(),
        ..Default::default()
    })
    .await
    .expect("delete");
    let gone = a2a
        .get_task_push_notification_config(GetTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: created.id,
            ..Default::default()
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), tonic::Code::NotFound);
}

/// A config sent inline with a continuation covers what the message brings, from the
/// WORKING it puts the task in: the same events as a config created just before it.
#[tokio::test]
async fn a_config_sent_with_a_continuation_gets_every_event_of_the_message() {
    let (echo, _dir, task) = waiting_task().await;
    let (url, mut rx) = receiver().await;
    let mut more = Message::user_text("yes");
    more.task_id.clone_from(&task.id);
    echo.client
        .send_message(with_push(more, &url))
        .await
        .expect("continue");
    let events: Vec<StreamResponse> = take(&mut rx, 3)
        .await
        .into_iter()
        .map(|(_, e, _)| e)
        .collect();
    assert_eq!(seqs_of(&events), [4, 5, 6], "{:?}", describe(&events));
    assert!(describe(&events)[0].starts_with("status:WORKING"));
}

#[tokio::test]
async fn without_the_capability_every_config_call_is_refused() {
    let (echo, _dir) = Served::echo().await;
    let task = echo.client.send_text("x").await.expect("send");
    let mut a2a = echo.client.a2a();
    let mut c = config("http://127.0.0.1:9/hook");
    c.task_id.clone_from(&task.id);
    let errors = [
        a2a.create_task_push_notification_config(c.clone())
            .await
            .expect_err("create"),
        a2a.get_task_push_notification_config(GetTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("get"),
        a2a.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("list"),
        a2a.delete_task_push_notification_config(DeleteTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("delete"),
    ];
    for e in errors {
        assert_eq!(
            reason(&e).as_deref(),
            Some("PUSH_NOTIFICATION_NOT_SUPPORTED"),
            "{e:?}"
        );
    }
    let mut req = request(Message::user_text("inline"));
    req.configuration = Some(SendMessageConfiguration {
        task_push_notification_config: Some(c),
        ..Default::default()
    });
    let e = echo
        .client
        .send_message(req)
        .await
        .expect_err("inline config refused");
    assert_eq!(
        e.a2a_kind(),
        Some(switchyard::error::A2aErrorKind::PushNotificationNotSupported)
    );
}

/// The total of `switchyard_push_deliveries_total` with `outcome`.
fn push_outcomes(outcome: &str) -> f64 {
    let text = switchyard::telemetry::metrics::render().expect("the recorder is installed");
    text.lines()
        .filter(|l| l.starts_with("switchyard_push_deliveries_total{"))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn internal_and_plain_http_literal_urls_are_refused_at_creation_by_default() {
    let (echo, _dir) = Served::echo_with(|c| c.push_notifications = true).await;
    let task = echo.client.send_text("x").await.expect("send");
    let mut a2a = echo.client.a2a();
    for url in [
        "https://127.0.0.1/hook",
        "https://127.1.2.3:8443/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://192.168.1.1/",
        "https://172.16.0.1/",
        "https://0.0.0.0/",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/",
        "https://[fe80::1]/",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:a9fe:a9fe]/",
        "http://example.com/hook",
    ] {
        let mut c = config(url);
        c.task_id.clone_from(&task.id);
        let e = a2a
            .create_task_push_notification_config(c)
            .await
            .expect_err(url);
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{url}: {e:?}");
        assert_eq!(bad_fields(&e), ["url"], "{url}: {e:?}");
        assert!(
            !e.message().contains("tok-123") && !e.message().contains("secret"),
            "no secret in the error: {e:?}"
        );
    }
    // Inline in SendMessage: refused before a task is created.
    let mut req = request(Message::user_text("inline"));
    req.configuration = Some(SendMessageConfiguration {
        task_push_notification_config: Some(config("https://10.0.0.1/hook")),
        ..Default::default()
    });
    let e = switchyard_e2e::status_of(echo.client.send_message(req).await);
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert_eq!(
        bad_fields(&e),
        ["configuration.task_push_notification_config.url"]
    );
    // A public https URL is accepted (delivery is not attempted here: the task is done).
    let mut c = config("https://hooks.example.com/a2a");
    c.task_id.clone_from(&task.id);
    a2a.create_task_push_notification_config(c)
        .await
        .expect("a public https URL is accepted");
}

/// A receiver on `ip:0` counting every request it gets; its URL path is `/hook`.
async fn counting_receiver(ip: &str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_every_delivery() {
    switchyard::telemetry::metrics::install();
    // http allowed, and of the loopback network only 127.0.0.2: the control receiver's.
    let (echo, _dir) = Served::echo_with(|c| {
        c.push_notifications = true;
        c.push_policy = switchyard::outbound::PushPolicy {
            allow_http: true,
            allow: vec!["127.0.0.2/32".parse().expect("net")],
        };
    })
    .await;
    let (target, target_hits) = counting_receiver("127.0.0.1").await;
    let (control, control_hits) = counting_receiver("127.0.0.2").await;
    // A name (accepted at creation) that resolves to 127.0.0.1 / ::1, and in another task
    // the allowed control receiver.
    for url in [
        format!("http://localhost:{}/hook", target.port()),
        format!("http://{control}/hook"),
    ] {
        let mut req = request(message("pushed", json!({"chunks": 2})));
        req.configuration = Some(SendMessageConfiguration {
            task_push_notification_config: Some(config(&url)),
            ..Default::default()
        });
        echo.client.send_message(req).await.expect("send");
    }
    // Each task has 8 events: all refused for the name (none retried), all delivered to
    // the control receiver.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while push_outcomes("refused") < 8.0 || control_hits.load(Ordering::SeqCst) < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "8 refused and 8 delivered, got {} refused, {} delivered",
            push_outcomes("refused"),
            control_hits.load(Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "nothing reached the loopback receiver through the name"
    );
    assert_eq!(
        push_outcomes("refused"),
        8.0,
        "each event refused once, never retried"
    );
}
