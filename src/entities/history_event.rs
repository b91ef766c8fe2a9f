use sea_orm::entity::prelude::*;

use crate::entities::ids::{ContractId, HistoryEventId, OwnerId, TaskId};
use crate::entities::kinds::HistoryEventType;

/// One timeline entry. `(tx_id, seq)` is the commit-ordered cursor (see the migration).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "history_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub tx_id: i64,
    pub id: HistoryEventId,
    pub owner_id: OwnerId,
    pub event_type: HistoryEventType,
    pub contract_id: Option<ContractId>,
    pub task_id: Option<TaskId>,
    pub phase: Option<String>,
    /// Serialised JSON payload.
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
