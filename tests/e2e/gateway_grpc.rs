//! Native gRPC through the gateway's port: both services, all four RPC kinds, with the agent
//! named by the `x-switchyard-agent` header or by the `/agents/<name>` path prefix; deadlines,
//! limits and refusals as gRPC statuses. Clients: the generated tonic clients (HTTP/2 prior
//! knowledge) and Python's grpcio.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures::{StreamExt as _, stream};
use serde_json::json;
use switchyard::pb::{
    a2a::{
        GetTaskRequest, Message, StreamResponse, TaskState, a2a_service_client::A2aServiceClient,
        part, send_message_response, stream_response,
    },
    agent::{
        ConverseRequest, SendMessagePartsRequest, agent_service_client::AgentServiceClient,
        converse_request, converse_response, send_message_parts_request::Frame,
    },
};
use switchyard_e2e::{message, reason, request};
use tonic::{Code, transport::Channel};

use crate::gateway::{Gw, PATIENCE};

/// A channel to the gateway (HTTP/2 with prior knowledge).
pub(crate) async fn channel(gw: &Gw) -> Channel {
    tonic::transport::Endpoint::from_shared(gw.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// A channel whose calls go to `/agents/<agent>/<package.Service>/<Method>` (what gRPC-Web and
/// Connect clients do with a base URL that has a path; tonic drops an endpoint's path).
#[derive(Clone, Debug)]
pub(crate) struct Prefixed {
    channel: Channel,
    prefix: String,
}

impl tower::Service<http::Request<tonic::body::Body>> for Prefixed {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        let path = format!("{}{}", self.prefix, req.uri().path());
        *req.uri_mut() = path.parse().expect("a path");
        self.channel.call(req)
    }
}

/// A gRPC request with `a2a-version: 1.0` (the agent's rule) and, when given, the agent header.
fn grpc<T>(message: T, agent: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("a2a-version", "1.0".parse().expect("ascii"));
    if let Some(a) = agent {
        r.metadata_mut()
            .insert("x-switchyard-agent", a.parse().expect("ascii"));
    }
    r
}

/// The text of the first artifact of a SendMessage reply.
fn reply_text(payload: Option<send_message_response::Payload>) -> (String, String) {
    let Some(send_message_response::Payload::Task(t)) = payload else {
        panic!("a task")
    };
    assert_eq!(t.state(), TaskState::Completed);
    let text = t.artifacts[0].parts[0]
        .as_text()
        .expect("a text part")
        .to_owned();
    (t.id, text)
}

/// Calls every kind of both services on `echo` through `transport`, adding the agent header
/// when `agent` is given.
async fn every_kind<T>(transport: T, agent: Option<&str>)
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<tonic::codegen::StdError> + Send,
    T::Future: Send,
{
    let mut a2a = A2aServiceClient::new(transport.clone());
    let mut svc = AgentServiceClient::new(transport);

    // Unary, both services.
    let r = a2a
        .send_message(grpc(request(Message::user_text("unary a2a")), agent))
        .await
        .expect("A2A SendMessage");
    let (task_id, text) = reply_text(r.into_inner().payload);
    assert_eq!(text, "unary a2a");
    let r = svc
        .send_message(grpc(request(Message::user_text("unary agent")), agent))
        .await
        .expect("AgentService SendMessage");
    assert_eq!(reply_text(r.into_inner().payload).1, "unary agent");
    let task = a2a
        .get_task(grpc(
            GetTaskRequest {
                id: task_id.clone(),
                ..Default::default()
            },
            agent,
        ))
        .await
        .expect("GetTask")
        .into_inner();
    assert_eq!(task.id, task_id);

    // Server streaming, both services: a chunked task to its end.
    let chunked = || request(message("streamed", json!({"chunks": 3})));
    for events in [
        a2a.send_streaming_message(grpc(chunked(), agent))
            .await
            .expect("A2A stream")
            .into_inner()
            .collect::<Vec<_>>()
            .await,
        svc.send_streaming_message(grpc(chunked(), agent))
            .await
            .expect("AgentService stream")
            .into_inner()
            .collect::<Vec<_>>()
            .await,
    ] {
        let events: Vec<StreamResponse> =
            events.into_iter().map(|e| e.expect("an event")).collect();
        let artifacts = events
            .iter()
            .filter(|e| matches!(e.payload, Some(stream_response::Payload::ArtifactUpdate(_))))
            .count();
        assert!(artifacts >= 3, "{events:?}");
        let Some(stream_response::Payload::StatusUpdate(last)) =
            &events.last().expect("events").payload
        else {
            panic!("ends with a status update: {events:?}")
        };
        assert_eq!(
            last.status.as_ref().expect("status").state(),
            TaskState::Completed
        );
    }

    // Client streaming: one message assembled from frames.
    let frames = vec![
        SendMessagePartsRequest {
            frame: Some(Frame::Header(request(Message::user_text("caption")))),
        },
        SendMessagePartsRequest {
            frame: Some(Frame::Part(switchyard::pb::a2a::Part::raw(
                b"abc".to_vec(),
                "application/octet-stream",
            ))),
        },
        SendMessagePartsRequest {
            frame: Some(Frame::RawChunk(b"def".to_vec())),
        },
    ];
    let r = svc
        .send_message_parts(grpc(stream::iter(frames), agent))
        .await
        .expect("SendMessageParts")
        .into_inner();
    let Some(send_message_response::Payload::Task(t)) = r.payload else {
        panic!("a task")
    };
    assert_eq!(
        t.artifacts[0].parts[1].content,
        Some(part::Content::Raw(b"abcdef".to_vec()))
    );

    // Bidirectional: a session with one message, then half-close.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut session = svc
        .converse(grpc(tokio_stream::wrappers::ReceiverStream::new(rx), agent))
        .await
        .expect("Converse")
        .into_inner();
    tx.send(ConverseRequest {
        request: Some(converse_request::Request::Send(request(
            Message::user_text("bidi"),
        ))),
    })
    .await
    .expect("send");
    let mut completed = false;
    while let Some(frame) = tokio::time::timeout(PATIENCE, session.next())
        .await
        .expect("a frame in time")
    {
        let frame = frame.expect("frame");
        if let Some(converse_response::Payload::Event(e)) = &frame.payload
            && let Some(stream_response::Payload::StatusUpdate(u)) = &e.payload
            && u.status
                .as_ref()
                .is_some_and(|s| s.state() == TaskState::Completed)
        {
            completed = true;
            break;
        }
    }
    assert!(completed, "the session's task completed");
    drop(tx);
    let rest = tokio::time::timeout(PATIENCE, session.collect::<Vec<_>>())
        .await
        .expect("the session ends after the half-close");
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
}

#[tokio::test]
async fn both_services_serve_every_kind_by_header_and_by_path() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let ch = channel(&gw).await;
    every_kind(ch.clone(), Some("echo")).await;
    every_kind(
        Prefixed {
            channel: ch,
            prefix: "/agents/echo".into(),
        },
        None,
    )
    .await;
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchyard_http_server_grpc_calls_total")
                && l.contains(r#"method="Converse""#)
                && l.contains(r#"protocol="grpc""#)
                && l.contains(r#"code="OK""#)),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn refusals_are_grpc_statuses() {
    let (echo, _dir) = switchyard_e2e::Served::echo().await;
    let gw = Gw::start(
        vec![
            crate::gateway::agent("echo", echo.addr),
            crate::gateway::agent("down", crate::gateway::dead_addr().await),
        ],
        |c| c.max_body_bytes = 2048,
    )
    .await;
    let ch = channel(&gw).await;
    let mut a2a = A2aServiceClient::new(ch.clone());
    let hello = || request(Message::user_text("hello"));

    let s = a2a
        .send_message(grpc(hello(), None))
        .await
        .expect_err("no agent");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("x-switchyard-agent"), "{s:?}");

    let s = a2a
        .send_message(grpc(hello(), Some("nobody")))
        .await
        .expect_err("unknown agent");
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    assert_eq!(reason(&s).as_deref(), Some("AGENT_NOT_FOUND"));

    let s = A2aServiceClient::new(Prefixed {
        channel: ch.clone(),
        prefix: "/agents/nobody".into(),
    })
    .send_message(grpc(hello(), None))
    .await
    .expect_err("unknown agent in the path");
    assert_eq!(s.code(), Code::NotFound, "{s:?}");

    let s = a2a
        .send_message(grpc(hello(), Some("down")))
        .await
        .expect_err("nothing listens");
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert_eq!(reason(&s).as_deref(), Some("AGENT_UNAVAILABLE"));
    assert!(
        !s.message().contains("127.0.0.1"),
        "no transport internals: {s:?}"
    );

    let big = request(Message::user_text("x".repeat(4096)));
    let s = a2a
        .send_message(grpc(big, Some("echo")))
        .await
        .expect_err("too large");
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains("2048"), "{s:?}");

    let mut fat = grpc(hello(), Some("echo"));
    fat.metadata_mut()
        .insert("x-big", "y".repeat(9000).parse().expect("ascii"));
    let s = a2a.send_message(fat).await.expect_err("metadata too large");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("metadata"), "{s:?}");

    // The agent's own answers pass through untouched: its A2A error and version rule.
    let s = a2a
        .get_task(grpc(
            GetTaskRequest {
                id: "no-such-task".into(),
                ..Default::default()
            },
            Some("echo"),
        ))
        .await
        .expect_err("no task");
    assert_eq!(s.code(), Code::NotFound);
    assert_eq!(reason(&s).as_deref(), Some("TASK_NOT_FOUND"));
    let mut unversioned = tonic::Request::new(hello());
    unversioned
        .metadata_mut()
        .insert("x-switchyard-agent", "echo".parse().expect("ascii"));
    let s = a2a.send_message(unversioned).await.expect_err("no version");
    assert_eq!(reason(&s).as_deref(), Some("VERSION_NOT_SUPPORTED"));

    // The connection still serves after every refusal.
    let ok = a2a.send_message(grpc(hello(), Some("echo"))).await;
    assert!(ok.is_ok(), "{ok:?}");
    gw.stop().await;
}

