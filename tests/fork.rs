//! forkTask, branchFromCheckpoint and createTask(continueFromTaskId), with real git.

mod common;
mod gitfix;

use common::TestApp;
use gitfix::{TestRepo, git};
use serde_json::{Value, json};

const FORK: &str = "mutation($i: ForkTaskInput!) { forkTask(input: $i) {
    task { id name status isSupervisor repository worktreePath branch forkedFrom { task { id } messageCount checkpoint { id } }
           conversation(first: 100) { totalCount nodes { content } } checkpoints { totalCount } }
    origin { messageCount checkpoint { id } task { id } }
    codeOperation { kind status commitSha branch } } }";
const BRANCH: &str = "mutation($t: ID!, $c: ID!, $b: String!) { branchFromCheckpoint(input: {taskId: $t, checkpointId: $c, branchName: $b}) {
    branch commitSha checkpoint { id } codeOperation { kind status branch commitSha } } }";

fn texts(conversation: &Value) -> Vec<String> {
    conversation["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"][0]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn fork_by_message_count_shares_the_prefix_and_leaves_the_source_alone() {
    let t = TestApp::new().await;
    let (contract, _) = t.create_contract("c").await;
    let src = t.create_task("src", Some(&contract)).await;
    t.say(&src, &["a", "b", "c"]).await;
    t.ok("mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: RUNNING}) { task { id } } }", json!({ "t": src }))
        .await;
    let d = t
        .ok(
            FORK,
            json!({ "i": { "taskId": src, "messageCount": 2, "name": "alt" } }),
        )
        .await;
    let f = &d["forkTask"];
    assert_eq!(f["task"]["name"], "alt");
    assert_eq!(f["task"]["status"], "PENDING");
    assert_eq!(f["task"]["isSupervisor"], false);
    assert!(f["task"]["worktreePath"].is_null());
    assert!(f["codeOperation"].is_null());
    assert_eq!(f["task"]["forkedFrom"]["task"]["id"], src);
    assert_eq!(f["task"]["forkedFrom"]["messageCount"], 2);
    assert_eq!(f["origin"]["messageCount"], 2);
    assert_eq!(f["task"]["checkpoints"]["totalCount"], 0);
    assert_eq!(texts(&f["task"]["conversation"]), ["a", "b"]);
    let fork = f["task"]["id"].as_str().unwrap().to_owned();

    t.say(&fork, &["x"]).await;
    let d = t
        .ok(
            "query($s: ID!, $f: ID!) { s: task(id: $s) { status conversation { nodes { content } } forks { nodes { id contract { id } } } }
               f: task(id: $f) { conversation { nodes { content } } } }",
            json!({ "s": src, "f": fork }),
        )
        .await;
    assert_eq!(d["s"]["status"], "RUNNING");
    assert_eq!(texts(&d["s"]["conversation"]), ["a", "b", "c"]);
    assert_eq!(texts(&d["f"]["conversation"]), ["a", "b", "x"]);
    assert_eq!(d["s"]["forks"]["nodes"][0]["id"], fork);
    assert_eq!(d["s"]["forks"]["nodes"][0]["contract"]["id"], contract);

    let e = t
        .ok(
            "{ timeline(last: 2) { nodes { type task { id } data } } }",
            json!({}),
        )
        .await;
    let forked = &e["timeline"]["nodes"][0];
    assert_eq!(forked["type"], "TASK_FORKED");
    assert_eq!(forked["task"]["id"], fork);
    assert_eq!(forked["data"]["sourceTaskId"], src);
    assert_eq!(forked["data"]["messageCount"], 2);
    assert!(forked["data"]["checkpointId"].is_null() && forked["data"]["branch"].is_null());

    for bad in [
        json!({ "taskId": src }),
        json!({ "taskId": src, "messageCount": 4 }),
        json!({ "taskId": src, "messageCount": -1 }),
        json!({ "taskId": src, "messageCount": 1, "checkpointId": "01936c4e-0000-7000-8000-000000000000" }),
    ] {
        t.fails("BAD_USER_INPUT", FORK, json!({ "i": bad })).await;
    }
}

