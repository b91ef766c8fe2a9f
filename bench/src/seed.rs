//! Seeding the data set fast while writing exactly what the domain would.
//!
//! - The owner, its key, the contracts (each with its supervisor task) and the tasks
//!   are created through the library (`makima::domain`), a few at a time.
//! - Task events are bulk-inserted with multi-row `INSERT`s whose values are generated
//!   in Rust and bound (ids as `Uuid`, times as `DateTime<Utc>`: the same encoding the
//!   ORM uses, a 16-byte blob and RFC 3339 text on SQLite, `uuid` and `timestamptz` on
//!   PostgreSQL). Each event is recorded as if appended on its own, so each gets the
//!   `TASK_EVENTS_APPENDED` history event `appendTaskEvents` writes
//!   (`{count: 1, firstSequence: s, lastSequence: s}`), and events of different tasks
//!   interleave the way concurrent daemons would write them. `seq` and `tx_id` take
//!   their column defaults, as in `store::history::insert`.
//! - Finally each task's `event_count` is set to its last sequence and, on PostgreSQL,
//!   `VACUUM ANALYZE` runs (what autovacuum would do shortly after such a load).
//!
//! One task gets a very long stream (`long_stream` events), so that "deep" means
//! hundreds of thousands of events in, for its task and for its contract's timeline.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use makima::domain::contracts::{self, CreateContract};
use makima::domain::tasks::{self, CreateTask};
use makima::domain::{App, Viewer};
use makima::entities::ids::{ContractId, HistoryEventId, OwnerId, TaskEventId, TaskId};
use makima::entities::kinds::{HistoryEventType, TaskEventType};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::db::scalar;
use crate::error::{Error, Result};
use crate::report::Report;

/// The owner of the data set (its name for `makima api-key create --owner`).
pub const OWNER: &str = "bench";

/// Rows per `INSERT` statement (7–8 bound values each: well under both databases'
/// parameter limits) and statements per transaction.
const ROWS_PER_INSERT: usize = 1_000;
const INSERTS_PER_TXN: usize = 20;
/// Library calls in flight while creating contracts and tasks.
const CREATE_CONCURRENCY: usize = 4;

/// The size of the data set.
#[derive(Clone, Debug)]
pub struct Plan {
    pub contracts: usize,
    /// Tasks in all, the contracts' supervisor tasks included.
    pub tasks: usize,
    pub task_events: usize,
    /// Events of the one task with a very long stream (part of `task_events`).
    pub long_stream: usize,
}

impl Plan {
    fn plain_tasks(&self) -> usize {
        self.tasks.saturating_sub(self.contracts)
    }

    pub fn check(&self) -> Result<()> {
        if self.contracts == 0 || self.plain_tasks() == 0 {
            return Err(Error::msg(
                "need at least one contract and --tasks > --contracts",
            ));
        }
        if self.long_stream > self.task_events {
            return Err(Error::msg("--long-stream cannot exceed --task-events"));
        }
        if self.long_stream < self.task_events && self.plain_tasks() < 2 {
            return Err(Error::msg(
                "events beyond the long stream need a second task",
            ));
        }
        Ok(())
    }
}

/// A contract (`I` = `ContractId`) or a task (`TaskId`) the seed created, with what its
/// history events need.
#[derive(Clone)]
struct Seeded<I> {
    id: I,
    contract_id: ContractId,
    phase: String,
}

