//! resumeSupervisor (all modes) and resumeTask, their events, errors and concurrency.

mod common;
mod gitfix;

use common::TestApp;
use gitfix::TestRepo;
use serde_json::{Value, json};

const RESUME_SUP: &str = "mutation($i: ResumeSupervisorInput!) { resumeSupervisor(input: $i) {
    supervisorTask { id status completedAt } daemonId status
    resumedFrom { phase lastActivity messageCount } codeOperation { kind commitSha } } }";
const RESUME_TASK: &str =
    "mutation($t: ID!, $c: ID) { resumeTask(input: {taskId: $t, fromCheckpointId: $c}) {
    task { status completedAt } codeOperation { kind commitSha } } }";

async fn set_status(t: &TestApp, task: &str, statuses: &[&str]) {
    for s in statuses {
        t.set_status(task, s).await;
    }
}

async fn last_event(t: &TestApp) -> Value {
    let d = t
        .ok(
            "{ timeline(last: 1) { nodes { type data phase } } }",
            json!({}),
        )
        .await;
    d["timeline"]["nodes"][0].clone()
}

async fn conversation(t: &TestApp, contract: &str) -> Vec<(String, String)> {
    let d = t
        .ok("query($id: ID!) { contract(id: $id) { conversation(first: 100) { nodes { phase content } } } }", json!({ "id": contract }))
        .await;
    d["contract"]["conversation"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["phase"].as_str().unwrap().to_owned(),
                n["content"][0]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn continue_resumes_only_stopped_supervisors() {
    let t = TestApp::new().await;
    let (contract, sup) = t.create_contract("c").await;
    let input = json!({ "i": { "contractId": contract, "mode": "CONTINUE" } });
    t.fails("CONFLICT", RESUME_SUP, input.clone()).await; // PENDING
    set_status(&t, &sup, &["RUNNING"]).await;
    t.fails("CONFLICT", RESUME_SUP, input.clone()).await;
    t.say(&sup, &["hello"]).await;
    set_status(&t, &sup, &["FAILED"]).await;
    let d = t.ok(RESUME_SUP, input.clone()).await;
    let r = &d["resumeSupervisor"];
    assert_eq!(r["status"], "PENDING");
    assert_eq!(r["supervisorTask"]["status"], "PENDING");
    assert!(
        r["supervisorTask"]["completedAt"].is_null(),
        "a resume clears completedAt"
    );
    assert_eq!(r["resumedFrom"]["phase"], "research");
    assert_eq!(r["resumedFrom"]["messageCount"], 1);
    assert!(r["codeOperation"].is_null());
    let e = last_event(&t).await;
    assert_eq!(e["type"], "SUPERVISOR_RESUMED");
    for key in [
        "mode",
        "fromStatus",
        "checkpointId",
        "messageCount",
        "codeOperationId",
    ] {
        assert!(
            e["data"].get(key).is_some(),
            "{key} missing in {}",
            e["data"]
        );
    }
    assert_eq!(e["data"]["mode"], "CONTINUE");
    assert_eq!(e["data"]["fromStatus"], "FAILED");
    assert_eq!(e["data"]["messageCount"], 1);
    set_status(&t, &sup, &["RUNNING", "DONE"]).await;
    t.fails("CONFLICT", RESUME_SUP, input).await;
    // Argument rules.
    t.fails(
        "BAD_USER_INPUT",
        RESUME_SUP,
        json!({ "i": { "contractId": contract, "mode": "FROM_CHECKPOINT" } }),
    )
    .await;
    let cp = t.checkpoint_id(&sup, "abcdef1").await;
    t.fails(
        "BAD_USER_INPUT",
        RESUME_SUP,
        json!({ "i": { "contractId": contract, "mode": "CONTINUE", "checkpointId": cp } }),
    )
    .await;
    t.fails("NOT_FOUND", RESUME_SUP, json!({ "i": { "contractId": "01936c4e-0000-7000-8000-000000000000", "mode": "CONTINUE" } }))
        .await;
}

#[tokio::test]
async fn of_fifty_concurrent_resumes_exactly_one_wins() {
    let t = TestApp::new().await;
    let (contract, sup) = t.create_contract("c").await;
    set_status(&t, &sup, &["RUNNING", "INTERRUPTED"]).await;
    let input = json!({ "i": { "contractId": contract, "mode": "CONTINUE" } });
    let replies =
        futures_util::future::join_all((0..50).map(|_| t.post(RESUME_SUP, input.clone()))).await;
    let wins = replies
        .iter()
        .filter(|r| r.body.get("errors").is_none())
        .count();
    let conflicts = replies
        .iter()
        .filter(|r| r.code() == Some("CONFLICT"))
        .count();
    assert_eq!((wins, conflicts), (1, 49));
    let resumed = t
        .timeline_types()
        .await
        .iter()
        .filter(|t| *t == "SUPERVISOR_RESUMED")
        .count();
    assert_eq!(resumed, 1);
}

#[tokio::test]
async fn restart_phase_drops_the_latest_run_of_the_current_phase() {
    let t = TestApp::new().await;
    let (contract, sup) = t.create_contract("c").await;
    set_status(&t, &sup, &["RUNNING"]).await;
    t.say(&sup, &["r1"]).await;
    t.say(&sup, &["r2"]).await;
    t.ok("mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"plan\"}) { contract { phase } } }", json!({ "c": contract }))
        .await;
    for m in ["p1", "p2", "p3"] {
        t.say(&sup, &[m]).await;
    }
    set_status(&t, &sup, &["INTERRUPTED"]).await;
    let d = t
        .ok(
            RESUME_SUP,
            json!({ "i": { "contractId": contract, "mode": "RESTART_PHASE" } }),
        )
        .await;
    assert_eq!(d["resumeSupervisor"]["resumedFrom"]["messageCount"], 5);
    assert_eq!(d["resumeSupervisor"]["resumedFrom"]["phase"], "plan");
    let conv = conversation(&t, &contract).await;
    assert_eq!(
        conv,
        [
            ("research".into(), "r1".into()),
            ("research".into(), "r2".into())
        ]
    );
    assert_eq!(last_event(&t).await["data"]["messageCount"], 2);
}

#[tokio::test]
async fn from_checkpoint_moves_conversation_phase_and_code() {
    let t = TestApp::new().await;
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let d = t
        .ok(
            "mutation($r: String!) { createContract(input: {name: \"c\", repository: $r}) { contract { id supervisor { task { id repository } } } } }",
            json!({ "r": repo.path() }),
        )
        .await;
    let contract = d["createContract"]["contract"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sup = d["createContract"]["contract"]["supervisor"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    set_status(&t, &sup, &["RUNNING"]).await;
    t.say(&sup, &["research done"]).await;
    let a = repo.commit("A", &[("spec.md", "v1")]);
    let cp = t.checkpoint_id(&sup, &a).await;
    t.ok("mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"execute\"}) { contract { phase } } }", json!({ "c": contract }))
        .await;
    t.say(&sup, &["executing"]).await;
    repo.commit("B", &[("spec.md", "v2"), ("code.rs", "x")]);
    set_status(&t, &sup, &["INTERRUPTED"]).await;

    // Another task's checkpoint is BAD_USER_INPUT.
    let other = t.create_task("o", Some(&contract)).await;
    let other_cp = t.checkpoint_id(&other, "abcdef1").await;
    t.fails("BAD_USER_INPUT", RESUME_SUP, json!({ "i": { "contractId": contract, "mode": "FROM_CHECKPOINT", "checkpointId": other_cp } }))
        .await;

    let d = t.ok(RESUME_SUP, json!({ "i": { "contractId": contract, "mode": "FROM_CHECKPOINT", "checkpointId": cp } })).await;
    let r = &d["resumeSupervisor"];
    assert_eq!(r["codeOperation"]["kind"], "RESTORE");
    assert_eq!(r["codeOperation"]["commitSha"], a);
    assert_eq!(repo.read("spec.md").as_deref(), Some("v1"));
    assert_eq!(repo.read("code.rs"), None);
    assert_eq!(
        conversation(&t, &contract).await,
        [("research".into(), "research done".into())]
    );
    let d = t
        .ok(
            "query($id: ID!) { contract(id: $id) { phase supervisor { status } } }",
            json!({ "id": contract }),
        )
        .await;
    assert_eq!(
        d["contract"]["phase"], "research",
        "the phase goes back to the checkpoint's last message"
    );
    assert_eq!(d["contract"]["supervisor"]["status"], "PENDING");
}

#[tokio::test]
async fn resume_task_with_and_without_a_checkpoint() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    t.fails("CONFLICT", RESUME_TASK, json!({ "t": task })).await; // PENDING
    set_status(&t, &task, &["RUNNING"]).await;
    t.fails("CONFLICT", RESUME_TASK, json!({ "t": task })).await;
    set_status(&t, &task, &["PAUSED"]).await;
    let d = t.ok(RESUME_TASK, json!({ "t": task })).await;
    assert_eq!(d["resumeTask"]["task"]["status"], "PENDING");
    assert!(d["resumeTask"]["codeOperation"].is_null());
    let e = last_event(&t).await;
    assert_eq!(e["type"], "TASK_RESUMED");
    assert_eq!(
        e["data"],
        json!({ "fromStatus": "PAUSED", "checkpointId": null, "codeOperationId": null })
    );

    // From a checkpoint: conversation and code move there first.
    let repo = TestRepo::new(&t.app.workspace_root, "repo");
    let d = t
        .ok("mutation($r: String!) { createTask(input: {name: \"c\", repository: $r}) { task { id } } }", json!({ "r": repo.path() }))
        .await;
    let task = d["createTask"]["task"]["id"].as_str().unwrap().to_owned();
    set_status(&t, &task, &["RUNNING"]).await;
    t.say(&task, &["one"]).await;
    let a = repo.commit("A", &[("f", "1")]);
    let cp = t.checkpoint_id(&task, &a).await;
    t.say(&task, &["two"]).await;
    repo.commit("B", &[("f", "2")]);
    set_status(&t, &task, &["FAILED"]).await;
    let d = t.ok(RESUME_TASK, json!({ "t": task, "c": cp })).await;
    assert_eq!(d["resumeTask"]["codeOperation"]["commitSha"], a);
    assert!(d["resumeTask"]["task"]["completedAt"].is_null());
    assert_eq!(repo.read("f").as_deref(), Some("1"));
    let d = t
        .ok(
            "query($id: ID!) { task(id: $id) { conversation { totalCount } } }",
            json!({ "id": task }),
        )
        .await;
    assert_eq!(d["task"]["conversation"]["totalCount"], 1);
    set_status(&t, &task, &["RUNNING", "DONE"]).await;
    t.fails("CONFLICT", RESUME_TASK, json!({ "t": task })).await;
}
