//! Every query and field of API.md on a small fixture: a contract with a supervisor
//! conversation in two phases, tasks with parents, events and checkpoints.

mod common;

use chrono::{DateTime, Utc};
use common::{TestApp, ids};
use serde_json::{Value, json};

struct Fixture {
    t: TestApp,
    contract: String,
    sup: String,
    /// Task of the contract.
    t1: String,
    /// Subtask of t1, RUNNING.
    t2: String,
    /// A task without a contract.
    t3: String,
    /// Checkpoints: t1's two, then the supervisor's.
    cps: Vec<Value>,
}

async fn fixture() -> Fixture {
    let t = TestApp::new().await;
    let (contract, sup) = t.create_contract("c").await;
    t.append_messages(&sup, 2).await;
    t.ok(
        "mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"specify\"}) { contract { phase } } }",
        json!({ "c": contract }),
    )
    .await;
    t.append_messages(&sup, 3).await;
    let t1 = t.create_task("t1", Some(&contract)).await;
    let t2 = t.create_subtask("t2", None, &t1).await;
    let t3 = t.create_task("t3", None).await;
    t.append_messages(&t1, 4).await;
    let events: Vec<Value> = ["OUTPUT", "TOOL_CALL", "TOOL_RESULT", "OUTPUT", "ERROR"]
        .iter()
        .enumerate()
        .map(|(i, ty)| json!({ "type": ty, "data": { "i": i } }))
        .collect();
    t.ok(
        "mutation($t: ID!, $e: [TaskEventInput!]!) { appendTaskEvents(input: {taskId: $t, events: $e}) { events { sequence } } }",
        json!({ "t": t1, "e": events }),
    )
    .await;
    let mut cps = vec![t.checkpoint(&t1, "aaaaaaa").await];
    let data = t
        .ok(
            common::TestApp::CHECKPOINT,
            json!({ "t": t1, "sha": "abcdef0123", "m": "second", "b": "feature", "f": ["a.rs", {"b": 1}] }),
        )
        .await;
    cps.push(data["recordCheckpoint"]["checkpoint"].clone());
    cps.push(t.checkpoint(&sup, "bbbbbbb").await);
    t.set_status(&t2, "RUNNING").await;
    Fixture {
        t,
        contract,
        sup,
        t1,
        t2,
        t3,
        cps,
    }
}

fn owned(v: &[&String]) -> Vec<String> {
    v.iter().map(|s| (*s).clone()).collect()
}

const NIL: &str = "00000000-0000-0000-0000-000000000000";

