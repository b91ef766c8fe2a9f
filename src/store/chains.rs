//! The conversation-chain cache, bounded by memory.
//!
//! A segment's parent and base length never change, so the positions `0..base` that a
//! segment sees through its ancestors (its *prefix*) can be kept once it was read.
//! Prefixes are persistent lists of ranges that share their tails: a rewind's prefix is
//! its parent's prefix cut at the rewind point plus one range of the parent, so each
//! segment costs one list node however deep its chain is, and a read walks back from the
//! newest range only as far as the positions it needs (a last-50 page touches at most 50
//! ranges, a rewind by a few messages a few). Every node counts its bytes while it lives;
//! past the configured budget the least recently used segments are forgotten.

use std::collections::HashMap;
use std::fmt;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::ConnectionTrait;

use super::conversations::{by_id, chain};
use crate::entities::conversation;
use crate::entities::ids::ConversationId;
use crate::error::{AppError, AppResult};

/// The default byte budget of the cache.
pub const DEFAULT_BUDGET: usize = 64 * 1024 * 1024;

/// Uncached ancestors read one by one before reading the rest of a chain in one
/// recursive query (a cold deep chain, e.g. after a restart or an eviction).
const STEPS: usize = 8;

/// One range `from..to` stored under `segment`, after the ranges of `prev`.
pub struct Node {
    segment: ConversationId,
    from: i32,
    to: i32,
    prev: Option<Arc<Node>>,
    live: Option<Arc<AtomicUsize>>,
}

/// What a node costs: the node and its `Arc` counters (allocator overhead aside).
const NODE_BYTES: usize = size_of::<Node>() + 2 * size_of::<usize>();
/// What a cached segment costs besides its node: its slot in the map, roughly.
const ENTRY_BYTES: usize = size_of::<(ConversationId, Entry)>() + 16;

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(NODE_BYTES, Ordering::Relaxed);
        }
        // Unlink iteratively: dropping a 10,000-range list recursively would overflow
        // the stack.
        let mut next = self.prev.take();
        while let Some(node) = next {
            next = Arc::into_inner(node).and_then(|mut n| n.prev.take());
        }
    }
}

/// `prev` followed by the range `from..to` of `segment` (nothing when it is empty).
fn link(
    prev: Option<Arc<Node>>,
    segment: ConversationId,
    from: i32,
    to: i32,
    live: Option<&Arc<AtomicUsize>>,
) -> Option<Arc<Node>> {
    if from >= to {
        return prev;
    }
    if let Some(live) = live {
        live.fetch_add(NODE_BYTES, Ordering::Relaxed);
    }
    Some(Arc::new(Node {
        segment,
        from,
        to,
        prev,
        live: live.cloned(),
    }))
}

/// The ranges of `list` below position `end`.
fn cut(list: &Option<Arc<Node>>, end: i32, live: Option<&Arc<AtomicUsize>>) -> Option<Arc<Node>> {
    let mut cur = list.clone();
    while let Some(n) = cur.as_ref().filter(|n| n.from >= end) {
        cur = n.prev.clone();
    }
    match cur {
        Some(n) if n.to > end => link(n.prev.clone(), n.segment, n.from, end, live),
        other => other,
    }
}

/// A conversation as seen from a head: which segment holds which positions.
#[derive(Clone)]
pub struct View {
    /// The newest range; older ones follow `prev`.
    tail: Option<Arc<Node>>,
    pub length: i32,
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl View {
    /// The first `length` messages of `segment`, which owns `base..` after `prefix`.
    fn of(
        prefix: Option<Arc<Node>>,
        segment: ConversationId,
        base: i32,
        length: i32,
        live: Option<&Arc<AtomicUsize>>,
    ) -> Self {
        let tail = if length >= base {
            link(prefix, segment, base, length, live)
        } else {
            cut(&prefix, length, live)
        };
        Self { tail, length }
    }

    /// Positions `from..to` stored under `segment`, and nothing else (a batch just
    /// appended).
    pub fn single(segment: ConversationId, from: i32, to: i32) -> Self {
        Self {
            tail: link(None, segment, from, to, None),
            length: to,
        }
    }

    /// The ranges newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Node> {
        std::iter::successors(self.tail.as_deref(), |n| n.prev.as_deref())
    }

    /// `(segment, from, to)` for the positions `from..to` of this view, oldest first:
    /// at most one range per position asked for.
    pub fn ranges_between(&self, from: i32, to: i32) -> Vec<(ConversationId, i32, i32)> {
        let mut out: Vec<_> = self
            .newest_first()
            .take_while(|n| n.to > from)
            .filter_map(|n| {
                let (lo, hi) = (n.from.max(from), n.to.min(to));
                (lo < hi).then_some((n.segment, lo, hi))
            })
            .collect();
        out.reverse();
        out
    }

