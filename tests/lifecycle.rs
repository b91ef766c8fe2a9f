//! createContract, changeContractPhase, updateContractStatus, createTask and
//! updateTaskStatus: limits, lifecycles, history events; refused calls write nothing.

mod common;

use chrono::{DateTime, Utc};
use common::TestApp;
use serde_json::{Value, json};

const CREATE: &str = "mutation($n: String!, $d: String, $p: [String!]) { createContract(input: {name: $n, description: $d, phases: $p}) { contract { id name description phases phase status supervisor { status phase messageCount task { id name isSupervisor status } } } } }";
const PHASE: &str = "mutation($c: ID!, $p: String!) { changeContractPhase(input: {contractId: $c, phase: $p}) { contract { id phase updatedAt } } }";
const STATUS: &str = "mutation($c: ID!, $s: ContractStatus!) { updateContractStatus(input: {contractId: $c, status: $s}) { contract { id status } } }";
const CREATE_TASK: &str = "mutation($n: String!, $plan: String, $c: ID, $p: ID) { createTask(input: {name: $n, plan: $plan, contractId: $c, parentTaskId: $p}) { task { id name plan status isSupervisor contract { id } parent { id } } } }";
const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a time").parse().expect("RFC 3339")
}

#[tokio::test]
async fn create_contract_defaults_custom_phases_and_limits() {
    let t = TestApp::new().await;
    let data = t.ok(CREATE, json!({ "n": "default" })).await;
    let c = &data["createContract"]["contract"];
    assert_eq!(
        c["phases"],
        json!(["research", "specify", "plan", "execute", "review"])
    );
    assert_eq!(c["phase"], "research");
    assert_eq!(c["status"], "ACTIVE");
    assert_eq!(c["description"], Value::Null);
    let s = &c["supervisor"];
    assert_eq!(
        (&s["status"], &s["phase"], &s["messageCount"]),
        (&json!("PENDING"), &json!("research"), &json!(0))
    );
    assert_eq!(s["task"]["isSupervisor"], true);
    assert_eq!(s["task"]["status"], "PENDING");
    let events = t.timeline().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "CONTRACT_CREATED");
    assert_eq!(events[0]["contract"]["id"], c["id"]);
    assert_eq!(events[0]["task"], Value::Null);
    assert_eq!(events[0]["phase"], "research");
    assert_eq!(
        events[0]["data"],
        json!({ "name": "default", "phases": ["research", "specify", "plan", "execute", "review"] })
    );
    assert_eq!(events[1]["type"], "TASK_CREATED");
    assert_eq!(events[1]["task"]["id"], s["task"]["id"]);
    let d = &events[1]["data"];
    assert_eq!(d["name"], s["task"]["name"]);
    assert_eq!(d["parentTaskId"], Value::Null);
    assert!(d.as_object().unwrap().contains_key("parentTaskId"));
    assert!(d.as_object().unwrap().contains_key("continuedFromTaskId"));
    assert_eq!(d["continuedFromTaskId"], Value::Null);

    // Custom phases, a description, 20 phases, names of 256 scalar values.
    let twenty: Vec<String> = (1..=20).map(|i| format!("p{i}")).collect();
    let desc = "é".repeat(32 * 1024); // exactly 64 KiB of UTF-8
    let ok_cases = [
        (
            json!("custom"),
            json!(null),
            json!(["design", "build"]),
            "design",
        ),
        (json!("é".repeat(256)), json!(desc), json!(twenty), "p1"),
        (json!("😀".repeat(256)), json!(""), json!(["only"]), "only"),
    ];
    for (name, d, phases, first) in ok_cases {
        let data = t
            .ok(CREATE, json!({ "n": name, "d": d, "p": phases }))
            .await;
        let c = &data["createContract"]["contract"];
        assert_eq!(c["name"], name);
        assert_eq!(c["phases"], phases);
        assert_eq!(c["phase"], first);
        assert_eq!(c["supervisor"]["phase"], first);
        assert_eq!(c["description"], d);
    }
    let before = t.timeline().await.len();
    assert_eq!(before, 8);
    let mut twenty_one = twenty.clone();
    twenty_one.push("p21".into());
    let refused = [
        json!({ "n": "x", "p": twenty_one }),
        json!({ "n": "x", "p": ["a", "b", "a"] }),
        json!({ "n": "x", "p": [] }),
        json!({ "n": "x", "p": ["a", ""] }),
        json!({ "n": "x", "p": ["a", "é".repeat(257)] }),
        json!({ "n": "é".repeat(257) }),
        json!({ "n": "😀".repeat(257) }),
        json!({ "n": "" }),
        json!({ "n": "x", "d": format!("{desc}a") }),
    ];
    for vars in refused {
        let reply = t.fails("BAD_USER_INPUT", CREATE, vars.clone()).await;
        assert!(reply.body["errors"][0]["message"].as_str().unwrap().len() < 200);
    }
    assert_eq!(
        t.timeline().await.len(),
        before,
        "refused calls write nothing"
    );
    let data = t
        .ok(
            "{ contracts { totalCount } tasks { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["contracts"]["totalCount"], 4);
    assert_eq!(data["tasks"]["totalCount"], 4);
}

