//! Code operations on a daemon's worktree. The server never touches a daemon's paths:
//! it queues the operation (QUEUED, with everything the daemon needs to run it), waits
//! a bounded time for the daemon's report, and applies the report:
//!
//! - RESTORE and BRANCH record nothing when queued but a CODE_OPERATION_QUEUED event:
//!   the change's own rows (a rewound conversation, say) are written in the transaction
//!   that records DONE, and nothing on FAILED, so the database never claims code state
//!   the worktree does not have.
//! - WORKTREE (a fork) records the new task when queued, without a worktree; its
//!   `worktreePath` is set in the transaction that records DONE.
//!
//! The process that queued the operation applies the report (the change's plan lives in
//! its memory): within the mutation when the daemon is fast, else in a task of its own
//! until the operation's deadline. An operation still QUEUED past its deadline (its
//! daemon silent, or the process that queued it gone) is FAILED by the sweep in any
//! process. A daemon whose DONE report ends FAILED (refused when applied, or too late)
//! must put its worktree back (`docs/daemons.md`).

use std::time::Duration;

use sea_orm::DatabaseTransaction;

use super::super::{App, Viewer};
use super::intent::Intent;
use super::runner::{Change, Done, Recorded};
use crate::entities::code_operation;
use crate::entities::event_data::{self as data, EventData};
use crate::entities::ids::CodeOperationId;
use crate::entities::kinds::{CodeOperationKind, CodeOperationStatus, HistoryEventType};
use crate::entities::{history_event, task};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
use crate::store::{OwnerScope, code_operations, contracts, tasks};
use crate::time::now;

/// How long a mutation waits for a daemon before answering QUEUED (`--code-operation-wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long a daemon has to finish an operation before it is FAILED
/// (`--code-operation-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a waiter looks at the operation's row between in-process wake-ups (a
/// report may reach another server process).
const POLL: Duration = Duration::from_millis(100);
/// How long past its deadline an operation is left to the process that queued it
/// before the sweep of any process fails it.
const GRACE: Duration = Duration::from_secs(5);

/// What a change handed to a daemon came to when its mutation answers.
pub enum Outcome<T> {
    /// Recorded: by the server, or by the daemon within the wait.
    Done(Done<T>),
    /// Not finished within the wait (the operation QUEUED), or FAILED on the daemon.
    /// `event` is the one the mutation wrote (CODE_OPERATION_QUEUED), or the
    /// completion.
    Pending {
        code_operation: code_operation::Model,
        event: history_event::Model,
    },
}

impl<T> Outcome<T> {
    /// The result of a change that cannot be handed to a daemon.
    pub fn done(self) -> AppResult<Done<T>> {
        match self {
            Self::Done(done) => Ok(done),
            Self::Pending { .. } => Err(AppError::internal(
                "a change that runs no code on a daemon was queued",
            )),
        }
    }
}

/// Queues `intent` for its daemon and sees it through.
pub(super) async fn run<C>(
    app: &App,
    viewer: &Viewer,
    change: &C,
    plan: C::Plan,
    intent: Intent,
) -> AppResult<Outcome<C::Output>>
where
    C: Change + Clone + Send + 'static,
    C::Plan: 'static,
    C::Output: 'static,
{
    let deadline = now()
        + chrono::Duration::from_std(app.code_operation_timeout)
            .map_err(|e| AppError::internal(format!("code operation timeout: {e}")))?;
    let queued = intent.queued(deadline);
    if intent.kind() == CodeOperationKind::Worktree {
        return worktree(app, viewer, change, plan, &intent, queued).await;
    }
    let event = enqueue(app, viewer, change, &intent, &queued).await?;
    let until = tokio::time::Instant::now() + app.code_operation_wait;
    if reported(app, viewer, queued.id, until).await? {
        return finish(app, viewer, change, plan, queued.id).await;
    }
    let (change, id) = (change.clone(), queued.id);
    after_report(app, viewer, id, deadline, move |app, viewer| async move {
        finish(&app, &viewer, &change, plan, id).await.map(drop)
    });
    Ok(Outcome::Pending {
        code_operation: queued,
        event,
    })
}

/// In a task of its own: waits for the daemon's report on operation `id` (or its
/// `deadline`), then runs `then`, which applies it.
fn after_report<F, Fut>(
    app: &App,
    viewer: &Viewer,
    id: CodeOperationId,
    deadline: chrono::DateTime<chrono::Utc>,
    then: F,
) where
    F: FnOnce(App, Viewer) -> Fut + Send + 'static,
    Fut: Future<Output = AppResult<()>> + Send,
{
    let (app, viewer) = (app.clone(), viewer.clone());
    tokio::spawn(async move {
        let outcome = async {
            let until = tokio::time::Instant::now() + remaining(deadline);
            reported(&app, &viewer, id, until).await?;
            then(app, viewer).await
        }
        .await;
        if let Err(err) = outcome {
            tracing::error!(op = %id, ?err, "could not finish a daemon's code operation");
        }
    });
}

