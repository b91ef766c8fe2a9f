//! Property test over everything a client can send: documents built from the schema,
//! variables, cursors, IDs and WebSocket frames. For any input: no panic, no HTTP
//! 5xx, no `INTERNAL_SERVER_ERROR`, every error carries `extensions.code`, another
//! owner's data never shows, and the server still answers a normal request afterwards.
//!
//! Each target runs for `MAKIMA_FUZZ_SECONDS` (default 10) or `MAKIMA_FUZZ_CASES`
//! cases, whichever ends first; `MAKIMA_FUZZ_SEED` (64 hex digits) replays a run.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use common::fuzz::{
    Choices, DocBuilder, Pool, Schema, WsFrame, cursor, declared_variables, id, json,
    mutate_syntax, quote_json, readme_operations, string, ws_frame,
};
use common::ws::{Proto, TestServer, WsClient};
use common::{Reply, TestApp, url_encode};
use futures_util::{SinkExt, StreamExt};
use proptest::collection::vec;
use proptest::prelude::any;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Marks every name of the other owner's rows: it must never appear in a reply.
const SECRET: &str = "SECRET-of-bob";
/// How long one request may take before the server counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Panics anywhere in the process (also in spawned tasks, which no caller sees).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The tests' own failures (in tests/) are reported by the tests themselves.
            if info
                .location()
                .is_none_or(|l| !l.file().starts_with("tests/"))
            {
                // Shrinking repeats a panic hundreds of times: print the first few.
                if PANICS.fetch_add(1, Ordering::SeqCst) >= 3 {
                    return;
                }
            }
            default(info);
        }));
    });
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fixtures every target fuzzes against, with the IDs and cursors they produced.
struct World {
    app: TestApp,
    schema: Schema,
    pool: Pool,
}

async fn world() -> World {
    let app = TestApp::new().await;
    let mut pool = Pool::default();
    let (contract, supervisor) = app.create_contract("fuzzed").await;
    app.say(&supervisor, &["plan it", "done"]).await;
    let task = app.create_task("worker", Some(&contract)).await;
    app.say(&task, &["a", "b", "c", "d", "e"]).await;
    app.append_events(&task, 5).await;
    let checkpoint = app.checkpoint_id(&task, "3f2a9c1").await;
    app.say(&task, &["f"]).await;
    let rewind = app
        .ok(
            "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1}) { event { id } } }",
            json!({ "t": task }),
        )
        .await;
    let running = app.create_task("running", Some(&contract)).await;
    app.set_status(&running, "RUNNING").await;
    pool.own_ids = vec![
        contract.clone(),
        supervisor,
        task.clone(),
        running,
        checkpoint,
        rewind["rewindConversation"]["event"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];

    let bob = app.key_for("bob").await;
    let data = app
        .ok_as(
            &bob,
            "mutation($n: String!) { createContract(input: {name: $n}) { contract { id supervisor { task { id } } } } }",
            json!({ "n": SECRET }),
        )
        .await;
    let c = &data["createContract"]["contract"];
    let bob_task = c["supervisor"]["task"]["id"].as_str().unwrap().to_owned();
    let bob_cp = app
        .ok_as(
            &bob,
            "mutation($t: ID!) { recordCheckpoint(input: {taskId: $t, commitSha: \"abcdef1\", message: \"SECRET-of-bob\"}) { checkpoint { id } } }",
            json!({ "t": bob_task }),
        )
        .await;
    pool.foreign_ids = vec![
        c["id"].as_str().unwrap().to_owned(),
        bob_task,
        bob_cp["recordCheckpoint"]["checkpoint"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];

    // One cursor of every kind of list.
    let lists = app
        .ok(
            "query($c: ID!, $t: ID!) {
               timeline(first: 2) { edges { cursor } }
               contracts(first: 1) { edges { cursor } }
               tasks(first: 1) { edges { cursor } }
               contract(id: $c) { conversation(first: 1) { edges { cursor } } history(first: 1) { edges { cursor } } checkpoints(first: 1) { edges { cursor } } }
               task(id: $t) { events(first: 2) { edges { cursor } } conversation(first: 2) { edges { cursor } } checkpoints(first: 1) { edges { cursor } } }
             }",
            json!({ "c": contract, "t": task }),
        )
        .await;
    collect_cursors(&lists, &mut pool.cursors);
    assert!(pool.cursors.len() >= 8, "cursors of every list: {lists}");
    World {
        app,
        schema: Schema::load(),
        pool,
    }
}

fn collect_cursors(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("cursor", Value::String(s)) => out.push(s.clone()),
                    _ => collect_cursors(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_cursors(v, out)),
        _ => {}
    }
}

