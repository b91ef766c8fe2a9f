//! One `taskEvents` subscription: a task's events in sequence order, each once.
//!
//! Sequences, not timeline cursors, order a task's stream: committed sequences always
//! form a gapless prefix (appends hold the task's lock until they commit), so whenever
//! the broadcast does not continue exactly where the subscriber stands (it fell behind,
//! the events were not attached, or appends arrived out of sequence order) the
//! subscriber reads the table from its next sequence.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Guard, Key, LiveEvent, Shared};
use crate::entities::ids::{OwnerId, TaskId};
use crate::entities::task_event::Model;
use crate::error::{AppError, AppResult};
use crate::store::{task_events, tasks};

/// Events read from the database per query.
const PAGE: i64 = 100;

pub struct TaskFeed {
    shared: Arc<Shared>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    owner_id: OwnerId,
    task_id: TaskId,
    /// The next sequence to deliver.
    next: i64,
    fetching: bool,
    buffer: VecDeque<Model>,
    _guard: Guard,
}

impl TaskFeed {
    pub(super) async fn start(
        shared: Arc<Shared>,
        owner_id: OwnerId,
        task_id: TaskId,
        after: Option<i64>,
    ) -> AppResult<Self> {
        if after.is_some_and(|a| a < 0) {
            return Err(AppError::bad_input("after must not be negative"));
        }
        let (rx, _) = shared.subscribe(Key::Task(task_id)).await?;
        // Read after subscribing: an append committed later reaches `rx`.
        let task = tasks::by_id(shared.store.scope(owner_id), task_id)
            .await?
            .ok_or_else(|| AppError::not_found("task"))?;
        Ok(Self {
            _guard: Guard::new(shared.clone()),
            shared,
            rx,
            owner_id,
            task_id,
            next: after.unwrap_or(task.event_count) + 1,
            fetching: after.is_some(),
            buffer: VecDeque::new(),
        })
    }

    /// What a published event means for this feed.
    fn apply(&mut self, live: &LiveEvent) {
        let e = &live.event;
        if e.task_id != Some(self.task_id) || e.owner_id != self.owner_id {
            return;
        }
        let Some((first, last)) = live.range else {
            return;
        };
        if last < self.next {
            return;
        }
        match &live.task_events {
            Some(rows) if first <= self.next && rows.len() as i64 == last - first + 1 => {
                self.buffer
                    .extend(rows.iter().filter(|r| r.sequence >= self.next).cloned());
                self.next = last + 1;
            }
            _ => self.fetching = true,
        }
    }

    /// The next event; `None` when the fan-out stopped.
    pub async fn next(&mut self) -> Option<AppResult<Model>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some(Ok(event));
            }
            if self.fetching {
                let rows = Box::pin(task_events::range(
                    self.shared.store.scope(self.owner_id),
                    self.task_id,
                    self.next,
                    self.next + PAGE - 1,
                ))
                .await;
                let rows = match rows {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e)),
                };
                self.fetching = rows.len() as i64 == PAGE;
                if let Some(last) = rows.last() {
                    self.next = last.sequence + 1;
                }
                self.buffer.extend(rows);
                continue;
            }
            match self.rx.recv().await {
                Ok(live) => self.apply(&live),
                Err(RecvError::Lagged(_)) => {
                    self.shared.fell_behind();
                    self.fetching = true;
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
