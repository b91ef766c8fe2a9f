use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use crate::domain::fork::{self, Fork};
use crate::graphql::types::checkpoint::Checkpoint;
use crate::graphql::types::code_operation::CodeOperation;
use crate::graphql::types::fork_origin::ForkOrigin;
use crate::graphql::types::task::Task;
use crate::graphql::{app, parse_id, parse_opt_id, viewer};

/// Exactly one of checkpointId and messageCount (0..=the source's length). The fork keeps the
/// source's contract, parent and repository, is never a supervisor, has no checkpoints of its
/// own, and gets a worktree only when a checkpoint applies (the given one, or the newest whose
/// snapshot is a prefix of the fork's conversation); else codeOperation and worktreePath are
/// null.
#[derive(InputObject)]
pub struct ForkTaskInput {
    /// The task to fork (it is not changed).
    pub task_id: ID,
    /// Fork at this checkpoint of the task.
    pub checkpoint_id: Option<ID>,
    /// Fork with the source's first messageCount messages.
    pub message_count: Option<i32>,
    /// Name of the fork (default "fork of <source name>").
    pub name: Option<String>,
    /// Branch of the fork's worktree (default makima/<fork id>).
    pub branch_name: Option<String>,
}

/// The fork.
#[derive(SimpleObject)]
pub struct ForkTaskPayload {
    /// The new task, PENDING.
    pub task: Task,
    /// Where it was forked from.
    pub origin: ForkOrigin,
    /// The WORKTREE operation, when a checkpoint applied.
    pub code_operation: Option<CodeOperation>,
}

/// Creates a branch at a checkpoint (a task with no repository: BAD_USER_INPUT).
#[derive(InputObject)]
pub struct BranchFromCheckpointInput {
    /// The task.
    pub task_id: ID,
    /// A checkpoint of the task.
    pub checkpoint_id: ID,
    /// The new branch; an existing branch of that name is CONFLICT.
    pub branch_name: String,
}

/// The created branch.
#[derive(SimpleObject)]
pub struct BranchFromCheckpointPayload {
    /// The new branch.
    pub branch: String,
    /// The commit it points at.
    pub commit_sha: String,
    /// The checkpoint it was created at.
    pub checkpoint: Checkpoint,
    /// The BRANCH operation.
    pub code_operation: Option<CodeOperation>,
}

#[derive(Default)]
pub struct ForkMutation;

#[Object]
impl ForkMutation {
    /// Forks a new task from any point of a task's history; writes TASK_FORKED.
    async fn fork_task(&self, ctx: &Context<'_>, input: ForkTaskInput) -> Result<ForkTaskPayload> {
        let fork = Fork {
            task_id: parse_id(&input.task_id, "task")?,
            checkpoint_id: parse_opt_id(input.checkpoint_id.as_ref(), "checkpoint")?,
            message_count: input.message_count,
            name: input.name,
            branch_name: input.branch_name,
        };
        let source_id = fork.task_id;
        let done = fork::fork_task(app(ctx), viewer(ctx)?, fork).await?;
        Ok(ForkTaskPayload {
            task: Task(done.task),
            origin: ForkOrigin {
                task_id: source_id,
                checkpoint_id: done.checkpoint_id,
                message_count: done.message_count,
            },
            code_operation: done.code_operation.map(CodeOperation),
        })
    }

    /// Creates a git branch at a checkpoint's commit; writes BRANCH_CREATED.
    async fn branch_from_checkpoint(
        &self,
        ctx: &Context<'_>,
        input: BranchFromCheckpointInput,
    ) -> Result<BranchFromCheckpointPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let checkpoint_id = parse_id(&input.checkpoint_id, "checkpoint")?;
        let done = fork::branch_from_checkpoint(
            app(ctx),
            viewer(ctx)?,
            task_id,
            checkpoint_id,
            input.branch_name.clone(),
        )
        .await?;
        Ok(BranchFromCheckpointPayload {
            branch: input.branch_name,
            commit_sha: done.code_operation.commit_sha.clone(),
            checkpoint: Checkpoint(done.checkpoint),
            code_operation: Some(CodeOperation(done.code_operation)),
        })
    }
}
