//! MCP and stdio agents through the binary: `switchyard up` with a Python stdio agent and a
//! wrapped MCP server configured in `[up.stdio_agents]`, and `switchyard mcp` launched over
//! stdio by the official MCP Python SDK.

use std::{path::PathBuf, process::Command};

use super::{BIN, Up, ok, repo_file};

/// `$SWITCHYARD_PYTHON`, else the workspace's `.venv` (made by `scripts/test`).
fn python() -> PathBuf {
    std::env::var_os("SWITCHYARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_file(".venv/bin/python"))
}

#[test]
fn up_serves_stdio_agents_and_mcp_serves_the_mesh_over_stdio() {
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("switchyard.toml");
    let py = python().display().to_string();
    let script = |name: &str| {
        repo_file(&format!("tests/python/{name}"))
            .display()
            .to_string()
    };
    std::fs::write(
        &config,
        format!(
            "[up.stdio_agents.upper]\ncommand = [{py:?}, {agent:?}]\ndescription = \"Upper-cases text\"\n\
             examples = [\"hello\"]\n\n[up.stdio_agents.wordtools]\nkind = \"mcp\"\n\
             command = [{py:?}, {server:?}]\n",
            agent = script("stdio_agent.py"),
            server = script("mcp_server.py"),
        ),
    )
    .expect("write config");
    let up = Up::start(&[("SWITCHYARD_CONFIG", config.to_str().expect("utf-8 path"))]);
    assert!(up.banner.contains("upper"), "{}", up.banner);
    assert!(up.banner.contains("count_words, reverse"), "{}", up.banner);

    let out = ok(&up.run(&["send", "upper", "hello", "stdio"]));
    assert!(
        out.contains("\nHELLO STDIO\n") && out.contains("COMPLETED"),
        "{out}"
    );
    // Through the gateway: JSON-RPC (`send`) and SSE (`stream`).
    let gateway = up
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("gateway    "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the banner names the gateway")
        .to_owned();
    let via = [("SWITCHYARD_GATEWAY_URL", gateway.as_str())];
    let out = ok(&up.run_env(&["send", "upper", "via", "json-rpc"], None, &via));
    assert!(out.contains("\nVIA JSON-RPC\n"), "{out}");
    let out = ok(&up.run_env(&["stream", "upper", "via", "sse"], None, &via));
    assert!(
        out.contains("VIA SSE") && out.contains("COMPLETED"),
        "{out}"
    );
    let out = ok(&up.run(&["send", "wordtools", "--meta", "tool=reverse", "abc"]));
    assert!(
        out.contains("\ncba\n") && out.contains("COMPLETED"),
        "{out}"
    );

    // The MCP Python SDK launches `switchyard mcp` as a desktop client would.
    let out = Command::new(python())
        .arg(repo_file("tests/python/mcp_client.py"))
        .arg("--document")
        .arg(repo_file("README.md"))
        .arg("--stdio")
        .arg(BIN)
        .arg("--data-dir")
        .arg(up.dir.path())
        .arg("mcp")
        .output()
        .expect("python runs");
    let stdout = ok(&out);
    assert!(stdout.contains(r#""step": "done""#), "{stdout}");
    assert!(
        stdout.contains("upper.upper"),
        "stdio agents are tools too: {stdout}"
    );
    let tasks = ok(&up.run(&["task", "list", "echo"]));
    assert!(
        tasks.contains("CANCELED"),
        "the cancelled MCP call's task: {tasks}"
    );
    let (status, _) = up.interrupt();
    assert!(status.success());
}
