//! Relay pagination on every kind of list: forwards and backwards through the whole
//! list with exact page info, `before` alone, `first: 0`, and refused arguments.
//! (The walks themselves are `TestApp::walk` in common/mod.rs.)

mod common;

use common::{PAGE_ARGS, PAGE_VARS, TestApp};
use serde_json::{Value, json};

fn field(nodes: &[Value], key: &str) -> Vec<Value> {
    nodes.iter().map(|n| n[key].clone()).collect()
}

/// The first edge's cursor of a connection selected as `c: …(first: 1) { edges { cursor } }`.
async fn first_cursor(t: &TestApp, query: &str, vars: Value, path: &[&str]) -> String {
    let data = t.ok(query, vars).await;
    common::at(&data, path)["edges"][0]["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("no cursor at {path:?}: {data}"))
        .to_owned()
}

/// One cursor of each kind of list, to hand to the other lists.
struct Cursors {
    timeline: String,
    task: String,
    contract: String,
    message: String,
    event: String,
    task_checkpoint: String,
    contract_checkpoint: String,
}

async fn cursors(t: &TestApp, contract: &str, task: &str) -> Cursors {
    let q = |field: &str| format!("{{ {field}(first: 1) {{ edges {{ cursor }} }} }}");
    let vars = json!({ "c": contract, "t": task });
    let in_task = |field: &str| {
        format!(
            "query($t: ID!) {{ task(id: $t) {{ {field}(first: 1) {{ edges {{ cursor }} }} }} }}"
        )
    };
    Cursors {
        timeline: first_cursor(t, &q("timeline"), json!({}), &["timeline"]).await,
        task: first_cursor(t, &q("tasks"), json!({}), &["tasks"]).await,
        contract: first_cursor(t, &q("contracts"), json!({}), &["contracts"]).await,
        message: first_cursor(
            t,
            &in_task("conversation"),
            vars.clone(),
            &["task", "conversation"],
        )
        .await,
        event: first_cursor(t, &in_task("events"), vars.clone(), &["task", "events"]).await,
        task_checkpoint: first_cursor(
            t,
            &in_task("checkpoints"),
            vars.clone(),
            &["task", "checkpoints"],
        )
        .await,
        contract_checkpoint: first_cursor(
            t,
            "query($c: ID!) { contract(id: $c) { checkpoints(first: 1) { edges { cursor } } } }",
            vars,
            &["contract", "checkpoints"],
        )
        .await,
    }
}

#[tokio::test]
async fn timeline_pages_both_ways() {
    let t = TestApp::new().await;
    let (contract, _) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&contract)).await;
    for _ in 0..32 {
        t.append_events(&task, 1).await;
    }
    t.append_messages(&task, 1).await;
    t.checkpoint(&task, "abcdef1").await;
    // 2 + 1 + 34 = 37 events.
    let q = format!("query({PAGE_VARS}) {{ timeline({PAGE_ARGS}) {{ CONN }} }}");
    for size in [7, 5, 37, 40] {
        let nodes = t
            .walk(&q, "id type cursor", json!({}), &["timeline"], size)
            .await;
        assert_eq!(nodes.len(), 37);
        assert_eq!(nodes[0]["type"], "CONTRACT_CREATED");
        assert_eq!(nodes[34]["type"], "TASK_EVENTS_APPENDED");
        assert_eq!(nodes[36]["type"], "CHECKPOINT_CREATED");
    }
    // The same through Contract.history, filtered to the task.
    let q = format!(
        "query($c: ID!, $t: ID!, {PAGE_VARS}) {{ contract(id: $c) {{ history({PAGE_ARGS}, filter: {{taskId: $t}}) {{ CONN }} }} }}"
    );
    let nodes = t
        .walk(
            &q,
            "id type",
            json!({ "c": contract, "t": task }),
            &["contract", "history"],
            6,
        )
        .await;
    assert_eq!(nodes.len(), 35);
    assert_eq!(nodes[0]["type"], "TASK_CREATED");

    let c = cursors(&t, &contract, &task).await;
    let q = format!("query({PAGE_VARS}) {{ timeline({PAGE_ARGS}) {{ CONN }} }}");
    t.refuses_bad_page_args(
        &q,
        json!({}),
        &c.timeline,
        &[c.task, c.contract, c.event, c.message],
    )
    .await;
}

