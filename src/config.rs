//! Command line and environment configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::store::Timeouts;

#[derive(Parser, Debug)]
#[command(
    name = "makima",
    version,
    about = "History, resume and rewind server for agent orchestration"
)]
pub struct Cli {
    /// Log filter (e.g. info, debug, makima=debug,sqlx=warn).
    #[arg(long, env = "MAKIMA_LOG", default_value = "info", global = true)]
    pub log_level: String,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "MAKIMA_LOG_JSON", global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB
    #[arg(
        long,
        env = "MAKIMA_DATABASE_URL",
        default_value = "sqlite://makima.db?mode=rwc"
    )]
    pub database_url: String,
    /// Connections in the pool.
    #[arg(long, env = "MAKIMA_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,
    /// Seconds a write transaction may spend in one statement or idle between two
    /// (PostgreSQL): the server ends a stuck writer, which would otherwise hold back
    /// every timeline reader.
    #[arg(long, env = "MAKIMA_DB_WRITE_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub db_write_timeout: u64,
    /// The same limit for a code operation's transaction, which stays open while git
    /// runs.
    #[arg(long, env = "MAKIMA_DB_CODE_OPERATION_TIMEOUT", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub db_code_operation_timeout: u64,
}

impl DatabaseArgs {
    /// The limits on makima's own write transactions.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            write: Duration::from_secs(self.db_write_timeout),
            code_operation: Duration::from_secs(self.db_code_operation_timeout),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "MAKIMA_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Directory under which every repository and worktree must live (created if missing).
    #[arg(long, env = "MAKIMA_WORKSPACE_ROOT", default_value = "workspace")]
    pub workspace_root: PathBuf,
    /// Load the demo data set (owned by the printed key) before serving.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
    /// Seconds a daemon may go without a heartbeat before it is OFFLINE and its RUNNING
    /// tasks are INTERRUPTED.
    #[arg(long, env = "MAKIMA_DAEMON_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub daemon_timeout: u64,
    /// Seconds a mutation waits for a daemon to finish a code operation before it
    /// answers with the operation QUEUED.
    #[arg(long, env = "MAKIMA_CODE_OPERATION_WAIT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub code_operation_wait: u64,
    /// Seconds a daemon has to finish a code operation before it is FAILED.
    #[arg(long, env = "MAKIMA_CODE_OPERATION_TIMEOUT", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub code_operation_timeout: u64,
}

/// Transport limits (see `server::Limits`).
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Seconds a client has to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, env = "MAKIMA_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "MAKIMA_BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout: u64,
    /// Open HTTP connections at most; more wait to be accepted.
    #[arg(long, env = "MAKIMA_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Open WebSocket connections at most; more are refused with 503.
    #[arg(long, env = "MAKIMA_MAX_WEBSOCKETS", default_value_t = 10_000)]
    pub max_websockets: usize,
}

/// Memory bounds of a serving process.
#[derive(Args, Debug, Clone)]
pub struct MemoryArgs {
    /// Bytes of conversation chains kept in memory (least recently used forgotten first).
    #[arg(long, env = "MAKIMA_CHAIN_CACHE_BYTES", default_value_t = crate::store::chains::DEFAULT_BUDGET)]
    pub chain_cache_bytes: usize,
    /// Bytes of outgoing messages one WebSocket connection may have queued; while full,
    /// its subscriptions wait (and later catch up from the database).
    #[arg(long, env = "MAKIMA_WS_QUEUE_BYTES", default_value_t = crate::server::ws::DEFAULT_QUEUE_BYTES)]
    pub ws_queue_bytes: usize,
    /// Seconds a WebSocket with a full queue may go without reading before it is closed
    /// with code 4008.
    #[arg(long, env = "MAKIMA_WS_STALL_SECS", default_value_t = crate::server::ws::DEFAULT_STALL.as_secs())]
    pub ws_stall_secs: u64,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate the database, then serve GraphQL, GraphiQL and the health checks.
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Print the GraphQL schema (SDL).
    ExportSchema,
    /// Load a small, realistic example and print the API key that owns it.
    Demo(ServeArgs),
    /// Run the reference daemon: heartbeat, wait for work and (with --exec) run tasks.
    Daemon(DaemonArgs),
}

/// `makima daemon` (see docs/daemons.md).
#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// The server: http://HOST:PORT (plain HTTP; no TLS).
    #[arg(long, env = "MAKIMA_URL")]
    pub url: String,
    /// A daemon key (`makima api-key create --owner O --daemon D`).
    #[arg(long, env = "MAKIMA_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The daemon's workspace: its tasks' repositories and worktrees, and where the
    /// commands run (created if missing).
    #[arg(long, env = "MAKIMA_WORKSPACE_ROOT")]
    pub workspace_root: PathBuf,
    /// Claim tasks and run each as `sh -c COMMAND`; without it the daemon claims
    /// nothing and only heartbeats.
    #[arg(long)]
    pub exec: Option<String>,
    /// Seconds between heartbeats (keep it well below the server's --daemon-timeout).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub heartbeat_secs: u64,
    /// Seconds between looks for work when the doorbell is silent.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub poll_secs: u64,
    /// Tasks run at once at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub max_tasks: u64,
}

impl DaemonArgs {
    pub fn options(&self) -> crate::daemon::Options {
        crate::daemon::Options {
            url: self.url.clone(),
            api_key: self.api_key.clone(),
            workspace_root: self.workspace_root.clone(),
            exec: self.exec.clone(),
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            poll: Duration::from_secs(self.poll_secs),
            max_tasks: self.max_tasks as usize,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key for an owner (created if needed); prints the key alone on the last line.
    Create {
        /// The owner's name.
        #[arg(long)]
        owner: String,
        /// Make a daemon key: it acts as the owner's daemon of this name (created if
        /// needed) and may only take and report that daemon's work.
        #[arg(long)]
        daemon: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}
