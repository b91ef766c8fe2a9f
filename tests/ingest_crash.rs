//! kill -9 during ingestion: several clients append task events and messages with
//! idempotency keys to a real `makima serve` process, which is SIGKILLed once a number
//! of calls were acknowledged (twice), restarted on the same database, and sent every
//! unacknowledged call again with the same key and input (and each client's last
//! acknowledged calls too, as a client that died with the server would). Every
//! acknowledged or retried batch must then be stored exactly once, contiguous and in
//! each client's order, with gapless sequences and indexes and one history event per
//! batch.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestApp;
use common::process::Spawned;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const CLIENTS: usize = 6;
const TASKS: usize = 3;
/// Calls each client makes over the whole test.
const CALLS_PER_CLIENT: usize = 60;
/// Acknowledged calls (over all clients) after which each round's server is killed.
const KILL_AFTER: [usize; 2] = [40, 130];

const EVENTS: &str = "mutation($t: ID!, $e: [TaskEventInput!]!, $k: String) { appendTaskEvents(input: {taskId: $t, events: $e, idempotencyKey: $k}) { events { sequence data } } }";
const MESSAGES: &str = "mutation($t: ID!, $m: [MessageInput!]!, $k: String) { appendMessages(input: {taskId: $t, messages: $m, idempotencyKey: $k}) { messageCount messages { index content } } }";

/// One ingestion call, fixed before it is first sent so a retry repeats it exactly.
#[derive(Clone, Debug)]
struct Call {
    client: usize,
    number: usize,
    task: usize,
    messages: bool,
    items: usize,
}

impl Call {
    fn plan(client: usize, number: usize) -> Self {
        // Spread clients over shared tasks and vary the batch size and kind, so that
        // concurrent calls contend for the same task's sequence.
        Self {
            client,
            number,
            task: (client + number) % TASKS,
            messages: (client * 7 + number).is_multiple_of(3),
            items: 1 + (client * 13 + number * 5) % 17,
        }
    }

    fn key(&self) -> String {
        format!("c{}-n{}", self.client, self.number)
    }

    fn tag(&self, i: usize) -> String {
        format!("{}-{}-{}", self.client, self.number, i)
    }

    fn request(&self, tasks: &[String]) -> (&'static str, Value) {
        let t = &tasks[self.task];
        if self.messages {
            let m: Vec<Value> = (0..self.items)
                .map(|i| json!({ "role": "ASSISTANT", "content": [{ "type": "text", "text": self.tag(i) }] }))
                .collect();
            (MESSAGES, json!({ "t": t, "m": m, "k": self.key() }))
        } else {
            let e: Vec<Value> = (0..self.items)
                .map(|i| json!({ "type": "OUTPUT", "data": { "tag": self.tag(i) } }))
                .collect();
            (EVENTS, json!({ "t": t, "e": e, "k": self.key() }))
        }
    }

    /// Whether `reply` is this call's payload: every item, with its own tag.
    fn acknowledged_by(&self, reply: &Value) -> bool {
        let tags: Vec<Value> = if self.messages {
            reply["data"]["appendMessages"]["messages"]
                .as_array()
                .map(|ms| ms.iter().map(|m| m["content"][0]["text"].clone()).collect())
                .unwrap_or_default()
        } else {
            reply["data"]["appendTaskEvents"]["events"]
                .as_array()
                .map(|es| es.iter().map(|e| e["data"]["tag"].clone()).collect())
                .unwrap_or_default()
        };
        let want: Vec<Value> = (0..self.items).map(|i| json!(self.tag(i))).collect();
        tags == want
    }
}

/// `POST /graphql` that reports a dead server as `Err` instead of failing: a call
/// whose answer never arrived is unacknowledged, whether or not it was stored.
async fn try_post(addr: SocketAddr, key: &str, query: &str, vars: &Value) -> Result<Value, String> {
    let body = json!({ "query": query, "variables": vars }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| "no answer within 60 s".to_owned())??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no complete response")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{head}\n{body}"));
    }
    serde_json::from_str(body).map_err(|e| format!("incomplete body ({e})"))
}

/// What the clients know: the calls acknowledged and the ones sent without an answer.
#[derive(Default)]
struct Ledger {
    acknowledged: Vec<Call>,
    unacknowledged: Vec<Call>,
}

/// Runs `client`'s calls from `next` on until one goes unanswered (the server died)
/// or all are done; returns the next call number.
async fn drive(
    addr: SocketAddr,
    key: String,
    tasks: Arc<Vec<String>>,
    client: usize,
    mut next: usize,
    acked: Arc<AtomicUsize>,
    progress: watch::Sender<usize>,
) -> (usize, Ledger) {
    let mut ledger = Ledger::default();
    while next < CALLS_PER_CLIENT {
        let call = Call::plan(client, next);
        let (query, vars) = call.request(&tasks);
        match try_post(addr, &key, query, &vars).await {
            Ok(reply) => {
                assert!(
                    call.acknowledged_by(&reply),
                    "call {} was answered with something else: {reply}",
                    call.key()
                );
                ledger.acknowledged.push(call);
                progress.send_replace(acked.fetch_add(1, Ordering::SeqCst) + 1);
                next += 1;
            }
            Err(_) => {
                ledger.unacknowledged.push(call);
                return (next + 1, ledger);
            }
        }
    }
    (next, ledger)
}

