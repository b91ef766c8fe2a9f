use async_graphql::{Context, ID, Json, Object, Result};
use chrono::{DateTime, Utc};

use super::{contract::Contract, task::Task};
use crate::entities::history_event;
use crate::entities::kinds::HistoryEventType;
use crate::error::AppResult;
use crate::graphql::connection::{PageArgs, TotalCount, connection};
use crate::graphql::cursor::Cursor;
use crate::graphql::{app, json, loaders, owner, to_id};
use crate::store::OwnerScope;
use crate::store::history::{self, TimelineCursor, TimelineFilter};

/// One thing that happened, on the unified timeline.
pub struct HistoryEvent(pub history_event::Model);

connection!(
    HistoryEventConnection,
    HistoryEventEdge,
    HistoryEvent,
    "history events"
);

/// A page of the viewer's timeline matching `filter`.
pub async fn timeline_connection(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: TimelineFilter,
) -> AppResult<HistoryEventConnection> {
    let window = args.window::<TimelineCursor>()?;
    let store = app(ctx).store.clone();
    let owner_id = owner(ctx)?;
    let page = history::page(OwnerScope::new(store.db(), owner_id), &filter, &window).await?;
    let total = TotalCount::new(move || {
        let (store, filter) = (store.clone(), filter.clone());
        async move { history::count(OwnerScope::new(store.db(), owner_id), &filter).await }
    });
    Ok(HistoryEventConnection::build(
        page,
        |e| TimelineCursor::of(e).encode(),
        HistoryEvent,
        total,
    ))
}

/// One thing that happened, on the unified timeline.
#[Object]
impl HistoryEvent {
    /// Unique id of the event.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Opaque; the same value pages the timeline and resumes historyEvents(after:).
    async fn cursor(&self) -> String {
        TimelineCursor::of(&self.0).encode()
    }
    /// What happened.
    #[graphql(name = "type")]
    async fn event_type(&self) -> HistoryEventType {
        self.0.event_type
    }
    /// The contract it happened in, if any.
    async fn contract(&self, ctx: &Context<'_>) -> Result<Option<Contract>> {
        let Some(id) = self.0.contract_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).contracts.load_one(id).await?.map(Contract))
    }
    /// The task it happened to, if any.
    async fn task(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        let Some(id) = self.0.task_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).tasks.load_one(id).await?.map(Task))
    }
    /// The contract's phase when it happened.
    async fn phase(&self) -> Option<&str> {
        self.0.phase.as_deref()
    }
    /// Details, per event type (see HistoryEventType).
    async fn data(&self) -> Result<Json<serde_json::Value>> {
        Ok(json(&self.0.data)?)
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
