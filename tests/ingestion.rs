//! appendMessages, appendTaskEvents and recordCheckpoint: positions, limits,
//! idempotency, and the history event of every mutation (in call order; none for a
//! refused call or a replay).

mod common;

use chrono::{DateTime, Utc};
use common::TestApp;
use serde_json::{Value, json};

const MESSAGES: &str = "mutation($t: ID!, $m: [MessageInput!]!, $k: String) { appendMessages(input: {taskId: $t, messages: $m, idempotencyKey: $k}) { messageCount messages { id index role content phase createdAt } } }";
const EVENTS: &str = "mutation($t: ID!, $e: [TaskEventInput!]!, $k: String) { appendTaskEvents(input: {taskId: $t, events: $e, idempotencyKey: $k}) { events { id sequence type data createdAt } } }";
const KIB: usize = 1024;

fn msgs(n: usize, tag: &str) -> Value {
    let roles = ["USER", "ASSISTANT", "SYSTEM", "TOOL"];
    (0..n)
        .map(|i| json!({ "role": roles[i % 4], "content": [{ "type": "text", "text": format!("{tag}{i}") }] }))
        .collect()
}

fn evs(n: usize, tag: &str) -> Value {
    let types = [
        "OUTPUT",
        "TOOL_CALL",
        "TOOL_RESULT",
        "STATUS",
        "ERROR",
        "SYSTEM",
    ];
    (0..n)
        .map(|i| json!({ "type": types[i % 6], "data": { "tag": tag, "i": i } }))
        .collect()
}

async fn conversation_len(t: &TestApp, task: &str) -> i64 {
    let data = t
        .ok(
            "query($t: ID!) { task(id: $t) { conversation { totalCount } } }",
            json!({ "t": task }),
        )
        .await;
    data["task"]["conversation"]["totalCount"].as_i64().unwrap()
}

async fn event_count(t: &TestApp, task: &str) -> i64 {
    let data = t
        .ok(
            "query($t: ID!) { task(id: $t) { events { totalCount } } }",
            json!({ "t": task }),
        )
        .await;
    data["task"]["events"]["totalCount"].as_i64().unwrap()
}

