use async_graphql::{Context, ID, Object, Result};

use super::connection::{PageArgs, page_cost, resolve};
use super::cursor::ContractKey;
use super::types::checkpoint::Checkpoint;
use super::types::contract::{Contract, ContractConnection};
use super::types::filters::{ContractFilter, TaskFilter, TimelineFilter};
use super::types::history_event::{HistoryEventConnection, timeline_connection};
use super::types::task::{Task, TaskConnection, task_connection};
use super::types::viewer::Viewer;
use super::{app, connection::TotalCount, owner, parse_id, viewer};
use crate::entities::contract;
use crate::store::keyset::Window;
use crate::store::{checkpoints, contracts, tasks};

/// Root single fetches read their row directly: a DataLoader would only add its batching
/// delay to a lone key. Relations below them go through the loaders.
pub struct Query;

/// Reads. Every document is priced before it runs: each field costs 1, and a
/// connection's selection counts once per item of the page it asks for (`first` or
/// `last`, default 20), so `contracts(first: 10) { nodes { tasks(first: 100) { nodes { id
/// } } } }` costs 10 × (100 × 2 + 2) + 1 = 2,021. A document that costs more than 50,000,
/// selects more than 1,000 fields or nests deeper than 20 is refused with
/// `GRAPHQL_VALIDATION_FAILED` before it touches the database.
#[Object]
impl Query {
    /// The owner that the request's API key belongs to.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        Ok(Viewer(viewer(ctx)?.clone()))
    }

    /// A contract by id; null when it does not exist or belongs to another owner.
    async fn contract(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Contract>> {
        let id = parse_id(&id, "contract")?;
        let scope = app(ctx).store.scope(owner(ctx)?);
        Ok(contracts::by_id(scope, id).await?.map(Contract))
    }

    /// The viewer's contracts, oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn contracts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ContractFilter>,
    ) -> Result<ContractConnection> {
        let store = app(ctx).store.clone();
        let owner_id = owner(ctx)?;
        let filter = filter.unwrap_or_default().into_store();
        let read = |window: Window<ContractKey>| async move {
            let window = window.map(|k| k.0);
            let page = contracts::page(store.scope(owner_id), &filter, &window).await?;
            let total = TotalCount::new(move || {
                let (store, filter) = (store.clone(), filter.clone());
                async move { contracts::count(store.scope(owner_id), &filter).await }
            });
            Ok((page, total))
        };
        let args = PageArgs::new(first, after, last, before);
        Ok(resolve(
            &args,
            read,
            |c: &contract::Model| ContractKey(c.id),
            Contract,
        )
        .await?)
    }

    /// A task by id; null when it does not exist or belongs to another owner.
    async fn task(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Task>> {
        let id = parse_id(&id, "task")?;
        let scope = app(ctx).store.scope(owner(ctx)?);
        Ok(tasks::by_id(scope, id).await?.map(Task))
    }

    /// The viewer's tasks, oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<TaskFilter>,
    ) -> Result<TaskConnection> {
        let filter = filter.unwrap_or_default().into_store()?;
        Ok(task_connection(ctx, PageArgs::new(first, after, last, before), filter).await?)
    }

    /// A checkpoint by id; null when it does not exist or belongs to another owner.
    async fn checkpoint(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Checkpoint>> {
        let id = parse_id(&id, "checkpoint")?;
        let scope = app(ctx).store.scope(owner(ctx)?);
        Ok(checkpoints::by_id(scope, id).await?.map(Checkpoint))
    }

    /// Every history event the viewer may see, oldest first, across all contracts and tasks.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<TimelineFilter>,
    ) -> Result<HistoryEventConnection> {
        let filter = filter.unwrap_or_default().into_store()?;
        Ok(timeline_connection(ctx, PageArgs::new(first, after, last, before), filter).await?)
    }
}
