//! Reads of the live fan-out (`crate::events`): every owner's new history events after
//! a cursor (the tailer), one owner's matching events after a cursor (a subscriber's
//! replay), and the task events that a batch of appends wrote.
//!
//! Like the timeline, these reads stop below the horizon (the oldest makima write
//! transaction still in flight on PostgreSQL, see `horizon`), so an event never
//! appears behind a cursor that was already handed out.

use super::OwnerScope;
use sea_orm::sea_query::{Condition, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use super::history::{TimelineCursor, TimelineFilter, after_cursor, below_horizon, visible};
use crate::entities::history_event::{Column, Entity, Model};
use crate::entities::ids::{OwnerId, TaskId};
use crate::entities::task_event;
use crate::error::AppResult;

/// `q` below the horizon, assuming `floor` (`Store::horizon_floor`).
fn readable(backend: DatabaseBackend, floor: i64, q: Select<Entity>) -> Select<Entity> {
    if backend == DatabaseBackend::Postgres {
        q.filter(below_horizon(floor))
    } else {
        q
    }
}

fn in_order(q: Select<Entity>) -> Select<Entity> {
    q.order_by_asc(Column::TxId).order_by_asc(Column::Seq)
}

/// Up to `limit` events of every owner after `cursor`, in timeline order.
pub async fn tail(
    db: &impl ConnectionTrait,
    floor: i64,
    cursor: TimelineCursor,
    limit: u64,
) -> AppResult<Vec<Model>> {
    let q = readable(
        db.get_database_backend(),
        floor,
        Entity::find().filter(after_cursor(db.get_database_backend(), &cursor)),
    );
    Ok(in_order(q).limit(limit).all(db).await?)
}

/// The cursor of the newest readable event (`0.0` on an empty timeline).
pub async fn head(db: &impl ConnectionTrait, floor: i64) -> AppResult<TimelineCursor> {
    let newest = readable(db.get_database_backend(), floor, Entity::find())
        .order_by_desc(Column::TxId)
        .order_by_desc(Column::Seq)
        .limit(1)
        .one(db)
        .await?;
    Ok(newest
        .as_ref()
        .map_or(TimelineCursor { tx_id: 0, seq: 0 }, TimelineCursor::of))
}

/// Up to `limit` of the owner's events matching `filter` after `cursor`, in timeline
/// order: a subscriber's replay.
pub async fn replay(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &TimelineFilter,
    cursor: TimelineCursor,
    limit: u64,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    if filter.types.as_ref().is_some_and(|t| t.is_empty()) {
        return Ok(vec![]);
    }
    let q = visible(db.get_database_backend(), owner_id, filter, scope.floor())
        .filter(after_cursor(db.get_database_backend(), &cursor));
    Ok(in_order(q).limit(limit).all(db).await?)
}

/// The task events with sequences in each `(task, first, last)` range (inclusive),
/// ordered by task and sequence.
pub async fn task_event_ranges(
    db: &impl ConnectionTrait,
    ranges: &[(TaskId, i64, i64)],
) -> AppResult<Vec<task_event::Model>> {
    use task_event::Column as C;
    if ranges.is_empty() {
        return Ok(vec![]);
    }
    let mut any = Condition::any();
    for &(task, first, last) in ranges {
        any = any.add(C::TaskId.eq(task).and(C::Sequence.between(first, last)));
    }
    Ok(task_event::Entity::find()
        .filter(any)
        .order_by_asc(C::TaskId)
        .order_by_asc(C::Sequence)
        .all(db)
        .await?)
}

/// Whether `event` is one of the owner's events matching `filter`: the in-memory twin
/// of the conditions `history::visible` puts in SQL (keep the two in step).
pub fn matches(owner_id: OwnerId, filter: &TimelineFilter, event: &Model) -> bool {
    event.owner_id == owner_id
        && filter
            .contract_id
            .is_none_or(|c| event.contract_id == Some(c))
        && filter.task_id.is_none_or(|t| event.task_id == Some(t))
        && filter
            .types
            .as_ref()
            .is_none_or(|ts| ts.contains(&event.event_type))
        && filter
            .phase
            .as_deref()
            .is_none_or(|p| event.phase.as_deref() == Some(p))
        && filter.since.is_none_or(|s| event.created_at >= s)
        && filter.until.is_none_or(|u| event.created_at < u)
}
