//! Code operations run by daemons. A task whose code lives on a daemon
//! (`tasks.code_on_daemon`) has its repository and worktree paths relative to that
//! daemon's workspace root; the server never touches them. Its code operations are
//! queued for the daemon (`code_operations.daemon_id`) with what the daemon needs to run
//! them (`directory`, `worktree_path`, `restore_from`), stay QUEUED until the daemon's
//! report (`reported_*`) is applied or the `deadline` passes, and end DONE or FAILED.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CodeOperations {
    Table,
    DaemonId,
    Status,
    Directory,
    WorktreePath,
    RestoreFrom,
    Deadline,
    ReportedStatus,
    ReportedCommit,
    ReportedError,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    CodeOnDaemon,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            uuid_null(CodeOperations::DaemonId),
            text_null(CodeOperations::Directory),
            text_null(CodeOperations::WorktreePath),
            text_null(CodeOperations::RestoreFrom),
            timestamp_with_time_zone_null(CodeOperations::Deadline),
            string_len_null(CodeOperations::ReportedStatus, 16),
            text_null(CodeOperations::ReportedCommit),
            text_null(CodeOperations::ReportedError),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(CodeOperations::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Tasks::Table)
                    .add_column(boolean(Tasks::CodeOnDaemon).default(false))
                    .to_owned(),
            )
            .await?;
        // A daemon's queued operations; the sweep of operations past their deadline.
        manager
            .create_index(
                Index::create()
                    .name("code_operations_daemon_status")
                    .table(CodeOperations::Table)
                    .col(CodeOperations::DaemonId)
                    .col(CodeOperations::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("code_operations_daemon_status")
                    .table(CodeOperations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tasks::Table)
                    .drop_column(Tasks::CodeOnDaemon)
                    .to_owned(),
            )
            .await?;
        for column in [
            CodeOperations::ReportedError,
            CodeOperations::ReportedCommit,
            CodeOperations::ReportedStatus,
            CodeOperations::Deadline,
            CodeOperations::RestoreFrom,
            CodeOperations::WorktreePath,
            CodeOperations::Directory,
            CodeOperations::DaemonId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CodeOperations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
