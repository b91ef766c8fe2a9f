//! Running one claimed task: `sh -c COMMAND` in its directory (`code::task_dir`: the
//! task's worktree or repository on this daemon, else the workspace root), its stdout
//! and stderr reported line by line as OUTPUT events in batches, then DONE or FAILED.
//!
//! Each batch carries an idempotency key made of the task, this run and the batch's
//! number, so a retried POST (a lost response, a server restart) never stores a line
//! twice, while a later run of the same task (after a resume) gets keys of its own.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shutdown;
use super::client::Client;

/// A batch is sent once it holds this many lines...
pub const BATCH_LINES: usize = 100;
/// ...or this many bytes of text...
const BATCH_BYTES: usize = 256 * 1024;
/// ...or its first line is this old.
pub const BATCH_AGE: Duration = Duration::from_millis(200);
/// A longer line is reported in pieces of this size.
const MAX_LINE: u64 = 16 * 1024;

const APPEND: &str = "mutation($input: AppendTaskEventsInput!) { appendTaskEvents(input: $input) { events { sequence } } }";
const STATUS: &str = "mutation($task: ID!, $status: TaskStatus!) { updateTaskStatus(input: {taskId: $task, status: $status}) { task { id status } } }";

/// What every task of this daemon runs.
pub struct ExecConfig {
    /// Run as `sh -c COMMAND`.
    pub command: String,
    /// The command's working directory.
    pub workspace_root: PathBuf,
    /// The server's URL, passed on as MAKIMA_URL.
    pub url: String,
}

/// A claimed task.
#[derive(Clone, Debug)]
pub struct Job {
    pub task_id: String,
    pub name: String,
    pub plan: Option<String>,
    /// The command's working directory (`code::task_dir`), or why there is none.
    pub dir: Result<PathBuf, String>,
}

/// Runs `job` to its end (or until the daemon stops) and reports it.
pub async fn run(client: Client, config: Arc<ExecConfig>, job: Job, shutdown: Shutdown) {
    let mut report = Reporter::new(client, job.task_id.clone(), shutdown.clone());
    tracing::info!(task = %job.task_id, name = %job.name, "running task");
    let status = match &job.dir {
        Ok(dir) => match spawn(&config, &job, dir) {
            Ok(child) => execute(child, &mut report, &shutdown).await,
            Err(e) => Err(format!("cannot start `sh -c`: {e}")),
        },
        Err(e) => Err(e.clone()),
    };
    report.flush().await;
    let final_status = match status {
        Ok(Some(exit)) if exit.success() => "DONE",
        Ok(Some(exit)) => {
            let (text, detail) = describe(exit);
            report.push("ERROR", json!({ "text": text, "exit": detail }));
            "FAILED"
        }
        Ok(None) => {
            report.push(
                "ERROR",
                json!({ "text": "the daemon stopped; the command was killed" }),
            );
            "INTERRUPTED"
        }
        Err(text) => {
            report.push("ERROR", json!({ "text": text }));
            "FAILED"
        }
    };
    report.flush().await;
    let vars = json!({ "task": job.task_id, "status": final_status });
    match report.client.call_retrying(STATUS, vars, &shutdown).await {
        Ok(_) => tracing::info!(task = %job.task_id, status = final_status, "task finished"),
        Err(e) => tracing::error!(task = %job.task_id, error = %e, "cannot report the task's end"),
    }
}

fn spawn(config: &ExecConfig, job: &Job, dir: &Path) -> std::io::Result<tokio::process::Child> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&config.command)
        .current_dir(dir)
        .env("MAKIMA_TASK_ID", &job.task_id)
        .env("MAKIMA_TASK_NAME", &job.name)
        .env("MAKIMA_URL", &config.url)
        .env_remove("MAKIMA_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches the daemon, which then
        // stops the whole group itself.
        .process_group(0)
        .kill_on_drop(true);
    match &job.plan {
        Some(plan) => cmd.env("MAKIMA_TASK_PLAN", plan),
        None => cmd.env_remove("MAKIMA_TASK_PLAN"),
    };
    cmd.spawn()
}

