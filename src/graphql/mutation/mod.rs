//! Mutation roots, one file per area, merged into one `Mutation`.

mod contracts;
mod daemons;
mod fork;
mod ingest;
mod resume;
mod rewind;
mod tasks;

#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    contracts::ContractMutation,
    tasks::TaskMutation,
    ingest::IngestMutation,
    resume::ResumeMutation,
    rewind::RewindMutation,
    fork::ForkMutation,
    daemons::DaemonMutation,
);