/// Polls until nothing accepts connections on `addr` any more.
async fn wait_until_dead(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the killed server still accepts connections"
        );
        tokio::task::yield_now().await;
    }
}

/// Every item of a task's event stream as (sequence, tag), oldest first.
async fn stored_events(server: &Spawned, key: &str, task: &str) -> Vec<(i64, String)> {
    let mut out = vec![];
    let mut after = Value::Null;
    loop {
        let data = server
            .ok(
                key,
                "query($t: ID!, $a: String) { task(id: $t) { events(first: 100, after: $a) { nodes { sequence data } pageInfo { hasNextPage endCursor } } } }",
                json!({ "t": task, "a": after }),
            )
            .await;
        let page = &data["task"]["events"];
        for n in page["nodes"].as_array().unwrap() {
            out.push((
                n["sequence"].as_i64().unwrap(),
                n["data"]["tag"].as_str().unwrap().to_owned(),
            ));
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return out;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// Every message of a task's conversation as (index, tag), oldest first.
async fn stored_messages(server: &Spawned, key: &str, task: &str) -> Vec<(i64, String)> {
    let mut out = vec![];
    let mut after = Value::Null;
    loop {
        let data = server
            .ok(
                key,
                "query($t: ID!, $a: String) { task(id: $t) { conversation(first: 100, after: $a) { nodes { index content } pageInfo { hasNextPage endCursor } } } }",
                json!({ "t": task, "a": after }),
            )
            .await;
        let page = &data["task"]["conversation"];
        for n in page["nodes"].as_array().unwrap() {
            out.push((
                n["index"].as_i64().unwrap(),
                n["content"][0]["text"].as_str().unwrap().to_owned(),
            ));
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return out;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// The history events of one type for a task: (firstSequence or firstIndex, count).
async fn batch_events(server: &Spawned, key: &str, task: &str, kind: &str) -> Vec<(i64, i64)> {
    let mut out = vec![];
    let mut after = Value::Null;
    loop {
        let data = server
            .ok(
                key,
                "query($t: ID!, $k: HistoryEventType!, $a: String) { timeline(first: 100, after: $a, filter: {taskId: $t, types: [$k]}) { nodes { data } pageInfo { hasNextPage endCursor } } }",
                json!({ "t": task, "k": kind, "a": after }),
            )
            .await;
        let page = &data["timeline"];
        for n in page["nodes"].as_array().unwrap() {
            let d = &n["data"];
            let first = d["firstSequence"].as_i64().or(d["firstIndex"].as_i64());
            out.push((first.unwrap(), d["count"].as_i64().unwrap()));
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return out;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// Checks one stream: positions `base..` without a gap, each expected batch stored
/// exactly once as a contiguous run, each client's batches in its call order, nothing
/// else stored, and one history event per batch matching the run.
fn check_stream(
    what: &str,
    base: i64,
    stored: &[(i64, String)],
    expected: &[&Call],
    batches: &[(i64, i64)],
) {
    let positions: Vec<i64> = stored.iter().map(|(p, _)| *p).collect();
    let gapless: Vec<i64> = (base..base + stored.len() as i64).collect();
    assert_eq!(positions, gapless, "{what}: positions are gapless");

    let mut at: HashMap<&str, usize> = HashMap::new();
    for (i, (_, tag)) in stored.iter().enumerate() {
        assert!(at.insert(tag, i).is_none(), "{what}: {tag} is stored twice");
    }
    let want: usize = expected.iter().map(|c| c.items).sum();
    assert_eq!(
        stored.len(),
        want,
        "{what}: stored items == acknowledged + retried items"
    );

    let mut runs = vec![];
    for call in expected {
        let start = *at
            .get(call.tag(0).as_str())
            .unwrap_or_else(|| panic!("{what}: batch {} was lost", call.key()));
        for i in 0..call.items {
            assert_eq!(
                stored.get(start + i).map(|(_, t)| t.clone()),
                Some(call.tag(i)),
                "{what}: batch {} is contiguous and in order",
                call.key()
            );
        }
        runs.push((base + start as i64, call.items as i64));
    }
    for client in 0..CLIENTS {
        let order: Vec<usize> = expected
            .iter()
            .filter(|c| c.client == client)
            .map(|c| at[c.tag(0).as_str()])
            .collect();
        assert!(
            order.is_sorted(),
            "{what}: client {client}'s batches keep their order"
        );
    }
    runs.sort_unstable();
    let mut history = batches.to_vec();
    history.sort_unstable();
    assert_eq!(history, runs, "{what}: one history event per stored batch");
}

/// How many calls went unanswered at the kills, and how many of those the server had
/// committed before it died (the case an idempotency key exists for).
#[derive(Default)]
struct RetryStats {
    unanswered: usize,
    committed: usize,
}

/// Sends every unanswered call again with the same key and input, after noting whether
/// the dead server had stored it; each retry must return that call's own payload.
async fn retry_unanswered(
    server: &Spawned,
    key: &str,
    tasks: &[String],
    ledger: &mut Ledger,
    stats: &mut RetryStats,
) {
    for call in std::mem::take(&mut ledger.unacknowledged) {
        let task = &tasks[call.task];
        let stored = if call.messages {
            stored_messages(server, key, task).await
        } else {
            stored_events(server, key, task).await
        };
        stats.unanswered += 1;
        stats.committed += usize::from(stored.iter().any(|(_, t)| *t == call.tag(0)));
        let (query, vars) = call.request(tasks);
        let reply = try_post(server.addr, key, query, &vars)
            .await
            .expect("retry answered");
        assert!(
            call.acknowledged_by(&reply),
            "retry of {}: {reply}",
            call.key()
        );
        ledger.acknowledged.push(call);
    }
}

/// Sends each client's last acknowledged call of each kind again, as a client that
/// died with the server and lost its record of the answer would: the key must
/// have survived the crash, so the call returns its first payload and stores nothing.
async fn resend_acknowledged(server: &Spawned, key: &str, tasks: &[String], ledger: &Ledger) {
    for client in 0..CLIENTS {
        for messages in [false, true] {
            let last = ledger
                .acknowledged
                .iter()
                .rev()
                .find(|c| c.client == client && c.messages == messages);
            if let Some(call) = last {
                let (query, vars) = call.request(tasks);
                let reply = try_post(server.addr, key, query, &vars)
                    .await
                    .expect("resend answered");
                assert!(
                    call.acknowledged_by(&reply),
                    "resend of {}: {reply}",
                    call.key()
                );
            }
        }
    }
}

async fn crash_and_retry(app: &TestApp) {
    let key = app.key.clone();
    let (contract, _) = app.create_contract("ingest under kill -9").await;
    let mut tasks = vec![];
    for i in 0..TASKS {
        tasks.push(app.create_task(&format!("t{i}"), Some(&contract)).await);
    }
    let tasks = Arc::new(tasks);
    let workspace = app.dir.path().join("workspace");

    let mut ledger = Ledger::default();
    let mut stats = RetryStats::default();
    let mut next = [0; CLIENTS];
    let acked = Arc::new(AtomicUsize::new(0));
    for kill_after in KILL_AFTER {
        let server = Spawned::start(&app.url, &workspace).await;
        let addr = server.addr;
        retry_unanswered(&server, &key, &tasks, &mut ledger, &mut stats).await;
        resend_acknowledged(&server, &key, &tasks, &ledger).await;
        let (progress, mut watched) = watch::channel(acked.load(Ordering::SeqCst));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(drive(
                    addr,
                    key.clone(),
                    tasks.clone(),
                    c,
                    next[c],
                    acked.clone(),
                    progress.clone(),
                ))
            })
            .collect();
        drop(progress);
        let _ = watched.wait_for(|n| *n >= kill_after).await;
        // Dropping the process handle sends SIGKILL (kill_on_drop): no shutdown runs.
        drop(server);
        wait_until_dead(addr).await;
        for (c, handle) in clients.into_iter().enumerate() {
            let (n, l) = handle.await.expect("client");
            next[c] = n;
            ledger.acknowledged.extend(l.acknowledged);
            ledger.unacknowledged.extend(l.unacknowledged);
        }
        assert!(
            !ledger.unacknowledged.is_empty() || next.iter().all(|n| *n == CALLS_PER_CLIENT),
            "the kill happened mid-stream"
        );
    }

    let server = Spawned::start(&app.url, &workspace).await;
    retry_unanswered(&server, &key, &tasks, &mut ledger, &mut stats).await;
    resend_acknowledged(&server, &key, &tasks, &ledger).await;
    eprintln!(
        "ingest_crash: {} calls stored; {} unanswered at {} kills, {} of them already committed",
        ledger.acknowledged.len(),
        stats.unanswered,
        KILL_AFTER.len(),
        stats.committed
    );

    for (t, task) in tasks.iter().enumerate() {
        let events: Vec<&Call> = ledger
            .acknowledged
            .iter()
            .filter(|c| c.task == t && !c.messages)
            .collect();
        let stored = stored_events(&server, &key, task).await;
        let batches = batch_events(&server, &key, task, "TASK_EVENTS_APPENDED").await;
        check_stream(&format!("task {t} events"), 1, &stored, &events, &batches);

        let messages: Vec<&Call> = ledger
            .acknowledged
            .iter()
            .filter(|c| c.task == t && c.messages)
            .collect();
        let stored = stored_messages(&server, &key, task).await;
        let batches = batch_events(&server, &key, task, "MESSAGES_APPENDED").await;
        check_stream(
            &format!("task {t} messages"),
            0,
            &stored,
            &messages,
            &batches,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingestion_loses_and_duplicates_nothing() {
    let app = TestApp::new().await;
    crash_and_retry(&app).await;
}