/// What the runs of one target saw, for the summary line.
#[derive(Default)]
struct Tally {
    cases: usize,
    /// The request being served, for a report when serving it panics.
    input: String,
    codes: BTreeMap<String, usize>,
}

impl Tally {
    fn codes_of(&mut self, body: &Value) {
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        if errors.is_empty() {
            *self.codes.entry("ok".into()).or_default() += 1;
        }
        for e in errors {
            let code = e["extensions"]["code"]
                .as_str()
                .unwrap_or("none")
                .to_owned();
            *self.codes.entry(code).or_default() += 1;
        }
    }
}

/// Checks one GraphQL error list (HTTP body or WebSocket payload).
fn check_errors(errors: &Value, context: &str) -> Result<(), String> {
    for e in errors.as_array().into_iter().flatten() {
        match e["extensions"]["code"].as_str() {
            None => return Err(format!("an error without extensions.code: {e} ({context})")),
            Some("INTERNAL_SERVER_ERROR") => {
                return Err(format!(
                    "INTERNAL_SERVER_ERROR for a client's input: {e} ({context})"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The property for one HTTP reply.
fn check_reply(reply: &Reply) -> Result<(), String> {
    if reply.status.is_server_error() {
        return Err(format!("HTTP {}: {}", reply.status, reply.body));
    }
    if !reply.status.is_success() && !reply.body.is_object() {
        return Err(format!(
            "HTTP {} without a JSON error body: {}",
            reply.status, reply.body
        ));
    }
    check_errors(&reply.body["errors"], "HTTP")?;
    if reply.body.to_string().contains(SECRET) {
        return Err(format!("another owner's data in a reply: {}", reply.body));
    }
    Ok(())
}

/// The server still serves a plain request from the default owner.
async fn still_answers(app: &TestApp) -> Result<(), String> {
    let reply = tokio::time::timeout(REQUEST_TIMEOUT, app.post("{ viewer { owner } }", json!({})))
        .await
        .map_err(|_| "a normal request afterwards hung".to_owned())?;
    if reply.body["data"]["viewer"]["owner"] != "alice" {
        return Err(format!(
            "a normal request afterwards failed: {}",
            reply.body
        ));
    }
    Ok(())
}

/// Runs `case` on generated choice sequences until the time or case budget is spent,
/// in batches with fresh seeds; a failure is shrunk and reported with its input.
fn fuzz(name: &str, case: impl Fn(&[u32], &Mutex<Tally>) -> Result<(), String>) {
    count_panics();
    let budget = Duration::from_secs(env_number("MAKIMA_FUZZ_SECONDS", 10));
    let max_cases = env_number("MAKIMA_FUZZ_CASES", 1_000_000) as usize;
    let mut seed = [0u8; 32];
    match std::env::var("MAKIMA_FUZZ_SEED") {
        Ok(hex_seed) => seed.copy_from_slice(&hex::decode(hex_seed).expect("64 hex digits")),
        Err(_) => rand::fill(&mut seed),
    }
    eprintln!("fuzz {name}: seed {}", hex::encode(seed));
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let mut batch = 0u64;
    while started.elapsed() < budget && tally.lock().unwrap().cases < max_cases {
        let config = Config {
            cases: 32,
            max_shrink_time: 120_000,
            max_shrink_iters: 4_000,
            failure_persistence: None,
            ..Config::default()
        };
        let mut batch_seed = seed;
        batch += 1;
        for (b, x) in batch_seed[24..].iter_mut().zip(batch.to_le_bytes()) {
            *b ^= x;
        }
        let mut runner = TestRunner::new_with_rng(
            config,
            TestRng::from_seed(RngAlgorithm::ChaCha, &batch_seed),
        );
        let result = runner.run(&vec(any::<u32>(), 0..300), |seq| {
            let before = PANICS.load(Ordering::SeqCst);
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&seq, &tally)));
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            t.cases += 1;
            let panicked = match &outcome {
                Err(payload) => Some(
                    payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default(),
                ),
                Ok(_) if PANICS.load(Ordering::SeqCst) != before => {
                    Some("in a spawned task".into())
                }
                Ok(_) => None,
            };
            if let Some(message) = panicked {
                return Err(TestCaseError::fail(format!(
                    "a panic while serving ({message})\n  input: {}",
                    t.input
                )));
            }
            outcome.unwrap_or(Ok(())).map_err(TestCaseError::fail)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, _)) => panic!("fuzz {name} found: {reason}"),
            Err(TestError::Abort(reason)) => panic!("fuzz {name} aborted: {reason}"),
        }
    }
    let t = tally.into_inner().unwrap();
    eprintln!(
        "fuzz {name}: {} cases in {:.1} s; codes {:?}",
        t.cases,
        started.elapsed().as_secs_f64(),
        t.codes,
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A request as a client could send it, shown in a failure report.
#[derive(Debug)]
struct HttpCase {
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// Wraps an operation in a request: mostly a normal POST, sometimes a GET, another
/// content type, a batch, a broken body, a duplicated parameter or a bad key.
fn envelope(
    c: &mut Choices,
    key: &str,
    query: &str,
    variables: &str,
    name: Option<&str>,
) -> HttpCase {
    let accept = c
        .one(&[
            "application/graphql-response+json",
            "application/json",
            "*/*",
            "",
            "text/html",
        ])
        .to_string();
    let mut headers = vec![("accept", accept)];
    let auth = match c.pick(30) {
        1 => None,
        2 => Some(format!("Bearer {key}x")),
        3 => Some(string(c)),
        _ => Some(format!("Bearer {key}")),
    };
    if let Some(a) = auth.filter(|a| a.bytes().all(|b| (0x20..0x7f).contains(&b))) {
        headers.push(("authorization", a));
    }
    let name_json = name.map_or("null".to_owned(), quote_json);
    let post = |body: String, content_type: &str| {
        let mut headers = headers.clone();
        headers.push(("content-type", content_type.to_owned()));
        HttpCase {
            method: Method::POST,
            uri: "/graphql".into(),
            headers,
            body,
        }
    };
    let normal = format!(
        r#"{{"query":{},"variables":{variables},"operationName":{name_json}}}"#,
        quote_json(query)
    );
    match c.pick(24) {
        1..=3 => {
            let mut uri = format!(
                "/graphql?query={}&variables={}",
                url_encode(query),
                url_encode(variables)
            );
            if let Some(n) = name {
                uri.push_str(&format!("&operationName={}", url_encode(n)));
            }
            if c.chance(20) {
                uri.push_str(&format!("&query={}", url_encode(query)));
            }
            if c.chance(10) {
                uri.push_str("&variables=%ZZ");
            }
            HttpCase {
                method: Method::GET,
                uri,
                headers,
                body: String::new(),
            }
        }
        4 => {
            let content_type = c.one(&[
                "text/plain",
                "application/graphql",
                "multipart/form-data",
                "application/json; charset=utf-16",
            ]);
            post(normal, content_type)
        }
        5 => post(format!("[{normal}]"), "application/json"),
        6 => post(json(c, 0), "application/json"),
        7 => post(string(c), "application/json"),
        8 => post(format!(r#"{{"query":{}}}"#, json(c, 0)), "application/json"),
        _ => post(normal, "application/json"),
    }
}

async fn send(app: &TestApp, case: &HttpCase) -> Result<Reply, String> {
    let mut req = Request::builder()
        .method(case.method.clone())
        .uri(&case.uri);
    for (k, v) in &case.headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Body::from(case.body.clone()))
        .map_err(|e| format!("unsendable request: {e}"))?;
    tokio::time::timeout(REQUEST_TIMEOUT, app.request(req))
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))
}

/// Runs one HTTP case and checks the property.
fn http_case(
    rt: &tokio::runtime::Runtime,
    w: &World,
    tally: &Mutex<Tally>,
    case: HttpCase,
) -> Result<(), String> {
    // The http crate cannot even build a URI this long, and hyper answers 414 for one
    // before makima sees it (makima's own bound on GET query strings is 32 KiB).
    if case.uri.len() > u16::MAX as usize - 1 {
        return Ok(());
    }
    tally.lock().unwrap().input = format!("{case:?}");
    rt.block_on(async {
        let reply = send(&w.app, &case).await?;
        tally.lock().unwrap().codes_of(&reply.body);
        check_reply(&reply).map_err(|e| format!("{e}\n  request: {case:?}"))?;
        still_answers(&w.app)
            .await
            .map_err(|e| format!("{e}\n  after: {case:?}"))
    })
}

#[test]
fn documents_built_from_the_schema() {
    let rt = runtime();
    let w = rt.block_on(world());
    fuzz("documents", |seq, tally| {
        let mut c = Choices::new(seq);
        let op = DocBuilder::new(&w.schema, &w.pool).operation(&mut c);
        let case = envelope(
            &mut c,
            &w.app.key,
            &op.query,
            &op.variables,
            op.operation_name.as_deref(),
        );
        http_case(&rt, &w, tally, case)
    });
}

#[test]
fn readme_examples_with_fuzzed_variables() {
    let rt = runtime();
    let w = rt.block_on(world());
    let corpus = readme_operations();
    fuzz("readme variables", |seq, tally| {
        let mut c = Choices::new(seq);
        let (query, name) = c.one(&corpus).clone();
        let query = if c.chance(10) {
            mutate_syntax(&mut c, &query)
        } else {
            query
        };
        let query = if c.chance(30) {
            swap_numbers(&mut c, &query)
        } else {
            query
        };
        let mut vars = vec![];
        for v in declared_variables(&query) {
            let value = match c.pick(5) {
                0 | 1 => quote_json(&id(&mut c, &w.pool)),
                2 => quote_json(&cursor(&mut c, &w.pool)),
                _ => json(&mut c, 0),
            };
            vars.push(format!("{}:{value}", quote_json(&v)));
        }
        let variables = match c.pick(10) {
            0 => json(&mut c, 0),
            _ => format!("{{{}}}", vars.join(",")),
        };
        let case = envelope(&mut c, &w.app.key, &query, &variables, name.as_deref());
        http_case(&rt, &w, tally, case)
    });
}

/// Replaces every run of digits in an example (page sizes, counts, versions in
/// strings) with a fuzzed integer.
fn swap_numbers(c: &mut Choices, query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut in_number = false;
    for ch in query.chars() {
        let digit = ch.is_ascii_digit();
        if digit && !in_number {
            out.push_str(&common::fuzz::int(c));
        } else if !digit {
            out.push(ch);
        }
        in_number = digit;
    }
    out
}

/// Every connection, paged by a fuzzed cursor, and every single fetch by a fuzzed ID.
const CURSOR_QUERIES: [&str; 11] = [
    "query($a: String, $b: String) { timeline(first: 5, after: $a, before: $b) { nodes { id } pageInfo { hasNextPage hasPreviousPage } } }",
    "query($a: String, $b: String) { contracts(last: 5, after: $a, before: $b) { nodes { id } } }",
    "query($a: String, $b: String) { tasks(first: 5, after: $a, before: $b) { nodes { id } } }",
    "query($id: ID!, $a: String, $b: String) { task(id: $id) { events(first: 5, after: $a, before: $b) { nodes { sequence } } } }",
    "query($id: ID!, $a: String, $b: String) { task(id: $id) { conversation(last: 5, after: $a, before: $b) { nodes { index } } } }",
    "query($id: ID!, $a: String, $b: String) { task(id: $id) { checkpoints(first: 5, after: $a, before: $b) { nodes { number } } forks(first: 5, after: $a) { nodes { id } } } }",
    "query($id: ID!, $a: String, $b: String) { contract(id: $id) { conversation(first: 5, after: $a, before: $b) { nodes { index } } history(last: 5, after: $a, before: $b) { nodes { id } } checkpoints(first: 5, after: $a, before: $b) { nodes { id } } tasks(first: 5, after: $a) { nodes { id } } } }",
    "query($id: ID!) { checkpoint(id: $id) { id task { name } } contract(id: $id) { name } task(id: $id) { name } }",
    "query($id: ID!, $a: String) { timeline(first: 5, after: $a, filter: {contractId: $id, taskId: $id}) { nodes { id } } tasks(filter: {contractId: $id, parentTaskId: $id}) { nodes { id } } }",
    "mutation($id: ID!) { restoreConversation(input: {rewindEventId: $id}) { messageCount } }",
    "mutation($id: ID!, $a: String) { forkTask(input: {taskId: $id, checkpointId: $id, name: $a}) { task { id } } }",
];

#[test]
fn cursors_and_ids() {
    let rt = runtime();
    let w = rt.block_on(world());
    fuzz("cursors and ids", |seq, tally| {
        let mut c = Choices::new(seq);
        let query = *c.one(&CURSOR_QUERIES);
        let mut vars = json!({ "id": id(&mut c, &w.pool) });
        if c.chance(70) {
            vars["a"] = json!(cursor(&mut c, &w.pool));
        }
        if c.chance(30) {
            vars["b"] = json!(cursor(&mut c, &w.pool));
        }
        let variables = vars.to_string();
        let case = envelope(&mut c, &w.app.key, query, &variables, None);
        http_case(&rt, &w, tally, case)
    });
}

/// A WebSocket session as a client could run it, shown in a failure report.
#[derive(Debug)]
struct WsCase {
    protocols: Option<&'static str>,
    frames: Vec<WsFrame>,
}

async fn ws_session(
    server: &TestServer,
    case: &WsCase,
    tally: &Mutex<Tally>,
) -> Result<(), String> {
    let mut req = format!("ws://{}/graphql", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(p) = case.protocols {
        req.headers_mut()
            .insert("sec-websocket-protocol", p.parse().unwrap());
    }
    let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status().is_client_error() => {
            return Ok(());
        }
        Err(e) => return Err(format!("WebSocket handshake failed: {e}")),
    };
    for frame in &case.frames {
        let msg = match frame {
            WsFrame::Text(t) => Message::text(t.clone()),
            WsFrame::Binary(b) => Message::binary(b.clone()),
        };
        if ws.send(msg).await.is_err() {
            break;
        }
    }
    // A ping after the frames: its pong (or the close) means the server has read them.
    let _ = ws
        .send(Message::text(r#"{"type":"ping","payload":{"fuzz":"end"}}"#))
        .await;
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "the connection neither answered the final ping nor closed".to_owned())?;
        match next {
            None | Some(Err(_)) => return Ok(()),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                if code == 1011 {
                    return Err("closed with 1011 (internal error)".into());
                }
                return Ok(());
            }
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t)
                    .map_err(|_| format!("a message that is not JSON: {t}"))?;
                match v["type"].as_str() {
                    Some("pong") if v["payload"]["fuzz"] == "end" => return Ok(()),
                    Some("error") => {
                        tally
                            .lock()
                            .unwrap()
                            .codes_of(&json!({ "errors": v["payload"] }));
                        check_errors(&v["payload"], "WebSocket error")?;
                    }
                    Some("next" | "data") => {
                        tally.lock().unwrap().codes_of(&v["payload"]);
                        check_errors(&v["payload"]["errors"], "WebSocket result")?;
                    }
                    Some("connection_error") => {
                        check_errors(&json!([v["payload"]]), "connection_error")?;
                    }
                    _ => {}
                }
                if t.contains(SECRET) {
                    return Err(format!("another owner's data in a message: {t}"));
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

/// A fresh, well-behaved client still gets a subscription result.
async fn ws_still_answers(server: &TestServer, key: &str, task: &str) -> Result<(), String> {
    let check = async {
        let mut c = WsClient::open(server.addr, Proto::TransportWs, key).await;
        c.subscribe(
            "ok",
            "subscription($t: ID!) { taskEvents(taskId: $t, after: 0) { sequence } }",
            json!({ "t": task }),
        )
        .await;
        let data = c.next_data("ok").await;
        c.close().await;
        data
    };
    let data = tokio::time::timeout(REQUEST_TIMEOUT, check)
        .await
        .map_err(|_| "a normal subscription afterwards hung".to_owned())?;
    if data["taskEvents"]["sequence"] != 1 {
        return Err(format!("a normal subscription afterwards failed: {data}"));
    }
    Ok(())
}

#[test]
fn websocket_frames() {
    let rt = runtime();
    let w = rt.block_on(world());
    let server = rt.block_on(w.app.serve());
    let task = w.pool.own_ids[2].clone();
    fuzz("websocket", |seq, tally| {
        let mut c = Choices::new(seq);
        let protocols = *c.one(&[
            Some("graphql-transport-ws"),
            Some("graphql-ws"),
            None,
            Some("graphql-ws, graphql-transport-ws"),
            Some("mqtt"),
        ]);
        let mut frames = vec![];
        if !c.chance(15) {
            frames.push(WsFrame::Text(format!(
                r#"{{"type":"connection_init","payload":{{"Authorization":"Bearer {}"}}}}"#,
                w.app.key
            )));
        }
        for _ in 0..1 + c.pick(6) {
            frames.push(ws_frame(&mut c, &w.pool, &w.app.key, &w.schema));
        }
        if c.chance(2) {
            // More live operations than one connection may run.
            for i in 0..=MAX_WS_OPERATIONS {
                frames.push(WsFrame::Text(format!(
                    r#"{{"type":"subscribe","id":"many{i}","payload":{{"query":"subscription {{ historyEvents {{ cursor }} }}"}}}}"#
                )));
            }
        }
        let case = WsCase { protocols, frames };
        tally.lock().unwrap().input = shorten(&format!("{case:?}"));
        rt.block_on(async {
            ws_session(&server, &case, tally)
                .await
                .map_err(|e| format!("{e}\n  session: {}", shorten(&format!("{case:?}"))))?;
            ws_still_answers(&server, &w.app.key, &task).await?;
            still_answers(&w.app).await
        })
    });
}

/// Operations one WebSocket connection may run at once (src/server/ws).
const MAX_WS_OPERATIONS: usize = 100;

/// A report line without a megabyte of padding.
fn shorten(s: &str) -> String {
    if s.len() <= 4_000 {
        return s.to_owned();
    }
    let mut end = 4_000;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// Found by `documents_built_from_the_schema`:
/// a duplicated query parameter or a bad percent-escape in a GET answers 400 with the
/// plain text "Failed to deserialize query string: duplicate field `query`" instead of
/// JSON with `extensions.code: "BAD_REQUEST"` (issue 12, "Contract details").
#[tokio::test]
async fn a_get_query_string_that_does_not_deserialize_is_a_json_bad_request() {
    let app = TestApp::new().await;
    let auth = format!("Bearer {}", app.key);
    for uri in [
        "/graphql?query=%7Bviewer%7Bowner%7D%7D&query=%7Bviewer%7Bowner%7D%7D",
        "/graphql?query=%7Bviewer%7Bowner%7D%7D&variables=%ZZ&variables=%7B%7D",
    ] {
        let reply = app
            .raw(
                Method::GET,
                uri,
                &[("accept", "application/json"), ("authorization", &auth)],
                Body::empty(),
            )
            .await;
        assert_eq!(reply.status, 400, "{uri}");
        assert_eq!(reply.code(), Some("BAD_REQUEST"), "{uri}: {}", reply.body);
    }
}

/// Found by `websocket_frames`: the 101st
/// operation on one connection is refused with an `error` whose only error has no
/// `extensions.code` (issue 12, "Contract details").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_websocket_operations_is_an_error_with_a_code() {
    let app = TestApp::new().await;
    let server = app.serve().await;
    let mut c = WsClient::open(server.addr, Proto::TransportWs, &app.key).await;
    for i in 0..MAX_WS_OPERATIONS {
        c.subscribe(
            &format!("s{i}"),
            "subscription { historyEvents { cursor } }",
            json!({}),
        )
        .await;
    }
    c.subscribe(
        "one-too-many",
        "subscription { historyEvents { cursor } }",
        json!({}),
    )
    .await;
    let code = c.error_code("one-too-many").await;
    assert!(!code.is_empty(), "the refusal carries extensions.code");
}

const APPEND_EVENTS: &str = "mutation($t: ID!, $e: [TaskEventInput!]!, $k: String) { appendTaskEvents(input: {taskId: $t, events: $e, idempotencyKey: $k}) { events { id sequence type data createdAt } } }";
const APPEND_MESSAGES: &str = "mutation($t: ID!, $m: [MessageInput!]!, $k: String) { appendMessages(input: {taskId: $t, messages: $m, idempotencyKey: $k}) { messageCount messages { id index role content createdAt } } }";
const READ_EVENTS: &str = "query($t: ID!) { task(id: $t) { events(last: 100) { nodes { id sequence type data createdAt } } } }";

/// One keyed append with fuzzed JSON bodies, as an agent would send it.
fn keyed_append(c: &mut Choices, task: &str, key: &str) -> (bool, Value) {
    let body = |c: &mut Choices| serde_json::from_str::<Value>(&json(c, 0)).unwrap_or(Value::Null);
    let items: Vec<Value> = (0..1 + c.pick(4)).map(|_| body(c)).collect();
    let messages = c.chance(40);
    let list: Vec<Value> = items
        .into_iter()
        .map(|b| {
            if messages {
                json!({ "role": "TOOL", "content": b })
            } else {
                json!({ "type": "TOOL_RESULT", "data": b })
            }
        })
        .collect();
    let field = if messages { "m" } else { "e" };
    (messages, json!({ "t": task, field: list, "k": key }))
}

/// Ingestion keeps what it is given: a keyed append stores its fuzzed JSON exactly as
/// sent, the same key and input return the first call's payload unchanged (and store
/// nothing), and the same key with another input is CONFLICT.
#[test]
fn ingestion_round_trips_and_replays() {
    let rt = runtime();
    let w = rt.block_on(world());
    let task = w.pool.own_ids[2].clone();
    let keys = AtomicUsize::new(0);
    fuzz("ingestion", |seq, tally| {
        let mut c = Choices::new(seq);
        let key = format!(
            "fuzz-{}-{}",
            keys.fetch_add(1, Ordering::SeqCst),
            string(&mut c)
        );
        let (messages, vars) = keyed_append(&mut c, &task, &key);
        let text = vars.to_string();
        tally.lock().unwrap().input = text.clone();
        let query = if messages {
            APPEND_MESSAGES
        } else {
            APPEND_EVENTS
        };
        rt.block_on(async {
            let first = w.app.post(query, vars.clone()).await;
            tally.lock().unwrap().codes_of(&first.body);
            check_reply(&first).map_err(|e| format!("{e}\n  input: {text}"))?;
            if first.body.get("errors").is_some() {
                return Ok(());
            }
            let again = w.app.post(query, vars.clone()).await;
            if again.body != first.body {
                return Err(format!(
                    "a replay changed the payload:\n  first {}\n  again {}\n  input: {text}",
                    first.body, again.body
                ));
            }
            if !messages {
                let sent = &first.body["data"]["appendTaskEvents"]["events"];
                let stored = w.app.ok(READ_EVENTS, json!({ "t": task })).await;
                let nodes = stored["task"]["events"]["nodes"].as_array().cloned().unwrap_or_default();
                let n = sent.as_array().map_or(0, Vec::len);
                let tail = Value::Array(nodes[nodes.len().saturating_sub(n)..].to_vec());
                if &tail != sent {
                    return Err(format!(
                        "stored events differ from the payload (or a replay stored more):\n  payload {sent}\n  stored {tail}\n  input: {text}"
                    ));
                }
            }
            let mut other = vars.clone();
            let list = if messages { "m" } else { "e" };
            let extra = other[list][0].clone();
            other[list].as_array_mut().unwrap().push(extra);
            let conflict = w.app.post(query, other).await;
            if conflict.code() != Some("CONFLICT") {
                return Err(format!(
                    "the same key with another input: {}\n  input: {text}",
                    conflict.body
                ));
            }
            still_answers(&w.app).await
        })
    });
}