#[tokio::test]
async fn append_messages_positions_phases_and_limits() {
    let t = TestApp::new().await;
    let (c, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&c)).await;
    let data = t
        .ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a") }))
        .await;
    let p = &data["appendMessages"];
    assert_eq!(p["messageCount"], 3);
    let idx: Vec<&Value> = p["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["index"])
        .collect();
    assert_eq!(idx, [0, 1, 2]);
    assert_eq!(p["messages"][1]["role"], "ASSISTANT");
    assert_eq!(
        p["messages"][1]["content"],
        json!([{ "type": "text", "text": "a1" }])
    );
    assert_eq!(p["messages"][1]["phase"], Value::Null);
    // Any JSON content; indexes go on across calls.
    let odd = json!([
        { "role": "USER", "content": "plain" },
        { "role": "TOOL", "content": { "k": [1, null, true] } },
        { "role": "SYSTEM", "content": 42 },
    ]);
    let data = t.ok(MESSAGES, json!({ "t": task, "m": odd })).await;
    let p = &data["appendMessages"];
    assert_eq!(p["messageCount"], 6);
    let got: Vec<Value> = p["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!([m["index"], m["role"], m["content"]]))
        .collect();
    assert_eq!(
        got,
        [
            json!([3, "USER", "plain"]),
            json!([4, "TOOL", { "k": [1, null, true] }]),
            json!([5, "SYSTEM", 42])
        ]
    );
    // The stored conversation is what the payloads said.
    let data = t
        .ok(
            "query($t: ID!) { task(id: $t) { conversation { nodes { id index role content } } } }",
            json!({ "t": task }),
        )
        .await;
    assert_eq!(
        data["task"]["conversation"]["nodes"][4]["content"],
        json!({ "k": [1, null, true] })
    );

    // Supervisor messages carry the contract's phase at the time.
    let s1 = t.ok(MESSAGES, json!({ "t": sup, "m": msgs(2, "s") })).await;
    t.ok(
        "mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"plan\"}) { contract { id } } }",
        json!({ "c": c }),
    )
    .await;
    let s2 = t.ok(MESSAGES, json!({ "t": sup, "m": msgs(1, "s") })).await;
    assert_eq!(s1["appendMessages"]["messages"][1]["phase"], "research");
    assert_eq!(s2["appendMessages"]["messages"][0]["phase"], "plan");
    assert_eq!(s2["appendMessages"]["messages"][0]["index"], 2);
    assert_eq!(s2["appendMessages"]["messageCount"], 3);
    let data = t
        .ok(
            "query($c: ID!) { contract(id: $c) { supervisor { messageCount lastActivity } } }",
            json!({ "c": c }),
        )
        .await;
    assert_eq!(data["contract"]["supervisor"]["messageCount"], 3);
    let last: DateTime<Utc> = data["contract"]["supervisor"]["lastActivity"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let at: DateTime<Utc> = s2["appendMessages"]["messages"][0]["createdAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last, at, "lastActivity is the latest message's time");

    // 100 messages at once are fine.
    let data = t
        .ok(MESSAGES, json!({ "t": task, "m": msgs(100, "b") }))
        .await;
    assert_eq!(data["appendMessages"]["messageCount"], 106);
    let before = t.timeline().await;
    // Refused: no messages, more than 100, content over 256 KiB serialised (also
    // when escaping makes it so, and when only one message of the batch is too big).
    let big = json!("x".repeat(256 * KIB - 1)); // 256 KiB + 1 serialised
    let quotes = json!("\"".repeat(128 * KIB)); // 256 KiB + 2 serialised
    for m in [
        json!([]),
        msgs(101, "c"),
        json!([{ "role": "USER", "content": big }]),
        json!([{ "role": "USER", "content": quotes }]),
        json!([{ "role": "USER", "content": "ok" }, { "role": "USER", "content": [big] }]),
    ] {
        t.fails("BAD_USER_INPUT", MESSAGES, json!({ "t": task, "m": m }))
            .await;
        t.fails("BAD_USER_INPUT", MESSAGES, json!({ "t": sup, "m": m }))
            .await;
    }
    assert_eq!(conversation_len(&t, &task).await, 106);
    assert_eq!(t.timeline().await, before, "nothing stored, no event");
    // Exactly 256 KiB serialised is accepted.
    let max = json!("x".repeat(256 * KIB - 2));
    assert_eq!(max.to_string().len(), 256 * KIB);
    let data = t
        .ok(
            MESSAGES,
            json!({ "t": task, "m": [{ "role": "USER", "content": max }] }),
        )
        .await;
    assert_eq!(data["appendMessages"]["messages"][0]["content"], max);
    for id in ["nope", ""] {
        t.fails(
            "BAD_USER_INPUT",
            MESSAGES,
            json!({ "t": id, "m": msgs(1, "x") }),
        )
        .await;
    }
    t.fails("NOT_FOUND", MESSAGES, json!({ "t": c, "m": msgs(1, "x") }))
        .await;
}

#[tokio::test]
async fn append_task_events_sequences_and_limits() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    let other = t.create_task("u", None).await;
    let mut seen = vec![];
    for (n, tag) in [(3, "a"), (1, "b"), (5, "c"), (100, "d")] {
        let data = t.ok(EVENTS, json!({ "t": task, "e": evs(n, tag) })).await;
        let events = data["appendTaskEvents"]["events"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(events.len(), n);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["data"], json!({ "tag": tag, "i": i }));
            assert_eq!(e["type"], evs(n, tag)[i]["type"]);
        }
        seen.extend(events.iter().map(|e| e["sequence"].as_i64().unwrap()));
        // Another task's stream is separate.
        t.append_events(&other, 2).await;
    }
    assert_eq!(
        seen,
        (1..=109).collect::<Vec<i64>>(),
        "gapless across calls"
    );
    assert_eq!(event_count(&t, &other).await, 8);
    let before = t.timeline().await;
    let big = json!({ "x": "x".repeat(256 * KIB) });
    for e in [
        json!([]),
        evs(101, "e"),
        json!([{ "type": "OUTPUT", "data": big }]),
        json!([{ "type": "OUTPUT", "data": 1 }, { "type": "OUTPUT", "data": big }]),
    ] {
        t.fails("BAD_USER_INPUT", EVENTS, json!({ "t": task, "e": e }))
            .await;
    }
    assert_eq!(event_count(&t, &task).await, 109);
    assert_eq!(t.timeline().await, before);
    let data = t.ok(EVENTS, json!({ "t": task, "e": evs(1, "f") })).await;
    assert_eq!(
        data["appendTaskEvents"]["events"][0]["sequence"], 110,
        "no gap after refusals"
    );
}

#[tokio::test]
async fn idempotency_keys_replay_or_conflict() {
    let t = TestApp::new().await;
    let (c, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&c)).await;
    let other = t.create_task("u", Some(&c)).await;
    t.append_messages(&task, 2).await;
    let first = t
        .ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a"), "k": "k1" }))
        .await;
    assert_eq!(first["appendMessages"]["messageCount"], 5);
    let events_after_first = t.timeline().await;
    // The same key and input: the first payload (same ids), nothing stored.
    let again = t
        .ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a"), "k": "k1" }))
        .await;
    assert_eq!(again, first);
    assert_eq!(conversation_len(&t, &task).await, 5);
    assert_eq!(
        t.timeline().await,
        events_after_first,
        "a replay writes no event"
    );
    // A different input under the same key: CONFLICT, nothing stored.
    for m in [
        msgs(3, "b"),
        msgs(2, "a"),
        msgs(4, "a"),
        json!([{ "role": "ASSISTANT", "content": [{ "type": "text", "text": "a0" }] }]),
    ] {
        t.fails(
            "CONFLICT",
            MESSAGES,
            json!({ "t": task, "m": m, "k": "k1" }),
        )
        .await;
    }
    assert_eq!(conversation_len(&t, &task).await, 5);
    assert_eq!(t.timeline().await, events_after_first);
    // Still the first payload after later appends.
    t.append_messages(&task, 1).await;
    let later = t
        .ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a"), "k": "k1" }))
        .await;
    assert_eq!(later, first);
    assert_eq!(conversation_len(&t, &task).await, 6);
    // Keys are per task: the same key on another task (and the supervisor) appends.
    let data = t
        .ok(
            MESSAGES,
            json!({ "t": other, "m": msgs(3, "a"), "k": "k1" }),
        )
        .await;
    assert_eq!(data["appendMessages"]["messageCount"], 3);
    assert_ne!(
        data["appendMessages"]["messages"][0]["id"],
        first["appendMessages"]["messages"][0]["id"]
    );
    let data = t
        .ok(MESSAGES, json!({ "t": sup, "m": msgs(1, "z"), "k": "k1" }))
        .await;
    assert_eq!(data["appendMessages"]["messageCount"], 1);

    // Task events, and keys are per mutation: k1 is new to appendTaskEvents.
    let e1 = t
        .ok(EVENTS, json!({ "t": task, "e": evs(4, "a"), "k": "k1" }))
        .await;
    let seq: Vec<&Value> = e1["appendTaskEvents"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["sequence"])
        .collect();
    assert_eq!(seq, [1, 2, 3, 4]);
    let events_now = t.timeline().await;
    let e2 = t
        .ok(EVENTS, json!({ "t": task, "e": evs(4, "a"), "k": "k1" }))
        .await;
    assert_eq!(e2, e1);
    assert_eq!(event_count(&t, &task).await, 4);
    t.fails(
        "CONFLICT",
        EVENTS,
        json!({ "t": task, "e": evs(4, "b"), "k": "k1" }),
    )
    .await;
    t.fails(
        "CONFLICT",
        EVENTS,
        json!({ "t": task, "e": evs(3, "a"), "k": "k1" }),
    )
    .await;
    assert_eq!(t.timeline().await, events_now);
    let e3 = t
        .ok(EVENTS, json!({ "t": task, "e": evs(4, "a"), "k": "k2" }))
        .await;
    assert_eq!(
        e3["appendTaskEvents"]["events"][0]["sequence"], 5,
        "another key appends"
    );
    let e4 = t
        .ok(EVENTS, json!({ "t": other, "e": evs(4, "a"), "k": "k1" }))
        .await;
    assert_eq!(e4["appendTaskEvents"]["events"][0]["sequence"], 1);
    assert_eq!(
        t.ok(EVENTS, json!({ "t": task, "e": evs(4, "a"), "k": "k1" }))
            .await,
        e1
    );
    // Without a key every call appends.
    t.ok(EVENTS, json!({ "t": task, "e": evs(1, "n") })).await;
    t.ok(EVENTS, json!({ "t": task, "e": evs(1, "n") })).await;
    assert_eq!(event_count(&t, &task).await, 10);
}

