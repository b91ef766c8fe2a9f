//! rewindConversation, restoreConversation and rewindTask, with real git.

mod common;
mod gitfix;

use common::TestApp;
use gitfix::{TestRepo, git};
use serde_json::{Value, json};

const REWIND: &str = "mutation($i: RewindConversationInput!) { rewindConversation(input: $i) {
    contractId taskId messagesRemoved newMessageCount codeRewound
    codeOperation { id kind status commitSha branch savedRef error }
    event { id type data } } }";
const RESTORE: &str = "mutation($id: ID!) { restoreConversation(input: {rewindEventId: $id}) {
    messageCount event { type data } codeOperation { kind status commitSha savedRef } } }";

async fn texts(t: &TestApp, task: &str) -> Vec<String> {
    let d = t
        .ok(
            "query($id: ID!) { task(id: $id) { conversation(first: 100) { totalCount nodes { index content } } } }",
            json!({ "id": task }),
        )
        .await;
    let nodes = d["task"]["conversation"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        d["task"]["conversation"]["totalCount"].as_u64().unwrap() as usize,
        nodes.len()
    );
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            assert_eq!(n["index"], i);
            n["content"][0]["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn rewind_keeps_the_tail_addressable_and_restore_brings_it_back() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    t.say(&task, &["a", "b", "c", "d", "e"]).await;

    let d = t
        .ok(
            REWIND,
            json!({ "i": { "taskId": task, "toMessageIndex": 2 } }),
        )
        .await;
    let r = &d["rewindConversation"];
    assert_eq!(r["messagesRemoved"], 2);
    assert_eq!(r["newMessageCount"], 3);
    assert_eq!(r["codeRewound"], false);
    assert!(r["codeOperation"].is_null());
    assert_eq!(r["event"]["type"], "CONVERSATION_REWOUND");
    let data = &r["event"]["data"];
    assert_eq!(data["previousMessageCount"], 5);
    assert_eq!(data["newMessageCount"], 3);
    assert_eq!(data["messagesRemoved"], 2);
    assert!(data.get("codeOperationId").is_some_and(Value::is_null));
    assert_eq!(texts(&t, &task).await, ["a", "b", "c"]);

    let event = r["event"]["id"].as_str().unwrap().to_owned();
    let d = t.ok(RESTORE, json!({ "id": event })).await;
    assert_eq!(d["restoreConversation"]["messageCount"], 5);
    assert_eq!(
        d["restoreConversation"]["event"]["type"],
        "CONVERSATION_RESTORED"
    );
    assert_eq!(
        d["restoreConversation"]["event"]["data"]["rewindEventId"],
        event
    );
    assert_eq!(texts(&t, &task).await, ["a", "b", "c", "d", "e"]);
    // Restoring again is not "exactly as that rewind left it".
    t.fails("CONFLICT", RESTORE, json!({ "id": event })).await;
}

#[tokio::test]
async fn restore_is_refused_after_an_append_and_appends_go_to_the_new_branch() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    t.say(&task, &["a", "b", "c"]).await;
    let d = t
        .ok(
            REWIND,
            json!({ "i": { "taskId": task, "byMessageCount": 2 } }),
        )
        .await;
    let event = d["rewindConversation"]["event"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.say(&task, &["x"]).await;
    assert_eq!(texts(&t, &task).await, ["a", "x"]);
    t.fails("CONFLICT", RESTORE, json!({ "id": event })).await;
    assert_eq!(texts(&t, &task).await, ["a", "x"]);
    // Any other event is BAD_USER_INPUT; an unknown one NOT_FOUND.
    let other = t
        .ok("{ timeline(first: 1) { nodes { id } } }", json!({}))
        .await;
    let other = other["timeline"]["nodes"][0]["id"].clone();
    t.fails("BAD_USER_INPUT", RESTORE, json!({ "id": other }))
        .await;
    t.fails(
        "NOT_FOUND",
        RESTORE,
        json!({ "id": "01936c4e-0000-7000-8000-000000000000" }),
    )
    .await;
}

#[tokio::test]
async fn rewind_arguments_are_checked_and_change_nothing() {
    let t = TestApp::new().await;
    let (contract, _) = t.create_contract("c").await;
    let task = t.create_task("t", None).await;
    t.fails(
        "BAD_USER_INPUT",
        REWIND,
        json!({ "i": { "taskId": task, "byMessageCount": 1 } }),
    )
    .await;
    t.say(&task, &["a", "b", "c"]).await;
    for bad in [
        json!({ "taskId": task }),
        json!({ "taskId": task, "toMessageIndex": 0, "byMessageCount": 1 }),
        json!({ "taskId": task, "toMessageIndex": -1 }),
        json!({ "taskId": task, "byMessageCount": -1 }),
        json!({ "taskId": task, "toMessageIndex": 2 }),
        json!({ "taskId": task, "toMessageIndex": 7 }),
        json!({ "taskId": task, "byMessageCount": 0 }),
        json!({ "taskId": task, "byMessageCount": 4 }),
        json!({ "taskId": task, "contractId": contract, "byMessageCount": 1 }),
        json!({ "byMessageCount": 1 }),
    ] {
        t.fails("BAD_USER_INPUT", REWIND, json!({ "i": bad })).await;
    }
    assert_eq!(texts(&t, &task).await, ["a", "b", "c"]);
    // All of them may go.
    let d = t
        .ok(
            REWIND,
            json!({ "i": { "taskId": task, "byMessageCount": 3 } }),
        )
        .await;
    assert_eq!(d["rewindConversation"]["newMessageCount"], 0);
    assert!(texts(&t, &task).await.is_empty());
    let other = t.key_for("bob").await;
    let r = t
        .post_as(
            &other,
            REWIND,
            json!({ "i": { "taskId": task, "byMessageCount": 1 } }),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn supervisor_conversation_rewinds_by_contract_id() {
    let t = TestApp::new().await;
    let (contract, supervisor) = t.create_contract("c").await;
    t.say(&supervisor, &["a", "b"]).await;
    let d = t
        .ok(
            REWIND,
            json!({ "i": { "contractId": contract, "byMessageCount": 1 } }),
        )
        .await;
    assert_eq!(d["rewindConversation"]["contractId"], contract);
    assert_eq!(d["rewindConversation"]["taskId"], supervisor);
    let d = t
        .ok(
            "query($id: ID!) { contract(id: $id) { supervisor { messageCount } conversation { nodes { index } } } }",
            json!({ "id": contract }),
        )
        .await;
    assert_eq!(d["contract"]["supervisor"]["messageCount"], 1);
    assert_eq!(
        d["contract"]["conversation"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn rewinding_code_restores_the_worktree_and_restore_puts_it_back() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let task = t.task_in_repo(&repo.path(), None).await;

    t.say(&task, &["m0"]).await;
    let a = repo.commit("A", &[("a.txt", "a1")]);
    t.checkpoint_id(&task, &a).await;
    t.say(&task, &["m1"]).await;
    let b = repo.commit("B", &[("b.txt", "b1"), ("a.txt", "a2")]);
    t.checkpoint_id(&task, &b).await;
    t.say(&task, &["m2"]).await;
    // Uncommitted, untracked and ignored state.
    repo.write("a.txt", "a3-uncommitted");
    repo.write("c.txt", "untracked");
    repo.write("build/out", "ignored");

    let d = t
        .ok(
            REWIND,
            json!({ "i": { "taskId": task, "byMessageCount": 2, "rewindCode": true } }),
        )
        .await;
    let r = &d["rewindConversation"];
    assert_eq!(r["codeRewound"], true);
    let op = &r["codeOperation"];
    assert_eq!(op["kind"], "RESTORE");
    assert_eq!(op["status"], "DONE");
    assert_eq!(op["commitSha"], a);
    assert_eq!(op["branch"], "main");
    let saved = op["savedRef"].as_str().unwrap().to_owned();
    assert!(saved.starts_with("refs/makima/"));
    assert_eq!(r["event"]["data"]["codeOperationId"], op["id"]);

    assert_eq!(repo.head(), a, "the branch is reset to the checkpoint");
    assert_eq!(git(&repo.dir, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(repo.read("a.txt").as_deref(), Some("a1"));
    assert_eq!(
        repo.read("b.txt"),
        None,
        "files created after the checkpoint are removed"
    );
    assert_eq!(repo.read("c.txt"), None, "untracked files are removed");
    assert_eq!(
        repo.read("build/out").as_deref(),
        Some("ignored"),
        "ignored files are kept"
    );
    assert_eq!(git(&repo.dir, &["status", "--porcelain"]), "");
    // The saved ref holds the replaced state: HEAD B plus the uncommitted edits.
    assert_eq!(git(&repo.dir, &["rev-parse", &format!("{saved}^1")]), b);
    assert_eq!(
        git(&repo.dir, &["show", &format!("{saved}:a.txt")]),
        "a3-uncommitted"
    );
    assert_eq!(
        git(&repo.dir, &["show", &format!("{saved}:c.txt")]),
        "untracked"
    );
    assert_eq!(texts(&t, &task).await, ["m0"]);

    let event = r["event"]["id"].as_str().unwrap().to_owned();
    let d = t.ok(RESTORE, json!({ "id": event })).await;
    let op = &d["restoreConversation"]["codeOperation"];
    assert_eq!(op["kind"], "RESTORE");
    assert_eq!(op["status"], "DONE");
    assert_eq!(repo.head(), b);
    assert_eq!(repo.read("a.txt").as_deref(), Some("a3-uncommitted"));
    assert_eq!(repo.read("b.txt").as_deref(), Some("b1"));
    assert_eq!(repo.read("c.txt").as_deref(), Some("untracked"));
    assert_eq!(repo.read("build/out").as_deref(), Some("ignored"));
    assert_eq!(texts(&t, &task).await, ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn rewinding_code_without_a_repository_or_applicable_checkpoint_is_honest() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    t.say(&task, &["a", "b"]).await;
    t.checkpoint_id(&task, "abcdef1").await;
    let d = t
        .ok(
            REWIND,
            json!({ "i": { "taskId": task, "byMessageCount": 1, "rewindCode": true } }),
        )
        .await;
    assert_eq!(d["rewindConversation"]["codeRewound"], false);
    assert!(d["rewindConversation"]["codeOperation"].is_null());

    // A checkpoint on an abandoned branch no longer applies.
    let repo = TestRepo::new(&t.app.workspace_root, "r2");
    let task = t.task_in_repo(&repo.path(), None).await;
    t.say(&task, &["a", "b", "c"]).await;
    t.checkpoint_id(&task, &repo.head()).await;
    t.ok(
        REWIND,
        json!({ "i": { "taskId": task, "byMessageCount": 2 } }),
    )
    .await;
    t.say(&task, &["x", "y"]).await;
    let d = t
        .ok(
            REWIND,
            json!({ "i": { "taskId": task, "byMessageCount": 1, "rewindCode": true } }),
        )
        .await;
    assert_eq!(d["rewindConversation"]["codeRewound"], false, "{}", d);

    // RUNNING refuses a code rewind but not a conversation-only one.
    t.ok("mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: RUNNING}) { task { id } } }", json!({ "t": task }))
        .await;
    t.fails(
        "CONFLICT",
        REWIND,
        json!({ "i": { "taskId": task, "byMessageCount": 1, "rewindCode": true } }),
    )
    .await;
    t.ok(
        REWIND,
        json!({ "i": { "taskId": task, "byMessageCount": 1 } }),
    )
    .await;
}

#[tokio::test]
async fn rewind_task_restores_code_and_optionally_the_conversation() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let task = t.task_in_repo(&repo.path(), None).await;
    t.say(&task, &["m0"]).await;
    let a = repo.commit("A", &[("a.txt", "1")]);
    let cp = t.checkpoint_id(&task, &a).await;
    t.say(&task, &["m1"]).await;
    repo.commit("B", &[("b.txt", "2")]);
    const Q: &str = "mutation($t: ID!, $c: ID!, $r: Boolean) { rewindTask(input: {taskId: $t, checkpointId: $c, rewindConversation: $r}) {
        task { id } checkpoint { id } conversationRewound codeOperation { kind commitSha savedRef } } }";
    let d = t.ok(Q, json!({ "t": task, "c": cp, "r": false })).await;
    assert_eq!(d["rewindTask"]["conversationRewound"], false);
    assert_eq!(d["rewindTask"]["codeOperation"]["commitSha"], a);
    assert_eq!(repo.read("b.txt"), None);
    assert_eq!(texts(&t, &task).await, ["m0", "m1"]);
    let d = t.ok(Q, json!({ "t": task, "c": cp, "r": true })).await;
    assert_eq!(d["rewindTask"]["conversationRewound"], true);
    assert_eq!(texts(&t, &task).await, ["m0"]);
    let types = t.timeline_types().await;
    assert_eq!(types.iter().filter(|t| *t == "TASK_REWOUND").count(), 2);

    // Errors: another task's checkpoint, a missing one, a RUNNING task.
    let other = t
        .task_in_repo(&TestRepo::new(&t.app.workspace_root, "other").path(), None)
        .await;
    t.fails(
        "BAD_USER_INPUT",
        Q,
        json!({ "t": other, "c": cp, "r": false }),
    )
    .await;
    t.fails(
        "NOT_FOUND",
        Q,
        json!({ "t": task, "c": "01936c4e-0000-7000-8000-000000000000", "r": false }),
    )
    .await;
    t.ok("mutation($t: ID!) { updateTaskStatus(input: {taskId: $t, status: RUNNING}) { task { id } } }", json!({ "t": task }))
        .await;
    t.fails("CONFLICT", Q, json!({ "t": task, "c": cp, "r": false }))
        .await;
}

#[tokio::test]
async fn an_append_racing_a_rewind_gives_one_state_or_the_other() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    t.say(&task, &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
        .await;
    let append = t.say(&task, &["n0", "n1", "n2"]);
    let rewind = t.post(
        REWIND,
        json!({ "i": { "taskId": task, "toMessageIndex": 4 } }),
    );
    let ((), reply) = tokio::join!(append, rewind);
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    let got = texts(&t, &task).await;
    let rewound_last = ["0", "1", "2", "3", "4"];
    let appended_last = ["0", "1", "2", "3", "4", "n0", "n1", "n2"];
    assert!(
        got == rewound_last || got == appended_last,
        "mixed state: {got:?}"
    );
}
