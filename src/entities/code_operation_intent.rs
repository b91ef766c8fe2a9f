use sea_orm::entity::prelude::*;

use crate::entities::ids::{CodeOperationId, OwnerId, TaskId};
use crate::entities::kinds::CodeOperationKind;

/// A code operation announced before its git step and not recorded yet (see
/// `domain::code::Intent`): what the step will do and how to take it back.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "code_operation_intents")]
pub struct Model {
    /// The id the recorded code operation will get.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CodeOperationId,
    pub owner_id: OwnerId,
    /// The existing task the operation acts on (for a fork or a continued task: the source).
    pub task_id: TaskId,
    pub kind: CodeOperationKind,
    /// Where git runs: the worktree (restore) or the repository (branch, worktree).
    pub dir: String,
    /// The commit the operation moves to, as given.
    pub commit_sha: String,
    /// Restore: the ref the replaced state is saved under.
    pub saved_ref: Option<String>,
    /// Branch and worktree: the branch the step creates.
    pub branch: Option<String>,
    /// Worktree: the linked worktree the step creates.
    pub worktree_path: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
