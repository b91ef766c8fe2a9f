use sea_orm::entity::prelude::*;

use crate::entities::ids::{ApiKeyId, DaemonId, OwnerId};

/// An API key, stored only as the hex SHA-256 of the secret.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ApiKeyId,
    pub owner_id: OwnerId,
    pub key_hash: String,
    /// Set for a daemon key: the key acts as this daemon, not as the owner.
    pub daemon_id: Option<DaemonId>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
