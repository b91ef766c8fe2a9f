use sea_orm::entity::prelude::*;

use crate::entities::kinds::HistoryEventType;

/// One timeline entry. `(tx_id, seq)` is the commit-ordered cursor (see the migration).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "history_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub tx_id: i64,
    pub id: Uuid,
    pub owner_id: Uuid,
    pub event_type: HistoryEventType,
    pub contract_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub phase: Option<String>,
    /// Serialised JSON payload.
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
