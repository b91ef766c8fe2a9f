//! Code operations: every git operation on a task's worktree is a row, so that a later
//! version can queue them for worktrees on remote daemons.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CodeOperations {
    Table,
    Id,
    OwnerId,
    TaskId,
    Kind,
    Status,
    CommitSha,
    Branch,
    SavedRef,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CodeOperations::Table)
                    .col(pk_uuid(CodeOperations::Id))
                    .col(uuid(CodeOperations::OwnerId))
                    .col(uuid(CodeOperations::TaskId))
                    .col(string_len(CodeOperations::Kind, 16))
                    .col(string_len(CodeOperations::Status, 16))
                    .col(string_len(CodeOperations::CommitSha, 64))
                    .col(text_null(CodeOperations::Branch))
                    .col(text_null(CodeOperations::SavedRef))
                    .col(text_null(CodeOperations::Error))
                    .col(timestamp_with_time_zone(CodeOperations::CreatedAt))
                    .col(timestamp_with_time_zone(CodeOperations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_col(CodeOperations::TaskId)
                            .to_tbl(Tasks::Table)
                            .to_col(Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("code_operations_task")
                    .table(CodeOperations::Table)
                    .col(CodeOperations::TaskId)
                    .col(CodeOperations::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CodeOperations::Table).to_owned())
            .await
    }
}
