//! Daemons: the worker machines that run tasks. An owner's daemon has a name unique to
//! the owner, reports its version and capabilities, and is ONLINE while its heartbeats
//! are recent. A daemon key (`api_keys.daemon_id`) authenticates as one daemon.
//!
//! `tasks.daemon_id` existed before this table (a free-form id a status report named),
//! so it gets no foreign key: ids reported before the upgrade name no row here, and a
//! task whose daemon has no row is simply not on a registered daemon.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Daemons {
    Table,
    Id,
    OwnerId,
    Name,
    Version,
    Capabilities,
    LastSeenAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    DaemonId,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    OwnerId,
    DaemonId,
    Status,
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
                    .table(Daemons::Table)
                    .col(pk_uuid(Daemons::Id))
                    .col(uuid(Daemons::OwnerId))
                    .col(text(Daemons::Name))
                    .col(text_null(Daemons::Version))
                    .col(text(Daemons::Capabilities))
                    .col(timestamp_with_time_zone_null(Daemons::LastSeenAt))
                    .col(timestamp_with_time_zone(Daemons::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from_col(Daemons::OwnerId)
                            .to_tbl(Owners::Table)
                            .to_col(Owners::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("daemons_owner_name")
                    .table(Daemons::Table)
                    .col(Daemons::OwnerId)
                    .col(Daemons::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(uuid_null(ApiKeys::DaemonId))
                    .to_owned(),
            )
            .await?;
        // A daemon's current tasks, and the claimable ones of an owner (daemon null).
        manager
            .create_index(
                Index::create()
                    .name("tasks_owner_daemon_status")
                    .table(Tasks::Table)
                    .col(Tasks::OwnerId)
                    .col(Tasks::DaemonId)
                    .col(Tasks::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("tasks_owner_daemon_status")
                    .table(Tasks::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::DaemonId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Daemons::Table).to_owned())
            .await
    }
}
