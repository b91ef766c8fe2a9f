//! Code operation rows.

use super::OwnerScope;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};

use crate::entities::code_operation::{Column, Entity, Model};
use crate::entities::ids::{CodeOperationId, TaskId};
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
