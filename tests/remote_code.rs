//! Code operations on a daemon's worktree: queued for the daemon, run by it with the
//! git module under its own workspace root (outside the server's), and applied when it
//! reports. The daemon here is the test itself, acting through its daemon key exactly
//! as `makima daemon` does; `makima::git::steps` is what both run.

mod common;
mod gitfix;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::ws::{Proto, WsClient};
use common::{TestApp, post_to};
use gitfix::{TestRepo, git};
use makima::domain::keys;
use makima::git::steps::{Fields, Step};
use serde_json::{Value, json};

const OPS: &str = "{ daemonWork { codeOperations { id kind status commitSha branch savedRef restoreFrom directory worktreePath task { id } } } }";
const COMPLETE: &str = "mutation($id: ID!, $s: CodeOperationStatus!, $c: String, $e: String) { completeCodeOperation(input: {codeOperationId: $id, status: $s, commitSha: $c, error: $e}) { codeOperation { id status } } }";
const REWIND: &str = "mutation($t: ID!, $i: Int) { rewindConversation(input: {taskId: $t, toMessageIndex: $i, rewindCode: true}) { messagesRemoved newMessageCount codeRewound codeOperation { id kind status commitSha savedRef error daemon { name } } event { id type } } }";
const RESTORE: &str = "mutation($e: ID!) { restoreConversation(input: {rewindEventId: $e}) { messageCount codeOperation { id status commitSha } event { type } } }";
const SIGNALS: &str = "subscription { workAvailable { cursor } }";
const COMPLETED: &str =
    "subscription { historyEvents(filter: {types: [CODE_OPERATION_COMPLETED]}) { data } }";

/// A daemon: its key and its own workspace root (a directory the server never uses).
struct Daemon {
    key: String,
    root: tempfile::TempDir,
}

impl Daemon {
    fn root(&self) -> PathBuf {
        self.root.path().canonicalize().unwrap()
    }

    /// Runs every code operation `daemonWork` lists and reports each; returns them.
    async fn run_queued(&self, t: &TestApp) -> Vec<Value> {
        let ops = t.ok_as(&self.key, OPS, json!({})).await["daemonWork"]["codeOperations"]
            .as_array()
            .unwrap()
            .clone();
        for op in &ops {
            let step = step_of(op);
            let commit = step.run(&self.root()).await.expect("the git step");
            self.complete(t, op, "DONE", Some(&commit), None).await;
        }
        ops
    }

    async fn complete(
        &self,
        t: &TestApp,
        op: &Value,
        status: &str,
        commit: Option<&str>,
        error: Option<&str>,
    ) -> Value {
        t.ok_as(
            &self.key,
            COMPLETE,
            json!({ "id": op["id"], "s": status, "c": commit, "e": error }),
        )
        .await
    }
}

fn step_of(op: &Value) -> Step {
    let s = |k: &str| op[k].as_str();
    Step::of(&Fields {
        kind: s("kind").unwrap(),
        directory: s("directory"),
        commit_sha: s("commitSha").unwrap(),
        branch: s("branch"),
        saved_ref: s("savedRef"),
        restore_from: s("restoreFrom"),
        worktree_path: s("worktreePath"),
    })
    .expect("a complete operation")
}

