//! Daemons: daemon keys, what a daemon key may do (FORBIDDEN outside its daemon's
//! work), assignment, atomic claims, heartbeats and the sweep, isolation between
//! owners, and the workAvailable doorbell.

mod common;

use common::ws::{Proto, WsClient};
use common::{TestApp, ids, post_to};
use futures_util::future::join_all;
use makima::domain::App;
use makima::server::{AppState, router};
use serde_json::{Value, json};

const HEARTBEAT: &str = "mutation($v: String, $c: [String!]) { heartbeatDaemon(input: {version: $v, capabilities: $c}) { daemon { id name status lastSeenAt version capabilities } } }";
const CLAIM: &str =
    "mutation($t: ID!) { claimTask(input: {taskId: $t}) { task { id status daemonId } } }";
const DAEMON: &str = "query($id: ID!) { daemon(id: $id) { id name status lastSeenAt version capabilities createdAt currentTasks(first: 100) { nodes { id } } } }";
const TASK: &str = "query($t: ID!) { task(id: $t) { id status daemonId daemon { id name } conversation(first: 100) { totalCount } events(first: 100) { totalCount } checkpoints(first: 100) { totalCount } } }";
const APPEND_MESSAGES: &str = "mutation($t: ID!) { appendMessages(input: {taskId: $t, messages: [{role: ASSISTANT, content: [{type: \"text\", text: \"hi\"}]}]}) { messageCount } }";
const APPEND_EVENTS: &str = "mutation($t: ID!) { appendTaskEvents(input: {taskId: $t, events: [{type: OUTPUT, data: {i: 1}}]}) { events { sequence } } }";
const WORK: &str = "subscription($a: String) { workAvailable(after: $a) { cursor } }";

/// Creates a task assigned to daemon `daemon` (must succeed); returns its id.
async fn task_on(t: &TestApp, name: &str, daemon: &str) -> String {
    let data = t
        .ok(
            "mutation($n: String!, $d: ID) { createTask(input: {name: $n, daemonId: $d}) { task { id daemonId daemon { id } } } }",
            json!({ "n": name, "d": daemon }),
        )
        .await;
    let task = &data["createTask"]["task"];
    assert_eq!(task["daemonId"], daemon);
    assert_eq!(task["daemon"]["id"], daemon);
    task["id"].as_str().unwrap().to_owned()
}

/// The task as the default owner sees it.
async fn task(t: &TestApp, id: &str) -> Value {
    t.ok(TASK, json!({ "t": id })).await["task"].clone()
}

/// The daemon as the default owner sees it.
async fn daemon(t: &TestApp, id: &str) -> Value {
    t.ok(DAEMON, json!({ "id": id })).await["daemon"].clone()
}

/// The TASK_STATUS_CHANGED events of `task` in the timeline, oldest first.
async fn status_changes(t: &TestApp, task: &str) -> Vec<Value> {
    t.timeline()
        .await
        .into_iter()
        .filter(|e| e["type"] == "TASK_STATUS_CHANGED" && e["task"]["id"] == task)
        .map(|e| e["data"].clone())
        .collect()
}

