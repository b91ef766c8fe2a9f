//! Relation fields are batched: a page of tasks with their contract, fork origin and
//! first checkpoints costs a fixed number of SQL statements, whatever the page size; so
//! does the README's Overview query, whatever the number of contracts and tasks.

mod common;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use common::{TestApp, ids};
use makima::server::{AppState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const TASKS: &str = "{ tasks(first: 100) { nodes { id contract { id } forkedFrom { task { id } } checkpoints(first: 5) { nodes { number } } } } }";

/// A contract whose supervisor and `n - 1` tasks make `n` tasks; every third task
/// after the first few is a fork of an earlier one; task i has (i % 6) + 1 checkpoints.
/// Returns (contract, expected `forkedFrom` source per task id, checkpoints per task).
async fn populate(t: &TestApp, n: usize) -> (String, Vec<(String, Option<String>, usize)>) {
    let (contract, sup) = t.create_contract("c").await;
    let mut tasks: Vec<(String, Option<String>, usize)> = vec![(sup, None, 0)];
    for i in 1..n {
        let (id, source) = if i % 3 == 0 {
            let source = tasks[i / 2].0.clone();
            let data = t
                .ok(
                    "mutation($t: ID!) { forkTask(input: {taskId: $t, messageCount: 0}) { task { id forkedFrom { task { id } } } } }",
                    json!({ "t": source }),
                )
                .await;
            let fork = &data["forkTask"]["task"];
            assert_eq!(fork["forkedFrom"]["task"]["id"], source.as_str());
            (fork["id"].as_str().unwrap().to_owned(), Some(source))
        } else {
            (t.create_task(&format!("t{i}"), Some(&contract)).await, None)
        };
        tasks.push((id, source, 0));
    }
    for (i, task) in tasks.iter_mut().enumerate() {
        task.2 = i % 6 + 1;
        for k in 0..task.2 {
            t.checkpoint(&task.0, &format!("{:07x}", 0x1000000 + k))
                .await;
        }
    }
    (contract, tasks)
}

/// Runs `query` and returns its data and the SQL statements it cost.
///
/// The query goes through a second makima on the same database, sharing the test
/// app's live fan-out instead of starting its own: its store then counts this query's
/// statements only, not those of the fan-out's background reads (which run on the test
/// app's store, on a timer and after every commit).
async fn measured(t: &TestApp, query: &str) -> (Value, u64) {
    let app = makima::open(&t.url, 4, &t.app.workspace_root)
        .await
        .expect("a second makima");
    let store = app.store.clone();
    let router = router(AppState::with_events(app, t.state.events.clone()));
    let run = |query: &str| {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", t.key))
            .body(Body::from(json!({ "query": query }).to_string()))
            .unwrap();
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert!(body.get("errors").is_none(), "{body}");
            body["data"].clone()
        }
    };
    run("{ viewer { owner } }").await; // the key is cached now
    let before = store.statement_count();
    let data = run(query).await;
    (data, store.statement_count() - before)
}

async fn tasks_page_cost(n: usize) -> u64 {
    let t = TestApp::new().await;
    let (contract, tasks) = populate(&t, n).await;
    let (data, cost) = measured(&t, TASKS).await;
    let nodes = data["tasks"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), n);
    let mut forks = 0;
    for (node, (id, source, checkpoints)) in nodes.iter().zip(&tasks) {
        assert_eq!(node["id"], id.as_str());
        assert_eq!(node["contract"]["id"], contract.as_str());
        match source {
            Some(s) => {
                forks += 1;
                assert_eq!(node["forkedFrom"]["task"]["id"], s.as_str());
            }
            None => assert_eq!(node["forkedFrom"], Value::Null),
        }
        let numbers: Vec<i64> = node["checkpoints"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["number"].as_i64().unwrap())
            .collect();
        assert_eq!(
            numbers,
            (1..=(*checkpoints).min(5) as i64).collect::<Vec<_>>()
        );
    }
    assert!(forks >= n / 4, "some tasks are forks");
    cost
}

#[tokio::test]
async fn a_page_of_tasks_costs_a_fixed_number_of_statements() {
    let small = tasks_page_cost(10).await;
    let large = tasks_page_cost(100).await;
    assert!(large <= 8, "100 tasks cost {large} statements");
    assert_eq!(small, large, "10 tasks cost {small}, 100 cost {large}");
}

#[tokio::test]
async fn timeline_and_checkpoint_relations_are_batched() {
    let query = "{ timeline(first: 100) { nodes { type contract { id supervisor { status messageCount } } task { id parent { id } contract { id } } } } }";
    let mut costs = vec![];
    for n in [4, 40] {
        let t = TestApp::new().await;
        let (contract, sup) = t.create_contract("c").await;
        for i in 0..n {
            let task = t
                .create_subtask(&format!("t{i}"), Some(&contract), &sup)
                .await;
            t.append_events(&task, 1).await;
        }
        let (data, cost) = measured(&t, query).await;
        let nodes = data["timeline"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2 + 2 * n);
        for e in &nodes[2..] {
            assert_eq!(e["contract"]["id"], contract.as_str());
            assert_eq!(e["task"]["parent"]["id"], sup.as_str());
            assert_eq!(e["task"]["contract"]["id"], contract.as_str());
            assert_eq!(e["contract"]["supervisor"]["status"], "PENDING");
        }
        costs.push(cost);
    }
    // Levels may share a batch or not, depending on which finishes first; but the
    // cost never grows with the page (one statement per event would be over 80).
    assert!(costs.iter().all(|&c| c <= 10), "{costs:?}");
}