/// A PAUSED task on daemon "d1" whose repository `repo` lives under the daemon's root:
/// 2 messages at checkpoint 1 (a.txt "one"), 4 at checkpoint 2 (a.txt "two", b.txt),
/// then an untracked c.txt. Returns (daemon, task id, first commit, second commit).
async fn task_on_daemon(t: &TestApp) -> (Daemon, String, String, String) {
    let key = keys::create_for_daemon(&t.app.store, "alice", "d1")
        .await
        .unwrap()
        .key;
    let daemon = Daemon {
        key,
        root: tempfile::tempdir().unwrap(),
    };
    let repo = TestRepo::new(&daemon.root(), "repo");
    let first = repo.commit("one", &[("a.txt", "one")]);
    let d1 =
        t.ok("{ daemons { nodes { id name } } }", json!({})).await["daemons"]["nodes"][0]["id"]
            .clone();
    let task = t
        .ok(
            "mutation($d: ID!) { createTask(input: {name: \"remote\", daemonId: $d, repository: \"repo\"}) { task { id repository daemon { name } } } }",
            json!({ "d": d1 }),
        )
        .await["createTask"]["task"]
        .clone();
    assert_eq!(task["repository"], "repo");
    assert_eq!(task["daemon"]["name"], "d1");
    let id = task["id"].as_str().unwrap().to_owned();
    let k = &daemon.key;
    t.ok_as(
        k,
        "mutation($t: ID!) { claimTask(input: {taskId: $t}) { task { id } } }",
        json!({ "t": id }),
    )
    .await;
    let say = |n: usize| {
        let id = id.clone();
        async move {
            let messages: Vec<Value> = (0..n)
                .map(|i| json!({ "role": "USER", "content": [{ "type": "text", "text": format!("m{i}") }] }))
                .collect();
            t.ok_as(
                k,
                "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount } }",
                json!({ "t": id, "m": messages }),
            )
            .await;
        }
    };
    let checkpoint = |sha: String| {
        let id = id.clone();
        async move {
            t.ok_as(
                k,
                "mutation($t: ID!, $c: String!) { recordCheckpoint(input: {taskId: $t, commitSha: $c, message: \"cp\"}) { checkpoint { id } } }",
                json!({ "t": id, "c": sha }),
            )
            .await;
        }
    };
    say(2).await;
    checkpoint(first.clone()).await;
    let second = repo.commit("two", &[("a.txt", "two"), ("b.txt", "b")]);
    say(2).await;
    checkpoint(second.clone()).await;
    repo.write("c.txt", "uncommitted");
    t.ok_as(
        k,
        "mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: PAUSED}) { task { status } } }",
        json!({ "t": id }),
    )
    .await;
    (daemon, id, first, second)
}

async fn message_count(t: &TestApp, task: &str) -> i64 {
    t.ok(
        "query($t: ID!) { task(id: $t) { conversation { totalCount } } }",
        json!({ "t": task }),
    )
    .await["task"]["conversation"]["totalCount"]
        .as_i64()
        .unwrap()
}

async fn timeline_types(t: &TestApp) -> Vec<String> {
    t.timeline()
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

/// A daemon that answers within the mutation's wait: the rewind comes back DONE with
/// the conversation rewound; the undo puts files, edits and untracked files back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_daemon_rewinds_and_restores_its_worktree() {
    let t = TestApp::new().await;
    let (daemon, task, first, second) = task_on_daemon(&t).await;
    let server = t.serve().await;
    let mut bell = WsClient::open(server.addr, Proto::TransportWs, &daemon.key).await;
    bell.subscribe("w", SIGNALS, json!({})).await;
    server.subscribers_at_least(1).await;

    let serve_one = async {
        loop {
            bell.next_data("w").await;
            if !daemon.run_queued(&t).await.is_empty() {
                break;
            }
        }
    };
    let rewind = t.ok(REWIND, json!({ "t": task, "i": 1 }));
    let (data, ()) = tokio::join!(rewind, serve_one);
    let r = &data["rewindConversation"];
    assert_eq!(r["codeRewound"], true, "{r}");
    assert_eq!(r["messagesRemoved"], 2);
    assert_eq!(r["newMessageCount"], 2);
    assert_eq!(r["codeOperation"]["status"], "DONE");
    assert_eq!(r["codeOperation"]["commitSha"], first.as_str());
    assert_eq!(r["codeOperation"]["daemon"]["name"], "d1");
    assert_eq!(r["event"]["type"], "CONVERSATION_REWOUND");
    let root = daemon.root();
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), first);
    assert_eq!(read(&root, "repo/a.txt").as_deref(), Some("one"));
    assert_eq!(read(&root, "repo/b.txt"), None);
    assert_eq!(read(&root, "repo/c.txt"), None);
    assert_eq!(message_count(&t, &task).await, 2);
    let types = timeline_types(&t).await;
    let tail: Vec<&str> = types
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "CODE_OPERATION_QUEUED",
            "CONVERSATION_REWOUND",
            "CODE_OPERATION_COMPLETED"
        ]
    );

    let serve_one = async {
        loop {
            bell.next_data("w").await;
            if !daemon.run_queued(&t).await.is_empty() {
                break;
            }
        }
    };
    let restore = t.ok(RESTORE, json!({ "e": r["event"]["id"] }));
    let (data, ()) = tokio::join!(restore, serve_one);
    let r = &data["restoreConversation"];
    assert_eq!(r["codeOperation"]["status"], "DONE", "{r}");
    assert_eq!(r["codeOperation"]["commitSha"], second.as_str());
    assert_eq!(r["messageCount"], 4);
    assert_eq!(r["event"]["type"], "CONVERSATION_RESTORED");
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), second);
    assert_eq!(read(&root, "repo/a.txt").as_deref(), Some("two"));
    assert_eq!(read(&root, "repo/b.txt").as_deref(), Some("b"));
    assert_eq!(read(&root, "repo/c.txt").as_deref(), Some("uncommitted"));
    assert_eq!(message_count(&t, &task).await, 4);
}

