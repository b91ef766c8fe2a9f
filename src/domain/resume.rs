//! Resuming supervisors and tasks. The status check and the move to PENDING happen in
//! one transaction under the task's row lock, so of many concurrent resumes exactly one
//! wins and the others get CONFLICT.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::code;
use super::contracts::phases_of;
use super::tasks::{lock_for_change, note_activity};
use super::{App, Viewer};
use crate::entities::kinds::{HistoryEventType, TaskStatus};
use crate::entities::{code_operation, conversation_snapshot, task};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
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
        app.store.db(),
        viewer.owner_id,
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
    contract_id: Uuid,
    mode: ResumeMode,
    checkpoint_id: Option<Uuid>,
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
    let state = contracts::supervisors_by_contract(app.store.db(), viewer.owner_id, &[contract_id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::not_found("contract"))?;
    let task_id = state.task_id;
    let _guard = app.locks.task(task_id).await;
    let task = code::read_task(app, viewer, task_id).await?;
    ensure_resumable(&task)?;

    let mut target = None;
    let mut intent = None;
    if let Some(cp_id) = checkpoint_id {
        let (cp, snapshot) = code::checkpoint_of(app.store.db(), viewer, cp_id, task_id).await?;
        let phase = phase_at(app, viewer, &snapshot).await?;
        intent = code::restore_intent(viewer, &task, &cp.commit_sha);
        target = Some((cp, snapshot, phase));
    }
    let step = code::announce(app, intent).await?;
    let checked = code::recheck(viewer, task_id, &step, |t| ensure_resumable(t).map(|_| ())).await;
    let (txn, ran) = step.run(app, checked).await?;
    let recorded = async {
        let (mut task, _) = lock_for_change(&txn, viewer, task_id).await?;
        let from_status = ensure_resumable(&task)?;
        let mut contract = contracts::lock(&txn, viewer.owner_id, contract_id)
            .await?
            .ok_or_else(|| AppError::not_found("contract"))?;
        let view = app
            .store
            .conversation_in(&txn, task.conversation_id)
            .await?;
        let resumed_from = ResumedFrom {
            phase: contract.phase.clone(),
            last_activity: state.last_activity,
            message_count: view.length,
        };
        let at = now();
        match (&target, mode) {
            (Some((_, snapshot, phase)), _) => {
                let head = conversations::branch_at(
                    &txn,
                    viewer.owner_id,
                    task_id,
                    snapshot.conversation_id,
                    snapshot.length,
                )
                .await?;
                task.conversation_id = head.id;
                let known = |p: &&String| phases_of(&contract).is_ok_and(|all| all.contains(p));
                if let Some(phase) = phase.as_ref().filter(known)
                    && *phase != contract.phase
                {
                    contract.phase = phase.clone();
                    contract.updated_at = at;
                    contract = contracts::update(&txn, contract).await?;
                }
            }
            (None, ResumeMode::RestartPhase) => {
                let current = contract.phase.clone();
                let run = conversations::count_tail(&txn, viewer.owner_id, &view, |m| {
                    m.phase.as_deref() == Some(current.as_str())
                })
                .await?;
                if run > 0 {
                    let keep = view.length - run;
                    let segment = view.snapshot_segment(task.conversation_id, keep);
                    let head =
                        conversations::branch_at(&txn, viewer.owner_id, task_id, segment, keep)
                            .await?;
                    task.conversation_id = head.id;
                }
            }
            _ => {}
        }
        let message_count = conversations::by_id(&txn, task.conversation_id)
            .await?
            .length;
        task.status = TaskStatus::Pending;
        task.completed_at = None;
        task.updated_at = at;
        let task = tasks::update(&txn, task).await?;
        contracts::touch_supervisor(&txn, contract_id, at).await?;
        let op = code::record(&txn, ran.as_ref()).await?;
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::SupervisorResumed,
                contract_id: Some(contract_id),
                task_id: Some(task_id),
                phase: Some(contract.phase.clone()),
                data: json!({
                    "mode": mode.as_str(),
                    "fromStatus": from_status.as_str(),
                    "checkpointId": checkpoint_id.map(|c| c.to_string()),
                    "messageCount": message_count,
                    "codeOperationId": op.as_ref().map(|o| o.id.to_string()),
                    "previousMessageCount": resumed_from.message_count,
                    "previousPhase": resumed_from.phase,
                }),
            },
        )
        .await?;
        Ok((event, (op, task, resumed_from)))
    }
    .await;
    let (_, (op, task, resumed_from)) = code::settle(app, txn, ran, recorded).await?;
    Ok(SupervisorResumed {
        task,
        resumed_from,
        code_operation: op,
    })
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
    task_id: Uuid,
    checkpoint_id: Option<Uuid>,
) -> AppResult<TaskResumed> {
    let _guard = app.locks.task(task_id).await;
    let task = code::read_task(app, viewer, task_id).await?;
    ensure_resumable(&task)?;
    let mut target = None;
    let mut intent = None;
    if let Some(cp_id) = checkpoint_id {
        let (cp, snapshot) = code::checkpoint_of(app.store.db(), viewer, cp_id, task_id).await?;
        intent = code::restore_intent(viewer, &task, &cp.commit_sha);
        target = Some(snapshot);
    }
    let step = code::announce(app, intent).await?;
    let checked = code::recheck(viewer, task_id, &step, |t| ensure_resumable(t).map(|_| ())).await;
    let (txn, ran) = step.run(app, checked).await?;
    let recorded = async {
        let (mut task, contract) = lock_for_change(&txn, viewer, task_id).await?;
        let from_status = ensure_resumable(&task)?;
        if let Some(snapshot) = &target {
            let head = conversations::branch_at(
                &txn,
                viewer.owner_id,
                task_id,
                snapshot.conversation_id,
                snapshot.length,
            )
            .await?;
            task.conversation_id = head.id;
        }
        let at = now();
        task.status = TaskStatus::Pending;
        task.completed_at = None;
        task.updated_at = at;
        let task = tasks::update(&txn, task).await?;
        note_activity(&txn, &task, contract.as_ref(), at).await?;
        let op = code::record(&txn, ran.as_ref()).await?;
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::TaskResumed,
                contract_id: task.contract_id,
                task_id: Some(task_id),
                phase: contract.map(|c| c.phase),
                data: json!({
                    "fromStatus": from_status.as_str(),
                    "checkpointId": checkpoint_id.map(|c| c.to_string()),
                    "codeOperationId": op.as_ref().map(|o| o.id.to_string()),
                }),
            },
        )
        .await?;
        Ok((event, (op, task)))
    }
    .await;
    let (_, (op, task)) = code::settle(app, txn, ran, recorded).await?;
    Ok(TaskResumed {
        task,
        code_operation: op,
    })
}
