use async_graphql::{Context, ID, Object, Result};

use super::connection::{PageArgs, page_cost, resolve};
use super::cursor::ContractKey;
use super::types::checkpoint::Checkpoint;
use super::types::code_operation::CodeOperation;
use super::types::contract::{Contract, ContractConnection};
use super::types::daemon::{Daemon, DaemonConnection};
use super::types::daemon_work::DaemonWork;
use super::types::filters::{ContractFilter, TaskFilter, TimelineFilter};
use super::types::history_event::{HistoryEventConnection, timeline_connection};
use super::types::task::{Task, TaskConnection, task_connection};
use super::types::viewer::Viewer;
use super::{app, connection::TotalCount, owner, parse_id, viewer};
use crate::entities::ids::DaemonId;
use crate::entities::{contract, daemon};
use crate::store::keyset::Window;
use crate::store::{checkpoints, code_operations, contracts, daemons, tasks};

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
    ///
    /// A daemon key may read only the tasks on its daemon (others are FORBIDDEN).
    async fn task(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Task>> {
        let id = parse_id(&id, "task")?;
        let scope = app(ctx).store.scope(owner(ctx)?);
        let task = tasks::by_id(scope, id).await?;
        if let Some(t) = &task {
            viewer(ctx)?.may_report(t)?;
        }
        Ok(task.map(Task))
    }

    /// A code operation by id; null when it does not exist or belongs to another owner.
    /// A daemon key may read only the operations of tasks on its daemon.
    async fn code_operation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CodeOperation>> {
        let id = parse_id(&id, "code operation")?;
        let store = &app(ctx).store;
        let scope = store.scope(owner(ctx)?);
        let Some(op) = code_operations::by_id(scope, id).await? else {
            return Ok(None);
        };
        if viewer(ctx)?.daemon.is_some() {
            let task = tasks::by_id(scope, op.task_id).await?;
            if let Some(t) = &task {
                viewer(ctx)?.may_report(t)?;
            }
        }
        Ok(Some(CodeOperation(op)))
    }

    /// The viewer's daemons, oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn daemons(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<DaemonConnection> {
        let store = app(ctx).store.clone();
        let owner_id = owner(ctx)?;
        let read = |window: Window<DaemonId>| async move {
            let page = daemons::page(store.scope(owner_id), &window).await?;
            let total = TotalCount::new(move || {
                let store = store.clone();
                async move { daemons::count(store.scope(owner_id)).await }
            });
            Ok((page, total))
        };
        let args = PageArgs::new(first, after, last, before);
        Ok(resolve(&args, read, |d: &daemon::Model| d.id, Daemon).await?)
    }

    /// A daemon by id; null when it does not exist or belongs to another owner.
    async fn daemon(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Daemon>> {
        let id = parse_id(&id, "daemon")?;
        let scope = app(ctx).store.scope(owner(ctx)?);
        Ok(daemons::by_id(scope, id).await?.map(Daemon))
    }

    /// For a daemon key: the work its daemon may take. Asking counts as a heartbeat.
    /// The poll a daemon falls back on; `workAvailable` says when to ask.
    async fn daemon_work(&self, ctx: &Context<'_>) -> Result<DaemonWork> {
        viewer(ctx)?.daemon()?;
        Ok(DaemonWork)
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
