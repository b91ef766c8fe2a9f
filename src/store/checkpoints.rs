//! Checkpoints and the conversation snapshots they point at.

use super::OwnerScope;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Select,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::checkpoint::{Column, Entity, Model};
use crate::entities::conversation_snapshot;
use crate::entities::ids::{CheckpointId, ContractId, OwnerId, SnapshotId, TaskId};
use crate::error::AppResult;

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> AppResult<Model> {
    Ok(Entity::insert(model.into_active_model())
        .exec_with_returning(db)
        .await?)
}

pub async fn insert_snapshot(
    db: &impl ConnectionTrait,
    model: conversation_snapshot::Model,
) -> AppResult<()> {
    conversation_snapshot::Entity::insert(model.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn by_id(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: CheckpointId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find_by_id(id)
        .filter(Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

pub async fn by_ids(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    ids: &[CheckpointId],
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

/// A task's checkpoints in the order they were taken.
pub struct ByNumber;

impl Keyset for ByNumber {
    type Entity = Entity;
    type Key = i32;
    fn after(k: &i32) -> Condition {
        Condition::all().add(Column::Number.gt(*k))
    }
    fn before(k: &i32) -> Condition {
        Condition::all().add(Column::Number.lt(*k))
    }
    fn order_columns() -> Vec<Column> {
        vec![Column::Number]
    }
}

/// A contract's checkpoints across its tasks, oldest first (ids are time-ordered).
struct ById;

impl Keyset for ById {
    type Entity = Entity;
    type Key = CheckpointId;
    fn after(k: &CheckpointId) -> Condition {
        Condition::all().add(Column::Id.gt(*k))
    }
    fn before(k: &CheckpointId) -> Condition {
        Condition::all().add(Column::Id.lt(*k))
    }
    fn order_columns() -> Vec<Column> {
        vec![Column::Id]
    }
}

pub fn of_tasks(owner_id: OwnerId, task_ids: &[TaskId]) -> Select<Entity> {
    Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::TaskId.is_in(task_ids.iter().copied()))
}

pub async fn task_page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
    window: &Window<i32>,
) -> AppResult<Paged<Model>> {
    let (db, owner_id) = scope.parts();
    keyset::page::<ByNumber>(db, of_tasks(owner_id, &[task_id]), window).await
}

/// The first or last `limit + 1` checkpoints of each task, in one statement.
pub async fn first_per_task(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_ids: &[TaskId],
    limit: u64,
    from_end: bool,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    let base = Entity::find().filter(Column::OwnerId.eq(owner_id));
    keyset::per_parent::<ByNumber, _>(db, base, Column::TaskId, task_ids, limit, from_end).await
}

fn of_contract(owner_id: OwnerId, contract_id: ContractId) -> Select<Entity> {
    use crate::entities::task;
    use sea_orm::QuerySelect;
    let tasks = task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .filter(task::Column::OwnerId.eq(owner_id))
        .filter(task::Column::ContractId.eq(contract_id));
    Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::TaskId.in_subquery(sea_orm::QueryTrait::into_query(tasks)))
}

pub async fn contract_page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    contract_id: ContractId,
    window: &Window<CheckpointId>,
) -> AppResult<Paged<Model>> {
    let (db, owner_id) = scope.parts();
    keyset::page::<ById>(db, of_contract(owner_id, contract_id), window).await
}

pub async fn count_of_task(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    Ok(of_tasks(owner_id, &[task_id]).count(db).await?)
}

pub async fn count_of_contract(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    contract_id: ContractId,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    Ok(of_contract(owner_id, contract_id).count(db).await?)
}

pub async fn snapshot(
    db: &impl ConnectionTrait,
    id: SnapshotId,
) -> AppResult<conversation_snapshot::Model> {
    conversation_snapshot::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| crate::error::AppError::internal(format!("snapshot {id} is missing")))
}

/// A task's checkpoints with their snapshots, newest first.
pub async fn with_snapshots_newest_first(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
) -> AppResult<Vec<(Model, conversation_snapshot::Model)>> {
    let (db, owner_id) = scope.parts();
    use sea_orm::QueryOrder;
    let rows = of_tasks(owner_id, &[task_id])
        .order_by_desc(Column::Number)
        .find_also_related(conversation_snapshot::Entity)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(c, s)| {
            let s = s.ok_or_else(|| {
                crate::error::AppError::internal(format!("snapshot of {} missing", c.id))
            })?;
            Ok((c, s))
        })
        .collect()
}
