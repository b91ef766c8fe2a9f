use async_graphql::{Json, Object, Result};
use chrono::{DateTime, Utc};

use crate::entities::kinds::MessageRole;
use crate::entities::message;
use crate::graphql::{connection::connection, json, to_id};

/// One message of a conversation.
pub struct Message(pub message::Model);

/// One message of a conversation.
#[Object]
impl Message {
    /// Unique id of the message.
    async fn id(&self) -> async_graphql::ID {
        to_id(self.0.id)
    }
    /// 0-based position in the conversation.
    async fn index(&self) -> i32 {
        self.0.position
    }
    /// Who wrote it.
    async fn role(&self) -> MessageRole {
        self.0.role
    }
    /// Content blocks as the agent produced them (text, tool_use, tool_result, …).
    async fn content(&self) -> Result<Json<serde_json::Value>> {
        Ok(json(&self.0.content)?)
    }
    /// The contract phase the message was written in (supervisor conversations).
    async fn phase(&self) -> Option<&str> {
        self.0.phase.as_deref()
    }
    /// When the message was stored.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    MessageConnection,
    MessageEdge,
    Message,
    "conversation messages"
);
