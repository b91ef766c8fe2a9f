use async_graphql::{Json, Object, Result};
use chrono::{DateTime, Utc};

use crate::entities::kinds::TaskEventType;
use crate::entities::task_event;
use crate::graphql::{connection::connection, json, to_id};

/// One entry of a task's output and tool-call stream.
pub struct TaskEvent(pub task_event::Model);

/// One entry of a task's output and tool-call stream.
#[Object]
impl TaskEvent {
    /// Unique id of the event.
    async fn id(&self) -> async_graphql::ID {
        to_id(self.0.id)
    }
    /// 1-based, gapless position in the task's event stream.
    async fn sequence(&self) -> i32 {
        self.0.sequence.min(i32::MAX as i64) as i32
    }
    /// What kind of entry this is.
    #[graphql(name = "type")]
    async fn event_type(&self) -> TaskEventType {
        self.0.event_type
    }
    /// The payload as the daemon reported it.
    async fn data(&self) -> Result<Json<serde_json::Value>> {
        Ok(json(&self.0.data)?)
    }
    /// When the event was stored.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(TaskEventConnection, TaskEventEdge, TaskEvent, "task events");