/// The README's Overview query, as the README spells it.
fn overview_query() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme.find("query Overview {").expect("an Overview query");
    let end = start + readme[start..].find("\n}\n").expect("its end") + 2;
    readme[start..end].to_owned()
}

/// `n` active contracts, each with a supervisor conversation of 6 messages and 3
/// tasks besides the supervisor, each with 4 events of which 3 match the Overview's
/// filter and with 6 checkpoints. No task is a fork: a fork's origin is read by the
/// task loader a level below the supervisors' tasks, in the same batch or a later one
/// depending on timing (`a_page_of_tasks_costs_a_fixed_number_of_statements` counts
/// fork origins).
async fn populate_overview(t: &TestApp, n: usize) -> Vec<(String, Vec<String>)> {
    let mut contracts = vec![];
    for c in 0..n {
        let (contract, sup) = t.create_contract(&format!("c{c}")).await;
        let texts: Vec<String> = (0..6).map(|i| format!("c{c} says {i}")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        t.say(&sup, &texts).await;
        let mut tasks = vec![];
        for k in 0..3 {
            tasks.push(t.create_task(&format!("c{c}t{k}"), Some(&contract)).await);
        }
        for (k, task) in tasks.iter().enumerate() {
            let events: Vec<Value> = ["TOOL_CALL", "STATUS", "OUTPUT", "OUTPUT"]
                .iter()
                .map(|ty| json!({ "type": ty, "data": { "task": format!("c{c}t{k}") } }))
                .collect();
            t.ok(
                "mutation($t: ID!, $e: [TaskEventInput!]!) { appendTaskEvents(input: {taskId: $t, events: $e}) { events { sequence } } }",
                json!({ "t": task, "e": events }),
            )
            .await;
            for i in 0..6 {
                t.checkpoint(task, &format!("{c:03x}{k:02x}{i:02x}")).await;
            }
        }
        contracts.push((contract, tasks));
    }
    contracts
}

async fn overview_cost(n: usize) -> u64 {
    let t = TestApp::new().await;
    let contracts = populate_overview(&t, n).await;
    let (data, cost) = measured(&t, &overview_query()).await;
    let page = &data["contracts"];
    assert_eq!(page["totalCount"], n);
    let nodes = page["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), n);
    for (c, (node, (contract, tasks))) in nodes.iter().zip(&contracts).enumerate() {
        assert_eq!(node["id"], contract.as_str());
        assert_eq!(node["supervisor"]["messageCount"], 6);
        let conversation = &node["conversation"];
        let texts: Vec<&str> = conversation["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"][0]["text"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (1..6).map(|i| format!("c{c} says {i}")).collect();
        assert_eq!(texts, expected);
        assert_eq!(conversation["pageInfo"]["hasPreviousPage"], true);
        let task_nodes = node["tasks"]["nodes"].as_array().unwrap();
        assert_eq!(ids(&node["tasks"]["nodes"]), *tasks);
        for (k, task) in task_nodes.iter().enumerate() {
            let events = task["events"]["nodes"].as_array().unwrap();
            let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert_eq!(types, ["TOOL_CALL", "OUTPUT", "OUTPUT"]);
            for e in events {
                assert_eq!(e["data"]["task"], format!("c{c}t{k}"));
            }
            let shas: Vec<&str> = task["checkpoints"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|cp| cp["commitSha"].as_str().unwrap())
                .collect();
            let expected: Vec<String> = (0..5).map(|i| format!("{c:03x}{k:02x}{i:02x}")).collect();
            assert_eq!(shas, expected);
            assert_eq!(task["forkedFrom"], Value::Null);
        }
        let history = node["history"]["edges"].as_array().unwrap();
        assert_eq!(history.len(), 10);
        let alone = t
            .ok(
                "query($c: ID!) { timeline(first: 100, filter: {contractId: $c}) { edges { cursor } } }",
                json!({ "c": contract }),
            )
            .await;
        let alone = alone["timeline"]["edges"].as_array().unwrap();
        let last_ten: Vec<&Value> = alone[alone.len() - 10..]
            .iter()
            .map(|e| &e["cursor"])
            .collect();
        let batched: Vec<&Value> = history.iter().map(|e| &e["cursor"]).collect();
        assert_eq!(batched, last_ten, "contract {c}'s own history, in order");
    }
    cost
}

/// The Overview's statements: the contracts page and its count; the supervisors, their
/// tasks and their conversations' heads (for `messageCount`); the conversation pages'
/// heads and messages; the contracts' tasks, their events and checkpoints; the
/// contracts' history.
const OVERVIEW_STATEMENTS: u64 = 11;

#[tokio::test]
async fn the_readme_overview_costs_a_fixed_number_of_statements() {
    let few = overview_cost(2).await;
    let many = overview_cost(10).await;
    assert_eq!(
        few, many,
        "2 contracts cost {few} statements, 10 cost {many}"
    );
    assert_eq!(many, OVERVIEW_STATEMENTS);
}
