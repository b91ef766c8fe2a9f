//! Owners and their API keys.

use super::OwnerScope;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};

use crate::entities::ids::{ApiKeyId, DaemonId, OwnerId};
use crate::entities::{api_key, owner};
use crate::error::AppResult;
use crate::time::now;

pub async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> AppResult<Option<owner::Model>> {
    Ok(owner::Entity::find()
        .filter(owner::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// The owner named `name`, inserted when there is none. Names are unique, so of two
/// racing first inserts one fails rather than making a second owner.
pub async fn find_or_insert(db: &impl ConnectionTrait, name: &str) -> AppResult<owner::Model> {
    match find_by_name(db, name).await? {
        Some(owner) => Ok(owner),
        None => insert(db, name).await,
    }
}

pub async fn insert(db: &impl ConnectionTrait, name: &str) -> AppResult<owner::Model> {
    let model = owner::ActiveModel {
        id: Set(OwnerId::new()),
        name: Set(name.to_owned()),
        created_at: Set(now()),
    };
    Ok(owner::Entity::insert(model).exec_with_returning(db).await?)
}

pub async fn insert_key(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    key_hash: &str,
    daemon_id: Option<DaemonId>,
) -> AppResult<()> {
    let (db, owner_id) = scope.parts();
    let model = api_key::ActiveModel {
        id: Set(ApiKeyId::new()),
        owner_id: Set(owner_id),
        key_hash: Set(key_hash.to_owned()),
        daemon_id: Set(daemon_id),
        created_at: Set(now()),
    };
    api_key::Entity::insert(model)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The owner of the key with this hash, and the daemon it acts as (a daemon key).
pub async fn by_key_hash(
    db: &impl ConnectionTrait,
    key_hash: &str,
) -> AppResult<Option<(owner::Model, Option<DaemonId>)>> {
    let Some(key) = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(key_hash))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let owner = owner::Entity::find_by_id(key.owner_id).one(db).await?;
    Ok(owner.map(|o| (o, key.daemon_id)))
}

pub async fn key_count(db: &impl ConnectionTrait) -> AppResult<u64> {
    Ok(api_key::Entity::find().count(db).await?)
}
