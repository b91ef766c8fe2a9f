use sea_orm::entity::prelude::*;

/// The supervisor of a contract: which task runs it and when it last did something.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "supervisor_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contract_id: Uuid,
    pub owner_id: Uuid,
    pub task_id: Uuid,
    pub last_activity: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
