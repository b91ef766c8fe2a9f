//! An index on the timeline cursor alone, `(tx_id, seq)`: the live fan-out reads every
//! owner's new events after its cursor in cursor order, which the per-owner, contract
//! and task indexes cannot serve without scanning.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum HistoryEvents {
    Table,
    TxId,
    Seq,
}

const NAME: &str = "history_cursor";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(HistoryEvents::Table)
                    .col(HistoryEvents::TxId)
                    .col(HistoryEvents::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(HistoryEvents::Table)
                    .to_owned(),
            )
            .await
    }
}
