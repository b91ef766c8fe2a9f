//! Owner-leading cursor indexes for the contract and task slices of the timeline:
//! every timeline read filters by owner, and with an index that starts at contract or
//! task PostgreSQL preferred the owner index and filtered other contracts' rows out one
//! by one. These replace the contract and task cursor indexes of the first migration.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum HistoryEvents {
    Table,
    OwnerId,
    ContractId,
    TaskId,
    TxId,
    Seq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, scope) in [
            ("history_owner_contract_cursor", HistoryEvents::ContractId),
            ("history_owner_task_cursor", HistoryEvents::TaskId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(HistoryEvents::Table)
                        .col(HistoryEvents::OwnerId)
                        .col(scope)
                        .col(HistoryEvents::TxId)
                        .col(HistoryEvents::Seq)
                        .to_owned(),
                )
                .await?;
        }
        for old in ["history_contract_cursor", "history_task_cursor"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(old)
                        .table(HistoryEvents::Table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (old, scope) in [
            ("history_contract_cursor", HistoryEvents::ContractId),
            ("history_task_cursor", HistoryEvents::TaskId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(old)
                        .table(HistoryEvents::Table)
                        .col(scope)
                        .col(HistoryEvents::TxId)
                        .col(HistoryEvents::Seq)
                        .to_owned(),
                )
                .await?;
        }
        for name in ["history_owner_contract_cursor", "history_owner_task_cursor"] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(HistoryEvents::Table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
