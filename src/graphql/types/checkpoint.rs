use async_graphql::{Context, Json, Object, Result};
use chrono::{DateTime, Utc};

use super::task::Task;
use crate::entities::checkpoint;
use crate::error::AppError;
use crate::graphql::{connection::connection, json, loaders, to_id};

/// A git commit together with the task's conversation position when it was taken.
pub struct Checkpoint(pub checkpoint::Model);

/// A git commit together with the task's conversation position when it was taken.
#[Object]
impl Checkpoint {
    /// Unique id of the checkpoint.
    async fn id(&self) -> async_graphql::ID {
        to_id(self.0.id)
    }
    /// The task the checkpoint belongs to.
    async fn task(&self, ctx: &Context<'_>) -> Result<Task> {
        let task = loaders(ctx).tasks.load_one(self.0.task_id).await?;
        Ok(Task(task.ok_or_else(|| {
            AppError::internal("checkpoint without task")
        })?))
    }
    /// 1-based within its task.
    async fn number(&self) -> i32 {
        self.0.number
    }
    /// The commit the checkpoint names.
    async fn commit_sha(&self) -> &str {
        &self.0.commit_sha
    }
    /// The branch the commit was made on, if reported.
    async fn branch(&self) -> Option<&str> {
        self.0.branch.as_deref()
    }
    /// What the checkpoint is about.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// Files changed since the previous checkpoint, as reported.
    async fn files_changed(&self) -> Result<Option<Json<serde_json::Value>>> {
        Ok(self.0.files_changed.as_deref().map(json).transpose()?)
    }
    /// How many conversation messages the task had when the checkpoint was taken.
    async fn message_count(&self) -> i32 {
        self.0.message_count
    }
    /// When the checkpoint was recorded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(
    CheckpointConnection,
    CheckpointEdge,
    Checkpoint,
    "checkpoints"
);
