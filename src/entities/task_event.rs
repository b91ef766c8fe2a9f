use sea_orm::entity::prelude::*;

use crate::entities::ids::{OwnerId, TaskEventId, TaskId};
use crate::entities::kinds::TaskEventType;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: TaskId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    pub id: TaskEventId,
    pub owner_id: OwnerId,
    pub event_type: TaskEventType,
    /// Serialised JSON payload.
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