/// The remaining time the echo agent saw (`report_deadline`), in ms.
async fn remaining_ms(a2a: &mut A2aServiceClient<Channel>, timeout: Option<&str>) -> i64 {
    let mut r = grpc(
        request(message("when", json!({"report_deadline": true}))),
        Some("echo"),
    );
    if let Some(t) = timeout {
        r.metadata_mut()
            .insert("grpc-timeout", t.parse().expect("ascii"));
    }
    let reply = a2a.send_message(r).await.expect("send").into_inner();
    let Some(send_message_response::Payload::Task(t)) = reply.payload else {
        panic!("a task")
    };
    let data = t.artifacts[0]
        .parts
        .iter()
        .find_map(|p| match &p.content {
            Some(part::Content::Data(d)) => Some(serde_json::to_value(d).expect("json")),
            _ => None,
        })
        .expect("a data part");
    data["remaining_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("a deadline: {data}")) as i64
}

#[tokio::test]
async fn deadlines_are_passed_on_capped_and_enforced() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| {
        c.deadline_margin = Duration::from_millis(200);
        c.default_timeout = Duration::from_secs(3);
        c.max_timeout = Duration::from_secs(6);
    })
    .await;
    let mut a2a = A2aServiceClient::new(channel(&gw).await);
    let seen = remaining_ms(&mut a2a, Some("5S")).await;
    assert!(
        (4000..=4800).contains(&seen),
        "5 s minus the margin: {seen}"
    );
    let seen = remaining_ms(&mut a2a, Some("100S")).await;
    assert!((5000..=5800).contains(&seen), "capped at 6 s: {seen}");
    let seen = remaining_ms(&mut a2a, None).await;
    assert!((2000..=2800).contains(&seen), "the unary default: {seen}");

    // A slow task under a short deadline ends with DEADLINE_EXCEEDED, in time.
    let mut r = grpc(
        request(message("slow", json!({"delay_ms": 10_000}))),
        Some("echo"),
    );
    r.set_timeout(Duration::from_millis(600));
    let started = std::time::Instant::now();
    let s = a2a.send_message(r).await.expect_err("too slow");
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    gw.stop().await;
}

