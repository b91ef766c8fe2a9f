//! Code operation intents: a code operation writes (and commits) one row before it runs
//! git and deletes it in the transaction that records the operation. A row left behind
//! means the process died between the two; startup undoes its git step and records the
//! operation as FAILED. The row holds what that undo needs.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CodeOperationIntents {
    Table,
    Id,
    OwnerId,
    TaskId,
    Kind,
    Dir,
    CommitSha,
    SavedRef,
    Branch,
    WorktreePath,
    CreatedAt,
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
                    .table(CodeOperationIntents::Table)
                    .col(pk_uuid(CodeOperationIntents::Id))
                    .col(uuid(CodeOperationIntents::OwnerId))
                    .col(uuid(CodeOperationIntents::TaskId))
                    .col(string_len(CodeOperationIntents::Kind, 16))
                    .col(text(CodeOperationIntents::Dir))
                    .col(text(CodeOperationIntents::CommitSha))
                    .col(text_null(CodeOperationIntents::SavedRef))
                    .col(text_null(CodeOperationIntents::Branch))
                    .col(text_null(CodeOperationIntents::WorktreePath))
                    .col(timestamp_with_time_zone(CodeOperationIntents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_col(CodeOperationIntents::TaskId)
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
                    .name("code_operation_intents_task")
                    .table(CodeOperationIntents::Table)
                    .col(CodeOperationIntents::TaskId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CodeOperationIntents::Table).to_owned())
            .await
    }
}
