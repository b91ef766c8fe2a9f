//! Daemons against a real `makima serve`, over loopback: how long a new task takes to
//! reach a daemon that waits on its `workAvailable` doorbell (createTask → the daemon
//! has it in `daemonWork`), how long a rewind with code takes when the code is on a
//! daemon (mutation → DONE, the daemon running the git step with `git::steps`), and a
//! claim storm (many daemons, many tasks: every task claimed exactly once).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use makima::git::steps::{Fields, Step};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};
use crate::report::{Latency, Report};

/// How the daemon scenarios run.
pub struct DaemonConfig {
    /// Tasks dispatched one at a time for the latency figure.
    pub dispatches: usize,
    /// Remote rewinds (each followed by an append so the next one has a message to drop).
    pub rewinds: usize,
    /// Daemons in the claim storm.
    pub daemons: usize,
    /// Tasks in the claim storm.
    pub storm_tasks: usize,
}

/// A daemon's key and id.
struct DaemonKey {
    key: String,
    id: String,
}

/// One keep-alive connection acting with one key.
struct Client {
    ep: Endpoint,
    conn: Conn,
}

impl Client {
    fn new(addr: SocketAddr, key: &str) -> Self {
        Self {
            ep: Endpoint {
                addr,
                key: key.to_owned(),
            },
            conn: Conn::new(addr),
        }
    }

    /// The whole response (`data` and `errors`).
    async fn send(&mut self, query: &str, vars: Value) -> Result<Value> {
        let req = self.ep.graphql("", query, vars);
        let (_, body) = self.conn.send(&req).await?;
        Ok(serde_json::from_slice(body)?)
    }

    /// The `data` of a request that must succeed.
    async fn gql(&mut self, query: &str, vars: Value) -> Result<Value> {
        let v = self.send(query, vars).await?;
        if let Some(errors) = v.get("errors") {
            return Err(Error::msg(format!("{query}: {errors}")));
        }
        Ok(v["data"].clone())
    }
}

fn text(v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::msg(format!("expected a string, got {v}")))
}

/// A doorbell: a graphql-transport-ws subscription to `workAvailable`.
struct Doorbell {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Doorbell {
    async fn open(addr: SocketAddr, key: &str) -> Result<Self> {
        let mut req = format!("ws://{addr}/graphql")
            .into_client_request()
            .map_err(|e| Error::msg(e.to_string()))?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("a header value"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| Error::msg(format!("WebSocket: {e}")))?;
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } });
        ws.send(Message::text(init.to_string()))
            .await
            .map_err(|e| Error::msg(e.to_string()))?;
        let mut bell = Self { ws };
        let ack = bell.frame().await?;
        if ack["type"] != "connection_ack" {
            return Err(Error::msg(format!("no connection_ack: {ack}")));
        }
        let sub = json!({ "type": "subscribe", "id": "w", "payload": { "query": "subscription { workAvailable { cursor } }" } });
        bell.ws
            .send(Message::text(sub.to_string()))
            .await
            .map_err(|e| Error::msg(e.to_string()))?;
        Ok(bell)
    }

    async fn frame(&mut self) -> Result<Value> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .map_err(|_| Error::msg("no WebSocket message within 30 s"))?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["type"] != "ka" && v["type"] != "ping" && v["type"] != "pong" {
                        return Ok(v);
                    }
                }
                Some(Ok(_)) => {}
                other => return Err(Error::msg(format!("WebSocket ended: {other:?}"))),
            }
        }
    }

    /// Waits for the next ring.
    async fn ring(&mut self) -> Result<()> {
        let v = self.frame().await?;
        if v["type"] == "next" {
            Ok(())
        } else {
            Err(Error::msg(format!("unexpected frame: {v}")))
        }
    }
}

/// Creates daemon keys directly in the database (the CLI does the same, one process
/// per key).
async fn daemon_keys(database_url: &str, n: usize) -> Result<Vec<DaemonKey>> {
    let mut options = makima::store::StoreOptions::new(database_url);
    options.max_connections = 2;
    let store = makima::store::Store::connect(&options).await?;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let made = makima::domain::keys::create_for_daemon(
            &store,
            crate::seed::OWNER,
            &format!("bench-{i}"),
        )
        .await?;
        keys.push(DaemonKey {
            key: made.key,
            id: made
                .viewer
                .daemon
                .map(|d| d.to_string())
                .ok_or_else(|| Error::msg("a daemon key without its daemon"))?,
        });
    }
    Ok(keys)
}

