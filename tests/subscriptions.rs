//! Subscriptions over a real WebSocket, in both subprotocols: auth, filters, owner
//! isolation, replay from a cursor, reconnecting without gap or duplicate under
//! concurrent writers, task event streams, slow consumers and graceful shutdown.

mod common;

use common::TestApp;
use common::ws::{Frame, Proto, TestServer, WsClient, start_cursor};
use makima::events::Events;
use makima::server::AppState;
use serde_json::{Value, json};

const HISTORY: &str = "subscription($f: TimelineFilter, $a: String) { historyEvents(filter: $f, after: $a) { id cursor type data contract { id } task { id } } }";
const TASK_EVENTS: &str =
    "subscription($t: ID!, $a: Int) { taskEvents(taskId: $t, after: $a) { sequence type data } }";

/// The next `n` history events of subscription `id`, as their cursors.
async fn cursors(c: &mut WsClient, id: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let data = c.next_data(id).await;
        out.push(data["historyEvents"]["cursor"].as_str().unwrap().to_owned());
    }
    out
}

/// The next `n` task event sequences of subscription `id`.
async fn sequences(c: &mut WsClient, id: &str, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let data = c.next_data(id).await;
        out.push(data["taskEvents"]["sequence"].as_i64().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_is_refused_with_4403() {
    let app = TestApp::new().await;
    let server = app.serve().await;
    for proto in Proto::BOTH {
        for payload in [
            Value::Null,
            json!({}),
            json!({ "Authorization": "Bearer mk_not_a_key" }),
            json!({ "apiKey": "" }),
            json!({ "x-api-key": app.key.to_uppercase() }),
        ] {
            let mut c = WsClient::connect(server.addr, "/graphql", proto).await;
            let answer = c.init(payload.clone()).await;
            match proto {
                Proto::TransportWs => {
                    assert!(
                        matches!(answer, Frame::Close(4403, _)),
                        "{payload}: {answer:?}"
                    );
                }
                Proto::Legacy => {
                    let Frame::Json(v) = answer else {
                        panic!("{payload}: expected connection_error, got {answer:?}");
                    };
                    assert_eq!(v["type"], "connection_error", "{v}");
                    assert_eq!(v["payload"]["extensions"]["code"], "UNAUTHENTICATED");
                    assert_eq!(c.closed().await.0, 4403, "{payload}");
                }
            }
        }
        // Every spelling of a valid key, on both paths.
        let bearer = format!("Bearer {}", app.key);
        for (path, payload) in [
            ("/graphql", json!({ "Authorization": bearer })),
            (
                "/graphql/ws",
                json!({ "authorization": bearer.to_lowercase().replace(&app.key.to_lowercase(), &app.key) }),
            ),
            ("/graphql", json!({ "apiKey": app.key })),
            ("/graphql/ws", json!({ "X-API-KEY": app.key })),
        ] {
            let mut c = WsClient::connect(server.addr, path, proto).await;
            match c.init(payload.clone()).await {
                Frame::Json(v) if v["type"] == "connection_ack" => {}
                other => panic!("{path} {payload}: {other:?}"),
            }
            c.subscribe("1", "{ viewer { owner } }", json!({})).await;
            assert_eq!(c.next_data("1").await["viewer"]["owner"], "alice");
        }
        // An operation before connection_init is unauthorised.
        let mut c = WsClient::connect(server.addr, "/graphql", proto).await;
        c.subscribe("1", "{ viewer { owner } }", json!({})).await;
        assert_eq!(c.closed().await.0, 4401);
    }
    // graphql-transport-ws: a second connection_init and a duplicate id close the
    // connection with the protocol's codes.
    let mut c = WsClient::open(server.addr, Proto::TransportWs, &app.key).await;
    c.send(json!({ "type": "connection_init" })).await;
    assert_eq!(c.closed().await.0, 4429);
    let mut c = WsClient::open(server.addr, Proto::TransportWs, &app.key).await;
    c.subscribe("a", HISTORY, json!({})).await;
    c.subscribe("a", HISTORY, json!({})).await;
    assert_eq!(c.closed().await.0, 4409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_carry_only_the_owners_matching_events() {
    let app = TestApp::new().await;
    let server = app.serve().await;
    let bob = app.key_for("bob").await;
    for proto in Proto::BOTH {
        let (c1, t1) = app.create_contract("one").await;
        let (_c2, t2) = app.create_contract("two").await;
        let alice_start = app.last_cursor().await;
        let bob_start = app.last_cursor_as(&bob).await;

        let mut all = WsClient::open(server.addr, proto, &app.key).await;
        all.subscribe("all", HISTORY, json!({ "a": alice_start }))
            .await;
        let mut only_c1 = WsClient::open(server.addr, proto, &app.key).await;
        let filter = json!({ "contractId": c1, "types": ["MESSAGES_APPENDED"] });
        only_c1
            .subscribe("c1", HISTORY, json!({ "f": filter, "a": alice_start }))
            .await;
        let mut bobs = WsClient::open(server.addr, proto, &bob).await;
        bobs.subscribe("bob", HISTORY, json!({ "a": bob_start }))
            .await;

        app.append_messages(&t1, 1).await;
        app.append_messages(&t2, 1).await;
        let bob_task = {
            let data = app
                .ok_as(
                    &bob,
                    "mutation { createTask(input: {name: \"b\"}) { task { id } } }",
                    json!({}),
                )
                .await;
            data["createTask"]["task"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        app.append_events(&t1, 2).await;
        app.append_messages(&t1, 2).await;
        app.ok_as(
            &bob,
            "mutation($t: ID!) { appendTaskEvents(input: {taskId: $t, events: [{type: OUTPUT, data: 1}]}) { events { sequence } } }",
            json!({ "t": bob_task }),
        )
        .await;
        // The last event, for alice's filtered stream, says that nothing else came.
        app.append_messages(&t1, 1).await;

        let expected = app.timeline_after(&app.key, &alice_start).await;
        assert_eq!(expected.len(), 5);
        assert_eq!(cursors(&mut all, "all", 5).await, expected);

        let mut got = vec![];
        for _ in 0..3 {
            let e = only_c1.next_data("c1").await["historyEvents"].clone();
            assert_eq!(e["type"], "MESSAGES_APPENDED");
            assert_eq!(e["contract"]["id"], json!(c1));
            got.push(e["cursor"].as_str().unwrap().to_owned());
        }
        let c1_messages: Vec<String> = [0, 3, 4].iter().map(|&i| expected[i].clone()).collect();
        assert_eq!(got, c1_messages);

        let bob_expected = app.timeline_after(&bob, &bob_start).await;
        assert_eq!(bob_expected.len(), 2);
        assert_eq!(cursors(&mut bobs, "bob", 2).await, bob_expected);
        for c in [all, only_c1, bobs] {
            c.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_from_a_cursor_then_goes_live() {
    let app = TestApp::new().await;
    let server = app.serve().await;
    for proto in Proto::BOTH {
        let start = app.last_cursor().await;
        let task = app.create_task("replayed", None).await;
        for _ in 0..4 {
            app.append_messages(&task, 1).await;
        }
        let written = app.timeline_after(&app.key, &start).await;
        assert_eq!(written.len(), 5);

        let mut c = WsClient::open(server.addr, proto, &app.key).await;
        c.subscribe("r", HISTORY, json!({ "a": written[1] })).await;
        assert_eq!(cursors(&mut c, "r", 3).await, written[2..]);
        app.append_events(&task, 3).await;
        app.set_status(&task, "RUNNING").await;
        let all = app.timeline_after(&app.key, &start).await;
        assert_eq!(cursors(&mut c, "r", 2).await, all[5..]);

        // Without `after`: what is committed from now on.
        let mut live = WsClient::open(server.addr, proto, &app.key).await;
        let before = *server.state.events.subscribers().borrow();
        live.subscribe("l", HISTORY, json!({})).await;
        server.subscribers_at_least(before + 1).await;
        app.append_messages(&task, 1).await;
        let newest = app.last_cursor().await;
        assert_eq!(cursors(&mut live, "l", 1).await, vec![newest.clone()]);
        assert_eq!(cursors(&mut c, "r", 1).await, vec![newest]);

        // A malformed cursor is refused.
        c.subscribe("bad", HISTORY, json!({ "a": "nope" })).await;
        assert_eq!(c.error_code("bad").await, "BAD_USER_INPUT");
        // Stopping a subscription stops it; the connection goes on.
        c.stop("r").await;
        if proto == Proto::Legacy {
            match c.recv().await {
                Frame::Json(v) if v["type"] == "complete" && v["id"] == "r" => {}
                other => panic!("expected complete, got {other:?}"),
            }
        }
        c.subscribe("v", "{ viewer { owner } }", json!({})).await;
        assert_eq!(c.next_data("v").await["viewer"]["owner"], "alice");
        match c.recv().await {
            Frame::Json(v) if v["type"] == "complete" && v["id"] == "v" => {}
            other => panic!("expected complete, got {other:?}"),
        }
        c.close().await;
        live.close().await;
    }
}

/// Four writers append concurrently while a reader drops its connection every few
/// events and reconnects with the last cursor it saw: it receives exactly the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_the_last_cursor_misses_nothing_and_repeats_nothing() {
    let app = TestApp::new().await;
    let server = app.serve().await;
    for proto in Proto::BOTH {
        let mut tasks = vec![];
        for i in 0..4 {
            tasks.push(app.create_task(&format!("w{i}"), None).await);
        }
        let start = app.last_cursor().await;
        const PER_WRITER: usize = 25;
        let total = tasks.len() * PER_WRITER;
        let writers = app.interleaved_appends(&tasks, PER_WRITER);
        let reader = async {
            let mut seen: Vec<String> = vec![];
            let mut reconnects = 0;
            while seen.len() < total {
                let mut c = WsClient::open(server.addr, proto, &app.key).await;
                let after = seen.last().cloned().unwrap_or_else(|| start.clone());
                c.subscribe("s", HISTORY, json!({ "a": after })).await;
                let n = (total - seen.len()).min(17);
                seen.extend(cursors(&mut c, "s", n).await);
                reconnects += 1;
                if reconnects % 2 == 0 {
                    c.close().await;
                } // else: just drop the connection
            }
            seen
        };
        let (_, seen) = tokio::join!(writers, reader);
        let timeline = app.timeline_after(&app.key, &start).await;
        assert_eq!(timeline.len(), total);
        assert_eq!(
            seen, timeline,
            "{proto:?}: the received sequence is the timeline"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_events_replay_then_follow_in_sequence_order() {
    let app = TestApp::new().await;
    let server = app.serve().await;
    let bob = app.key_for("bob").await;
    for proto in Proto::BOTH {
        let task = app.create_task("streamed", None).await;
        app.append_events(&task, 3).await;
        let mut c = WsClient::open(server.addr, proto, &app.key).await;
        c.subscribe("t", TASK_EVENTS, json!({ "t": task, "a": 1 }))
            .await;
        assert_eq!(sequences(&mut c, "t", 2).await, vec![2, 3]);
        // Three writers append to the same task at once.
        futures_util::future::join_all((0..3).map(|_| async {
            for _ in 0..5 {
                app.append_events(&task, 4).await;
            }
        }))
        .await;
        assert_eq!(
            sequences(&mut c, "t", 60).await,
            (4..=63).collect::<Vec<_>>()
        );

        // Without `after`: from the next append on.
        let mut live = WsClient::open(server.addr, proto, &app.key).await;
        let before = *server.state.events.subscribers().borrow();
        live.subscribe("t", TASK_EVENTS, json!({ "t": task })).await;
        server.subscribers_at_least(before + 1).await;
        app.append_events(&task, 2).await;
        assert_eq!(sequences(&mut live, "t", 2).await, vec![64, 65]);
        assert_eq!(sequences(&mut c, "t", 2).await, vec![64, 65]);

        // Another owner's task is NOT_FOUND, a malformed id or a negative `after`
        // BAD_USER_INPUT.
        let mut b = WsClient::open(server.addr, proto, &bob).await;
        b.subscribe("x", TASK_EVENTS, json!({ "t": task })).await;
        assert_eq!(b.error_code("x").await, "NOT_FOUND");
        b.subscribe("y", TASK_EVENTS, json!({ "t": "not-an-id" }))
            .await;
        assert_eq!(b.error_code("y").await, "BAD_USER_INPUT");
        b.subscribe("z", TASK_EVENTS, json!({ "t": task, "a": -1 }))
            .await;
        assert_eq!(b.error_code("z").await, "BAD_USER_INPUT");
        for c in [c, live, b] {
            c.close().await;
        }
    }
}

/// A subscriber that stops reading while far more than the live buffer is written
/// falls behind, catches up from the database, and still gets every event once, in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_catches_up_from_the_database() {
    let app = TestApp::new().await;
    // A tiny live buffer, so that falling behind is certain.
    let events = Events::with_capacity(app.app.store.clone(), 4);
    let server = TestServer::start(AppState::with_events(app.app.clone(), events.clone())).await;
    for proto in Proto::BOTH {
        let task = app.create_task("chatty", None).await;
        let start = app.last_cursor().await;
        let mut c = WsClient::open(server.addr, proto, &app.key).await;
        let before = *events.subscribers().borrow();
        c.subscribe("h", HISTORY, json!({ "a": start })).await;
        c.subscribe("t", TASK_EVENTS, json!({ "t": task, "a": 0 }))
            .await;
        server.subscribers_at_least(before + 2).await;
        let lagged = events.lagged();
        // About 16 MB of task events, far beyond what the sockets buffer, while the
        // client reads nothing.
        let big = "x".repeat(40 * 1024);
        const BATCHES: usize = 40;
        const PER_BATCH: usize = 10;
        for _ in 0..BATCHES {
            let batch: Vec<Value> = (0..PER_BATCH)
                .map(|_| json!({ "type": "OUTPUT", "data": { "text": big } }))
                .collect();
            app.ok(
                "mutation($t: ID!, $e: [TaskEventInput!]!) { appendTaskEvents(input: {taskId: $t, events: $e}) { events { sequence } } }",
                json!({ "t": task, "e": batch }),
            )
            .await;
        }
        let timeline = app.timeline_after(&app.key, &start).await;
        assert_eq!(timeline.len(), BATCHES);
        let (mut history, mut seqs) = (vec![], vec![]);
        while history.len() < BATCHES || seqs.len() < BATCHES * PER_BATCH {
            match c.recv().await {
                Frame::Json(v) if v["id"] == "h" => history.push(
                    v["payload"]["data"]["historyEvents"]["cursor"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
                Frame::Json(v) if v["id"] == "t" => {
                    let e = &v["payload"]["data"]["taskEvents"];
                    assert_eq!(e["data"]["text"].as_str().map(str::len), Some(big.len()));
                    seqs.push(e["sequence"].as_i64().unwrap());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(history, timeline);
        assert_eq!(seqs, (1..=(BATCHES * PER_BATCH) as i64).collect::<Vec<_>>());
        assert!(
            events.lagged() > lagged,
            "{proto:?}: the subscriber fell behind the live buffer"
        );
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_subscriptions_with_1001() {
    let app = TestApp::new().await;
    let mut server = app.serve().await;
    app.create_task("one", None).await;
    let mut clients = vec![];
    for proto in Proto::BOTH {
        let mut c = WsClient::open(server.addr, proto, &app.key).await;
        c.subscribe("s", HISTORY, json!({ "a": start_cursor() }))
            .await;
        clients.push(c);
    }
    server.subscribers_at_least(2).await;
    // The replay arrives before the shutdown.
    for c in &mut clients {
        c.next_data("s").await;
    }
    assert_eq!(server.state.open_websockets(), 2);
    server.shutdown().await;
    for c in &mut clients {
        let (code, _) = c.closed().await;
        assert_eq!(code, 1001);
    }
    assert_eq!(server.state.open_websockets(), 0);
}
