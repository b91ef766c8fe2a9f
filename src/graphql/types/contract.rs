use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::checkpoint::{Checkpoint, CheckpointConnection};
use super::filters::{TaskFilter, TimelineFilter};
use super::history_event::{HistoryEventConnection, timeline_connection};
use super::message::MessageConnection;
use super::supervisor::Supervisor;
use super::task::{TaskConnection, conversation_connection, task_connection};
use crate::domain::contracts::phases_of;
use crate::entities::ids::ContractId;
use crate::entities::kinds::ContractStatus;
use crate::entities::{checkpoint, contract};
use crate::error::AppError;
use crate::graphql::connection::{PageArgs, TotalCount, connection, page_cost, resolve};
use crate::graphql::cursor::CheckpointKey;
use crate::graphql::{app, loaders, owner, to_id};
use crate::store::checkpoints;
use crate::store::keyset::Window;

/// A multi-phase project driven by a supervisor agent.
pub struct Contract(pub contract::Model);

connection!(ContractConnection, ContractEdge, Contract, "contracts");

/// A filter naming another contract than this one matches nothing.
fn scoped(given: Option<ContractId>, this: ContractId) -> Option<ContractId> {
    match given {
        Some(other) if other != this => Some(ContractId(Uuid::nil())),
        _ => Some(this),
    }
}

/// A multi-phase project driven by a supervisor agent.
#[Object]
impl Contract {
    /// Unique id of the contract.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Name of the contract.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the contract is about.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Ordered phases of this contract; defaults to research, specify, plan, execute, review.
    async fn phases(&self) -> Result<Vec<String>> {
        Ok(phases_of(&self.0)?)
    }
    /// The phase the contract is in.
    async fn phase(&self) -> &str {
        &self.0.phase
    }
    /// ACTIVE, COMPLETED or ARCHIVED.
    async fn status(&self) -> ContractStatus {
        self.0.status
    }
    /// The git repository the contract works in, if any (a canonical absolute path).
    async fn repository(&self) -> Option<&str> {
        self.0.repository.as_deref()
    }
    /// When the contract was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the contract last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The contract's supervisor.
    async fn supervisor(&self, ctx: &Context<'_>) -> Result<Option<Supervisor>> {
        let state = loaders(ctx).supervisors.load_one(self.0.id).await?;
        Ok(state.map(|state| Supervisor {
            state,
            phase: self.0.phase.clone(),
        }))
    }
    /// The supervisor's conversation across all phases (its current branch), oldest
    /// first; with `phase`, only the messages written in that phase.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        phase: Option<String>,
    ) -> Result<MessageConnection> {
        let args = PageArgs::new(first, after, last, before);
        args.window::<i32>()?;
        let state = loaders(ctx).supervisors.load_one(self.0.id).await?;
        let state = state.ok_or_else(|| AppError::internal("contract without supervisor"))?;
        let task = loaders(ctx).tasks.load_one(state.task_id).await?;
        let task = task.ok_or_else(|| AppError::internal("supervisor task missing"))?;
        Ok(conversation_connection(ctx, task.conversation_id, phase, args).await?)
    }
    /// This contract's slice of the timeline: the contract's own events and its tasks' events.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<TimelineFilter>,
    ) -> Result<HistoryEventConnection> {
        let mut filter = filter.unwrap_or_default().into_store()?;
        filter.contract_id = scoped(filter.contract_id, self.0.id);
        Ok(timeline_connection(ctx, PageArgs::new(first, after, last, before), filter).await?)
    }
    /// The contract's tasks, oldest first, the supervisor task included.
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
        let mut filter = filter.unwrap_or_default().into_store()?;
        filter.contract_id = scoped(filter.contract_id, self.0.id);
        Ok(task_connection(ctx, PageArgs::new(first, after, last, before), filter).await?)
    }
    /// Checkpoints of every task of the contract, oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn checkpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<CheckpointConnection> {
        let store = app(ctx).store.clone();
        let (owner_id, contract_id) = (owner(ctx)?, self.0.id);
        let read = |window: Window<CheckpointKey>| async move {
            let window = window.map(|k| k.0);
            let page =
                checkpoints::contract_page(store.scope(owner_id), contract_id, &window).await?;
            let total = TotalCount::new(move || {
                let store = store.clone();
                async move { checkpoints::count_of_contract(store.scope(owner_id), contract_id).await }
            });
            Ok((page, total))
        };
        let args = PageArgs::new(first, after, last, before);
        let key = |c: &checkpoint::Model| CheckpointKey(c.id);
        Ok(resolve(&args, read, key, Checkpoint).await?)
    }
}
