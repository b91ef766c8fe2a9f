//! The timeline horizon on PostgreSQL: readers stop below makima's own oldest write
//! transaction in flight, not below every transaction of the cluster, and makima's
//! write transactions are bounded so a stuck one cannot hold the timeline for long.
//! (SQLite serialises writers and has no horizon: these tests skip there.)

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::horizon::{ForeignTxn, scalar, within};
use common::ws::{Proto, WsClient};
use makima::entities::event_data::ContractCreated;
use makima::store::history::{self, NewEvent};
use makima::store::{Store, StoreOptions, Timeouts, owners};
use sea_orm::TransactionTrait;
use serde_json::{Value, json};

const HISTORY: &str =
    "subscription($a: String) { historyEvents(after: $a) { cursor type task { id } } }";

fn skip_unless_postgres(app: &TestApp) -> bool {
    if !app.is_postgres() {
        eprintln!("note: skipped; set MAKIMA_TEST_DATABASE_URL to a PostgreSQL server to run it");
    }
    !app.is_postgres()
}

/// The owner's timeline after `after`: (cursor, type, task id) of each event.
async fn events_after(app: &TestApp, after: &str) -> Vec<(String, String, Value)> {
    let data = app
        .ok(
            "query($a: String) { timeline(first: 100, after: $a) { nodes { cursor type task { id } } } }",
            json!({ "a": after }),
        )
        .await;
    data["timeline"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["cursor"].as_str().unwrap().to_owned(),
                n["type"].as_str().unwrap().to_owned(),
                n["task"]["id"].clone(),
            )
        })
        .collect()
}

/// A history row written in `txn` for the owner "alice"; returns the transaction's id.
async fn write_event(txn: &sea_orm::DatabaseTransaction) -> i64 {
    let owner = owners::find_by_name(txn, "alice")
        .await
        .unwrap()
        .expect("alice");
    history::insert(
        txn,
        NewEvent {
            owner_id: owner.id,
            contract_id: None,
            task_id: None,
            phase: None,
            data: ContractCreated {
                name: "in flight".into(),
                phases: vec![],
            }
            .into(),
        },
    )
    .await
    .expect("insert a history row");
    scalar(txn, "SELECT txid_current() AS v").await
}

