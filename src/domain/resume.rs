//! Resuming supervisors and tasks. The status check and the move to PENDING happen in
//! one transaction under the task's row lock, so of many concurrent resumes exactly one
//! wins and the others get CONFLICT.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use super::code::{self, Change, Event, Intent, Outcome, Recorded};
use super::contracts::phases_of;
use super::tasks::{lock_for_change, note_activity};
use super::{App, Viewer};
use crate::entities::event_data as data;
use crate::entities::ids::{CheckpointId, ContractId, ConversationId, TaskId};
use crate::entities::kinds::TaskStatus;
use crate::entities::{code_operation, conversation_snapshot, task};
use crate::error::{AppError, AppResult};
use crate::store::{contracts, conversations, tasks};
use crate::time::now;

/// How a supervisor resumes.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeMode {
    /// Back to PENDING with the conversation intact.
    Continue,
    /// Drop the messages of the current phase (the latest contiguous run written in it), then PENDING.
    RestartPhase,
    /// Move the conversation to a checkpoint's snapshot and restore code to its commit, then PENDING.
    FromCheckpoint,
}

impl ResumeMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::RestartPhase => "RESTART_PHASE",
            Self::FromCheckpoint => "FROM_CHECKPOINT",
        }
    }
}

fn ensure_resumable(task: &task::Model) -> AppResult<TaskStatus> {
    let status = task.status;
    match status {
        TaskStatus::Interrupted | TaskStatus::Paused | TaskStatus::Failed => Ok(status),
        TaskStatus::Pending => Err(AppError::conflict(
            "the task is already PENDING (queued to run)",
        )),
        TaskStatus::Running => Err(AppError::conflict("the task is RUNNING")),
        TaskStatus::Done => Err(AppError::conflict(
            "the task is DONE, which is final; fork it to go on",
        )),
    }
}

pub struct ResumedFrom {
    pub phase: String,
    pub last_activity: DateTime<Utc>,
    pub message_count: i32,
}

pub struct SupervisorResumed {
    pub task: task::Model,
    pub resumed_from: ResumedFrom,
    pub code_operation: Option<code_operation::Model>,
}

/// The phase of the last message of a snapshot (the phase to go back to).
async fn phase_at(
    app: &App,
    viewer: &Viewer,
    snapshot: &conversation_snapshot::Model,
) -> AppResult<Option<String>> {
    if snapshot.length == 0 {
        return Ok(None);
    }
    let view = app
        .store
        .snapshot(snapshot.conversation_id, snapshot.length)
        .await?;
    let last = conversations::range(
        viewer.scope(app.store.db()),
        &view,
        snapshot.length - 1,
        snapshot.length,
    )
    .await?;
    Ok(last.into_iter().next().and_then(|m| m.phase))
}

