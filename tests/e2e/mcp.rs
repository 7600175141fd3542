//! MCP and stdio (`switchyard-mcp`): the mesh's agents as MCP tools at the gateway's `/mcp`,
//! driven by the official MCP Python SDK (PyPI `mcp`); a Python process speaking A2A JSON-RPC
//! lines served as a mesh agent and reached over JSON-RPC, REST, SSE and gRPC; an MCP server
//! written with the MCP Python SDK wrapped as a mesh agent behind the gateway.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use switchyard::{
    Agent, Registry, RegistryConfig,
    pb::a2a::{ListTasksRequest, TaskState},
};
use switchyard_e2e::{Served, python};
use switchyard_mcp::{McpServerAgent, Process, ProcessConfig, StdioAgent};
use tokio::io::AsyncBufReadExt as _;

use crate::gateway::{Gw, PATIENCE, agent, msg, sse_all};

/// The research mesh (textstats, summarize, keywords, research) plus echo, each on its own
/// port, and a gateway over all of them whose `/mcp` refreshes every 200 ms.
struct Mesh {
    gw: Gw,
    echo: Served,
    parts: Vec<(String, Served)>,
    _research: Served,
    _dir: tempfile::TempDir,
}

async fn mesh() -> Mesh {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut parts = Vec::new();
    for (name, a) in crate::research::standard() {
        let s = Served::start_arc_in(a, &dir.path().join(name), |_| {}).await;
        parts.push((name.to_owned(), s));
    }
    let sub = Registry::new(&RegistryConfig {
        agents: parts.iter().map(|(n, s)| agent(n, s.addr)).collect(),
    })
    .expect("registry");
    let research = switchyard_research::Research::new(Arc::new(sub), Default::default());
    let research = Served::start_in(research, &dir.path().join("research"), |_| {}).await;
    let echo = Served::start_in(switchyard_echo::Echo, &dir.path().join("echo"), |_| {}).await;
    let mut agents: Vec<_> = parts.iter().map(|(n, s)| agent(n, s.addr)).collect();
    agents.push(agent("research", research.addr));
    agents.push(agent("echo", echo.addr));
    let gw = Gw::start(agents, |c| {
        c.mcp_refresh_interval = Duration::from_millis(200);
    })
    .await;
    Mesh {
        gw,
        echo,
        parts,
        _research: research,
        _dir: dir,
    }
}

