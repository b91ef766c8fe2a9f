//! Issue 4's figures, measured in process through the domain handlers (the storage
//! cost, without HTTP): fork, rewind and restore of conversations of 100, 10,000 and
//! 100,000 messages; reading the last 50 messages of a 100,000-message conversation
//! that is a fork 50 levels deep; the database growth of 1,000 forks of a
//! 10,000-message conversation; and a rewind and a last-50 read after 10,000
//! "append 2, rewind 1" cycles (a chain 10,000 segments deep), with the memory it took.

use std::time::Instant;

use makima::domain::fork::{self, Fork};
use makima::domain::ingest::{self, NewMessage};
use makima::domain::rewind::{self, Rewind};
use makima::domain::tasks::{self, CreateTask};
use makima::domain::{App, Viewer};
use makima::entities::ids::TaskId;
use makima::entities::kinds::MessageRole;
use makima::store::{conversations, keyset::Window, owners};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::error::Result;
use crate::report::Report;
use crate::server::Memory;

const SIZES: [i32; 3] = [100, 10_000, 100_000];
const ROUNDS: usize = 200;

fn ms(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

async fn viewer(app: &App) -> Result<Viewer> {
    makima::domain::keys::create(&app.store, "history-bench").await?;
    let owner = owners::find_by_name(app.store.db(), "history-bench")
        .await?
        .expect("owner");
    Ok(Viewer::owner(&owner))
}

async fn task_with_messages(app: &App, v: &Viewer, n: i32) -> Result<TaskId> {
    let (task, _) = tasks::create(
        app,
        v,
        CreateTask {
            name: format!("conversation of {n}"),
            plan: None,
            contract_id: None,
            parent_task_id: None,
            repository: None,
            worktree_path: None,
            branch: None,
            base_branch: None,
            continue_from_task_id: None,
            daemon_id: None,
        },
    )
    .await?;
    append(app, v, task.id, n).await?;
    Ok(task.id)
}

async fn append(app: &App, v: &Viewer, task: TaskId, n: i32) -> Result<()> {
    let mut left = n;
    while left > 0 {
        let batch = left.min(100);
        let messages = (0..batch)
            .map(|i| NewMessage {
                role: if i % 2 == 0 { MessageRole::User } else { MessageRole::Assistant },
                content: serde_json::json!([{ "type": "text", "text": format!("message {i} of a long agent conversation") }]),
            })
            .collect();
        ingest::append_messages(app, v, task, messages, None).await?;
        left -= batch;
    }
    Ok(())
}

fn rewind_one(task: TaskId) -> Rewind {
    Rewind {
        contract_id: None,
        task_id: Some(task),
        to_message_index: None,
        by_message_count: Some(1),
        rewind_code: false,
    }
}

fn fork_at(task: TaskId, n: i32) -> Fork {
    Fork {
        task_id: task,
        checkpoint_id: None,
        message_count: Some(n),
        name: None,
        branch_name: None,
    }
}

async fn db_size(app: &App) -> Result<i64> {
    let db = app.store.db();
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "SELECT pg_database_size(current_database())::bigint AS size",
        _ => {
            "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()) AS size"
        }
    };
    if backend == DatabaseBackend::Sqlite {
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await?;
    }
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .expect("size row");
    Ok(row.try_get::<i64>("", "size")?)
}

async fn rows(app: &App) -> Result<Vec<(&'static str, i64)>> {
    let db = app.store.db();
    let mut out = vec![];
    for table in [
        "conversations",
        "messages",
        "tasks",
        "history_events",
        "conversation_snapshots",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?
            .expect("count");
        out.push((table, row.try_get::<i64>("", "n")?));
    }
    Ok(out)
}

fn last_50() -> Window<i32> {
    Window {
        after: None,
        before: None,
        limit: 50,
        from_end: true,
    }
}

/// 10,000 cycles of "append 2, rewind 1" (each rewind adds a segment, so the chain
/// grows by one per cycle), then the cost of one more rewind (undone each time) and of
/// reading the last 50 messages, and the process's memory before and after.
async fn deep_rewinds(app: &App, v: &Viewer, report: &mut Report) -> Result<()> {
    const CYCLES: usize = 10_000;
    let before = Memory::of(std::process::id())?;
    let task = task_with_messages(app, v, 0).await?;
    let started = Instant::now();
    for _ in 0..CYCLES {
        append(app, v, task, 2).await?;
        rewind::rewind_conversation(app, v, rewind_one(task)).await?;
    }
    report.seconds("history.10000_rewinds.cycles_s", started.elapsed());
    let (mut rw, mut rd) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let done = rewind::rewind_conversation(app, v, rewind_one(task)).await?;
        rw.push(t.elapsed().as_secs_f64() * 1e3);
        rewind::restore_conversation(app, v, done.event.id).await?;
        let head = makima::store::tasks::by_id(v.scope(app.store.db()), task)
            .await?
            .expect("task")
            .conversation_id;
        let t = Instant::now();
        let view = app.store.conversation(head).await?;
        let page = conversations::page(v.scope(app.store.db()), &view, None, &last_50()).await?;
        assert_eq!(page.items.len(), 50);
        rd.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let after = Memory::of(std::process::id())?;
    report.metric(
        "history.10000_rewinds.rewind.p50_ms",
        ms(&mut rw, 0.5),
        "ms",
    );
    report.metric(
        "history.10000_rewinds.rewind.p99_ms",
        ms(&mut rw, 0.99),
        "ms",
    );
    report.metric(
        "history.10000_rewinds.read_last_50.p50_ms",
        ms(&mut rd, 0.5),
        "ms",
    );
    report.metric(
        "history.10000_rewinds.read_last_50.p99_ms",
        ms(&mut rd, 0.99),
        "ms",
    );
    report.metric(
        "history.10000_rewinds.rss_before_mib",
        Memory::mib(before.rss_kib),
        "MiB",
    );
    report.metric(
        "history.10000_rewinds.rss_after_mib",
        Memory::mib(after.rss_kib),
        "MiB",
    );
    report.metric(
        "history.10000_rewinds.chain_cache_kib",
        app.store.chains().accounted_bytes() as f64 / 1024.0,
        "KiB",
    );
    report.target(
        "history.10000_rewinds.rewind.p50_ms",
        ms(&mut rw, 0.5),
        false,
        5.0,
    );
    report.target(
        "history.10000_rewinds.read_last_50.p50_ms",
        ms(&mut rd, 0.5),
        false,
        5.0,
    );
    Ok(())
}