#[tokio::test]
async fn a_daemon_key_names_one_daemon_per_owner_and_name() {
    let t = TestApp::new().await;
    let (k1, d1) = t.daemon_key("alice", "builder").await;
    let (k2, d2) = t.daemon_key("alice", "builder").await;
    assert_ne!(k1, k2, "each key is new");
    assert_eq!(d1, d2, "the same name is the same daemon");
    let (_, other) = t.daemon_key("alice", "tester").await;
    assert_ne!(other, d1);
    let (bobs_key, bobs) = t.daemon_key("bob", "builder").await;
    assert_ne!(
        bobs, d1,
        "another owner's daemon of the same name is another daemon"
    );

    // Both keys act as that daemon; bob's acts as his.
    for key in [&k1, &k2] {
        let data = t.ok_as(key, HEARTBEAT, json!({})).await;
        assert_eq!(data["heartbeatDaemon"]["daemon"]["id"], d1);
        assert_eq!(data["heartbeatDaemon"]["daemon"]["name"], "builder");
    }
    let data = t.ok_as(&bobs_key, HEARTBEAT, json!({})).await;
    assert_eq!(data["heartbeatDaemon"]["daemon"]["id"], bobs);

    // The owner sees its two daemons, oldest first; bob sees his one.
    let data = t
        .ok(
            "{ daemons(first: 10) { totalCount nodes { id name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["daemons"]["totalCount"], 2);
    assert_eq!(ids(&data["daemons"]["nodes"]), vec![d1.clone(), other]);
    let bob = t.key_for("bob").await;
    let data = t
        .ok_as(&bob, "{ daemons(first: 10) { nodes { id } } }", json!({}))
        .await;
    assert_eq!(ids(&data["daemons"]["nodes"]), vec![bobs]);

    // A daemon name is checked like any name.
    assert!(
        makima::domain::keys::create_for_daemon(&t.app.store, "alice", "")
            .await
            .is_err()
    );

    // The CLI prints a daemon key alone on its last line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_makima"))
        .args([
            "api-key", "create", "--owner", "alice", "--daemon", "builder",
        ])
        .arg("--database-url")
        .arg(&t.url)
        .env("NO_COLOR", "1")
        .output()
        .expect("run makima api-key create");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let cli_key = stdout.lines().last().expect("a key").trim().to_owned();
    let data = t.ok_as(&cli_key, HEARTBEAT, json!({})).await;
    assert_eq!(data["heartbeatDaemon"]["daemon"]["id"], d1);
    // A daemon key is not an owner key.
    t.fails_as(&cli_key, "FORBIDDEN", "{ viewer { owner } }", json!({}))
        .await;
}

#[tokio::test]
async fn a_daemon_key_may_only_take_and_report_its_own_work() {
    let t = TestApp::new().await;
    let (contract, supervisor) = t.create_contract("c").await;
    let free = t.create_task("free", None).await;
    let (dk, me) = t.daemon_key("alice", "me").await;
    let (_, other) = t.daemon_key("alice", "other").await;
    let elsewhere = task_on(&t, "elsewhere", &other).await;
    t.say(&free, &["one", "two"]).await;
    let before = t.timeline().await;

    // Root fields outside a daemon's work are refused, before anything runs.
    let refused: Vec<(&str, Value)> = vec![
        ("{ contracts(first: 1) { nodes { id } } }", json!({})),
        (
            "query($c: ID!) { contract(id: $c) { id } }",
            json!({ "c": contract }),
        ),
        ("{ tasks(first: 1) { nodes { id } } }", json!({})),
        ("{ timeline(first: 1) { nodes { id } } }", json!({})),
        ("{ viewer { owner } }", json!({})),
        ("{ daemons(first: 1) { nodes { id } } }", json!({})),
        (
            "query($d: ID!) { daemon(id: $d) { id } }",
            json!({ "d": me }),
        ),
        (
            "mutation { createTask(input: {name: \"x\"}) { task { id } } }",
            json!({}),
        ),
        (
            "mutation { createContract(input: {name: \"x\"}) { contract { id } } }",
            json!({}),
        ),
        (
            "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1}) { messagesRemoved } }",
            json!({ "t": free }),
        ),
        (
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { id } } }",
            json!({ "t": free }),
        ),
        (
            "mutation($t: ID!) { resumeSupervisor(input: {taskId: $t}) { __typename } }",
            json!({ "t": supervisor }),
        ),
        (
            "mutation($t: ID!) { forkTask(input: {taskId: $t}) { task { id } } }",
            json!({ "t": free }),
        ),
        // Mixed with allowed fields, or hidden in fragments: still refused, and the
        // allowed part does not run either (no heartbeat below).
        (
            "{ daemonWork { tasks { id } } viewer { owner } }",
            json!({}),
        ),
        (
            "{ ...F } fragment F on Query { ... on Query { tasks(first: 1) { totalCount } } }",
            json!({}),
        ),
        (
            "mutation { heartbeatDaemon { daemon { id } } createContract(input: {name: \"y\"}) { contract { id } } }",
            json!({}),
        ),
    ];
    for (query, vars) in &refused {
        let reply = t.post_as(&dk, query, vars.clone()).await;
        assert_eq!(
            reply.code(),
            Some("FORBIDDEN"),
            "{query} should be FORBIDDEN: {}",
            reply.body
        );
        assert!(reply.body["data"].is_null(), "{query}: nothing ran");
    }
    assert_eq!(t.timeline().await, before, "nothing was written");
    let d = daemon(&t, &me).await;
    assert!(d["lastSeenAt"].is_null(), "no heartbeat ran: {d}");

    // Its own work is allowed.
    assert_eq!(
        t.ok_as(&dk, "{ __typename }", json!({})).await["__typename"],
        "Query"
    );
    assert_eq!(
        t.daemon_work(&dk).await,
        vec![supervisor.clone(), free.clone()]
    );

    // An owner key cannot act as a daemon.
    t.fails("FORBIDDEN", HEARTBEAT, json!({})).await;
    t.fails("FORBIDDEN", CLAIM, json!({ "t": free })).await;
    t.fails("FORBIDDEN", "{ daemonWork { tasks { id } } }", json!({}))
        .await;

    // Reports on a task not on its daemon (unassigned, or another daemon's) are
    // FORBIDDEN and write nothing; so is reading it.
    let before = t.timeline().await;
    for task_id in [&free, &elsewhere] {
        let v = json!({ "t": task_id });
        t.fails_as(&dk, "FORBIDDEN", APPEND_MESSAGES, v.clone())
            .await;
        t.fails_as(&dk, "FORBIDDEN", APPEND_EVENTS, v.clone()).await;
        t.fails_as(
            &dk,
            "FORBIDDEN",
            TestApp::CHECKPOINT,
            json!({ "t": task_id, "sha": "abc1234", "m": "cp" }),
        )
        .await;
        t.fails_as(
            &dk,
            "FORBIDDEN",
            TestApp::SET_STATUS,
            json!({ "t": task_id, "s": "RUNNING" }),
        )
        .await;
        t.fails_as(&dk, "FORBIDDEN", TASK, v.clone()).await;
        let seen = task(&t, task_id).await;
        assert_eq!(seen["status"], "PENDING");
        assert_eq!(seen["events"]["totalCount"], 0);
        assert_eq!(seen["checkpoints"]["totalCount"], 0);
    }
    assert_eq!(task(&t, &free).await["conversation"]["totalCount"], 2);
    assert_eq!(task(&t, &elsewhere).await["conversation"]["totalCount"], 0);
    assert_eq!(t.timeline().await, before, "nothing was written");

    // Once claimed, the same reports succeed.
    let claimed = t.claim(&dk, &free).await;
    assert_eq!(claimed["status"], "RUNNING");
    assert_eq!(claimed["daemonId"], me);
    let v = json!({ "t": free });
    let data = t.ok_as(&dk, APPEND_MESSAGES, v.clone()).await;
    assert_eq!(data["appendMessages"]["messageCount"], 3);
    t.ok_as(&dk, APPEND_EVENTS, v.clone()).await;
    t.ok_as(
        &dk,
        TestApp::CHECKPOINT,
        json!({ "t": free, "sha": "abc1234", "m": "cp" }),
    )
    .await;
    let data = t.ok_as(&dk, TASK, v.clone()).await;
    assert_eq!(data["task"]["id"], free);
    assert_eq!(data["task"]["daemon"]["name"], "me");
    assert_eq!(data["task"]["events"]["totalCount"], 1);
    assert_eq!(data["task"]["checkpoints"]["totalCount"], 1);
    // It reports as its own daemon only.
    t.fails_as(
        &dk,
        "FORBIDDEN",
        TestApp::SET_STATUS,
        json!({ "t": free, "s": "DONE", "d": other }),
    )
    .await;
    let data = t
        .ok_as(&dk, TestApp::SET_STATUS, json!({ "t": free, "s": "DONE" }))
        .await;
    assert_eq!(data["updateTaskStatus"]["task"]["status"], "DONE");
    assert_eq!(data["updateTaskStatus"]["task"]["daemonId"], me);
    // Another daemon's task stays out of reach.
    t.fails_as(&dk, "FORBIDDEN", TASK, json!({ "t": elsewhere }))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_racing_claims_exactly_one_wins() {
    let t = TestApp::new().await;
    let prize = t.create_task("prize", None).await;
    let mut daemons = vec![];
    for i in 0..20 {
        daemons.push(t.daemon_key("alice", &format!("d{i}")).await);
    }
    let replies = join_all(
        daemons
            .iter()
            .map(|(key, _)| t.post_as(key, CLAIM, json!({ "t": prize }))),
    )
    .await;
    let mut winners = vec![];
    for ((_, id), reply) in daemons.iter().zip(&replies) {
        match reply.code() {
            None => {
                let task = &reply.body["data"]["claimTask"]["task"];
                assert_eq!(task["status"], "RUNNING");
                assert_eq!(&task["daemonId"], id);
                winners.push(id.clone());
            }
            Some("CONFLICT") => {}
            other => panic!("a claim ended with {other:?}: {}", reply.body),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let seen = task(&t, &prize).await;
    assert_eq!(seen["status"], "RUNNING");
    assert_eq!(seen["daemonId"], winners[0]);
    let changes = status_changes(&t, &prize).await;
    assert_eq!(changes.len(), 1, "one status change: {changes:?}");
    assert_eq!(changes[0]["from"], "PENDING");
    assert_eq!(changes[0]["to"], "RUNNING");
    assert_eq!(changes[0]["daemonId"], winners[0]);
    // The losers' claims changed nothing afterwards either.
    for (key, _) in &daemons {
        assert!(t.daemon_work(key).await.is_empty());
    }
}

/// Twenty daemons take the next task at once from ten waiting ones: each task goes to
/// exactly one daemon, every daemon gets at most one, and the rest get none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_daemons_take_different_tasks_with_claim_next() {
    let t = TestApp::new().await;
    let mut waiting = std::collections::BTreeSet::new();
    for i in 0..10 {
        waiting.insert(t.create_task(&format!("t{i}"), None).await);
    }
    let mut daemons = vec![];
    for i in 0..20 {
        daemons.push(t.daemon_key("alice", &format!("d{i}")).await);
    }
    // The contract-less tasks above are the only work: no supervisor is waiting.
    let next = "mutation { claimNextTask { task { id status daemonId } } }";
    let replies = join_all(
        daemons
            .iter()
            .map(|(key, _)| t.post_as(key, next, json!({}))),
    )
    .await;
    let mut taken = std::collections::BTreeSet::new();
    for ((_, id), reply) in daemons.iter().zip(&replies) {
        assert_eq!(reply.code(), None, "{}", reply.body);
        let task = &reply.body["data"]["claimNextTask"]["task"];
        if task.is_null() {
            continue;
        }
        assert_eq!(task["status"], "RUNNING");
        assert_eq!(&task["daemonId"], id);
        assert!(
            taken.insert(task["id"].as_str().unwrap().to_owned()),
            "taken twice"
        );
    }
    assert_eq!(taken, waiting, "every task taken once");
    for task_id in &waiting {
        assert_eq!(status_changes(&t, task_id).await.len(), 1);
    }
    let (key, _) = &daemons[0];
    let none = t.ok_as(key, next, json!({})).await;
    assert!(none["claimNextTask"]["task"].is_null());
    t.fails("FORBIDDEN", next, json!({})).await;
}

#[tokio::test]
async fn a_task_assigned_to_a_daemon_is_that_daemons_work() {
    let t = TestApp::new().await;
    let (k1, d1) = t.daemon_key("alice", "one").await;
    let (k2, d2) = t.daemon_key("alice", "two").await;
    let assigned = task_on(&t, "assigned", &d1).await;
    let free = t.create_task("free", None).await;

    let seen = task(&t, &assigned).await;
    assert_eq!(seen["daemon"], json!({ "id": d1, "name": "one" }));
    assert!(task(&t, &free).await["daemon"].is_null());
    assert_eq!(
        ids(&daemon(&t, &d1).await["currentTasks"]["nodes"]),
        vec![assigned.clone()]
    );
    assert_eq!(
        ids(&daemon(&t, &d2).await["currentTasks"]["nodes"]),
        Vec::<String>::new()
    );

    // Oldest first; another daemon sees only the unassigned task.
    assert_eq!(
        t.daemon_work(&k1).await,
        vec![assigned.clone(), free.clone()]
    );
    assert_eq!(t.daemon_work(&k2).await, vec![free.clone()]);
    let data = t
        .ok_as(&k1, "{ daemonWork { tasks(limit: 1) { id } } }", json!({}))
        .await;
    assert_eq!(ids(&data["daemonWork"]["tasks"]), vec![assigned.clone()]);
    for limit in [0, 101, -1] {
        t.fails_as(
            &k1,
            "BAD_USER_INPUT",
            "query($l: Int!) { daemonWork { tasks(limit: $l) { id } } }",
            json!({ "l": limit }),
        )
        .await;
    }

    // Another daemon cannot claim it.
    t.fails_as(&k2, "CONFLICT", CLAIM, json!({ "t": assigned }))
        .await;
    let seen = task(&t, &assigned).await;
    assert_eq!(seen["status"], "PENDING");
    assert_eq!(seen["daemonId"], d1);
    assert!(status_changes(&t, &assigned).await.is_empty());

    // Its daemon can; a second claim of a RUNNING task is CONFLICT.
    let claimed = t.claim(&k1, &assigned).await;
    assert_eq!(claimed["status"], "RUNNING");
    assert_eq!(claimed["daemonId"], d1);
    t.fails_as(&k1, "CONFLICT", CLAIM, json!({ "t": assigned }))
        .await;
    assert_eq!(t.daemon_work(&k1).await, vec![free.clone()]);
    assert_eq!(
        ids(&daemon(&t, &d1).await["currentTasks"]["nodes"]),
        vec![assigned.clone()]
    );
    t.ok_as(
        &k1,
        TestApp::SET_STATUS,
        json!({ "t": assigned, "s": "DONE" }),
    )
    .await;
    assert_eq!(
        ids(&daemon(&t, &d1).await["currentTasks"]["nodes"]),
        Vec::<String>::new(),
        "a finished task is not current"
    );

    // An unknown daemon, or another owner's, is NOT_FOUND; nothing is created.
    let (_, bobs) = t.daemon_key("bob", "one").await;
    let count = || async {
        t.ok("{ tasks(first: 1) { totalCount } }", json!({})).await["tasks"]["totalCount"].clone()
    };
    let before = count().await;
    let create = "mutation($d: ID, $r: String, $w: String, $c: ID) { createTask(input: {name: \"x\", daemonId: $d, repository: $r, worktreePath: $w, continueFromTaskId: $c}) { task { id } } }";
    for unknown in [uuid::Uuid::now_v7().to_string(), bobs] {
        t.fails("NOT_FOUND", create, json!({ "d": unknown })).await;
    }
    // Paths on a daemon are relative and stay inside its root; a worktree path needs a
    // repository; continuing another task is not supported on a daemon yet.
    for extra in [
        json!({ "r": "/etc" }),
        json!({ "r": "../outside" }),
        json!({ "r": "repo", "w": "../wt" }),
        json!({ "r": ".makima/worktrees/x" }),
        json!({ "w": "wt" }),
        json!({ "c": free }),
    ] {
        let mut vars = extra.clone();
        vars["d"] = json!(d1);
        t.fails("BAD_USER_INPUT", create, vars).await;
    }
    assert_eq!(count().await, before);
}

/// A router over `t`'s database whose daemons time out after `timeout`.
fn with_timeout(t: &TestApp, timeout: std::time::Duration) -> axum::Router {
    router(AppState::new(App {
        daemon_timeout: timeout,
        ..t.app.clone()
    }))
}

#[tokio::test]
async fn heartbeats_keep_a_daemon_online_and_the_sweep_interrupts_a_silent_ones_tasks() {
    let t = TestApp::new().await;
    let (dk, d) = t.daemon_key("alice", "runner").await;
    let (idle_key, idle) = t.daemon_key("alice", "idle").await;

    let never = daemon(&t, &d).await;
    assert_eq!(never["status"], "OFFLINE", "never seen");
    assert!(never["lastSeenAt"].is_null());
    assert!(never["version"].is_null());
    assert_eq!(never["capabilities"], json!([]));

    let data = t
        .ok_as(
            &dk,
            HEARTBEAT,
            json!({ "v": "1.2.3", "c": ["git", "docker"] }),
        )
        .await;
    let beat = &data["heartbeatDaemon"]["daemon"];
    assert_eq!(beat["status"], "ONLINE");
    assert_eq!(beat["version"], "1.2.3");
    assert_eq!(beat["capabilities"], json!(["git", "docker"]));
    assert!(beat["lastSeenAt"].is_string());
    let seen = daemon(&t, &d).await;
    assert_eq!(seen["status"], "ONLINE");
    assert_eq!(seen["version"], "1.2.3");
    assert_eq!(seen["capabilities"], json!(["git", "docker"]));
    assert_eq!(daemon(&t, &idle).await["status"], "OFFLINE");
    // Asking for work counts as a heartbeat (and changes nothing else).
    assert!(t.daemon_work(&idle_key).await.is_empty());
    let polled = daemon(&t, &idle).await;
    assert_eq!(polled["status"], "ONLINE");
    assert!(polled["lastSeenAt"].is_string());
    assert!(polled["version"].is_null());
    // An empty heartbeat keeps what was reported.
    let data = t.ok_as(&dk, HEARTBEAT, json!({})).await;
    assert_eq!(data["heartbeatDaemon"]["daemon"]["version"], "1.2.3");
    assert_eq!(
        data["heartbeatDaemon"]["daemon"]["capabilities"],
        json!(["git", "docker"])
    );
    // Past the timeout it is OFFLINE (a server whose timeout is zero).
    let strict = with_timeout(&t, std::time::Duration::ZERO);
    let data = post_to(&strict, &t.key, DAEMON, json!({ "id": d })).await;
    assert_eq!(data["daemon"]["status"], "OFFLINE");

    // Input limits: 64 capabilities of 256 characters are fine, 65 or a longer one not.
    let many: Vec<String> = (0..65).map(|i| format!("cap{i}")).collect();
    t.fails_as(&dk, "BAD_USER_INPUT", HEARTBEAT, json!({ "c": many }))
        .await;
    t.fails_as(
        &dk,
        "BAD_USER_INPUT",
        HEARTBEAT,
        json!({ "c": ["x".repeat(257)] }),
    )
    .await;
    t.fails_as(
        &dk,
        "BAD_USER_INPUT",
        HEARTBEAT,
        json!({ "v": "v".repeat(257) }),
    )
    .await;
    assert_eq!(
        daemon(&t, &d).await["capabilities"],
        json!(["git", "docker"])
    );
    let data = t
        .ok_as(
            &dk,
            HEARTBEAT,
            json!({ "c": many[..64], "v": "v".repeat(256) }),
        )
        .await;
    assert_eq!(
        data["heartbeatDaemon"]["daemon"]["capabilities"]
            .as_array()
            .unwrap()
            .len(),
        64
    );

    // A task running on a daemon that heartbeats is not swept.
    let work = t.create_task("work", None).await;
    t.claim(&dk, &work).await;
    let now = chrono::Utc::now();
    assert_eq!(
        makima::domain::daemons::sweep(&t.app, now).await.unwrap(),
        0
    );
    assert_eq!(task(&t, &work).await["status"], "RUNNING");

    // An hour later without a heartbeat it is interrupted, once.
    let later = now + chrono::Duration::hours(1);
    assert_eq!(
        makima::domain::daemons::sweep(&t.app, later).await.unwrap(),
        1
    );
    let seen = task(&t, &work).await;
    assert_eq!(seen["status"], "INTERRUPTED");
    assert_eq!(seen["daemonId"], d);
    let changes = status_changes(&t, &work).await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[1]["from"], "RUNNING");
    assert_eq!(changes[1]["to"], "INTERRUPTED");
    assert_eq!(changes[1]["daemonId"], d);
    assert_eq!(
        makima::domain::daemons::sweep(&t.app, later).await.unwrap(),
        0
    );
    assert_eq!(status_changes(&t, &work).await.len(), 2);
    // It is resumable: PENDING, and its daemon, back, can claim it again.
    let data = t
        .ok(
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { status } } }",
            json!({ "t": work }),
        )
        .await;
    assert_eq!(data["resumeTask"]["task"]["status"], "PENDING");
    assert_eq!(t.daemon_work(&dk).await, vec![work.clone()]);
    let claimed = t.claim(&dk, &work).await;
    assert_eq!(claimed["status"], "RUNNING");
    assert_eq!(claimed["daemonId"], d);
    let changes = status_changes(&t, &work).await;
    assert_eq!(changes.last().unwrap()["from"], "PENDING");
    assert_eq!(changes.last().unwrap()["to"], "RUNNING");
}

