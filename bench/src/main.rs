//! makima-bench: seeds a large data set and measures a real `makima serve` over HTTP.
//!
//! ```text
//! cargo build --release -p makima -p makima-bench
//! target/release/makima-bench --database-url postgres://postgres@127.0.0.1:5432 all
//! target/release/makima-bench --database-url sqlite all
//! ```
//!
//! Modes: `seed` (create and fill a database, report the time and size), `read`,
//! `ingest`, `all` (seed, then read, then ingest), `history` (fork, rewind and
//! restore costs in process), `daemons` (dispatch, remote rewind and claims over
//! loopback; no seed). The bench creates its own database
//! and drops it at the end unless `--keep`; `--existing URL` reruns `read` or `ingest`
//! on a database an earlier `--keep` run left, without seeding again.
//!
//! Files: `seed` (data set), `cpu` (where the CPU went), `server` (the process under test and its memory), `http`
//! (the load client's connection), `load` (closed-loop runs), `read` and `ingest`
//! (the scenarios), `report` (statistics and the `METRIC`/`TARGET` lines), `db` (the
//! bench's own database).

mod cpu;
mod daemons;
mod db;
mod error;
mod history;
mod http;
mod ingest;
mod load;
mod read;
mod report;
mod seed;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use db::{BenchDb, Scratch};
use error::Result;
use http::Endpoint;
use report::Report;
use server::{Memory, Server, ServerConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Create and fill the database; report how long it took and its size.
    Seed,
    /// Page reads near the start and deep in the data, 1 and many clients.
    Read,
    /// appendTaskEvents in batches of 100 from several concurrent clients.
    Ingest,
    /// seed, read, ingest.
    All,
    /// Fork, rewind and restore costs through the domain handlers (no seed, no server).
    History,
    /// Daemons over loopback: dispatch latency, remote rewind round trip, claim storm
    /// (no seed).
    Daemons,
}

#[derive(Parser, Debug)]
#[command(name = "makima-bench", version, about)]
struct Cli {
    /// What to run.
    #[arg(value_enum, default_value = "all")]
    mode: Mode,
    /// `sqlite` (a temporary file) or a PostgreSQL server, postgres://USER@HOST:PORT,
    /// on which the bench creates (and afterwards drops) a database of its own.
    #[arg(long, default_value = "sqlite")]
    database_url: String,
    /// Run against this database, seeded by an earlier run with --keep, instead of
    /// creating one. It is never dropped.
    #[arg(long, value_name = "URL")]
    existing: Option<String>,
    /// Keep the database (and the scratch directory with the server's log).
    #[arg(long)]
    keep: bool,

    /// Contracts in the data set (each with its supervisor task).
    #[arg(long, default_value_t = 100)]
    contracts: usize,
    /// Tasks in the data set, the supervisor tasks included.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// Task events (each with its TASK_EVENTS_APPENDED history event).
    #[arg(long, default_value_t = 1_000_000)]
    task_events: usize,
    /// Events of the one task with a very long stream (part of --task-events).
    #[arg(long, default_value_t = 500_000)]
    long_stream: usize,

    /// The server binary (default: `makima` next to this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// MAKIMA_LOG for the server; `info` logs each request's duration_ms to
    /// server.log in the scratch directory (costs some throughput).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// MAKIMA_DB_POOL for the server (default: the server's own default).
    #[arg(long)]
    db_pool: Option<u32>,

    /// Concurrent clients to try for ingestion; the best is reported.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    ingest_clients: Vec<usize>,
    /// Seconds of ingestion per concurrency level.
    #[arg(long, default_value_t = 10)]
    ingest_secs: u64,
    /// Concurrent clients for the read throughput runs.
    #[arg(long, default_value_t = 32)]
    read_clients: usize,
    /// Seconds of each read throughput run.
    #[arg(long, default_value_t = 10)]
    read_secs: u64,
    /// Requests of each single-client latency run.
    #[arg(long, default_value_t = 2_000)]
    latency_requests: u64,
    /// Only these read scenarios (timeline_start, timeline_middle, timeline_end,
    /// task_events_start, task_events_middle, task_events_end); default all.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,