    /// How many ranges the whole view has (walks all of them).
    pub fn range_count(&self) -> usize {
        self.newest_first().count()
    }

    /// The segment that stores position `pos`, if the view has it.
    pub fn owner_of(&self, pos: i32) -> Option<ConversationId> {
        self.newest_first()
            .find(|n| n.from <= pos)
            .filter(|n| pos < n.to)
            .map(|n| n.segment)
    }
}

#[derive(Clone)]
struct Entry {
    base: i32,
    /// The ranges of positions `0..base`.
    prefix: Option<Arc<Node>>,
    used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<ConversationId, Entry>,
    clock: u64,
}

/// Prefixes of conversation segments, kept in memory within a byte budget.
pub struct Chains {
    cache: Mutex<Cache>,
    budget: AtomicUsize,
    /// Bytes of the nodes alive now (cached or held by a view in use).
    live: Arc<AtomicUsize>,
    /// Chains read with the recursive query.
    deep_reads: AtomicU64,
}

impl Default for Chains {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}

impl Chains {
    pub fn new(budget: usize) -> Self {
        Self {
            cache: Default::default(),
            budget: AtomicUsize::new(budget),
            live: Default::default(),
            deep_reads: AtomicU64::new(0),
        }
    }

    /// Sets the byte budget (takes effect at the next insertion).
    pub fn set_budget(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    pub fn budget(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    /// The bytes the cache accounts for: its entries and every range node alive.
    pub fn accounted_bytes(&self) -> usize {
        let entries = self.cache.lock().expect("chains").entries.len();
        self.accounted(entries)
    }

    fn accounted(&self, entries: usize) -> usize {
        entries * ENTRY_BYTES + self.live.load(Ordering::Relaxed)
    }

    /// How often a chain was read with the recursive query (cold or evicted chains).
    pub fn deep_reads(&self) -> u64 {
        self.deep_reads.load(Ordering::Relaxed)
    }

    /// The conversation whose head segment is `head`. The head's row is read from `db`
    /// (its length grows with appends; inside a transaction it is that transaction's);
    /// what lies behind it comes from memory.
    pub async fn view(&self, db: &impl ConnectionTrait, head: ConversationId) -> AppResult<View> {
        let row = by_id(db, head).await?;
        self.view_of(db, &row, row.length).await
    }

    /// As `view`, for a head row the caller has already read (one read for a batch of
    /// heads).
    pub async fn view_of_head(
        &self,
        db: &impl ConnectionTrait,
        head: &conversation::Model,
    ) -> AppResult<View> {
        self.view_of(db, head, head.length).await
    }

    /// The first `length` messages of the conversation through `segment` (a snapshot).
    pub async fn snapshot(
        &self,
        db: &impl ConnectionTrait,
        segment: ConversationId,
        length: i32,
    ) -> AppResult<View> {
        let row = by_id(db, segment).await?;
        self.view_of(db, &row, length).await
    }

    async fn view_of(
        &self,
        db: &impl ConnectionTrait,
        row: &conversation::Model,
        length: i32,
    ) -> AppResult<View> {
        let prefix = match row.parent_id {
            None => None,
            Some(parent) => {
                let (base, prefix) = self.entry(db, parent).await?;
                View::of(prefix, parent, base, row.base_length, Some(&self.live)).tail
            }
        };
        // Kept for the segments that will branch from this one (the next rewind's).
        if self.lookup(row.id).is_none() {
            self.insert(vec![(row.id, row.base_length, prefix.clone())]);
        }
        Ok(View::of(
            prefix,
            row.id,
            row.base_length,
            length,
            Some(&self.live),
        ))
    }

    fn lookup(&self, id: ConversationId) -> Option<(i32, Option<Arc<Node>>)> {
        let mut cache = self.cache.lock().expect("chains");
        cache.clock += 1;
        let clock = cache.clock;
        let entry = cache.entries.get_mut(&id)?;
        entry.used = clock;
        Some((entry.base, entry.prefix.clone()))
    }

    /// `(base, prefix)` of a segment, reading the rows of uncached ancestors.
    async fn entry(
        &self,
        db: &impl ConnectionTrait,
        id: ConversationId,
    ) -> AppResult<(i32, Option<Arc<Node>>)> {
        if let Some(hit) = self.lookup(id) {
            return Ok(hit);
        }
        // The rows from `id` up to the first cached ancestor, newest first.
        let mut missing: Vec<conversation::Model> = Vec::new();
        let mut known = None;
        let mut next = Some(id);
        while let Some(cur) = next {
            if let Some(hit) = self.lookup(cur) {
                known = Some(hit);
                break;
            }
            if missing.len() == STEPS {
                self.deep_reads.fetch_add(1, Ordering::Relaxed);
                for row in chain(db, cur).await? {
                    if let Some(hit) = self.lookup(row.id) {
                        known = Some(hit);
                        break;
                    }
                    missing.push(row);
                }
                break;
            }
            let row = by_id(db, cur).await?;
            next = row.parent_id;
            missing.push(row);
        }
        // Oldest first: each row's parent is the row before it (or `known`).
        let mut above = known;
        let mut computed = Vec::with_capacity(missing.len());
        for row in missing.iter().rev() {
            let prefix = match (row.parent_id, &above) {
                (None, _) => None,
                (Some(parent), Some((base, prefix))) => {
                    View::of(
                        prefix.clone(),
                        parent,
                        *base,
                        row.base_length,
                        Some(&self.live),
                    )
                    .tail
                }
                (Some(_), None) => {
                    return Err(AppError::internal(format!(
                        "conversation {} has a missing parent",
                        row.id
                    )));
                }
            };
            above = Some((row.base_length, prefix.clone()));
            computed.push((row.id, row.base_length, prefix));
        }
        self.insert(computed);
        above.ok_or_else(|| AppError::internal(format!("conversation {id} is missing")))
    }

    fn insert(&self, computed: Vec<(ConversationId, i32, Option<Arc<Node>>)>) {
        let mut cache = self.cache.lock().expect("chains");
        for (id, base, prefix) in computed {
            cache.clock += 1;
            let used = cache.clock;
            cache.entries.insert(id, Entry { base, prefix, used });
        }
        let budget = self.budget();
        if self.accounted(cache.entries.len()) <= budget {
            return;
        }
        // Forget the least recently used down to three quarters of the budget, so that
        // eviction runs once per many insertions. Nodes shared with kept segments stay.
        let mut by_age: Vec<(u64, ConversationId)> =
            cache.entries.iter().map(|(k, e)| (e.used, *k)).collect();
        by_age.sort_unstable();
        for (_, id) in by_age {
            if self.accounted(cache.entries.len()) <= budget / 4 * 3 {
                break;
            }
            cache.entries.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ConversationId> {
        (0..n).map(|_| ConversationId::new()).collect()
    }

    /// The "append 2, rewind 1" shape: segment i owns position i.
    fn staircase(segments: &[ConversationId], live: &Arc<AtomicUsize>) -> View {
        let mut prefix = None;
        for (i, &s) in segments.iter().enumerate() {
            let next = View::of(prefix, s, i as i32, i as i32 + 1, Some(live));
            prefix = next.tail;
        }
        View {
            tail: prefix,
            length: segments.len() as i32,
        }
    }

    #[test]
    fn a_read_walks_only_the_ranges_it_needs() {
        let live = Arc::new(AtomicUsize::new(0));
        let s = ids(1000);
        let view = staircase(&s, &live);
        assert_eq!(view.range_count(), 1000);
        let last = view.ranges_between(950, 1000);
        assert_eq!(last.len(), 50);
        assert_eq!(last[0], (s[950], 950, 951));
        assert_eq!(view.owner_of(999), Some(s[999]));
        assert_eq!(view.owner_of(0), Some(s[0]));
        assert_eq!(view.owner_of(1000), None);
        assert_eq!(live.load(Ordering::Relaxed), 1000 * NODE_BYTES);
    }

    #[test]
    fn a_cut_shares_what_it_keeps_and_frees_the_rest_when_dropped() {
        let live = Arc::new(AtomicUsize::new(0));
        let s = ids(3);
        // s0 owns 0..10, s1 10..20, s2 20..30.
        let mut tail = None;
        for (i, &seg) in s.iter().enumerate() {
            tail = link(tail, seg, i as i32 * 10, i as i32 * 10 + 10, Some(&live));
        }
        let view = View { tail, length: 30 };
        let cut_view = View::of(
            view.tail.clone(),
            ConversationId::new(),
            30,
            15,
            Some(&live),
        );
        assert_eq!(
            cut_view.ranges_between(0, 15),
            vec![(s[0], 0, 10), (s[1], 10, 15)]
        );
        assert_eq!(live.load(Ordering::Relaxed), 4 * NODE_BYTES);
        drop(view);
        // s2's node is gone; s0's is shared, s1's was cut into a node of its own.
        assert_eq!(live.load(Ordering::Relaxed), 2 * NODE_BYTES);
        drop(cut_view);
        assert_eq!(live.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn dropping_a_very_long_list_does_not_overflow_the_stack() {
        let live = Arc::new(AtomicUsize::new(0));
        let view = staircase(&ids(200_000), &live);
        drop(view);
        assert_eq!(live.load(Ordering::Relaxed), 0);
    }
}