/// Creates and fills the data set, recording how long each step took.
pub async fn run(url: &str, workspace: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    plan.check()?;
    let started = Instant::now();
    let app = makima::open(url, 8, workspace).await?;
    let viewer = makima::domain::keys::create(&app.store, OWNER)
        .await?
        .viewer;

    let t = Instant::now();
    let contracts = create_contracts(&app, &viewer, plan.contracts).await?;
    report.seconds("seed.contracts_s", t.elapsed());

    let t = Instant::now();
    let tasks = create_tasks(&app, &viewer, &contracts, plan.plain_tasks()).await?;
    report.seconds("seed.tasks_s", t.elapsed());

    let t = Instant::now();
    insert_events(&app, viewer.owner_id, &tasks, plan).await?;
    report.seconds("seed.events_s", t.elapsed());

    let t = Instant::now();
    let db = app.store.db();
    db.execute_unprepared(
        "UPDATE tasks SET event_count = \
         COALESCE((SELECT MAX(e.sequence) FROM task_events e WHERE e.task_id = tasks.id), 0)",
    )
    .await?;
    if app.store.is_postgres() {
        db.execute_unprepared("VACUUM ANALYZE").await?;
    }
    report.seconds("seed.finish_s", t.elapsed());
    report.seconds("seed.total_s", started.elapsed());

    verify(db, plan).await?;
    let history = scalar(db, "SELECT COUNT(*) AS n FROM history_events").await?;
    report.metric("data.contracts", plan.contracts as f64, "");
    report.metric("data.tasks", plan.tasks as f64, "");
    report.metric("data.task_events", plan.task_events as f64, "");
    report.metric("data.history_events", history as f64, "");
    report.metric("data.long_stream_events", plan.long_stream as f64, "");
    app.store.db().clone().close().await?;
    Ok(())
}

async fn create_contracts(app: &App, viewer: &Viewer, n: usize) -> Result<Vec<Seeded<ContractId>>> {
    let mut workers = JoinSet::new();
    for w in 0..CREATE_CONCURRENCY {
        let (app, viewer) = (app.clone(), viewer.clone());
        workers.spawn(async move {
            let mut made = Vec::new();
            for i in (w..n).step_by(CREATE_CONCURRENCY) {
                let input = CreateContract {
                    name: format!("bench contract {i}"),
                    description: Some("makima-bench data set".into()),
                    phases: None,
                    repository: None,
                };
                let c = contracts::create(&app, &viewer, input).await?;
                made.push((
                    i,
                    Seeded {
                        id: c.id,
                        contract_id: c.id,
                        phase: c.phase,
                    },
                ));
            }
            Ok::<_, Error>(made)
        });
    }
    collect(workers, n).await
}

/// Plain task `i` belongs to contract `i % contracts`; task 0 (of contract 0) is the
/// one that gets the long stream.
async fn create_tasks(
    app: &App,
    viewer: &Viewer,
    contracts: &[Seeded<ContractId>],
    n: usize,
) -> Result<Vec<Seeded<TaskId>>> {
    let mut workers = JoinSet::new();
    for w in 0..CREATE_CONCURRENCY {
        let (app, viewer, contracts) = (app.clone(), viewer.clone(), contracts.to_vec());
        workers.spawn(async move {
            let mut made = Vec::new();
            for i in (w..n).step_by(CREATE_CONCURRENCY) {
                let contract = &contracts[i % contracts.len()];
                let input = CreateTask {
                    name: if i == 0 {
                        "bench task with a long stream".into()
                    } else {
                        format!("bench task {i}")
                    },
                    plan: Some("write the code, run the tests".into()),
                    contract_id: Some(contract.id),
                    parent_task_id: None,
                    repository: None,
                    worktree_path: None,
                    branch: None,
                    base_branch: None,
                    continue_from_task_id: None,
                    daemon_id: None,
                };
                let (t, _) = tasks::create(&app, &viewer, input).await?;
                made.push((
                    i,
                    Seeded {
                        id: t.id,
                        contract_id: contract.id,
                        phase: contract.phase.clone(),
                    },
                ));
            }
            Ok::<_, Error>(made)
        });
    }
    collect(workers, n).await
}

/// What one creating worker returns: its rows, each with its index.
type Made<I> = Result<Vec<(usize, Seeded<I>)>>;

async fn collect<I: Send + 'static>(
    mut workers: JoinSet<Made<I>>,
    n: usize,
) -> Result<Vec<Seeded<I>>> {
    let mut all = Vec::with_capacity(n);
    while let Some(joined) = workers.join_next().await {
        all.extend(joined.map_err(|e| Error::msg(format!("seed worker: {e}")))??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, s)| s).collect())
}

