//! `makima daemon` as a real process against a real `makima serve`: it heartbeats,
//! claims the tasks assigned to it, reports its command's output lines once each and
//! the task's end; restarted after a SIGKILL, it interrupts the task its earlier
//! process left RUNNING, and a resumed run reports its own output without a replay
//! of the first run's. It runs the code operations of the tasks whose code it holds
//! (rewind, restore, fork), again after a crash, refuses a hostile repository and takes
//! back a step the server did not apply.

mod common;
mod gitfix;

use std::path::{Path, PathBuf};

use common::TestApp;
use common::daemon::{Daemon, Owner, daemon_key, eventually, running_in_group};
use common::process::Spawned;
use gitfix::{TestRepo, git};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_daemons_report_output_and_end_their_tasks() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    // The daemons' workspaces lie outside the server's.
    let root = tempfile::tempdir().unwrap();

    let key1 = daemon_key(&app.url, "alice", "d1").await;
    let mut d1 = Daemon::start(
        server.addr,
        &key1,
        root.path(),
        Some("echo hello; echo oops 1>&2; exit 3"),
        "d1",
    );
    let d1_id = owner.online("d1").await;
    let failing = owner.create_task("fails", &d1_id).await;
    owner.ends(&failing, "FAILED").await;
    let mut output = owner.output(&failing).await;
    output.sort();
    assert_eq!(output, ["hello", "oops"], "each line once");
    let events = owner.events(&failing).await;
    let streams: Vec<_> = events
        .iter()
        .filter(|(kind, _)| kind == "OUTPUT")
        .map(|(_, d)| (d["text"].as_str().unwrap(), d["stream"].as_str().unwrap()))
        .collect();
    assert!(streams.contains(&("hello", "stdout")), "{events:?}");
    assert!(streams.contains(&("oops", "stderr")), "{events:?}");
    let (kind, last) = events.last().unwrap();
    assert_eq!(
        kind, "ERROR",
        "the exit status is reported last: {events:?}"
    );
    assert_eq!(last["exit"]["code"], 3);

    // A second daemon, with its own command, runs the task assigned to it.
    let key2 = daemon_key(&app.url, "alice", "d2").await;
    let d2_root = root.path().join("d2");
    let mut d2 = Daemon::start(
        server.addr,
        &key2,
        &d2_root,
        Some("echo \"hi $MAKIMA_TASK_NAME $MAKIMA_TASK_PLAN\"; pwd > where"),
        "d2",
    );
    let d2_id = owner.online("d2").await;
    let done = owner.create_task("greets", &d2_id).await;
    owner.ends(&done, "DONE").await;
    assert_eq!(owner.output(&done).await, ["hi greets p"]);
    let cwd = std::fs::read_to_string(d2_root.join("where")).unwrap();
    assert_eq!(
        Path::new(cwd.trim()),
        d2_root.canonicalize().unwrap(),
        "commands run in the workspace root"
    );
    // d1 did not take d2's task, and both heartbeat.
    assert_eq!(owner.output(&failing).await.len(), 2);
    let daemons = owner.daemons().await;
    for name in ["d1", "d2"] {
        assert!(
            daemons.iter().any(|(n, _, s)| n == name && s == "ONLINE"),
            "{daemons:?}"
        );
    }
    let data = server
        .ok(
            &app.key,
            "query($d: ID!) { daemon(id: $d) { version capabilities } }",
            json!({ "d": d1_id }),
        )
        .await;
    assert_eq!(data["daemon"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["daemon"]["capabilities"], json!(["exec", "code"]));

    assert!(d1.terminate().await, "SIGTERM stops the daemon cleanly");
    assert!(d2.terminate().await);
    assert!(server.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_restarts_without_duplicating_output() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let root = tempfile::tempdir().unwrap();
    // Prints three lines, then waits (at most a minute) until the test creates the
    // task's release file, then leaves a file of its own and prints one more.
    let command = "echo one; echo two; echo three; i=0; \
        while [ ! -e \"$MAKIMA_TASK_ID.release\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
        touch \"$MAKIMA_TASK_ID.ended-$$\"; echo after";
    let key = daemon_key(&app.url, "alice", "d3").await;
    let mut daemon = Daemon::start(server.addr, &key, root.path(), Some(command), "d3");
    let id = owner.online("d3").await;
    let task = owner.create_task("slow", &id).await;
    eventually("three lines reported", || async {
        (owner.output(&task).await.len() >= 3).then_some(())
    })
    .await;
    assert_eq!(owner.status(&task).await, "RUNNING");
    daemon.kill().await;

    // The restarted daemon finds the task its killed process left RUNNING and
    // interrupts it; nothing was reported twice.
    let mut daemon = Daemon::start(server.addr, &key, root.path(), Some(command), "d3'");
    owner.ends(&task, "INTERRUPTED").await;
    assert_eq!(owner.output(&task).await, ["one", "two", "three"]);
    // Let the first run's orphaned shell end.
    std::fs::write(root.path().join(format!("{task}.release")), "").unwrap();

    // Resumed, the task runs again on the daemon: the second run's lines are stored
    // (its batches have keys of their own, not the first run's).
    server
        .ok(
            &app.key,
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { status } } }",
            json!({ "t": task }),
        )
        .await;
    owner.ends(&task, "DONE").await;
    assert_eq!(
        owner.output(&task).await,
        ["one", "two", "three", "one", "two", "three", "after"]
    );
    // Both runs' shells ended (the first run's, orphaned by the SIGKILL, too).
    let ended = format!("{task}.ended-");
    eventually("both runs' shells ended", || async {
        let n = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&ended)
            })
            .count();
        (n == 2).then_some(())
    })
    .await;
    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doorbell_reconnects_after_a_server_restart() {
    use common::daemon::{serve_on, terminate};
    use common::process::{serve_command, spawn_listening};

    let app = TestApp::new().await;
    let server_root = app.dir.path().join("server");
    let (mut first, addr) = spawn_listening(serve_command(&app.url, &server_root)).await;
    let root = tempfile::tempdir().unwrap();
    let key = daemon_key(&app.url, "alice", "d4").await;
    // No polling to speak of: only the doorbell (and its reconnections) bring work.
    let mut daemon = Daemon::start_with(
        addr,
        &key,
        root.path(),
        Some("echo ran"),
        "d4",
        &["--poll-secs", "3600"],
    );
    let daemon_id = eventually("daemon d4 ONLINE", || async {
        let data = app
            .ok("{ daemons { nodes { id status } } }", json!({}))
            .await;
        let d = &data["daemons"]["nodes"][0];
        (d["status"] == "ONLINE").then(|| d["id"].as_str().unwrap().to_owned())
    })
    .await;
    let create = "mutation($n: String!, $d: ID) { createTask(input: {name: $n, daemonId: $d}) { task { id } } }";
    let status = |task: String| {
        let app = &app;
        async move {
            let data = app
                .ok(
                    "query($t: ID!) { task(id: $t) { status } }",
                    json!({ "t": task }),
                )
                .await;
            data["task"]["status"].as_str().unwrap().to_owned()
        }
    };
    let before =
        common::process::http_post(addr, &app.key, create, json!({ "n": "a", "d": daemon_id }))
            .await;
    let before = before["data"]["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the first task DONE", || async {
        (status(before.clone()).await == "DONE").then_some(())
    })
    .await;

    // The server stops; a task is created meanwhile (in this process, on the same
    // database); a new server comes up on the same port.
    assert!(terminate(&mut first).await);
    let during =
        app.ok(create, json!({ "n": "b", "d": daemon_id })).await["createTask"]["task"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let (mut second, again) = spawn_listening(serve_on(&app.url, &server_root, addr)).await;
    assert_eq!(again, addr);
    eventually(
        "the task created while the server was down DONE",
        || async { (status(during.clone()).await == "DONE").then_some(()) },
    )
    .await;
    assert!(daemon.terminate().await);
    assert!(terminate(&mut second).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kills_the_commands_and_interrupts_their_tasks() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let root = tempfile::tempdir().unwrap();
    let key = daemon_key(&app.url, "alice", "d5").await;
    // The command would outlive the test's patience by far; only the daemon ends it.
    let mut daemon = Daemon::start(
        server.addr,
        &key,
        root.path(),
        Some("echo $$ > pgid; echo started; sleep 300; echo never"),
        "d5",
    );
    let id = owner.online("d5").await;
    let task = owner.create_task("long", &id).await;
    eventually("the command started", || async {
        (owner.output(&task).await == ["started"]).then_some(())
    })
    .await;
    let pgid = std::fs::read_to_string(root.path().join("pgid")).unwrap();
    let pgid: u32 = pgid.trim().parse().unwrap();
    assert!(running_in_group(pgid) >= 1, "the command runs");
    assert!(daemon.terminate().await, "the daemon exits 0 on SIGTERM");
    assert_eq!(owner.status(&task).await, "INTERRUPTED");
    let events = owner.events(&task).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].0, "ERROR");
    // The command ran in a process group of its own (the shell's pid), now empty.
    eventually("the command's process group gone", || async {
        (running_in_group(pgid) == 0).then_some(())
    })
    .await;
    assert!(server.terminate().await);
}