#[tokio::test]
async fn record_checkpoint_numbers_shas_and_message_counts() {
    let t = TestApp::new().await;
    let (c, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&c)).await;
    let cp1 = t.checkpoint(&task, "abc1234").await;
    assert_eq!(
        (&cp1["number"], &cp1["messageCount"]),
        (&json!(1), &json!(0))
    );
    t.append_messages(&task, 3).await;
    let sha64 = "0123456789abcdef".repeat(4);
    let cp2 = t.checkpoint(&task, &sha64).await;
    assert_eq!(
        (&cp2["number"], &cp2["messageCount"]),
        (&json!(2), &json!(3))
    );
    assert_eq!(cp2["commitSha"], sha64.as_str());
    assert_eq!(cp2["task"]["id"], task.as_str());
    assert_eq!(cp2["branch"], Value::Null);
    assert_eq!(cp2["filesChanged"], Value::Null);
    t.append_messages(&task, 2).await;
    let data = t
        .ok(
            TestApp::CHECKPOINT,
            json!({ "t": task, "sha": "ABCDEF0", "m": "third", "b": "main", "f": { "added": ["x"], "n": 1 } }),
        )
        .await;
    let cp3 = &data["recordCheckpoint"]["checkpoint"];
    assert_eq!(
        (&cp3["number"], &cp3["messageCount"]),
        (&json!(3), &json!(5))
    );
    assert!(
        cp3["commitSha"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("ABCDEF0")
    );
    assert_eq!(
        (&cp3["branch"], &cp3["message"]),
        (&json!("main"), &json!("third"))
    );
    assert_eq!(cp3["filesChanged"], json!({ "added": ["x"], "n": 1 }));
    // Numbers are per task.
    t.append_messages(&sup, 1).await;
    let s1 = t.checkpoint(&sup, "fedcba9").await;
    assert_eq!((&s1["number"], &s1["messageCount"]), (&json!(1), &json!(1)));

    let before = t.timeline().await;
    for sha in [
        "abc123",
        &"a".repeat(65),
        "abcdefg",
        "abc 1234",
        "",
        "0x12345678",
        "abcdéf12",
    ] {
        t.fails(
            "BAD_USER_INPUT",
            TestApp::CHECKPOINT,
            json!({ "t": task, "sha": sha, "m": "x" }),
        )
        .await;
    }
    t.fails(
        "NOT_FOUND",
        TestApp::CHECKPOINT,
        json!({ "t": c, "sha": "abcdef1", "m": "x" }),
    )
    .await;
    assert_eq!(t.timeline().await, before);
    let next = t.checkpoint(&task, "1234567").await;
    assert_eq!(next["number"], 4, "no number was used by a refusal");
}

