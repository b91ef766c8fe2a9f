//! Code operations: what changes a task's code, run through the one protocol in
//! `runner`, the intent each leaves while git runs (`intent`), the startup recovery of
//! interrupted ones (`reconcile`), and the reads that plan them.

mod intent;
mod reconcile;
mod remote;
mod runner;

use std::path::PathBuf;

use sea_orm::ConnectionTrait;

use super::{App, Viewer};
use crate::entities::ids::{CheckpointId, DaemonId, TaskId};
use crate::entities::{checkpoint, code_operation, conversation_snapshot, task};
use crate::error::{AppError, AppResult};
use crate::store::checkpoints;
use crate::store::conversations::View;

pub use intent::Intent;
pub use reconcile::reconcile;
pub use remote::{DEFAULT_TIMEOUT, DEFAULT_WAIT, Outcome, Report, expire, report};
pub use runner::{Change, Done, Event, Recorded, run};

/// Where a task's code is, and so where its code operations run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// Under the server's workspace root.
    Server,
    /// On this daemon, under its own workspace root.
    Daemon(DaemonId),
}

/// Where `task`'s code is.
pub fn site(task: &task::Model) -> Site {
    match (task.code_on_daemon, task.daemon_id) {
        (true, Some(d)) => Site::Daemon(d),
        _ => Site::Server,
    }
}

/// Where a task's code lives: its worktree, else its repository.
pub fn code_dir(task: &task::Model) -> Option<PathBuf> {
    task.worktree_path
        .as_ref()
        .or(task.repository.as_ref())
        .map(PathBuf::from)
}

/// Where the linked worktree of a new task goes: under the server's workspace root, or
/// (relative) under the daemon's.
pub fn worktree_path(app: &App, site: Site, task_id: TaskId) -> PathBuf {
    let root = match site {
        Site::Server => app.workspace_root.clone(),
        Site::Daemon(_) => PathBuf::new(),
    };
    root.join(".makima")
        .join("worktrees")
        .join(task_id.to_string())
}

/// The intent of restoring the task's code (its worktree, else its repository) to
/// `commit`; `None` for a task with no code, which gets no operation rather than a
/// pretend one.
pub fn restore_intent(viewer: &Viewer, task: &task::Model, commit: &str) -> Option<Intent> {
    code_dir(task).map(|dir| Intent::restore(viewer, task.id, site(task), &dir, commit))
}

/// `task` as it stands now if a daemon's operation may have changed it since it was
/// recorded (a new worktree lands with DONE); else `task` itself.
pub async fn current(
    app: &App,
    viewer: &Viewer,
    task: task::Model,
    op: Option<&code_operation::Model>,
) -> AppResult<task::Model> {
    if op.is_none_or(|o| o.daemon_id.is_none()) {
        return Ok(task);
    }
    crate::store::tasks::by_id(viewer.scope(app.store.db()), task.id)
        .await?
        .ok_or_else(|| AppError::internal("a new task is gone"))
}

/// The task as it stands before an operation is announced (its contract not archived).
pub async fn read_task(app: &App, viewer: &Viewer, task_id: TaskId) -> AppResult<task::Model> {
    let (task, _) = super::tasks::lock_for_change(app.store.db(), viewer, task_id).await?;
    Ok(task)
}

/// A checkpoint given for `task_id`: another owner's or a missing one is NOT_FOUND,
/// another task's BAD_USER_INPUT.
pub async fn checkpoint_of(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    checkpoint_id: CheckpointId,
    task_id: TaskId,
) -> AppResult<(checkpoint::Model, conversation_snapshot::Model)> {
    let cp = checkpoints::by_id(viewer.scope(db), checkpoint_id)
        .await?
        .ok_or_else(|| AppError::not_found("checkpoint"))?;
    if cp.task_id != task_id {
        return Err(AppError::bad_input(
            "the checkpoint belongs to another task",
        ));
    }
    let snapshot = checkpoints::snapshot(db, cp.snapshot_id).await?;
    Ok((cp, snapshot))
}

/// The newest checkpoint of `task_id` whose conversation snapshot is a prefix of the
/// first `length` messages of `view`.
pub async fn newest_prefix_checkpoint(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    task_id: TaskId,
    view: &View,
    length: i32,
) -> AppResult<Option<(checkpoint::Model, conversation_snapshot::Model)>> {
    let all = checkpoints::with_snapshots_newest_first(viewer.scope(db), task_id).await?;
    Ok(all
        .into_iter()
        .find(|(_, s)| s.length <= length && view.has_prefix(s.conversation_id, s.length)))
}
