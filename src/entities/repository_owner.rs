use sea_orm::entity::prelude::*;

use crate::entities::ids::OwnerId;

/// Which owner a repository belongs to, keyed by its canonical git common dir.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "repository_owners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub common_dir: String,
    pub owner_id: OwnerId,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
