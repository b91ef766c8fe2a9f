//! `makima daemon` as a real process next to a real `makima serve`, and the owner's
//! view of what it did.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::process::Spawned;
use super::ws::WAIT;

/// A daemon key made with the CLI: `makima api-key create --owner O --daemon D`; the
/// key is the last line of its output.
pub async fn daemon_key(database_url: &str, owner: &str, daemon: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_makima"))
        .args(["api-key", "create", "--owner", owner, "--daemon", daemon])
        .args(["--database-url", database_url])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run makima api-key create");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    stdout.lines().last().expect("a key").trim().to_owned()
}

/// A running `makima daemon`.
pub struct Daemon {
    child: Child,
    pub name: String,
}

impl Daemon {
    /// `makima daemon` against `server` with `key`, running `exec` (if any) in
    /// `workspace_root`; heartbeats and polls every second. Its log goes to the test's
    /// stderr, prefixed with `name`.
    pub fn start(
        server: SocketAddr,
        key: &str,
        workspace_root: &Path,
        exec: Option<&str>,
        name: &str,
    ) -> Self {
        Self::start_with(server, key, workspace_root, exec, name, &[])
    }

    /// `start` with more arguments; a `--heartbeat-secs` or `--poll-secs` among them
    /// replaces the default of 1.
    pub fn start_with(
        server: SocketAddr,
        key: &str,
        workspace_root: &Path,
        exec: Option<&str>,
        name: &str,
        args: &[&str],
    ) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_makima"));
        cmd.arg("daemon")
            .args(["--url", &format!("http://{server}")])
            .arg("--workspace-root")
            .arg(workspace_root)
            .env("MAKIMA_API_KEY", key)
            .env("MAKIMA_LOG", "makima=debug,info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(exec) = exec {
            cmd.args(["--exec", exec]);
        }
        for flag in ["--heartbeat-secs", "--poll-secs"] {
            if !args.contains(&flag) {
                cmd.args([flag, "1"]);
            }
        }
        cmd.args(args);
        let mut child = cmd.spawn().expect("spawn makima daemon");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let prefix = name.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[daemon {prefix}] {line}");
            }
        });
        Self {
            child,
            name: name.to_owned(),
        }
    }

    /// SIGKILL: the daemon gets no chance to report anything.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the daemon");
    }

    /// SIGTERM, then waits for it to exit; returns whether it exited successfully.
    pub async fn terminate(&mut self) -> bool {
        terminate(&mut self.child).await
    }
}

/// `makima serve` on `bind` (a fixed address, e.g. to come back on the same port),
/// as `process::serve_command` otherwise; start it with `process::spawn_listening`.
pub fn serve_on(database_url: &str, workspace_root: &Path, bind: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_makima"));
    cmd.args(["serve", "--bind", &bind.to_string(), "--database-url"])
        .arg(database_url)
        .arg("--workspace-root")
        .arg(workspace_root)
        .env("MAKIMA_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// SIGTERM to a child process, then waits for it; returns whether it exited successfully.
pub async fn terminate(child: &mut Child) -> bool {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the process exits after SIGTERM")
        .expect("wait")
        .success()
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `WAIT`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The owner's view of daemons and tasks on a spawned server.
pub struct Owner<'a> {
    pub server: &'a Spawned,
    pub key: &'a str,
}

impl Owner<'_> {
    /// The owner's daemons: name → (id, status).
    pub async fn daemons(&self) -> Vec<(String, String, String)> {
        let data = self
            .server
            .ok(
                self.key,
                "{ daemons(first: 100) { nodes { id name status } } }",
                json!({}),
            )
            .await;
        data["daemons"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_owned(),
                    d["id"].as_str().unwrap().to_owned(),
                    d["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until the daemon called `name` is ONLINE; returns its id.
    pub async fn online(&self, name: &str) -> String {
        eventually(&format!("daemon {name} ONLINE"), || async {
            self.daemons()
                .await
                .into_iter()
                .find(|(n, _, status)| n == name && status == "ONLINE")
                .map(|(_, id, _)| id)
        })
        .await
    }

    /// Creates a task assigned to `daemon_id`; returns its id.
    pub async fn create_task(&self, name: &str, daemon_id: &str) -> String {
        let data = self
            .server
            .ok(
                self.key,
                "mutation($n: String!, $d: ID) { createTask(input: {name: $n, plan: \"p\", daemonId: $d}) { task { id } } }",
                json!({ "n": name, "d": daemon_id }),
            )
            .await;
        data["createTask"]["task"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn status(&self, task: &str) -> String {
        let data = self
            .server
            .ok(
                self.key,
                "query($t: ID!) { task(id: $t) { status } }",
                json!({ "t": task }),
            )
            .await;
        data["task"]["status"].as_str().unwrap().to_owned()
    }

    /// Waits until the task has `status`.
    pub async fn ends(&self, task: &str, status: &str) {
        eventually(&format!("task {task} {status}"), || async {
            (self.status(task).await == status).then_some(())
        })
        .await
    }

    /// The task's events in order: (type, data).
    pub async fn events(&self, task: &str) -> Vec<(String, Value)> {
        let data = self
            .server
            .ok(
                self.key,
                "query($t: ID!) { task(id: $t) { events(first: 100) { nodes { sequence type data } } } }",
                json!({ "t": task }),
            )
            .await;
        data["task"]["events"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
            .collect()
    }

    /// The text of the task's OUTPUT events, in order.
    pub async fn output(&self, task: &str) -> Vec<String> {
        self.events(task)
            .await
            .into_iter()
            .filter(|(kind, _)| kind == "OUTPUT")
            .map(|(_, data)| data["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Processes of process group `pgid` that are still running (zombies, which only wait
/// for whoever reaps orphans, do not count). Linux: reads /proc.
pub fn running_in_group(pgid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .count()
}
