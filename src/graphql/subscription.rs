//! The subscription root: live history events and task output (see `crate::events`).

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::cursor::Cursor;
use super::types::filters::TimelineFilter;
use super::types::history_event::HistoryEvent;
use super::types::task_event::TaskEvent;
use super::{owner, parse_id, viewer};
use crate::entities::kinds::HistoryEventType;
use crate::error::AppError;
use crate::events::Events;
use crate::store::history::TimelineCursor;

/// The history events after which a daemon may find new work.
const WORK_SIGNALS: &[HistoryEventType] = &[
    HistoryEventType::TaskCreated,
    HistoryEventType::TaskResumed,
    HistoryEventType::SupervisorResumed,
    HistoryEventType::TaskForked,
    HistoryEventType::CodeOperationQueued,
];

/// Work may have appeared: ask `daemonWork`.
#[derive(SimpleObject)]
pub struct WorkSignal {
    /// Where this signal stands in the timeline; resume a subscription after it.
    pub cursor: String,
}

fn events<'a>(ctx: &Context<'a>) -> Result<&'a Events> {
    ctx.data_opt::<Events>()
        .ok_or_else(|| AppError::internal("subscriptions are not served here").into())
}

pub struct Subscription;

/// Live streams over WebSocket (graphql-transport-ws or graphql-ws on /graphql).
#[Subscription]
impl Subscription {
    /// New history events, oldest first. With `after`, first replays every event after that cursor, then goes live: no gap, no duplicate.
    ///
    /// `filter` selects events as for `timeline`; `after` is a `HistoryEvent.cursor` (or
    /// a timeline edge's cursor). A client that reconnects with the last cursor it saw
    /// continues exactly where it stopped.
    async fn history_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<TimelineFilter>,
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<HistoryEvent>>> {
        let owner_id = owner(ctx)?;
        let filter = filter.unwrap_or_default().into_store()?;
        let after = after.as_deref().map(TimelineCursor::decode).transpose()?;
        let feed = events(ctx)?.history(owner_id, filter, after).await?;
        Ok(feed
            .into_stream()
            .map(|r| r.map(HistoryEvent).map_err(Into::into))
            .boxed())
    }

    /// For a daemon key: a signal each time work may have appeared for it (a task
    /// created, resumed or forked, a code operation queued), oldest first; on each, ask `daemonWork`. With
    /// `after` (a `WorkSignal.cursor`), first replays every signal after it, then goes
    /// live, so that a daemon that reconnects with its last cursor misses nothing.
    async fn work_available(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<WorkSignal>>> {
        let viewer = viewer(ctx)?;
        viewer.daemon()?;
        let filter = crate::store::history::TimelineFilter {
            types: Some(WORK_SIGNALS.to_vec()),
            ..Default::default()
        };
        let after = after.as_deref().map(TimelineCursor::decode).transpose()?;
        let feed = events(ctx)?.history(viewer.owner_id, filter, after).await?;
        Ok(feed
            .into_stream()
            .map(|r| {
                r.map(|e| WorkSignal {
                    cursor: TimelineCursor::of(&e).encode(),
                })
                .map_err(Into::into)
            })
            .boxed())
    }

    /// New events of one task's output stream; with `after` (a sequence) replays first.
    ///
    /// `after` is a `TaskEvent.sequence` (0 replays the whole stream). Another owner's
    /// task, like one that does not exist, is NOT_FOUND.
    async fn task_events(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        after: Option<i32>,
    ) -> Result<BoxStream<'static, Result<TaskEvent>>> {
        let owner_id = owner(ctx)?;
        let task_id = parse_id(&task_id, "task")?;
        let feed = events(ctx)?
            .task_events(owner_id, task_id, after.map(i64::from))
            .await?;
        Ok(feed
            .into_stream()
            .map(|r| r.map(TaskEvent).map_err(Into::into))
            .boxed())
    }
}
