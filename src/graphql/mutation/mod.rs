//! Mutation roots, one file per area, merged into one `Mutation`.

mod contracts;
mod ingest;
mod tasks;

#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    contracts::ContractMutation,
    tasks::TaskMutation,
    ingest::IngestMutation,
);