#[tokio::test]
async fn single_fetches_and_their_fields() {
    let f = fixture().await;
    let t = &f.t;
    let data = t
        .ok(
            "query($c: ID!) { viewer { owner } contract(id: $c) { id name description phases phase status repository createdAt updatedAt supervisor { status phase lastActivity messageCount task { id isSupervisor name status contract { id } } } } }",
            json!({ "c": f.contract }),
        )
        .await;
    assert_eq!(data["viewer"]["owner"], "alice");
    let c = &data["contract"];
    assert_eq!(c["id"], f.contract.as_str());
    assert_eq!(c["name"], "c");
    assert_eq!(c["description"], Value::Null);
    assert_eq!(
        c["phases"],
        json!(["research", "specify", "plan", "execute", "review"])
    );
    assert_eq!(c["phase"], "specify");
    assert_eq!(c["status"], "ACTIVE");
    assert_eq!(c["repository"], Value::Null);
    let created: DateTime<Utc> = c["createdAt"].as_str().unwrap().parse().unwrap();
    let updated: DateTime<Utc> = c["updatedAt"].as_str().unwrap().parse().unwrap();
    assert!(updated > created, "the phase change moved updatedAt");
    let s = &c["supervisor"];
    assert_eq!(s["status"], "PENDING");
    assert_eq!(s["phase"], "specify");
    assert_eq!(s["messageCount"], 5);
    assert_eq!(s["task"]["id"], f.sup.as_str());
    assert_eq!(s["task"]["isSupervisor"], true);
    assert_eq!(s["task"]["contract"]["id"], f.contract.as_str());
    let last: DateTime<Utc> = s["lastActivity"].as_str().unwrap().parse().unwrap();
    assert!(last > created);

    let q = "query($id: ID!) { task(id: $id) { id name plan status isSupervisor daemonId repository worktreePath branch baseBranch contract { id } parent { id } forkedFrom { task { id } } continuedFrom { id } forks { totalCount nodes { id } } createdAt updatedAt startedAt completedAt } }";
    let task = t.ok(q, json!({ "id": f.t2 })).await["task"].clone();
    assert_eq!(task["id"], f.t2.as_str());
    assert_eq!(task["name"], "t2");
    assert_eq!(task["status"], "RUNNING");
    assert_eq!(task["isSupervisor"], false);
    assert_eq!(task["parent"]["id"], f.t1.as_str());
    // A subtask without contractId takes its parent's contract.
    assert_eq!(task["contract"]["id"], f.contract.as_str());
    assert_eq!(task["forkedFrom"], Value::Null);
    assert_eq!(task["continuedFrom"], Value::Null);
    assert_eq!(task["forks"], json!({ "totalCount": 0, "nodes": [] }));
    assert!(task["startedAt"].is_string());
    assert_eq!(task["completedAt"], Value::Null);
    for k in [
        "plan",
        "daemonId",
        "repository",
        "worktreePath",
        "branch",
        "baseBranch",
    ] {
        assert_eq!(task[k], Value::Null, "{k}");
    }
    let task = t.ok(q, json!({ "id": f.t3 })).await["task"].clone();
    assert_eq!(task["contract"], Value::Null);
    assert_eq!(task["parent"], Value::Null);
    assert_eq!(task["startedAt"], Value::Null);

    let q = "query($id: ID!) { checkpoint(id: $id) { id number commitSha branch message filesChanged messageCount task { id } createdAt } }";
    let cp = t.ok(q, json!({ "id": f.cps[1]["id"] })).await["checkpoint"].clone();
    assert_eq!(cp, f.cps[1]);
    assert_eq!(cp["number"], 2);
    assert_eq!(cp["commitSha"], "abcdef0123");
    assert_eq!(cp["branch"], "feature");
    assert_eq!(cp["message"], "second");
    assert_eq!(cp["filesChanged"], json!(["a.rs", {"b": 1}]));
    assert_eq!(cp["messageCount"], 4);
    assert_eq!(cp["task"]["id"], f.t1.as_str());

    // Unknown ids are null; malformed ones BAD_USER_INPUT.
    for (field, ty) in [
        ("contract", "Contract"),
        ("task", "Task"),
        ("checkpoint", "Checkpoint"),
    ] {
        let q = format!("query($id: ID!) {{ {field}(id: $id) {{ __typename }} }}");
        let data = t.ok(&q, json!({ "id": NIL })).await;
        assert_eq!(data[field], Value::Null, "{ty}");
        let data = t.ok(&q, json!({ "id": uuid::Uuid::now_v7() })).await;
        assert_eq!(data[field], Value::Null, "{ty}");
        // Another kind's id is not this kind's.
        let data = t.ok(&q, json!({ "id": f.cps[0]["task"]["id"] })).await;
        if field != "task" {
            assert_eq!(data[field], Value::Null, "{ty}");
        }
        for bad in ["nope", "", "1234", "00000000-0000-0000-0000-00000000000g"] {
            t.fails("BAD_USER_INPUT", &q, json!({ "id": bad })).await;
        }
    }
}

