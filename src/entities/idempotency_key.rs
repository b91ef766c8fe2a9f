use sea_orm::entity::prelude::*;

use crate::entities::ids::{OwnerId, TaskId};

/// The remembered outcome of an ingestion call made with an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_id: OwnerId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub mutation: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: TaskId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub request_hash: String,
    /// Serialised JSON describing the stored result.
    pub result: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
