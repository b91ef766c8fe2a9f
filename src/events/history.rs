//! One `historyEvents` subscription: replay from the database, then the broadcast.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Guard, Key, LiveEvent, Shared};
use crate::entities::history_event::Model;
use crate::entities::ids::OwnerId;
use crate::error::AppResult;
use crate::store::history::{TimelineCursor, TimelineFilter};
use crate::store::live;

/// Events read from the database per query while replaying or catching up.
const PAGE: u64 = 100;

/// The owner's matching events after a cursor, gapless and each once, in timeline
/// order.
pub struct HistoryFeed {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    owner_id: OwnerId,
    filter: TimelineFilter,
    /// Every event up to here has been delivered or did not match.
    cursor: TimelineCursor,
    /// Reading the database (a replay, or catching up after falling behind).
    replaying: bool,
    buffer: VecDeque<Model>,
    _guard: Guard,
}

impl HistoryFeed {
    pub(super) async fn start(
        shared: Arc<Shared>,
        owner_id: OwnerId,
        filter: TimelineFilter,
        after: Option<TimelineCursor>,
    ) -> AppResult<Self> {
        // Subscribe first: every event published from here on reaches `rx`, and every
        // event published before is readable, so the replay covers it.
        let (rx, published) = shared.subscribe(Key::Owner(owner_id)).await?;
        Ok(Self {
            _guard: Guard::new(shared.clone()),
            shared,
            rx,
            owner_id,
            filter,
            cursor: after.unwrap_or(published),
            replaying: after.is_some(),
            buffer: VecDeque::new(),
        })
    }

    /// The next event; `None` when the fan-out stopped.
    pub async fn next(&mut self) -> Option<AppResult<Model>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.replaying {
                let page = Box::pin(live::replay(
                    self.shared.store.scope(self.owner_id),
                    &self.filter,
                    self.cursor,
                    PAGE,
                ))
                .await;
                let page = match page {
                    Ok(p) => p,
                    Err(e) => return Some(Err(e)),
                };
                self.replaying = page.len() as u64 == PAGE;
                if let Some(last) = page.last() {
                    self.cursor = TimelineCursor::of(last);
                }
                self.buffer.extend(page);
                continue;
            }
            match self.rx.recv().await {
                Ok(live) => {
                    let cursor = live.cursor();
                    if cursor <= self.cursor {
                        continue;
                    }
                    self.cursor = cursor;
                    if live::matches(self.owner_id, &self.filter, &live.event) {
                        return Some(Ok(live.event.clone()));
                    }
                }
                // Fell behind the channel: what it dropped is in the table.
                Err(RecvError::Lagged(_)) => {
                    self.shared.fell_behind();
                    self.replaying = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// As a stream that ends after its first error.
    pub fn into_stream(self) -> impl Stream<Item = AppResult<Model>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |feed| async move {
            let mut feed = feed?;
            match feed.next().await? {
                Ok(event) => Some((Ok(event), Some(feed))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}
