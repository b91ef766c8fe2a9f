//! A hostile or careless client cannot crash makima, make it do unbounded work, hold
//! its connections, or store what it cannot read back (issue: hardening).

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::ws::{Proto, TestServer, WsClient};
use common::{TestApp, url_encode};
use makima::server::Limits;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `{viewer(x:[[[…levels…]]]){owner}}`: the document that overflowed the parser's stack.
fn deep_document(levels: usize) -> String {
    format!(
        "{{viewer(x:{}1{}){{owner}}}}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

#[tokio::test]
async fn deeply_nested_documents_are_refused_on_every_transport() {
    let t = TestApp::new().await;
    let deep = deep_document(5_000);

    // GET without a key: refused before anything parses it.
    let uri = format!("/graphql?query={}", url_encode(&deep));
    let reply = t.raw(Method::GET, &uri, &[], Body::empty()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), Some("UNAUTHENTICATED"));

    // GET and POST with a key: a parse failure, not a crash.
    let reply = t
        .get(&deep, None, "application/graphql-response+json")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), Some("GRAPHQL_PARSE_FAILED"), "{}", reply.body);
    let reply = t.post(&deep, json!({})).await;
    assert_eq!(reply.code(), Some("GRAPHQL_PARSE_FAILED"), "{}", reply.body);
    // Nested objects and parentheses count as well as lists.
    let objects = format!(
        "{{viewer(x:{}1{}){{owner}}}}",
        "{a:".repeat(5_000),
        "}".repeat(5_000)
    );
    let reply = t.post(&objects, json!({})).await;
    assert_eq!(reply.code(), Some("GRAPHQL_PARSE_FAILED"), "{}", reply.body);

    // WebSocket: the operation fails, the connection and the server stay up.
    let server = t.serve().await;
    let mut ws = WsClient::open(server.addr, Proto::TransportWs, &t.key).await;
    ws.subscribe("deep", &deep, json!({})).await;
    assert_eq!(ws.error_code("deep").await, "GRAPHQL_PARSE_FAILED");

    // The server still answers.
    let data = t.ok("{ viewer { owner } }", json!({})).await;
    assert_eq!(data["viewer"]["owner"], "alice");
}

