//! The gateway's web console in a real browser: headless Chromium (Debian's package) driven by
//! playwright-core from `tests/e2e/console.mjs`, against a mesh of echo, research and its three
//! sub-agents behind one gateway. One scenario, run once (a browser start is the slow part):
//! the directory, a chat over the WebSocket front, agent output with `<script>` shown as text
//! and Markdown sanitized, a file sent as raw bytes, a research report of the repository's
//! README rendered, a long task canceled, a task's SSE stream resumed after a reload with no
//! event twice, the task list with states, and a visible error. Screenshots go to
//! `<target>/e2e-artifacts/console/`.

use std::{path::PathBuf, process::Stdio, time::Duration};

use reqwest::{Method, StatusCode, header};
use switchyard_e2e::{Served, python::workspace};

use crate::{
    gateway::{Gw, agent},
    research::{mesh, standard},
};

/// The page, its assets and the Markdown renderer over plain HTTP: content types, the
/// Content-Security-Policy, unknown assets, and the renderer's input checks.
#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let (gw, _echo, _dir) = Gw::echo_with(|c| c.max_body_bytes = 64 * 1024).await;
    let page = gw
        .http
        .get(format!("{}/", gw.url))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains(r#"<script type="module" src="/console/app.js">"#),
        "{html}"
    );
    for (asset, media) in [("app.js", "text/javascript"), ("console.css", "text/css")] {
        let r = gw
            .http
            .get(format!("{}/console/{asset}", gw.url))
            .send()
            .await
            .expect("asset");
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with(media)
        );
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let missing = gw
        .http
        .get(format!("{}/console/secrets.txt", gw.url))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let render = |content_type: &'static str, body: String| {
        gw.http
            .request(Method::POST, format!("{}/console/render", gw.url))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let r = render(
        "text/markdown",
        "# Title\n\n<script>alert(1)</script><img src=x onerror=alert(2)>\n\n[x](javascript:alert(3))"
            .into(),
    )
    .await
    .expect("render");
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("html");
    assert!(html.contains("<h1>Title</h1>"), "{html}");
    for bad in ["<script", "onerror", "javascript:"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    let r = render("application/json", "{}".into()).await.expect("json");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = render("text/markdown", "a".repeat(65 * 1024))
        .await
        .expect("large");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    gw.stop().await;
}

/// Bound on the whole browser run.
const BROWSER_PATIENCE: Duration = Duration::from_secs(300);

/// `$SWITCHYARD_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    std::env::var_os("SWITCHYARD_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), Into::into)
}

#[tokio::test]
async fn the_console_works_in_headless_chromium() {
    let root = workspace();
    let browser = chromium();
    assert!(
        browser.exists(),
        "{} is missing: run `scripts/test --setup-only` (it installs Debian's chromium), or set \
         SWITCHYARD_CHROMIUM",
        browser.display()
    );
    assert!(
        root.join("node_modules/playwright-core").exists(),
        "node_modules/playwright-core is missing: run `scripts/test --setup-only`"
    );
    let research = mesh(standard(), Duration::from_millis(250)).await;
    let (echo, _dir) = Served::echo().await;
    let mut agents = vec![
        agent("echo", echo.addr),
        agent("research", research.research.addr),
    ];
    agents.extend(research.parts.iter().map(|(name, s)| agent(name, s.addr)));
    let gw = Gw::start(agents, |_| {}).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir holds tmp/")
        .join("e2e-artifacts/console");
    let _ = std::fs::remove_dir_all(&out);

    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/e2e/console.mjs"))
        .arg(&gw.url)
        .arg(&out)
        .arg(root.join("README.md"))
        .env("SWITCHYARD_CHROMIUM", &browser)
        .current_dir(&root)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_PATIENCE, run)
        .await
        .expect("the browser run ended in time")
        .expect("node runs (Node 20+ is needed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed ({}); screenshots in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        out.display()
    );
    let report: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .rfind(|l| l.starts_with('{'))
            .expect("a JSON summary line"),
    )
    .expect("JSON");
    assert_eq!(report["ok"], true, "{stdout}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c.as_str()?.split(':').next())
        .collect();
    assert_eq!(
        checks,
        [
            "directory",
            "chat",
            "safety",
            "files",
            "research",
            "cancel",
            "resume",
            "drop",
            "tasks",
            "parser",
            "errors"
        ],
        "every step ran: {stdout}"
    );
    println!("{stdout}");
    for shot in [
        "01-agents.png",
        "02-chat.png",
        "03-research.png",
        "04-canceled.png",
        "05-resumed.png",
        "05b-dropped.png",
        "06-tasks.png",
    ] {
        let len = std::fs::metadata(out.join(shot)).map_or(0, |m| m.len());
        assert!(len > 1000, "screenshot {shot} saved ({len} bytes)");
    }
    gw.stop().await;
}
