//! The cross-process lock of a task (PostgreSQL advisory locks): a code operation holds
//! it from before its git step until it is recorded, so other makima processes wait for
//! it and their startup recovery leaves its intent alone. SQLite has one process per
//! database file; its callers rely on the in-process task lock alone.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement};

use crate::entities::ids::TaskId;
use crate::error::{AppError, AppResult};

/// The advisory-lock key of a task (one-key form: apart from the timeline's two-key locks).
pub fn key(task_id: TaskId) -> i64 {
    let low: [u8; 8] = task_id.0.as_bytes()[8..16]
        .try_into()
        .expect("a UUID has 16 bytes");
    i64::from_be_bytes(low)
}

/// Waits for and takes the task's lock until `txn` ends (PostgreSQL; a no-op elsewhere).
pub async fn lock(txn: &DatabaseTransaction, task_id: TaskId) -> AppResult<()> {
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    txn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key(task_id).into()],
    ))
    .await?;
    Ok(())
}

/// Takes the task's lock until `txn` ends if no one holds it; whether it did (always
/// true off PostgreSQL).
pub async fn try_lock(txn: &DatabaseTransaction, task_id: TaskId) -> AppResult<bool> {
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(true);
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [key(task_id).into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal("no lock row"))?;
    Ok(row.try_get("", "locked")?)
}