/// Every key of `required` is in `data` with that value.
fn has_keys(data: &Value, required: &Value) {
    let data = data.as_object().expect("data is an object");
    for (k, v) in required.as_object().unwrap() {
        assert!(data.contains_key(k), "missing key {k} in {data:?}");
        assert_eq!(&data[k], v, "key {k} of {data:?}");
    }
}

#[tokio::test]
async fn each_mutation_writes_one_event_with_its_data_keys_in_call_order() {
    let t = TestApp::new().await;
    let (c, sup) = t.contract_with_phases("c", &["one", "two"]).await;
    let task = t.create_subtask("t", Some(&c), &sup).await;
    t.ok(
        "mutation($c: ID!) { changeContractPhase(input: {contractId: $c, phase: \"two\"}) { contract { id } } }",
        json!({ "c": c }),
    )
    .await;
    let daemon = uuid::Uuid::now_v7().to_string();
    t.ok(
        TestApp::SET_STATUS,
        json!({ "t": task, "s": "RUNNING", "d": daemon }),
    )
    .await;
    // Refused calls in between write nothing.
    t.fails(
        "CONFLICT",
        TestApp::SET_STATUS,
        json!({ "t": task, "s": "PENDING" }),
    )
    .await;
    t.fails("BAD_USER_INPUT", MESSAGES, json!({ "t": task, "m": [] }))
        .await;
    t.ok(MESSAGES, json!({ "t": task, "m": msgs(2, "a") }))
        .await;
    t.ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a") }))
        .await;
    t.ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a"), "k": "k" }))
        .await;
    t.ok(MESSAGES, json!({ "t": task, "m": msgs(3, "a"), "k": "k" }))
        .await; // replay
    t.ok(EVENTS, json!({ "t": task, "e": evs(4, "a") })).await;
    t.ok(EVENTS, json!({ "t": task, "e": evs(2, "a") })).await;
    let cp = t.checkpoint(&task, "abcdef1").await;
    t.fails(
        "BAD_USER_INPUT",
        TestApp::CHECKPOINT,
        json!({ "t": task, "sha": "xyz", "m": "x" }),
    )
    .await;
    t.ok(
        "mutation($c: ID!) { updateContractStatus(input: {contractId: $c, status: COMPLETED}) { contract { id } } }",
        json!({ "c": c }),
    )
    .await;
    t.set_status(&task, "DONE").await;

    let events = t.timeline().await;
    let expected = [
        (
            "CONTRACT_CREATED",
            None,
            "one",
            json!({ "name": "c", "phases": ["one", "two"] }),
        ),
        (
            "TASK_CREATED",
            Some(&sup),
            "one",
            json!({ "name": "supervisor: c", "parentTaskId": null, "continuedFromTaskId": null }),
        ),
        (
            "TASK_CREATED",
            Some(&task),
            "one",
            json!({ "name": "t", "parentTaskId": sup, "continuedFromTaskId": null }),
        ),
        (
            "PHASE_CHANGED",
            None,
            "two",
            json!({ "from": "one", "to": "two" }),
        ),
        (
            "TASK_STATUS_CHANGED",
            Some(&task),
            "two",
            json!({ "from": "PENDING", "to": "RUNNING", "daemonId": daemon }),
        ),
        (
            "MESSAGES_APPENDED",
            Some(&task),
            "two",
            json!({ "count": 2, "firstIndex": 0, "messageCount": 2 }),
        ),
        (
            "MESSAGES_APPENDED",
            Some(&task),
            "two",
            json!({ "count": 3, "firstIndex": 2, "messageCount": 5 }),
        ),
        (
            "MESSAGES_APPENDED",
            Some(&task),
            "two",
            json!({ "count": 3, "firstIndex": 5, "messageCount": 8 }),
        ),
        (
            "TASK_EVENTS_APPENDED",
            Some(&task),
            "two",
            json!({ "count": 4, "firstSequence": 1, "lastSequence": 4 }),
        ),
        (
            "TASK_EVENTS_APPENDED",
            Some(&task),
            "two",
            json!({ "count": 2, "firstSequence": 5, "lastSequence": 6 }),
        ),
        (
            "CHECKPOINT_CREATED",
            Some(&task),
            "two",
            json!({ "checkpointId": cp["id"], "number": 1, "commitSha": "abcdef1", "messageCount": 8 }),
        ),
        (
            "CONTRACT_STATUS_CHANGED",
            None,
            "two",
            json!({ "from": "ACTIVE", "to": "COMPLETED" }),
        ),
        (
            "TASK_STATUS_CHANGED",
            Some(&task),
            "two",
            json!({ "from": "RUNNING", "to": "DONE", "daemonId": daemon }),
        ),
    ];
    assert_eq!(events.len(), expected.len(), "{events:#?}");
    for (e, (ty, task_id, phase, data)) in events.iter().zip(expected) {
        assert_eq!(e["type"], ty);
        assert_eq!(e["contract"]["id"], c.as_str(), "{ty}");
        assert_eq!(
            e["task"]["id"],
            task_id.map_or(Value::Null, |t| json!(t)),
            "{ty}"
        );
        assert_eq!(e["phase"], phase, "{ty}");
        has_keys(&e["data"], &data);
    }
    // Cursors are distinct.
    let cursors: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(cursors.len(), events.len());
}