#[tokio::test]
async fn change_contract_phase() {
    let t = TestApp::new().await;
    let (c, _) = t.contract_with_phases("c", &["a", "b", "c"]).await;
    let created = t.timeline().await;
    let data = t.ok(PHASE, json!({ "c": c, "p": "c" })).await;
    assert_eq!(data["changeContractPhase"]["contract"]["phase"], "c");
    // Back to an earlier phase is allowed; the same phase again is no change.
    t.ok(PHASE, json!({ "c": c, "p": "a" })).await;
    let data = t.ok(PHASE, json!({ "c": c, "p": "a" })).await;
    assert_eq!(data["changeContractPhase"]["contract"]["phase"], "a");
    let events = t.timeline().await;
    assert_eq!(events.len(), created.len() + 2);
    for (e, (from, to)) in events[2..].iter().zip([("a", "c"), ("c", "a")]) {
        assert_eq!(e["type"], "PHASE_CHANGED");
        assert_eq!(e["data"], json!({ "from": from, "to": to }));
        assert_eq!(e["phase"], to);
        assert_eq!(e["contract"]["id"], c.as_str());
        assert_eq!(e["task"], Value::Null);
    }
    for p in ["d", "", "A", "research"] {
        t.fails("BAD_USER_INPUT", PHASE, json!({ "c": c, "p": p }))
            .await;
    }
    t.fails("NOT_FOUND", PHASE, json!({ "c": NIL, "p": "a" }))
        .await;
    t.fails("BAD_USER_INPUT", PHASE, json!({ "c": "nope", "p": "a" }))
        .await;
    assert_eq!(t.timeline().await.len(), events.len());
    let data = t
        .ok(
            "query($c: ID!) { contract(id: $c) { phase supervisor { phase } } }",
            json!({ "c": c }),
        )
        .await;
    assert_eq!(
        data["contract"],
        json!({ "phase": "a", "supervisor": { "phase": "a" } })
    );
}

#[tokio::test]
async fn contract_status_lifecycle() {
    let t = TestApp::new().await;
    let (c, _) = t.create_contract("c").await;
    let (d, _) = t.create_contract("d").await;
    let status = |c: &str, s: &str| json!({ "c": c, "s": s });
    t.ok(STATUS, status(&c, "ACTIVE")).await; // same status: no event
    t.ok(STATUS, status(&c, "COMPLETED")).await;
    t.ok(STATUS, status(&c, "COMPLETED")).await;
    t.fails("CONFLICT", STATUS, status(&c, "ACTIVE")).await;
    t.ok(STATUS, status(&c, "ARCHIVED")).await;
    t.ok(STATUS, status(&d, "ARCHIVED")).await; // ACTIVE → ARCHIVED directly
    // ARCHIVED is final. (The same status again succeeds with no event, as API.md
    // says of every status update.)
    for s in ["ACTIVE", "COMPLETED"] {
        t.fails("CONFLICT", STATUS, status(&c, s)).await;
        t.fails("CONFLICT", STATUS, status(&d, s)).await;
    }
    let data = t.ok(STATUS, status(&c, "ARCHIVED")).await;
    assert_eq!(
        data["updateContractStatus"]["contract"]["status"],
        "ARCHIVED"
    );
    t.fails("NOT_FOUND", STATUS, status(NIL, "COMPLETED")).await;
    let changes: Vec<Value> = t
        .timeline()
        .await
        .into_iter()
        .filter(|e| e["type"] == "CONTRACT_STATUS_CHANGED")
        .map(|e| json!([e["contract"]["id"], e["data"]]))
        .collect();
    assert_eq!(
        changes,
        [
            json!([c, { "from": "ACTIVE", "to": "COMPLETED" }]),
            json!([c, { "from": "COMPLETED", "to": "ARCHIVED" }]),
            json!([d, { "from": "ACTIVE", "to": "ARCHIVED" }]),
        ]
    );
}