#[tokio::test]
async fn contracts_and_their_filters() {
    let t = TestApp::new().await;
    let (a, _) = t.create_contract("a").await;
    let (b, _) = t.contract_with_phases("b", &["one", "two"]).await;
    let (c, _) = t.create_contract("c").await;
    let (d, _) = t.create_contract("d").await;
    t.ok(
        "mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"plan\"}) { contract { id } } }",
        json!({ "c": c }),
    )
    .await;
    let status = "mutation($c: ID!, $s: ContractStatus!) { updateContractStatus(input: {contractId: $c, status: $s}) { contract { status } } }";
    t.ok(status, json!({ "c": b, "s": "COMPLETED" })).await;
    t.ok(status, json!({ "c": d, "s": "ARCHIVED" })).await;
    let q = "query($f: ContractFilter) { contracts(filter: $f) { totalCount nodes { id } edges { node { id } } } }";
    let cases = [
        (json!(null), vec![&a, &b, &c, &d]),
        (json!({}), vec![&a, &b, &c, &d]),
        (json!({ "status": ["ACTIVE"] }), vec![&a, &c]),
        (json!({ "status": ["COMPLETED", "ARCHIVED"] }), vec![&b, &d]),
        (json!({ "status": [] }), vec![]),
        (json!({ "phase": "research" }), vec![&a, &d]),
        (json!({ "phase": "one" }), vec![&b]),
        (json!({ "phase": "plan", "status": ["ACTIVE"] }), vec![&c]),
        (json!({ "phase": "plan", "status": ["ARCHIVED"] }), vec![]),
        (json!({ "phase": "nope" }), vec![]),
    ];
    for (filter, expected) in cases {
        let data = t.ok(q, json!({ "f": filter })).await;
        let got = ids(&data["contracts"]["nodes"]);
        assert_eq!(got, owned(&expected), "filter {filter}");
        assert_eq!(data["contracts"]["totalCount"], expected.len(), "{filter}");
        let edge_ids: Vec<&str> = data["contracts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(edge_ids, expected, "edges of {filter}");
    }
}

#[tokio::test]
async fn tasks_and_their_filters() {
    let f = fixture().await;
    let t = &f.t;
    let (other_contract, other_sup) = t.create_contract("other").await;
    let t4 = t.create_subtask("t4", Some(&f.contract), &f.t1).await;
    t.set_status(&t4, "FAILED").await;
    let q = "query($f: TaskFilter) { tasks(filter: $f) { totalCount nodes { id } } }";
    let (c, s, t1, t2, t3) = (&f.contract, &f.sup, &f.t1, &f.t2, &f.t3);
    let cases = [
        (json!(null), vec![s, t1, t2, t3, &other_sup, &t4]),
        (json!({ "contractId": c }), vec![s, t1, t2, &t4]),
        (json!({ "contractId": other_contract }), vec![&other_sup]),
        (json!({ "contractId": NIL }), vec![]),
        (json!({ "parentTaskId": t1 }), vec![t2, &t4]),
        (json!({ "parentTaskId": t2 }), vec![]),
        (json!({ "status": ["RUNNING", "FAILED"] }), vec![t2, &t4]),
        (
            json!({ "status": ["PENDING"] }),
            vec![s, t1, t3, &other_sup],
        ),
        (json!({ "status": [] }), vec![]),
        (json!({ "isSupervisor": true }), vec![s, &other_sup]),
        (json!({ "isSupervisor": false }), vec![t1, t2, t3, &t4]),
        (
            json!({ "contractId": c, "isSupervisor": false, "status": ["PENDING"] }),
            vec![t1],
        ),
        (
            json!({ "contractId": c, "parentTaskId": t1, "status": ["FAILED"] }),
            vec![&t4],
        ),
    ];
    for (filter, expected) in cases {
        let data = t.ok(q, json!({ "f": filter })).await;
        assert_eq!(
            ids(&data["tasks"]["nodes"]),
            owned(&expected),
            "filter {filter}"
        );
        assert_eq!(data["tasks"]["totalCount"], expected.len(), "{filter}");
    }
    for bad in [json!({ "contractId": "x" }), json!({ "parentTaskId": "x" })] {
        t.fails("BAD_USER_INPUT", q, json!({ "f": bad })).await;
    }
}

#[tokio::test]
async fn contract_fields_supervisor_conversation_history_tasks_checkpoints() {
    let f = fixture().await;
    let t = &f.t;
    let q = "query($c: ID!, $p: String, $hf: TimelineFilter, $tf: TaskFilter) { contract(id: $c) {
        conversation(phase: $p) { totalCount nodes { id index role content phase createdAt } }
        history(filter: $hf) { totalCount nodes { id } }
        tasks(filter: $tf) { totalCount nodes { id } }
        checkpoints { totalCount nodes { id number task { id } } } } }";
    let data = t.ok(q, json!({ "c": f.contract })).await;
    let c = &data["contract"];
    let conv = c["conversation"]["nodes"].as_array().unwrap();
    assert_eq!(c["conversation"]["totalCount"], 5);
    let indexes: Vec<i64> = conv.iter().map(|m| m["index"].as_i64().unwrap()).collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    let phases: Vec<&str> = conv.iter().map(|m| m["phase"].as_str().unwrap()).collect();
    assert_eq!(
        phases,
        ["research", "research", "specify", "specify", "specify"]
    );
    assert_eq!(conv[3]["role"], "ASSISTANT");
    assert_eq!(
        conv[3]["content"],
        json!([{ "type": "text", "text": "m1" }])
    );
    assert_eq!(ids(&c["tasks"]["nodes"]), owned(&[&f.sup, &f.t1, &f.t2]));
    assert_eq!(c["tasks"]["totalCount"], 3);
    let cp_ids: Vec<&Value> = f.cps.iter().map(|c| &c["id"]).collect();
    let got: Vec<&Value> = c["checkpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["id"])
        .collect();
    assert_eq!(got, cp_ids, "oldest first across the contract's tasks");
    assert_eq!(c["checkpoints"]["totalCount"], 3);
    assert_eq!(c["checkpoints"]["nodes"][2]["task"]["id"], f.sup.as_str());
    assert_eq!(c["checkpoints"]["nodes"][2]["number"], 1);

    // history is the contract's slice of the timeline.
    let timeline = t.timeline().await;
    let of_contract: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["contract"]["id"] == f.contract.as_str())
        .map(|e| &e["id"])
        .collect();
    assert_eq!(of_contract.len(), 13, "{timeline:?}");
    let got: Vec<&Value> = c["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["id"])
        .collect();
    assert_eq!(got, of_contract);
    assert_eq!(c["history"]["totalCount"], 13);

    // Arguments: conversation phase, history filter, tasks filter.
    let run = |p: Value, hf: Value, tf: Value| {
        let vars = json!({ "c": f.contract, "p": p, "hf": hf, "tf": tf });
        async move { t.ok(q, vars).await["contract"].clone() }
    };
    let c = run(
        json!("research"),
        json!({ "taskId": f.t1 }),
        json!({ "isSupervisor": false }),
    )
    .await;
    assert_eq!(c["conversation"]["totalCount"], 2);
    let idx: Vec<&Value> = c["conversation"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["index"])
        .collect();
    assert_eq!(idx, [0, 1]);
    let t1_events: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["task"]["id"] == f.t1.as_str())
        .map(|e| &e["id"])
        .collect();
    let got: Vec<&Value> = c["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["id"])
        .collect();
    assert_eq!(got, t1_events);
    assert_eq!(ids(&c["tasks"]["nodes"]), owned(&[&f.t1, &f.t2]));
    let c = run(
        json!("specify"),
        json!({ "contractId": NIL }),
        json!({ "status": ["RUNNING"] }),
    )
    .await;
    assert_eq!(c["conversation"]["totalCount"], 3);
    assert_eq!(c["conversation"]["nodes"][0]["index"], 2);
    assert_eq!(c["history"]["totalCount"], 0, "another contract's slice");
    assert_eq!(ids(&c["tasks"]["nodes"]), owned(&[&f.t2]));
    let c = run(
        json!("review"),
        json!({ "taskId": f.t3 }),
        json!({ "contractId": NIL }),
    )
    .await;
    assert_eq!(c["conversation"]["totalCount"], 0);
    assert_eq!(c["history"]["totalCount"], 0, "a task outside the contract");
    assert_eq!(c["tasks"]["totalCount"], 0, "tasks of another contract");
}

