use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

use super::checkpoint::{Checkpoint, CheckpointConnection};
use super::contract::Contract;
use super::daemon::Daemon;
use super::filters::TaskEventFilter;
use super::fork_origin::ForkOrigin;
use super::message::{Message, MessageConnection};
use super::task_event::{TaskEvent, TaskEventConnection};
use crate::entities::ids::{ConversationId, TaskId};
use crate::entities::kinds::TaskStatus;
use crate::entities::{checkpoint, message, task, task_event};
use crate::error::AppResult;
use crate::graphql::connection::{PageArgs, TotalCount, connection, page_cost, resolve};
use crate::graphql::cursor::CheckpointNumber;
use crate::graphql::loaders::{PageKey, batched};
use crate::graphql::{app, loaders, owner, to_id};
use crate::store::keyset::Window;
use crate::store::{checkpoints, conversations, task_events, tasks};

/// An agent run: its status, git worktree, conversation, output and checkpoints.
pub struct Task(pub task::Model);

connection!(TaskConnection, TaskEdge, Task, "tasks");

/// Lists tasks matching `filter` (already scoped by the caller) as a connection. The
/// first or last page of a contract's tasks is read with those of the other contracts
/// of the response.
pub async fn task_connection(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: tasks::TaskFilter,
) -> AppResult<TaskConnection> {
    let store = app(ctx).store.clone();
    let owner_id = owner(ctx)?;
    let read = |window: Window<TaskId>| async move {
        // The parent, not the filter, says which contract.
        let siblings = tasks::TaskFilter {
            contract_id: None,
            ..filter.clone()
        };
        let key = filter
            .contract_id
            .and_then(|contract| PageKey::of(contract, siblings, &window));
        let page = match key {
            Some(key) => batched(loaders(ctx).contract_tasks.load_one(key).await?)?,
            None => tasks::page(store.scope(owner_id), &filter, &window).await?,
        };
        let total = TotalCount::new(move || {
            let (store, filter) = (store.clone(), filter.clone());
            async move { tasks::count(store.scope(owner_id), &filter).await }
        });
        Ok((page, total))
    };
    resolve(&args, read, |t: &task::Model| t.id, Task).await
}

/// A page of the conversation whose head segment is `head`. Its first or last page
/// without a phase is read with those of the other conversations of the response.
pub async fn conversation_connection(
    ctx: &Context<'_>,
    head: ConversationId,
    phase: Option<String>,
    args: PageArgs,
) -> AppResult<MessageConnection> {
    let store = app(ctx).store.clone();
    let owner_id = owner(ctx)?;
    let read = |window: Window<i32>| async move {
        if let Some(key) = PageKey::of(head, (), &window).filter(|_| phase.is_none()) {
            let (page, length) = batched(loaders(ctx).conversation_pages.load_one(key).await?)?;
            return Ok((page, TotalCount::fixed(length as u64)));
        }
        let view = store.conversation(head).await?;
        let page =
            conversations::page(store.scope(owner_id), &view, phase.as_deref(), &window).await?;
        let total = match phase {
            None => TotalCount::fixed(view.length as u64),
            Some(phase) => TotalCount::new(move || {
                let (store, view, phase) = (store.clone(), view.clone(), phase.clone());
                async move { conversations::count_phase(store.scope(owner_id), &view, &phase).await }
            }),
        };
        Ok((page, total))
    };
    resolve(&args, read, |m: &message::Model| m.position, Message).await
}

async fn load_task(ctx: &Context<'_>, id: Option<TaskId>) -> Result<Option<Task>> {
    let Some(id) = id else { return Ok(None) };
    Ok(loaders(ctx).tasks.load_one(id).await?.map(Task))
}