/// A daemon slower than the wait: the mutation answers QUEUED with nothing applied, a
/// second code operation on the task is CONFLICT, and the rewind lands when the daemon
/// reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_daemon_leaves_the_operation_queued_until_it_reports() {
    let t = TestApp::configured(8, |app| app.code_operation_wait = Duration::ZERO).await;
    let (daemon, task, first, _) = task_on_daemon(&t).await;
    let server = t.serve().await;
    let mut done = WsClient::open(server.addr, Proto::TransportWs, &t.key).await;
    done.subscribe("c", COMPLETED, json!({})).await;
    server.subscribers_at_least(1).await;

    let data = t.ok(REWIND, json!({ "t": task, "i": 1 })).await;
    let r = &data["rewindConversation"];
    assert_eq!(r["codeRewound"], false);
    assert_eq!(r["messagesRemoved"], 0);
    assert_eq!(r["newMessageCount"], 4);
    assert_eq!(r["codeOperation"]["status"], "QUEUED");
    assert_eq!(r["event"]["type"], "CODE_OPERATION_QUEUED");
    assert_eq!(
        message_count(&t, &task).await,
        4,
        "nothing applied while QUEUED"
    );
    let cp = t
        .ok(
            "query($t: ID!) { task(id: $t) { checkpoints { nodes { id } } } }",
            json!({ "t": task }),
        )
        .await["task"]["checkpoints"]["nodes"][0]["id"]
        .clone();
    t.fails(
        "CONFLICT",
        "mutation($t: ID!, $c: ID!) { rewindTask(input: {taskId: $t, checkpointId: $c}) { task { id } } }",
        json!({ "t": task, "c": cp }),
    )
    .await;

    let ops = daemon.run_queued(&t).await;
    assert_eq!(ops.len(), 1);
    let completed = done.next_data("c").await;
    assert_eq!(completed["historyEvents"]["data"]["status"], "DONE");
    let op = t
        .ok(
            "query($id: ID!) { codeOperation(id: $id) { status commitSha } }",
            json!({ "id": ops[0]["id"] }),
        )
        .await;
    assert_eq!(op["codeOperation"]["status"], "DONE");
    assert_eq!(op["codeOperation"]["commitSha"], first.as_str());
    assert_eq!(message_count(&t, &task).await, 2, "applied with DONE");
    assert!(
        timeline_types(&t)
            .await
            .contains(&"CONVERSATION_REWOUND".to_owned())
    );
    // The daemon's list is empty once it reported.
    assert!(daemon.run_queued(&t).await.is_empty());
}

/// A FAILED report changes nothing but the operation; a daemon that never reports
/// sees its operation FAILED at the deadline, the conversation unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_timed_out_operations_apply_nothing() {
    let t = TestApp::configured(8, |app| {
        app.code_operation_wait = Duration::ZERO;
        app.code_operation_timeout = Duration::from_secs(1);
    })
    .await;
    let (daemon, task, _, second) = task_on_daemon(&t).await;
    let server = t.serve().await;
    let mut done = WsClient::open(server.addr, Proto::TransportWs, &t.key).await;
    done.subscribe("c", COMPLETED, json!({})).await;
    server.subscribers_at_least(1).await;

    t.ok(REWIND, json!({ "t": task, "i": 1 })).await;
    let op = t.ok_as(&daemon.key, OPS, json!({})).await["daemonWork"]["codeOperations"][0].clone();
    daemon
        .complete(&t, &op, "FAILED", None, Some("disk full"))
        .await;
    let completed = &done.next_data("c").await["historyEvents"]["data"];
    assert_eq!(completed["status"], "FAILED");
    assert_eq!(completed["error"], "disk full");
    assert_eq!(message_count(&t, &task).await, 4);
    // The same report again is accepted; another one is CONFLICT.
    daemon
        .complete(&t, &op, "FAILED", None, Some("disk full"))
        .await;
    t.fails_as(
        &daemon.key,
        "CONFLICT",
        COMPLETE,
        json!({ "id": op["id"], "s": "DONE", "c": second }),
    )
    .await;

    // Nobody answers: FAILED at the (1 s) deadline, nothing applied.
    t.ok(REWIND, json!({ "t": task, "i": 1 })).await;
    let completed = &done.next_data("c").await["historyEvents"]["data"];
    assert_eq!(completed["status"], "FAILED");
    assert!(
        completed["error"].as_str().unwrap().contains("deadline"),
        "{completed}"
    );
    assert_eq!(message_count(&t, &task).await, 4);
    assert_eq!(
        git(&daemon.root().join("repo"), &["rev-parse", "HEAD"]),
        second
    );
}

