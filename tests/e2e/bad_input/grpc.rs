//! Raw gRPC cases straight to an agent's port: unknown paths, undecodable payloads, ids
//! and values over the bounds, metadata.

use futures::FutureExt as _;
use prost::Message as _;
use serde_json::{Value, json};
use switchyard::{
    limits::{MAX_ID_BYTES, MAX_JSON_DEPTH},
    pb::a2a::{CancelTaskRequest, GetTaskRequest, SendMessageRequest},
};
use switchyard_e2e::message;

use super::{Check, Corpus, Ctx, METHODS, nested};

/// A length-prefixed gRPC message frame.
fn grpc_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// POSTs `body` to `path` on the agent's gRPC port; expects `grpc-status` `code`.
fn grpc(
    c: &Ctx,
    path: &str,
    metadata: &[(&'static str, &'static str)],
    body: Vec<u8>,
    code: u32,
) -> Check {
    let (h2, url) = (c.h2.clone(), format!("{}{path}", c.agent));
    let metadata = metadata.to_vec();
    async move {
        let mut req = h2
            .post(url)
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        // Every case names the A2A version it speaks unless it is about the version.
        if !metadata.iter().any(|(k, _)| *k == "a2a-version") {
            req = req.header("a2a-version", "1.0");
        }
        for (k, v) in metadata {
            req = req.header(k, v);
        }
        let r = req
            .body(body)
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        if r.status().is_server_error() {
            return Err(format!("HTTP {}", r.status()));
        }
        let status = r
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let message = r
            .headers()
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if status.as_deref() != Some(&code.to_string()) {
            return Err(format!(
                "expected grpc-status {code}, got {status:?} ({message:?})"
            ));
        }
        if message.as_ref().is_some_and(|m| m.len() > 4096) {
            return Err(format!(
                "a grpc-message of {} bytes",
                message.map_or(0, |m| m.len())
            ));
        }
        Ok(())
    }
    .boxed()
}

const A2A: &str = "/lf.a2a.v1.A2AService";