fn tx_of(cursor: &str) -> i64 {
    use makima::graphql::cursor::Cursor;
    makima::store::history::TimelineCursor::decode(cursor)
        .expect("a timeline cursor")
        .tx_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_applications_open_transaction_does_not_hold_back_the_timeline() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let (contract, _) = app.create_contract("c").await;
    let server = app.serve().await;
    let start = app.last_cursor().await;
    let foreign = ForeignTxn::open(&app).await;
    let mut ws = WsClient::open(server.addr, Proto::TransportWs, &app.key).await;
    ws.subscribe("h", HISTORY, json!({ "a": start })).await;
    server.subscribers_at_least(1).await;

    let began = Instant::now();
    let task = app.create_task("meanwhile", Some(&contract)).await;
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the mutation returns at once despite the foreign transaction (took {took:?})"
    );
    let returned = Instant::now();
    let seen = within(
        Duration::from_secs(1),
        "the event in the timeline",
        || async {
            let events = events_after(&app, &start).await;
            (!events.is_empty()).then_some(events)
        },
    )
    .await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].1.as_str(), &seen[0].2),
        ("TASK_CREATED", &json!(task))
    );
    assert!(
        tx_of(&seen[0].0) > foreign.xid,
        "written after the foreign one began"
    );
    let left = Duration::from_secs(1).saturating_sub(returned.elapsed());
    let live = tokio::time::timeout(left, ws.next_data("h"))
        .await
        .expect("delivered to the subscriber within a second");
    assert_eq!(live["historyEvents"]["cursor"], json!(seen[0].0));
    foreign.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_makima_write_transaction_is_cut_off_and_the_timeline_moves_on() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let (contract, _) = app.create_contract("c").await;
    let start = app.last_cursor().await;
    let short = app.app.store.clone().with_timeouts(Timeouts {
        write: Duration::from_secs(2),
        code_operation: Duration::from_secs(2),
    });
    let stuck = short.begin_write().await.unwrap();
    let stuck_xid = write_event(&stuck).await;

    let task = app.create_task("after", Some(&contract)).await;
    let seen = within(Duration::from_secs(10), "the later event", || async {
        let events = events_after(&app, &start).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(seen.len(), 1, "the stuck transaction's event never appears");
    assert_eq!(
        (seen[0].1.as_str(), &seen[0].2),
        ("TASK_CREATED", &json!(task))
    );
    assert!(
        tx_of(&seen[0].0) > stuck_xid,
        "the later event was held behind the stuck one until it was cut off"
    );
    assert!(
        stuck.commit().await.is_err(),
        "the server ended the stuck transaction"
    );
    // The pool recovers from the connection the server closed.
    app.create_task("later still", Some(&contract)).await;
    assert_eq!(events_after(&app, &start).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_makima_writer_holds_the_timeline_below_it() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let start = app.last_cursor().await;
    let held = app.app.store.begin_write().await.unwrap();
    let held_xid = write_event(&held).await;
    // Committed after the held transaction began: readable only once it ends, or a
    // reader could hand out this cursor and later see the held event appear before it.
    let task = app.create_task("later", None).await;
    assert_eq!(events_after(&app, &start).await, vec![]);
    held.commit().await.unwrap();
    let seen = within(Duration::from_secs(5), "both events", || async {
        let events = events_after(&app, &start).await;
        (events.len() == 2).then_some(events)
    })
    .await;
    assert_eq!(tx_of(&seen[0].0), held_xid);
    assert_eq!(seen[0].1, "CONTRACT_CREATED");
    assert_eq!(
        (seen[1].1.as_str(), &seen[1].2),
        ("TASK_CREATED", &json!(task))
    );
}

/// Four writers append concurrently (with a foreign transaction open, so readers take
/// the horizon from the lock table) while a reader pages the timeline after the last
/// cursor it saw: it reads exactly the final timeline, nothing ever appears behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_paging_during_concurrent_writes_never_misses_an_event() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let mut tasks = vec![];
    for i in 0..4 {
        tasks.push(app.create_task(&format!("w{i}"), None).await);
    }
    let start = app.last_cursor().await;
    let foreign = ForeignTxn::open(&app).await;
    const PER_WRITER: usize = 20;
    let total = tasks.len() * PER_WRITER;
    let writers = app.interleaved_appends(&tasks, PER_WRITER);
    let reader = async {
        let mut seen: Vec<String> = vec![];
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < total {
            assert!(Instant::now() < deadline, "read {} of {total}", seen.len());
            let after = seen.last().cloned().unwrap_or_else(|| start.clone());
            let page = events_after(&app, &after).await;
            if page.is_empty() {
                // Not synchronisation: the pause between two polls of the timeline.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen.extend(page.into_iter().map(|e| e.0));
        }
        seen
    };
    let (_, seen) = tokio::join!(writers, reader);
    let timeline = app.timeline_after(&app.key, &start).await;
    assert_eq!(timeline.len(), total);
    assert_eq!(seen, timeline, "the paged sequence is the timeline");
    foreign.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_transactions_carry_their_timeouts() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let store = app.app.store.clone().with_timeouts(Timeouts {
        write: Duration::from_millis(1500),
        code_operation: Duration::from_secs(90),
    });
    const SETTINGS: &str = "SELECT (SELECT setting FROM pg_settings WHERE name = 'statement_timeout')::bigint * 1000000 \
        + (SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout')::bigint AS v";
    let write = store.begin_write().await.unwrap();
    assert_eq!(scalar(&write, SETTINGS).await, 1500 * 1000000 + 1500);
    write.rollback().await.unwrap();
    let code = store.begin_code_operation().await.unwrap();
    assert_eq!(scalar(&code, SETTINGS).await, 90_000 * 1000000 + 90_000);
    code.rollback().await.unwrap();
    // Set for the transaction only: a plain session keeps the server's defaults.
    let plain = store.db().begin().await.unwrap();
    assert_eq!(scalar(&plain, SETTINGS).await, 0);
    plain.rollback().await.unwrap();
}

/// A transaction on makima's database that is not a makima writer (an operator's
/// session, say) holds a transaction id: the timeline does not wait for it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unannounced_transaction_in_makimas_database_does_not_hold_back_the_timeline() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let start = app.last_cursor().await;
    let other = app.app.store.db().begin().await.unwrap();
    let other_xid = scalar(&other, "SELECT txid_current() AS v").await;
    let began = Instant::now();
    let task = app.create_task("meanwhile", None).await;
    assert!(began.elapsed() < Duration::from_secs(1), "returns at once");
    let seen = events_after(&app, &start).await;
    assert_eq!(seen.len(), 1, "readable as soon as the mutation returned");
    assert_eq!(seen[0].2, json!(task));
    assert!(tx_of(&seen[0].0) > other_xid);
    other.rollback().await.unwrap();
}

/// A makima writer caught between getting its transaction id and announcing it by id
/// (simulated: a transaction holding only the pid announcement of `store::horizon`)
/// still holds the timeline below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_announced_only_by_pid_holds_the_timeline_below_it() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let start = app.last_cursor().await;
    let held = app.app.store.db().begin().await.unwrap();
    scalar(
        &held,
        "SELECT 0::bigint AS v FROM (SELECT pg_advisory_xact_lock_shared(1835756897, pg_backend_pid())) AS l",
    )
    .await;
    let held_xid = write_event(&held).await;
    let task = app.create_task("later", None).await;
    assert_eq!(events_after(&app, &start).await, vec![]);
    held.commit().await.unwrap();
    let seen = within(Duration::from_secs(5), "both events", || async {
        let events = events_after(&app, &start).await;
        (events.len() == 2).then_some(events)
    })
    .await;
    assert_eq!(tx_of(&seen[0].0), held_xid);
    assert_eq!(seen[1].2, json!(task));
}

