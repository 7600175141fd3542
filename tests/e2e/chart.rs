//! The Helm chart (`helm/switchyard`): rendered by the real Helm v4 engine (PyPI
//! `helm-python-sdk`), validated by `kubernetes-validate --strict`, linted, checked for structure
//! and bad values (tests/python/chart_test.py), and run: the rendered containers' own commands,
//! args and environment start as local processes and serve a research request through the
//! gateway.

use std::{collections::BTreeMap, path::PathBuf};

use serde_json::{Value, json};
use switchyard_e2e::{
    pods::{self, Container, Process},
    python,
};

const NAMESPACE: &str = "mesh";
/// Where rendered listeners bind instead of `0.0.0.0:<port>`: a loopback address that is no
/// binary's default (`127.0.0.1`), so a process that ignores the chart's listen setting shows.
const LISTEN_HOST: &str = "127.0.0.2";

#[tokio::test]
async fn chart_value_sets_are_valid_kubernetes_lint_clean_and_wired_as_configured() {
    let out = python::run(&["tests/python/chart_test.py", "sets"]).await;
    assert!(out.contains("chart value sets: 15 passed"), "{out}");
}

#[tokio::test]
async fn chart_rejects_invalid_values_with_the_message_a_user_needs() {
    let out = python::run(&["tests/python/chart_test.py", "invalid"]).await;
    assert!(out.contains("chart invalid values: 14 passed"), "{out}");
}

/// The directory of the workspace binaries: the test binary is `<target>/<profile>/deps/e2e-…`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("<target>/<profile>/deps")
        .to_path_buf()
}

/// `(headless DNS name, container port)` → the workload whose pods that headless Service
/// selects: what `dns:///<name>:<port>` reaches in a cluster (a headless name resolves to pod
/// IPs, so the port must be the pod's own).
fn headless_targets(docs: &[Value], containers: &[Container]) -> BTreeMap<(String, u16), String> {
    let mut out = BTreeMap::new();
    for svc in pods::of_kind(docs, "Service").filter(|s| s["spec"]["clusterIP"] == "None") {
        let host = format!(
            "{}.{NAMESPACE}.svc.cluster.local",
            svc["metadata"]["name"].as_str().expect("name")
        );
        let selector = svc["spec"]["selector"].as_object().expect("selector");
        let c = containers
            .iter()
            .find(|c| {
                selector
                    .iter()
                    .all(|(k, v)| c.labels.get(k).map(String::as_str) == v.as_str())
            })
            .unwrap_or_else(|| panic!("headless Service {host} selects no pod"));
        for p in svc["spec"]["ports"].as_array().expect("ports") {
            let target = p["targetPort"].as_str().expect("named targetPort");
            out.insert((host.clone(), c.ports[target]), c.workload.clone());
        }
    }
    out
}

/// The loopback stand-ins for cluster-only values: a listen address on a container port becomes
/// [`LISTEN_HOST`] with port 0 (a free port); `dns:///<headless name>:<port>` becomes the started workload's loopback
/// address; a path under a volume mount moves under the test's directory for that volume.
fn rewrite(
    c: &Container,
    value: &str,
    headless: &BTreeMap<(String, u16), String>,
    started: &BTreeMap<String, String>,
    data: &std::path::Path,
) -> Option<String> {
    let mut out = Vec::new();
    for item in value.split(';') {
        let Some((name, endpoint)) = item.split_once("=dns:///") else {
            out.push(item.to_owned());
            continue;
        };
        let (host, port) = endpoint.rsplit_once(':').expect("dns:///host:port");
        let key = (host.to_owned(), port.parse().expect("port"));
        let workload = headless
            .get(&key)
            .unwrap_or_else(|| panic!("{}: {key:?} is no headless Service's pod port", c.workload));
        out.push(format!("{name}={}", started.get(workload)?));
    }
    let mut value = out.join(";");
    if c.ports.values().any(|p| value == format!("0.0.0.0:{p}")) {
        value = format!("{LISTEN_HOST}:0");
    }
    for (path, volume) in &c.mounts {
        if let Some(rest) = value.strip_prefix(path.as_str()) {
            let dir = data.join(&c.workload).join(volume);
            std::fs::create_dir_all(&dir).expect("volume dir");
            value = format!("{}{rest}", dir.display());
        }
    }
    Some(value)
}

