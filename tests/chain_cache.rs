//! The conversation-chain cache stays within its byte budget and deep chains stay
//! cheap: thousands of "append 2, rewind 1" cycles (each rewind adds a segment whose
//! chain is one longer) keep rewinds and last-50 reads from walking the whole chain.

mod common;

use std::time::Instant;

use common::TestApp;
use makima::domain::ingest::{self, NewMessage};
use makima::domain::rewind::{self, Rewind};
use makima::entities::ids::TaskId;
use makima::entities::kinds::MessageRole;
use serde_json::{Value, json};
use uuid::Uuid;

const CYCLES: usize = 2_000;
const BUDGET: usize = 256 * 1024;

fn text(v: &Value) -> String {
    v[0]["text"].as_str().expect("text block").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_rewinds_stay_within_the_budget_and_cheap() {
    let t = TestApp::new().await;
    let store = &t.app.store;
    store.chains().set_budget(BUDGET);
    let (contract, task) = t.create_contract("deep").await;
    let task_id = TaskId(Uuid::parse_str(&task).unwrap());
    let viewer = t.state.auth.viewer(Some(&t.key)).await.unwrap();

    let mut expected: Vec<String> = Vec::new();
    let mut peak = 0;
    let started = Instant::now();
    let mut first_hundred = None;
    for i in 0..CYCLES {
        let messages = ["a", "b"]
            .iter()
            .map(|s| NewMessage {
                role: MessageRole::Assistant,
                content: json!([{ "type": "text", "text": format!("{i}{s}") }]),
            })
            .collect();
        ingest::append_messages(&t.app, &viewer, task_id, messages, None)
            .await
            .unwrap();
        expected.push(format!("{i}a"));
        expected.push(format!("{i}b"));
        let rewound = rewind::rewind_conversation(
            &t.app,
            &viewer,
            Rewind {
                contract_id: None,
                task_id: Some(task_id),
                to_message_index: None,
                by_message_count: Some(1),
                rewind_code: false,
            },
        )
        .await
        .unwrap();
        expected.pop();
        assert_eq!(rewound.new_message_count as usize, expected.len());
        let accounted = store.chains().accounted_bytes();
        assert!(accounted <= BUDGET, "cycle {i}: {accounted} bytes cached");
        peak = peak.max(accounted);
        if i == 99 {
            first_hundred = Some(started.elapsed());
        }
    }
    let first_hundred = first_hundred.unwrap();
    let last_start = Instant::now();
    // The chain is CYCLES segments deep; warm, nothing reads it with the recursive query.
    assert_eq!(store.chains().deep_reads(), 0);

    let head = makima::store::tasks::by_id(viewer.scope(store.db()), task_id)
        .await
        .unwrap()
        .unwrap()
        .conversation_id;
    let view = store.conversation(head).await.unwrap();
    let length = view.length;
    assert_eq!(length as usize, expected.len());
    assert_eq!(
        view.range_count(),
        CYCLES,
        "one range per rewind, nothing copied"
    );
    // What a last-50 read and a rewind by one walk: a bounded part of the chain.
    assert!(view.ranges_between(length - 50, length).len() <= 50);
    assert_eq!(view.ranges_between(length - 1, length).len(), 1);

    // Reads are right: the last 50, every page from the start, and a phase filter.
    let last = t
        .ok(
            "query($c: ID!) { contract(id: $c) { conversation(last: 50) { nodes { index content } } } }",
            json!({ "c": contract }),
        )
        .await;
    let nodes = last["contract"]["conversation"]["nodes"]
        .as_array()
        .unwrap();
    let got: Vec<String> = nodes.iter().map(|n| text(&n["content"])).collect();
    assert_eq!(got, expected[expected.len() - 50..]);

    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = t
            .ok(
                "query($c: ID!, $a: String) { contract(id: $c) { conversation(first: 100, after: $a) { nodes { content } pageInfo { hasNextPage endCursor } } } }",
                json!({ "c": contract, "a": after }),
            )
            .await;
        let conv = &page["contract"]["conversation"];
        all.extend(
            conv["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| text(&n["content"])),
        );
        if !conv["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conv["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(all, expected);

    let phase = t
        .ok(
            "query($c: ID!) { contract(id: $c) { conversation(last: 10, phase: \"research\") { totalCount nodes { content } } } }",
            json!({ "c": contract }),
        )
        .await;
    let conv = &phase["contract"]["conversation"];
    assert_eq!(conv["totalCount"], json!(expected.len()));
    let got: Vec<String> = conv["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| text(&n["content"]))
        .collect();
    assert_eq!(got, expected[expected.len() - 10..]);
    eprintln!(
        "{CYCLES} cycles: first 100 in {first_hundred:?}, total {:?}; reads {:?}; peak cache {peak} bytes",
        started.elapsed(),
        last_start.elapsed()
    );
}

/// A cache far below what one chain needs still answers correctly (it reads chains
/// from the database again), within its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_budget_reads_chains_again_and_stays_correct() {
    let t = TestApp::new().await;
    let store = &t.app.store;
    store.chains().set_budget(1024);
    let task = t.create_task("small", None).await;
    let task_id = TaskId(Uuid::parse_str(&task).unwrap());
    let viewer = t.state.auth.viewer(Some(&t.key)).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..60 {
        let messages = vec![
            NewMessage {
                role: MessageRole::User,
                content: json!([{ "type": "text", "text": format!("{i}a") }]),
            },
            NewMessage {
                role: MessageRole::User,
                content: json!([{ "type": "text", "text": format!("{i}b") }]),
            },
        ];
        ingest::append_messages(&t.app, &viewer, task_id, messages, None)
            .await
            .unwrap();
        expected.push(format!("{i}a"));
        rewind::rewind_conversation(
            &t.app,
            &viewer,
            Rewind {
                contract_id: None,
                task_id: Some(task_id),
                to_message_index: Some(expected.len() as i32 - 1),
                by_message_count: None,
                rewind_code: false,
            },
        )
        .await
        .unwrap();
        assert!(store.chains().accounted_bytes() <= 1024);
    }
    assert!(
        store.chains().deep_reads() > 0,
        "the budget forced re-reads"
    );
    let page = t
        .ok(
            "query($t: ID!) { task(id: $t) { conversation(first: 100) { nodes { content } } } }",
            json!({ "t": task }),
        )
        .await;
    let got: Vec<String> = page["task"]["conversation"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| text(&n["content"]))
        .collect();
    assert_eq!(got, expected);
}
