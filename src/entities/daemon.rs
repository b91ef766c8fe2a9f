use sea_orm::entity::prelude::*;

use crate::entities::ids::{DaemonId, OwnerId};

/// A worker machine of an owner that runs tasks (see `docs/daemons.md`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "daemons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: DaemonId,
    pub owner_id: OwnerId,
    /// Unique among the owner's daemons.
    pub name: String,
    /// What the daemon last reported running.
    pub version: Option<String>,
    /// A JSON array of strings, as last reported.
    pub capabilities: String,
    pub last_seen_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
