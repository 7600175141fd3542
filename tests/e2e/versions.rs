//! The A2A protocol version (A2A v1.0.1 §3.6) on every binding: the agent's gRPC port
//! (`A2AService`, `AgentService`) and the gateway's JSON-RPC, REST, SSE and WebSocket fronts
//! apply one rule — 1.x is served, a missing or empty version means 0.3 and is refused like
//! any other version with VersionNotSupported — and every answer names the version it was
//! served with (`a2a-version: 1.0`).

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use switchyard::pb::{
    a2a::{GetTaskRequest, a2a_service_client::A2aServiceClient},
    agent::agent_service_client::AgentServiceClient,
};
use switchyard_e2e::{Served, message, reason, request};
use tokio_tungstenite::{connect_async, tungstenite};

use crate::gateway::{Gw, json_of, msg};

/// `None` = no version at all; whether each is served.
const CASES: [(Option<&str>, bool); 7] = [
    (None, false),
    (Some(""), false),
    (Some("1.0"), true),
    (Some("1.5"), true),
    (Some("0.3"), false),
    (Some("2.0"), false),
    (Some("garbage"), false),
];

/// A gRPC request naming `version` (or none).
fn grpc_request<T>(message: T, version: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(v) = version {
        r.metadata_mut()
            .insert("a2a-version", v.parse().expect("ascii"));
    }
    r
}

/// Asserts a refused gRPC call: FAILED_PRECONDITION with the `VERSION_NOT_SUPPORTED` reason.
fn assert_refused(s: &tonic::Status, version: Option<&str>) {
    assert_eq!(
        s.code(),
        tonic::Code::FailedPrecondition,
        "{version:?}: {s:?}"
    );
    assert_eq!(
        reason(s).as_deref(),
        Some("VERSION_NOT_SUPPORTED"),
        "{version:?}"
    );
}

#[tokio::test]
async fn the_grpc_services_serve_1x_and_refuse_a_missing_version() {
    let (echo, _dir) = Served::echo().await;
    let task = echo.client.send_text("v").await.expect("send");
    // The generated clients, without Client's version interceptor.
    let channel = tonic::transport::Endpoint::from_shared(echo.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut a2a = A2aServiceClient::new(channel.clone());
    let mut agent = AgentServiceClient::new(channel);
    for (version, served) in CASES {
        let get = GetTaskRequest {
            id: task.id.clone(),
            ..Default::default()
        };
        let unary = a2a.get_task(grpc_request(get, version)).await;
        let streaming = a2a
            .send_streaming_message(grpc_request(request(message("s", Value::Null)), version))
            .await;
        let mesh = agent
            .send_message(grpc_request(request(message("m", Value::Null)), version))
            .await;
        if served {
            let md = [
                unary.expect("served").metadata().clone(),
                streaming.expect("served").metadata().clone(),
                mesh.expect("served").metadata().clone(),
            ];
            for m in md {
                assert_eq!(m.get("a2a-version").expect("served with"), "1.0");
            }
        } else {
            for s in [
                unary.expect_err("refused"),
                streaming.expect_err("refused"),
                mesh.expect_err("refused"),
            ] {
                assert_refused(&s, version);
            }
        }
    }
}

/// A request to `path` naming `version` in the `A2A-Version` header (or none).
fn http(
    gw: &Gw,
    method: reqwest::Method,
    path: &str,
    version: Option<&str>,
) -> reqwest::RequestBuilder {
    let r = gw.http.request(method, format!("{}{path}", gw.url));
    match version {
        Some(v) => r.header("A2A-Version", v),
        None => r,
    }
}

#[tokio::test]
async fn the_gateway_fronts_apply_the_same_rule() {
    let (gw, _echo, _dir) = Gw::echo().await;
    let rpc = |v: Option<&str>| {
        http(&gw, reqwest::Method::POST, "/agents/echo", v)
            .header(header::CONTENT_TYPE, "application/json")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                       "params": {"message": msg("v", Value::Null)}})
                .to_string(),
            )
    };
    let rest = |path: &str, v: Option<&str>| {
        http(
            &gw,
            reqwest::Method::POST,
            &format!("/agents/echo{path}"),
            v,
        )
        .header(header::CONTENT_TYPE, "application/a2a+json")
        .body(json!({"message": msg("v", Value::Null)}).to_string())
    };
    for (version, served) in CASES {
        // JSON-RPC: HTTP 200 either way, -32009 when refused.
        let r = rpc(version).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["a2a-version"], "1.0", "{version:?}");
        let v = json_of(r).await;
        if served {
            assert_eq!(
                v["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
                "{v}"
            );
        } else {
            assert_eq!(v["error"]["code"], -32009, "{version:?}: {v}");
        }
        // REST and SSE: 400 with the REST envelope when refused.
        for path in ["/message:send", "/message:stream"] {
            let r = rest(path, version).send().await.expect("send");
            assert_eq!(r.headers()["a2a-version"], "1.0", "{path} {version:?}");
            if served {
                assert_eq!(r.status(), StatusCode::OK, "{path} {version:?}");
                let _ = r.bytes().await.expect("body");
            } else {
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path} {version:?}");
                let v = json_of(r).await;
                assert_eq!(
                    v["error"]["details"][0]["reason"], "VERSION_NOT_SUPPORTED",
                    "{v}"
                );
            }
        }
        // WebSocket: refused before the upgrade; the version may come as a query parameter.
        let query = version.map_or(String::new(), |v| format!("?A2A-Version={v}"));
        let url = format!("{}/agents/echo/ws{query}", gw.url.replacen("http", "ws", 1));
        match (served, connect_async(url).await) {
            (true, Ok((_, r))) => assert_eq!(r.headers()["a2a-version"], "1.0"),
            (false, Err(tungstenite::Error::Http(r))) => {
                assert_eq!(r.status().as_u16(), 400, "{version:?}");
            }
            (served, other) => panic!("ws {version:?}: served={served}, got {other:?}"),
        }
    }
    // The header wins over the query parameter; the query serves clients that cannot set one.
    let r = rest("/message:send?A2A-Version=1.0", None)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = rest("/message:send?A2A-Version=1.0", Some("2.0"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    gw.stop().await;
}
