//! Conversations as structurally shared logs.
//!
//! A conversation is a chain of segments (rows of `conversations`), head first. A
//! segment sees the first `base_length` messages of its parent and owns the positions
//! `base_length..length` itself, so forks and rewinds add a segment instead of copying
//! messages, and a page costs O(page + chain depth).

use super::OwnerScope;
use std::collections::HashMap;

use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Select, Statement,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::ids::{ConversationId, OwnerId, TaskId};
use crate::entities::{conversation, message};
use crate::error::{AppError, AppResult};
use crate::time::now;

pub async fn create_root(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
) -> AppResult<conversation::Model> {
    let (db, owner_id) = scope.parts();
    let model = conversation::Model {
        id: ConversationId::new(),
        owner_id,
        task_id,
        parent_id: None,
        base_length: 0,
        length: 0,
        created_at: now(),
    };
    Ok(conversation::Entity::insert(model.into_active_model())
        .exec_with_returning(db)
        .await?)
}

pub async fn by_id(
    db: &impl ConnectionTrait,
    id: ConversationId,
) -> AppResult<conversation::Model> {
    conversation::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(format!("conversation {id} is missing")))
}

pub async fn by_ids(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    ids: &[ConversationId],
) -> AppResult<Vec<conversation::Model>> {
    let (db, owner_id) = scope.parts();
    Ok(conversation::Entity::find()
        .filter(conversation::Column::OwnerId.eq(owner_id))
        .filter(conversation::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

pub async fn set_length(
    db: &impl ConnectionTrait,
    id: ConversationId,
    length: i32,
) -> AppResult<()> {
    conversation::ActiveModel {
        id: Set(id),
        length: Set(length),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// The segments of a conversation, head first, in one recursive query.
pub async fn chain(
    db: &impl ConnectionTrait,
    head: ConversationId,
) -> AppResult<Vec<conversation::Model>> {
    let backend = db.get_database_backend();
    let sql = "WITH RECURSIVE chain(id, parent_id, depth) AS ( \
                 SELECT id, parent_id, 0 FROM conversations WHERE id = $1 \
                 UNION ALL \
                 SELECT c.id, c.parent_id, chain.depth + 1 FROM conversations c \
                 JOIN chain ON c.id = chain.parent_id) \
               SELECT c.* FROM chain JOIN conversations c ON c.id = chain.id ORDER BY chain.depth";
    let stmt = Statement::from_sql_and_values(backend, sql, [head.into()]);
    let segments = conversation::Model::find_by_statement(stmt).all(db).await?;
    if segments.is_empty() {
        return Err(AppError::internal(format!(
            "conversation {head} is missing"
        )));
    }
    Ok(segments)
}

pub use super::chains::View;

/// `a OR b OR …` nested as a balanced tree: SQLite refuses an expression deeper than
/// 1,000, and a flat OR over the ranges of a chain thousands of rewinds deep is that deep.
fn balanced_any(mut terms: Vec<Condition>) -> Condition {
    const FAN_OUT: usize = 16;
    if terms.is_empty() {
        return Condition::any();
    }
    while terms.len() > FAN_OUT {
        let mut grouped = Vec::with_capacity(terms.len().div_ceil(FAN_OUT));
        let mut rest = terms.into_iter().peekable();
        while rest.peek().is_some() {
            grouped.push(
                rest.by_ref()
                    .take(FAN_OUT)
                    .fold(Condition::any(), Condition::add),
            );
        }
        terms = grouped;
    }
    terms.into_iter().fold(Condition::any(), Condition::add)
}

impl View {
    /// Rows of `messages` visible in this view between positions `from..to`.
    fn condition(&self, from: i32, to: i32) -> Condition {
        let segment_range = |segment: ConversationId, lo: i32, hi: i32| {
            use sea_orm::sea_query::ExprTrait;
            message::Column::ConversationId
                .eq(segment)
                .and(message::Column::Position.gte(lo))
                .and(message::Column::Position.lt(hi))
        };
        let terms: Vec<_> = self
            .ranges_between(from, to)
            .into_iter()
            .map(|(segment, lo, hi)| Condition::all().add(segment_range(segment, lo, hi)))
            .collect();
        balanced_any(terms)
    }

    fn select(&self, owner_id: OwnerId, from: i32, to: i32) -> Select<message::Entity> {
        message::Entity::find()
            .filter(message::Column::OwnerId.eq(owner_id))
            .filter(self.condition(from, to))
    }
}

/// Messages at positions `from..to` of the view, in order.
pub async fn range(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    view: &View,
    from: i32,
    to: i32,
) -> AppResult<Vec<message::Model>> {
    let (db, owner_id) = scope.parts();
    if from >= to {
        return Ok(vec![]);
    }
    Ok(view
        .select(owner_id, from, to)
        .order_by(message::Column::Position, Order::Asc)
        .all(db)
        .await?)
}

struct ByPosition;

impl Keyset for ByPosition {
    type Entity = message::Entity;
    type Key = i32;
    fn after(k: &i32) -> Condition {
        Condition::all().add(message::Column::Position.gt(*k))
    }
    fn before(k: &i32) -> Condition {
        Condition::all().add(message::Column::Position.lt(*k))
    }
    fn order_columns() -> Vec<message::Column> {
        vec![message::Column::Position]
    }
}

/// A page of the view. Positions are dense, so without a phase filter the page bounds
/// are arithmetic and one query reads it; with one, keyset pagination over positions.
pub async fn page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    view: &View,
    phase: Option<&str>,
    window: &Window<i32>,
) -> AppResult<Paged<message::Model>> {
    let (db, owner_id) = scope.parts();
    if let Some(phase) = phase {
        let base = view
            .select(owner_id, 0, view.length)
            .filter(message::Column::Phase.eq(phase));
        return keyset::page::<ByPosition>(db, base, window).await;
    }
    let (from, to) = bounds(view.length, window);
    let items = range(OwnerScope::new(db, owner_id), view, from, to).await?;
    Ok(paged(items, view.length, from, to))
}

/// The positions `from..to` a window covers in a conversation of `length` messages
/// (positions are dense, so this is arithmetic).
pub fn bounds(length: i32, window: &Window<i32>) -> (i32, i32) {
    let lo = window
        .after
        .map_or(0, |a| a.saturating_add(1).max(0))
        .min(length);
    let hi = window.before.map_or(length, |b| b.clamp(0, length)).max(lo);
    let limit = window.limit.min(i32::MAX as u64) as i32;
    if window.from_end {
        ((hi - limit).max(lo), hi)
    } else {
        (lo, lo.saturating_add(limit).min(hi))
    }
}

fn paged(items: Vec<message::Model>, length: i32, from: i32, to: i32) -> Paged<message::Model> {
    Paged {
        items,
        has_previous: from > 0,
        has_next: to < length,
    }
}

/// Views per statement of `pages`, to bound the size of one statement.
const VIEWS_PER_STATEMENT: usize = 100;

/// A page of each view (`window` has no phase filter), in one statement per 100 views:
/// one condition over every view's ranges, the rows then dealt back to their views.
pub async fn pages(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    views: &[&View],
    window: &Window<i32>,
) -> AppResult<Vec<Paged<message::Model>>> {
    let (db, owner_id) = scope.parts();
    let mut out = Vec::with_capacity(views.len());
    for chunk in views.chunks(VIEWS_PER_STATEMENT) {
        let reads: Vec<_> = chunk
            .iter()
            .map(|view| {
                let (from, to) = bounds(view.length, window);
                let ranges = if from < to {
                    view.ranges_between(from, to)
                } else {
                    vec![]
                };
                (ranges, from, to)
            })
            .collect();
        let terms: Vec<Condition> = reads
            .iter()
            .flat_map(|(ranges, _, _)| ranges.iter())
            .map(|&(segment, lo, hi)| {
                Condition::all()
                    .add(message::Column::ConversationId.eq(segment))
                    .add(message::Column::Position.gte(lo))
                    .add(message::Column::Position.lt(hi))
            })
            .collect();
        let mut rows: HashMap<(ConversationId, i32), message::Model> = if terms.is_empty() {
            HashMap::new()
        } else {
            message::Entity::find()
                .filter(message::Column::OwnerId.eq(owner_id))
                .filter(balanced_any(terms))
                .all(db)
                .await?
                .into_iter()
                .map(|m| ((m.conversation_id, m.position), m))
                .collect()
        };
        for ((ranges, from, to), view) in reads.into_iter().zip(chunk) {
            // Views may share segments (forks, rewinds), so rows are cloned, not moved.
            let items = ranges
                .iter()
                .flat_map(|&(segment, lo, hi)| (lo..hi).map(move |pos| (segment, pos)))
                .filter_map(|key| rows.get(&key).cloned())
                .collect();
            out.push(paged(items, view.length, from, to));
        }
        rows.clear();
    }
    Ok(out)
}

pub async fn count_phase(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    view: &View,
    phase: &str,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    Ok(view
        .select(owner_id, 0, view.length)
        .filter(message::Column::Phase.eq(phase))
        .count(db)
        .await?)
}

pub async fn insert_messages(
    db: &impl ConnectionTrait,
    messages: Vec<message::Model>,
) -> AppResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    message::Entity::insert_many(messages.into_iter().map(IntoActiveModel::into_active_model))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

impl View {
    /// Whether the snapshot `(segment, length)` — `segment` storing position
    /// `length - 1` — is a prefix of this view.
    pub fn has_prefix(&self, segment: ConversationId, length: i32) -> bool {
        length == 0 || (length <= self.length && self.owner_of(length - 1) == Some(segment))
    }

    /// The snapshot of this view's first `length` messages: the segment storing position
    /// `length - 1` (the head itself for an empty prefix).
    pub fn snapshot_segment(&self, head: ConversationId, length: i32) -> ConversationId {
        if length == 0 {
            head
        } else {
            self.owner_of(length - 1).unwrap_or(head)
        }
    }
}

/// A new head over the first `length` messages of the snapshot `(segment, length)`:
/// one row, whatever the length. The rows after `length` stay stored and addressable.
pub async fn branch_at(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    task_id: TaskId,
    segment: ConversationId,
    length: i32,
) -> AppResult<conversation::Model> {
    let (db, owner_id) = scope.parts();
    let model = conversation::Model {
        id: ConversationId::new(),
        owner_id,
        task_id,
        parent_id: (length > 0).then_some(segment),
        base_length: length,
        length,
        created_at: now(),
    };
    Ok(conversation::Entity::insert(model.into_active_model())
        .exec_with_returning(db)
        .await?)
}

/// The phases of the last messages of a view, newest first, read in pages of 100
/// until `stop` says enough.
pub async fn count_tail(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    view: &View,
    mut keep_going: impl FnMut(&message::Model) -> bool,
) -> AppResult<i32> {
    let (db, owner_id) = scope.parts();
    let mut end = view.length;
    let mut counted = 0;
    while end > 0 {
        let start = (end - 100).max(0);
        let page = range(OwnerScope::new(db, owner_id), view, start, end).await?;
        for m in page.iter().rev() {
            if !keep_going(m) {
                return Ok(counted);
            }
            counted += 1;
        }
        end = start;
    }
    Ok(counted)
}
