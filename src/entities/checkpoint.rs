use sea_orm::entity::prelude::*;

use crate::entities::ids::{CheckpointId, OwnerId, SnapshotId, TaskId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CheckpointId,
    pub owner_id: OwnerId,
    pub task_id: TaskId,
    pub number: i32,
    pub commit_sha: String,
    pub branch: Option<String>,
    pub message: String,
    /// Serialised JSON, when given.
    pub files_changed: Option<String>,
    pub snapshot_id: SnapshotId,
    pub message_count: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::conversation_snapshot::Entity",
        from = "Column::SnapshotId",
        to = "super::conversation_snapshot::Column::Id"
    )]
    Snapshot,
}

impl Related<super::conversation_snapshot::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Snapshot.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