/// The sweep interrupts the tasks of a daemon silent past the timeout and leaves those
/// of a daemon heard from since, whoever owns them.
#[tokio::test]
async fn the_sweep_takes_only_the_silent_daemons_tasks() {
    let t = TestApp::new().await;
    let (quiet, quiet_id) = t.daemon_key("alice", "quiet").await;
    let (busy, busy_id) = t.daemon_key("bob", "busy").await;
    let bob = t.key_for("bob").await;
    let a = t.create_task("a", None).await;
    let b = create_task_as(&t, &bob, "b").await;
    t.claim(&quiet, &a).await;
    t.claim(&busy, &b).await;
    t.ok_as(&busy, HEARTBEAT, json!({})).await;
    let seen = |key: String, id: String| {
        let t = &t;
        async move {
            let data = t.ok_as(&key, DAEMON, json!({ "id": id })).await;
            let at = data["daemon"]["lastSeenAt"].as_str().expect("seen");
            chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&chrono::Utc)
        }
    };
    let quiet_seen = seen(t.key.clone(), quiet_id).await;
    let busy_seen = seen(bob.clone(), busy_id).await;
    assert!(busy_seen > quiet_seen, "{busy_seen} after {quiet_seen}");
    // Between the two heartbeats, shifted by the timeout.
    let timeout = chrono::Duration::from_std(t.app.daemon_timeout).unwrap();
    let at = quiet_seen + timeout + (busy_seen - quiet_seen) / 2;
    assert_eq!(makima::domain::daemons::sweep(&t.app, at).await.unwrap(), 1);
    assert_eq!(task(&t, &a).await["status"], "INTERRUPTED");
    let data = t
        .ok_as(
            &bob,
            "query($t: ID!) { task(id: $t) { status } }",
            json!({ "t": b }),
        )
        .await;
    assert_eq!(data["task"]["status"], "RUNNING");
    // A task that is not RUNNING is left alone (PAUSED on a silent daemon).
    t.ok_as(&busy, TestApp::SET_STATUS, json!({ "t": b, "s": "PAUSED" }))
        .await;
    let far = busy_seen + timeout * 10;
    assert_eq!(
        makima::domain::daemons::sweep(&t.app, far).await.unwrap(),
        0
    );
    let data = t
        .ok_as(
            &bob,
            "query($t: ID!) { task(id: $t) { status } }",
            json!({ "t": b }),
        )
        .await;
    assert_eq!(data["task"]["status"], "PAUSED");
}

