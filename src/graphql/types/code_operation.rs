use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

use super::daemon::Daemon;
use super::task::Task;
use crate::graphql::loaders;

use crate::entities::code_operation;
use crate::entities::kinds::{CodeOperationKind, CodeOperationStatus};
use crate::graphql::to_id;

/// A git operation on a task's worktree: restore, branch or new worktree.
pub struct CodeOperation(pub code_operation::Model);

/// A git operation on a task's worktree: restore, branch or new worktree.
#[Object]
impl CodeOperation {
    /// Unique id of the operation.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// RESTORE (rewinds, resume from a checkpoint, restore), BRANCH, WORKTREE (fork, continued task).
    async fn kind(&self) -> CodeOperationKind {
        self.0.kind
    }
    /// DONE, QUEUED (waiting for the daemon that owns the worktree) or FAILED.
    async fn status(&self) -> CodeOperationStatus {
        self.0.status
    }
    /// The commit the operation moved to or started from. On a daemon it is the commit
    /// the daemon reported once DONE; while QUEUED, the target as the server knows it
    /// (empty when the daemon finds it: undoing a restore, or a continued task's
    /// worktree, which starts at the HEAD of `directory`).
    async fn commit_sha(&self) -> &str {
        &self.0.commit_sha
    }
    /// The branch the operation created or worked on.
    async fn branch(&self) -> Option<&str> {
        self.0.branch.as_deref()
    }
    /// For RESTORE: the refs/makima/… ref that holds the state the restore replaced.
    async fn saved_ref(&self) -> Option<&str> {
        self.0.saved_ref.as_deref()
    }
    /// What went wrong, for a FAILED operation.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// The task whose code it changes (for WORKTREE, the new task).
    async fn task(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        Ok(loaders(ctx).tasks.load_one(self.0.task_id).await?.map(Task))
    }
    /// The daemon that runs it; null for an operation the server ran itself.
    async fn daemon(&self, ctx: &Context<'_>) -> Result<Option<Daemon>> {
        let Some(id) = self.0.daemon_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).daemons.load_one(id).await?.map(Daemon))
    }
    /// On a daemon: the directory it runs in (the task's worktree, else its
    /// repository; for BRANCH and WORKTREE the repository), relative to the daemon's
    /// workspace root.
    async fn directory(&self) -> Option<&str> {
        self.0.directory.as_deref()
    }
    /// On a daemon, for WORKTREE: the new linked worktree to add, relative to the
    /// daemon's workspace root.
    async fn worktree_path(&self) -> Option<&str> {
        self.0.worktree_path.as_deref()
    }
    /// On a daemon, for a RESTORE that undoes an earlier one: the ref whose saved state
    /// to put back (then `commitSha` is empty until the daemon reports).
    async fn restore_from(&self) -> Option<&str> {
        self.0.restore_from.as_deref()
    }
    /// On a daemon: when a QUEUED operation becomes FAILED if not finished.
    async fn deadline(&self) -> Option<DateTime<Utc>> {
        self.0.deadline
    }
    /// When the operation was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the operation last changed (queued, reported, finished).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
