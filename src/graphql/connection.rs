//! Relay connections, written once: argument rules (API.md, Conventions and
//! Pagination details), the page info, a `connection!` macro that declares
//! `XConnection` and `XEdge` for a node type, and `resolve`, the one path of every
//! connection field from its arguments to its connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::SimpleObject;

use super::cursor::Cursor;
use crate::error::{AppError, AppResult};
use crate::store::keyset::{Paged, Window};

pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

/// The cost of a connection field in the query's complexity: its selection counted
/// once per item of the largest page it can return (`first` or `last`, default 20;
/// sizes outside 0..=100 are refused later, so they are clamped here), plus the field.
/// Capped far below `usize::MAX` so the sums async-graphql builds cannot overflow.
#[must_use]
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let size = usize::try_from(size).unwrap_or(1);
    size.saturating_mul(child_complexity)
        .saturating_add(1)
        .min(1 << 40)
}

/// The four Relay arguments as the client sent them.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        Self {
            first,
            after,
            last,
            before,
        }
    }

    /// Checks the arguments and decodes the cursors. `first` with `last`, a size
    /// outside 0..=100 or a malformed cursor is `BAD_USER_INPUT`, never clamped.
    pub fn window<K: Cursor>(&self) -> AppResult<Window<K>> {
        let size = |name: &str, v: i32| {
            if (0..=MAX_PAGE).contains(&v) {
                Ok(v as u64)
            } else {
                Err(AppError::bad_input(format!(
                    "{name} must be between 0 and {MAX_PAGE}"
                )))
            }
        };
        let (limit, from_end) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "first and last cannot be used together",
                ));
            }
            (Some(f), None) => (size("first", f)?, false),
            (None, Some(l)) => (size("last", l)?, true),
            // `before` alone means `last: 20`.
            (None, None) => (
                DEFAULT_PAGE as u64,
                self.before.is_some() && self.after.is_none(),
            ),
        };
        Ok(Window {
            after: self.after.as_deref().map(K::decode).transpose()?,
            before: self.before.as_deref().map(K::decode).transpose()?,
            limit,
            from_end,
        })
    }
}

/// Information about a page, for fetching the next or previous one.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether items exist after the last edge of this page.
    pub has_next_page: bool,
    /// Whether items exist before the first edge of this page.
    pub has_previous_page: bool,
    /// The cursor of the first edge, if any.
    pub start_cursor: Option<String>,
    /// The cursor of the last edge, if any.
    pub end_cursor: Option<String>,
}

type CountFuture = Pin<Box<dyn Future<Output = AppResult<u64>> + Send>>;

/// `totalCount`, computed only when a query selects it.
#[derive(Clone)]
pub struct TotalCount(Arc<dyn Fn() -> CountFuture + Send + Sync>);

impl TotalCount {
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AppResult<u64>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(f())))
    }

    pub fn fixed(n: u64) -> Self {
        Self::new(move || async move { Ok(n) })
    }

    pub async fn get(&self) -> AppResult<i32> {
        Ok((self.0)().await?.min(i32::MAX as u64) as i32)
    }
}

/// A connection type declared by `connection!`.
pub trait Connection: Sized {
    type Node;
    /// The connection of a page, the cursor of each row and the total.
    fn build<T>(
        page: Paged<T>,
        cursor: impl Fn(&T) -> String,
        node: impl Fn(T) -> Self::Node,
        total: TotalCount,
    ) -> Self;
}

/// A connection field: the arguments checked and their cursors decoded as `K`, a page
/// of the list read by `read` (which also says how to count the whole list), each
/// row's cursor encoded from its `key`.
pub async fn resolve<C, K, T, Fut>(
    args: &PageArgs,
    read: impl FnOnce(Window<K>) -> Fut,
    key: impl Fn(&T) -> K,
    node: impl Fn(T) -> C::Node,
) -> AppResult<C>
where
    C: Connection,
    K: Cursor,
    Fut: Future<Output = AppResult<(Paged<T>, TotalCount)>>,
{
    let window = args.window::<K>()?;
    let (page, total) = read(window).await?;
    Ok(C::build(page, |row| key(row).encode(), node, total))
}

/// Declares `$conn` and `$edge` for node type `$node`.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub has_previous_page: bool,
            pub has_next_page: bool,
            pub total: $crate::graphql::connection::TotalCount,
        }

        #[doc = concat!("A page of ", $what, ".")]
        #[async_graphql::Object]
        impl $conn {
            /// The items of this page with their cursors.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// The items of this page.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }

            /// Where this page stands in the whole list.
            async fn page_info(&self) -> $crate::graphql::connection::PageInfo {
                $crate::graphql::connection::PageInfo {
                    has_next_page: self.has_next_page,
                    has_previous_page: self.has_previous_page,
                    start_cursor: self.edges.first().map(|e| e.cursor.clone()),
                    end_cursor: self.edges.last().map(|e| e.cursor.clone()),
                }
            }

            /// The number of items in the whole list (counted only when selected).
            async fn total_count(&self) -> async_graphql::Result<i32> {
                Ok(self.total.get().await?)
            }
        }

        #[doc = concat!("One of ", $what, " with its cursor.")]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[doc = concat!("One of ", $what, " with its cursor.")]
        #[async_graphql::Object]
        impl $edge {
            /// Opaque; pass it as `after` or `before` to page from here.
            async fn cursor(&self) -> &str {
                &self.cursor
            }

            /// The item.
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        impl $crate::graphql::connection::Connection for $conn {
            type Node = $node;

            fn build<T>(
                page: $crate::store::keyset::Paged<T>,
                cursor: impl Fn(&T) -> String,
                node: impl Fn(T) -> $node,
                total: $crate::graphql::connection::TotalCount,
            ) -> Self {
                let edges = page
                    .items
                    .into_iter()
                    .map(|item| $edge {
                        cursor: cursor(&item),
                        node: node(item),
                    })
                    .collect();
                Self {
                    edges,
                    has_previous_page: page.has_previous,
                    has_next_page: page.has_next,
                    total,
                }
            }
        }
    };
}

pub(crate) use connection;

#[cfg(test)]
mod tests {
    use super::*;

    fn args(first: Option<i32>, last: Option<i32>, before: Option<String>) -> PageArgs {
        PageArgs::new(first, None, last, before)
    }

    #[test]
    fn sizes_are_checked_not_clamped() {
        assert!(args(Some(101), None, None).window::<i64>().is_err());
        assert!(args(Some(-1), None, None).window::<i64>().is_err());
        assert!(args(None, Some(101), None).window::<i64>().is_err());
        assert!(args(Some(1), Some(1), None).window::<i64>().is_err());
        assert_eq!(args(Some(0), None, None).window::<i64>().unwrap().limit, 0);
        assert_eq!(args(None, None, None).window::<i64>().unwrap().limit, 20);
    }

    #[test]
    fn before_alone_reads_the_last_twenty() {
        let w = args(None, None, Some(5i64.encode()))
            .window::<i64>()
            .unwrap();
        assert!(w.from_end);
        assert_eq!(w.limit, 20);
        assert_eq!(w.before, Some(5));
    }
}
