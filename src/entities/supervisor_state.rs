use sea_orm::entity::prelude::*;

use crate::entities::ids::{ContractId, OwnerId, TaskId};

/// The supervisor of a contract: which task runs it and when it last did something.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "supervisor_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contract_id: ContractId,
    pub owner_id: OwnerId,
    pub task_id: TaskId,
    pub last_activity: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