/// Writes the QUEUED operation and its CODE_OPERATION_QUEUED event, once the change's
/// rules and the task's lock allow it.
async fn enqueue<C: Change>(
    app: &App,
    viewer: &Viewer,
    change: &C,
    intent: &Intent,
    queued: &code_operation::Model,
) -> AppResult<history_event::Model> {
    let txn = app.store.begin_write().await?;
    let task = locked_task(&txn, viewer, intent).await?;
    change.check(&task)?;
    code_operations::insert(&txn, queued.clone()).await?;
    let event = insert_event(&txn, viewer, &task, queued_data(queued)).await?;
    app.store.commit(txn, &event).await?;
    Ok(event)
}

/// The task the operation acts on, locked, with no other operation unfinished on it.
async fn locked_task(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    intent: &Intent,
) -> AppResult<task::Model> {
    let (task, _) = super::super::tasks::lock_for_change(txn, viewer, intent.task_id()).await?;
    if code_operations::unfinished(txn, task.id).await? {
        return Err(AppError::conflict(
            "another code operation on this task is still QUEUED on its daemon",
        ));
    }
    Ok(task)
}

fn queued_data(op: &code_operation::Model) -> EventData {
    data::CodeOperationQueued {
        code_operation_id: op.id,
        kind: op.kind,
        daemon_id: op.daemon_id.expect("a daemon's operation"),
    }
    .into()
}

/// A fork's new worktree: the fork is recorded now, its worktree when DONE.
async fn worktree<C: Change>(
    app: &App,
    viewer: &Viewer,
    change: &C,
    plan: C::Plan,
    intent: &Intent,
    queued: code_operation::Model,
) -> AppResult<Outcome<C::Output>> {
    let txn = app.store.begin_write().await?;
    let task = locked_task(&txn, viewer, intent).await?;
    change.check(&task)?;
    let Recorded { event, output } = change
        .record(app, viewer, &txn, plan, Some(&queued))
        .await?;
    let op = code_operations::insert(&txn, queued).await?;
    let event = event.insert(&txn, viewer.owner_id).await?;
    app.store.commit(txn, &event).await?;
    let until = tokio::time::Instant::now() + app.code_operation_wait;
    let op = if reported(app, viewer, op.id, until).await? {
        apply(app, viewer, op.id).await?.0
    } else {
        let (id, deadline) = (op.id, op.deadline.unwrap_or_else(now));
        after_report(app, viewer, id, deadline, move |app, viewer| async move {
            apply(&app, &viewer, id).await.map(drop)
        });
        op
    };
    Ok(Outcome::Done(Done {
        output,
        code_operation: Some(op),
        event,
    }))
}

/// Applies the daemon's report of a RESTORE or BRANCH with the change's own rows.
async fn finish<C: Change>(
    app: &App,
    viewer: &Viewer,
    change: &C,
    plan: C::Plan,
    id: CodeOperationId,
) -> AppResult<Outcome<C::Output>> {
    let txn = app.store.begin_write().await?;
    let mut op = locked(&txn, viewer, id).await?;
    if op.status != CodeOperationStatus::Queued {
        // Finished meanwhile (the sweep failed it).
        drop(txn);
        return pending_as_is(app, viewer, op).await;
    }
    if op.reported_status == Some(CodeOperationStatus::Done) {
        op.status = CodeOperationStatus::Done;
        if let Some(commit) = op.reported_commit.clone() {
            op.commit_sha = commit;
        }
        op.updated_at = now();
        let recorded = change.record(app, viewer, &txn, plan, Some(&op)).await;
        match recorded {
            Ok(Recorded { event, output }) => {
                let op = code_operations::update(&txn, op).await?;
                let event = event.insert(&txn, viewer.owner_id).await?;
                let task = task_of(&txn, viewer, &op).await?;
                let completed = insert_event(&txn, viewer, &task, completed_data(&op)).await?;
                app.store.commit(txn, &completed).await?;
                return Ok(Outcome::Done(Done {
                    output,
                    code_operation: Some(op),
                    event,
                }));
            }
            Err(err) => {
                drop(txn);
                let message = format!(
                    "refused when the daemon reported it done: {}",
                    err.public_message()
                );
                let (op, event) = fail(app, viewer, id, &message).await?;
                return Ok(Outcome::Pending {
                    code_operation: op,
                    event,
                });
            }
        }
    }
    drop(txn);
    let (op, event) = apply(app, viewer, id).await?;
    Ok(Outcome::Pending {
        code_operation: op,
        event,
    })
}

