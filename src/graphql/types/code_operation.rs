use async_graphql::{ID, Object};

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
    /// The commit the operation moved to or started from.
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
}