    /// Tasks dispatched one at a time to a daemon (`daemons`).
    #[arg(long, default_value_t = 200)]
    dispatches: usize,
    /// Remote rewinds with code, one at a time (`daemons`).
    #[arg(long, default_value_t = 100)]
    rewinds: usize,
    /// Daemons in the claim storm (`daemons`).
    #[arg(long, default_value_t = 100)]
    daemons: usize,
    /// Tasks in the claim storm (`daemons`).
    #[arg(long, default_value_t = 1_000)]
    storm_tasks: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match Box::pin(run(cli)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("makima-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let scratch = Scratch::new(cli.keep)?;
    let db = match &cli.existing {
        Some(url) => BenchDb::existing(url)?,
        None => BenchDb::create(&cli.database_url, scratch.path()).await?,
    };
    let mut report = Report::new(db.name());
    println!("makima-bench on {} ({})", db.name(), db.url);
    let outcome = Box::pin(measure(&cli, &db, &scratch, &mut report)).await;
    report.print_summary();
    match db.finish(cli.keep).await {
        Ok(Some(url)) => println!(
            "kept: --existing {url} (scratch directory {})",
            scratch.path().display()
        ),
        Ok(None) => {}
        Err(e) => eprintln!("makima-bench: could not drop the bench database: {e}"),
    }
    outcome
}

async fn measure(cli: &Cli, db: &BenchDb, scratch: &Scratch, report: &mut Report) -> Result<()> {
    if cli.mode == Mode::History {
        let app = makima::open(&db.url, 8, &scratch.path().join("history-workspace")).await?;
        return Box::pin(history::run(&app, report)).await;
    }
    if cli.existing.is_none() && cli.mode != Mode::Daemons {
        let plan = seed::Plan {
            contracts: cli.contracts,
            tasks: cli.tasks,
            task_events: cli.task_events,
            long_stream: cli.long_stream,
        };
        println!("seeding: {plan:?}");
        seed::run(
            &db.url,
            &scratch.path().join("seed-workspace"),
            &plan,
            report,
        )
        .await?;
        sizes(db, "seed", report).await?;
    }
    if cli.mode == Mode::Seed {
        return Ok(());
    }

    let config = ServerConfig {
        bin: match &cli.server_bin {
            Some(bin) => bin.clone(),
            None => server::default_bin()?,
        },
        database_url: db.url.clone(),
        dir: scratch.path().to_owned(),
        log: cli.server_log.clone(),
        db_pool: cli.db_pool,
    };
    let key = config.create_key(seed::OWNER).await?;
    let server = Server::start(&config).await?;
    println!("server: pid {} on {}", server.pid, server.addr);
    let ep = Endpoint {
        addr: server.addr,
        key,
    };
    let idle = server.memory()?;
    report.metric("server.idle_rss_mib", Memory::mib(idle.rss_kib), "MiB");

    let outcome = async {
        if cli.mode == Mode::Daemons {
            let config = daemons::DaemonConfig {
                dispatches: cli.dispatches,
                rewinds: cli.rewinds,
                daemons: cli.daemons,
                storm_tasks: cli.storm_tasks,
            };
            daemons::run(&ep, &db.url, scratch.path(), &config, report).await?;
        }
        if matches!(cli.mode, Mode::Read | Mode::All) {
            let config = read::ReadConfig {
                clients: cli.read_clients,
                secs: cli.read_secs,
                latency_requests: cli.latency_requests,
                only: cli.scenarios.clone(),
            };
            read::run(&ep, server.pid, db, config, report).await?;
        }
        if matches!(cli.mode, Mode::Ingest | Mode::All) {
            let config = ingest::IngestConfig {
                clients: cli.ingest_clients.clone(),
                secs: cli.ingest_secs,
                goal: if db.name() == "postgres" {
                    50_000.0
                } else {
                    20_000.0
                },
            };
            ingest::run(&ep, server.pid, &config, report).await?;
        }
        let m = server.memory()?;
        report.metric("server.hwm_mib", Memory::mib(m.hwm_kib), "MiB");
        Ok::<(), error::Error>(())
    }
    .await;
    server.stop().await?;
    outcome?;
    sizes(db, "end", report).await
}

async fn sizes(db: &BenchDb, when: &str, report: &mut Report) -> Result<()> {
    println!("database size ({when}):");
    for (what, bytes) in db.sizes().await? {
        report.metric(
            format!("size.{when}.{what}_mib"),
            bytes as f64 / 1048576.0,
            "MiB",
        );
    }
    Ok(())
}