/// An operation someone else finished, with its completion event.
async fn pending_as_is<T>(
    app: &App,
    viewer: &Viewer,
    op: code_operation::Model,
) -> AppResult<Outcome<T>> {
    let event = completion_of(app, viewer, &op).await?;
    Ok(Outcome::Pending {
        code_operation: op,
        event,
    })
}

/// Finishes an operation whose change has no rows to write at completion (a new
/// worktree, whose path it records; or a failure): DONE or FAILED as reported, FAILED
/// when nothing was reported by the deadline. Returns it with its completion event.
async fn apply(
    app: &App,
    viewer: &Viewer,
    id: CodeOperationId,
) -> AppResult<(code_operation::Model, history_event::Model)> {
    let txn = app.store.begin_write().await?;
    let mut op = locked(&txn, viewer, id).await?;
    if op.status != CodeOperationStatus::Queued {
        drop(txn);
        let event = completion_of(app, viewer, &op).await?;
        return Ok((op, event));
    }
    match op.reported_status {
        Some(CodeOperationStatus::Done) => {
            op.status = CodeOperationStatus::Done;
            if let Some(commit) = op.reported_commit.clone() {
                op.commit_sha = commit;
            }
            if op.kind == CodeOperationKind::Worktree {
                set_worktree(&txn, viewer, &op).await?;
            }
        }
        Some(_) => {
            op.status = CodeOperationStatus::Failed;
            op.error = op.reported_error.clone();
        }
        None => {
            op.status = CodeOperationStatus::Failed;
            op.error = Some("the daemon did not finish it before its deadline".into());
        }
    }
    close(app, viewer, txn, op).await
}

/// The CODE_OPERATION_COMPLETED event of a finished operation.
async fn completion_of(
    app: &App,
    viewer: &Viewer,
    op: &code_operation::Model,
) -> AppResult<history_event::Model> {
    let recent = history::latest_of_task(
        viewer.scope(app.store.db()),
        op.task_id,
        HistoryEventType::CodeOperationCompleted,
        20,
    )
    .await?;
    for event in recent {
        if let EventData::CodeOperationCompleted(d) = EventData::of(&event)?
            && d.code_operation_id == op.id
        {
            return Ok(event);
        }
    }
    Err(AppError::internal(
        "a finished code operation without its event",
    ))
}

/// Fails a QUEUED operation with `error` (its report refused when applied).
async fn fail(
    app: &App,
    viewer: &Viewer,
    id: CodeOperationId,
    error: &str,
) -> AppResult<(code_operation::Model, history_event::Model)> {
    let txn = app.store.begin_write().await?;
    let mut op = locked(&txn, viewer, id).await?;
    op.status = CodeOperationStatus::Failed;
    op.error = Some(error.into());
    close(app, viewer, txn, op).await
}

/// The operation `id`, locked in `txn`.
async fn locked(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    id: CodeOperationId,
) -> AppResult<code_operation::Model> {
    code_operations::lock(viewer.scope(txn), id)
        .await?
        .ok_or_else(|| AppError::internal(format!("code operation {id} is gone")))
}

/// Writes the finished operation and its CODE_OPERATION_COMPLETED event, and commits.
async fn close(
    app: &App,
    viewer: &Viewer,
    txn: DatabaseTransaction,
    mut op: code_operation::Model,
) -> AppResult<(code_operation::Model, history_event::Model)> {
    op.updated_at = now();
    let op = code_operations::update(&txn, op).await?;
    let task = task_of(&txn, viewer, &op).await?;
    let event = insert_event(&txn, viewer, &task, completed_data(&op)).await?;
    app.store.commit(txn, &event).await?;
    Ok((op, event))
}

/// The new task of a WORKTREE operation gets its worktree and branch.
async fn set_worktree(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    op: &code_operation::Model,
) -> AppResult<()> {
    let mut task = tasks::lock(viewer.scope(txn), op.task_id)
        .await?
        .ok_or_else(|| AppError::internal("the new task of a worktree is gone"))?;
    task.worktree_path = op.worktree_path.clone();
    task.branch = op.branch.clone();
    task.updated_at = now();
    tasks::update(txn, task).await?;
    Ok(())
}

async fn task_of(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    op: &code_operation::Model,
) -> AppResult<task::Model> {
    tasks::by_id(viewer.scope(txn), op.task_id)
        .await?
        .ok_or_else(|| AppError::internal("the task of a code operation is gone"))
}

fn completed_data(op: &code_operation::Model) -> EventData {
    data::CodeOperationCompleted {
        code_operation_id: op.id,
        kind: op.kind,
        status: op.status,
        commit_sha: op.commit_sha.clone(),
        error: op.error.clone(),
    }
    .into()
}