#[tokio::test]
async fn task_fields_conversation_events_checkpoints() {
    let f = fixture().await;
    let t = &f.t;
    let q = "query($t: ID!, $types: [TaskEventType!]) { task(id: $t) {
        conversation { totalCount nodes { index role content phase } }
        events(filter: {types: $types}) { totalCount nodes { id sequence type data createdAt } }
        checkpoints { totalCount nodes { id number commitSha messageCount } } } }";
    let task = t.ok(q, json!({ "t": f.t1 })).await["task"].clone();
    assert_eq!(task["conversation"]["totalCount"], 4);
    for (i, m) in task["conversation"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(m["index"], i);
        assert_eq!(
            m["phase"],
            Value::Null,
            "only supervisor messages carry a phase"
        );
        assert_eq!(m["content"][0]["text"], format!("m{i}"));
    }
    let events = task["events"]["nodes"].as_array().unwrap();
    assert_eq!(task["events"]["totalCount"], 5);
    let seq: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seq, [1, 2, 3, 4, 5]);
    assert_eq!(events[1]["type"], "TOOL_CALL");
    assert_eq!(events[4]["data"], json!({ "i": 4 }));
    let numbers: Vec<&Value> = task["checkpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["number"])
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(task["checkpoints"]["totalCount"], 2);
    assert_eq!(task["checkpoints"]["nodes"][0]["commitSha"], "aaaaaaa");

    for (types, expected) in [
        (json!(["OUTPUT"]), vec![1, 4]),
        (json!(["ERROR", "TOOL_CALL"]), vec![2, 5]),
        (json!(["STATUS"]), vec![]),
        (json!([]), vec![]),
    ] {
        let task = t.ok(q, json!({ "t": f.t1, "types": types })).await["task"].clone();
        let seq: Vec<i64> = task["events"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(seq, expected, "{types}");
        assert_eq!(task["events"]["totalCount"], expected.len(), "{types}");
    }
    // The supervisor task's conversation is the contract's.
    let task = t.ok(q, json!({ "t": f.sup })).await["task"].clone();
    assert_eq!(task["conversation"]["totalCount"], 5);
    assert_eq!(task["conversation"]["nodes"][4]["phase"], "specify");
    assert_eq!(task["checkpoints"]["nodes"][0]["messageCount"], 5);
    // A task with nothing yet.
    let task = t.ok(q, json!({ "t": f.t3 })).await["task"].clone();
    for k in ["conversation", "events", "checkpoints"] {
        assert_eq!(task[k], json!({ "totalCount": 0, "nodes": [] }), "{k}");
    }
}

fn created(e: &Value) -> DateTime<Utc> {
    e["createdAt"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn timeline_and_every_filter() {
    let f = fixture().await;
    let t = &f.t;
    let all = t.timeline().await;
    let types: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "CONTRACT_CREATED",
            "TASK_CREATED",
            "MESSAGES_APPENDED",
            "PHASE_CHANGED",
            "MESSAGES_APPENDED",
            "TASK_CREATED",
            "TASK_CREATED",
            "TASK_CREATED",
            "MESSAGES_APPENDED",
            "TASK_EVENTS_APPENDED",
            "CHECKPOINT_CREATED",
            "CHECKPOINT_CREATED",
            "CHECKPOINT_CREATED",
            "TASK_STATUS_CHANGED",
        ]
    );
    // Timestamps never go backwards along the timeline.
    assert!(all.windows(2).all(|w| created(&w[0]) <= created(&w[1])));
    let q = "query($f: TimelineFilter) { timeline(first: 100, filter: $f) { totalCount nodes { id } edges { cursor node { cursor } } } }";
    let check = |filter: Value, keep: Box<dyn Fn(&Value) -> bool>| {
        let expected: Vec<&Value> = all.iter().filter(|e| keep(e)).map(|e| &e["id"]).collect();
        async move {
            let data = t.ok(q, json!({ "f": filter })).await;
            let got: Vec<&Value> = data["timeline"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| &n["id"])
                .collect();
            assert_eq!(got, expected, "filter {filter}");
            assert_eq!(data["timeline"]["totalCount"], expected.len(), "{filter}");
            for e in data["timeline"]["edges"].as_array().unwrap() {
                assert_eq!(
                    e["cursor"], e["node"]["cursor"],
                    "edge cursor == event cursor"
                );
            }
            expected.len()
        }
    };
    let (c, t1, t3) = (f.contract.clone(), f.t1.clone(), f.t3.clone());
    assert_eq!(check(json!({}), Box::new(|_| true)).await, 14);
    let cc = c.clone();
    assert_eq!(
        check(
            json!({ "contractId": c }),
            Box::new(move |e| e["contract"]["id"] == cc.as_str())
        )
        .await,
        13,
        "every event but t3's creation"
    );
    let tt = t1.clone();
    assert_eq!(
        check(
            json!({ "taskId": t1 }),
            Box::new(move |e| e["task"]["id"] == tt.as_str())
        )
        .await,
        5
    );
    let tt = t3.clone();
    assert_eq!(
        check(
            json!({ "taskId": t3 }),
            Box::new(move |e| e["task"]["id"] == tt.as_str())
        )
        .await,
        1
    );
    // Filters combine: t3 is in no contract.
    check(
        json!({ "taskId": t3, "contractId": c }),
        Box::new(|_| false),
    )
    .await;
    check(json!({ "contractId": NIL }), Box::new(|_| false)).await;
    check(json!({ "taskId": NIL }), Box::new(|_| false)).await;
    check(
        json!({ "types": ["CHECKPOINT_CREATED", "PHASE_CHANGED"] }),
        Box::new(|e| e["type"] == "CHECKPOINT_CREATED" || e["type"] == "PHASE_CHANGED"),
    )
    .await;
    check(json!({ "types": [] }), Box::new(|_| false)).await;
    check(json!({ "types": [], "contractId": c }), Box::new(|_| false)).await;
    check(json!({ "types": ["BRANCH_CREATED"] }), Box::new(|_| false)).await;
    assert_eq!(
        check(
            json!({ "phase": "research" }),
            Box::new(|e| e["phase"] == "research")
        )
        .await,
        3
    );
    assert_eq!(
        check(
            json!({ "phase": "specify" }),
            Box::new(|e| e["phase"] == "specify")
        )
        .await,
        10
    );
    check(json!({ "phase": "review" }), Box::new(|_| false)).await;
    // since is inclusive, until exclusive, at every event's own timestamp.
    for e in &all {
        let at = created(e);
        let s = e["createdAt"].clone();
        check(json!({ "since": s }), Box::new(move |x| created(x) >= at)).await;
        check(json!({ "until": s }), Box::new(move |x| created(x) < at)).await;
        check(json!({ "since": s, "until": s }), Box::new(|_| false)).await;
    }
    let (from, to) = (created(&all[2]), created(&all[10]));
    let n = check(
        json!({ "since": all[2]["createdAt"], "until": all[10]["createdAt"], "types": ["MESSAGES_APPENDED"] }),
        Box::new(move |x| {
            created(x) >= from && created(x) < to && x["type"] == "MESSAGES_APPENDED"
        }),
    )
    .await;
    assert_eq!(n, 3);
    t.fails("BAD_USER_INPUT", q, json!({ "f": { "contractId": "x" } }))
        .await;
    t.fails("BAD_USER_INPUT", q, json!({ "f": { "taskId": "x" } }))
        .await;
    // An unparsable time is refused before running.
    let reply = t.post(q, json!({ "f": { "since": "yesterday" } })).await;
    assert!(reply.code().is_some(), "{}", reply.body);
}