#[tokio::test]
async fn grpcio_calls_an_agent_through_the_gateway() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let out = switchyard_e2e::python::run(&["tests/python/grpc_gateway_client.py", &gw.url]).await;
    assert!(out.contains("grpcio through the gateway: ok"), "{out}");
    gw.stop().await;
}

#[tokio::test]
async fn request_id_auth_version_trace_and_deadline_reach_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe =
        switchyard_e2e::Served::start_in(crate::gateway_limits::Probe, dir.path(), |_| {}).await;
    let gw = Gw::start(vec![crate::gateway::agent("probe", probe.addr)], |c| {
        c.deadline_margin = Duration::from_millis(200)
    })
    .await;
    let mut a2a = A2aServiceClient::new(channel(&gw).await);
    let mut r = grpc(request(Message::user_text("hi")), Some("probe"));
    let md = r.metadata_mut();
    md.insert("a2a-version", "1.3".parse().expect("ascii"));
    md.insert("x-request-id", "rid-9".parse().expect("ascii"));
    md.insert("authorization", "Bearer secret".parse().expect("ascii"));
    md.insert("custom-metadata", "passes".parse().expect("ascii"));
    md.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("ascii"),
    );
    r.set_timeout(Duration::from_secs(5));
    let reply = a2a.send_message(r).await.expect("send");
    assert_eq!(
        reply.metadata().get("x-request-id").expect("echoed"),
        "rid-9"
    );
    let Some(send_message_response::Payload::Task(t)) = reply.into_inner().payload else {
        panic!("a task")
    };
    let Some(part::Content::Data(data)) = &t.artifacts[0].parts[0].content else {
        panic!("a data part")
    };
    let seen = serde_json::to_value(data).expect("json");
    assert_eq!(seen["x-request-id"], "rid-9", "{seen}");
    assert_eq!(seen["authorization"], "Bearer secret");
    assert_eq!(seen["a2a-version"], "1.3");
    let got = seen["traceparent"].as_str().expect("traceparent");
    assert!(
        got.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "same trace: {got}"
    );
    let remaining = seen["remaining_ms"].as_f64().expect("a deadline");
    assert!(
        remaining > 0.0 && remaining <= 4800.0,
        "5 s minus the margin: {remaining}"
    );
    gw.stop().await;
    probe.stop().await;
}