/// Reads the child's output into `report` until it exits; `Ok(None)` if the daemon
/// stopped first (the child's process group is killed).
async fn execute(
    mut child: tokio::process::Child,
    report: &mut Reporter,
    shutdown: &Shutdown,
) -> Result<Option<ExitStatus>, String> {
    let (tx, mut lines) = mpsc::channel::<(&'static str, String)>(1024);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, "stdout", tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, "stderr", tx.clone()));
    }
    drop(tx);
    let mut deadline: Option<Instant> = None;
    loop {
        let age = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = lines.recv() => match line {
                Some((stream, text)) => {
                    report.push("OUTPUT", json!({ "stream": stream, "text": text }));
                    if report.is_full() {
                        report.flush().await;
                        deadline = None;
                    } else if deadline.is_none() {
                        deadline = Some(Instant::now() + BATCH_AGE);
                    }
                }
                None => break,
            },
            _ = age => {
                report.flush().await;
                deadline = None;
            }
            _ = shutdown.stopped() => {
                kill_group(&mut child).await;
                return Ok(None);
            }
        }
    }
    tokio::select! {
        status = child.wait() => status.map(Some).map_err(|e| format!("cannot wait for the command: {e}")),
        _ = shutdown.stopped() => {
            kill_group(&mut child).await;
            Ok(None)
        }
    }
}

/// Sends each line of `pipe` (without its line break; long lines in pieces) to `tx`.
async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    stream: &'static str,
    tx: mpsc::Sender<(&'static str, String)>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                if tx.send((stream, line)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Kills the child's whole process group (the shell and whatever it started).
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // No `unsafe` (hence no libc::killpg) in makima: kill(1) does it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let _ = child.kill().await;
}

/// "exited with status 3" or "killed by signal 9", and the same as JSON.
fn describe(exit: ExitStatus) -> (String, Value) {
    match (exit.code(), exit.signal()) {
        (Some(code), _) => (
            format!("the command exited with status {code}"),
            json!({ "code": code }),
        ),
        (None, Some(signal)) => (
            format!("the command was killed by signal {signal}"),
            json!({ "signal": signal }),
        ),
        (None, None) => (format!("the command ended: {exit}"), Value::Null),
    }
}

/// Events waiting to be sent, and the keys of the batches sent so far.
struct Reporter {
    client: Client,
    task_id: String,
    /// This run, in the idempotency keys.
    run: String,
    batch: u64,
    pending: Vec<Value>,
    bytes: usize,
    shutdown: Shutdown,
}

impl Reporter {
    fn new(client: Client, task_id: String, shutdown: Shutdown) -> Self {
        Self {
            client,
            task_id,
            run: uuid::Uuid::now_v7().simple().to_string(),
            batch: 0,
            pending: vec![],
            bytes: 0,
            shutdown,
        }
    }

    fn push(&mut self, kind: &str, data: Value) {
        self.bytes += data.to_string().len();
        self.pending.push(json!({ "type": kind, "data": data }));
    }

    fn is_full(&self) -> bool {
        self.pending.len() >= BATCH_LINES || self.bytes >= BATCH_BYTES
    }

    /// The idempotency key of batch `n` of this run.
    fn key(&self, n: u64) -> String {
        batch_key(&self.task_id, &self.run, n)
    }

    /// Sends the pending events as one batch, retrying transient failures with the
    /// same key; a batch the server refuses is logged and dropped.
    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.batch += 1;
        let events = std::mem::take(&mut self.pending);
        self.bytes = 0;
        let count = events.len();
        let input = json!({
            "taskId": self.task_id,
            "events": events,
            "idempotencyKey": self.key(self.batch),
        });
        match self
            .client
            .call_retrying(APPEND, json!({ "input": input }), &self.shutdown)
            .await
        {
            Ok(_) => {
                tracing::debug!(task = %self.task_id, batch = self.batch, count, "events sent")
            }
            Err(e) => {
                tracing::error!(task = %self.task_id, batch = self.batch, count, error = %e, "events lost")
            }
        }
    }
}

/// `{task}-{run}-{n}`: the same for every retry of one batch, different for every
/// batch and every run.
pub fn batch_key(task_id: &str, run: &str, n: u64) -> String {
    format!("{task_id}-{run}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keys_differ_per_batch_and_run_and_fit_a_name() {
        let task = uuid::Uuid::now_v7().to_string();
        let run = uuid::Uuid::now_v7().simple().to_string();
        assert_eq!(batch_key(&task, &run, 1), batch_key(&task, &run, 1));
        assert_ne!(batch_key(&task, &run, 1), batch_key(&task, &run, 2));
        assert_ne!(batch_key(&task, &run, 1), batch_key(&task, "other", 1));
        assert!(batch_key(&task, &run, u64::MAX).len() <= 256);
    }

    #[test]
    fn exit_statuses_read_as_text() {
        assert_eq!(
            describe(ExitStatus::from_raw(3 << 8)).0,
            "the command exited with status 3"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(9)).0,
            "the command was killed by signal 9"
        );
    }
}
