use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use crate::domain::code::{self, Report};
use crate::domain::daemons::{self, Heartbeat};
use crate::entities::kinds::CodeOperationStatus;
use crate::graphql::types::code_operation::CodeOperation;
use crate::graphql::types::daemon::Daemon;
use crate::graphql::types::task::Task;
use crate::graphql::{app, parse_id, viewer};

/// What a daemon reports with a heartbeat; an omitted field keeps its last value.
#[derive(InputObject, Default)]
pub struct HeartbeatDaemonInput {
    /// The daemon's version (at most 256 characters).
    pub version: Option<String>,
    /// What the daemon can do (at most 64 names of at most 256 characters).
    pub capabilities: Option<Vec<String>>,
}

/// The daemon after the heartbeat.
#[derive(SimpleObject)]
pub struct HeartbeatDaemonPayload {
    /// The daemon, ONLINE.
    pub daemon: Daemon,
}

/// The task a daemon wants to take.
#[derive(InputObject)]
pub struct ClaimTaskInput {
    /// A PENDING task assigned to this daemon or to no daemon.
    pub task_id: ID,
}

/// The claimed task.
#[derive(SimpleObject)]
pub struct ClaimTaskPayload {
    /// The task, now RUNNING on the claiming daemon.
    pub task: Task,
}

/// The task a daemon took, if there was one.
#[derive(SimpleObject)]
pub struct ClaimNextTaskPayload {
    /// The task, now RUNNING on the claiming daemon; null when none was waiting.
    pub task: Option<Task>,
}

/// A daemon's report on one of its code operations.
#[derive(InputObject)]
pub struct CompleteCodeOperationInput {
    /// A QUEUED operation on this daemon's worktree (from `daemonWork.codeOperations`).
    pub code_operation_id: ID,
    /// DONE (the git step happened) or FAILED (it did not; nothing changed).
    pub status: CodeOperationStatus,
    /// DONE: the commit the worktree (for BRANCH, the new branch) is at now.
    pub commit_sha: Option<String>,
    /// FAILED: what went wrong (at most 64 KiB).
    pub error: Option<String>,
}

/// The operation after the report.
#[derive(SimpleObject)]
pub struct CompleteCodeOperationPayload {
    /// The operation: still QUEUED until the server has applied the report, then DONE
    /// or FAILED (FAILED after a DONE report means the server refused it: put the
    /// worktree back).
    pub code_operation: CodeOperation,
}

#[derive(Default)]
pub struct DaemonMutation;

/// What daemons do (daemon keys only; an owner key is FORBIDDEN).
#[Object]
impl DaemonMutation {
    /// Records that the key's daemon is alive; a daemon that sends none for longer than
    /// the server's daemon timeout is OFFLINE and its RUNNING tasks are interrupted.
    async fn heartbeat_daemon(
        &self,
        ctx: &Context<'_>,
        input: Option<HeartbeatDaemonInput>,
    ) -> Result<HeartbeatDaemonPayload> {
        let input = input.unwrap_or_default();
        let beat = Heartbeat {
            version: input.version,
            capabilities: input.capabilities,
        };
        let daemon = daemons::heartbeat(app(ctx), viewer(ctx)?, beat).await?;
        Ok(HeartbeatDaemonPayload {
            daemon: Daemon(daemon),
        })
    }

    /// Takes a PENDING task for the key's daemon: it becomes RUNNING there (writes
    /// TASK_STATUS_CHANGED). Of daemons racing for one task exactly one wins; the others,
    /// and a claim of a task that is not PENDING or is assigned to another daemon, get
    /// CONFLICT.
    async fn claim_task(
        &self,
        ctx: &Context<'_>,
        input: ClaimTaskInput,
    ) -> Result<ClaimTaskPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let task = daemons::claim(app(ctx), viewer(ctx)?, task_id).await?;
        Ok(ClaimTaskPayload { task: Task(task) })
    }

    /// Takes the oldest PENDING task the daemon may claim (assigned to it or to no
    /// daemon), as `claimTask` would; null when none is waiting. Racing daemons take
    /// different tasks instead of conflicting over one: a fleet claims with this.
    async fn claim_next_task(&self, ctx: &Context<'_>) -> Result<ClaimNextTaskPayload> {
        let task = daemons::claim_next(app(ctx), viewer(ctx)?).await?;
        Ok(ClaimNextTaskPayload {
            task: task.map(Task),
        })
    }

    /// Reports how one of the daemon's code operations went. The server applies the
    /// report (for a rewind, the conversation moves in the same transaction that
    /// records DONE); the same report again changes nothing; a different report for an
    /// operation already reported or finished is CONFLICT.
    async fn complete_code_operation(
        &self,
        ctx: &Context<'_>,
        input: CompleteCodeOperationInput,
    ) -> Result<CompleteCodeOperationPayload> {
        let report = Report {
            id: parse_id(&input.code_operation_id, "code operation")?,
            status: input.status,
            commit_sha: input.commit_sha,
            error: input.error,
        };
        let op = code::report(app(ctx), viewer(ctx)?, report).await?;
        Ok(CompleteCodeOperationPayload {
            code_operation: CodeOperation(op),
        })
    }
}