#[tokio::test]
async fn health_passes_and_a_drain_ends_open_streams_with_unavailable() {
    let (gw, echo, _dir) = Gw::echo().await;
    let ch = channel(&gw).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(Prefixed {
        channel: ch.clone(),
        prefix: "/agents/echo".into(),
    });
    let s = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        s.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    let mut slow = request(message("slow", json!({"delay_ms": 20_000})));
    slow.configuration = Some(switchyard::pb::a2a::SendMessageConfiguration {
        return_immediately: true,
        ..Default::default()
    });
    let task = echo.client.send_message(slow).await.expect("start");
    let Some(send_message_response::Payload::Task(task)) = task.payload else {
        panic!("a task")
    };
    let mut a2a = A2aServiceClient::new(ch);
    let mut events = a2a
        .subscribe_to_task(grpc(
            switchyard::pb::a2a::SubscribeToTaskRequest {
                id: task.id.clone(),
                ..Default::default()
            },
            Some("echo"),
        ))
        .await
        .expect("subscribe")
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("a snapshot in time");
    assert!(matches!(
        first,
        Some(Ok(StreamResponse {
            payload: Some(stream_response::Payload::Task(_))
        }))
    ));
    let stopping = tokio::spawn(gw.stop());
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.next().await {
                Some(Ok(_)) => continue,
                Some(Err(s)) => return s,
                None => panic!("the stream ended without a status"),
            }
        }
    })
    .await
    .expect("ended in time");
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert_eq!(reason(&end).as_deref(), Some("DRAINING"));
    stopping.await.expect("stopped");
    echo.client.cancel_task(&task.id).await.expect("cancel");
}
