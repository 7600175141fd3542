//! Runs the Python test peers (the official a2a-sdk) with the project's virtualenv.
//!
//! The interpreter is `$SWITCHYARD_PYTHON`, else `<workspace>/.venv/bin/python`, which the
//! README's test command (`scripts/test`) creates with pinned packages.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The Python interpreter with the test packages installed.
pub fn interpreter() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHYARD_PYTHON") {
        return p.into();
    }
    let venv = workspace().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `scripts/test` (or `scripts/test --setup-only`) to install the \
         Python test peers",
        venv.display()
    );
    venv
}

/// Runs a script (path relative to the workspace) and returns its stdout and stderr; panics
/// with both when it exits non-zero or runs longer than two minutes.
pub async fn run(args: &[&str]) -> String {
    let child = tokio::process::Command::new(interpreter())
        .args(args)
        .current_dir(workspace())
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), child)
        .await
        .expect("python finished within 2 minutes")
        .expect("python started");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python {args:?} failed:\n{text}");
    text
}
