//! DNS discovery through the gateway: a DNS server in the test (hickory-proto on loopback
//! UDP, records changed by the test) answers `echo.mesh.test` with three loopback addresses,
//! 127.0.0.1–3, where three echo agents run as separate processes on the same port. The
//! gateway's registry has `echo=dns:///echo.mesh.test:<port>`.
//!
//! Load reaches all three; when the record drops one, no request fails and that process gets
//! no more calls; when a process is killed, calls move to the others and none fails. Calls
//! per process are counted by the process itself (ListTasks: every message is one task).

use std::{
    net::{Ipv4Addr, SocketAddr},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt as _;
use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{RData, Record, RecordType, rdata::A},
};
use serde_json::json;
use switchyard::{
    Client, Registry, RegistryConfig,
    pb::a2a::ListTasksRequest,
    registry::{AgentConfig, DiscoveryConfig},
};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    net::UdpSocket,
    process::Child,
};

use crate::gateway::{Gw, PATIENCE, msg};

/// Set in a child process: the address the echo replica listens on.
const REPLICA_ENV: &str = "SWITCHYARD_E2E_ECHO_REPLICA";

/// Set in a child process: the SQLite file of the echo replica's task store (else in memory).
const REPLICA_STORE_ENV: &str = "SWITCHYARD_E2E_ECHO_STORE";

/// The name the DNS server answers.
const NAME: &str = "echo.mesh.test.";

/// Requests per load.
const LOAD: usize = 300;

/// Not a test: the body of an echo replica process (this test binary, started by
/// `replica()` with [`REPLICA_ENV`] set); does nothing otherwise.
#[tokio::test]
#[ignore = "runs only as a child process of the DNS discovery test"]
async fn echo_replica_process() {
    let Ok(listen) = std::env::var(REPLICA_ENV) else {
        return;
    };
    let store = match std::env::var(REPLICA_STORE_ENV) {
        Ok(path) => switchyard::StoreConfig::Sqlite {
            path: path.into(),
            durability: switchyard::store::Durability::Os,
        },
        Err(_) => switchyard::StoreConfig::Memory,
    };
    let config = switchyard::ServeConfig {
        listen: listen.parse().expect("listen address"),
        store,
        ..Default::default()
    };
    let server = switchyard::AgentServer::bind(switchyard_echo::Echo, config)
        .await
        .expect("bind");
    println!("LISTENING {}", server.local_addr());
    server.run().await;
}

/// An echo replica process listening on `listen` (port 0: a free one); returns it and its
/// address. The chaos tests start theirs here too.
pub(crate) async fn replica(listen: SocketAddr) -> (Child, SocketAddr) {
    replica_with_store(listen, None).await
}

/// [`replica`] whose tasks live in the SQLite file `store` (kept across restarts), or in
/// memory.
pub(crate) async fn replica_with_store(
    listen: SocketAddr,
    store: Option<&std::path::Path>,
) -> (Child, SocketAddr) {
    let mut command = tokio::process::Command::new(std::env::current_exe().expect("test binary"));
    if let Some(path) = store {
        command.env(REPLICA_STORE_ENV, path);
    }
    let mut child = command
        .args([
            "--exact",
            "dns::echo_replica_process",
            "--ignored",
            "--nocapture",
        ])
        .env(REPLICA_ENV, listen.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("replica started");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(a) = line.strip_prefix("LISTENING ") {
                return a.parse::<SocketAddr>().expect("address");
            }
        }
        panic!("the replica exited before listening");
    })
    .await
    .expect("listening in time");
    (child, addr)
}

/// A DNS server answering A queries for [`NAME`] with the addresses in `records` (TTL 0);
/// every other query gets NXDOMAIN.
async fn dns_server(records: Arc<Mutex<Vec<Ipv4Addr>>>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new();
            reply
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_authoritative(true)
                .set_recursion_desired(query.recursion_desired());
            for q in query.queries() {
                reply.add_query(q.clone());
                if q.name().to_ascii() != NAME {
                    reply.set_response_code(ResponseCode::NXDomain);
                    continue;
                }
                if q.query_type() == RecordType::A {
                    for ip in records.lock().expect("records").iter() {
                        reply.add_answer(Record::from_rdata(q.name().clone(), 0, RData::A(A(*ip))));
                    }
                }
            }
            let bytes = reply.to_vec().expect("encode");
            let _ = socket.send_to(&bytes, peer).await;
        }
    });
    addr
}