pub(super) fn grpc_cases(c: &Ctx, k: &mut Corpus) {
    let rpcs: Vec<String> = METHODS
        .iter()
        .map(|m| format!("{A2A}/{m}"))
        .chain(
            [
                "SendMessage",
                "SendStreamingMessage",
                "SendMessageParts",
                "Converse",
            ]
            .iter()
            .map(|m| format!("/switchyard.v1.AgentService/{m}")),
        )
        .collect();
    // Unknown services and methods (UNIMPLEMENTED).
    for p in [
        "/junk.Service/Method",
        "/lf.a2a.v1.A2AService/Nope",
        "/switchyard.v1.AgentService/Nope",
        "/x",
        "/lf.a2a.v1.A2AService/",
        "/grpc.health.v1.Health/Nope",
    ] {
        k.add(
            format!("grpc unknown {p}"),
            grpc(c, p, &[], grpc_frame(b""), 12),
        );
    }
    // Payloads that do not decode (INVALID_ARGUMENT, not INTERNAL).
    let undecodable: [&[u8]; 6] = [
        &[0xff, 0xff, 0xff],
        &[0x0a, 0x05, b'a'],
        &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0x07],
        &[
            0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        &[0x0b, 0x0c],
    ];
    for p in &rpcs {
        if p.ends_with("/Converse") || p.ends_with("/SendMessageParts") {
            continue;
        }
        for (i, bytes) in undecodable.iter().enumerate() {
            k.add(
                format!("grpc {p} undecodable #{i}"),
                grpc(c, p, &[], grpc_frame(bytes), 3),
            );
        }
    }
    // Over the bounds.
    let long = "g".repeat(20_000);
    let get = GetTaskRequest {
        id: long.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    k.add(
        "grpc GetTask id of 20,000",
        grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(&get), 3),
    );
    let cancel = CancelTaskRequest {
        id: long.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    k.add(
        "grpc CancelTask id of 20,000",
        grpc(c, &format!("{A2A}/CancelTask"), &[], grpc_frame(&cancel), 3),
    );
    let sub = switchyard::pb::a2a::SubscribeToTaskRequest {
        id: long.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    k.add(
        "grpc SubscribeToTask id of 20,000",
        grpc(
            c,
            &format!("{A2A}/SubscribeToTask"),
            &[],
            grpc_frame(&sub),
            3,
        ),
    );
    for len in [MAX_ID_BYTES + 1, 4_500, 17_000] {
        let mut m = message("hi", Value::Null);
        m.task_id = "t".repeat(len);
        let send = SendMessageRequest {
            message: Some(m),
            ..Default::default()
        }
        .encode_to_vec();
        k.add(
            format!("grpc SendMessage taskId of {len}"),
            grpc(c, &format!("{A2A}/SendMessage"), &[], grpc_frame(&send), 3),
        );
        k.add(
            format!("grpc AgentService SendMessage taskId of {len}"),
            grpc(
                c,
                "/switchyard.v1.AgentService/SendMessage",
                &[],
                grpc_frame(&send),
                3,
            ),
        );
        let t = GetTaskRequest {
            id: "x".into(),
            tenant: "t".repeat(len),
            ..Default::default()
        }
        .encode_to_vec();
        k.add(
            format!("grpc GetTask tenant of {len}"),
            grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(&t), 3),
        );
    }
    for depth in [MAX_JSON_DEPTH + 1, 30, 34, 50, 200] {
        let m = message("hi", json!({"d": nested(depth)}));
        let send = SendMessageRequest {
            message: Some(m),
            ..Default::default()
        }
        .encode_to_vec();
        k.add(
            format!("grpc SendMessage metadata {depth} deep"),
            grpc(c, &format!("{A2A}/SendMessage"), &[], grpc_frame(&send), 3),
        );
        k.add(
            format!("grpc SendStreamingMessage metadata {depth} deep"),
            grpc(
                c,
                &format!("{A2A}/SendStreamingMessage"),
                &[],
                grpc_frame(&send),
                3,
            ),
        );
    }
    // Metadata.
    let get = GetTaskRequest {
        id: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    for v in ["", "2.0", "0.3", "1.x", "v1"] {
        k.add(
            format!("grpc a2a-version {v}"),
            grpc(
                c,
                &format!("{A2A}/GetTask"),
                &[("a2a-version", v)],
                grpc_frame(&get),
                9,
            ),
        );
    }
    let sub = switchyard::pb::a2a::SubscribeToTaskRequest {
        id: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    for v in ["+5", "-1", "abc", "1.5", "99999999999999999999999"] {
        k.add(
            format!("grpc last-event-id {v}"),
            grpc(
                c,
                &format!("{A2A}/SubscribeToTask"),
                &[("last-event-id", v)],
                grpc_frame(&sub),
                3,
            ),
        );
    }
    k.add(
        "grpc GetTask unknown id",
        grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(&get), 5),
    );
    k.add(
        "grpc GetTask empty id",
        grpc(c, &format!("{A2A}/GetTask"), &[], grpc_frame(b""), 3),
    );
    k.add(
        "grpc ListTasks page size 0",
        grpc(
            c,
            &format!("{A2A}/ListTasks"),
            &[],
            grpc_frame(
                &switchyard::pb::a2a::ListTasksRequest {
                    page_size: Some(0),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            3,
        ),
    );
    k.add(
        "grpc SendMessage over the size limit",
        grpc(
            c,
            &format!("{A2A}/SendMessage"),
            &[],
            grpc_frame(&vec![0x0a; 5 * 1024 * 1024]),
            8,
        ),
    );
    // Framing: a message cut short, a compressed flag without an encoding, an unknown
    // encoding, a flag that is neither 0 nor 1 (all INVALID_ARGUMENT), and two messages to a
    // unary method (tonic reads the first: NOT_FOUND for its unknown task).
    let get = GetTaskRequest {
        id: "x".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut cut = grpc_frame(&get);
    cut.truncate(cut.len() - 1);
    let mut compressed = grpc_frame(&get);
    compressed[0] = 1;
    let mut flag = grpc_frame(&get);
    flag[0] = 7;
    for (name, body, md, code) in [
        ("a message cut short", cut, &[][..], 3),
        ("a prefix without a message", vec![0u8, 0, 0], &[], 3),
        (
            "a compressed flag without an encoding",
            compressed.clone(),
            &[],
            3,
        ),
        (
            "an unknown encoding",
            compressed,
            &[("grpc-encoding", "br")],
            12,
        ),
        ("a flag of 7", flag, &[], 3),
        (
            "two messages to a unary method",
            [grpc_frame(&get), grpc_frame(&get)].concat(),
            &[],
            5,
        ),
    ] {
        k.add(
            format!("grpc framing: {name}"),
            grpc(c, &format!("{A2A}/GetTask"), md, body, code),
        );
    }
}