/// The MCP Python SDK over streamable HTTP: tools, research with progress, cancellation of a
/// long echo (→ CANCELED), and `tools/list_changed` when textstats goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_python_sdk_uses_the_mesh_at_the_gateway() {
    let mut m = mesh().await;
    let url = format!("{}/mcp", m.gw.url);
    let readme = python::workspace().join("README.md");
    let mut child = tokio::process::Command::new(python::interpreter())
        .args(["tests/python/mcp_client.py", "--http", &url, "--document"])
        .arg(&readme)
        .args(["--await-removal", "textstats"])
        .current_dir(python::workspace())
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut steps: Vec<Value> = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            let step: Value = serde_json::from_str(&line).unwrap_or(json!({"raw": line}));
            if step["step"] == "waiting" {
                let (_, textstats) = m.parts.remove(0);
                textstats.stop().await;
            }
            steps.push(step);
        }
        child.wait_with_output().await.expect("python ran")
    };
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the MCP client finished within 3 minutes");
    let names: Vec<_> = steps.iter().map(|s| s["step"].clone()).collect();
    assert!(
        out.status.success(),
        "mcp_client.py failed after {names:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        names,
        [
            "tools",
            "research",
            "input-required",
            "cancelled",
            "waiting",
            "changed",
            "done"
        ]
    );
    let tools = steps[0]["tools"].as_array().expect("tools");
    for t in [
        "echo.echo",
        "echo.stream",
        "textstats.textstats",
        "research.research-report",
    ] {
        assert!(tools.contains(&json!(t)), "{t} in {tools:?}");
    }
    let report = steps[1]["report"].as_str().expect("report text");
    assert!(
        report.starts_with("# Research report") && report.contains("3 of 3 parts complete"),
        "{report}"
    );
    assert!(
        !steps[1]["progress"]
            .as_array()
            .expect("progress")
            .is_empty()
    );
    let left = steps[5]["tools"].as_array().expect("tools");
    assert!(left.contains(&json!("echo.echo")));
    assert!(
        !left
            .iter()
            .any(|t| t.as_str().is_some_and(|t| t.starts_with("textstats.")))
    );

    // The cancelled call's task: CANCELED (the MCP cancellation became CancelTask).
    let canceled = async {
        loop {
            let tasks = m
                .echo
                .client
                .list_tasks(ListTasksRequest::default())
                .await
                .expect("list");
            // Of echo's tasks only the cancelled call's can be CANCELED.
            if let Some(t) = tasks
                .tasks
                .iter()
                .find(|t| t.state() == TaskState::Canceled)
            {
                return t.id.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(PATIENCE, canceled)
        .await
        .expect("the long echo task became CANCELED");
    m.gw.stop().await;
}

fn stdio_agent(name: &str) -> (StdioAgent, Process) {
    let process = Process::start(
        name,
        ProcessConfig {
            command: vec![
                python::interpreter().display().to_string(),
                python::workspace()
                    .join("tests/python/stdio_agent.py")
                    .display()
                    .to_string(),
            ],
            env: [("PYTHONUNBUFFERED".to_owned(), "1".to_owned())].into(),
            cwd: None,
        },
    )
    .expect("process");
    let card = switchyard::card::builder(name, "Upper-cases text (a Python stdio agent)")
        .skill(switchyard::card::skill(
            name,
            "Upper",
            "Upper-cases text",
            ["stdio"],
            ["hello"],
        ))
        .build();
    (StdioAgent::new(card, process.clone()), process)
}

fn artifact_text(task: &Value) -> String {
    task["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A Python stdio agent through the mesh: JSON-RPC, REST, SSE and gRPC answer; killed
/// mid-task, the task fails clearly and the next call works after the restart; a line of
/// garbage fails the task with a clear reason and the agent goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_stdio_agent_answers_over_every_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (agent_impl, process) = stdio_agent("upper");
    assert_eq!(agent_impl.card().name, "upper");
    let served = Served::start_in(agent_impl, dir.path(), |_| {}).await;
    let gw = Gw::start(vec![agent("upper", served.addr)], |_| {}).await;

    let rpc = gw
        .rpc(
            "upper",
            "SendMessage",
            json!({"message": msg("json rpc", Value::Null)}),
        )
        .await;
    assert_eq!(artifact_text(&rpc["result"]["task"]), "JSON RPC", "{rpc}");
    let rest = gw
        .post_json(
            "/agents/upper/message:send",
            &json!({"message": msg("rest", Value::Null)}),
        )
        .send()
        .await
        .expect("send");
    let rest = crate::gateway::json_of(rest).await;
    assert_eq!(artifact_text(&rest["task"]), "REST", "{rest}");
    let sse = gw
        .post_json(
            "/agents/upper/message:stream",
            &json!({"message": msg("sse", Value::Null)}),
        )
        .send()
        .await
        .expect("send");
    let events = sse_all(sse).await;
    let last = &events.last().expect("events").data;
    assert_eq!(
        last["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    assert!(
        events
            .iter()
            .any(|e| e.data["artifactUpdate"]["artifact"]["parts"][0]["text"] == "SSE"),
        "{events:?}"
    );
    let task = served.client.send_text("grpc").await.expect("grpc");
    assert_eq!(task.artifacts[0].text(), "GRPC");

    // Kill the process mid-task: the task fails saying so; the next call works.
    let pid: i32 = served.client.send_text("pid").await.expect("pid").artifacts[0]
        .text()
        .parse()
        .expect("a pid");
    let client = served.client.clone();
    let slow = tokio::spawn(async move { client.send_text("slow one").await });
    let working = async {
        loop {
            let tasks = served
                .client
                .list_tasks(ListTasksRequest::default())
                .await
                .expect("list");
            if tasks.tasks.iter().any(|t| t.state() == TaskState::Working) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, working)
        .await
        .expect("the slow task runs");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let failed = tokio::time::timeout(PATIENCE, slow)
        .await
        .expect("the slow task ended")
        .expect("join")
        .expect("a task");
    assert_eq!(failed.state(), TaskState::Failed);
    let reason = failed
        .status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(|m| m.text())
        .unwrap_or_default();
    assert!(reason.contains("the agent process exited"), "{reason}");
    let again = tokio::time::timeout(PATIENCE, served.client.send_text("after restart"))
        .await
        .expect("in time")
        .expect("a task");
    assert_eq!(again.artifacts[0].text(), "AFTER RESTART");

    // Garbage on stdout: the task fails clearly; the agent answers the next one.
    let garbage = served
        .client
        .send_text("garbage please")
        .await
        .expect("a task");
    assert_eq!(garbage.state(), TaskState::Failed);
    let reason = garbage
        .status
        .as_ref()
        .and_then(|s| s.message.as_ref())
        .map(|m| m.text())
        .unwrap_or_default();
    assert!(reason.contains("not JSON-RPC"), "{reason}");
    let fine = served.client.send_text("still here").await.expect("a task");
    assert_eq!(fine.artifacts[0].text(), "STILL HERE");

    gw.stop().await;
    served.stop().await;
    process.stop();
}

/// An MCP server written with the MCP Python SDK, wrapped as the mesh agent `wordtools`: its
/// tools are the card's skills, and a JSON-RPC call through the gateway runs one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_mcp_server_is_a_mesh_agent_behind_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wrapped = McpServerAgent::start(
        "wordtools",
        "",
        ProcessConfig {
            command: vec![
                python::interpreter().display().to_string(),
                python::workspace()
                    .join("tests/python/mcp_server.py")
                    .display()
                    .to_string(),
            ],
            env: Default::default(),
            cwd: None,
        },
    )
    .await
    .expect("the MCP server starts");
    let skills: Vec<_> = wrapped.card().skills.iter().map(|s| s.id.clone()).collect();
    assert_eq!(skills, ["count_words", "reverse"]);
    let served = Served::start_in(wrapped, dir.path(), |_| {}).await;
    let gw = Gw::start(vec![agent("wordtools", served.addr)], |_| {}).await;
    let r = gw
        .rpc(
            "wordtools",
            "SendMessage",
            json!({"message": msg("one two three", json!({"tool": "count_words"}))}),
        )
        .await;
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    assert_eq!(artifact_text(task), "3 words");
    let r = gw
        .rpc(
            "wordtools",
            "SendMessage",
            json!({"message": msg("abc", json!({"tool": "nope"}))}),
        )
        .await;
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_REJECTED",
        "{r}"
    );
    gw.stop().await;
    served.stop().await;
}
