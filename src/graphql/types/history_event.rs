use async_graphql::{Context, ID, Json, Object, Result};
use chrono::{DateTime, Utc};

use super::{contract::Contract, task::Task};
use crate::entities::history_event;
use crate::entities::kinds::HistoryEventType;
use crate::error::AppResult;
use crate::graphql::connection::{PageArgs, TotalCount, connection, resolve};
use crate::graphql::cursor::Cursor;
use crate::graphql::loaders::{PageKey, batched};
use crate::graphql::{app, json, loaders, owner, to_id};
use crate::store::history::{self, TimelineCursor, TimelineFilter};
use crate::store::keyset::Window;

/// One thing that happened, on the unified timeline.
pub struct HistoryEvent(pub history_event::Model);

connection!(
    HistoryEventConnection,
    HistoryEventEdge,
    HistoryEvent,
    "history events"
);

/// A page of the viewer's timeline matching `filter`. The first or last page of a
/// contract's slice is read with those of the other contracts of the response.
pub async fn timeline_connection(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: TimelineFilter,
) -> AppResult<HistoryEventConnection> {
    let store = app(ctx).store.clone();
    let owner_id = owner(ctx)?;
    let read = |window: Window<TimelineCursor>| async move {
        // The parent, not the filter, says which contract.
        let siblings = TimelineFilter {
            contract_id: None,
            ..filter.clone()
        };
        let key = filter
            .contract_id
            .and_then(|contract| PageKey::of(contract, siblings, &window));
        let page = match key {
            Some(key) => batched(loaders(ctx).contract_history.load_one(key).await?)?,
            None => history::page(store.scope(owner_id), &filter, &window).await?,
        };
        let total = TotalCount::new(move || {
            let (store, filter) = (store.clone(), filter.clone());
            async move { history::count(store.scope(owner_id), &filter).await }
        });
        Ok((page, total))
    };
    resolve(&args, read, TimelineCursor::of, HistoryEvent).await
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