#[tokio::test]
async fn an_archived_contract_and_its_tasks_refuse_every_mutation() {
    let t = TestApp::new().await;
    let (c, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&c)).await;
    t.append_messages(&sup, 2).await;
    t.append_messages(&task, 2).await;
    let cp = t.checkpoint(&task, "abcdef1").await;
    let sup_cp = t.checkpoint(&sup, "abcdef2").await;
    t.set_status(&task, "RUNNING").await;
    t.set_status(&task, "FAILED").await;
    t.set_status(&sup, "RUNNING").await;
    t.set_status(&sup, "INTERRUPTED").await;
    t.ok(STATUS, json!({ "c": c, "s": "ARCHIVED" })).await;
    let before = t.timeline().await;

    let (cp, sup_cp) = (cp["id"].clone(), sup_cp["id"].clone());
    let m = [("USER", "hi")].map(|(r, x)| json!({ "role": r, "content": x }));
    let cases: Vec<(&str, Value)> = vec![
        (PHASE, json!({ "c": c, "p": "plan" })),
        (STATUS, json!({ "c": c, "s": "COMPLETED" })),
        (CREATE_TASK, json!({ "n": "x", "c": c })),
        (CREATE_TASK, json!({ "n": "x", "p": task })),
        (t_status(), json!({ "t": task, "s": "RUNNING" })),
        (t_status(), json!({ "t": sup, "s": "RUNNING" })),
        (t_status(), json!({ "t": task, "s": "FAILED" })),
        (
            "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount } }",
            json!({ "t": sup, "m": m }),
        ),
        (
            "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount } }",
            json!({ "t": task, "m": m }),
        ),
        (
            "mutation($t: ID!) { appendTaskEvents(input: {taskId: $t, events: [{type: OUTPUT, data: 1}]}) { events { sequence } } }",
            json!({ "t": task }),
        ),
        (
            TestApp::CHECKPOINT,
            json!({ "t": task, "sha": "abcdef3", "m": "x" }),
        ),
        (
            "mutation($c: ID!) { resumeSupervisor(input: {contractId: $c, mode: CONTINUE}) { status } }",
            json!({ "c": c }),
        ),
        (
            "mutation($c: ID!, $cp: ID) { resumeSupervisor(input: {contractId: $c, mode: FROM_CHECKPOINT, checkpointId: $cp}) { status } }",
            json!({ "c": c, "cp": sup_cp }),
        ),
        (
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { id } } }",
            json!({ "t": task }),
        ),
        (
            "mutation($c: ID!) { rewindConversation(input: {contractId: $c, byMessageCount: 1}) { newMessageCount } }",
            json!({ "c": c }),
        ),
        (
            "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1}) { newMessageCount } }",
            json!({ "t": task }),
        ),
        (
            "mutation($t: ID!) { forkTask(input: {taskId: $t, messageCount: 1}) { task { id } } }",
            json!({ "t": task }),
        ),
        (
            "mutation($t: ID!, $cp: ID!) { rewindTask(input: {taskId: $t, checkpointId: $cp}) { task { id } } }",
            json!({ "t": task, "cp": cp }),
        ),
    ];
    for (query, vars) in cases {
        let reply = t.post(query, vars.clone()).await;
        assert_eq!(
            reply.code(),
            Some("CONFLICT"),
            "{query} {vars}: {}",
            reply.body
        );
    }
    assert_eq!(t.timeline().await, before, "nothing was written");
    let data = t
        .ok(
            "query($t: ID!, $s: ID!) { a: task(id: $t) { status conversation { totalCount } } b: task(id: $s) { status conversation { totalCount } } }",
            json!({ "t": task, "s": sup }),
        )
        .await;
    assert_eq!(
        data,
        json!({ "a": { "status": "FAILED", "conversation": { "totalCount": 2 } }, "b": { "status": "INTERRUPTED", "conversation": { "totalCount": 2 } } })
    );
}

