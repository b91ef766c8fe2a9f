//! Owners never see or touch each other's rows: single fetches are null, lists and
//! filters are empty, mutations are NOT_FOUND exactly as for ids that do not exist.

mod common;

use common::TestApp;
use serde_json::{Value, json};

struct Alice {
    contract: String,
    sup: String,
    task: String,
    child: String,
    cp: String,
    sup_cp: String,
    rewind_event: String,
}

async fn alice(t: &TestApp) -> Alice {
    let (contract, sup) = t.create_contract("alice's").await;
    let task = t.create_task("t", Some(&contract)).await;
    let child = t.create_subtask("child", None, &task).await;
    t.append_messages(&sup, 3).await;
    t.append_messages(&task, 3).await;
    t.append_events(&task, 3).await;
    let cp = t.checkpoint(&task, "abcdef1").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sup_cp = t.checkpoint(&sup, "abcdef2").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.set_status(&task, "RUNNING").await;
    t.set_status(&task, "FAILED").await;
    t.set_status(&sup, "RUNNING").await;
    t.set_status(&sup, "INTERRUPTED").await;
    t.append_messages(&child, 2).await;
    let data = t
        .ok(
            "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1}) { event { id } } }",
            json!({ "t": child }),
        )
        .await;
    let rewind_event = data["rewindConversation"]["event"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Alice {
        contract,
        sup,
        task,
        child,
        cp,
        sup_cp,
        rewind_event,
    }
}

#[tokio::test]
async fn another_owner_sees_nothing() {
    let t = TestApp::new().await;
    let a = alice(&t).await;
    let bob = t.key_for("bob").await;
    let alice_timeline = t.timeline().await;
    assert_eq!(alice_timeline.len(), 15);

    let data = t
        .ok_as(
            &bob,
            "query($c: ID!, $s: ID!, $t: ID!, $cp: ID!) { viewer { owner } contract(id: $c) { id } sup: task(id: $s) { id } task(id: $t) { id } checkpoint(id: $cp) { id } contracts { totalCount nodes { id } } tasks { totalCount nodes { id } } timeline { totalCount nodes { id } } }",
            json!({ "c": a.contract, "s": a.sup, "t": a.task, "cp": a.cp }),
        )
        .await;
    let empty = json!({ "totalCount": 0, "nodes": [] });
    assert_eq!(
        data,
        json!({ "viewer": { "owner": "bob" }, "contract": null, "sup": null, "task": null, "checkpoint": null, "contracts": empty, "tasks": empty, "timeline": empty })
    );

    // bob's own rows, and filters naming alice's ids.
    let (alice_x, _) = t.contract_with_phases("alice's x", &["x"]).await;
    let bob_c = {
        let data = t
            .ok_as(
                &bob,
                "mutation { createContract(input: {name: \"bob's\"}) { contract { id supervisor { task { id } } } } }",
                json!({}),
            )
            .await;
        data["createContract"]["contract"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(alice_x, bob_c);
    let q = "query($c: ID!, $t: ID!, $bc: ID!) {
        contracts { nodes { id } }
        byContract: tasks(filter: {contractId: $c}) { totalCount nodes { id } }
        byParent: tasks(filter: {parentTaskId: $t}) { totalCount nodes { id } }
        tlContract: timeline(filter: {contractId: $c}) { totalCount nodes { id } }
        tlTask: timeline(filter: {taskId: $t}) { totalCount nodes { id } }
        contract(id: $bc) {
          history(filter: {taskId: $t}) { totalCount nodes { id } }
          tasks(filter: {parentTaskId: $t}) { totalCount nodes { id } }
          otherTasks: tasks(filter: {contractId: $c}) { totalCount nodes { id } }
        } }";
    let data = t
        .ok_as(
            &bob,
            q,
            json!({ "c": a.contract, "t": a.task, "bc": bob_c }),
        )
        .await;
    assert_eq!(data["contracts"]["nodes"], json!([{ "id": bob_c }]));
    for k in ["byContract", "byParent", "tlContract", "tlTask"] {
        assert_eq!(data[k], empty, "{k}");
    }
    for k in ["history", "tasks", "otherTasks"] {
        assert_eq!(data["contract"][k], empty, "{k}");
    }
    let bob_timeline = t.timeline_as(&bob).await;
    assert_eq!(bob_timeline.len(), 2);
    assert!(
        bob_timeline
            .iter()
            .all(|e| e["contract"]["id"] == bob_c.as_str())
    );
    // alice does not see bob's contract either, and hers are untouched.
    let data = t
        .ok(
            "query($c: ID!) { contract(id: $c) { id } }",
            json!({ "c": bob_c }),
        )
        .await;
    assert_eq!(data["contract"], Value::Null);
    let mine = t.timeline().await;
    assert_eq!(
        mine.len(),
        alice_timeline.len() + 2,
        "alice's own 'x' contract"
    );
    assert_eq!(mine[..alice_timeline.len()], alice_timeline[..]);
}

#[tokio::test]
async fn another_owners_ids_are_not_found_in_every_mutation() {
    let t = TestApp::new().await;
    let a = alice(&t).await;
    let bob = t.key_for("bob").await;
    // bob's own contract and task, in resumable states, to name alice's checkpoints.
    let data = t
        .ok_as(
            &bob,
            "mutation { createContract(input: {name: \"b\"}) { contract { id supervisor { task { id } } } } }",
            json!({}),
        )
        .await;
    let bc = data["createContract"]["contract"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bsup = data["createContract"]["contract"]["supervisor"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = t
        .ok_as(
            &bob,
            "mutation($c: ID!) { createTask(input: {name: \"bt\", contractId: $c}) { task { id } } }",
            json!({ "c": bc }),
        )
        .await;
    let bt = data["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (task, to) in [
        (&bt, "RUNNING"),
        (&bt, "FAILED"),
        (&bsup, "RUNNING"),
        (&bsup, "INTERRUPTED"),
    ] {
        t.ok_as(&bob, TestApp::SET_STATUS, json!({ "t": task, "s": to }))
            .await;
    }
    let alice_before = t.timeline().await;
    let bob_before = t.timeline_as(&bob).await;

    let m = json!([{ "role": "USER", "content": "x" }]);
    let msgs = "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m, idempotencyKey: \"k\"}) { messageCount } }";
    let cases: Vec<(&str, Value)> = vec![
        (
            "mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"plan\"}) { contract { id } } }",
            json!({ "c": a.contract }),
        ),
        (
            "mutation($c: ID!) { updateContractStatus(input: {contractId: $c, status: ARCHIVED}) { contract { id } } }",
            json!({ "c": a.contract }),
        ),
        (
            "mutation($c: ID) { createTask(input: {name: \"x\", contractId: $c}) { task { id } } }",
            json!({ "c": a.contract }),
        ),
        (
            "mutation($p: ID) { createTask(input: {name: \"x\", parentTaskId: $p}) { task { id } } }",
            json!({ "p": a.task }),
        ),
        (
            "mutation($p: ID) { createTask(input: {name: \"x\", continueFromTaskId: $p}) { task { id } } }",
            json!({ "p": a.task }),
        ),
        (TestApp::SET_STATUS, json!({ "t": a.task, "s": "RUNNING" })),
        (TestApp::SET_STATUS, json!({ "t": a.sup, "s": "RUNNING" })),
        (msgs, json!({ "t": a.task, "m": m })),
        (msgs, json!({ "t": a.sup, "m": m })),
        (
            "mutation($t: ID!) { appendTaskEvents(input: {taskId: $t, events: [{type: OUTPUT, data: 1}]}) { events { sequence } } }",
            json!({ "t": a.task }),
        ),
        (
            TestApp::CHECKPOINT,
            json!({ "t": a.task, "sha": "abcdef3", "m": "x" }),
        ),
        (
            "mutation($c: ID!) { resumeSupervisor(input: {contractId: $c, mode: CONTINUE}) { status } }",
            json!({ "c": a.contract }),
        ),
        (
            "mutation($c: ID!, $cp: ID) { resumeSupervisor(input: {contractId: $c, mode: FROM_CHECKPOINT, checkpointId: $cp}) { status } }",
            json!({ "c": bc, "cp": a.sup_cp }),
        ),
        (
            "mutation($c: ID!) { rewindConversation(input: {contractId: $c, byMessageCount: 1}) { newMessageCount } }",
            json!({ "c": a.contract }),
        ),
        (
            "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1}) { newMessageCount } }",
            json!({ "t": a.task }),
        ),
        (
            "mutation($e: ID!) { restoreConversation(input: {rewindEventId: $e}) { messageCount } }",
            json!({ "e": a.rewind_event }),
        ),
        (
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { id } } }",
            json!({ "t": a.task }),
        ),
        (
            "mutation($t: ID!, $cp: ID) { resumeTask(input: {taskId: $t, fromCheckpointId: $cp}) { task { id } } }",
            json!({ "t": bt, "cp": a.cp }),
        ),
        (
            "mutation($t: ID!, $cp: ID!) { rewindTask(input: {taskId: $t, checkpointId: $cp}) { task { id } } }",
            json!({ "t": a.task, "cp": a.cp }),
        ),
        (
            "mutation($t: ID!, $cp: ID!) { rewindTask(input: {taskId: $t, checkpointId: $cp}) { task { id } } }",
            json!({ "t": bt, "cp": a.cp }),
        ),
        (
            "mutation($t: ID!) { forkTask(input: {taskId: $t, messageCount: 1}) { task { id } } }",
            json!({ "t": a.task }),
        ),
        (
            "mutation($t: ID!, $cp: ID) { forkTask(input: {taskId: $t, checkpointId: $cp}) { task { id } } }",
            json!({ "t": bt, "cp": a.cp }),
        ),
        (
            "mutation($t: ID!, $cp: ID!) { branchFromCheckpoint(input: {taskId: $t, checkpointId: $cp, branchName: \"b\"}) { branch } }",
            json!({ "t": a.task, "cp": a.cp }),
        ),
    ];
    let nil = "00000000-0000-0000-0000-000000000000";
    for (query, vars) in cases {
        let reply = t.post_as(&bob, query, vars.clone()).await;
        assert_eq!(
            reply.code(),
            Some("NOT_FOUND"),
            "{query} {vars}: {}",
            reply.body
        );
        // Exactly as for an id that does not exist: same code and message.
        let mut unknown = vars.clone();
        for (k, v) in unknown.as_object_mut().unwrap() {
            let alice_ids = [
                &a.contract,
                &a.sup,
                &a.task,
                &a.child,
                &a.cp,
                &a.sup_cp,
                &a.rewind_event,
            ];
            if alice_ids.iter().any(|id| v == id.as_str()) {
                let _ = k;
                *v = json!(nil);
            }
        }
        let reply2 = t.post_as(&bob, query, unknown).await;
        assert_eq!(
            reply2.body["errors"][0]["message"], reply.body["errors"][0]["message"],
            "{query}"
        );
        assert_eq!(reply2.code(), Some("NOT_FOUND"));
    }
    assert_eq!(
        t.timeline().await,
        alice_before,
        "alice's rows are untouched"
    );
    assert_eq!(t.timeline_as(&bob).await, bob_before, "bob wrote nothing");
    let data = t
        .ok(
            "query($t: ID!, $c: ID!) { task(id: $t) { status conversation { totalCount } events { totalCount } checkpoints { totalCount } } contract(id: $c) { phase status } }",
            json!({ "t": a.task, "c": a.contract }),
        )
        .await;
    assert_eq!(
        data,
        json!({ "task": { "status": "FAILED", "conversation": { "totalCount": 3 }, "events": { "totalCount": 3 }, "checkpoints": { "totalCount": 1 } }, "contract": { "phase": "research", "status": "ACTIVE" } })
    );
}