#[tokio::test]
async fn chart_commands_run_the_mesh_and_answer_a_research_request_through_the_gateway() {
    let out = python::run(&["tests/python/chart_test.py", "render"]).await;
    let line = out
        .lines()
        .find(|l| l.starts_with('['))
        .expect("render JSON");
    let docs: Vec<Value> = serde_json::from_str(line).expect("render JSON");
    let containers = pods::containers(&docs);
    let headless = headless_targets(&docs, &containers);
    let dir = tempfile::tempdir().expect("tempdir");

    // Start every container once every workload it names by DNS is up (agents, research, gateway).
    let mut started: BTreeMap<String, String> = BTreeMap::new();
    let mut running: Vec<Process> = Vec::new();
    let mut pending = containers.clone();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for c in pending {
            let env: Option<Vec<_>> = c
                .env
                .iter()
                .map(|(k, v)| Some((k.clone(), rewrite(&c, v, &headless, &started, dir.path())?)))
                .collect();
            let Some(env) = env else {
                waiting.push(c);
                continue;
            };
            let p = pods::start(&bin_dir(), &c.argv, &env, dir.path()).await;
            let addr = p
                .listening
                .trim_start_matches("http://")
                .trim_end_matches('/');
            assert!(
                addr.starts_with(&format!("{LISTEN_HOST}:")),
                "{} listens on {addr}, not where the chart says",
                c.workload
            );
            started.insert(c.workload.clone(), addr.to_owned());
            running.push(p);
        }
        assert!(
            waiting.len() < before,
            "unresolvable DNS names in {waiting:?}"
        );
        pending = waiting;
    }
    assert_eq!(running.len(), 6, "the gateway and five agents: {started:?}");

    let gateway = format!("http://{}", started["switchyard-gateway"]);
    switchyard::install_crypto_provider();
    let http = reqwest::Client::new();
    let directory: Value = serde_json::from_slice(
        &http
            .get(format!("{gateway}/agents"))
            .send()
            .await
            .expect("GET /agents")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("directory JSON");
    let mut names: Vec<&str> = directory["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("directory: {directory}"))
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["echo", "keywords", "research", "summarize", "textstats"]
    );
    // Cards point at the gateway's in-cluster Service (the chart's SWITCHYARD_PUBLIC_URL).
    let url = directory["agents"][0]["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("http://switchyard-gateway.mesh.svc.cluster.local:80/agents/"),
        "{directory}"
    );
    assert!(
        directory["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .all(|a| a["available"] == true),
        "{directory}"
    );

    let document = "Switchyard routes messages between agents. Every agent is a gRPC service. \
        The gateway translates HTTP into gRPC calls.\n\nTasks are durable. A subscriber resumes \
        after any event without losing one.";
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
        "messageId": "chart-1", "role": "ROLE_USER", "parts": [{"text": document}]}}});
    let response = http
        .post(format!("{gateway}/agents/research"))
        .header("A2A-Version", "1.0")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /agents/research");
    let v: Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON-RPC");
    let task = &v["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{v}");
    let report = task["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "report"))
        .unwrap_or_else(|| panic!("no report artifact: {v}"));
    let md = report["parts"][0]["text"].as_str().expect("Markdown part");
    let data = &report["parts"][1]["data"];
    assert_eq!(data["complete"].as_f64(), Some(3.0), "{data}");
    assert_eq!(data["missing"], json!([]), "{data}");
    for agent in ["textstats", "summarize", "keywords"] {
        assert!(md.contains(&format!("## {agent}")), "{md}");
        assert_eq!(data["parts"][agent]["status"], "ok", "{data}");
    }
    assert_eq!(
        data["parts"]["textstats"]["data"]["sentences"].as_f64(),
        Some(5.0),
        "{data}"
    );
    // Every agent keeps its tasks where the chart mounts its data volume.
    for agent in ["echo", "keywords", "research", "summarize", "textstats"] {
        let db = dir
            .path()
            .join(format!("switchyard-{agent}/data/{agent}.db"));
        assert!(db.is_file(), "no task store at {}", db.display());
    }
}
