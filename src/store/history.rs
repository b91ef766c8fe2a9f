//! The timeline: history events keyed by the commit-ordered cursor `(tx_id, seq)`.

use super::OwnerScope;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::event_data::EventData;
use crate::entities::history_event::{self, Column, Entity, Model};
use crate::entities::ids::{ContractId, HistoryEventId, OwnerId, TaskId};
use crate::entities::kinds::HistoryEventType;
use crate::error::AppResult;
use crate::time::now;

/// A position in the timeline. Opaque to clients (see `graphql::cursor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimelineCursor {
    pub tx_id: i64,
    pub seq: i64,
}

impl TimelineCursor {
    pub fn of(event: &Model) -> Self {
        Self {
            tx_id: event.tx_id,
            seq: event.seq,
        }
    }
}

/// An event to record; the owner, contract and task say who may see it and where. Its
/// type is its data's.
pub struct NewEvent {
    pub owner_id: OwnerId,
    pub contract_id: Option<ContractId>,
    pub task_id: Option<TaskId>,
    pub phase: Option<String>,
    pub data: EventData,
}

pub async fn insert(db: &impl ConnectionTrait, event: NewEvent) -> AppResult<Model> {
    let model = history_event::ActiveModel {
        seq: NotSet,
        tx_id: NotSet,
        id: Set(HistoryEventId::new()),
        owner_id: Set(event.owner_id),
        event_type: Set(event.data.event_type()),
        contract_id: Set(event.contract_id),
        task_id: Set(event.task_id),
        phase: Set(event.phase),
        data: Set(event.data.to_json()),
        created_at: Set(now()),
    };
    Ok(Entity::insert(model).exec_with_returning(db).await?)
}

/// Which events a timeline read returns (besides the owner, always applied).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimelineFilter {
    pub contract_id: Option<ContractId>,
    pub task_id: Option<TaskId>,
    pub types: Option<Vec<HistoryEventType>>,
    pub phase: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

struct ByCursor;

/// Events strictly after `k`, as a condition the backend can serve with an index range
/// on `(…, tx_id, seq)` (the live fan-out reads with it too).
pub(super) fn after_cursor(backend: DatabaseBackend, k: &TimelineCursor) -> Condition {
    match backend {
        DatabaseBackend::Postgres => Condition::all().add(cursor_tuple().gt(value_tuple(k))),
        _ => Condition::all()
            .add(Column::TxId.eq(k.tx_id))
            .add(Column::Seq.gt(k.seq)),
    }
}

fn cursor_tuple() -> Expr {
    Expr::tuple([Expr::col(Column::TxId), Expr::col(Column::Seq)])
}

fn value_tuple(k: &TimelineCursor) -> Expr {
    Expr::tuple([Expr::val(k.tx_id), Expr::val(k.seq)])
}

impl Keyset for ByCursor {
    type Entity = Entity;
    type Key = TimelineCursor;

    fn after(k: &TimelineCursor) -> Condition {
        Condition::any()
            .add(Column::TxId.gt(k.tx_id))
            .add(Column::TxId.eq(k.tx_id).and(Column::Seq.gt(k.seq)))
    }
    fn before(k: &TimelineCursor) -> Condition {
        Condition::any()
            .add(Column::TxId.lt(k.tx_id))
            .add(Column::TxId.eq(k.tx_id).and(Column::Seq.lt(k.seq)))
    }
    // The OR forms above cannot be an index range. PostgreSQL compares the row value;
    // on SQLite every row has tx_id 0, so the range is on seq alone.
    fn after_on(k: &TimelineCursor, backend: DatabaseBackend) -> Condition {
        after_cursor(backend, k)
    }
    fn before_on(k: &TimelineCursor, backend: DatabaseBackend) -> Condition {
        match backend {
            DatabaseBackend::Postgres => Condition::all().add(cursor_tuple().lt(value_tuple(k))),
            _ => Condition::all()
                .add(Column::TxId.eq(k.tx_id))
                .add(Column::Seq.lt(k.seq)),
        }
    }
    fn order_columns() -> Vec<Column> {
        vec![Column::TxId, Column::Seq]
    }
}

