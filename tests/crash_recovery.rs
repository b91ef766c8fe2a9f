//! `kill -9` of the server in the middle of a code operation: after a restart the
//! worktree, the rows and the timeline agree (the interrupted operation is undone and
//! recorded as FAILED with a CODE_OPERATION_COMPLETED event).

mod common;
mod gitfix;

use common::TestApp;
use common::crash::{GitTrap, Server, Stop, kill_pid};
use common::process::Spawned;
use gitfix::{TestRepo, git};
use makima::entities::ids::{CodeOperationId, TaskId};
use makima::entities::kinds::{CodeOperationKind, CodeOperationStatus};
use makima::store::{code_operations, intents};
use serde_json::{Value, json};
use uuid::Uuid;

const REWIND_TASK: &str = "mutation($t: ID!, $c: ID!) { rewindTask(input: {taskId: $t, checkpointId: $c, rewindConversation: true}) { conversationRewound } }";
const FORK: &str = "mutation($t: ID!, $c: ID!) { forkTask(input: {taskId: $t, checkpointId: $c}) { task { id } } }";

/// A task in a repository with a checkpoint at commit A; the branch moved on to B, with
/// an uncommitted edit and an untracked file on top.
struct Fixture {
    repo: TestRepo,
    task: String,
    checkpoint: String,
    a: String,
    b: String,
}

async fn fixture(t: &TestApp) -> Fixture {
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let task = t.task_in_repo(&repo.path(), None).await;
    t.say(&task, &["m0"]).await;
    let a = repo.commit("A", &[("a.txt", "a1")]);
    let checkpoint = t.checkpoint_id(&task, &a).await;
    t.say(&task, &["m1"]).await;
    let b = repo.commit("B", &[("a.txt", "a2"), ("b.txt", "b")]);
    repo.write("a.txt", "edited");
    repo.write("untracked.txt", "u");
    Fixture {
        repo,
        task,
        checkpoint,
        a,
        b,
    }
}