fn t_status() -> &'static str {
    TestApp::SET_STATUS
}

#[tokio::test]
async fn create_task_links_limits_and_unknown_ids() {
    let t = TestApp::new().await;
    let (c, _) = t.contract_with_phases("c", &["a", "b"]).await;
    t.ok(PHASE, json!({ "c": c, "p": "b" })).await;
    let (c2, _) = t.create_contract("c2").await;
    let data = t
        .ok(CREATE_TASK, json!({ "n": "t1", "plan": "do it", "c": c }))
        .await;
    let t1 = data["createTask"]["task"].clone();
    assert_eq!(t1["status"], "PENDING");
    assert_eq!(t1["isSupervisor"], false);
    assert_eq!(t1["plan"], "do it");
    assert_eq!(t1["contract"]["id"], c.as_str());
    assert_eq!(t1["parent"], Value::Null);
    let t1 = t1["id"].as_str().unwrap().to_owned();
    let data = t.ok(CREATE_TASK, json!({ "n": "t2", "p": t1 })).await;
    let t2 = &data["createTask"]["task"];
    assert_eq!(t2["parent"]["id"], t1.as_str());
    assert_eq!(t2["contract"]["id"], c.as_str());
    let data = t
        .ok(CREATE_TASK, json!({ "n": "t3", "p": t1, "c": c }))
        .await;
    assert_eq!(data["createTask"]["task"]["parent"]["id"], t1.as_str());
    let data = t.ok(CREATE_TASK, json!({ "n": "free" })).await;
    assert_eq!(data["createTask"]["task"]["contract"], Value::Null);
    let data = t
        .ok(
            CREATE_TASK,
            json!({ "n": "é".repeat(256), "plan": "p".repeat(64 * 1024) }),
        )
        .await;
    assert_eq!(data["createTask"]["task"]["name"], "é".repeat(256));

    let events = t.timeline().await;
    let created: Vec<Value> = events
        .iter()
        .filter(|e| {
            e["type"] == "TASK_CREATED"
                && e["data"]["name"] != "supervisor: c"
                && e["data"]["name"] != "supervisor: c2"
        })
        .map(|e| {
            let d = e["data"].as_object().unwrap();
            assert!(d.contains_key("parentTaskId") && d.contains_key("continuedFromTaskId"));
            json!([
                e["data"]["name"],
                e["data"]["parentTaskId"],
                e["data"]["continuedFromTaskId"],
                e["phase"],
                e["contract"]["id"]
            ])
        })
        .collect();
    assert_eq!(
        created,
        [
            json!(["t1", null, null, "b", c]),
            json!(["t2", t1, null, "b", c]),
            json!(["t3", t1, null, "b", c]),
            json!(["free", null, null, null, null]),
            json!(["é".repeat(256), null, null, null, null]),
        ]
    );

    let before = t.timeline().await.len();
    let unknown = uuid::Uuid::now_v7().to_string();
    for (code, vars) in [
        ("NOT_FOUND", json!({ "n": "x", "c": NIL })),
        ("NOT_FOUND", json!({ "n": "x", "c": unknown })),
        ("NOT_FOUND", json!({ "n": "x", "p": unknown })),
        ("NOT_FOUND", json!({ "n": "x", "p": c })), // a contract id is no task id
        ("BAD_USER_INPUT", json!({ "n": "x", "c": "nope" })),
        ("BAD_USER_INPUT", json!({ "n": "x", "p": "nope" })),
        ("BAD_USER_INPUT", json!({ "n": "x", "p": t1, "c": c2 })), // parent elsewhere
        ("BAD_USER_INPUT", json!({ "n": "é".repeat(257) })),
        ("BAD_USER_INPUT", json!({ "n": "  " })),
        (
            "BAD_USER_INPUT",
            json!({ "n": "x", "plan": "p".repeat(64 * 1024 + 1) }),
        ),
    ] {
        t.fails(code, CREATE_TASK, vars).await;
    }
    assert_eq!(t.timeline().await.len(), before);
}

