//! A subscriber that stops reading pins no memory: its connection's outgoing queue
//! stays within its byte budget, the server closes it with 4008 once its socket has
//! accepted nothing for the stall time, other subscribers get every event, and the
//! client resumes from its last cursor without a gap.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::slow::SilentClient;
use common::ws::{Proto, WsClient};
use serde_json::{Value, json};

const BUDGET: usize = 1024 * 1024;
const STALL: Duration = Duration::from_secs(1);
const BATCHES: usize = 25;
const PER_BATCH: usize = 4;
const EVENT_BYTES: usize = 200 * 1024;
const EVENTS: i64 = (BATCHES * PER_BATCH) as i64;
const SUBSCRIPTION: &str =
    "subscription($t: ID!, $a: Int) { taskEvents(taskId: $t, after: $a) { sequence data } }";

fn sequence(data: &Value) -> i64 {
    data["taskEvents"]["sequence"].as_i64().expect("sequence")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_subscriber_is_closed_and_others_get_everything() {
    let t = TestApp::new().await;
    t.state.ws.set_limits(BUDGET, STALL);
    let server = t.serve().await;
    let task = t.create_task("noisy", None).await;

    let mut good = WsClient::open(server.addr, Proto::TransportWs, &t.key).await;
    good.subscribe("g", SUBSCRIPTION, json!({ "t": task, "a": 0 }))
        .await;
    let mut silent = SilentClient::open(server.addr, &t.key).await;
    silent
        .subscribe("s", SUBSCRIPTION, json!({ "t": task, "a": 0 }))
        .await;
    server.subscribers_at_least(2).await;

    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < EVENTS as usize {
            let data = good.next_data("g").await;
            assert_eq!(
                data["taskEvents"]["data"]["text"].as_str().map(str::len),
                Some(EVENT_BYTES)
            );
            seen.push(sequence(&data));
        }
        seen
    });

    let started = Instant::now();
    let text = "x".repeat(EVENT_BYTES);
    for _ in 0..BATCHES {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|_| json!({ "type": "OUTPUT", "data": { "text": text } }))
            .collect();
        t.ok(
            "mutation($t: ID!, $e: [TaskEventInput!]!) { appendTaskEvents(input: {taskId: $t, events: $e}) { events { sequence } } }",
            json!({ "t": task, "e": events }),
        )
        .await;
    }

    // (a) closed within a bounded time.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.state.ws.slow_closes() == 0 {
        assert!(
            Instant::now() < deadline,
            "the silent subscriber was not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_after = started.elapsed();
    // (b) its queue never held more than the budget.
    let peak = server.state.ws.peak_queued_bytes();
    assert!(peak <= BUDGET, "{peak} bytes queued on one connection");

    let drained = silent.drain(Duration::from_secs(20)).await;
    assert_eq!(
        drained.close,
        Some((
            makima::server::ws::TOO_SLOW,
            makima::server::ws::TOO_SLOW_REASON.to_owned()
        ))
    );
    let got: Vec<i64> = drained.results.iter().map(sequence).collect();
    let last = got.len() as i64;
    assert_eq!(got, (1..=last).collect::<Vec<_>>(), "a gapless prefix");
    assert!(last < EVENTS, "the silent subscriber was cut off early");

    // (c) the well-behaved subscriber got every event once, in order.
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the good subscriber keeps up")
        .expect("reader");
    assert_eq!(seen, (1..=EVENTS).collect::<Vec<_>>());

    // (d) reconnecting with the last cursor replays the rest, no gap, no duplicate.
    let mut again = WsClient::open(server.addr, Proto::TransportWs, &t.key).await;
    again
        .subscribe("r", SUBSCRIPTION, json!({ "t": task, "a": last }))
        .await;
    for expected in last + 1..=EVENTS {
        assert_eq!(sequence(&again.next_data("r").await), expected);
    }
    eprintln!(
        "closed after {closed_after:?} having delivered {last} events; peak queue {peak} bytes"
    );
}