#[tokio::test]
async fn task_events_page_both_ways_also_filtered() {
    let t = TestApp::new().await;
    let (contract, _) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&contract)).await;
    let events: Vec<Value> = (0..45)
        .map(|i| json!({ "type": if i % 3 == 0 { "TOOL_CALL" } else { "OUTPUT" }, "data": { "i": i } }))
        .collect();
    t.ok(
        "mutation($t: ID!, $e: [TaskEventInput!]!) { appendTaskEvents(input: {taskId: $t, events: $e}) { events { sequence } } }",
        json!({ "t": task, "e": events }),
    )
    .await;
    let q = format!(
        "query($t: ID!, $types: [TaskEventType!], {PAGE_VARS}) {{ task(id: $t) {{ events({PAGE_ARGS}, filter: {{types: $types}}) {{ CONN }} }} }}"
    );
    for size in [10, 9, 1] {
        let nodes = t
            .walk(
                &q,
                "sequence data",
                json!({ "t": task }),
                &["task", "events"],
                size,
            )
            .await;
        let seq: Vec<Value> = (1..=45).map(|i| json!(i)).collect();
        assert_eq!(field(&nodes, "sequence"), seq);
    }
    let nodes = t
        .walk(
            &q,
            "sequence type",
            json!({ "t": task, "types": ["TOOL_CALL"] }),
            &["task", "events"],
            4,
        )
        .await;
    let seq: Vec<Value> = (0..45)
        .filter(|i| i % 3 == 0)
        .map(|i| json!(i + 1))
        .collect();
    assert_eq!(field(&nodes, "sequence"), seq);

    t.checkpoint(&task, "abcdef1").await;
    t.append_messages(&task, 1).await;
    let c = cursors(&t, &contract, &task).await;
    t.refuses_bad_page_args(
        &q,
        json!({ "t": task }),
        &c.event,
        &[c.timeline, c.message, c.task, c.task_checkpoint],
    )
    .await;
}

#[tokio::test]
async fn conversations_page_both_ways_also_by_phase() {
    let t = TestApp::new().await;
    let (contract, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&contract)).await;
    for _ in 0..3 {
        t.append_messages(&task, 11).await;
    }
    let q = format!(
        "query($t: ID!, {PAGE_VARS}) {{ task(id: $t) {{ conversation({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    for size in [8, 11, 3] {
        let nodes = t
            .walk(
                &q,
                "index content",
                json!({ "t": task }),
                &["task", "conversation"],
                size,
            )
            .await;
        let idx: Vec<Value> = (0..33).map(|i| json!(i)).collect();
        assert_eq!(field(&nodes, "index"), idx);
        assert_eq!(nodes[32]["content"][0]["text"], "m10");
    }

    // The supervisor's conversation in three runs of phases: research, specify, research.
    let phase = "mutation($c: ID!, $p: String!) { changeContractPhase(input: {contractId: $c, phase: $p}) { contract { phase } } }";
    t.append_messages(&sup, 10).await;
    t.ok(phase, json!({ "c": contract, "p": "specify" })).await;
    t.append_messages(&sup, 12).await;
    t.ok(phase, json!({ "c": contract, "p": "research" })).await;
    t.append_messages(&sup, 5).await;
    let q = format!(
        "query($c: ID!, $p: String, {PAGE_VARS}) {{ contract(id: $c) {{ conversation({PAGE_ARGS}, phase: $p) {{ CONN }} }} }}"
    );
    let nodes = t
        .walk(
            &q,
            "index phase",
            json!({ "c": contract }),
            &["contract", "conversation"],
            6,
        )
        .await;
    assert_eq!(nodes.len(), 27);
    let research = t
        .walk(
            &q,
            "index phase",
            json!({ "c": contract, "p": "research" }),
            &["contract", "conversation"],
            4,
        )
        .await;
    let idx: Vec<Value> = (0..10).chain(22..27).map(|i| json!(i)).collect();
    assert_eq!(field(&research, "index"), idx);
    assert!(research.iter().all(|m| m["phase"] == "research"));
    let specify = t
        .walk(
            &q,
            "index phase",
            json!({ "c": contract, "p": "specify" }),
            &["contract", "conversation"],
            5,
        )
        .await;
    let idx: Vec<Value> = (10..22).map(|i| json!(i)).collect();
    assert_eq!(field(&specify, "index"), idx);

    t.append_events(&task, 1).await;
    t.checkpoint(&task, "abcdef1").await;
    let c = cursors(&t, &contract, &task).await;
    let q = format!(
        "query($t: ID!, {PAGE_VARS}) {{ task(id: $t) {{ conversation({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    t.refuses_bad_page_args(
        &q,
        json!({ "t": task }),
        &c.message,
        &[
            c.timeline.clone(),
            c.event.clone(),
            c.task.clone(),
            c.task_checkpoint.clone(),
        ],
    )
    .await;
    let q = format!(
        "query($c: ID!, {PAGE_VARS}) {{ contract(id: $c) {{ conversation({PAGE_ARGS}, phase: \"research\") {{ CONN }} }} }}"
    );
    t.refuses_bad_page_args(
        &q,
        json!({ "c": contract }),
        &c.message,
        &[c.timeline, c.event, c.task, c.task_checkpoint],
    )
    .await;
}

