use sea_orm::entity::prelude::*;

use crate::entities::ids::{ContractId, OwnerId};
use crate::entities::kinds::ContractStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contracts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ContractId,
    pub owner_id: OwnerId,
    pub name: String,
    pub description: Option<String>,
    /// JSON array of phase names, in order.
    pub phases: String,
    pub phase: String,
    pub status: ContractStatus,
    pub repository: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