#[tokio::test]
async fn get_requests_are_bounded_and_unambiguous() {
    let t = TestApp::new().await;
    let auth = format!("Bearer {}", t.key);
    let headers = [("authorization", auth.as_str())];

    let long = format!("#{}\n{{ viewer {{ owner }} }}", "x".repeat(33 * 1024));
    let uri = format!("/graphql?query={}", url_encode(&long));
    let reply = t.raw(Method::GET, &uri, &headers, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::URI_TOO_LONG);
    assert_eq!(reply.code(), Some("BAD_REQUEST"));

    let q = url_encode("{ viewer { owner } }");
    let uri = format!("/graphql?query={q}&query={q}");
    let reply = t.raw(Method::GET, &uri, &headers, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), Some("BAD_REQUEST"), "{}", reply.body);

    for extensions in ["\"x\"", "1", "true", "[]"] {
        let uri = format!("/graphql?query={q}&extensions={}", url_encode(extensions));
        let reply = t.raw(Method::GET, &uri, &headers, Body::empty()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{extensions}");
        assert_eq!(reply.code(), Some("BAD_REQUEST"));
        let body = format!(r#"{{"query":"{{ viewer {{ owner }} }}","extensions":{extensions}}}"#);
        let reply = t
            .raw(
                Method::POST,
                "/graphql",
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{extensions}");
        assert_eq!(reply.code(), Some("BAD_REQUEST"));
    }
    let uri = format!("/graphql?query={q}&extensions={}", url_encode("{}"));
    let reply = t.raw(Method::GET, &uri, &headers, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn query_cost_counts_page_sizes() {
    let t = TestApp::new().await;
    let (contract, _) = t.create_contract("c").await;
    // 100 × 100 × 100 tasks: a handful of fields, a million nodes.
    let explosive = "query($id: ID!) { contract(id: $id) { tasks(first: 100) { nodes { contract { \
        tasks(first: 100) { nodes { contract { tasks(first: 100) { nodes { id } } } } } } } } } }";
    let reply = t
        .fails(
            "GRAPHQL_VALIDATION_FAILED",
            explosive,
            json!({ "id": contract }),
        )
        .await;
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("costs"), "{message}");
    assert!(message.contains("50000"), "{message}");

    // The same shape with small pages runs.
    let small = "query($id: ID!) { contract(id: $id) { tasks(first: 5) { nodes { contract { \
        tasks(first: 5) { nodes { contract { tasks(first: 5) { nodes { id } } } } } } } } } }";
    let data = t.ok(small, json!({ "id": contract })).await;
    assert!(data["contract"]["tasks"]["nodes"].is_array());

    // The default page is 20: an unsized connection costs as first: 20, so three
    // levels of default pages (8,000 nodes) run and four (160,000) do not.
    let level = |inner: &str| format!("tasks {{ nodes {{ contract {{ {inner} }} }} }}");
    let three = level(&level("tasks { nodes { id } }"));
    let query = format!("query($id: ID!) {{ contract(id: $id) {{ {three} }} }}");
    t.ok(&query, json!({ "id": contract })).await;
    let query = format!(
        "query($id: ID!) {{ contract(id: $id) {{ {} }} }}",
        level(&three)
    );
    t.fails(
        "GRAPHQL_VALIDATION_FAILED",
        &query,
        json!({ "id": contract }),
    )
    .await;
    // Sizes given as variables count too.
    let by_variable = "query($id: ID!, $n: Int) { contract(id: $id) { tasks(first: $n) { nodes { \
        contract { tasks(first: $n) { nodes { id name status plan branch baseBranch createdAt \
        updatedAt } } } } } } }";
    t.fails(
        "GRAPHQL_VALIDATION_FAILED",
        by_variable,
        json!({ "id": contract, "n": 100 }),
    )
    .await;
    t.ok(by_variable, json!({ "id": contract, "n": 10 })).await;
}

#[tokio::test]
async fn nul_characters_are_refused_on_both_databases() {
    let t = TestApp::new().await;
    t.fails(
        "BAD_USER_INPUT",
        r#"mutation { createContract(input: {name: "a\u0000b"}) { contract { id } } }"#,
        json!({}),
    )
    .await;
    t.fails(
        "BAD_USER_INPUT",
        "mutation($n: String!) { createContract(input: {name: $n}) { contract { id } } }",
        json!({ "n": "a\u{0}b" }),
    )
    .await;
    let task = t.create_task("t", None).await;
    t.fails(
        "BAD_USER_INPUT",
        "mutation($t: ID!, $c: JSON!) { appendMessages(input: {taskId: $t, messages: \
         [{role: USER, content: $c}]}) { messageCount } }",
        json!({ "t": task, "c": [{ "type": "text", "text": "x\u{0}y" }] }),
    )
    .await;
    // Reads with a NUL are refused the same way, never an internal error.
    t.fails(
        "BAD_USER_INPUT",
        r#"{ contracts(filter: {phase: "\u0000"}) { nodes { id } } }"#,
        json!({}),
    )
    .await;
    // Nothing was stored.
    let data = t
        .ok(
            "query($t: ID!) { contracts { totalCount } task(id: $t) { conversation { totalCount } } }",
            json!({ "t": task }),
        )
        .await;
    assert_eq!(data["contracts"]["totalCount"], 0);
    assert_eq!(data["task"]["conversation"]["totalCount"], 0);
}

fn nested_json(levels: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 1..levels {
        v = json!([v]);
    }
    v
}

#[tokio::test]
async fn json_that_could_not_be_read_back_is_refused() {
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    let append = "mutation($t: ID!, $c: JSON!) { appendMessages(input: {taskId: $t, messages: \
         [{role: USER, content: $c}]}) { messageCount } }";
    t.fails(
        "BAD_USER_INPUT",
        append,
        json!({ "t": task, "c": nested_json(100) }),
    )
    .await;
    let events = "mutation($t: ID!, $d: JSON!) { appendTaskEvents(input: {taskId: $t, events: \
         [{type: OUTPUT, data: $d}]}) { events { sequence } } }";
    t.fails(
        "BAD_USER_INPUT",
        events,
        json!({ "t": task, "d": nested_json(100) }),
    )
    .await;
    // At the limit it is stored and reads back whole.
    t.ok(append, json!({ "t": task, "c": nested_json(64) }))
        .await;
    let data = t
        .ok(
            "query($t: ID!) { task(id: $t) { conversation { nodes { content } } } }",
            json!({ "t": task }),
        )
        .await;
    assert_eq!(
        data["task"]["conversation"]["nodes"][0]["content"],
        nested_json(64)
    );
}

#[tokio::test]
async fn client_integers_at_the_extremes_neither_wrap_nor_panic() {
    use makima::graphql::cursor::Cursor;
    let t = TestApp::new().await;
    let task = t.create_task("t", None).await;
    t.say(&task, &["one", "two", "three"]).await;
    let after_max = i32::MAX.encode();
    let data = t
        .ok(
            "query($t: ID!, $a: String) { task(id: $t) { conversation(first: 2, after: $a) { \
             nodes { index } pageInfo { hasNextPage } } } }",
            json!({ "t": task, "a": after_max }),
        )
        .await;
    assert_eq!(
        data["task"]["conversation"]["nodes"],
        json!([]),
        "a cursor past the end is an empty page, not the first page"
    );
    t.fails(
        "BAD_USER_INPUT",
        "mutation($t: ID!) { rewindConversation(input: {taskId: $t, toMessageIndex: 2147483647}) \
         { newMessageCount } }",
        json!({ "t": task }),
    )
    .await;
    t.fails(
        "BAD_USER_INPUT",
        "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 2147483647}) \
         { newMessageCount } }",
        json!({ "t": task }),
    )
    .await;
}

/// Reads from `stream` until the server closes it; how long that took.
async fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

fn short_limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let t = TestApp::new().await;
    let server = TestServer::start(t.state.clone().with_limits(short_limits())).await;
    let limit = Duration::from_secs(10);

    // Half the headers, then nothing.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-")
        .await
        .unwrap();
    time_until_closed(&mut half, limit).await;

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    time_until_closed(&mut silent, limit).await;

    // 8 of 100 body bytes: 408, then the connection closes.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"query\"",
        t.key
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(limit, trickle.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("BAD_REQUEST"), "{answer}");

    // A keep-alive connection that goes idle after a request.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    time_until_closed(&mut idle, limit).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let t = TestApp::new().await;
    let limits = Limits {
        max_connections: 1,
        header_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let server = TestServer::start(t.state.clone().with_limits(limits)).await;
    let holder = TcpStream::connect(server.addr).await.unwrap();
    // Let the server accept the first connection before the second arrives.
    let mut probe = TcpStream::connect(server.addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(300), probe.read(&mut buf)).await;
    assert!(
        waited.is_err(),
        "a second connection was served past the cap"
    );
    drop(holder);
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), probe.read_to_end(&mut answer))
        .await
        .expect("served once the slot is free")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn websocket_limits_carry_codes() {
    let t = TestApp::new().await;
    let server = t.serve().await;
    for proto in Proto::BOTH {
        let mut ws = WsClient::open(server.addr, proto, &t.key).await;
        let big = "x".repeat(makima::server::MAX_BODY + 1);
        ws.subscribe("big", "{ viewer { owner } }", json!({ "pad": big }))
            .await;
        let (code, _) = ws.closed().await;
        assert_eq!(code, 1009, "{proto:?}");
    }

    // One operation past the per-connection limit gets an error with a code.
    let mut ws = WsClient::open(server.addr, Proto::TransportWs, &t.key).await;
    let sub = "subscription { historyEvents { id } }";
    for i in 0..100 {
        ws.subscribe(&format!("s{i}"), sub, json!({})).await;
    }
    server.subscribers_at_least(100).await;
    ws.subscribe("one-too-many", sub, json!({})).await;
    assert_eq!(ws.error_code("one-too-many").await, "BAD_REQUEST");
}

#[tokio::test]
async fn the_readme_overview_query_is_within_the_cost_limit() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("query Overview")
        .expect("README has the Overview query");
    let end = start + readme[start..].find("\n}\n").expect("its end") + 2;
    let t = TestApp::new().await;
    t.create_contract("c").await;
    t.ok(&readme[start..end], json!({})).await;
}