const STATUSES: [&str; 6] = [
    "PENDING",
    "RUNNING",
    "PAUSED",
    "INTERRUPTED",
    "DONE",
    "FAILED",
];

/// The path from PENDING to each status.
fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "PENDING" => &[],
        "RUNNING" => &["RUNNING"],
        "PAUSED" => &["RUNNING", "PAUSED"],
        "INTERRUPTED" => &["RUNNING", "INTERRUPTED"],
        "DONE" => &["RUNNING", "DONE"],
        "FAILED" => &["FAILED"],
        _ => unreachable!(),
    }
}

fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("PENDING", "RUNNING" | "FAILED")
            | ("RUNNING", "PAUSED" | "INTERRUPTED" | "DONE" | "FAILED")
            | ("PAUSED", "RUNNING" | "INTERRUPTED" | "FAILED")
    )
}

#[tokio::test]
async fn every_task_status_transition() {
    let t = TestApp::new().await;
    let (c, _) = t.create_contract("c").await;
    for from in STATUSES {
        for to in STATUSES {
            let task = t.create_task(&format!("{from}->{to}"), Some(&c)).await;
            let mut at = t.set_status(&task, "PENDING").await; // same status: fine
            for step in path_to(from) {
                at = t.set_status(&task, step).await;
            }
            assert_eq!(at["status"], from);
            let before = t.timeline().await.len();
            let reply = t
                .post(TestApp::SET_STATUS, json!({ "t": task, "s": to }))
                .await;
            let after = t.timeline().await;
            if from == to {
                assert!(
                    reply.body.get("errors").is_none(),
                    "{from}->{to}: {}",
                    reply.body
                );
                assert_eq!(
                    reply.body["data"]["updateTaskStatus"]["task"], at,
                    "unchanged"
                );
                assert_eq!(after.len(), before, "{from}->{to} again writes no event");
            } else if allowed(from, to) {
                assert!(
                    reply.body.get("errors").is_none(),
                    "{from}->{to}: {}",
                    reply.body
                );
                assert_eq!(reply.body["data"]["updateTaskStatus"]["task"]["status"], to);
                assert_eq!(after.len(), before + 1, "{from}->{to}");
                let e = &after[before];
                assert_eq!(e["type"], "TASK_STATUS_CHANGED");
                assert_eq!(e["task"]["id"], task.as_str());
                assert_eq!(e["contract"]["id"], c.as_str());
                assert_eq!(e["phase"], "research");
                assert_eq!(
                    e["data"],
                    json!({ "from": from, "to": to, "daemonId": null })
                );
            } else {
                assert_eq!(
                    reply.code(),
                    Some("CONFLICT"),
                    "{from}->{to}: {}",
                    reply.body
                );
                assert_eq!(after.len(), before, "a refused move writes nothing");
                let data = t
                    .ok(
                        "query($t: ID!) { task(id: $t) { status } }",
                        json!({ "t": task }),
                    )
                    .await;
                assert_eq!(data["task"]["status"], from);
            }
        }
    }
}