/// A fork of a daemon's task gets its worktree on the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_gets_its_worktree_on_the_daemon() {
    let t = TestApp::new().await;
    let (daemon, task, first, _) = task_on_daemon(&t).await;
    let server = t.serve().await;
    let mut bell = WsClient::open(server.addr, Proto::TransportWs, &daemon.key).await;
    bell.subscribe("w", SIGNALS, json!({})).await;
    server.subscribers_at_least(1).await;
    let cp = t
        .ok(
            "query($t: ID!) { task(id: $t) { checkpoints { nodes { id } } } }",
            json!({ "t": task }),
        )
        .await["task"]["checkpoints"]["nodes"][0]["id"]
        .clone();
    let serve_one = async {
        loop {
            bell.next_data("w").await;
            if !daemon.run_queued(&t).await.is_empty() {
                break;
            }
        }
    };
    let fork = t.ok(
        "mutation($t: ID!, $c: ID!) { forkTask(input: {taskId: $t, checkpointId: $c}) { task { id worktreePath branch daemon { name } } codeOperation { kind status } } }",
        json!({ "t": task, "c": cp }),
    );
    let (data, ()) = tokio::join!(fork, serve_one);
    let f = &data["forkTask"];
    assert_eq!(f["codeOperation"]["kind"], "WORKTREE");
    assert_eq!(f["codeOperation"]["status"], "DONE");
    assert_eq!(f["task"]["daemon"]["name"], "d1");
    let path = f["task"]["worktreePath"].as_str().expect("a worktree");
    assert!(path.starts_with(".makima/worktrees/"), "{path}");
    let worktree = daemon.root().join(path);
    assert_eq!(git(&worktree, &["rev-parse", "HEAD"]), first);
    assert_eq!(
        git(&worktree, &["branch", "--show-current"]),
        f["task"]["branch"].as_str().unwrap()
    );
}

/// Only the daemon that holds the worktree reports on its operations.
#[tokio::test]
async fn reports_come_only_from_the_operations_daemon() {
    let t = TestApp::configured(8, |app| app.code_operation_wait = Duration::ZERO).await;
    let (daemon, task, first, _) = task_on_daemon(&t).await;
    t.ok(REWIND, json!({ "t": task, "i": 1 })).await;
    let op = t.ok_as(&daemon.key, OPS, json!({})).await["daemonWork"]["codeOperations"][0].clone();
    let other = keys::create_for_daemon(&t.app.store, "alice", "d2")
        .await
        .unwrap()
        .key;
    assert_eq!(
        t.ok_as(&other, OPS, json!({})).await["daemonWork"]["codeOperations"],
        json!([])
    );
    let vars = json!({ "id": op["id"], "s": "DONE", "c": first });
    t.fails_as(&other, "FORBIDDEN", COMPLETE, vars.clone())
        .await;
    t.fails("FORBIDDEN", COMPLETE, vars.clone()).await;
    let stranger = keys::create_for_daemon(&t.app.store, "mallory", "d1")
        .await
        .unwrap()
        .key;
    t.fails_as(&stranger, "NOT_FOUND", COMPLETE, vars).await;
    t.fails_as(
        &daemon.key,
        "BAD_USER_INPUT",
        COMPLETE,
        json!({ "id": op["id"], "s": "DONE" }),
    )
    .await;
}

