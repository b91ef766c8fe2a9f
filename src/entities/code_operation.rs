use sea_orm::entity::prelude::*;

use crate::entities::ids::{CodeOperationId, DaemonId, OwnerId, TaskId};
use crate::entities::kinds::{CodeOperationKind, CodeOperationStatus};

/// A git operation on a task's worktree (restore, branch, new worktree).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "code_operations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CodeOperationId,
    pub owner_id: OwnerId,
    pub task_id: TaskId,
    pub kind: CodeOperationKind,
    pub status: CodeOperationStatus,
    pub commit_sha: String,
    pub branch: Option<String>,
    pub saved_ref: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The daemon that runs it; null for the server's own.
    pub daemon_id: Option<DaemonId>,
    /// Where a daemon runs it: the worktree or repository, relative to its root.
    pub directory: Option<String>,
    /// WORKTREE on a daemon: the new worktree, relative to its root.
    pub worktree_path: Option<String>,
    /// A RESTORE that undoes an earlier one: the ref whose saved state it puts back.
    pub restore_from: Option<String>,
    /// A daemon's operation not finished by then is FAILED.
    pub deadline: Option<DateTimeUtc>,
    /// What the daemon reported (DONE or FAILED), before the server applied it.
    pub reported_status: Option<CodeOperationStatus>,
    pub reported_commit: Option<String>,
    pub reported_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