#[tokio::test]
async fn tasks_and_contracts_page_both_ways() {
    let t = TestApp::new().await;
    let mut contracts = vec![];
    for i in 0..25 {
        contracts.push(t.create_contract(&format!("c{i}")).await);
    }
    let (c0, sup0) = contracts[0].clone();
    let mut tasks = vec![];
    for i in 0..20 {
        tasks.push(t.create_task(&format!("t{i}"), Some(&c0)).await);
    }
    // 25 supervisors, then 20 tasks: 45 tasks, oldest first.
    let q = format!("query({PAGE_VARS}) {{ tasks({PAGE_ARGS}) {{ CONN }} }}");
    let expected: Vec<Value> = contracts
        .iter()
        .map(|(_, s)| json!(s))
        .chain(tasks.iter().map(|t| json!(t)))
        .collect();
    for size in [7, 15] {
        let nodes = t.walk(&q, "id name", json!({}), &["tasks"], size).await;
        assert_eq!(field(&nodes, "id"), expected);
    }
    let q = format!(
        "query($c: ID!, {PAGE_VARS}) {{ contract(id: $c) {{ tasks({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    let nodes = t
        .walk(&q, "id", json!({ "c": c0 }), &["contract", "tasks"], 6)
        .await;
    let expected: Vec<Value> = std::iter::once(json!(sup0))
        .chain(tasks.iter().map(|t| json!(t)))
        .collect();
    assert_eq!(field(&nodes, "id"), expected);

    let q = format!("query({PAGE_VARS}) {{ contracts({PAGE_ARGS}) {{ CONN }} }}");
    for size in [6, 5] {
        let nodes = t.walk(&q, "id name", json!({}), &["contracts"], size).await;
        let expected: Vec<Value> = contracts.iter().map(|(c, _)| json!(c)).collect();
        assert_eq!(field(&nodes, "id"), expected);
    }

    t.append_messages(&tasks[0], 1).await;
    t.append_events(&tasks[0], 1).await;
    t.checkpoint(&tasks[0], "abcdef1").await;
    let c = cursors(&t, &c0, &tasks[0]).await;
    let q = format!("query({PAGE_VARS}) {{ tasks({PAGE_ARGS}) {{ CONN }} }}");
    t.refuses_bad_page_args(
        &q,
        json!({}),
        &c.task,
        &[
            c.contract.clone(),
            c.contract_checkpoint.clone(),
            c.timeline.clone(),
            c.message.clone(),
        ],
    )
    .await;
    let q = format!("query({PAGE_VARS}) {{ contracts({PAGE_ARGS}) {{ CONN }} }}");
    t.refuses_bad_page_args(
        &q,
        json!({}),
        &c.contract,
        &[c.task, c.contract_checkpoint, c.timeline, c.event],
    )
    .await;
}

#[tokio::test]
async fn checkpoints_page_both_ways() {
    let t = TestApp::new().await;
    let (contract, sup) = t.create_contract("c").await;
    let task = t.create_task("t", Some(&contract)).await;
    let mut shas = vec![];
    for i in 0..26 {
        let sha = format!("{:07x}", 0xa00000 + i);
        t.append_messages(&task, 1).await;
        t.checkpoint(&task, &sha).await;
        shas.push(json!(sha));
        if i % 2 == 0 {
            t.checkpoint(&sup, &format!("{:08x}", i)).await;
        }
    }
    let q = format!(
        "query($t: ID!, {PAGE_VARS}) {{ task(id: $t) {{ checkpoints({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    for size in [7, 13] {
        let nodes = t
            .walk(
                &q,
                "number commitSha messageCount",
                json!({ "t": task }),
                &["task", "checkpoints"],
                size,
            )
            .await;
        assert_eq!(field(&nodes, "commitSha"), shas);
        let numbers: Vec<Value> = (1..=26).map(|i| json!(i)).collect();
        assert_eq!(field(&nodes, "number"), numbers);
        assert_eq!(
            field(&nodes, "messageCount"),
            numbers,
            "one message per checkpoint"
        );
    }
    let q = format!(
        "query($c: ID!, {PAGE_VARS}) {{ contract(id: $c) {{ checkpoints({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    let nodes = t
        .walk(
            &q,
            "id number task { id }",
            json!({ "c": contract }),
            &["contract", "checkpoints"],
            8,
        )
        .await;
    assert_eq!(nodes.len(), 39);
    let sup_numbers: Vec<Value> = nodes
        .iter()
        .filter(|n| n["task"]["id"] == sup.as_str())
        .map(|n| n["number"].clone())
        .collect();
    assert_eq!(sup_numbers, (1..=13).map(|i| json!(i)).collect::<Vec<_>>());

    t.append_events(&task, 1).await;
    let c = cursors(&t, &contract, &task).await;
    let q = format!(
        "query($t: ID!, {PAGE_VARS}) {{ task(id: $t) {{ checkpoints({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    t.refuses_bad_page_args(
        &q,
        json!({ "t": task }),
        &c.task_checkpoint,
        &[
            c.message.clone(),
            c.event.clone(),
            c.timeline.clone(),
            c.contract_checkpoint.clone(),
        ],
    )
    .await;
    let q = format!(
        "query($c: ID!, {PAGE_VARS}) {{ contract(id: $c) {{ checkpoints({PAGE_ARGS}) {{ CONN }} }} }}"
    );
    t.refuses_bad_page_args(
        &q,
        json!({ "c": contract }),
        &c.contract_checkpoint,
        &[c.task, c.contract, c.task_checkpoint, c.timeline],
    )
    .await;
}

#[tokio::test]
async fn empty_lists_and_defaults() {
    let t = TestApp::new().await;
    let q = format!(
        "query({PAGE_VARS}) {{ timeline({PAGE_ARGS}) {{ totalCount edges {{ cursor }} nodes {{ id }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    );
    let data = t.ok(&q, json!({})).await;
    assert_eq!(
        data["timeline"],
        json!({ "totalCount": 0, "edges": [], "nodes": [], "pageInfo": { "hasNextPage": false, "hasPreviousPage": false, "startCursor": null, "endCursor": null } })
    );
    let data = t.ok(&q, json!({ "last": 5 })).await;
    assert_eq!(data["timeline"]["nodes"], json!([]));
    // Without arguments a list reads its first 20.
    for i in 0..23 {
        t.create_task(&format!("t{i}"), None).await;
    }
    let data = t
        .ok(
            "{ tasks { totalCount nodes { name } pageInfo { hasNextPage hasPreviousPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["tasks"]["totalCount"], 23);
    assert_eq!(data["tasks"]["nodes"].as_array().unwrap().len(), 20);
    assert_eq!(data["tasks"]["nodes"][19]["name"], "t19");
    assert_eq!(
        data["tasks"]["pageInfo"],
        json!({ "hasNextPage": true, "hasPreviousPage": false })
    );
    // `after` alone reads the next 20.
    let data = t
        .ok("{ tasks(first: 1) { edges { cursor } } }", json!({}))
        .await;
    let after = data["tasks"]["edges"][0]["cursor"].clone();
    let data = t
        .ok(
            "query($a: String) { tasks(after: $a) { nodes { name } pageInfo { hasNextPage hasPreviousPage } } }",
            json!({ "a": after }),
        )
        .await;
    assert_eq!(data["tasks"]["nodes"].as_array().unwrap().len(), 20);
    assert_eq!(data["tasks"]["nodes"][0]["name"], "t1");
    assert_eq!(
        data["tasks"]["pageInfo"],
        json!({ "hasNextPage": true, "hasPreviousPage": true })
    );
}
