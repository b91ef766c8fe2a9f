//! Remembered results of ingestion calls made with an idempotency key.

use super::OwnerScope;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};

use crate::entities::idempotency_key::{Column, Entity, Model};
use crate::entities::ids::TaskId;
use crate::error::AppResult;
use crate::time::now;

pub async fn find(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    mutation: &str,
    task_id: TaskId,
    key: &str,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Mutation.eq(mutation))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::Key.eq(key))
        .one(db)
        .await?)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    mutation: &str,
    task_id: TaskId,
    key: &str,
    request_hash: String,
    result: String,
) -> AppResult<()> {
    let (db, owner_id) = scope.parts();
    let model = Model {
        owner_id,
        mutation: mutation.to_owned(),
        task_id,
        key: key.to_owned(),
        request_hash,
        result,
        created_at: now(),
    };
    Entity::insert(model.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}
