use sea_orm::entity::prelude::*;

use crate::entities::ids::{CodeOperationId, OwnerId, TaskId};
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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