/// The condition that keeps a PostgreSQL read below the horizon, assuming `floor`.
pub(super) fn below_horizon(floor: i64) -> Expr {
    Expr::cust_with_values(super::horizon::BELOW_HORIZON, [floor])
}

/// The owner's events that match `filter` and are safe to hand out: on PostgreSQL only
/// those below the horizon (the oldest makima write transaction still in flight, see
/// `horizon`), so that no event can later appear before a cursor a reader has
/// already seen.
pub(super) fn visible(
    backend: DatabaseBackend,
    owner_id: OwnerId,
    filter: &TimelineFilter,
    floor: i64,
) -> Select<Entity> {
    let mut q = Entity::find().filter(Column::OwnerId.eq(owner_id));
    if backend == DatabaseBackend::Postgres {
        q = q.filter(below_horizon(floor));
    }
    if let Some(c) = filter.contract_id {
        q = q.filter(Column::ContractId.eq(c));
    }
    if let Some(t) = filter.task_id {
        q = q.filter(Column::TaskId.eq(t));
    }
    if let Some(types) = &filter.types {
        q = q.filter(Column::EventType.is_in(types.iter().copied()));
    }
    if let Some(p) = &filter.phase {
        q = q.filter(Column::Phase.eq(p.as_str()));
    }
    if let Some(s) = filter.since {
        q = q.filter(Column::CreatedAt.gte(s));
    }
    if let Some(u) = filter.until {
        q = q.filter(Column::CreatedAt.lt(u));
    }
    q
}

pub async fn page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &TimelineFilter,
    window: &Window<TimelineCursor>,
) -> AppResult<Paged<Model>> {
    let (db, owner_id) = scope.parts();
    if filter.types.as_ref().is_some_and(|t| t.is_empty()) {
        return Ok(Paged {
            items: vec![],
            has_previous: false,
            has_next: false,
        });
    }
    keyset::page::<ByCursor>(
        db,
        visible(db.get_database_backend(), owner_id, filter, scope.floor()),
        window,
    )
    .await
}

/// The first or last `limit + 1` events of each contract matching `filter` (whose own
/// `contract_id` is left out), in one statement.
pub async fn first_per_contract(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    contract_ids: &[ContractId],
    filter: &TimelineFilter,
    limit: u64,
    from_end: bool,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    if filter.types.as_ref().is_some_and(|t| t.is_empty()) {
        return Ok(vec![]);
    }
    let filter = TimelineFilter {
        contract_id: None,
        ..filter.clone()
    };
    let base = visible(db.get_database_backend(), owner_id, &filter, scope.floor());
    keyset::per_parent::<ByCursor, _>(db, base, Column::ContractId, contract_ids, limit, from_end)
        .await
}

pub async fn count(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &TimelineFilter,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    if filter.types.as_ref().is_some_and(|t| t.is_empty()) {
        return Ok(0);
    }
    Ok(
        visible(db.get_database_backend(), owner_id, filter, scope.floor())
            .count(db)
            .await?,
    )
}

pub async fn by_id(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: HistoryEventId,
) -> AppResult<Option<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::Id.eq(id))
        .one(db)
        .await?)
}

/// The task's newest `limit` events of type `event_type`, newest first.
pub async fn latest_of_task(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
    event_type: HistoryEventType,
    limit: u64,
) -> AppResult<Vec<Model>> {
    let (db, owner_id) = scope.parts();
    Ok(Entity::find()
        .filter(Column::OwnerId.eq(owner_id))
        .filter(Column::TaskId.eq(task_id))
        .filter(Column::EventType.eq(event_type))
        .order_by_desc(Column::TxId)
        .order_by_desc(Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}
