use sea_orm::entity::prelude::*;

use crate::entities::ids::{ConversationId, MessageId, OwnerId};
use crate::entities::kinds::MessageRole;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: ConversationId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub id: MessageId,
    pub owner_id: OwnerId,
    pub role: MessageRole,
    /// Serialised JSON content blocks.
    pub content: String,
    pub phase: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