/// Which task writes the `g`-th event: the long-stream task gets `long` of `total`
/// events spread evenly; the others take turns.
struct Interleave {
    total: u64,
    long: u64,
    others: usize,
    turn: usize,
}

impl Interleave {
    /// Index into the plain tasks (0 is the long-stream task).
    fn task_of(&mut self, g: u64) -> usize {
        if (g + 1) * self.long / self.total > g * self.long / self.total {
            0
        } else {
            self.turn = self.turn % self.others + 1;
            self.turn
        }
    }
}

/// One `INSERT` worth of rows for each table.
struct Chunk {
    rows: usize,
    task_events: Vec<Value>,
    history: Vec<Value>,
}

const TASK_EVENT_COLUMNS: [&str; 7] = [
    "task_id",
    "sequence",
    "id",
    "owner_id",
    "event_type",
    "data",
    "created_at",
];
const HISTORY_COLUMNS: [&str; 8] = [
    "id",
    "owner_id",
    "event_type",
    "contract_id",
    "task_id",
    "phase",
    "data",
    "created_at",
];

async fn insert_events(
    app: &App,
    owner_id: OwnerId,
    tasks: &[Seeded<TaskId>],
    plan: &Plan,
) -> Result<()> {
    let backend = app.store.backend();
    // Generating rows and inserting them overlap: a producer task fills a short queue.
    let (tx, mut rx) = mpsc::channel::<Chunk>(4);
    let (tasks_owned, plan_owned) = (tasks.to_vec(), plan.clone());
    let producer =
        tokio::spawn(async move { produce(tx, owner_id, tasks_owned, plan_owned).await });

    let db = app.store.db();
    let mut sql_cache: Vec<(usize, String, String)> = Vec::new();
    let mut txn = db.begin().await?;
    let (mut in_txn, mut done) = (0, 0usize);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    while let Some(chunk) = rx.recv().await {
        let i = match sql_cache
            .iter()
            .position(|(rows, _, _)| *rows == chunk.rows)
        {
            Some(i) => i,
            None => {
                sql_cache.push((
                    chunk.rows,
                    insert_sql(backend, "task_events", &TASK_EVENT_COLUMNS, chunk.rows),
                    insert_sql(backend, "history_events", &HISTORY_COLUMNS, chunk.rows),
                ));
                sql_cache.len() - 1
            }
        };
        let (_, events_sql, history_sql) = &sql_cache[i];
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            events_sql.as_str(),
            chunk.task_events,
        ))
        .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            history_sql.as_str(),
            chunk.history,
        ))
        .await?;
        done += chunk.rows;
        in_txn += 1;
        if in_txn == INSERTS_PER_TXN {
            txn.commit().await?;
            txn = db.begin().await?;
            in_txn = 0;
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            eprintln!(
                "  … {done} of {} events ({:.0}/s)",
                plan.task_events,
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    txn.commit().await?;
    producer
        .await
        .map_err(|e| Error::msg(format!("seed producer: {e}")))?
}

async fn produce(
    tx: mpsc::Sender<Chunk>,
    owner_id: OwnerId,
    tasks: Vec<Seeded<TaskId>>,
    plan: Plan,
) -> Result<()> {
    let kinds = [
        TaskEventType::Output,
        TaskEventType::Output,
        TaskEventType::Output,
        TaskEventType::Output,
        TaskEventType::ToolCall,
        TaskEventType::ToolResult,
    ];
    let appended = HistoryEventType::TaskEventsAppended;
    let mut next_sequence = vec![0i64; tasks.len()];
    let mut pick = Interleave {
        total: plan.task_events as u64,
        long: plan.long_stream as u64,
        others: tasks.len() - 1,
        turn: 0,
    };
    let mut g = 0u64;
    while g < plan.task_events as u64 {
        let rows = ROWS_PER_INSERT.min(plan.task_events - g as usize);
        let mut chunk = Chunk {
            rows,
            task_events: Vec::with_capacity(rows * TASK_EVENT_COLUMNS.len()),
            history: Vec::with_capacity(rows * HISTORY_COLUMNS.len()),
        };
        // One timestamp per chunk, as the domain uses one per appended batch.
        let at = makima::time::now();
        for _ in 0..rows {
            let i = pick.task_of(g);
            let task = &tasks[i];
            next_sequence[i] += 1;
            let seq = next_sequence[i];
            let kind = kinds[(g % kinds.len() as u64) as usize];
            chunk.task_events.extend([
                task.id.into(),
                seq.into(),
                TaskEventId::new().into(),
                owner_id.into(),
                kind.into(),
                event_data(kind, g, seq).into(),
                at.into(),
            ]);
            chunk.history.extend([
                HistoryEventId::new().into(),
                owner_id.into(),
                appended.into(),
                Some(task.contract_id).into(),
                Some(task.id).into(),
                Some(task.phase.clone()).into(),
                format!(r#"{{"count":1,"firstSequence":{seq},"lastSequence":{seq}}}"#).into(),
                at.into(),
            ]);
            g += 1;
        }
        if tx.send(chunk).await.is_err() {
            break; // the inserter stopped; its error is reported
        }
    }
    Ok(())
}

/// A payload shaped like what a daemon reports (about 100 bytes of JSON).
fn event_data(kind: TaskEventType, g: u64, seq: i64) -> String {
    match kind {
        TaskEventType::ToolCall => format!(
            r#"{{"tool":"bash","input":{{"command":"cargo test -p crate_{}"}},"callId":"call_{g}"}}"#,
            g % 97
        ),
        TaskEventType::ToolResult => format!(
            r#"{{"callId":"call_{}","exitCode":0,"output":"test result: ok. {} passed"}}"#,
            g.saturating_sub(1),
            seq % 300
        ),
        _ => format!(
            r#"{{"text":"line {seq}: Compiling crate_{} v0.1.{} (/work/crate_{})"}}"#,
            g % 97,
            g % 13,
            g % 97
        ),
    }
}

/// `INSERT INTO table (cols) VALUES (…), (…)` with `rows` rows of placeholders.
fn insert_sql(backend: DatabaseBackend, table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                DatabaseBackend::Postgres => {
                    let _ = write!(sql, "${n}");
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// The seeded rows are what the domain would have written: counts add up and every
/// task's `event_count` equals its number of events (sequences are gapless from 1).
async fn verify(db: &impl ConnectionTrait, plan: &Plan) -> Result<()> {
    let events = scalar(db, "SELECT COUNT(*) AS n FROM task_events").await?;
    let tasks = scalar(db, "SELECT COUNT(*) AS n FROM tasks").await?;
    let wrong = scalar(
        db,
        "SELECT COUNT(*) AS n FROM tasks t WHERE t.event_count <> \
         (SELECT COUNT(*) FROM task_events e WHERE e.task_id = t.id)",
    )
    .await?;
    if events as usize != plan.task_events || tasks as usize != plan.tasks || wrong != 0 {
        return Err(Error::msg(format!(
            "seeded data does not add up: {events} task events, {tasks} tasks, \
             {wrong} tasks with a wrong event_count"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_gives_the_long_task_its_share() {
        let mut p = Interleave {
            total: 1000,
            long: 500,
            others: 3,
            turn: 0,
        };
        let picks: Vec<usize> = (0..1000).map(|g| p.task_of(g)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 500);
        assert_eq!(&picks[..6], &[1, 0, 2, 0, 3, 0]);
        assert!(picks.iter().all(|&i| i <= 3));
    }

    #[test]
    fn placeholders_per_backend() {
        let cols = ["a", "b"];
        assert_eq!(
            insert_sql(DatabaseBackend::Postgres, "t", &cols, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            insert_sql(DatabaseBackend::Sqlite, "t", &cols, 1),
            "INSERT INTO t (a, b) VALUES (?, ?)"
        );
    }

    #[test]
    fn payloads_are_json() {
        for kind in [
            TaskEventType::Output,
            TaskEventType::ToolCall,
            TaskEventType::ToolResult,
        ] {
            let text = event_data(kind, 12, 3);
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{text}"
            );
        }
    }
}