pub async fn resume_supervisor(
    app: &App,
    viewer: &Viewer,
    contract_id: ContractId,
    mode: ResumeMode,
    checkpoint_id: Option<CheckpointId>,
) -> AppResult<SupervisorResumed> {
    match (mode, checkpoint_id) {
        (ResumeMode::FromCheckpoint, None) => {
            return Err(AppError::bad_input("FROM_CHECKPOINT needs checkpointId"));
        }
        (ResumeMode::Continue | ResumeMode::RestartPhase, Some(_)) => {
            return Err(AppError::bad_input(
                "checkpointId is only taken with FROM_CHECKPOINT",
            ));
        }
        _ => {}
    }
    let state = contracts::supervisors_by_contract(viewer.scope(app.store.db()), &[contract_id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::not_found("contract"))?;
    let change = ResumeSupervisor {
        contract_id,
        task_id: state.task_id,
        last_activity: state.last_activity,
        mode,
        checkpoint_id,
    };
    match code::run(app, viewer, &change).await? {
        Outcome::Done(done) => {
            let (task, resumed_from) = done.output;
            Ok(SupervisorResumed {
                task,
                resumed_from,
                code_operation: done.code_operation,
            })
        }
        // The daemon has not restored the code yet: the supervisor is as it was.
        Outcome::Pending { code_operation, .. } => {
            let task = code::read_task(app, viewer, state.task_id).await?;
            let contract = contracts::by_id(viewer.scope(app.store.db()), contract_id)
                .await?
                .ok_or_else(|| AppError::not_found("contract"))?;
            let message_count = app.store.conversation(task.conversation_id).await?.length;
            Ok(SupervisorResumed {
                task,
                resumed_from: ResumedFrom {
                    phase: contract.phase,
                    last_activity: state.last_activity,
                    message_count,
                },
                code_operation: Some(code_operation),
            })
        }
    }
}

#[derive(Clone)]
struct ResumeSupervisor {
    contract_id: ContractId,
    task_id: TaskId,
    last_activity: DateTime<Utc>,
    mode: ResumeMode,
    checkpoint_id: Option<CheckpointId>,
}

/// A checkpoint to resume from: its snapshot and the phase of its last message.
type Target = (conversation_snapshot::Model, Option<String>);

impl Change for ResumeSupervisor {
    type Plan = Option<Target>;
    type Output = (task::Model, ResumedFrom);

    fn task_id(&self) -> Option<TaskId> {
        Some(self.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<(Self::Plan, Option<Intent>)> {
        let task = code::read_task(app, viewer, self.task_id).await?;
        self.check(&task)?;
        let Some(cp_id) = self.checkpoint_id else {
            return Ok((None, None));
        };
        let (cp, snapshot) = code::checkpoint_of(app.store.db(), viewer, cp_id, task.id).await?;
        let phase = phase_at(app, viewer, &snapshot).await?;
        let intent = code::restore_intent(viewer, &task, &cp.commit_sha);
        Ok((Some((snapshot, phase)), intent))
    }

    fn check(&self, task: &task::Model) -> AppResult<()> {
        ensure_resumable(task).map(|_| ())
    }

    async fn record(
        &self,
        app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        target: Self::Plan,
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<Self::Output>> {
        let (mut task, _) = lock_for_change(txn, viewer, self.task_id).await?;
        let from_status = ensure_resumable(&task)?;
        let mut contract = contracts::lock(viewer.scope(txn), self.contract_id)
            .await?
            .ok_or_else(|| AppError::not_found("contract"))?;
        let view = app.store.conversation_in(txn, task.conversation_id).await?;
        let resumed_from = ResumedFrom {
            phase: contract.phase.clone(),
            last_activity: self.last_activity,
            message_count: view.length,
        };
        let at = now();
        match (&target, self.mode) {
            (Some((snapshot, phase)), _) => {
                task.conversation_id = branch_to(txn, viewer, task.id, snapshot).await?;
                let known = |p: &&String| phases_of(&contract).is_ok_and(|all| all.contains(p));
                if let Some(phase) = phase.as_ref().filter(known)
                    && *phase != contract.phase
                {
                    contract.phase = phase.clone();
                    contract.updated_at = at;
                    contract = contracts::update(txn, contract).await?;
                }
            }
            (None, ResumeMode::RestartPhase) => {
                let current = contract.phase.clone();
                let run = conversations::count_tail(viewer.scope(txn), &view, |m| {
                    m.phase.as_deref() == Some(current.as_str())
                })
                .await?;
                if run > 0 {
                    let keep = view.length - run;
                    let segment = view.snapshot_segment(task.conversation_id, keep);
                    let head =
                        conversations::branch_at(viewer.scope(txn), task.id, segment, keep).await?;
                    task.conversation_id = head.id;
                }
            }
            _ => {}
        }
        let message_count = conversations::by_id(txn, task.conversation_id)
            .await?
            .length;
        let task = mark_pending(txn, task, at).await?;
        contracts::touch_supervisor(txn, self.contract_id, at).await?;
        let event = Event {
            contract_id: Some(self.contract_id),
            task_id: Some(task.id),
            phase: Some(contract.phase.clone()),
            data: data::SupervisorResumed {
                mode: self.mode.as_str().into(),
                from_status,
                checkpoint_id: self.checkpoint_id,
                message_count,
                code_operation_id: op.map(|o| o.id),
                previous_message_count: resumed_from.message_count,
                previous_phase: resumed_from.phase.clone(),
            }
            .into(),
        };
        Ok(Recorded {
            event,
            output: (task, resumed_from),
        })
    }
}

/// Moves the task's conversation to a checkpoint's snapshot; returns the new head.
async fn branch_to(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    task_id: TaskId,
    snapshot: &conversation_snapshot::Model,
) -> AppResult<ConversationId> {
    let head = conversations::branch_at(
        viewer.scope(txn),
        task_id,
        snapshot.conversation_id,
        snapshot.length,
    )
    .await?;
    Ok(head.id)
}

/// Queues the task again (PENDING, not completed).
async fn mark_pending(
    txn: &DatabaseTransaction,
    mut task: task::Model,
    at: DateTime<Utc>,
) -> AppResult<task::Model> {
    task.status = TaskStatus::Pending;
    task.completed_at = None;
    task.updated_at = at;
    // Queued again for any daemon of the owner, unless its code lives on one.
    if !task.code_on_daemon {
        task.daemon_id = None;
    }
    tasks::update(txn, task).await
}

pub struct TaskResumed {
    pub task: task::Model,
    pub code_operation: Option<code_operation::Model>,
}

/// An INTERRUPTED, PAUSED or FAILED task goes back to PENDING with its context; from a
/// checkpoint, its conversation and code move there first.
pub async fn resume_task(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    checkpoint_id: Option<CheckpointId>,
) -> AppResult<TaskResumed> {
    let change = ResumeTask {
        task_id,
        checkpoint_id,
    };
    match code::run(app, viewer, &change).await? {
        Outcome::Done(done) => Ok(TaskResumed {
            task: done.output,
            code_operation: done.code_operation,
        }),
        Outcome::Pending { code_operation, .. } => Ok(TaskResumed {
            task: code::read_task(app, viewer, task_id).await?,
            code_operation: Some(code_operation),
        }),
    }
}

#[derive(Clone)]
struct ResumeTask {
    task_id: TaskId,
    checkpoint_id: Option<CheckpointId>,
}

impl Change for ResumeTask {
    type Plan = Option<conversation_snapshot::Model>;
    type Output = task::Model;

    fn task_id(&self) -> Option<TaskId> {
        Some(self.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<(Self::Plan, Option<Intent>)> {
        let task = code::read_task(app, viewer, self.task_id).await?;
        self.check(&task)?;
        let Some(cp_id) = self.checkpoint_id else {
            return Ok((None, None));
        };
        let (cp, snapshot) = code::checkpoint_of(app.store.db(), viewer, cp_id, task.id).await?;
        Ok((
            Some(snapshot),
            code::restore_intent(viewer, &task, &cp.commit_sha),
        ))
    }

    fn check(&self, task: &task::Model) -> AppResult<()> {
        ensure_resumable(task).map(|_| ())
    }

    async fn record(
        &self,
        _app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        target: Self::Plan,
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<task::Model>> {
        let (mut task, contract) = lock_for_change(txn, viewer, self.task_id).await?;
        let from_status = ensure_resumable(&task)?;
        if let Some(snapshot) = &target {
            task.conversation_id = branch_to(txn, viewer, task.id, snapshot).await?;
        }
        let at = now();
        let task = mark_pending(txn, task, at).await?;
        note_activity(txn, &task, contract.as_ref(), at).await?;
        let event = Event::on(
            &task,
            contract.as_ref(),
            data::TaskResumed {
                from_status,
                checkpoint_id: self.checkpoint_id,
                code_operation_id: op.map(|o| o.id),
            }
            .into(),
        );
        Ok(Recorded {
            event,
            output: task,
        })
    }
}
