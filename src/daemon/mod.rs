//! `makima daemon`: the reference daemon. A plain HTTP/WebSocket client of a makima
//! server (of the server's code it uses only `git::steps`, the git operations both run):
//! it heartbeats, keeps the `workAvailable` doorbell open, runs the code operations on
//! its worktrees (`code`), and with `--exec` claims tasks and runs a shell command for
//! each, reporting its output as task events and its end as DONE or FAILED. The
//! protocol is in `docs/daemons.md`.
//!
//! - `client`: GraphQL over HTTP (hyper, plain http only), with retries.
//! - `stream`: the doorbell subscription, reconnecting and resuming from its cursor.
//! - `exec`: one task's command and its reports.
//! - `code`: code operations on this daemon's worktrees, with a journal for crashes.
//! - `backoff`: the waits between retries.

pub mod backoff;
pub mod client;
pub mod code;
pub mod exec;
pub mod stream;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use client::{Client, Endpoint};
use exec::{ExecConfig, Job};

/// The capability a daemon that runs `--exec` commands reports.
pub const EXEC_CAPABILITY: &str = "exec";

const HEARTBEAT: &str = "mutation($input: HeartbeatDaemonInput) { heartbeatDaemon(input: $input) { daemon { id name status } } }";
/// The first heartbeat also lists the tasks an earlier process of this daemon left.
const FIRST_HEARTBEAT: &str = "mutation($input: HeartbeatDaemonInput) { heartbeatDaemon(input: $input) { daemon { id name status currentTasks(first: 100) { nodes { id status } } } } }";
const CLAIM_NEXT: &str =
    "mutation { claimNextTask { task { id name plan status repository worktreePath } } }";
const INTERRUPT: &str = "mutation($task: ID!) { updateTaskStatus(input: {taskId: $task, status: INTERRUPTED}) { task { id status } } }";
/// How long a stopping daemon waits for its tasks to report INTERRUPTED.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// What `makima daemon` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// `http://HOST:PORT` of the server (plain HTTP).
    pub url: String,
    /// A daemon key (`makima api-key create --owner O --daemon D`).
    pub api_key: String,
    /// The working directory of the commands.
    pub workspace_root: PathBuf,
    /// Run each claimed task as `sh -c COMMAND`; without it, claim nothing.
    pub exec: Option<String>,
    /// Seconds between heartbeats.
    pub heartbeat: Duration,
    /// Seconds between looks at `daemonWork` when the doorbell is silent.
    pub poll: Duration,
    /// Tasks run at once at most.
    pub max_tasks: usize,
}

/// Whether the daemon is stopping; cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the daemon is stopping.
    pub async fn stopped(&self) {
        let mut rx = self.0.clone();
        // An error means the sender is gone: the daemon is stopping too.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Runs the daemon until `signal` resolves (SIGINT/SIGTERM), then stops its commands,
/// reports their tasks INTERRUPTED and returns.
pub async fn run(options: Options, signal: impl Future<Output = ()>) -> Result<(), String> {
    let endpoint = Endpoint::parse(&options.url)?;
    std::fs::create_dir_all(&options.workspace_root).map_err(|e| {
        format!(
            "cannot create the workspace root {}: {e}",
            options.workspace_root.display()
        )
    })?;
    let workspace_root = options
        .workspace_root
        .canonicalize()
        .map_err(|e| format!("workspace root {}: {e}", options.workspace_root.display()))?;
    let client = Client::new(endpoint, options.api_key.clone());
    let (stop, shutdown) = Shutdown::new();
    let mut signal = std::pin::pin!(signal);
    let beat = heartbeat_input(&options);

    // The first heartbeat: retried until the server answers; a refusal (not a daemon
    // key, an unknown key) ends the daemon.
    let first = tokio::select! {
        first = client.call_retrying(FIRST_HEARTBEAT, beat.clone(), &shutdown) => first,
        _ = &mut signal => return Ok(()),
    };
    let first = first.map_err(|e| format!("the server refused the heartbeat: {e}"))?;
    let daemon = &first["heartbeatDaemon"]["daemon"];
    tracing::info!(
        id = %daemon["id"].as_str().unwrap_or(""),
        name = %daemon["name"].as_str().unwrap_or(""),
        url = %options.url,
        exec = options.exec.is_some(),
        "daemon online"
    );
    interrupt_leftovers(&client, daemon, &shutdown).await;

    let bell = Arc::new(Notify::new());
    // The code-operation worker runs a pass at start and each time the loop wakes.
    let code_bell = Arc::new(Notify::new());
    let code_worker = tokio::spawn(code::worker(
        client.clone(),
        workspace_root.clone(),
        code_bell.clone(),
        shutdown.clone(),
    ));
    let mut background = JoinSet::new();
    background.spawn(stream::doorbell(
        client.clone(),
        bell.clone(),
        shutdown.clone(),
    ));
    background.spawn(heartbeats(
        client.clone(),
        beat,
        options.heartbeat,
        shutdown.clone(),
    ));

    let exec = options.exec.as_ref().map(|command| {
        Arc::new(ExecConfig {
            command: command.clone(),
            workspace_root,
            url: options.url.clone(),
        })
    });
    let max_tasks = options.max_tasks.max(1);
    let mut running: JoinSet<()> = JoinSet::new();
    let mut poll = tokio::time::interval(options.poll.max(Duration::from_millis(100)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = bell.notified() => {}
            _ = poll.tick() => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a task's runner failed");
                }
            }
        }
        code_bell.notify_one();
        if let Some(exec) = &exec {
            take_work(&client, exec, max_tasks, &mut running, &shutdown).await;
        }
    }

    tracing::info!(tasks = running.len(), "daemon stopping");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("tasks still reporting after the grace period; leaving them");
    }
    // A code operation under way finishes its git step (its journal covers the rest).
    let code_worker_abort = code_worker.abort_handle();
    if tokio::time::timeout(STOP_GRACE, code_worker).await.is_err() {
        tracing::warn!("a code operation still running after the grace period; leaving it");
        code_worker_abort.abort();
    }
    background.shutdown().await;
    tracing::info!("daemon stopped");
    Ok(())
}