async fn conversation(t: &TestApp, task: &str) -> Vec<String> {
    let d = t
        .ok(
            "query($id: ID!) { task(id: $id) { conversation(first: 100) { nodes { content } } } }",
            json!({ "id": task }),
        )
        .await;
    d["task"]["conversation"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"][0]["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Starts the server with a git that stops at `arg`, fires `query`, kills the server
/// (and the stopped git) there, and starts it again without the trap.
async fn crash_during(t: &TestApp, arg: &str, stop: Stop, query: &str, vars: Value) {
    let trap = GitTrap::new(&t.dir.path().join("trap"), arg, stop);
    let server = Server::start(&t.url, &t.app.workspace_root, Some(&trap.dir)).await;
    let request = server.fire(&t.key, query, vars);
    let stopped_git = trap.stopped().await;
    server.kill().await;
    kill_pid(stopped_git);
    let _ = request.await;
    assert!(
        !intents::all(t.app.store.db()).await.unwrap().is_empty(),
        "the killed operation left its intent"
    );
    // The restarted server reconciles before it listens, and then serves.
    let restarted = Spawned::start(&t.url, &t.app.workspace_root).await;
    let viewer = restarted
        .ok(&t.key, "{ viewer { owner } }", json!({}))
        .await;
    assert_eq!(viewer["viewer"]["owner"], "alice");
}

/// The one CODE_OPERATION_COMPLETED event: FAILED, undone, with its operation row.
async fn assert_recorded_as_failed(t: &TestApp, task: &str, kind: &str) {
    assert!(intents::all(t.app.store.db()).await.unwrap().is_empty());
    // On PostgreSQL the timeline hands out events below the oldest transaction in
    // flight in the whole cluster, which another test's transaction may hold back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let events = loop {
        let events: Vec<Value> = t
            .timeline()
            .await
            .into_iter()
            .filter(|e| e["type"] == "CODE_OPERATION_COMPLETED")
            .collect();
        if !events.is_empty() || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["task"]["id"], task);
    let data = &e["data"];
    for key in ["codeOperationId", "status", "commitSha", "error"] {
        assert!(data.get(key).is_some(), "{key} missing in {data}");
    }
    assert_eq!(data["status"], "FAILED");
    let error = data["error"].as_str().unwrap();
    assert!(
        error.contains("interrupted") && error.contains("undone"),
        "{error}"
    );
    let owner = makima::store::owners::find_by_name(t.app.store.db(), "alice")
        .await
        .unwrap()
        .expect("owner")
        .id;
    let id = CodeOperationId(Uuid::parse_str(data["codeOperationId"].as_str().unwrap()).unwrap());
    let op = code_operations::by_id(t.app.store.scope(owner), id)
        .await
        .unwrap()
        .expect("the FAILED operation row");
    assert_eq!(op.status, CodeOperationStatus::Failed);
    assert_eq!(op.kind.as_str(), kind);
    assert_eq!(op.error.as_deref(), Some(error));
    assert_eq!(op.task_id.to_string(), task);
}

/// The worktree is exactly as before the operation: branch, HEAD, files.
fn assert_worktree_untouched(f: &Fixture) {
    assert_eq!(
        git(&f.repo.dir, &["symbolic-ref", "--short", "HEAD"]),
        "main"
    );
    assert_eq!(f.repo.head(), f.b);
    assert_eq!(f.repo.read("a.txt").as_deref(), Some("edited"));
    assert_eq!(f.repo.read("b.txt").as_deref(), Some("b"));
    assert_eq!(f.repo.read("untracked.txt").as_deref(), Some("u"));
    assert_eq!(
        git(&f.repo.dir, &["status", "--porcelain"]),
        // (leading space trimmed: " M a.txt")
        "M a.txt\n?? untracked.txt"
    );
}

async fn assert_no_event_of(t: &TestApp, kind: &str) {
    let types = t.timeline_types().await;
    assert!(!types.iter().any(|t| t == kind), "{types:?}");
}

#[tokio::test]
async fn a_restore_killed_halfway_is_undone_at_restart() {
    let t = TestApp::new().await;
    let f = fixture(&t).await;
    // `clean` runs after `reset --hard`: the branch and files already moved to A.
    crash_during(
        &t,
        "clean",
        Stop::Before,
        REWIND_TASK,
        json!({ "t": f.task, "c": f.checkpoint }),
    )
    .await;
    assert_worktree_untouched(&f);
    assert_recorded_as_failed(&t, &f.task, "RESTORE").await;
    assert_no_event_of(&t, "TASK_REWOUND").await;
    assert_eq!(conversation(&t, &f.task).await, ["m0", "m1"]);
    assert_ne!(f.a, f.b);
}

#[tokio::test]
async fn a_restore_killed_after_git_finished_is_undone_at_restart() {
    let t = TestApp::new().await;
    let f = fixture(&t).await;
    // The branch lookup follows the whole restore: only the recording is missing.
    crash_during(
        &t,
        "symbolic-ref",
        Stop::Before,
        REWIND_TASK,
        json!({ "t": f.task, "c": f.checkpoint }),
    )
    .await;
    assert_worktree_untouched(&f);
    assert_recorded_as_failed(&t, &f.task, "RESTORE").await;
    assert_eq!(conversation(&t, &f.task).await, ["m0", "m1"]);
}

#[tokio::test]
async fn an_operation_killed_before_git_changed_anything_is_recorded_as_failed() {
    let t = TestApp::new().await;
    let f = fixture(&t).await;
    // The first git call of a restore resolves the checkpoint's commit.
    let resolve = format!("{}^{{commit}}", f.a);
    crash_during(
        &t,
        &resolve,
        Stop::Before,
        REWIND_TASK,
        json!({ "t": f.task, "c": f.checkpoint }),
    )
    .await;
    assert_worktree_untouched(&f);
    assert_recorded_as_failed(&t, &f.task, "RESTORE").await;
    assert_eq!(conversation(&t, &f.task).await, ["m0", "m1"]);
    // The task works normally afterwards.
    t.ok(REWIND_TASK, json!({ "t": f.task, "c": f.checkpoint }))
        .await;
    assert_eq!(f.repo.head(), f.a);
}

#[tokio::test]
async fn a_fork_killed_after_its_worktree_was_added_is_undone_at_restart() {
    let t = TestApp::new().await;
    let f = fixture(&t).await;
    crash_during(
        &t,
        "worktree",
        Stop::After,
        FORK,
        json!({ "t": f.task, "c": f.checkpoint }),
    )
    .await;
    let worktrees = t.app.workspace_root.join(".makima").join("worktrees");
    let left: Vec<_> = std::fs::read_dir(&worktrees)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "worktrees left: {left:?}");
    assert_eq!(
        git(&f.repo.dir, &["branch", "--list", "makima/*"]),
        "",
        "the fork's branch is gone"
    );
    assert_eq!(
        git(&f.repo.dir, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count(),
        1
    );
    assert_worktree_untouched(&f);
    assert_recorded_as_failed(&t, &f.task, "WORKTREE").await;
    assert_no_event_of(&t, "TASK_FORKED").await;
    let tasks = t
        .ok("{ tasks(first: 100) { totalCount } }", json!({}))
        .await;
    assert_eq!(tasks["tasks"]["totalCount"], 1, "no fork task");
}

#[tokio::test]
async fn recovery_leaves_an_operation_of_a_live_process_alone() {
    use makima::entities::code_operation_intent;
    use sea_orm::{ConnectionTrait, Statement};

    let t = TestApp::new().await;
    let f = fixture(&t).await;
    let task = TaskId(Uuid::parse_str(&f.task).unwrap());
    let owner = makima::store::owners::find_by_name(t.app.store.db(), "alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    // An announced restore whose git step has not run yet.
    let intent = code_operation_intent::Model {
        id: CodeOperationId::new(),
        owner_id: owner,
        task_id: task,
        kind: CodeOperationKind::Restore,
        dir: f.repo.path(),
        commit_sha: f.a.clone(),
        saved_ref: Some("refs/makima/saved/never-written".into()),
        branch: None,
        worktree_path: None,
        created_at: chrono::Utc::now(),
    };
    intents::insert(t.app.store.db(), intent.clone())
        .await
        .unwrap();
    if t.is_postgres() {
        // Another process's live operation holds the task's lock.
        let live = t.app.store.begin_write().await.unwrap();
        live.execute_raw(Statement::from_sql_and_values(
            live.get_database_backend(),
            "SELECT pg_advisory_xact_lock($1)",
            [makima::store::task_locks::key(task).into()],
        ))
        .await
        .unwrap();
        let settled = makima::domain::code::reconcile(&t.app).await.unwrap();
        assert_eq!(settled, 0, "a live operation's intent is left alone");
        assert!(
            intents::by_id(t.app.store.db(), intent.id)
                .await
                .unwrap()
                .is_some()
        );
        live.rollback().await.unwrap();
    }
    let settled = makima::domain::code::reconcile(&t.app).await.unwrap();
    assert_eq!(settled, 1);
    assert_worktree_untouched(&f);
    assert_recorded_as_failed(&t, &f.task, "RESTORE").await;
    assert_eq!(makima::domain::code::reconcile(&t.app).await.unwrap(), 0);
}
