//! The initial schema: owners and keys, contracts with their supervisor state, tasks,
//! conversations (structurally shared segments), messages, task events, checkpoints,
//! conversation snapshots, the history timeline and idempotency records.
//!
//! Frozen: never edit this file once released; add a new migration instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Owners {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OwnerId,
    KeyHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Contracts {
    Table,
    Id,
    OwnerId,
    Name,
    Description,
    Phases,
    Phase,
    Status,
    Repository,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SupervisorStates {
    Table,
    ContractId,
    OwnerId,
    TaskId,
    LastActivity,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    OwnerId,
    ContractId,
    ParentTaskId,
    IsSupervisor,
    Name,
    Plan,
    Status,
    DaemonId,
    Repository,
    WorktreePath,
    Branch,
    BaseBranch,
    ForkedFromTaskId,
    ForkCheckpointId,
    ForkMessageCount,
    ContinuedFromTaskId,
    ConversationId,
    EventCount,
    CheckpointCount,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    OwnerId,
    TaskId,
    ParentId,
    BaseLength,
    Length,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ConversationId,
    Position,
    Id,
    OwnerId,
    Role,
    Content,
    Phase,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TaskEvents {
    Table,
    TaskId,
    Sequence,
    Id,
    OwnerId,
    EventType,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConversationSnapshots {
    Table,
    Id,
    OwnerId,
    TaskId,
    ConversationId,
    Length,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Checkpoints {
    Table,
    Id,
    OwnerId,
    TaskId,
    Number,
    CommitSha,
    Branch,
    Message,
    FilesChanged,
    SnapshotId,
    MessageCount,
    CreatedAt,
}

#[derive(DeriveIden)]
enum HistoryEvents {
    Table,
    Seq,
    TxId,
    Id,
    OwnerId,
    EventType,
    ContractId,
    TaskId,
    Phase,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    OwnerId,
    Mutation,
    TaskId,
    Key,
    RequestHash,
    Result,
    CreatedAt,
}

fn fk(
    from: impl IntoIden,
    to_table: impl IntoIden,
    to: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_col(from)
        .to_tbl(to_table)
        .to_col(to)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Owners::Table)
                    .col(pk_uuid(Owners::Id))
                    .col(string_len_uniq(Owners::Name, 1024))
                    .col(timestamp_with_time_zone(Owners::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(pk_uuid(ApiKeys::Id))
                    .col(uuid(ApiKeys::OwnerId))
                    .col(string_len_uniq(ApiKeys::KeyHash, 64))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .foreign_key(&mut fk(ApiKeys::OwnerId, Owners::Table, Owners::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Contracts::Table)
                    .col(pk_uuid(Contracts::Id))
                    .col(uuid(Contracts::OwnerId))
                    .col(text(Contracts::Name))
                    .col(text_null(Contracts::Description))
                    .col(text(Contracts::Phases))
                    .col(text(Contracts::Phase))
                    .col(string_len(Contracts::Status, 16))
                    .col(text_null(Contracts::Repository))
                    .col(timestamp_with_time_zone(Contracts::CreatedAt))
                    .col(timestamp_with_time_zone(Contracts::UpdatedAt))
                    .foreign_key(&mut fk(Contracts::OwnerId, Owners::Table, Owners::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "contracts_owner",
                Contracts::Table,
                &["owner_id", "id"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(pk_uuid(Tasks::Id))
                    .col(uuid(Tasks::OwnerId))
                    .col(uuid_null(Tasks::ContractId))
                    .col(uuid_null(Tasks::ParentTaskId))
                    .col(boolean(Tasks::IsSupervisor))
                    .col(text(Tasks::Name))
                    .col(text_null(Tasks::Plan))
                    .col(string_len(Tasks::Status, 16))
                    .col(uuid_null(Tasks::DaemonId))
                    .col(text_null(Tasks::Repository))
                    .col(text_null(Tasks::WorktreePath))
                    .col(text_null(Tasks::Branch))
                    .col(text_null(Tasks::BaseBranch))
                    .col(uuid_null(Tasks::ForkedFromTaskId))
                    .col(uuid_null(Tasks::ForkCheckpointId))
                    .col(integer_null(Tasks::ForkMessageCount))
                    .col(uuid_null(Tasks::ContinuedFromTaskId))
                    .col(uuid(Tasks::ConversationId))
                    .col(big_integer(Tasks::EventCount))
                    .col(integer(Tasks::CheckpointCount))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Tasks::StartedAt))
                    .col(timestamp_with_time_zone_null(Tasks::CompletedAt))
                    .foreign_key(&mut fk(Tasks::OwnerId, Owners::Table, Owners::Id))
                    .foreign_key(&mut fk(Tasks::ContractId, Contracts::Table, Contracts::Id))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("tasks_owner", &["owner_id", "id"][..]),
            ("tasks_contract", &["contract_id", "id"][..]),
            ("tasks_parent", &["parent_task_id", "id"][..]),
            ("tasks_forked_from", &["forked_from_task_id", "id"][..]),
        ] {
            manager
                .create_index(index(name, Tasks::Table, cols))
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SupervisorStates::Table)
                    .col(pk_uuid(SupervisorStates::ContractId))
                    .col(uuid(SupervisorStates::OwnerId))
                    .col(uuid_uniq(SupervisorStates::TaskId))
                    .col(timestamp_with_time_zone(SupervisorStates::LastActivity))
                    .col(timestamp_with_time_zone(SupervisorStates::CreatedAt))
                    .col(timestamp_with_time_zone(SupervisorStates::UpdatedAt))
                    .foreign_key(&mut fk(
                        SupervisorStates::ContractId,
                        Contracts::Table,
                        Contracts::Id,
                    ))
                    .foreign_key(&mut fk(SupervisorStates::TaskId, Tasks::Table, Tasks::Id))
                    .to_owned(),
            )
            .await?;
        // A conversation row is one segment of a structurally shared log: it sees the
        // first `base_length` messages of its parent, then its own messages from position
        // `base_length` up to `length`. Forks and rewinds add a segment, never copy.
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(pk_uuid(Conversations::Id))
                    .col(uuid(Conversations::OwnerId))
                    .col(uuid(Conversations::TaskId))
                    .col(uuid_null(Conversations::ParentId))
                    .col(integer(Conversations::BaseLength))
                    .col(integer(Conversations::Length))
                    .col(timestamp_with_time_zone(Conversations::CreatedAt))
                    .foreign_key(&mut fk(Conversations::OwnerId, Owners::Table, Owners::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(uuid(Messages::ConversationId))
                    .col(integer(Messages::Position))
                    .col(uuid_uniq(Messages::Id))
                    .col(uuid(Messages::OwnerId))
                    .col(string_len(Messages::Role, 16))
                    .col(text(Messages::Content))
                    .col(text_null(Messages::Phase))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Messages::ConversationId)
                            .col(Messages::Position),
                    )
                    .foreign_key(&mut fk(
                        Messages::ConversationId,
                        Conversations::Table,
                        Conversations::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskEvents::Table)
                    .col(uuid(TaskEvents::TaskId))
                    .col(big_integer(TaskEvents::Sequence))
                    .col(uuid_uniq(TaskEvents::Id))
                    .col(uuid(TaskEvents::OwnerId))
                    .col(string_len(TaskEvents::EventType, 16))
                    .col(text(TaskEvents::Data))
                    .col(timestamp_with_time_zone(TaskEvents::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(TaskEvents::TaskId)
                            .col(TaskEvents::Sequence),
                    )
                    .foreign_key(&mut fk(TaskEvents::TaskId, Tasks::Table, Tasks::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationSnapshots::Table)
                    .col(pk_uuid(ConversationSnapshots::Id))
                    .col(uuid(ConversationSnapshots::OwnerId))
                    .col(uuid(ConversationSnapshots::TaskId))
                    .col(uuid(ConversationSnapshots::ConversationId))
                    .col(integer(ConversationSnapshots::Length))
                    .col(timestamp_with_time_zone(ConversationSnapshots::CreatedAt))
                    .foreign_key(&mut fk(
                        ConversationSnapshots::ConversationId,
                        Conversations::Table,
                        Conversations::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Checkpoints::Table)
                    .col(pk_uuid(Checkpoints::Id))
                    .col(uuid(Checkpoints::OwnerId))
                    .col(uuid(Checkpoints::TaskId))
                    .col(integer(Checkpoints::Number))
                    .col(string_len(Checkpoints::CommitSha, 64))
                    .col(text_null(Checkpoints::Branch))
                    .col(text(Checkpoints::Message))
                    .col(text_null(Checkpoints::FilesChanged))
                    .col(uuid(Checkpoints::SnapshotId))
                    .col(integer(Checkpoints::MessageCount))
                    .col(timestamp_with_time_zone(Checkpoints::CreatedAt))
                    .foreign_key(&mut fk(Checkpoints::TaskId, Tasks::Table, Tasks::Id))
                    .foreign_key(&mut fk(
                        Checkpoints::SnapshotId,
                        ConversationSnapshots::Table,
                        ConversationSnapshots::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "checkpoints_task_number",
                    Checkpoints::Table,
                    &["task_id", "number"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        // The timeline cursor is (tx_id, seq). On SQLite writers are serialised, tx_id
        // stays 0 and seq alone is commit-ordered. On PostgreSQL tx_id is the writing
        // transaction's id and readers stop below the oldest transaction in flight, so a
        // cursor never goes backwards under concurrent writers.
        let mut tx_id = big_integer(HistoryEvents::TxId);
        if backend == sea_orm::DatabaseBackend::Postgres {
            tx_id.default(Expr::cust("(pg_current_xact_id()::text)::bigint"));
        } else {
            tx_id.default(0);
        }
        manager
            .create_table(
                Table::create()
                    .table(HistoryEvents::Table)
                    .col(big_pk_auto(HistoryEvents::Seq))
                    .col(tx_id)
                    .col(uuid_uniq(HistoryEvents::Id))
                    .col(uuid(HistoryEvents::OwnerId))
                    .col(string_len(HistoryEvents::EventType, 32))
                    .col(uuid_null(HistoryEvents::ContractId))
                    .col(uuid_null(HistoryEvents::TaskId))
                    .col(text_null(HistoryEvents::Phase))
                    .col(text(HistoryEvents::Data))
                    .col(timestamp_with_time_zone(HistoryEvents::CreatedAt))
                    .foreign_key(&mut fk(HistoryEvents::OwnerId, Owners::Table, Owners::Id))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("history_owner_cursor", &["owner_id", "tx_id", "seq"][..]),
            (
                "history_contract_cursor",
                &["contract_id", "tx_id", "seq"][..],
            ),
            ("history_task_cursor", &["task_id", "tx_id", "seq"][..]),
        ] {
            manager
                .create_index(index(name, HistoryEvents::Table, cols))
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(uuid(IdempotencyKeys::OwnerId))
                    .col(string_len(IdempotencyKeys::Mutation, 64))
                    .col(uuid(IdempotencyKeys::TaskId))
                    .col(text(IdempotencyKeys::Key))
                    .col(string_len(IdempotencyKeys::RequestHash, 64))
                    .col(text(IdempotencyKeys::Result))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::OwnerId)
                            .col(IdempotencyKeys::Mutation)
                            .col(IdempotencyKeys::TaskId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            HistoryEvents::Table.into_iden(),
            Checkpoints::Table.into_iden(),
            ConversationSnapshots::Table.into_iden(),
            TaskEvents::Table.into_iden(),
            Messages::Table.into_iden(),
            Conversations::Table.into_iden(),
            SupervisorStates::Table.into_iden(),
            Tasks::Table.into_iden(),
            Contracts::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Owners::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
