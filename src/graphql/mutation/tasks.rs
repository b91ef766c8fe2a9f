use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use crate::domain::tasks::{self, CreateTask};
use crate::entities::kinds::TaskStatus;
use crate::graphql::types::code_operation::CodeOperation;
use crate::graphql::types::task::Task;
use crate::graphql::{app, parse_id, parse_opt_id, viewer};

/// A new task; it starts PENDING.
#[derive(InputObject)]
pub struct CreateTaskInput {
    /// Short name of the task (at most 256 characters).
    pub name: String,
    /// What the task is meant to do (at most 64 KiB).
    pub plan: Option<String>,
    /// The contract the task works for.
    pub contract_id: Option<ID>,
    /// The task that spawned this one.
    pub parent_task_id: Option<ID>,
    /// Git repository the task works in (a path under the workspace root); defaults to the contract's.
    pub repository: Option<String>,
    /// The task's worktree: the repository's main worktree or one of its linked worktrees.
    pub worktree_path: Option<String>,
    /// The task's working branch.
    pub branch: Option<String>,
    /// The branch the working branch starts from.
    pub base_branch: Option<String>,
    /// Start from this earlier task's branch head in a new linked worktree (see Paths); the
    /// repository is inherited; giving worktreePath too, or a source without a repository, is
    /// BAD_USER_INPUT.
    pub continue_from_task_id: Option<ID>,
    /// The daemon that is to run the task (it claims the task through `daemonWork` and
    /// `claimTask`); without one, any daemon of the owner may claim it. Another owner's
    /// or an unknown daemon is NOT_FOUND. With a daemon, `repository` and `worktreePath`
    /// are paths on that daemon, relative to its workspace root (the server never
    /// touches them), and the task's code operations run there. A task continuing one
    /// whose code is on a daemon works on that daemon (another daemonId is
    /// BAD_USER_INPUT), its worktree added by the daemon from the source's worktree HEAD.
    pub daemon_id: Option<ID>,
}

/// The created task.
#[derive(SimpleObject)]
pub struct CreateTaskPayload {
    /// The new task.
    pub task: Task,
    /// The WORKTREE operation of a continued task.
    pub code_operation: Option<CodeOperation>,
}

/// Moves a task along its lifecycle.
#[derive(InputObject)]
pub struct UpdateTaskStatusInput {
    /// The task to change.
    pub task_id: ID,
    /// The new status.
    pub status: TaskStatus,
    /// The daemon reporting the change.
    pub daemon_id: Option<ID>,
}

/// The task after the change.
#[derive(SimpleObject)]
pub struct UpdateTaskStatusPayload {
    /// The task in its new status.
    pub task: Task,
}

#[derive(Default)]
pub struct TaskMutation;

#[Object]
impl TaskMutation {
    /// Creates a task (with continueFromTaskId, in a new worktree inheriting the earlier
    /// task's branch head); writes TASK_CREATED.
    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskInput,
    ) -> Result<CreateTaskPayload> {
        let create = CreateTask {
            name: input.name,
            plan: input.plan,
            contract_id: parse_opt_id(input.contract_id.as_ref(), "contract")?,
            parent_task_id: parse_opt_id(input.parent_task_id.as_ref(), "task")?,
            repository: input.repository,
            worktree_path: input.worktree_path,
            branch: input.branch,
            base_branch: input.base_branch,
            continue_from_task_id: parse_opt_id(input.continue_from_task_id.as_ref(), "task")?,
            daemon_id: parse_opt_id(input.daemon_id.as_ref(), "daemon")?,
        };
        let (task, op) = tasks::create(app(ctx), viewer(ctx)?, create).await?;
        Ok(CreateTaskPayload {
            task: Task(task),
            code_operation: op.map(CodeOperation),
        })
    }

    /// Moves a task along its lifecycle; writes TASK_STATUS_CHANGED (none when the status
    /// does not change).
    async fn update_task_status(
        &self,
        ctx: &Context<'_>,
        input: UpdateTaskStatusInput,
    ) -> Result<UpdateTaskStatusPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let daemon_id = parse_opt_id(input.daemon_id.as_ref(), "daemon")?;
        let task =
            tasks::update_status(app(ctx), viewer(ctx)?, task_id, input.status, daemon_id).await?;
        Ok(UpdateTaskStatusPayload { task: Task(task) })
    }
}
