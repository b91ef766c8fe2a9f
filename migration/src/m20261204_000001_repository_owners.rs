//! Repository ownership keyed by the repository itself (its canonical git common dir),
//! not by the path a task names: two paths (a main work tree and a linked one) can be
//! one repository. The unique key lets a claim and the task or contract that needs it
//! commit together, so two owners racing for one repository cannot both win.
//!
//! Existing tasks and contracts get no rows here: a migration cannot run git to find
//! their common dirs. Claims are made lazily by the first task or contract that names a
//! repository after the upgrade (and such a first claim is refused when another owner's
//! existing task already uses any work tree of that repository).
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RepositoryOwners {
    Table,
    CommonDir,
    OwnerId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Owners {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RepositoryOwners::Table)
                    .col(text(RepositoryOwners::CommonDir).primary_key())
                    .col(uuid(RepositoryOwners::OwnerId))
                    .col(timestamp_with_time_zone(RepositoryOwners::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_col(RepositoryOwners::OwnerId)
                            .to_tbl(Owners::Table)
                            .to_col(Owners::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RepositoryOwners::Table).to_owned())
            .await
    }
}