/// A transaction in flight in a reader's snapshot that ends before the reader reads the
/// lock table holds that reader's horizon at its id (the conservative side of
/// `store::horizon`). That must not hide an event whose mutation has already returned:
/// CI once read an empty timeline right after six mutations this way. The race is too
/// narrow to provoke, so the reader is handed the snapshot it would have taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_ending_during_a_read_does_not_hide_events_already_shown() {
    let app = TestApp::new().await;
    if skip_unless_postgres(&app) {
        return;
    }
    let ended = app.app.store.db().begin().await.unwrap();
    let ended_xid = scalar(&ended, "SELECT txid_current() AS v").await;
    ended.commit().await.unwrap();
    let start = app.last_cursor().await;
    app.create_task("shown", None).await;
    let shown = events_after(&app, &start).await;
    assert_eq!(shown.len(), 1);
    let event_tx = tx_of(&shown[0].0);
    assert!(event_tx > ended_xid);
    let xmax = scalar(
        app.app.store.db(),
        "SELECT (pg_snapshot_xmax(pg_current_snapshot())::text)::bigint AS v",
    )
    .await;
    let snapshot = format!("{ended_xid}:{xmax}:{ended_xid}");

    // Without what this store has already seen, that snapshot hides the event.
    let mut options = StoreOptions::new(app.url.clone());
    options.max_connections = 1;
    let fresh = Store::connect(&options).await.unwrap();
    assert_eq!(
        fresh.horizon_of_snapshot(&snapshot).await.unwrap(),
        ended_xid
    );
    // The store that served the mutation reads no lower than what it already showed.
    assert!(app.app.store.horizon_of_snapshot(&snapshot).await.unwrap() > event_tx);
    assert!(app.app.store.horizon_floor() > event_tx);
}