pub async fn run(app: &App, report: &mut Report) -> Result<()> {
    let v = viewer(app).await?;
    deep_rewinds(app, &v, report).await?;
    let mut per_size = vec![];
    for &n in &SIZES {
        let started = Instant::now();
        let task = task_with_messages(app, &v, n).await?;
        report.seconds(format!("history.write_{n}_messages"), started.elapsed());
        let (mut rw, mut rs, mut fk) = (vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let done = rewind::rewind_conversation(app, &v, rewind_one(task)).await?;
            rw.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            rewind::restore_conversation(app, &v, done.event.id).await?;
            rs.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            fork::fork_task(app, &v, fork_at(task, n - 1)).await?;
            fk.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let figures = [
            ("rewind", ms(&mut rw, 0.5), ms(&mut rw, 0.99)),
            ("restore", ms(&mut rs, 0.5), ms(&mut rs, 0.99)),
            ("fork", ms(&mut fk, 0.5), ms(&mut fk, 0.99)),
        ];
        for (op, p50, p99) in figures {
            report.metric(format!("history.{op}.{n}_messages.p50_ms"), p50, "ms");
            report.metric(format!("history.{op}.{n}_messages.p99_ms"), p99, "ms");
            report.target(format!("history.{op}.{n}_messages.p50_ms"), p50, false, 5.0);
        }
        per_size.push(figures);
    }
    for (i, op) in ["rewind", "restore", "fork"].iter().enumerate() {
        let (small, large) = (per_size[0][i].1, per_size[2][i].1);
        report.target(
            format!("history.{op}.p50_100000_over_100"),
            large / small,
            false,
            1.5,
        );
    }

    // A fork 50 levels deep over 100,000 messages.
    let mut task = task_with_messages(app, &v, 100_000).await?;
    // Each level keeps all but the last message of its source and adds two.
    for level in 0..50 {
        let length = 100_000 + level;
        let forked = fork::fork_task(app, &v, fork_at(task, length - 1)).await?;
        task = forked.task.id;
        append(app, &v, task, 2).await?;
    }
    let head = makima::store::tasks::by_id(v.scope(app.store.db()), task)
        .await?
        .expect("task")
        .conversation_id;
    let mut reads = vec![];
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let view = app.store.conversation(head).await?;
        let window = Window {
            after: None,
            before: None,
            limit: 50,
            from_end: true,
        };
        let page = conversations::page(v.scope(app.store.db()), &view, None, &window).await?;
        assert_eq!(page.items.len(), 50);
        reads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let p50 = ms(&mut reads, 0.5);
    report.metric(
        "history.read_last_50.fork_depth_50.p99_ms",
        ms(&mut reads, 0.99),
        "ms",
    );
    report.target("history.read_last_50.fork_depth_50.p50_ms", p50, false, 5.0);

    // 1,000 forks of a 10,000-message conversation.
    let source = task_with_messages(app, &v, 10_000).await?;
    let before_size = db_size(app).await?;
    let before_rows = rows(app).await?;
    for i in 0..1000 {
        fork::fork_task(app, &v, fork_at(source, 10_000 - (i % 100))).await?;
    }
    let after_size = db_size(app).await?;
    let after_rows = rows(app).await?;
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    report.metric("history.1000_forks.db_before_mib", mib(before_size), "MiB");
    report.metric("history.1000_forks.db_after_mib", mib(after_size), "MiB");
    report.metric(
        "history.1000_forks.bytes_per_fork",
        (after_size - before_size) as f64 / 1000.0,
        "B",
    );
    for ((table, b), (_, a)) in before_rows.iter().zip(&after_rows) {
        report.metric(
            format!("history.1000_forks.rows_added.{table}"),
            (a - b) as f64,
            "",
        );
    }
    let added: i64 = before_rows
        .iter()
        .zip(&after_rows)
        .map(|((_, b), (_, a))| a - b)
        .sum();
    report.target(
        "history.1000_forks.rows_per_fork",
        added as f64 / 1000.0,
        false,
        5.0,
    );
    Ok(())
}
