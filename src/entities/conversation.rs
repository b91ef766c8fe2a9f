use sea_orm::entity::prelude::*;

use crate::entities::ids::{ConversationId, OwnerId, TaskId};

/// One segment of a structurally shared conversation log: the first `base_length`
/// messages come from `parent_id`'s visible list, positions `base_length..length` are
/// this segment's own rows in `messages`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ConversationId,
    pub owner_id: OwnerId,
    pub task_id: TaskId,
    pub parent_id: Option<ConversationId>,
    pub base_length: i32,
    pub length: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