pub async fn run(
    ep: &Endpoint,
    database_url: &str,
    scratch: &Path,
    config: &DaemonConfig,
    report: &mut Report,
) -> Result<()> {
    let keys = daemon_keys(database_url, config.daemons.max(1)).await?;
    dispatch(ep, &keys[0], config.dispatches, report).await?;
    remote_rewind(
        ep,
        &keys[0],
        &scratch.join("daemon-root"),
        config.rewinds,
        report,
    )
    .await?;
    storm(ep, &keys, config.storm_tasks, report).await
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

const CLAIM: &str = "mutation($t: ID!) { claimTask(input: {taskId: $t}) { task { id } } }";

/// createTask(daemonId) → the daemon's doorbell rings → daemonWork lists the task.
async fn dispatch(ep: &Endpoint, d: &DaemonKey, n: usize, report: &mut Report) -> Result<()> {
    let mut owner = Client::new(ep.addr, &ep.key);
    let mut daemon = Client::new(ep.addr, &d.key);
    let mut bell = Doorbell::open(ep.addr, &d.key).await?;
    let create = "mutation($d: ID!) { createTask(input: {name: \"dispatch\", daemonId: $d}) { task { id } } }";
    let work = "{ daemonWork { tasks(limit: 100) { id } } }";
    let mut latencies = Vec::with_capacity(n);
    // The first (not measured) also shows that the subscription is live.
    for i in 0..=n {
        let started = Instant::now();
        let made = owner.gql(create, json!({ "d": d.id })).await?;
        let id = text(&made["createTask"]["task"]["id"])?;
        loop {
            bell.ring().await?;
            let listed = daemon.gql(work, json!({})).await?;
            let has = listed["daemonWork"]["tasks"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["id"] == id.as_str()));
            if has {
                break;
            }
        }
        if i > 0 {
            latencies.push(micros(started));
        }
        daemon.gql(CLAIM, json!({ "t": id })).await?;
    }
    let l = Latency::of(&mut latencies);
    report.latency("daemons.dispatch", &l);
    report.target("daemons.dispatch_p50_ms", l.p50, false, 20.0);
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()?;
    if !out.status.success() {
        return Err(Error::msg(format!("git {args:?}: {out:?}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs every code operation the daemon has queued and reports it; how many.
async fn serve_operations(daemon: &mut Client, root: &Path) -> Result<usize> {
    let ops = daemon
        .gql(
            "{ daemonWork { codeOperations { id kind commitSha branch savedRef restoreFrom directory worktreePath } } }",
            json!({}),
        )
        .await?;
    let ops = ops["daemonWork"]["codeOperations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for op in &ops {
        let s = |k: &str| op[k].as_str();
        let step = Step::of(&Fields {
            kind: s("kind").unwrap_or_default(),
            directory: s("directory"),
            commit_sha: s("commitSha").unwrap_or_default(),
            branch: s("branch"),
            saved_ref: s("savedRef"),
            restore_from: s("restoreFrom"),
            worktree_path: s("worktreePath"),
        })
        .ok_or_else(|| Error::msg(format!("an incomplete operation: {op}")))?;
        let (status, commit, error) = match step.run(root).await {
            Ok(commit) => ("DONE", Some(commit), None),
            Err(e) => ("FAILED", None, Some(format!("{e:?}"))),
        };
        daemon
            .gql(
                "mutation($id: ID!, $s: CodeOperationStatus!, $c: String, $e: String) { completeCodeOperation(input: {codeOperationId: $id, status: $s, commitSha: $c, error: $e}) { codeOperation { id } } }",
                json!({ "id": op["id"], "s": status, "c": commit, "e": error }),
            )
            .await?;
    }
    Ok(ops.len())
}

/// A rewind with code of a task whose repository is on the daemon: mutation → DONE.
async fn remote_rewind(
    ep: &Endpoint,
    d: &DaemonKey,
    root: &Path,
    n: usize,
    report: &mut Report,
) -> Result<()> {
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo)?;
    let root: PathBuf = root.canonicalize()?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    std::fs::write(repo.join("f.txt"), "one")?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-q", "-m", "one"])?;
    let commit = git(&repo, &["rev-parse", "HEAD"])?;
    let mut owner = Client::new(ep.addr, &ep.key);
    let made = owner
        .gql(
            "mutation($d: ID!) { createTask(input: {name: \"remote\", daemonId: $d, repository: \"repo\"}) { task { id } } }",
            json!({ "d": d.id }),
        )
        .await?;
    let task = text(&made["createTask"]["task"]["id"])?;
    let mut daemon = Client::new(ep.addr, &d.key);
    daemon.gql(CLAIM, json!({ "t": task })).await?;
    daemon
        .gql(
            "mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: PAUSED}) { task { id } } }",
            json!({ "t": task }),
        )
        .await?;
    let say = "mutation($t: ID!) { appendMessages(input: {taskId: $t, messages: [{role: USER, content: [{type: \"text\", text: \"hi\"}]}]}) { messageCount } }";
    owner.gql(say, json!({ "t": task })).await?;
    owner
        .gql(
            "mutation($t: ID!, $c: String!) { recordCheckpoint(input: {taskId: $t, commitSha: $c, message: \"cp\"}) { checkpoint { id } } }",
            json!({ "t": task, "c": commit }),
        )
        .await?;

    let stop = Arc::new(tokio::sync::Notify::new());
    let worker = {
        let (addr, key, root, stop) = (ep.addr, d.key.clone(), root.clone(), stop.clone());
        tokio::spawn(async move {
            let mut daemon = Client::new(addr, &key);
            let mut bell = Doorbell::open(addr, &key).await?;
            loop {
                tokio::select! {
                    () = stop.notified() => return Ok::<(), Error>(()),
                    rang = bell.ring() => rang?,
                }
                serve_operations(&mut daemon, &root).await?;
            }
        })
    };
    let rewind = "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1, rewindCode: true}) { codeOperation { status error } } }";
    let mut latencies = Vec::with_capacity(n);
    for i in 0..=n {
        owner.gql(say, json!({ "t": task })).await?;
        let started = Instant::now();
        let done = owner.gql(rewind, json!({ "t": task })).await?;
        let op = &done["rewindConversation"]["codeOperation"];
        if op["status"] != "DONE" {
            return Err(Error::msg(format!("a remote rewind ended {op}")));
        }
        if i > 0 {
            latencies.push(micros(started));
        }
    }
    stop.notify_one();
    worker
        .await
        .map_err(|e| Error::msg(format!("daemon task: {e}")))??;
    let l = Latency::of(&mut latencies);
    report.latency("daemons.remote_rewind", &l);
    report.target("daemons.remote_rewind_p50_ms", l.p50, false, 20.0);
    // The floor: the same git step run directly, as the daemon runs it, with no server.
    let mut floor = Vec::with_capacity(n);
    for i in 0..n {
        let step = Step::Restore {
            dir: "repo".into(),
            commit: commit.clone(),
            saved_ref: format!("refs/makima/saved/bench-floor-{i}"),
        };
        let started = Instant::now();
        step.run(&root)
            .await
            .map_err(|e| Error::msg(format!("{e:?}")))?;
        floor.push(micros(started));
    }
    let f = Latency::of(&mut floor);
    report.latency("daemons.git_restore_floor", &f);
    report.metric("daemons.remote_rewind_over_git_p50_ms", l.p50 - f.p50, "ms");
    Ok(())
}

/// `keys.len()` daemons, each connected to its doorbell, take work with
/// `claimNextTask` while `tasks` unassigned tasks are created; every task must be
/// claimed exactly once.
async fn storm(ep: &Endpoint, keys: &[DaemonKey], tasks: usize, report: &mut Report) -> Result<()> {
    let claims: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let conflicts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for d in keys {
        let (addr, key) = (ep.addr, d.key.clone());
        let (claims, conflicts) = (claims.clone(), conflicts.clone());
        workers.push(tokio::spawn(async move {
            let mut daemon = Client::new(addr, &key);
            let mut bell = Doorbell::open(addr, &key).await?;
            while claims.lock().expect("claims").len() < tasks {
                let v = daemon
                    .send("mutation { claimNextTask { task { id } } }", json!({}))
                    .await?;
                if let Some(e) = v.get("errors") {
                    if e[0]["extensions"]["code"] == "CONFLICT" {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    return Err(Error::msg(format!("claimNextTask: {e}")));
                }
                match v["data"]["claimNextTask"]["task"]["id"].as_str() {
                    Some(id) => {
                        *claims
                            .lock()
                            .expect("claims")
                            .entry(id.to_owned())
                            .or_default() += 1;
                    }
                    None => {
                        // Nothing waiting: until the doorbell rings (or a poll's worth).
                        let _ = tokio::time::timeout(Duration::from_millis(500), bell.ring()).await;
                    }
                }
            }
            Ok::<(), Error>(())
        }));
    }
    let mut owner = Client::new(ep.addr, &ep.key);
    for _ in 0..tasks {
        owner
            .gql(
                "mutation { createTask(input: {name: \"storm\"}) { task { id } } }",
                json!({}),
            )
            .await?;
    }
    let created = started.elapsed();
    for w in workers {
        w.await
            .map_err(|e| Error::msg(format!("daemon task: {e}")))??;
    }
    let took = started.elapsed();
    let claims = claims.lock().expect("claims");
    let twice = claims.values().filter(|n| **n > 1).count();
    let conflicts = conflicts.load(Ordering::Relaxed);
    println!(
        "claim storm: {} daemons, {tasks} tasks created in {:.2} s, all claimed after {:.2} s; {conflicts} CONFLICTs, {twice} claimed twice",
        keys.len(),
        created.as_secs_f64(),
        took.as_secs_f64(),
    );
    report.metric("daemons.storm_seconds", took.as_secs_f64(), "s");
    report.metric("daemons.storm_conflicts", conflicts as f64, "");
    report.target(
        "daemons.storm_claimed",
        claims.len() as f64,
        true,
        tasks as f64,
    );
    report.target("daemons.storm_claimed_twice", twice as f64, false, 0.0);
    Ok(())
}
