//! Tasks: rows, lists and the per-task lock that serialises writers of one task.

use super::OwnerScope;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QuerySelect, Select,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::ids::{ContractId, ConversationId, DaemonId, OwnerId, TaskId};
use crate::entities::kinds::TaskStatus;
use crate::entities::task::{Column, Entity, Model};
use crate::error::AppResult;

/// A new PENDING task with no contract, repository, lineage, events or checkpoints;
/// callers set what differs with struct update syntax.
pub fn new_row(
    owner_id: OwnerId,
    id: TaskId,
    name: String,
    conversation_id: ConversationId,
    at: chrono::DateTime<chrono::Utc>,
) -> Model {
    Model {
        id,
        owner_id,
        contract_id: None,
        parent_task_id: None,
        is_supervisor: false,
        name,
        plan: None,
        status: TaskStatus::Pending,
        daemon_id: None,
        repository: None,
        worktree_path: None,
        branch: None,
        base_branch: None,
        forked_from_task_id: None,
        fork_checkpoint_id: None,
        fork_message_count: None,
        continued_from_task_id: None,
        conversation_id,
        event_count: 0,
        checkpoint_count: 0,
        created_at: at,
        updated_at: at,
        started_at: None,
        completed_at: None,
        code_on_daemon: false,
    }
}

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> AppResult<Model> {
    Ok(Entity::insert(model.into_active_model())
        .exec_with_returning(db)
        .await?)
}

pub async fn by_id(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: TaskId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find_by_id(id)
        .filter(Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

/// The task row, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; on
/// SQLite the `IMMEDIATE` write transaction already excludes other writers). Every
/// writer of a task's conversation, events or status goes through here first, so an
/// append racing a rewind sees one state or the other, never a mix.
pub async fn lock(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: TaskId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find_by_id(id)
        .filter(Column::OwnerId.eq(owner_id))
        .lock_exclusive()
        .one(db)
        .await?)
}

pub async fn by_ids(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    ids: &[TaskId],
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

pub async fn update(db: &impl ConnectionTrait, model: Model) -> AppResult<Model> {
    Ok(model.into_active_model().reset_all().update(db).await?)
}

/// Whether another owner's task already uses this repository or worktree path.
pub async fn path_used_by_other_owner(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    path: &str,
) -> AppResult<bool> {
    let (db, owner_id) = scope.parts();
    paths_used_by_other_owner(OwnerScope::new(db, owner_id), &[path.to_owned()]).await
}

/// Whether another owner's task uses any of `paths` as its repository or worktree.
pub async fn paths_used_by_other_owner(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    paths: &[String],
) -> AppResult<bool> {
    let (db, owner_id) = scope.parts();
    if paths.is_empty() {
        return Ok(false);
    }
    let n = Entity::find()
        .filter(Column::OwnerId.ne(owner_id))
        .filter(
            Condition::any()
                .add(Column::Repository.is_in(paths.iter().cloned()))
                .add(Column::WorktreePath.is_in(paths.iter().cloned())),
        )
        .limit(1)
        .count(db)
        .await?;
    Ok(n > 0)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TaskFilter {
    pub contract_id: Option<ContractId>,
    pub parent_task_id: Option<TaskId>,
    pub forked_from_task_id: Option<TaskId>,
    pub status: Option<Vec<TaskStatus>>,
    pub is_supervisor: Option<bool>,
    pub daemon_id: Option<DaemonId>,
}

pub struct ById;

impl Keyset for ById {
    type Entity = Entity;
    type Key = TaskId;
    fn after(k: &TaskId) -> Condition {
        Condition::all().add(Column::Id.gt(*k))
    }
    fn before(k: &TaskId) -> Condition {
        Condition::all().add(Column::Id.lt(*k))
    }
    fn order_columns() -> Vec<Column> {
        vec![Column::Id]
    }
}

pub fn filtered(owner_id: OwnerId, filter: &TaskFilter) -> Select<Entity> {
    let mut q = Entity::find().filter(Column::OwnerId.eq(owner_id));
    if let Some(c) = filter.contract_id {
        q = q.filter(Column::ContractId.eq(c));
    }
    if let Some(p) = filter.parent_task_id {
        q = q.filter(Column::ParentTaskId.eq(p));
    }
    if let Some(f) = filter.forked_from_task_id {
        q = q.filter(Column::ForkedFromTaskId.eq(f));
    }
    if let Some(statuses) = &filter.status {
        q = q.filter(Column::Status.is_in(statuses.iter().copied()));
    }
    if let Some(s) = filter.is_supervisor {
        q = q.filter(Column::IsSupervisor.eq(s));
    }
    if let Some(d) = filter.daemon_id {
        q = q.filter(Column::DaemonId.eq(d));
    }
    q
}

pub async fn page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &TaskFilter,
    window: &Window<TaskId>,
) -> AppResult<Paged<Model>> {
    let (db, owner_id) = scope.parts();
    keyset::page::<ById>(db, filtered(owner_id, filter), window).await
}

/// The first or last `limit + 1` tasks of each contract matching `filter` (whose own
/// `contract_id` is left out), in one statement.
pub async fn first_per_contract(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    contract_ids: &[ContractId],
    filter: &TaskFilter,
    limit: u64,
    from_end: bool,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    let filter = TaskFilter {
        contract_id: None,
        ..filter.clone()
    };
    let base = filtered(owner_id, &filter);
    keyset::per_parent::<ById, _>(db, base, Column::ContractId, contract_ids, limit, from_end).await
}

pub async fn count(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &TaskFilter,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    Ok(filtered(owner_id, filter).count(db).await?)
}