#[tokio::test]
async fn a_fork_of_a_fork_of_a_fork_reads_its_whole_conversation() {
    let t = TestApp::new().await;
    let mut task = t.create_task("root", None).await;
    let mut expected: Vec<String> = vec![];
    for level in 0..4 {
        let mine: Vec<String> = (0..3).map(|i| format!("l{level}m{i}")).collect();
        t.say(&task, &mine.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        expected.extend(mine);
        // Keep all but the last message of this level.
        expected.pop();
        let d = t
            .ok(
                FORK,
                json!({ "i": { "taskId": task, "messageCount": expected.len() } }),
            )
            .await;
        task = d["forkTask"]["task"]["id"].as_str().unwrap().to_owned();
    }
    let d = t.ok("query($id: ID!) { task(id: $id) { conversation(first: 100) { nodes { index content } } } }", json!({ "id": task })).await;
    assert_eq!(texts(&d["task"]["conversation"]), expected);
    let d = t.ok("query($id: ID!) { task(id: $id) { conversation(last: 2) { nodes { index content } } } }", json!({ "id": task })).await;
    assert_eq!(
        texts(&d["task"]["conversation"]),
        expected[expected.len() - 2..]
    );
}

#[tokio::test]
async fn fork_from_a_checkpoint_gets_a_worktree_at_its_commit() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let src = t.task_in_repo(&repo.path(), Some("main")).await;
    t.say(&src, &["one"]).await;
    let a = repo.commit("A", &[("f.txt", "A")]);
    let cp = t.checkpoint_id(&src, &a).await;
    t.say(&src, &["two"]).await;
    repo.commit("B", &[("f.txt", "B"), ("g.txt", "B")]);

    let d = t
        .ok(
            FORK,
            json!({ "i": { "taskId": src, "checkpointId": cp, "branchName": "try-again" } }),
        )
        .await;
    let f = &d["forkTask"];
    let fork = f["task"]["id"].as_str().unwrap().to_owned();
    let op = &f["codeOperation"];
    assert_eq!(
        (op["kind"].as_str(), op["status"].as_str()),
        (Some("WORKTREE"), Some("DONE"))
    );
    assert_eq!(op["commitSha"], a);
    assert_eq!(f["task"]["branch"], "try-again");
    assert_eq!(f["task"]["repository"], repo.path());
    assert_eq!(f["origin"]["checkpoint"]["id"], cp);
    assert_eq!(texts(&f["task"]["conversation"]), ["one"]);
    let wt = std::path::PathBuf::from(f["task"]["worktreePath"].as_str().unwrap());
    assert_eq!(
        wt,
        t.app.workspace_root.join(".makima/worktrees").join(&fork)
    );
    assert_eq!(std::fs::read_to_string(wt.join("f.txt")).unwrap(), "A");
    assert!(!wt.join("g.txt").exists());
    assert_eq!(git(&wt, &["symbolic-ref", "--short", "HEAD"]), "try-again");
    // The source's worktree is untouched.
    assert_eq!(repo.read("f.txt").as_deref(), Some("B"));
    assert_eq!(git(&repo.dir, &["rev-parse", "refs/heads/try-again"]), a);

    // The same branch again is CONFLICT; a bad branch name BAD_USER_INPUT. Neither leaves a task.
    t.fails(
        "CONFLICT",
        FORK,
        json!({ "i": { "taskId": src, "checkpointId": cp, "branchName": "try-again" } }),
    )
    .await;
    t.fails(
        "BAD_USER_INPUT",
        FORK,
        json!({ "i": { "taskId": src, "checkpointId": cp, "branchName": "-f" } }),
    )
    .await;
    let d = t
        .ok(
            "query($id: ID!) { task(id: $id) { forks { totalCount } } }",
            json!({ "id": src }),
        )
        .await;
    assert_eq!(d["task"]["forks"]["totalCount"], 1);

    // By message count, the newest checkpoint that is a prefix applies.
    let d = t
        .ok(FORK, json!({ "i": { "taskId": src, "messageCount": 2 } }))
        .await;
    assert_eq!(d["forkTask"]["origin"]["checkpoint"]["id"], cp);
    assert_eq!(d["forkTask"]["codeOperation"]["commitSha"], a);
    let d = t
        .ok(FORK, json!({ "i": { "taskId": src, "messageCount": 0 } }))
        .await;
    assert!(d["forkTask"]["codeOperation"].is_null());
}