async fn insert_event(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    task: &task::Model,
    data: EventData,
) -> AppResult<history_event::Model> {
    let contract = match task.contract_id {
        Some(id) => contracts::by_id(viewer.scope(txn), id).await?,
        None => None,
    };
    history::insert(
        txn,
        NewEvent {
            owner_id: viewer.owner_id,
            contract_id: task.contract_id,
            task_id: Some(task.id),
            phase: contract.map(|c| c.phase),
            data,
        },
    )
    .await
}

/// Waits until the daemon reported on operation `id` or `until`; whether it did.
async fn reported(
    app: &App,
    viewer: &Viewer,
    id: CodeOperationId,
    until: tokio::time::Instant,
) -> AppResult<bool> {
    let mut reports = app.code_reports.subscribe();
    loop {
        let op = code_operations::by_id(viewer.scope(app.store.db()), id)
            .await?
            .ok_or_else(|| AppError::internal(format!("code operation {id} is gone")))?;
        if op.reported_status.is_some() || op.status != CodeOperationStatus::Queued {
            return Ok(true);
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok(false);
        }
        let nap = (until - now).min(POLL);
        // A report to this process wakes the waiter at once; one to another process is
        // seen at the next look.
        let _ = tokio::time::timeout(nap, reports.changed()).await;
    }
}

fn remaining(deadline: chrono::DateTime<chrono::Utc>) -> Duration {
    (deadline - now()).to_std().unwrap_or_default()
}

/// What a daemon reports about one of its operations.
pub struct Report {
    pub id: CodeOperationId,
    pub status: CodeOperationStatus,
    pub commit_sha: Option<String>,
    pub error: Option<String>,
}

/// Records the viewer daemon's report on its QUEUED operation; the process that queued
/// it applies it. The same report again is accepted and changes nothing; another one
/// for an operation already reported or finished is CONFLICT.
pub async fn report(
    app: &App,
    viewer: &Viewer,
    report: Report,
) -> AppResult<code_operation::Model> {
    let me = viewer.daemon()?;
    let scope = app.store.scope(viewer.owner_id);
    let op = code_operations::by_id(scope, report.id)
        .await?
        .ok_or_else(|| AppError::not_found("code operation"))?;
    if op.daemon_id != Some(me) {
        return Err(AppError::forbidden(
            "this code operation is not this daemon's",
        ));
    }
    let (commit, error) = match report.status {
        CodeOperationStatus::Done => {
            let commit = report.commit_sha.as_deref().ok_or_else(|| {
                AppError::bad_input("a DONE report needs commitSha: the commit the worktree is at")
            })?;
            (Some(super::super::limits::commit_sha(commit)?), None)
        }
        CodeOperationStatus::Failed => {
            let error = report
                .error
                .as_deref()
                .filter(|e| !e.trim().is_empty())
                .ok_or_else(|| AppError::bad_input("a FAILED report needs an error"))?;
            super::super::limits::text("error", Some(error))?;
            (None, Some(error.to_owned()))
        }
        CodeOperationStatus::Queued => {
            return Err(AppError::bad_input("report DONE or FAILED"));
        }
    };
    let txn = app.store.begin_write().await?;
    let took = code_operations::report(
        OwnerScope::new(&txn, viewer.owner_id),
        op.id,
        me,
        report.status,
        commit.as_deref(),
        error.as_deref(),
        now(),
    )
    .await?;
    txn.commit().await?;
    let op = code_operations::by_id(scope, op.id)
        .await?
        .ok_or_else(|| AppError::internal("a reported code operation is gone"))?;
    if !took {
        let same = op.reported_status == Some(report.status)
            && op.reported_commit == commit
            && op.reported_error == error;
        if !same {
            return Err(AppError::conflict(format!(
                "this code operation was already reported or finished ({})",
                op.status.as_str()
            )));
        }
    }
    app.code_reports.send_modify(|n| *n = n.wrapping_add(1));
    Ok(op)
}

/// Fails the QUEUED operations of every owner that are past their deadline (and its
/// grace): their daemon never reported, or the process that queued them stopped before
/// applying the report. Returns how many.
pub async fn expire(app: &App, at: chrono::DateTime<chrono::Utc>) -> AppResult<usize> {
    let grace = chrono::Duration::from_std(GRACE).unwrap_or_default();
    let overdue = code_operations::overdue(app.store.db(), at - grace, 100).await?;
    let mut failed = 0;
    for op in overdue {
        let viewer = Viewer::acting_for(op.owner_id);
        let error = match op.reported_status {
            Some(_) => "the server that queued it stopped before applying the daemon's report",
            None => "the daemon did not finish it before its deadline",
        };
        let txn = app.store.begin_write().await?;
        let mut row = locked(&txn, &viewer, op.id).await?;
        if row.status != CodeOperationStatus::Queued {
            continue;
        }
        row.status = CodeOperationStatus::Failed;
        row.error = Some(error.into());
        close(app, &viewer, txn, row).await?;
        failed += 1;
    }
    Ok(failed)
}
