//! Persistence: the `Store` facade over the database connection, with the write
//! transaction helper, and the queries of each area in a file of its own.

pub mod chains;
pub mod checkpoints;
pub mod code_operations;
pub mod contracts;
pub mod conversations;
pub mod daemons;
pub mod history;
mod horizon;
pub mod idempotency;
pub mod intents;
pub mod keyset;
pub mod live;
pub mod owners;
pub mod repositories;
mod scope;
pub mod task_events;
pub mod task_locks;
pub mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::MigratorTrait;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

use crate::entities::history_event;
use crate::entities::ids::ConversationId;
use crate::entities::ids::OwnerId;
use crate::error::{AppError, AppResult};
pub use scope::OwnerScope;

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    statements: Arc<AtomicU64>,
    /// Bumped after every commit of a history event (see `commits`).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    chains: Arc<chains::Chains>,
    /// The highest timeline horizon seen so far (PostgreSQL; see `horizon::Floor`).
    floor: Arc<horizon::Floor>,
    timeouts: Timeouts,
    /// Whether the server bounds whole transactions (`transaction_timeout`).
    transaction_timeout: bool,
}

/// How long makima's own write transactions may hold the timeline (PostgreSQL): readers
/// stop below the oldest makima writer in flight, so a stuck writer is cut off. Each
/// statement and each idle gap inside a transaction is bounded (and the whole
/// transaction, on servers that support it); the server ends a transaction that
/// overruns, which rolls it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Every write transaction but a code operation's.
    pub write: Duration,
    /// A code operation's transaction, which stays open while git runs.
    pub code_operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            write: Duration::from_secs(30),
            code_operation: Duration::from_secs(300),
        }
    }
}

/// How to open the database.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
        }
    }
}

impl Store {
    pub async fn connect(options: &StoreOptions) -> AppResult<Self> {
        let mut opts = ConnectOptions::new(options.url.clone());
        // sea-orm uses a single SQLite connection unless told otherwise; readers in WAL
        // mode run in parallel with the one writer.
        opts.max_connections(options.max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        let mut db = Database::connect(opts)
            .await
            .map_err(|e| AppError::internal(format!("cannot connect to the database: {e}")))?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let transaction_timeout = db.get_database_backend() == DatabaseBackend::Postgres
            && server_version(&db).await? >= 170_000;
        Ok(Self {
            db,
            statements,
            commits: Arc::new(tokio::sync::watch::channel(0).0),
            chains: Default::default(),
            floor: Default::default(),
            timeouts: Timeouts::default(),
            transaction_timeout,
        })
    }

    /// This store with other limits on its write transactions.
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The database acting for `owner_id`, for reads outside a transaction.
    pub fn scope(&self, owner_id: OwnerId) -> OwnerScope<'_, DatabaseConnection> {
        OwnerScope::new(&self.db, owner_id).with_floor(self.horizon_floor())
    }

