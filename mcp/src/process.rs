//! [`Process`]: one supervised child process that speaks newline-delimited JSON-RPC 2.0 on
//! stdin/stdout, restarted with backoff when it dies, its stderr in the logs.
//!
//! Requests carry ids from a counter; every line the process writes with an `id` goes to the
//! waiter of that request (several lines may answer one request: a stream). A line that is not
//! a JSON-RPC object fails every request in flight with [`Gone::Garbage`] (the mesh cannot know
//! whose it was) and is logged; the process keeps running. When the process exits, its requests
//! fail with [`Gone::Exited`] and it is started again after 0.2 s, 0.4 s, … up to 10 s (reset
//! once it has run for 30 s).

use std::{
    collections::HashMap,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    process::{Child, ChildStdin, Command},
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;

/// Longest line accepted from the process, in bytes (16 MiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessConfig {
    /// The program and its arguments, e.g. `["python3", "agent.py"]`.
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory (default: the current one).
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
}

/// Why a request got no (further) answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Gone {
    /// The process exited while the request was in flight.
    #[error("the agent process exited ({0}) while working on the request")]
    Exited(String),
    /// The process wrote a line that is not a JSON-RPC 2.0 object.
    #[error("the agent process wrote a line that is not JSON-RPC 2.0 ({reason}): {line:?}")]
    Garbage {
        /// Why the line was refused.
        reason: String,
        /// The line's beginning (at most 200 characters).
        line: String,
    },
    /// The process is not running and did not start in time.
    #[error("the agent process is not running: {0}")]
    NotRunning(String),
    /// The supervisor has stopped (drain).
    #[error("the agent process was stopped")]
    Stopped,
}

/// One line that answers a request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Its `result`.
    Result(Value),
    /// Its `error` (a JSON-RPC error object).
    Error(Value),
}

/// One answer to a request, or why no (further) answer comes.
pub type Reply = Result<Answer, Gone>;

#[derive(Debug)]
struct Running {
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Reply>>>,
}

impl Running {
    fn fail_all(&self, why: &Gone) {
        let waiters: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, tx) in waiters {
            let _ = tx.send(Err(why.clone()));
        }
    }
}

/// A supervised child process (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Process {
    name: Arc<str>,
    current: watch::Receiver<Option<Arc<Running>>>,
    last_error: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An open request: the lines that answer it.
#[derive(Debug)]
pub struct Call {
    /// The request id.
    pub id: u64,
    /// The answers, in order; ends when the process is gone.
    pub replies: mpsc::UnboundedReceiver<Reply>,
    running: Arc<Running>,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.running
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Process {
    /// Starts `config`'s command (named `name` in the logs) and keeps it running until
    /// [`stop`](Self::stop).
    ///
    /// # Errors
    /// An empty command.
    pub fn start(name: &str, config: ProcessConfig) -> Result<Self, String> {
        if config.command.is_empty() || config.command[0].is_empty() {
            return Err(format!("stdio agent {name:?}: the command is empty"));
        }
        let (tx, rx) = watch::channel(None);
        let process = Self {
            name: name.into(),
            current: rx,
            last_error: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            stop: CancellationToken::new(),
        };
        tokio::spawn(supervise(process.clone(), config, tx));
        Ok(process)
    }

    /// Stops the process (closes its stdin, then kills it after 2 s); in-flight requests fail
    /// with [`Gone::Stopped`].
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Sends a request (`method`, `params`) once the process runs (waiting at most `wait`).
    ///
    /// # Errors
    /// [`Gone::NotRunning`] when it does not run in time, [`Gone::Exited`] when writing fails.
    pub async fn call(&self, method: &str, params: Value, wait: Duration) -> Result<Call, Gone> {
        let running = self.running(wait).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, replies) = mpsc::unbounded_channel();
        running
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let call = Call {
            id,
            replies,
            running: running.clone(),
        };
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        write(&running, &line).await?;
        Ok(call)
    }

    /// Sends a notification (no id) to the running process, if any.
    pub async fn notify(&self, method: &str, params: Value) {
        if let Ok(running) = self.running(Duration::ZERO).await {
            let line = json!({"jsonrpc": "2.0", "method": method, "params": params});
            let _ = write(&running, &line).await;
        }
    }

    async fn running(&self, wait: Duration) -> Result<Arc<Running>, Gone> {
        let mut rx = self.current.clone();
        let found = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        match found {
            Ok(Ok(r)) => Ok(r.clone().expect("wait_for checked it")),
            Ok(Err(_)) => Err(Gone::Stopped),
            Err(_) => Err(Gone::NotRunning(
                self.last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            )),
        }
    }
}