// Code operations on the daemon's worktrees, run by `makima daemon`.

const REWIND: &str = "mutation($t: ID!, $i: Int) { rewindConversation(input: {taskId: $t, toMessageIndex: $i, rewindCode: true}) { messagesRemoved newMessageCount codeRewound codeOperation { id status commitSha error } event { id type } } }";
const RESTORE: &str = "mutation($e: ID!) { restoreConversation(input: {rewindEventId: $e}) { messageCount codeOperation { id status commitSha } event { type } } }";
const OPERATION: &str = "query($id: ID!) { codeOperation(id: $id) { id kind status commitSha branch savedRef restoreFrom directory worktreePath deadline error } }";

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

/// A PAUSED task on daemon `daemon` (key `key`) whose repository `repo` lives under the
/// daemon's `root`: 2 messages at checkpoint 1 (a.txt "one"), 4 at checkpoint 2 (a.txt
/// "two", b.txt), then an untracked c.txt. Returns (task id, first commit, second commit).
async fn task_on_daemon(
    owner: &Owner<'_>,
    key: &str,
    daemon: &str,
    root: &Path,
) -> (String, String, String) {
    let repo = TestRepo::new(root, "repo");
    let first = repo.commit("one", &[("a.txt", "one")]);
    let (_, daemon_id, _) = owner
        .daemons()
        .await
        .into_iter()
        .find(|(n, _, _)| n == daemon)
        .expect("the daemon");
    let server = owner.server;
    let task = server
        .ok(
            owner.key,
            "mutation($d: ID!) { createTask(input: {name: \"remote\", daemonId: $d, repository: \"repo\"}) { task { id } } }",
            json!({ "d": daemon_id }),
        )
        .await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .ok(
            key,
            "mutation($t: ID!) { claimTask(input: {taskId: $t}) { task { id } } }",
            json!({ "t": task }),
        )
        .await;
    let say = |n: usize| {
        let task = task.clone();
        async move {
            let messages: Vec<_> = (0..n)
                .map(|i| json!({ "role": "USER", "content": [{ "type": "text", "text": format!("m{i}") }] }))
                .collect();
            server
                .ok(
                    key,
                    "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount } }",
                    json!({ "t": task, "m": messages }),
                )
                .await;
        }
    };
    let checkpoint = |sha: String| {
        let task = task.clone();
        async move {
            server
                .ok(
                    key,
                    "mutation($t: ID!, $c: String!) { recordCheckpoint(input: {taskId: $t, commitSha: $c, message: \"cp\"}) { checkpoint { id } } }",
                    json!({ "t": task, "c": sha }),
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
    server
        .ok(
            key,
            "mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: PAUSED}) { task { status } } }",
            json!({ "t": task }),
        )
        .await;
    (task, first, second)
}

async fn message_count(owner: &Owner<'_>, task: &str) -> i64 {
    owner
        .server
        .ok(
            owner.key,
            "query($t: ID!) { task(id: $t) { conversation { totalCount } } }",
            json!({ "t": task }),
        )
        .await["task"]["conversation"]["totalCount"]
        .as_i64()
        .unwrap()
}

async fn operation(owner: &Owner<'_>, id: &serde_json::Value) -> serde_json::Value {
    owner
        .server
        .ok(owner.key, OPERATION, json!({ "id": id }))
        .await["codeOperation"]
        .clone()
}

/// Waits until the operation is DONE or FAILED; returns it.
async fn finished(owner: &Owner<'_>, id: &serde_json::Value) -> serde_json::Value {
    eventually(&format!("operation {id} finished"), || async {
        let op = operation(owner, id).await;
        (op["status"] != "QUEUED").then_some(op)
    })
    .await
}

/// The CODE_OPERATION_COMPLETED events of the owner's timeline for operation `id`.
async fn completions(owner: &Owner<'_>, id: &serde_json::Value) -> Vec<serde_json::Value> {
    let data = owner
        .server
        .ok(
            owner.key,
            "{ timeline(first: 100) { nodes { type data } } }",
            json!({}),
        )
        .await;
    data["timeline"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "CODE_OPERATION_COMPLETED" && e["data"]["codeOperationId"] == *id)
        .map(|e| e["data"].clone())
        .collect()
}

/// The daemon's journal of unfinished operations.
fn journal(root: &Path) -> Vec<String> {
    match std::fs::read_dir(root.join(".makima/daemon/ops")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    }
}

/// Alice's daemon `name`, with a workspace root of its own (kept while the returned
/// directory lives), started against `owner`'s server and seen ONLINE: (directory, root,
/// key, daemon, daemon id).
async fn start_daemon(
    app: &TestApp,
    owner: &Owner<'_>,
    name: &str,
) -> (tempfile::TempDir, PathBuf, String, Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let key = daemon_key(&app.url, "alice", name).await;
    let daemon = Daemon::start(owner.server.addr, &key, &root, None, name);
    let id = owner.online(name).await;
    (dir, root, key, daemon, id)
}

async fn journal_empty(root: &Path) {
    eventually("the daemon's journal empty", || async {
        journal(root).is_empty().then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rewinds_restores_and_forks_its_worktrees() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let (_dir, root, key, mut daemon, id) = start_daemon(&app, &owner, "c1").await;
    let data = server
        .ok(
            &app.key,
            "query($d: ID!) { daemon(id: $d) { capabilities } }",
            json!({ "d": id }),
        )
        .await;
    assert_eq!(data["daemon"]["capabilities"], json!(["code"]));
    let (task, first, second) = task_on_daemon(&owner, &key, "c1", &root).await;

    // Rewind with code: the daemon moves its worktree within the mutation's wait.
    let data = server
        .ok(&app.key, REWIND, json!({ "t": task, "i": 1 }))
        .await;
    let r = &data["rewindConversation"];
    assert_eq!(r["codeRewound"], true, "{r}");
    assert_eq!(r["messagesRemoved"], 2);
    assert_eq!(r["codeOperation"]["status"], "DONE");
    assert_eq!(r["codeOperation"]["commitSha"], first.as_str());
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), first);
    assert_eq!(read(&root, "repo/a.txt").as_deref(), Some("one"));
    assert_eq!(read(&root, "repo/b.txt"), None);
    assert_eq!(read(&root, "repo/c.txt"), None);
    assert_eq!(message_count(&owner, &task).await, 2);
    let op = &r["codeOperation"]["id"];
    assert_eq!(operation(&owner, op).await["status"], "DONE");
    let done = completions(&owner, op).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["status"], "DONE");
    journal_empty(&root).await;

    // Restore: files, edits and the untracked file come back.
    let data = server
        .ok(&app.key, RESTORE, json!({ "e": r["event"]["id"] }))
        .await;
    let r = &data["restoreConversation"];
    assert_eq!(r["codeOperation"]["status"], "DONE", "{r}");
    assert_eq!(r["codeOperation"]["commitSha"], second.as_str());
    assert_eq!(r["messageCount"], 4);
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), second);
    assert_eq!(read(&root, "repo/a.txt").as_deref(), Some("two"));
    assert_eq!(read(&root, "repo/b.txt").as_deref(), Some("b"));
    assert_eq!(read(&root, "repo/c.txt").as_deref(), Some("uncommitted"));
    journal_empty(&root).await;

    // A fork from the first checkpoint gets its worktree on the daemon.
    let cp = server
        .ok(
            &app.key,
            "query($t: ID!) { task(id: $t) { checkpoints { nodes { id commitSha } } } }",
            json!({ "t": task }),
        )
        .await["task"]["checkpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["commitSha"] == first.as_str())
        .unwrap()["id"]
        .clone();
    let data = server
        .ok(
            &app.key,
            "mutation($t: ID!, $c: ID!) { forkTask(input: {taskId: $t, checkpointId: $c}) { task { id worktreePath branch } codeOperation { kind status } } }",
            json!({ "t": task, "c": cp }),
        )
        .await;
    let f = &data["forkTask"];
    assert_eq!(f["codeOperation"]["kind"], "WORKTREE");
    assert_eq!(f["codeOperation"]["status"], "DONE", "{f}");
    let fork = f["task"]["id"].as_str().unwrap();
    let path = f["task"]["worktreePath"].as_str().expect("a worktree");
    assert_eq!(path, format!(".makima/worktrees/{fork}"));
    let worktree = root.join(path);
    assert_eq!(git(&worktree, &["rev-parse", "HEAD"]), first);
    assert_eq!(
        git(&worktree, &["branch", "--show-current"]),
        f["task"]["branch"].as_str().unwrap()
    );
    journal_empty(&root).await;

    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

/// A daemon killed, a rewind asked while it is away, and a crash between its git step
/// and its report (its journal says `running`): restarted, it runs the step again and
/// reports once; the operation ends DONE exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_finishes_the_operations_it_missed() {
    let app = TestApp::new().await;
    let mut server = Spawned::start_with(
        &app.url,
        &app.dir.path().join("server"),
        &["--code-operation-wait", "0"],
    )
    .await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let (_dir, root, key, mut daemon, _) = start_daemon(&app, &owner, "c2").await;
    let (task, first, second) = task_on_daemon(&owner, &key, "c2", &root).await;
    daemon.kill().await;

    // Asked while the daemon is down: QUEUED, nothing applied.
    let data = server
        .ok(&app.key, REWIND, json!({ "t": task, "i": 1 }))
        .await;
    let r = &data["rewindConversation"];
    assert_eq!(r["codeOperation"]["status"], "QUEUED", "{r}");
    assert_eq!(r["codeRewound"], false);
    let op = r["codeOperation"]["id"].clone();
    assert_eq!(message_count(&owner, &task).await, 4);
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), second);

    let mut daemon = Daemon::start(server.addr, &key, &root, None, "c2'");
    let done = finished(&owner, &op).await;
    assert_eq!(done["status"], "DONE", "{done}");
    assert_eq!(done["commitSha"], first.as_str());
    assert_eq!(message_count(&owner, &task).await, 2, "rewound");
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), first);
    journal_empty(&root).await;
    assert_eq!(completions(&owner, &op).await.len(), 1);

    // The restore is queued; the daemon "crashes" after its git step (the test runs the
    // step and leaves the journal entry a daemon writes before it).
    assert!(daemon.terminate().await);
    let event = server
        .ok(
            &app.key,
            "{ timeline(first: 100) { nodes { id type } } }",
            json!({}),
        )
        .await["timeline"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["type"] == "CONVERSATION_REWOUND")
        .unwrap()["id"]
        .clone();
    let data = server.ok(&app.key, RESTORE, json!({ "e": event })).await;
    let restore = &data["restoreConversation"]["codeOperation"];
    assert_eq!(restore["status"], "QUEUED", "{data}");
    let op = restore["id"].clone();
    let fields = operation(&owner, &op).await;
    let s = |k: &str| fields[k].as_str();
    let step = makima::git::steps::Step::of(&makima::git::steps::Fields {
        kind: s("kind").unwrap(),
        directory: s("directory"),
        commit_sha: s("commitSha").unwrap_or(""),
        branch: s("branch"),
        saved_ref: s("savedRef"),
        restore_from: s("restoreFrom"),
        worktree_path: s("worktreePath"),
    })
    .unwrap();
    step.run(&root).await.expect("the step");
    let ops = root.join(".makima/daemon/ops");
    std::fs::create_dir_all(&ops).unwrap();
    let entry = json!({
        "op": {
            "id": op, "kind": fields["kind"], "commit_sha": fields["commitSha"],
            "branch": fields["branch"], "saved_ref": fields["savedRef"],
            "restore_from": fields["restoreFrom"], "directory": fields["directory"],
            "worktree_path": fields["worktreePath"], "deadline": fields["deadline"],
            "task_id": task,
        },
        "state": "running",
    });
    std::fs::write(
        ops.join(format!("{}.json", op.as_str().unwrap())),
        entry.to_string(),
    )
    .unwrap();

    let mut daemon = Daemon::start(server.addr, &key, &root, None, "c2''");
    let done = finished(&owner, &op).await;
    assert_eq!(done["status"], "DONE", "{done}");
    assert_eq!(done["commitSha"], second.as_str());
    assert_eq!(message_count(&owner, &task).await, 4);
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), second);
    assert_eq!(read(&root, "repo/c.txt").as_deref(), Some("uncommitted"));
    journal_empty(&root).await;
    assert_eq!(completions(&owner, &op).await.len(), 1);

    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