#[tokio::test]
async fn fifty_concurrent_forks_give_fifty_tasks_and_branches() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let src = t.task_in_repo(&repo.path(), None).await;
    t.say(&src, &["one"]).await;
    let cp = t.checkpoint_id(&src, &repo.head()).await;
    let replies = futures_util::future::join_all(
        (0..50).map(|_| t.post(FORK, json!({ "i": { "taskId": src, "checkpointId": cp } }))),
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    let mut branches = std::collections::HashSet::new();
    for r in &replies {
        assert!(r.body.get("errors").is_none(), "{}", r.body);
        ids.insert(
            r.body["data"]["forkTask"]["task"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        branches.insert(
            r.body["data"]["forkTask"]["task"]["branch"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!((ids.len(), branches.len()), (50, 50));
    let listed = git(&repo.dir, &["branch", "--list", "makima/*"]);
    assert_eq!(listed.lines().count(), 50);
}

#[tokio::test]
async fn branch_from_checkpoint_creates_the_branch_once() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let task = t.task_in_repo(&repo.path(), None).await;
    let a = repo.commit("A", &[("f", "1")]);
    let cp = t.checkpoint_id(&task, &a).await;
    repo.commit("B", &[("f", "2")]);
    let d = t
        .ok(BRANCH, json!({ "t": task, "c": cp, "b": "feature/at-a" }))
        .await;
    let b = &d["branchFromCheckpoint"];
    assert_eq!(b["branch"], "feature/at-a");
    assert_eq!(b["commitSha"], a);
    assert_eq!(b["codeOperation"]["kind"], "BRANCH");
    assert_eq!(git(&repo.dir, &["rev-parse", "refs/heads/feature/at-a"]), a);
    let e = t
        .ok("{ timeline(last: 1) { nodes { type data } } }", json!({}))
        .await;
    assert_eq!(e["timeline"]["nodes"][0]["type"], "BRANCH_CREATED");
    assert_eq!(e["timeline"]["nodes"][0]["data"]["branch"], "feature/at-a");
    assert_eq!(e["timeline"]["nodes"][0]["data"]["commitSha"], a);

    t.fails(
        "CONFLICT",
        BRANCH,
        json!({ "t": task, "c": cp, "b": "feature/at-a" }),
    )
    .await;
    for bad in ["-b", "--force", "a..b", "x y", "HEAD", "a~1"] {
        t.fails(
            "BAD_USER_INPUT",
            BRANCH,
            json!({ "t": task, "c": cp, "b": bad }),
        )
        .await;
    }
    // A checkpoint whose commit the repository does not have.
    let ghost = t.checkpoint_id(&task, "0123456789abcdef").await;
    t.fails(
        "BAD_USER_INPUT",
        BRANCH,
        json!({ "t": task, "c": ghost, "b": "ghost" }),
    )
    .await;
    // No repository: BAD_USER_INPUT.
    let plain = t.create_task("plain", None).await;
    let cp2 = t.checkpoint_id(&plain, "abcdef1").await;
    t.fails(
        "BAD_USER_INPUT",
        BRANCH,
        json!({ "t": plain, "c": cp2, "b": "x" }),
    )
    .await;
    let count = t
        .timeline_types()
        .await
        .iter()
        .filter(|t| *t == "BRANCH_CREATED")
        .count();
    assert_eq!(count, 1, "refused calls write no event");
}

#[tokio::test]
async fn a_continued_task_starts_from_the_earlier_branch_head() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    git(&repo.dir, &["branch", "work"]);
    let src = t.task_in_repo(&repo.path(), Some("work")).await;
    // Advance the source's branch beyond main.
    git(&repo.dir, &["checkout", "-q", "work"]);
    let head = repo.commit("work", &[("w.txt", "w")]);
    git(&repo.dir, &["checkout", "-q", "main"]);

    const CREATE: &str = "mutation($i: CreateTaskInput!) { createTask(input: $i) {
        task { id repository worktreePath branch continuedFrom { id } } codeOperation { kind status commitSha branch } } }";
    let d = t
        .ok(
            CREATE,
            json!({ "i": { "name": "next", "continueFromTaskId": src } }),
        )
        .await;
    let c = &d["createTask"];
    assert_eq!(c["task"]["continuedFrom"]["id"], src);
    assert_eq!(c["task"]["repository"], repo.path());
    assert_eq!(c["codeOperation"]["kind"], "WORKTREE");
    assert_eq!(c["codeOperation"]["commitSha"], head);
    let wt = std::path::PathBuf::from(c["task"]["worktreePath"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(wt.join("w.txt")).unwrap(), "w");
    let id = c["task"]["id"].as_str().unwrap();
    assert_eq!(c["task"]["branch"], format!("makima/{id}"));
    let e = t
        .ok("{ timeline(last: 1) { nodes { type data } } }", json!({}))
        .await;
    assert_eq!(
        e["timeline"]["nodes"][0]["data"]["continuedFromTaskId"],
        src
    );

    t.fails(
        "BAD_USER_INPUT",
        CREATE,
        json!({ "i": { "name": "x", "continueFromTaskId": src, "worktreePath": repo.path() } }),
    )
    .await;
    let plain = t.create_task("plain", None).await;
    t.fails(
        "BAD_USER_INPUT",
        CREATE,
        json!({ "i": { "name": "x", "continueFromTaskId": plain } }),
    )
    .await;
    t.fails("NOT_FOUND", CREATE, json!({ "i": { "name": "x", "continueFromTaskId": "01936c4e-0000-7000-8000-000000000000" } }))
        .await;
}
