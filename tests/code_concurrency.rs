//! Code operations under load: no operation may need two pooled connections at once, so
//! many concurrent operations on a tiny pool all succeed and unrelated reads still get a
//! connection.

mod common;
mod gitfix;

use std::time::{Duration, Instant};

use common::TestApp;
use futures_util::future::join_all;
use gitfix::TestRepo;
use serde_json::json;

const REWIND_TASK: &str =
    "mutation($t: ID!, $c: ID!) { rewindTask(input: {taskId: $t, checkpointId: $c}) {
    codeOperation { kind status commitSha } } }";
const RESUME_TASK: &str =
    "mutation($t: ID!, $c: ID) { resumeTask(input: {taskId: $t, fromCheckpointId: $c}) {
    task { status } codeOperation { kind status commitSha } } }";
const REWIND_CONVERSATION: &str = "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1, rewindCode: true}) {
    codeRewound codeOperation { kind status commitSha } } }";

/// A task in a repository of its own with a checkpoint at commit A, the worktree moved on
/// to commit B; returns (task, checkpoint, A, repo).
async fn task_with_checkpoint(t: &TestApp, name: &str) -> (String, String, String, TestRepo) {
    let repo = TestRepo::new(&t.app.workspace_root, name);
    let task = t.task_in_repo(&repo.path(), None).await;
    t.say(&task, &["m0"]).await;
    let a = repo.commit("A", &[("a.txt", name)]);
    let cp = t.checkpoint_id(&task, &a).await;
    t.say(&task, &["m1"]).await;
    repo.commit("B", &[("b.txt", name)]);
    (task, cp, a, repo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_times_the_pool_of_concurrent_code_operations_all_succeed() {
    concurrent_code_operations(2, 8).await;
}

/// The case of the issue: 24 concurrent operations on the default pool of 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_four_code_operations_on_the_default_pool_all_succeed() {
    concurrent_code_operations(8, 24).await;
}

async fn concurrent_code_operations(pool: u32, ops: usize) {
    let t = TestApp::with_pool(pool).await;
    let mut fixtures = vec![];
    for i in 0..ops {
        fixtures.push(task_with_checkpoint(&t, &format!("r{i}")).await);
    }
    // One resume from a checkpoint and one conversation rewind with code; the rest
    // rewind their task to its checkpoint.
    let (resumed, _, _, _) = &fixtures[0];
    t.set_status(resumed, "RUNNING").await;
    t.set_status(resumed, "PAUSED").await;
    let unrelated = t.create_task("unrelated", None).await;

    let started = Instant::now();
    let calls = fixtures.iter().enumerate().map(|(i, (task, cp, _, _))| {
        let (query, vars) = match i {
            0 => (RESUME_TASK, json!({ "t": task, "c": cp })),
            1 => (REWIND_CONVERSATION, json!({ "t": task })),
            _ => (REWIND_TASK, json!({ "t": task, "c": cp })),
        };
        t.post(query, vars)
    });
    let read = async {
        let asked = Instant::now();
        let reply = t
            .post(
                "query($id: ID!) { task(id: $id) { name } }",
                json!({ "id": unrelated }),
            )
            .await;
        (reply, asked.elapsed())
    };
    let (replies, (read_reply, read_took)) = tokio::join!(join_all(calls), read);
    let took = started.elapsed();
    eprintln!("{ops} code operations on a pool of {pool}: {took:?}; unrelated read: {read_took:?}");

    for (i, reply) in replies.iter().enumerate() {
        assert!(
            reply.body.get("errors").is_none(),
            "operation {i} failed after {took:?}: {}",
            reply.body
        );
        let op = reply.body["data"]
            .as_object()
            .and_then(|d| d.values().next())
            .map(|p| p["codeOperation"].clone())
            .unwrap();
        assert_eq!(op["kind"], "RESTORE", "operation {i}: {op}");
        assert_eq!(op["status"], "DONE", "operation {i}: {op}");
        assert_eq!(op["commitSha"], fixtures[i].2.as_str(), "operation {i}");
    }
    for (_, _, _, repo) in &fixtures {
        assert_eq!(repo.read("b.txt"), None, "restored to A");
        assert!(repo.read("a.txt").is_some());
    }
    assert_eq!(
        read_reply.body["data"]["task"]["name"], "unrelated",
        "{}",
        read_reply.body
    );
    assert!(
        read_took < Duration::from_secs(10),
        "an unrelated read waited {read_took:?} for a connection"
    );
    for (kind, count) in [
        ("TASK_REWOUND", ops - 2),
        ("TASK_RESUMED", 1),
        ("CONVERSATION_REWOUND", 1),
    ] {
        let d = t
            .ok(
                "query($k: HistoryEventType!) { timeline(first: 100, filter: {types: [$k]}) { totalCount } }",
                json!({ "k": kind }),
            )
            .await;
        assert_eq!(d["timeline"]["totalCount"], count, "{kind}");
    }
}