/// No daemon: the operation ends FAILED at its deadline, the conversation unchanged. A
/// daemon whose journal says it reported DONE for it (its step ran, the server never
/// applied it) takes the step back when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_past_its_deadline_fails_and_the_daemon_undoes_it() {
    let app = TestApp::new().await;
    let mut server = Spawned::start_with(
        &app.url,
        &app.dir.path().join("server"),
        &[
            "--code-operation-wait",
            "0",
            "--code-operation-timeout",
            "2",
        ],
    )
    .await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let (_dir, root, key, mut daemon, _) = start_daemon(&app, &owner, "c3").await;
    let (task, first, second) = task_on_daemon(&owner, &key, "c3", &root).await;
    daemon.kill().await;

    let data = server
        .ok(&app.key, REWIND, json!({ "t": task, "i": 1 }))
        .await;
    let op = data["rewindConversation"]["codeOperation"]["id"].clone();
    // The step ran (by the test, standing in for a daemon that then lost its report).
    let fields = operation(&owner, &op).await;
    let step = makima::git::steps::Step::Restore {
        dir: fields["directory"].as_str().unwrap().to_owned(),
        commit: fields["commitSha"].as_str().unwrap().to_owned(),
        saved_ref: fields["savedRef"].as_str().unwrap().to_owned(),
    };
    assert_eq!(step.run(&root).await.unwrap(), first);
    let ops = root.join(".makima/daemon/ops");
    std::fs::create_dir_all(&ops).unwrap();
    let entry = json!({
        "op": {
            "id": op, "kind": "RESTORE", "commit_sha": fields["commitSha"],
            "saved_ref": fields["savedRef"], "directory": fields["directory"],
            "deadline": fields["deadline"],
        },
        "state": "reported",
        "commit": first,
    });
    std::fs::write(
        ops.join(format!("{}.json", op.as_str().unwrap())),
        entry.to_string(),
    )
    .unwrap();

    let failed = finished(&owner, &op).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"].as_str().unwrap().contains("deadline"),
        "{failed}"
    );
    assert_eq!(message_count(&owner, &task).await, 4, "nothing applied");
    let done = completions(&owner, &op).await;
    assert_eq!(done.len(), 1, "{done:?}");

    let mut daemon = Daemon::start(server.addr, &key, &root, None, "c3'");
    journal_empty(&root).await;
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), second);
    assert_eq!(read(&root, "repo/a.txt").as_deref(), Some("two"));
    assert_eq!(read(&root, "repo/c.txt").as_deref(), Some("uncommitted"));

    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

