//! Keyset (cursor) pagination, written once for every list: a page costs the same at
//! the start and a million rows in, and `has_previous`/`has_next` are exact in both
//! directions.

use sea_orm::sea_query::{Alias, Asterisk, Condition, Expr, Order, Query, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};

use crate::error::AppResult;

/// Which slice of an ordered list to read: rows strictly between `after` and `before`,
/// the first `limit` of them, or the last `limit` when `from_end`.
#[derive(Clone, Debug)]
pub struct Window<K> {
    pub after: Option<K>,
    pub before: Option<K>,
    pub limit: u64,
    pub from_end: bool,
}

impl<K> Window<K> {
    pub fn first(limit: u64) -> Self {
        Self {
            after: None,
            before: None,
            limit,
            from_end: false,
        }
    }

    /// The same window over another spelling of the key.
    pub fn map<U>(self, f: impl Fn(K) -> U) -> Window<U> {
        Window {
            after: self.after.map(&f),
            before: self.before.map(&f),
            limit: self.limit,
            from_end: self.from_end,
        }
    }
}

/// A page of rows in list order, with whether rows exist beyond each end.
#[derive(Clone, Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub has_previous: bool,
    pub has_next: bool,
}

impl<T> Paged<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            has_previous: self.has_previous,
            has_next: self.has_next,
        }
    }
}

/// How a list is ordered: the key of a row and conditions on it.
pub trait Keyset {
    type Entity: EntityTrait;
    type Key: Clone + Send + Sync;

    /// Rows strictly after `key` in list order.
    fn after(key: &Self::Key) -> Condition;
    /// Rows strictly before `key` in list order.
    fn before(key: &Self::Key) -> Condition;
    /// `after`, in the form that lets `backend` use its index (for multi-column keys).
    fn after_on(key: &Self::Key, _backend: DatabaseBackend) -> Condition {
        Self::after(key)
    }
    /// `before`, in the form that lets `backend` use its index.
    fn before_on(key: &Self::Key, _backend: DatabaseBackend) -> Condition {
        Self::before(key)
    }
    /// The columns that order the list, most significant first.
    fn order_columns() -> Vec<<Self::Entity as EntityTrait>::Column>;

    fn order(mut select: Select<Self::Entity>, order: Order) -> Select<Self::Entity> {
        for col in Self::order_columns() {
            select = select.order_by(col, order.clone());
        }
        select
    }
}

/// Parents per statement of `per_parent`: SQLite allows 500 terms in a compound select.
const PARENTS_PER_STATEMENT: usize = 100;

/// The first (or last) `limit + 1` rows of each parent's list in one statement, for
/// DataLoaders: a page of 100 parents costs one query, not 100. Each parent's rows are
/// one index range read with its own `LIMIT`, joined by `UNION ALL` (a window function
/// over the parents would read every row of every parent). Rows come back in list
/// order within each parent; the extra row tells the caller that more exist.
pub async fn per_parent<S: Keyset, K: Copy + Into<sea_orm::Value>>(
    db: &impl ConnectionTrait,
    base: Select<S::Entity>,
    parent: <S::Entity as EntityTrait>::Column,
    parents: &[K],
    limit: u64,
    from_end: bool,
) -> AppResult<Vec<<S::Entity as EntityTrait>::Model>> {
    let order = if from_end { Order::Desc } else { Order::Asc };
    let backend = db.get_database_backend();
    let mut rows = Vec::new();
    for chunk in parents.chunks(PARENTS_PER_STATEMENT) {
        let member = |i: usize, id: K| {
            let inner = S::order(base.clone().filter(parent.eq(id)), order.clone())
                .limit(limit + 1)
                .into_query();
            Query::select()
                .column(Asterisk)
                .from_subquery(inner, Alias::new(format!("p{i}")))
                .to_owned()
        };
        let mut statement = member(0, chunk[0]);
        for (i, &id) in chunk.iter().enumerate().skip(1) {
            statement.union(UnionType::All, member(i, id));
        }
        // Members are not guaranteed to come back in order, nor their rows.
        statement.order_by_expr(Expr::col(parent), Order::Asc);
        for col in S::order_columns() {
            statement.order_by_expr(Expr::col(col), order.clone());
        }
        let stmt = backend.build(&statement);
        rows.extend(
            <S::Entity as EntityTrait>::Model::find_by_statement(stmt)
                .all(db)
                .await?,
        );
    }
    if from_end {
        rows.reverse();
    }
    Ok(rows)
}

/// Splits the rows of `per_parent` into one page per parent, in `parents`' order (a row
/// without a parent belongs to no page).
pub fn pages_per_parent<T, K: Copy + Eq + std::hash::Hash>(
    rows: Vec<T>,
    parent_of: impl Fn(&T) -> Option<K>,
    parents: &[K],
    limit: u64,
    from_end: bool,
) -> Vec<(K, Paged<T>)> {
    let mut by_parent: std::collections::HashMap<K, Vec<T>> = Default::default();
    for row in rows {
        if let Some(parent) = parent_of(&row) {
            by_parent.entry(parent).or_default().push(row);
        }
    }
    parents
        .iter()
        .map(|&id| {
            let mut items = by_parent.remove(&id).unwrap_or_default();
            let more = items.len() as u64 > limit;
            if more {
                // The extra row is the one farthest from the end read from.
                if from_end {
                    items.remove(0);
                } else {
                    items.pop();
                }
            }
            let page = Paged {
                items,
                has_previous: more && from_end,
                has_next: more && !from_end,
            };
            (id, page)
        })
        .collect()
}

/// Reads one page of `base` (already filtered to the list's rows).
pub async fn page<S: Keyset>(
    db: &impl ConnectionTrait,
    base: Select<S::Entity>,
    window: &Window<S::Key>,
) -> AppResult<Paged<<S::Entity as EntityTrait>::Model>>
where
    <S::Entity as EntityTrait>::Model: Sync,
{
    let backend = db.get_database_backend();
    let mut query = base.clone();
    if let Some(after) = &window.after {
        query = query.filter(S::after_on(after, backend));
    }
    if let Some(before) = &window.before {
        query = query.filter(S::before_on(before, backend));
    }
    let order = if window.from_end {
        Order::Desc
    } else {
        Order::Asc
    };
    let mut items = S::order(query, order)
        .limit(window.limit + 1)
        .all(db)
        .await?;
    let more_in_direction = items.len() as u64 > window.limit;
    items.truncate(window.limit as usize);
    if window.from_end {
        items.reverse();
    }
    // "Exact in both directions": a side is also open when the cursor bound on it cut
    // the page short and rows lie on or beyond that cursor.
    let beyond = |cond: Condition| {
        let q = base.clone().filter(cond);
        async move { Ok::<_, sea_orm::DbErr>(q.limit(1).count(db).await? > 0) }
    };
    let before_open = match &window.before {
        Some(before) if !more_in_direction || window.from_end => {
            beyond(S::before_on(before, backend).not()).await?
        }
        _ => false,
    };
    let after_open = match &window.after {
        Some(after) if !more_in_direction || !window.from_end => {
            beyond(S::after_on(after, backend).not()).await?
        }
        _ => false,
    };
    let (has_previous, has_next) = if window.from_end {
        (more_in_direction || after_open, before_open)
    } else {
        (after_open, more_in_direction || before_open)
    };
    Ok(Paged {
        items,
        has_previous,
        has_next,
    })
}