#[tokio::test]
async fn another_owner_neither_sees_a_daemon_nor_claims_its_tasks() {
    let t = TestApp::new().await;
    let (dk, d) = t.daemon_key("alice", "mine").await;
    let free = t.create_task("free", None).await;
    let assigned = task_on(&t, "assigned", &d).await;
    let bob = t.key_for("bob").await;
    let (bobs_dk, bobs) = t.daemon_key("bob", "mine").await;

    let data = t
        .ok_as(
            &bob,
            "query($id: ID!) { daemon(id: $id) { id } }",
            json!({ "id": d }),
        )
        .await;
    assert!(data["daemon"].is_null());
    let data = t
        .ok_as(
            &bob,
            "{ daemons(first: 10) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["daemons"]["totalCount"], 1, "only his own");
    assert_eq!(ids(&data["daemons"]["nodes"]), vec![bobs]);
    let carol = t.key_for("carol").await;
    let data = t
        .ok_as(
            &carol,
            "{ daemons(first: 10) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["daemons"]["totalCount"], 0);
    assert_eq!(data["daemons"]["nodes"], json!([]));
    // Task.daemon through bob's eyes: the task itself is not his.
    let data = t
        .ok_as(
            &bob,
            "query($t: ID!) { task(id: $t) { id } }",
            json!({ "t": assigned }),
        )
        .await;
    assert!(data["task"].is_null());

    // Bob's daemon sees none of alice's work and cannot claim or report it.
    assert!(t.daemon_work(&bobs_dk).await.is_empty());
    for task_id in [&free, &assigned] {
        t.fails_as(&bobs_dk, "NOT_FOUND", CLAIM, json!({ "t": task_id }))
            .await;
        t.fails_as(
            &bobs_dk,
            "NOT_FOUND",
            APPEND_MESSAGES,
            json!({ "t": task_id }),
        )
        .await;
        let data = t.ok_as(&bobs_dk, TASK, json!({ "t": task_id })).await;
        assert!(data["task"].is_null());
    }
    assert_eq!(task(&t, &free).await["status"], "PENDING");
    assert!(task(&t, &free).await["daemonId"].is_null());
    assert_eq!(
        t.daemon_work(&dk).await,
        vec![free.clone(), assigned.clone()]
    );
}

async fn signal(c: &mut WsClient, id: &str) -> String {
    c.next_data(id).await["workAvailable"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_available_rings_for_new_work_and_replays_after_a_cursor() {
    let t = TestApp::new().await;
    let server = t.serve().await;
    let (dk, _) = t.daemon_key("alice", "listener").await;
    let bob = t.key_for("bob").await;

    for proto in Proto::BOTH {
        // Refused: an owner key's workAvailable, a daemon key's historyEvents.
        let mut owner = WsClient::open(server.addr, proto, &t.key).await;
        owner.subscribe("w", WORK, json!({})).await;
        assert_eq!(owner.error_code("w").await, "FORBIDDEN");
        owner.close().await;
        let mut c = WsClient::open(server.addr, proto, &dk).await;
        c.subscribe("h", "subscription { historyEvents { id } }", json!({}))
            .await;
        assert_eq!(c.error_code("h").await, "FORBIDDEN");
        c.subscribe("v", "{ viewer { owner } }", json!({})).await;
        assert_eq!(c.error_code("v").await, "FORBIDDEN");

        let before = *server.state.events.subscribers().borrow();
        c.subscribe("w", WORK, json!({})).await;
        server.subscribers_at_least(before + 1).await;
        let first = t.create_task("first", None).await;
        let created = t.last_cursor().await;
        assert_eq!(signal(&mut c, "w").await, created);
        // What is not new work does not ring; another owner's work does not either.
        t.say(&first, &["hello"]).await;
        t.set_status(&first, "RUNNING").await;
        create_task_as(&t, &bob, "bobs").await;
        let second = t.create_task("second", None).await;
        let second_cursor = t.last_cursor().await;
        assert_eq!(signal(&mut c, "w").await, second_cursor);
        c.close().await;

        // Offline meanwhile: a resumed task and a new one ring on reconnecting after
        // the last cursor seen, in order, and nothing seen before rings again.
        t.set_status(&first, "INTERRUPTED").await;
        t.ok(
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { id } } }",
            json!({ "t": first }),
        )
        .await;
        let resumed = t.last_cursor().await;
        t.say(&second, &["not work"]).await;
        t.create_task("third", None).await;
        let third = t.last_cursor().await;
        let mut c = WsClient::open(server.addr, proto, &dk).await;
        c.subscribe("w", WORK, json!({ "a": second_cursor })).await;
        assert_eq!(signal(&mut c, "w").await, resumed);
        assert_eq!(signal(&mut c, "w").await, third);
        // Then live, with no repeat in between.
        t.say(&second, &["still not work"]).await;
        t.create_task("fourth", None).await;
        let fourth = t.last_cursor().await;
        assert_eq!(signal(&mut c, "w").await, fourth);
        // A malformed cursor is refused.
        c.subscribe("bad", WORK, json!({ "a": "nope" })).await;
        assert_eq!(c.error_code("bad").await, "BAD_USER_INPUT");
        c.close().await;
    }
}

/// Creates a task as the owner of `key` (must succeed); returns its id.
async fn create_task_as(t: &TestApp, key: &str, name: &str) -> String {
    let data = t
        .ok_as(
            key,
            "mutation($n: String!) { createTask(input: {name: $n}) { task { id } } }",
            json!({ "n": name }),
        )
        .await;
    data["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A resumed task goes back to every daemon of its owner (its old daemon may be gone),
/// unless its code lives on its daemon: then it stays there.
#[tokio::test]
async fn a_resumed_task_is_claimable_by_any_daemon_unless_its_code_is_on_one() {
    let t = TestApp::new().await;
    let (k1, d1) = t.daemon_key("alice", "one").await;
    let (k2, d2) = t.daemon_key("alice", "two").await;
    let interrupt = "mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: INTERRUPTED}) { task { status } } }";
    let resume =
        "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { status daemonId } } }";

    let plain = task_on(&t, "plain", &d1).await;
    t.claim(&k1, &plain).await;
    t.ok_as(&k1, interrupt, json!({ "t": plain })).await;
    let resumed = t.ok(resume, json!({ "t": plain })).await["resumeTask"]["task"].clone();
    assert_eq!(resumed, json!({ "status": "PENDING", "daemonId": null }));
    let data = t.ok_as(&k2, CLAIM, json!({ "t": plain })).await;
    assert_eq!(data["claimTask"]["task"]["daemonId"], d2.as_str());

    let remote = t
        .ok(
            "mutation($d: ID!) { createTask(input: {name: \"remote\", daemonId: $d, repository: \"repo\"}) { task { id } } }",
            json!({ "d": d1 }),
        )
        .await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.claim(&k1, &remote).await;
    t.ok_as(&k1, interrupt, json!({ "t": remote })).await;
    let resumed = t.ok(resume, json!({ "t": remote })).await["resumeTask"]["task"].clone();
    assert_eq!(resumed["daemonId"], d1.as_str());
    t.fails_as(&k2, "CONFLICT", CLAIM, json!({ "t": remote }))
        .await;
}
