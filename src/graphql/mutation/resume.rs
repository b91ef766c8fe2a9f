use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::resume::{self, ResumeMode};
use crate::entities::kinds::TaskStatus;
use crate::graphql::types::code_operation::CodeOperation;
use crate::graphql::types::task::Task;
use crate::graphql::{app, parse_id, parse_opt_id, to_id, viewer};

/// Resumes a contract's stopped supervisor.
#[derive(InputObject)]
pub struct ResumeSupervisorInput {
    /// The contract whose supervisor resumes.
    pub contract_id: ID,
    /// CONTINUE, RESTART_PHASE or FROM_CHECKPOINT.
    pub mode: ResumeMode,
    /// A checkpoint of the supervisor task; required with FROM_CHECKPOINT, refused otherwise.
    pub checkpoint_id: Option<ID>,
}

/// Where the supervisor stood before the resume.
#[derive(SimpleObject)]
pub struct ResumedFrom {
    /// The contract's phase.
    pub phase: String,
    /// The supervisor's latest activity.
    pub last_activity: DateTime<Utc>,
    /// Messages in its conversation.
    pub message_count: i32,
}

/// The resumed supervisor.
#[derive(SimpleObject)]
pub struct ResumeSupervisorPayload {
    /// The supervisor's task, now PENDING.
    pub supervisor_task: Task,
    /// The daemon the resumed supervisor is assigned to: null, so that any daemon of the
    /// owner may claim it, unless its code lives on a daemon (then that one).
    pub daemon_id: Option<ID>,
    /// Where the supervisor stood before the resume.
    pub resumed_from: ResumedFrom,
    /// The supervisor's status after the resume (PENDING).
    pub status: TaskStatus,
    /// Set when the mode restored code.
    pub code_operation: Option<CodeOperation>,
}

/// Resumes a stopped task.
#[derive(InputObject)]
pub struct ResumeTaskInput {
    /// An INTERRUPTED, PAUSED or FAILED task.
    pub task_id: ID,
    /// Move the conversation and code to this checkpoint of the task first.
    pub from_checkpoint_id: Option<ID>,
}

/// The resumed task.
#[derive(SimpleObject)]
pub struct ResumeTaskPayload {
    /// The task, now PENDING.
    pub task: Task,
    /// Set when the resume restored code.
    pub code_operation: Option<CodeOperation>,
}

#[derive(Default)]
pub struct ResumeMutation;

#[Object]
impl ResumeMutation {
    /// Resumes an INTERRUPTED, PAUSED or FAILED supervisor (RUNNING, PENDING or DONE is
    /// CONFLICT); writes SUPERVISOR_RESUMED.
    async fn resume_supervisor(
        &self,
        ctx: &Context<'_>,
        input: ResumeSupervisorInput,
    ) -> Result<ResumeSupervisorPayload> {
        let contract_id = parse_id(&input.contract_id, "contract")?;
        let checkpoint_id = parse_opt_id(input.checkpoint_id.as_ref(), "checkpoint")?;
        let done = resume::resume_supervisor(
            app(ctx),
            viewer(ctx)?,
            contract_id,
            input.mode,
            checkpoint_id,
        )
        .await?;
        Ok(ResumeSupervisorPayload {
            daemon_id: done.task.daemon_id.map(to_id),
            status: TaskStatus::Pending,
            supervisor_task: Task(done.task),
            resumed_from: ResumedFrom {
                phase: done.resumed_from.phase,
                last_activity: done.resumed_from.last_activity,
                message_count: done.resumed_from.message_count,
            },
            code_operation: done.code_operation.map(CodeOperation),
        })
    }

    /// Resumes an INTERRUPTED, PAUSED or FAILED task (RUNNING, PENDING or DONE is
    /// CONFLICT); writes TASK_RESUMED.
    async fn resume_task(
        &self,
        ctx: &Context<'_>,
        input: ResumeTaskInput,
    ) -> Result<ResumeTaskPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let checkpoint_id = parse_opt_id(input.from_checkpoint_id.as_ref(), "checkpoint")?;
        let done = resume::resume_task(app(ctx), viewer(ctx)?, task_id, checkpoint_id).await?;
        Ok(ResumeTaskPayload {
            task: Task(done.task),
            code_operation: done.code_operation.map(CodeOperation),
        })
    }
}
