//! Task event streams, keyed (task, sequence) with a gapless per-task sequence.

use super::OwnerScope;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Select,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::ids::{OwnerId, TaskId};
use crate::entities::kinds::TaskEventType;
use crate::entities::task_event::{Column, Entity, Model};
use crate::error::AppResult;

pub async fn insert_many(db: &impl ConnectionTrait, events: Vec<Model>) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    Entity::insert_many(events.into_iter().map(IntoActiveModel::into_active_model))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

struct BySequence;

impl Keyset for BySequence {
    type Entity = Entity;
    type Key = i64;
    fn after(k: &i64) -> Condition {
        Condition::all().add(Column::Sequence.gt(*k))
    }
    fn before(k: &i64) -> Condition {
        Condition::all().add(Column::Sequence.lt(*k))
    }
    fn order_columns() -> Vec<Column> {
        vec![Column::Sequence]
    }
}

fn of_task(owner_id: OwnerId, task_id: TaskId, types: Option<&[TaskEventType]>) -> Select<Entity> {
    let mut q = Entity::find()
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::OwnerId.eq(owner_id));
    if let Some(types) = types {
        q = q.filter(Column::EventType.is_in(types.iter().copied()));
    }
    q
}

pub async fn page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
    types: Option<&[TaskEventType]>,
    window: &Window<i64>,
) -> AppResult<Paged<Model>> {
    let (db, owner_id) = scope.parts();
    if types.is_some_and(|t| t.is_empty()) {
        return Ok(Paged {
            items: vec![],
            has_previous: false,
            has_next: false,
        });
    }
    keyset::page::<BySequence>(db, of_task(owner_id, task_id, types), window).await
}

/// The first or last `limit + 1` events of each task, in one statement.
pub async fn first_per_task(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_ids: &[TaskId],
    types: Option<&[TaskEventType]>,
    limit: u64,
    from_end: bool,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    if types.is_some_and(|t| t.is_empty()) {
        return Ok(vec![]);
    }
    let mut base = Entity::find().filter(Column::OwnerId.eq(owner_id));
    if let Some(types) = types {
        base = base.filter(Column::EventType.is_in(types.iter().map(|t| t.as_str())));
    }
    keyset::per_parent::<BySequence, _>(db, base, Column::TaskId, task_ids, limit, from_end).await
}

pub async fn count(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
    types: Option<&[TaskEventType]>,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    if types.is_some_and(|t| t.is_empty()) {
        return Ok(0);
    }
    Ok(of_task(owner_id, task_id, types).count(db).await?)
}

/// Events with sequence in `from..=to`, in order (the result of one append).
pub async fn range(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
    from: i64,
    to: i64,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    use sea_orm::QueryOrder;
    Ok(of_task(owner_id, task_id, None)
        .filter(Column::Sequence.between(from, to))
        .order_by_asc(Column::Sequence)
        .all(db)
        .await?)
}
