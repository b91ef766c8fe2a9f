//! Code operation rows.

use super::OwnerScope;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::code_operation::{Column, Entity, Model};
use crate::entities::ids::{CodeOperationId, DaemonId, TaskId};
use crate::entities::kinds::CodeOperationStatus;
use crate::error::AppResult;

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> AppResult<Model> {
    Ok(Entity::insert(model.into_active_model())
        .exec_with_returning(db)
        .await?)
}

pub async fn by_id(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: CodeOperationId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find_by_id(id)
        .filter(Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

/// Whether `task_id` has an operation recorded after `id` (ids are time-ordered).
pub async fn any_after(
    db: &impl ConnectionTrait,
    task_id: TaskId,
    id: CodeOperationId,
) -> AppResult<bool> {
    Ok(Entity::find()
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Id.gt(id))
        .one(db)
        .await?
        .is_some())
}

/// The operation row, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; a
/// SQLite write transaction already excludes other writers): finishing a daemon's
/// operation happens once.
pub async fn lock(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: CodeOperationId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    let mut q = Entity::find_by_id(id).filter(Column::OwnerId.eq(owner_id));
    if db.get_database_backend() == DatabaseBackend::Postgres {
        q = q.lock_exclusive();
    }
    Ok(q.one(db).await?)
}

pub async fn update(db: &impl ConnectionTrait, model: Model) -> AppResult<Model> {
    Ok(model.into_active_model().reset_all().update(db).await?)
}

/// Whether `task_id` has an operation that is not finished (QUEUED on its daemon).
pub async fn unfinished(db: &impl ConnectionTrait, task_id: TaskId) -> AppResult<bool> {
    Ok(Entity::find()
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Status.eq(CodeOperationStatus::Queued))
        .one(db)
        .await?
        .is_some())
}

/// Records a daemon's report on its QUEUED operation, once: false when the operation
/// is not the daemon's, not QUEUED, or already reported.
pub async fn report(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: CodeOperationId,
    daemon_id: DaemonId,
    status: CodeOperationStatus,
    commit: Option<&str>,
    error: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<bool> {
    let (db, owner_id) = scope.parts();
    let done = Entity::update_many()
        .col_expr(Column::ReportedStatus, Expr::value(status))
        .col_expr(
            Column::ReportedCommit,
            Expr::value(commit.map(str::to_owned)),
        )
        .col_expr(Column::ReportedError, Expr::value(error.map(str::to_owned)))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Id.eq(id))
        .filter(Column::DaemonId.eq(daemon_id))
        .filter(Column::Status.eq(CodeOperationStatus::Queued))
        .filter(Column::ReportedStatus.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// The daemon's QUEUED operations it has not reported yet, oldest first.
pub async fn queued_for(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    daemon_id: DaemonId,
    limit: u64,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::DaemonId.eq(daemon_id))
        .filter(Column::Status.eq(CodeOperationStatus::Queued))
        .filter(Column::ReportedStatus.is_null())
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// QUEUED operations of every owner whose deadline passed before `before`, oldest
/// first: the sweep's work.
pub async fn overdue(
    db: &impl ConnectionTrait,
    before: chrono::DateTime<chrono::Utc>,
    limit: u64,
) -> AppResult<Vec<Model>> {
    Ok(Entity::find()
        .filter(Column::Status.eq(CodeOperationStatus::Queued))
        .filter(Column::Deadline.lt(before))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
