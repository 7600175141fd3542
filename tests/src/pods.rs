//! Runs the containers of rendered Kubernetes workloads (Deployments, StatefulSets) as local
//! processes: the container's exact `command`, `args` and environment, resolved as the kubelet
//! does (`envFrom` ConfigMaps, then `env` in order, `$(VAR)` references, the downward API for
//! the pod name and namespace). A test rewrites values that only make sense in a cluster
//! (listen addresses, DNS names, volume paths) with its own function; nothing else changes.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// One container of a rendered workload, environment resolved.
#[derive(Debug, Clone)]
pub struct Container {
    /// The workload's name (`metadata.name`).
    pub workload: String,
    /// `command` then `args`, `$(VAR)` expanded.
    pub argv: Vec<String>,
    /// The environment, in the order the kubelet builds it (later entries win).
    pub env: Vec<(String, String)>,
    /// Container ports by name.
    pub ports: BTreeMap<String, u16>,
    /// Volume mounts: (mount path, volume name).
    pub mounts: Vec<(String, String)>,
    /// The pod template's labels.
    pub labels: BTreeMap<String, String>,
}

/// The objects of a render of the given `kind`.
pub fn of_kind<'a>(docs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    docs.iter().filter(move |d| d["kind"] == kind)
}

/// Every container of every Deployment and StatefulSet in `docs`.
pub fn containers(docs: &[Value]) -> Vec<Container> {
    let mut out = Vec::new();
    for w in docs
        .iter()
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
    {
        let workload = str_of(&w["metadata"]["name"]);
        let namespace = str_of(&w["metadata"]["namespace"]);
        let template = &w["spec"]["template"];
        let labels: BTreeMap<String, String> = template["metadata"]["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), str_of(v))).collect())
            .unwrap_or_default();
        for c in template["spec"]["containers"]
            .as_array()
            .expect("containers")
        {
            let mut env: Vec<(String, String)> = Vec::new();
            for from in c["envFrom"].as_array().into_iter().flatten() {
                let name = str_of(&from["configMapRef"]["name"]);
                let cm = of_kind(docs, "ConfigMap")
                    .find(|m| m["metadata"]["name"] == name.as_str())
                    .unwrap_or_else(|| {
                        panic!("{workload}: envFrom names missing ConfigMap {name}")
                    });
                for (k, v) in cm["data"].as_object().into_iter().flatten() {
                    set(&mut env, k, str_of(v));
                }
            }
            for e in c["env"].as_array().into_iter().flatten() {
                let value = if let Some(v) = e.get("value") {
                    expand(&str_of(v), &env)
                } else {
                    match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                        Some("metadata.name") => format!("{workload}-0"),
                        Some("metadata.namespace") => namespace.clone(),
                        other => panic!("{workload}: unsupported env source {other:?} in {e}"),
                    }
                };
                set(&mut env, &str_of(&e["name"]), value);
            }
            let argv = ["command", "args"]
                .iter()
                .flat_map(|k| c[*k].as_array().cloned().unwrap_or_default())
                .map(|a| expand(&str_of(&a), &env))
                .collect();
            let ports = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let port = p["containerPort"].as_u64().expect("containerPort");
                    (str_of(&p["name"]), u16::try_from(port).expect("port"))
                })
                .collect();
            let mounts = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| (str_of(&m["mountPath"]), str_of(&m["name"])))
                .collect();
            out.push(Container {
                workload: workload.clone(),
                argv,
                env,
                ports,
                mounts,
                labels: labels.clone(),
            });
        }
    }
    out
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    env.retain(|(k, _)| k != name);
    env.push((name.to_owned(), value));
}

/// Kubernetes `$(VAR)` expansion: known variables are replaced, `$$` escapes, unknown references
/// stay as written.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = tail.strip_prefix("$(")
            && let Some(end) = body.find(')')
            && let Some((_, v)) = env.iter().find(|(k, _)| k == &body[..end])
        {
            out.push_str(v);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A container running as a local process; killed on drop.
#[derive(Debug)]
pub struct Process {
    /// What it printed after "listening on " (its bound address or URL).
    pub listening: String,
    _child: tokio::process::Child,
}

/// Starts `argv` (the first element looked up in `bin_dir`) with exactly `env` in the working
/// directory `cwd`, and waits until it prints `… listening on <addr>`; panics if it exits or
/// stays silent for 60 seconds.
pub async fn start(
    bin_dir: &Path,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Process {
    let program = bin_dir.join(&argv[0]);
    assert!(
        program.is_file(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`; \
         scripts/test does)",
        program.display()
    );
    let mut child = tokio::process::Command::new(&program)
        .args(&argv[1..])
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some((_, addr)) = line.split_once(" listening on ") {
                return addr.trim().to_owned();
            }
        }
        panic!("{argv:?} exited before listening (env {env:?})");
    })
    .await
    .unwrap_or_else(|_| panic!("{argv:?} did not listen within 60 s"));
    // Keep draining stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process {
        listening,
        _child: child,
    }
}