#[tokio::test]
async fn task_times_daemon_and_supervisor_activity() {
    let t = TestApp::new().await;
    let (c, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&c)).await;
    let pending = t.set_status(&task, "PENDING").await;
    assert_eq!(
        (&pending["startedAt"], &pending["completedAt"]),
        (&Value::Null, &Value::Null)
    );
    let daemon = uuid::Uuid::now_v7().to_string();
    let data = t
        .ok(
            TestApp::SET_STATUS,
            json!({ "t": task, "s": "RUNNING", "d": daemon }),
        )
        .await;
    let running = &data["updateTaskStatus"]["task"];
    assert_eq!(running["daemonId"], daemon.as_str());
    let started = running["startedAt"].clone();
    assert!(time(&started) >= time(&pending["updatedAt"]));
    assert_eq!(running["completedAt"], Value::Null);
    let paused = t.set_status(&task, "PAUSED").await;
    assert_eq!(paused["startedAt"], started);
    assert_eq!(paused["completedAt"], Value::Null);
    let again = t.set_status(&task, "RUNNING").await;
    assert_eq!(
        again["startedAt"], started,
        "only the first RUNNING sets startedAt"
    );
    let done = t.set_status(&task, "DONE").await;
    assert_eq!(done["startedAt"], started);
    assert!(time(&done["completedAt"]) >= time(&started));
    let done_again = t.set_status(&task, "DONE").await;
    assert_eq!(done_again, done, "DONE → DONE changes nothing");
    let e = t.timeline().await;
    let e = e.iter().find(|e| e["data"]["to"] == "RUNNING").unwrap();
    assert_eq!(
        e["data"],
        json!({ "from": "PENDING", "to": "RUNNING", "daemonId": daemon })
    );

    let failed_task = t.create_task("f", None).await;
    let failed = t.set_status(&failed_task, "FAILED").await;
    assert_eq!(failed["startedAt"], Value::Null);
    assert!(failed["completedAt"].is_string());
    for bad in ["nope", ""] {
        t.fails(
            "BAD_USER_INPUT",
            TestApp::SET_STATUS,
            json!({ "t": task, "s": "DONE", "d": bad }),
        )
        .await;
    }
    t.fails(
        "NOT_FOUND",
        TestApp::SET_STATUS,
        json!({ "t": NIL, "s": "RUNNING" }),
    )
    .await;
    t.fails(
        "NOT_FOUND",
        TestApp::SET_STATUS,
        json!({ "t": c, "s": "RUNNING" }),
    )
    .await;

    // The supervisor's lastActivity moves with its status changes, not with others'.
    let q = "query($c: ID!) { contract(id: $c) { supervisor { status lastActivity task { updatedAt } } } }";
    let activity = || async { t.ok(q, json!({ "c": c })).await["contract"]["supervisor"].clone() };
    let s0 = activity().await;
    t.set_status(&task, "DONE").await;
    assert_eq!(activity().await, s0);
    let changed = t.set_status(&sup, "RUNNING").await;
    let s1 = activity().await;
    assert_eq!(s1["status"], "RUNNING");
    assert!(time(&s1["lastActivity"]) > time(&s0["lastActivity"]));
    assert_eq!(s1["lastActivity"], changed["updatedAt"]);
    t.set_status(&sup, "PAUSED").await;
    let s2 = activity().await;
    assert!(time(&s2["lastActivity"]) > time(&s1["lastActivity"]));
}

/// A spelling the code does not know (a row written by a newer version, or by hand)
/// fails the read as an internal error; the server answers and stays up.
#[tokio::test]
async fn an_unknown_stored_status_is_an_internal_error() {
    use sea_orm::ConnectionTrait;

    let t = TestApp::new().await;
    let task = t.create_task("odd", None).await;
    let q = "query($t: ID!) { task(id: $t) { status } }";
    assert_eq!(
        t.ok(q, json!({ "t": task })).await["task"]["status"],
        "PENDING"
    );
    t.app
        .store
        .db()
        .execute_unprepared("UPDATE tasks SET status = 'SLEEPING'")
        .await
        .unwrap();
    let reply = t
        .fails("INTERNAL_SERVER_ERROR", q, json!({ "t": task }))
        .await;
    assert!(
        !reply.body.to_string().contains("SLEEPING"),
        "{}",
        reply.body
    );
    t.fails(
        "INTERNAL_SERVER_ERROR",
        TestApp::SET_STATUS,
        json!({ "t": task, "s": "RUNNING" }),
    )
    .await;
    let viewer = t.ok("{ viewer { owner } }", json!({})).await;
    assert_eq!(viewer["viewer"]["owner"], "alice");
}
