//! Reads deep in the data: a page of 50 of a contract's timeline and a page of 50 of
//! a task's event stream, at three depths of the longest stream (hundreds of thousands
//! of events): near the start (after event 10), in the middle, and near the end (60
//! events before it). Keyset pagination should make all three cost the same. For
//! each: latency from one client, then throughput and latency with many clients.
//!
//! The cursors are made with makima's own cursor encoding from positions read in the
//! database (paging there through the API would take thousands of requests); every
//! page is checked to be full, with pages on both sides, before it is measured.

use std::sync::Arc;
use std::time::Duration;

use makima::entities::ids::{ContractId, TaskId};
use makima::graphql::cursor::Cursor;
use makima::store::history::TimelineCursor;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};
use serde_json::json;

use crate::cpu::CpuSample;
use crate::db::BenchDb;
use crate::error::{Error, Result};
use crate::http::{Endpoint, Request, query_json};
use crate::load::{Budget, closed_loop};
use crate::report::{Latency, Report};
use crate::server::{Memory, RssSampler};

/// A page of the timeline: 50 edges × 8 fields, about 400 resolved fields.
const TIMELINE: &str = "query Timeline($contractId: ID!, $after: String) { \
    timeline(first: 50, after: $after, filter: {contractId: $contractId}) { \
    edges { cursor node { id type phase data createdAt } } \
    pageInfo { hasNextPage hasPreviousPage endCursor } } }";

/// A page of a task's output stream, the same size.
const EVENTS: &str = "query Events($taskId: ID!, $after: String) { task(id: $taskId) { \
    events(first: 50, after: $after) { \
    edges { cursor node { id sequence type data createdAt } } \
    pageInfo { hasNextPage hasPreviousPage endCursor } } } }";

/// Page size; the start and end positions.
const PAGE: usize = 50;
const NEAR_START: i64 = 10;
const FROM_END: i64 = 60;

#[derive(Clone, Debug)]
pub struct ReadConfig {
    pub clients: usize,
    pub secs: u64,
    pub latency_requests: u64,
    /// Measure only these scenarios (e.g. `timeline_end`); empty: all six.
    pub only: Vec<String>,
}

/// The task with the longest stream and its contract.
struct Deep {
    task: TaskId,
    contract: ContractId,
    task_events: i64,
    contract_events: i64,
}

/// One page request to measure.
struct Scenario {
    /// `timeline_start`, `task_events_middle`, …
    name: String,
    /// How many events lie before the page.
    depth: i64,
    request: Request,
    /// Where the connection is under `data`.
    page: &'static [&'static str],
}

const LISTS: [&str; 2] = ["timeline", "task_events"];
const DEPTHS: [&str; 3] = ["start", "middle", "end"];

pub async fn run(
    ep: &Endpoint,
    pid: u32,
    db: &BenchDb,
    config: ReadConfig,
    report: &mut Report,
) -> Result<()> {
    let conn = db.connect().await?;
    let deep = find_deep(&conn).await?;
    println!(
        "reads: task {} ({} events), contract {} ({} timeline events)",
        deep.task, deep.task_events, deep.contract, deep.contract_events
    );
    let mut scenarios = scenarios(ep, &conn, &deep).await?;
    conn.close().await?;
    if !config.only.is_empty() {
        scenarios.retain(|s| config.only.contains(&s.name));
    }
    for s in &scenarios {
        check_page(ep, s).await?;
    }

    // One client: latency of each page.
    let mut p50 = Vec::new();
    for s in &scenarios {
        warm_up(ep, &s.request).await?;
        let before = CpuSample::take(pid);
        let run = closed_loop(
            ep.addr,
            vec![Arc::new(s.request.clone())],
            Budget {
                per_client: config.latency_requests,
                time: Duration::from_secs(30),
            },
        )
        .await;
        let cpu = CpuSample::take(pid).since(&before);
        fail_on_errors(&s.name, run.failed, &run.first_failure)?;
        let mut micros = run.micros;
        let l = Latency::of(&mut micros);
        println!("{} (after event {}), 1 client:", s.name, s.depth);
        report.metric(format!("read.{}.depth", s.name), s.depth as f64, "events");
        report.latency(&format!("read.{}.1_client", s.name), &l);
        report.cpu(&format!("read.{}.1_client", s.name), &cpu, run.ok);
        if !s.name.ends_with("start") {
            report.target(
                format!("read.{}.1_client.p50_ms", s.name),
                l.p50,
                false,
                3.0,
            );
        }
        p50.push((s.name.clone(), l.p50));
    }

    // Many clients: throughput, and memory under that load.
    let sampler = RssSampler::start(pid);
    for s in &scenarios {
        let requests = (0..config.clients)
            .map(|_| Arc::new(s.request.clone()))
            .collect();
        let before = CpuSample::take(pid);
        let run = closed_loop(
            ep.addr,
            requests,
            Budget {
                per_client: 1_000_000,
                time: Duration::from_secs(config.secs),
            },
        )
        .await;
        let cpu = CpuSample::take(pid).since(&before);
        fail_on_errors(&s.name, run.failed, &run.first_failure)?;
        let rps = run.per_second();
        let mut micros = run.micros;
        let l = Latency::of(&mut micros);
        println!("{}, {} clients:", s.name, config.clients);
        let prefix = format!("read.{}.{}_clients", s.name, config.clients);
        report.metric(format!("{prefix}.requests_per_s"), rps, "req/s");
        report.metric(format!("{prefix}.p50_ms"), l.p50, "ms");
        report.metric(format!("{prefix}.p99_ms"), l.p99, "ms");
        report.cpu(&prefix, &cpu, run.ok);
        report.target(format!("{prefix}.requests_per_s"), rps, true, 5_000.0);
    }
    let peak = sampler.finish().await;
    let now = Memory::of(pid)?;
    println!("server memory under read load:");
    report.metric("read.server_rss_peak_mib", Memory::mib(peak), "MiB");
    report.metric("read.server_hwm_mib", Memory::mib(now.hwm_kib), "MiB");
    report.target(
        "read.server_hwm_mib",
        Memory::mib(now.hwm_kib),
        false,
        150.0,
    );

    // Keyset pagination: a page deep in costs what a page near the start costs.
    println!("deeper versus start (1 client p50):");
    let p50_of = |name: String| p50.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    for list in LISTS {
        let Some(start) = p50_of(format!("{list}_start")) else {
            continue;
        };
        for depth in &DEPTHS[1..] {
            if let Some(deeper) = p50_of(format!("{list}_{depth}")) {
                let name = format!("read.{list}.{depth}_over_start_p50");
                let ratio = deeper / start.max(1e-9);
                report.metric(name.clone(), ratio, "x");
                report.target(name, ratio, false, 1.25);
            }
        }
    }
    Ok(())
}

