//! Code operation intents (see `entities::code_operation_intent`).

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

use crate::entities::code_operation_intent::{Column, Entity, Model};
use crate::entities::ids::{CodeOperationId, TaskId};
use crate::error::AppResult;

pub async fn insert(db: &impl ConnectionTrait, model: Model) -> AppResult<()> {
    Entity::insert(model.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn by_id(db: &impl ConnectionTrait, id: CodeOperationId) -> AppResult<Option<Model>> {
    Ok(Entity::find_by_id(id).one(db).await?)
}

/// Deletes an intent; returns whether it was still there.
pub async fn delete(db: &impl ConnectionTrait, id: CodeOperationId) -> AppResult<bool> {
    Ok(Entity::delete_by_id(id).exec(db).await?.rows_affected == 1)
}

/// Every intent left, oldest first.
pub async fn all(db: &impl ConnectionTrait) -> AppResult<Vec<Model>> {
    Ok(Entity::find().order_by_asc(Column::Id).all(db).await?)
}

/// Whether `task_id` has an intent (for tests and checks).
pub async fn any_for_task(db: &impl ConnectionTrait, task_id: TaskId) -> AppResult<bool> {
    Ok(Entity::find()
        .filter(Column::TaskId.eq(task_id))
        .one(db)
        .await?
        .is_some())
}