/// A repository whose configuration would run a program: the daemon refuses it, the
/// operation ends FAILED and the program never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refuses_a_hostile_repository() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let (dir, root, key, mut daemon, _) = start_daemon(&app, &owner, "c4").await;
    let (task, _, second) = task_on_daemon(&owner, &key, "c4", &root).await;
    let marker = dir.path().join("ran");
    let repo = root.join("repo");
    git(
        &repo,
        &[
            "config",
            "filter.x.clean",
            &format!("touch {}", marker.display()),
        ],
    );
    git(
        &repo,
        &[
            "config",
            "filter.x.smudge",
            &format!("touch {}", marker.display()),
        ],
    );
    std::fs::write(repo.join(".gitattributes"), "* filter=x\n").unwrap();

    let data = server
        .ok(&app.key, REWIND, json!({ "t": task, "i": 1 }))
        .await;
    let op = data["rewindConversation"]["codeOperation"]["id"].clone();
    let failed = finished(&owner, &op).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("not a git repository makima can use"),
        "{failed}"
    );
    assert_eq!(data["rewindConversation"]["codeRewound"], false);
    assert_eq!(message_count(&owner, &task).await, 4);
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), second);
    assert!(!marker.exists(), "the filter never ran");
    journal_empty(&root).await;

    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

