//! Daemons: rows, lists, heartbeats, and the task claims and status sweeps that depend
//! on them.

use super::OwnerScope;
use sea_orm::sea_query::{Condition, Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::daemon::{Column, Entity, Model};
use crate::entities::ids::{DaemonId, OwnerId, TaskId};
use crate::entities::kinds::TaskStatus;
use crate::entities::task;
use crate::error::AppResult;
use crate::time::now;

/// The owner's daemon named `name`, inserted when there is none. Names are unique per
/// owner, so of two racing first inserts one fails rather than making a second daemon.
pub async fn find_or_insert(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    name: &str,
) -> AppResult<Model> {
    let (db, owner_id) = scope.parts();
    let found = Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Name.eq(name))
        .one(db)
        .await?;
    if let Some(daemon) = found {
        return Ok(daemon);
    }
    let model = crate::entities::daemon::ActiveModel {
        id: Set(DaemonId::new()),
        owner_id: Set(owner_id),
        name: Set(name.to_owned()),
        version: Set(None),
        capabilities: Set("[]".into()),
        last_seen_at: Set(None),
        created_at: Set(now()),
    };
    Ok(Entity::insert(model).exec_with_returning(db).await?)
}

pub async fn by_id(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: DaemonId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find_by_id(id)
        .filter(Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

pub async fn by_ids(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    ids: &[DaemonId],
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

pub struct ById;

impl Keyset for ById {
    type Entity = Entity;
    type Key = DaemonId;
    fn after(k: &DaemonId) -> Condition {
        Condition::all().add(Column::Id.gt(*k))
    }
    fn before(k: &DaemonId) -> Condition {
        Condition::all().add(Column::Id.lt(*k))
    }
    fn order_columns() -> Vec<Column> {
        vec![Column::Id]
    }
}

/// A page of the owner's daemons, oldest first.
pub async fn page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    window: &Window<DaemonId>,
) -> AppResult<Paged<Model>> {
    let (db, owner_id) = scope.parts();
    let q = Entity::find().filter(Column::OwnerId.eq(owner_id));
    keyset::page::<ById>(db, q, window).await
}

pub async fn count(scope: OwnerScope<'_, impl ConnectionTrait>) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .count(db)
        .await?)
}

/// Records a heartbeat: the daemon was seen `at`, running `version` with `capabilities`
/// (a JSON array); `None` leaves a value as it was.
pub async fn heartbeat(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: DaemonId,
    version: Option<&str>,
    capabilities: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let (db, owner_id) = scope.parts();
    let mut update = Entity::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(at))
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Id.eq(id));
    if let Some(v) = version {
        update = update.col_expr(Column::Version, Expr::value(v));
    }
    if let Some(c) = capabilities {
        update = update.col_expr(Column::Capabilities, Expr::value(c));
    }
    update.exec(db).await?;
    Ok(())
}

/// Daemons of every owner last seen before `before` (or never) that still have RUNNING
/// tasks: the sweep's work, at most `limit` of them.
pub async fn silent_with_running_tasks(
    db: &impl ConnectionTrait,
    before: chrono::DateTime<chrono::Utc>,
    limit: u64,
) -> AppResult<Vec<Model>> {
    let running = task::Entity::find()
        .select_only()
        .column(task::Column::DaemonId)
        .filter(task::Column::Status.eq(TaskStatus::Running))
        .filter(task::Column::DaemonId.is_not_null())
        .into_query();
    Ok(Entity::find()
        .filter(
            Condition::any()
                .add(Column::LastSeenAt.lt(before))
                .add(Column::LastSeenAt.is_null()),
        )
        .filter(Column::Id.in_subquery(running))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The daemon's tasks in `status`.
pub async fn tasks_in_status(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    daemon_id: DaemonId,
    status: TaskStatus,
) -> AppResult<Vec<TaskId>> {
    let (db, owner_id) = scope.parts();
    Ok(task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .filter(task::Column::OwnerId.eq(owner_id))
        .filter(task::Column::DaemonId.eq(daemon_id))
        .filter(task::Column::Status.eq(status))
        .into_tuple()
        .all(db)
        .await?)
}

/// The owner's PENDING tasks assigned to `daemon_id` or to no daemon, oldest first.
fn claimable_by(owner_id: OwnerId, daemon_id: DaemonId) -> Select<task::Entity> {
    task::Entity::find()
        .filter(task::Column::OwnerId.eq(owner_id))
        .filter(task::Column::Status.eq(TaskStatus::Pending))
        .filter(
            Condition::any()
                .add(task::Column::DaemonId.eq(daemon_id))
                .add(task::Column::DaemonId.is_null()),
        )
        .order_by_asc(task::Column::Id)
}

/// What a daemon may claim or has been given: the owner's PENDING tasks assigned to
/// `daemon_id` or to no daemon, oldest first, at most `limit`.
pub async fn claimable(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    daemon_id: DaemonId,
    limit: u64,
) -> AppResult<Vec<task::Model>> {
    let (db, owner_id) = scope.parts();
    Ok(claimable_by(owner_id, daemon_id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The oldest PENDING task `daemon_id` may claim, locked until the transaction ends;
/// on PostgreSQL, tasks another claim has locked are skipped, so racing claimers take
/// different tasks instead of queueing on one.
pub async fn lock_next_claimable(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    daemon_id: DaemonId,
) -> AppResult<Option<TaskId>> {
    let (db, owner_id) = scope.parts();
    let mut q = claimable_by(owner_id, daemon_id)
        .select_only()
        .column(task::Column::Id)
        .limit(1);
    if db.get_database_backend() == DatabaseBackend::Postgres {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(q.into_tuple().one(db).await?)
}
