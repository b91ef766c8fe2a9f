use sea_orm::entity::prelude::*;

use crate::entities::ids::{ConversationId, OwnerId, SnapshotId, TaskId};

/// A position in a conversation (segment + length), never a copy of its messages.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_snapshots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SnapshotId,
    pub owner_id: OwnerId,
    pub task_id: TaskId,
    pub conversation_id: ConversationId,
    pub length: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
