//! Command line and environment configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    pub memory: MemoryArgs,
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
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Create a key for an owner (created if needed); prints the key alone on the last line.
    Create {
        /// The owner's name.
        #[arg(long)]
        owner: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}