/// The daemon refuses a repository whose configuration would run a program, as the
/// server does: the step fails before git touches the worktree.
#[tokio::test]
async fn a_hostile_repository_on_the_daemon_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path().canonicalize().unwrap();
    let repo = TestRepo::new(&root, "repo");
    let head = repo.commit("one", &[("a.txt", "one")]);
    let marker = root.join("ran");
    git(
        &repo.dir,
        &[
            "config",
            "filter.x.clean",
            &format!("touch {}", marker.display()),
        ],
    );
    repo.write(".gitattributes", "* filter=x\n");
    let step = Step::Restore {
        dir: "repo".into(),
        commit: head,
        saved_ref: "refs/makima/saved/t".into(),
    };
    assert!(step.run(&root).await.is_err());
    assert!(!marker.exists(), "the filter never ran");
    let outside = Step::Restore {
        dir: "../elsewhere".into(),
        commit: "HEAD".into(),
        saved_ref: "refs/makima/saved/t".into(),
    };
    assert!(outside.run(&root).await.is_err());
}

/// Two server processes on one database: the daemon is connected to the second, the
/// rewind is asked of the first; the operation reaches the daemon and its report
/// reaches the first, which answers DONE within its wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_another_server_gets_and_finishes_the_operation() {
    let t = TestApp::new().await;
    let (daemon, task, first, _) = task_on_daemon(&t).await;
    let other_root = tempfile::tempdir().unwrap();
    let other = makima::open(&t.url, 4, other_root.path()).await.unwrap();
    let other = makima::server::AppState::new(other);
    let other_router = makima::server::router(other.clone());
    let other_server = common::ws::TestServer::start(other).await;
    let mut bell = WsClient::open(other_server.addr, Proto::TransportWs, &daemon.key).await;
    bell.subscribe("w", SIGNALS, json!({})).await;
    other_server.subscribers_at_least(1).await;

    let serve_one = async {
        loop {
            bell.next_data("w").await;
            let ops = post_to(&other_router, &daemon.key, OPS, json!({})).await["daemonWork"]
                ["codeOperations"]
                .as_array()
                .unwrap()
                .clone();
            for op in &ops {
                let commit = step_of(op).run(&daemon.root()).await.unwrap();
                post_to(
                    &other_router,
                    &daemon.key,
                    COMPLETE,
                    json!({ "id": op["id"], "s": "DONE", "c": commit }),
                )
                .await;
            }
            if !ops.is_empty() {
                break;
            }
        }
    };
    let (data, ()) = tokio::join!(t.ok(REWIND, json!({ "t": task, "i": 1 })), serve_one);
    let r = &data["rewindConversation"];
    assert_eq!(r["codeRewound"], true, "{r}");
    assert_eq!(r["codeOperation"]["commitSha"], first.as_str());
    assert_eq!(message_count(&t, &task).await, 2);
}

/// A task continuing a daemon's task gets its new worktree on that daemon, from the
/// source's worktree; naming another daemon is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_task_gets_its_worktree_on_the_sources_daemon() {
    let t = TestApp::new().await;
    let (daemon, task, _, second) = task_on_daemon(&t).await;
    keys::create_for_daemon(&t.app.store, "alice", "d2")
        .await
        .unwrap();
    let d2 = t.ok("{ daemons { nodes { id name } } }", json!({})).await["daemons"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "d2")
        .unwrap()["id"]
        .clone();
    let create = "mutation($s: ID!, $d: ID) { createTask(input: {name: \"next\", continueFromTaskId: $s, daemonId: $d}) { task { id worktreePath branch daemon { name } } codeOperation { kind status commitSha } } }";
    t.fails("BAD_USER_INPUT", create, json!({ "s": task, "d": d2 }))
        .await;

    let server = t.serve().await;
    let mut bell = WsClient::open(server.addr, Proto::TransportWs, &daemon.key).await;
    bell.subscribe("w", SIGNALS, json!({})).await;
    server.subscribers_at_least(1).await;
    let serve_one = async {
        loop {
            bell.next_data("w").await;
            if !daemon.run_queued(&t).await.is_empty() {
                break;
            }
        }
    };
    let (data, ()) = tokio::join!(t.ok(create, json!({ "s": task })), serve_one);
    let c = &data["createTask"];
    assert_eq!(c["codeOperation"]["kind"], "WORKTREE");
    assert_eq!(c["codeOperation"]["status"], "DONE", "{c}");
    assert_eq!(c["codeOperation"]["commitSha"], second.as_str());
    assert_eq!(c["task"]["daemon"]["name"], "d1");
    let path = c["task"]["worktreePath"].as_str().expect("a worktree");
    let worktree = daemon.root().join(path);
    assert_eq!(git(&worktree, &["rev-parse", "HEAD"]), second);
    assert_eq!(
        git(&worktree, &["branch", "--show-current"]),
        c["task"]["branch"].as_str().unwrap()
    );
}