async fn write(running: &Running, line: &Value) -> Result<(), Gone> {
    let mut bytes = serde_json::to_vec(line).expect("JSON values serialize");
    bytes.push(b'\n');
    let mut stdin = running.stdin.lock().await;
    let r = async {
        stdin.write_all(&bytes).await?;
        stdin.flush().await
    };
    r.await
        .map_err(|e| Gone::Exited(format!("writing to its stdin: {e}")))
}

fn spawn(config: &ProcessConfig) -> std::io::Result<Child> {
    let mut cmd = Command::new(&config.command[0]);
    cmd.args(&config.command[1..])
        .envs(&config.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(d) = &config.cwd {
        cmd.current_dir(d);
    }
    cmd.spawn()
}

async fn supervise(
    process: Process,
    config: ProcessConfig,
    current: watch::Sender<Option<Arc<Running>>>,
) {
    let name = process.name.clone();
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = tokio::time::Instant::now();
        let exit = match spawn(&config) {
            Ok(child) => run_once(&name, child, &current, &process.stop).await,
            Err(e) => format!("cannot start {:?}: {e}", config.command[0]),
        };
        current.send_replace(None);
        *process.last_error.lock().unwrap_or_else(|e| e.into_inner()) = exit.clone();
        if process.stop.is_cancelled() {
            tracing::info!(agent = %name, "stdio agent process stopped");
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(200);
        }
        tracing::warn!(agent = %name, %exit, restart_in_ms = backoff.as_millis() as u64, "stdio agent process exited; restarting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = process.stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Runs one life of the process; returns how it ended.
async fn run_once(
    name: &str,
    mut child: Child,
    current: &watch::Sender<Option<Arc<Running>>>,
    stop: &CancellationToken,
) -> String {
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return "its standard streams were not piped".into();
    };
    tracing::info!(agent = %name, pid = child.id().unwrap_or_default(), "stdio agent process started");
    let running = Arc::new(Running {
        stdin: tokio::sync::Mutex::new(stdin),
        pending: Mutex::default(),
    });
    current.send_replace(Some(running.clone()));
    let logger = {
        let name = name.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(agent = %name, stderr = %line, "stdio agent");
            }
        })
    };
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    let ended = loop {
        buf.clear();
        let read = tokio::select! {
            r = read_line(&mut reader, &mut buf) => r,
            () = stop.cancelled() => {
                running.fail_all(&Gone::Stopped);
                current.send_replace(None);
                drop(running.stdin.lock().await);
                // Closing stdin asks the process to end; it gets 2 s.
                let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                let _ = child.kill().await;
                logger.abort();
                return "stopped".into();
            }
        };
        match read {
            Ok(0) => break None,
            Ok(_) => route(name, &running, &buf),
            Err(e) => break Some(e.to_string()),
        }
    };
    current.send_replace(None);
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(s)) => s.to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => {
            let _ = child.kill().await;
            "closed its stdout; killed".into()
        }
    };
    let why = match ended {
        Some(e) => format!("{status}; reading its stdout: {e}"),
        None => status,
    };
    running.fail_all(&Gone::Exited(why.clone()));
    logger.abort();
    why
}

/// Reads one line (without the newline) of at most [`MAX_LINE_BYTES`]; longer lines are an
/// error for the whole stream (it cannot be resynchronised cheaply).
async fn read_line(
    reader: &mut BufReader<tokio::process::ChildStdout>,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt as _;
    let n = (&mut *reader)
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', buf)
        .await?;
    if buf.len() > MAX_LINE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(n)
}

fn route(name: &str, running: &Running, line: &[u8]) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let garbage = |reason: &str| {
        let text: String = String::from_utf8_lossy(line).chars().take(200).collect();
        tracing::warn!(agent = %name, line = %text, reason, "stdio agent wrote a line that is not JSON-RPC");
        running.fail_all(&Gone::Garbage {
            reason: reason.to_owned(),
            line: text,
        });
    };
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(_) => return garbage("not JSON"),
    };
    let Some(obj) = value.as_object() else {
        return garbage("not an object");
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return garbage("no \"jsonrpc\": \"2.0\"");
    }
    let Some(id) = obj.get("id").and_then(Value::as_u64) else {
        tracing::debug!(agent = %name, "stdio agent notification ignored");
        return;
    };
    let reply = match (obj.get("result"), obj.get("error")) {
        (Some(r), None) => Ok(Answer::Result(r.clone())),
        (None, Some(e)) => Ok(Answer::Error(e.clone())),
        _ => return garbage("neither one result nor one error"),
    };
    let tx = running
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    match tx {
        Some(tx) => {
            let _ = tx.send(reply);
        }
        None => {
            tracing::debug!(agent = %name, id, "stdio agent answered a request nobody waits for")
        }
    }
}
