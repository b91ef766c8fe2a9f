//! makima as separate processes: SIGTERM closes subscriptions with 1001 and exits, and
//! (on PostgreSQL) two processes on one database each see every event, whichever
//! process wrote it.

mod common;

use common::TestApp;
use common::process::Spawned;
use common::ws::{Proto, WsClient};
use serde_json::json;

const HISTORY: &str =
    "subscription($a: String) { historyEvents(after: $a) { cursor type task { id } } }";
const TASK_EVENTS: &str =
    "subscription($t: ID!, $a: Int) { taskEvents(taskId: $t, after: $a) { sequence } }";
const CREATE_TASK: &str = "mutation($n: String!) { createTask(input: {name: $n}) { task { id } } }";
const APPEND: &str = "mutation($t: ID!) { appendTaskEvents(input: {taskId: $t, events: [{type: OUTPUT, data: 1}, {type: OUTPUT, data: 2}]}) { events { sequence } } }";

async fn cursors(c: &mut WsClient, n: usize) -> Vec<String> {
    let mut out = vec![];
    for _ in 0..n {
        let data = c.next_data("h").await;
        out.push(data["historyEvents"]["cursor"].as_str().unwrap().to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_subscriptions_with_1001_and_exits() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("ws-a")).await;
    let start = app.last_cursor().await;
    let mut clients = vec![];
    for proto in Proto::BOTH {
        let mut c = WsClient::open(server.addr, proto, &app.key).await;
        c.subscribe("h", HISTORY, json!({ "a": start })).await;
        clients.push(c);
    }
    let data = server.ok(&app.key, CREATE_TASK, json!({ "n": "t" })).await;
    let task = data["createTask"]["task"]["id"].as_str().unwrap();
    for c in &mut clients {
        let e = c.next_data("h").await;
        assert_eq!(e["historyEvents"]["task"]["id"], task);
    }
    assert!(server.terminate().await, "makima exits successfully");
    for c in &mut clients {
        assert_eq!(c.closed().await.0, 1001);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database_see_each_others_events() {
    let app = TestApp::new().await;
    if !app.is_postgres() {
        eprintln!("note: skipped; set MAKIMA_TEST_DATABASE_URL to a PostgreSQL server to run it");
        return;
    }
    let mut a = Spawned::start(&app.url, &app.dir.path().join("ws-a")).await;
    let b = Spawned::start(&app.url, &app.dir.path().join("ws-b")).await;
    let key = app.key.clone();
    let start = app.last_cursor().await;
    let task_a = a.ok(&key, CREATE_TASK, json!({ "n": "a" })).await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task_b = b.ok(&key, CREATE_TASK, json!({ "n": "b" })).await["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Subscribers on both processes, in both protocols; one follows B's task on A.
    let mut on_a = WsClient::open(a.addr, Proto::TransportWs, &key).await;
    on_a.subscribe("h", HISTORY, json!({ "a": start })).await;
    let mut on_b = WsClient::open(b.addr, Proto::Legacy, &key).await;
    on_b.subscribe("h", HISTORY, json!({ "a": start })).await;
    let mut task_on_a = WsClient::open(a.addr, Proto::Legacy, &key).await;
    task_on_a
        .subscribe("t", TASK_EVENTS, json!({ "t": task_b, "a": 0 }))
        .await;

    // Both processes (and this one) write at once.
    const EACH: usize = 15;
    let write = |server: &Spawned, task: String| {
        let (addr, key) = (server.addr, key.clone());
        async move {
            for _ in 0..EACH {
                common::process::http_post(addr, &key, APPEND, json!({ "t": task })).await;
            }
        }
    };
    let in_process = async {
        for _ in 0..EACH {
            app.append_events(&task_a, 1).await;
        }
    };
    tokio::join!(
        write(&a, task_a.clone()),
        write(&b, task_b.clone()),
        in_process
    );
    let timeline = app.timeline_after(&key, &start).await;
    assert_eq!(timeline.len(), 2 + 3 * EACH);
    assert_eq!(cursors(&mut on_a, timeline.len()).await, timeline);
    assert_eq!(cursors(&mut on_b, timeline.len()).await, timeline);
    let mut seqs = vec![];
    for _ in 0..2 * EACH {
        seqs.push(
            task_on_a.next_data("t").await["taskEvents"]["sequence"]
                .as_i64()
                .unwrap(),
        );
    }
    assert_eq!(seqs, (1..=(2 * EACH) as i64).collect::<Vec<_>>());

    // A goes away; B's subscribers go on.
    assert!(a.terminate().await);
    assert_eq!(on_a.closed().await.0, 1001);
    b.ok(&key, APPEND, json!({ "t": task_b })).await;
    let last = app.last_cursor().await;
    assert_eq!(cursors(&mut on_b, 1).await, vec![last]);
}
