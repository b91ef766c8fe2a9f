//! Schema migrations for makima. Each migration is a frozen file: once released it is
//! never edited; changes come as new migrations.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_initial;
mod m20261125_000002_code_operations;
mod m20261126_000003_history_tail_index;
mod m20261126_000004_owner_scoped_history_indexes;
mod m20261204_000001_repository_owners;
mod m20261204_000002_code_operation_intents;
mod m20261205_000001_daemons;
mod m20261205_000002_remote_code_operations;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261125_000002_code_operations::Migration),
            Box::new(m20261126_000003_history_tail_index::Migration),
            Box::new(m20261126_000004_owner_scoped_history_indexes::Migration),
            Box::new(m20261204_000001_repository_owners::Migration),
            Box::new(m20261204_000002_code_operation_intents::Migration),
            Box::new(m20261205_000001_daemons::Migration),
            Box::new(m20261205_000002_remote_code_operations::Migration),
        ]
    }
}