    /// A horizon every timeline read may assume (see `horizon::Floor`): pass it to the
    /// reads that take one.
    pub fn horizon_floor(&self) -> i64 {
        self.floor.get()
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    pub fn is_postgres(&self) -> bool {
        self.backend() == DatabaseBackend::Postgres
    }

    /// The conversation whose head segment is `head`, for reads outside a transaction
    /// (the chain behind the head comes from memory when it was read before).
    pub async fn conversation(&self, head: ConversationId) -> AppResult<conversations::View> {
        self.chains.view(&self.db, head).await
    }

    /// As `conversation`, for a head row already read.
    pub async fn conversation_of(
        &self,
        head: &crate::entities::conversation::Model,
    ) -> AppResult<conversations::View> {
        self.chains.view_of_head(&self.db, head).await
    }

    /// As `conversation`, with the head's row read in `conn` (a transaction's own view
    /// of its length); the chain behind it still comes from memory.
    pub async fn conversation_in(
        &self,
        conn: &impl ConnectionTrait,
        head: ConversationId,
    ) -> AppResult<conversations::View> {
        self.chains.view(conn, head).await
    }

    /// The first `length` messages of the conversation through `segment` (a checkpoint's
    /// snapshot).
    pub async fn snapshot(
        &self,
        segment: ConversationId,
        length: i32,
    ) -> AppResult<conversations::View> {
        self.chains.snapshot(&self.db, segment, length).await
    }

    /// The conversation-chain cache (its budget and accounting).
    pub fn chains(&self) -> &chains::Chains {
        &self.chains
    }

    /// SQL statements run through this store so far (for tests that count queries).
    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Begins a write transaction. On SQLite it is `IMMEDIATE`: it takes the write lock
    /// up front, so a read-then-write transaction never fails with "database is locked".
    /// On PostgreSQL it announces itself to timeline readers and is bounded by the write
    /// timeout (see `Timeouts`). Dropping the transaction without `commit` rolls it back.
    pub async fn begin_write(&self) -> AppResult<DatabaseTransaction> {
        self.begin_within(self.timeouts.write).await
    }

    /// Begins the transaction of a code operation, which takes the task's lock before
    /// git runs and records the operation after: it stays unannounced (no transaction id
    /// on PostgreSQL, so no timeline reader waits for it while it waits for the lock or
    /// while git runs) until `announce` makes it a writer. Bounded by the code-operation
    /// timeout.
    pub async fn begin_code_operation(&self) -> AppResult<DatabaseTransaction> {
        let txn = self.begin_immediate().await?;
        if self.is_postgres() {
            let millis = self.timeouts.code_operation.as_millis().max(1).to_string();
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                horizon::LIMIT_ONLY,
                [millis.into()],
            ))
            .await?;
        }
        Ok(txn)
    }

    /// Makes a transaction from `begin_code_operation` a writer, before its first write.
    pub async fn announce(&self, txn: &DatabaseTransaction) -> AppResult<()> {
        self.announce_within(txn, self.timeouts.code_operation)
            .await
    }

    async fn begin_immediate(&self) -> AppResult<DatabaseTransaction> {
        let opts = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.db.begin_with_options(opts).await?)
    }

    async fn begin_within(&self, limit: Duration) -> AppResult<DatabaseTransaction> {
        let txn = self.begin_immediate().await?;
        self.announce_within(&txn, limit).await?;
        Ok(txn)
    }

    async fn announce_within(&self, txn: &DatabaseTransaction, limit: Duration) -> AppResult<()> {
        if self.is_postgres() {
            let sql = if self.transaction_timeout {
                horizon::BEGIN_WRITE_BOUNDED
            } else {
                horizon::BEGIN_WRITE
            };
            let millis = limit.as_millis().max(1).to_string();
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                sql,
                [millis.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Commits a write transaction whose last history event is `event`, then waits until
    /// that event is readable (see `await_visible`). Only a failed COMMIT is an error.
    pub async fn commit(
        &self,
        txn: DatabaseTransaction,
        event: &history_event::Model,
    ) -> AppResult<()> {
        self.commit_then(txn, self.await_visible(event.tx_id)).await
    }

    /// Commits, then runs `wait`. Once COMMIT succeeded the change is in the database, so
    /// a failure of what follows is logged, never returned: a caller that took it for a
    /// failed write would undo work the rows already record (a code operation's git step).
    async fn commit_then(
        &self,
        txn: DatabaseTransaction,
        wait: impl Future<Output = AppResult<()>>,
    ) -> AppResult<()> {
        txn.commit().await?;
        if let Err(err) = wait.await {
            tracing::warn!(
                ?err,
                "committed, but waiting for the event to be readable failed"
            );
        }
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// A signal that changes after every `commit` of a history event, once the event is
    /// readable: the live fan-out (`events`) wakes on it instead of polling.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Applies pending migrations. On PostgreSQL an advisory lock keeps two processes
    /// from migrating the same database at once.
    pub async fn migrate(&self) -> AppResult<()> {
        if self.is_postgres() {
            // The lock is per session: hold one connection for lock, migrate, unlock.
            let conn = self.db.begin().await?;
            conn.execute_unprepared("SELECT pg_advisory_xact_lock(7262736900)")
                .await?;
            migration::Migrator::up(&conn, None).await?;
            conn.commit().await?;
        } else {
            migration::Migrator::up(&self.db, None).await?;
        }
        Ok(())
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    /// Waits until the history event written by transaction `tx_id` is readable by every
    /// timeline reader (PostgreSQL readers stop below the oldest makima writer in
    /// flight), so a client that saw a mutation's response sees its event in the
    /// timeline. Bounded: an older makima writer still in flight delays visibility,
    /// never the response for long.
    pub async fn await_visible(&self, tx_id: i64) -> AppResult<()> {
        if !self.is_postgres() {
            return Ok(());
        }
        let mut delay = Duration::from_micros(200);
        for _ in 0..40 {
            let horizon = self.horizon(None).await?;
            if horizon > tx_id {
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
        }
        tracing::warn!(
            tx_id,
            "history event not yet visible: an older makima write transaction is in flight"
        );
        Ok(())
    }

    /// The timeline horizon now (PostgreSQL), no lower than the floor, which it raises;
    /// or the one of a given snapshot (a test's, which says nothing about the floor).
    async fn horizon(&self, snapshot: Option<&str>) -> AppResult<i64> {
        let floor = self.floor.get();
        let stmt = match snapshot {
            None => Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                format!("SELECT {} AS horizon", horizon::HORIZON),
                [floor.into()],
            ),
            Some(s) => Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                format!("SELECT {} AS horizon", horizon::HORIZON_OF_SNAPSHOT),
                [floor.into(), s.into()],
            ),
        };
        let horizon: i64 = self
            .db
            .query_one_raw(stmt)
            .await?
            .ok_or_else(|| AppError::internal("no horizon row"))?
            .try_get("", "horizon")?;
        if snapshot.is_none() {
            self.floor.raise(horizon);
        }
        Ok(horizon)
    }

    /// The horizon a reader whose statement snapshot was `snapshot` (`xmin:xmax:xip,…`)
    /// would use. For tests: a snapshot listing a transaction that has since ended is
    /// what a reader sees when that transaction ends between its snapshot and its read
    /// of the lock table, a race too narrow to provoke on demand.
    #[doc(hidden)]
    pub async fn horizon_of_snapshot(&self, snapshot: &str) -> AppResult<i64> {
        self.horizon(Some(snapshot)).await
    }
}

/// `server_version_num` of a PostgreSQL server (e.g. 150020).
async fn server_version(db: &DatabaseConnection) -> AppResult<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT current_setting('server_version_num')::bigint AS v",
        ))
        .await?
        .ok_or_else(|| AppError::internal("no server version row"))?;
    Ok(row.try_get("", "v")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_after_a_successful_commit_is_a_success() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&StoreOptions::new(url)).await.unwrap();
        store.migrate().await.unwrap();
        let txn = store.begin_write().await.unwrap();
        owners::insert(&txn, "committed").await.unwrap();
        let commits = store.commits();
        let result = store
            .commit_then(txn, async { Err(AppError::internal("connection lost")) })
            .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(commits.has_changed().unwrap(), "listeners are woken");
        let found = owners::find_by_name(store.db(), "committed").await.unwrap();
        assert!(found.is_some());
    }
}