/// An agent run: its status, git worktree, conversation, output and checkpoints.
#[Object]
impl Task {
    /// Unique id of the task.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Short name of the task.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the task is meant to do.
    async fn plan(&self) -> Option<&str> {
        self.0.plan.as_deref()
    }
    /// PENDING, RUNNING, PAUSED, INTERRUPTED, DONE or FAILED.
    async fn status(&self) -> TaskStatus {
        self.0.status
    }
    /// Whether this task runs a contract's supervisor.
    async fn is_supervisor(&self) -> bool {
        self.0.is_supervisor
    }
    /// The contract the task works for, if any.
    async fn contract(&self, ctx: &Context<'_>) -> Result<Option<Contract>> {
        let Some(id) = self.0.contract_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).contracts.load_one(id).await?.map(Contract))
    }
    /// The task that spawned this one, if any.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        load_task(ctx, self.0.parent_task_id).await
    }
    /// The daemon that last reported running the task.
    async fn daemon_id(&self) -> Option<ID> {
        self.0.daemon_id.map(to_id)
    }
    /// The daemon the task is assigned to or ran on; null when none, or when `daemonId`
    /// names no registered daemon (one reported before daemons were registered).
    async fn daemon(&self, ctx: &Context<'_>) -> Result<Option<Daemon>> {
        let Some(id) = self.0.daemon_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).daemons.load_one(id).await?.map(Daemon))
    }
    /// Git repository of the task (a canonical absolute path).
    async fn repository(&self) -> Option<&str> {
        self.0.repository.as_deref()
    }
    /// Git worktree of the task (a canonical absolute path).
    async fn worktree_path(&self) -> Option<&str> {
        self.0.worktree_path.as_deref()
    }
    /// The task's working branch.
    async fn branch(&self) -> Option<&str> {
        self.0.branch.as_deref()
    }
    /// The branch the working branch started from.
    async fn base_branch(&self) -> Option<&str> {
        self.0.base_branch.as_deref()
    }
    /// Set when this task was forked from another task's history.
    async fn forked_from(&self) -> Option<ForkOrigin> {
        self.0.forked_from_task_id.map(|task_id| ForkOrigin {
            task_id,
            checkpoint_id: self.0.fork_checkpoint_id,
            message_count: self.0.fork_message_count.unwrap_or(0),
        })
    }
    /// Set when this task inherited the worktree of an earlier task.
    async fn continued_from(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        load_task(ctx, self.0.continued_from_task_id).await
    }
    /// Tasks forked from this one, oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn forks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<TaskConnection> {
        let filter = tasks::TaskFilter {
            forked_from_task_id: Some(self.0.id),
            ..Default::default()
        };
        Ok(task_connection(ctx, PageArgs::new(first, after, last, before), filter).await?)
    }
    /// The task's conversation (its current branch), oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<MessageConnection> {
        let args = PageArgs::new(first, after, last, before);
        Ok(conversation_connection(ctx, self.0.conversation_id, None, args).await?)
    }
    /// Output and tool-call history with timestamps, in sequence order.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<TaskEventFilter>,
    ) -> Result<TaskEventConnection> {
        let store = app(ctx).store.clone();
        let (owner_id, task_id, count) = (owner(ctx)?, self.0.id, self.0.event_count);
        let types = filter.and_then(|f| f.types);
        let read = |window: Window<i64>| async move {
            let page = match PageKey::of(task_id, types.clone(), &window) {
                Some(key) => batched(loaders(ctx).task_events.load_one(key).await?)?,
                None => {
                    let types = types.as_deref();
                    task_events::page(store.scope(owner_id), task_id, types, &window).await?
                }
            };
            let total = match types {
                None => TotalCount::fixed(count as u64),
                Some(types) => TotalCount::new(move || {
                    let (store, types) = (store.clone(), types.clone());
                    async move { task_events::count(store.scope(owner_id), task_id, Some(&types)).await }
                }),
            };
            Ok((page, total))
        };
        let args = PageArgs::new(first, after, last, before);
        Ok(resolve(&args, read, |e: &task_event::Model| e.sequence, TaskEvent).await?)
    }
    /// The task's checkpoints in the order they were taken.
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
        let (owner_id, task_id, count) = (owner(ctx)?, self.0.id, self.0.checkpoint_count);
        let read = |window: Window<CheckpointNumber>| async move {
            let page = match PageKey::of(task_id, (), &window) {
                Some(key) => batched(loaders(ctx).task_checkpoints.load_one(key).await?)?,
                None => {
                    let window = window.map(|k| k.0);
                    checkpoints::task_page(store.scope(owner_id), task_id, &window).await?
                }
            };
            Ok((page, TotalCount::fixed(count as u64)))
        };
        let args = PageArgs::new(first, after, last, before);
        let key = |c: &checkpoint::Model| CheckpointNumber(c.number);
        Ok(resolve(&args, read, key, Checkpoint).await?)
    }
    /// When the task was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the task last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the task first moved to RUNNING.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// When the task moved to DONE or FAILED (cleared by a resume).
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}
