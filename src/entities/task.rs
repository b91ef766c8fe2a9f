use sea_orm::entity::prelude::*;

use crate::entities::ids::{CheckpointId, ContractId, ConversationId, DaemonId, OwnerId, TaskId};
use crate::entities::kinds::TaskStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TaskId,
    pub owner_id: OwnerId,
    pub contract_id: Option<ContractId>,
    pub parent_task_id: Option<TaskId>,
    pub is_supervisor: bool,
    pub name: String,
    pub plan: Option<String>,
    pub status: TaskStatus,
    pub daemon_id: Option<DaemonId>,
    pub repository: Option<String>,
    pub worktree_path: Option<String>,
    pub branch: Option<String>,
    pub base_branch: Option<String>,
    pub forked_from_task_id: Option<TaskId>,
    pub fork_checkpoint_id: Option<CheckpointId>,
    pub fork_message_count: Option<i32>,
    pub continued_from_task_id: Option<TaskId>,
    /// The head segment of the task's current conversation.
    pub conversation_id: ConversationId,
    /// Events stored so far; the next event gets `event_count + 1`.
    pub event_count: i64,
    pub checkpoint_count: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    /// The task's repository and worktree are on its daemon (`daemon_id`), as paths
    /// relative to that daemon's workspace root; its code operations run there.
    pub code_on_daemon: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
