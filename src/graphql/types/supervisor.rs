use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};

use super::task::Task;
use crate::entities::kinds::TaskStatus;
use crate::entities::{supervisor_state, task};
use crate::error::AppError;
use crate::graphql::loaders;

/// The agent that drives a contract through its phases.
pub struct Supervisor {
    pub state: supervisor_state::Model,
    pub phase: String,
}

impl Supervisor {
    async fn task_model(&self, ctx: &Context<'_>) -> Result<task::Model> {
        let task = loaders(ctx).tasks.load_one(self.state.task_id).await?;
        Ok(task.ok_or_else(|| AppError::internal("supervisor task missing"))?)
    }
}

/// The agent that drives a contract through its phases.
#[Object]
impl Supervisor {
    /// The supervisor's task (its status, conversation and checkpoints).
    async fn task(&self, ctx: &Context<'_>) -> Result<Task> {
        Ok(Task(self.task_model(ctx).await?))
    }
    /// The supervisor task's status.
    async fn status(&self, ctx: &Context<'_>) -> Result<TaskStatus> {
        Ok(self.task_model(ctx).await?.status)
    }
    /// The contract's current phase.
    async fn phase(&self) -> &str {
        &self.phase
    }
    /// Time of the supervisor's latest message or status change.
    async fn last_activity(&self) -> DateTime<Utc> {
        self.state.last_activity
    }
    /// Messages in the supervisor's conversation (its current branch).
    async fn message_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let task = self.task_model(ctx).await?;
        let head = loaders(ctx)
            .conversations
            .load_one(task.conversation_id)
            .await?;
        Ok(head
            .ok_or_else(|| AppError::internal("conversation missing"))?
            .length)
    }
}