/// Tasks the echo process at `addr` has created: the calls it received.
async fn calls_received(addr: SocketAddr) -> i32 {
    let client = Client::connect(&addr.to_string()).await.expect("connect");
    client
        .list_tasks(ListTasksRequest {
            page_size: Some(1),
            ..Default::default()
        })
        .await
        .expect("ListTasks")
        .total_size
}

/// Sends [`LOAD`] messages through the gateway, ten at a time, each waiting `delay_ms` in
/// the agent; panics on any failure.
async fn load(gw: &Gw, phase: &str, delay_ms: u64) {
    let results: Vec<Result<(), String>> = futures::stream::iter(0..LOAD)
        .map(|i| async move {
            let r = gw
                .rpc(
                    "echo",
                    "SendMessage",
                    json!({"message": msg(&format!("{phase}-{i}"), json!({"delay_ms": delay_ms}))}),
                )
                .await;
            match r["result"]["task"]["status"]["state"].as_str() {
                Some("TASK_STATE_COMPLETED") => Ok(()),
                _ => Err(r.to_string()),
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{phase}: {} of {LOAD} failed, e.g. {}",
        failed.len(),
        failed[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_endpoints_balance_per_request_and_follow_dns_and_dead_replicas() {
    let (mut first, a1) = replica("127.0.0.1:0".parse().expect("addr")).await;
    let port = a1.port();
    let (_second, a2) = replica(SocketAddr::from(([127, 0, 0, 2], port))).await;
    let (mut third, a3) = replica(SocketAddr::from(([127, 0, 0, 3], port))).await;
    let ips = |addrs: &[SocketAddr]| {
        addrs
            .iter()
            .map(|a| match a.ip() {
                std::net::IpAddr::V4(v4) => v4,
                other => panic!("{other} is not IPv4"),
            })
            .collect::<Vec<_>>()
    };
    let records = Arc::new(Mutex::new(ips(&[a1, a2, a3])));
    let nameserver = dns_server(records.clone()).await;

    let registry = Registry::with_discovery(
        &RegistryConfig {
            agents: vec![AgentConfig {
                name: "echo".into(),
                endpoints: vec![format!("dns:///{}:{port}", NAME.trim_end_matches('.'))],
                card_url: None,
                public_grpc: false,
            }],
        },
        DiscoveryConfig {
            nameserver: Some(nameserver),
            refresh_interval: Duration::from_millis(100),
        },
    )
    .expect("registry");
    let registry = Arc::new(registry);
    let echo = registry.agent("echo").expect("echo");
    tokio::time::timeout(PATIENCE, echo.wait_for_endpoints(|e| e.len() == 3))
        .await
        .expect("three addresses resolved");
    let gw = Gw::start_with_registry(registry.clone(), |_| {}).await;

    // 1. Load reaches all three processes.
    let before = [
        calls_received(a1).await,
        calls_received(a2).await,
        calls_received(a3).await,
    ];
    load(&gw, "three", 0).await;
    let after = [
        calls_received(a1).await,
        calls_received(a2).await,
        calls_received(a3).await,
    ];
    let got: Vec<i32> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(got.iter().sum::<i32>(), LOAD as i32, "{got:?}");
    assert!(
        got.iter().all(|n| *n > 0),
        "every replica gets calls: {got:?}"
    );

    // 2. The record drops 127.0.0.2 while load runs (20 ms calls, so some are running there
    //    when it goes): no request fails, and once the registry has seen the change that
    //    process gets no more calls.
    let (_, ()) = tokio::join!(load(&gw, "dropping", 20), async {
        *records.lock().expect("records") = ips(&[a1, a3]);
        tokio::time::timeout(PATIENCE, echo.wait_for_endpoints(|e| e.len() == 2))
            .await
            .expect("the drop seen");
    });
    assert_eq!(echo.endpoints(), [a1.to_string(), a3.to_string()]);
    let dropped = calls_received(a2).await;
    let kept = calls_received(a1).await + calls_received(a3).await;
    load(&gw, "two", 0).await;
    assert_eq!(
        calls_received(a2).await,
        dropped,
        "the dropped replica gets no calls"
    );
    assert_eq!(
        calls_received(a1).await + calls_received(a3).await - kept,
        LOAD as i32
    );

    // 3. 127.0.0.3 is killed (DNS still lists it): calls move to 127.0.0.1, none fails.
    third.kill().await.expect("kill");
    let one = calls_received(a1).await;
    load(&gw, "killed", 0).await;
    assert_eq!(calls_received(a1).await - one, LOAD as i32);
    assert_eq!(
        echo.endpoints().len(),
        2,
        "DNS still lists the killed replica"
    );

    gw.stop().await;
    first.kill().await.expect("kill");
}