async fn find_deep(conn: &DatabaseConnection) -> Result<Deep> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT id, contract_id, event_count FROM tasks ORDER BY event_count DESC LIMIT 1",
        ))
        .await?
        .ok_or_else(|| Error::msg("the database has no tasks: seed it first"))?;
    let task: TaskId = row.try_get("", "id")?;
    let contract: Option<ContractId> = row.try_get("", "contract_id")?;
    let contract = contract.ok_or_else(|| Error::msg("the longest stream has no contract"))?;
    let task_events: i64 = row.try_get("", "event_count")?;
    let count = query_one(
        conn,
        "SELECT COUNT(*) AS n FROM history_events WHERE contract_id = {}",
        contract,
    )
    .await?;
    let contract_events: i64 = count.try_get("", "n")?;
    if task_events < 4 * FROM_END {
        return Err(Error::msg(
            "the longest stream is too short to read deep in it",
        ));
    }
    Ok(Deep {
        task,
        contract,
        task_events,
        contract_events,
    })
}

/// Runs `sql` with its one `{}` replaced by the backend's placeholder for `value`.
async fn query_one(
    conn: &DatabaseConnection,
    sql: &str,
    value: impl Into<Value>,
) -> Result<sea_orm::QueryResult> {
    let backend = conn.get_database_backend();
    let placeholder = match backend {
        DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = sql.replace("{}", placeholder);
    conn.query_one_raw(Statement::from_sql_and_values(
        backend,
        &sql,
        [value.into()],
    ))
    .await?
    .ok_or_else(|| Error::msg(format!("no row from {sql}")))
}

/// The six page requests: each list at each depth.
async fn scenarios(ep: &Endpoint, conn: &DatabaseConnection, deep: &Deep) -> Result<Vec<Scenario>> {
    let positions = |len: i64| [NEAR_START, len / 2, len - FROM_END];
    let mut out = Vec::new();
    for (depth, after) in DEPTHS.iter().zip(positions(deep.contract_events)) {
        // The cursor of the `after`-th event of the contract's timeline.
        let sql = format!(
            "SELECT tx_id, seq FROM history_events WHERE contract_id = {{}} \
             ORDER BY tx_id, seq LIMIT 1 OFFSET {}",
            after - 1
        );
        let row = query_one(conn, &sql, deep.contract).await?;
        let cursor = TimelineCursor {
            tx_id: row.try_get("", "tx_id")?,
            seq: row.try_get("", "seq")?,
        };
        out.push(Scenario {
            name: format!("timeline_{depth}"),
            depth: after,
            request: ep.graphql(
                "Timeline",
                TIMELINE,
                json!({ "contractId": deep.contract.to_string(), "after": cursor.encode() }),
            ),
            page: &["timeline"],
        });
    }
    for (depth, after) in DEPTHS.iter().zip(positions(deep.task_events)) {
        // Task event cursors are sequences (1-based, gapless).
        out.push(Scenario {
            name: format!("task_events_{depth}"),
            depth: after,
            request: ep.graphql(
                "Events",
                EVENTS,
                json!({ "taskId": deep.task.to_string(), "after": after.encode() }),
            ),
            page: &["task", "events"],
        });
    }
    Ok(out)
}

/// The page is what the figures claim: 50 edges, more after it, some before it.
async fn check_page(ep: &Endpoint, s: &Scenario) -> Result<()> {
    let response = query_json(ep, &s.request).await?;
    let mut page = &response["data"];
    for key in s.page {
        page = &page[*key];
    }
    let edges = page["edges"].as_array().map_or(0, Vec::len);
    let info = &page["pageInfo"];
    if edges != PAGE || info["hasNextPage"] != json!(true) || info["hasPreviousPage"] != json!(true)
    {
        return Err(Error::msg(format!(
            "{}: expected a full page with pages on both sides, got {edges} edges and {info}",
            s.name
        )));
    }
    Ok(())
}

/// A few hundred requests first, so that caches and the pool are warm.
async fn warm_up(ep: &Endpoint, request: &Request) -> Result<()> {
    let run = closed_loop(
        ep.addr,
        vec![Arc::new(request.clone())],
        Budget {
            per_client: 300,
            time: Duration::from_secs(5),
        },
    )
    .await;
    fail_on_errors("warm-up", run.failed, &run.first_failure)
}

pub fn fail_on_errors(what: &str, failed: u64, first: &Option<String>) -> Result<()> {
    if failed > 0 {
        return Err(Error::msg(format!(
            "{what}: {failed} requests failed; first: {}",
            first.as_deref().unwrap_or("?")
        )));
    }
    Ok(())
}
