//! The data of every history event type has exactly the keys its SDL documentation
//! (`HistoryEventType`: "data: {…}") lists, recorded through the real API.

mod common;
mod gitfix;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::TestApp;
use gitfix::TestRepo;
use makima::entities::ids::{CodeOperationId, TaskId};
use serde_json::{Value, json};
use uuid::Uuid;

/// Each `HistoryEventType` value of the SDL with the keys its description documents.
fn documented_keys() -> BTreeMap<String, BTreeSet<String>> {
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let body = sdl
        .split("enum HistoryEventType {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("HistoryEventType in the SDL");
    let mut documented = BTreeMap::new();
    let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        assert_eq!(line, "\"\"\"", "every value is documented");
        let mut description = String::new();
        for l in lines.by_ref() {
            if l == "\"\"\"" {
                break;
            }
            description.push_str(l);
            description.push(' ');
        }
        let name = lines.next().expect("a value after its description");
        let keys = description
            .split("data: {")
            .nth(1)
            .and_then(|d| d.split('}').next())
            .unwrap_or_else(|| panic!("{name} documents no data keys: {description}"));
        let keys = keys.split(',').map(|k| k.trim().to_owned()).collect();
        documented.insert(name.to_owned(), keys);
    }
    documented
}

async fn fields(t: &TestApp, mutation: &str, input: Value) -> Value {
    t.ok(mutation, json!({ "i": input })).await
}

#[tokio::test]
async fn every_event_type_records_exactly_its_documented_keys() {
    // Code operations handed to a daemon answer QUEUED at once.
    let t = TestApp::configured(8, |app| app.code_operation_wait = Duration::ZERO).await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let (contract, supervisor) = t.contract_with_phases("c", &["plan", "build"]).await;
    let task = t.task_in_repo(&repo.path(), None).await;
    let a = repo.commit("A", &[("f", "1")]);
    t.say(&task, &["one", "two"]).await;
    let cp = t.checkpoint_id(&task, &a).await;
    t.say(&task, &["three"]).await;
    t.append_events(&task, 2).await;
    fields(
        &t,
        "mutation($i: ChangeContractPhaseInput!) { changeContractPhase(input: $i) { contract { id } } }",
        json!({ "contractId": contract, "phase": "build" }),
    )
    .await;
    t.set_status(&task, "RUNNING").await;
    t.set_status(&task, "PAUSED").await;
    fields(
        &t,
        "mutation($i: ResumeTaskInput!) { resumeTask(input: $i) { task { id } } }",
        json!({ "taskId": task, "fromCheckpointId": cp }),
    )
    .await;
    fields(
        &t,
        "mutation($i: RewindTaskInput!) { rewindTask(input: $i) { task { id } } }",
        json!({ "taskId": task, "checkpointId": cp }),
    )
    .await;
    let rewound = fields(
        &t,
        "mutation($i: RewindConversationInput!) { rewindConversation(input: $i) { event { id } } }",
        json!({ "taskId": task, "byMessageCount": 1, "rewindCode": true }),
    )
    .await;
    fields(
        &t,
        "mutation($i: RestoreConversationInput!) { restoreConversation(input: $i) { messageCount } }",
        json!({ "rewindEventId": rewound["rewindConversation"]["event"]["id"] }),
    )
    .await;
    let forked = fields(
        &t,
        "mutation($i: ForkTaskInput!) { forkTask(input: $i) { task { id } } }",
        json!({ "taskId": task, "checkpointId": cp }),
    )
    .await;
    let fork = forked["forkTask"]["task"]["id"].as_str().unwrap();
    fields(
        &t,
        "mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }",
        json!({ "name": "next", "continueFromTaskId": fork }),
    )
    .await;
    fields(
        &t,
        "mutation($i: BranchFromCheckpointInput!) { branchFromCheckpoint(input: $i) { branch } }",
        json!({ "taskId": task, "checkpointId": cp, "branchName": "at-a" }),
    )
    .await;
    t.set_status(&supervisor, "RUNNING").await;
    t.set_status(&supervisor, "INTERRUPTED").await;
    fields(
        &t,
        "mutation($i: ResumeSupervisorInput!) { resumeSupervisor(input: $i) { supervisorTask { id } } }",
        json!({ "contractId": contract, "mode": "CONTINUE" }),
    )
    .await;
    fields(
        &t,
        "mutation($i: UpdateContractStatusInput!) { updateContractStatus(input: $i) { contract { id } } }",
        json!({ "contractId": contract, "status": "COMPLETED" }),
    )
    .await;
    interrupted_operation(&t, &task, &repo, &a).await;
    queued_operation(&t).await;

    let documented = documented_keys();
    let mut seen = BTreeSet::new();
    let timeline = t.timeline().await;
    for event in &timeline {
        let kind = event["type"].as_str().unwrap().to_owned();
        let keys: BTreeSet<String> = event["data"]
            .as_object()
            .unwrap_or_else(|| panic!("{kind}: data is not an object"))
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            Some(&keys),
            documented.get(&kind),
            "{kind}: recorded keys (left) differ from the documented ones: {}",
            event["data"]
        );
        seen.insert(kind);
    }
    let all: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(seen, all, "one event of every type was recorded");
}

/// A rewind with code of a task whose code is on a daemon, which records
/// `CODE_OPERATION_QUEUED` (the daemon never answers here).
async fn queued_operation(t: &TestApp) {
    makima::domain::keys::create_for_daemon(&t.app.store, "alice", "d1")
        .await
        .unwrap();
    let daemon =
        t.ok("{ daemons { nodes { id } } }", json!({})).await["daemons"]["nodes"][0]["id"].clone();
    let task = fields(
        t,
        "mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }",
        json!({ "name": "remote", "daemonId": daemon, "repository": "repo" }),
    )
    .await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.say(&task, &["one", "two"]).await;
    t.checkpoint(&task, &"a".repeat(40)).await;
    t.say(&task, &["three"]).await;
    let queued = fields(
        t,
        "mutation($i: RewindConversationInput!) { rewindConversation(input: $i) { codeOperation { status } } }",
        json!({ "taskId": task, "byMessageCount": 1, "rewindCode": true }),
    )
    .await;
    assert_eq!(
        queued["rewindConversation"]["codeOperation"]["status"],
        "QUEUED"
    );
}

/// A code operation a stopped server left announced, recovered as FAILED, which
/// records `CODE_OPERATION_COMPLETED`.
async fn interrupted_operation(t: &TestApp, task: &str, repo: &TestRepo, commit: &str) {
    use makima::entities::code_operation_intent;
    let owner = makima::store::owners::find_by_name(t.app.store.db(), "alice")
        .await
        .unwrap()
        .expect("alice")
        .id;
    let intent = code_operation_intent::Model {
        id: CodeOperationId::new(),
        owner_id: owner,
        task_id: TaskId(Uuid::parse_str(task).unwrap()),
        kind: makima::entities::kinds::CodeOperationKind::Restore,
        dir: repo.path(),
        commit_sha: commit.into(),
        saved_ref: Some("refs/makima/saved/never-written".into()),
        branch: None,
        worktree_path: None,
        created_at: chrono::Utc::now(),
    };
    makima::store::intents::insert(t.app.store.db(), intent)
        .await
        .unwrap();
    assert_eq!(makima::domain::code::reconcile(&t.app).await.unwrap(), 1);
}