fn heartbeat_input(options: &Options) -> Value {
    let mut capabilities = vec![code::CODE_CAPABILITY];
    if options.exec.is_some() {
        capabilities.insert(0, EXEC_CAPABILITY);
    }
    json!({ "input": { "version": env!("CARGO_PKG_VERSION"), "capabilities": capabilities } })
}

/// Tasks RUNNING on this daemon when it starts ran in an earlier process of it, whose
/// commands are gone: they are INTERRUPTED (resumable), not left RUNNING forever.
async fn interrupt_leftovers(client: &Client, daemon: &Value, shutdown: &Shutdown) {
    let nodes = daemon["currentTasks"]["nodes"].as_array().cloned();
    for task in nodes.unwrap_or_default() {
        let (Some(id), Some("RUNNING")) = (task["id"].as_str(), task["status"].as_str()) else {
            continue;
        };
        match client
            .call_retrying(INTERRUPT, json!({ "task": id }), shutdown)
            .await
        {
            Ok(_) => tracing::warn!(
                task = id,
                "task left running by an earlier process: INTERRUPTED"
            ),
            Err(e) => {
                tracing::error!(task = id, error = %e, "cannot interrupt a task left running")
            }
        }
    }
}

/// Sends a heartbeat every `every` until the daemon stops; a failed one is logged and
/// the next tick tries again.
async fn heartbeats(client: Client, beat: Value, every: Duration, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first heartbeat was sent at start
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.stopped() => return,
        }
        if let Err(e) = client.call(HEARTBEAT, beat.clone()).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

/// Takes waiting tasks with `claimNextTask` until `max_tasks` run or none is left: the
/// server hands each waiting task to one daemon, so a fleet does not race for the same.
async fn take_work(
    client: &Client,
    exec: &Arc<ExecConfig>,
    max_tasks: usize,
    running: &mut JoinSet<()>,
    shutdown: &Shutdown,
) {
    while running.len() < max_tasks {
        let data = match client.call(CLAIM_NEXT, json!({})).await {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim");
                return;
            }
        };
        let task = &data["claimNextTask"]["task"];
        let Some(id) = task["id"].as_str() else {
            return;
        };
        let job = Job {
            task_id: id.to_owned(),
            name: task["name"].as_str().unwrap_or("").to_owned(),
            plan: task["plan"].as_str().map(str::to_owned),
            dir: code::task_dir(&exec.workspace_root, task),
        };
        tracing::info!(task = id, "claimed");
        running.spawn(exec::run(
            client.clone(),
            exec.clone(),
            job,
            shutdown.clone(),
        ));
    }
}