/// `--exec` runs a task whose code is on the daemon in its repository's directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_in_the_tasks_repository() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("repo")).unwrap();
    let key = daemon_key(&app.url, "alice", "c5").await;
    let mut daemon = Daemon::start(server.addr, &key, &root, Some("pwd"), "c5");
    let id = owner.online("c5").await;
    let create = "mutation($d: ID!, $r: String) { createTask(input: {name: \"x\", daemonId: $d, repository: $r}) { task { id } } }";
    let in_repo = server
        .ok(&app.key, create, json!({ "d": id, "r": "repo" }))
        .await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner.ends(&in_repo, "DONE").await;
    assert_eq!(
        owner.output(&in_repo).await,
        [root.join("repo").display().to_string()]
    );
    // A repository that is not there: the task fails without running the command.
    let missing = server
        .ok(&app.key, create, json!({ "d": id, "r": "gone" }))
        .await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner.ends(&missing, "FAILED").await;
    assert!(owner.output(&missing).await.is_empty());
    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

/// The server refuses the daemon's DONE report when it applies it (the conversation
/// changed while the operation waited): the operation ends FAILED and the daemon, which
/// follows what it reported, puts its worktree back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_report_the_server_refuses_is_undone() {
    let app = TestApp::new().await;
    let mut server = Spawned::start_with(
        &app.url,
        &app.dir.path().join("server"),
        &["--code-operation-wait", "0"],
    )
    .await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let (_dir, root, key, mut daemon, _) = start_daemon(&app, &owner, "c6").await;
    let (task, _, second) = task_on_daemon(&owner, &key, "c6", &root).await;
    daemon.kill().await;

    let data = server
        .ok(&app.key, REWIND, json!({ "t": task, "i": 1 }))
        .await;
    let op = data["rewindConversation"]["codeOperation"]["id"].clone();
    server
        .ok(
            &key,
            "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount } }",
            json!({ "t": task, "m": [{ "role": "USER", "content": [{ "type": "text", "text": "late" }] }] }),
        )
        .await;

    let mut daemon = Daemon::start(server.addr, &key, &root, None, "c6'");
    let failed = finished(&owner, &op).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("changed"),
        "{failed}"
    );
    assert_eq!(message_count(&owner, &task).await, 5, "nothing rewound");
    journal_empty(&root).await;
    assert_eq!(git(&root.join("repo"), &["rev-parse", "HEAD"]), second);
    assert_eq!(read(&root, "repo/a.txt").as_deref(), Some("two"));
    assert_eq!(read(&root, "repo/b.txt").as_deref(), Some("b"));
    assert_eq!(read(&root, "repo/c.txt").as_deref(), Some("uncommitted"));

    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}
