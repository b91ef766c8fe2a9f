use async_graphql::{Context, Object, Result};

use super::{checkpoint::Checkpoint, task::Task};
use crate::entities::ids::{CheckpointId, TaskId};
use crate::error::AppError;
use crate::graphql::loaders;

/// Where a forked task came from.
pub struct ForkOrigin {
    pub task_id: TaskId,
    pub checkpoint_id: Option<CheckpointId>,
    pub message_count: i32,
}

/// Where a forked task came from.
#[Object]
impl ForkOrigin {
    /// The task the fork was made from.
    async fn task(&self, ctx: &Context<'_>) -> Result<Task> {
        let task = loaders(ctx).tasks.load_one(self.task_id).await?;
        Ok(Task(task.ok_or_else(|| {
            AppError::internal("fork source missing")
        })?))
    }
    /// The checkpoint the fork was made from, if any.
    async fn checkpoint(&self, ctx: &Context<'_>) -> Result<Option<Checkpoint>> {
        let Some(id) = self.checkpoint_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).checkpoints.load_one(id).await?.map(Checkpoint))
    }
    /// Number of the source task's messages the fork starts with.
    async fn message_count(&self) -> i32 {
        self.message_count
    }
}
