//! Live fan-out of history events to subscriptions, with the table as the source of
//! truth.
//!
//! One *tailer* per process reads every owner's new history events after its own
//! cursor, in timeline order, whenever it is woken (a local commit, a PostgreSQL
//! `NOTIFY` from another process, or a short poll as a safety net), and publishes them
//! on bounded broadcast channels, one per owner and one per followed task (`channels`),
//! so an event wakes only the subscriptions it may concern. A subscriber first
//! subscribes to its channel, then replays its matching events from the database
//! after its cursor until it has caught up, then follows the channel, skipping what it
//! already delivered. When it falls behind the channel (`Lagged`) it goes back to the
//! database from its last cursor, so a slow subscriber costs no memory of its own and
//! loses nothing.

mod channels;
mod history;
mod pg;
mod tailer;
mod tasks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast, watch};

use channels::{Channels, Key};

pub use history::HistoryFeed;
pub use tasks::TaskFeed;

use crate::entities::ids::{OwnerId, TaskId};
use crate::entities::{history_event, task_event};
use crate::error::{AppError, AppResult};
use crate::store::Store;
use crate::store::history::TimelineCursor;

/// Events an owner's broadcast channel holds (its slots are allocated up front); a
/// subscriber further behind reads the database.
const CHANNEL_CAPACITY: usize = 1024;

/// A history event as published to subscribers. Owner channels hold the event alone
/// (a few hundred bytes); task channels may also hold its task events, at most
/// `ATTACH_LIMIT` bytes of them.
#[derive(Debug)]
pub struct LiveEvent {
    pub event: history_event::Model,
    /// For `TASK_EVENTS_APPENDED`: the `(first, last)` sequences it appended.
    pub range: Option<(i64, i64)>,
    /// The task events of `range`, when some `taskEvents` subscription followed the
    /// task as the event was published (else subscribers read them themselves).
    pub task_events: Option<Vec<task_event::Model>>,
}

impl LiveEvent {
    pub fn cursor(&self) -> TimelineCursor {
        TimelineCursor::of(&self.event)
    }

    /// The same event without its task events (what owner channels carry).
    fn notice(&self) -> Self {
        Self {
            event: self.event.clone(),
            range: self.range,
            task_events: None,
        }
    }
}

/// The task events of one append are attached to its published event only up to this
/// many bytes of data; beyond it, each `taskEvents` subscriber reads them from the
/// database at its own pace, so a channel never holds large payloads.
const ATTACH_LIMIT: usize = 64 * 1024;

/// What the tailer and the subscribers share.
struct Shared {
    store: Store,
    channels: Mutex<Channels>,
    /// The cursor of the last published event; `None` until the tailer has read where
    /// the timeline ends. Sends happen under its write lock, subscriptions under its
    /// read lock, so a subscriber knows exactly which events its receiver will see.
    published: watch::Sender<Option<TimelineCursor>>,
    /// Wakes the tailer (PostgreSQL notifications, reconnects).
    wake: Notify,
    /// Open subscriptions.
    subscribers: watch::Sender<usize>,
    /// How often a subscriber fell behind the channel and caught up from the table.
    lagged: AtomicU64,
    /// Identifies this process's notifications, which its own listener ignores.
    instance: String,
}

impl Shared {
    /// A receiver of every event for `key` published from now on, and the cursor of
    /// the last event published before it. Waits until the tailer has started.
    async fn subscribe(
        &self,
        key: Key,
    ) -> AppResult<(broadcast::Receiver<Arc<LiveEvent>>, TimelineCursor)> {
        let mut published = self.published.subscribe();
        let at = published
            .wait_for(Option::is_some)
            .await
            .map_err(|_| AppError::internal("the live event tailer stopped"))?;
        let rx = self.channels.lock().expect("channels").subscribe(key);
        let cursor = at.expect("waited for Some");
        Ok((rx, cursor))
    }

    fn follows_task(&self, task_id: TaskId) -> bool {
        self.channels
            .lock()
            .expect("channels")
            .follows_task(task_id)
    }

    fn fell_behind(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }

    fn publish(&self, events: Vec<Arc<LiveEvent>>) {
        let Some(last) = events.last().map(|e| e.cursor()) else {
            return;
        };
        self.published.send_modify(|p| {
            let mut channels = self.channels.lock().expect("channels");
            for e in &events {
                channels.publish(e);
            }
            channels.prune();
            *p = Some(last);
        });
    }
}

/// Counts an open subscription while it lives.
struct Guard {
    shared: Arc<Shared>,
}

impl Guard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.subscribers.send_modify(|n| *n += 1);
        Self { shared }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.subscribers.send_modify(|n| *n -= 1);
    }
}

/// The handle on a process's fan-out; cheap to clone. The background tasks stop when
/// the last handle is dropped.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Events {
    /// Starts the tailer (and on PostgreSQL the NOTIFY sender and listener) on the
    /// current tokio runtime.
    pub fn start(store: Store) -> Self {
        Self::with_capacity(store, CHANNEL_CAPACITY)
    }

    /// As `start`, with channels of `capacity` events (tests use tiny ones to make
    /// subscribers fall behind).
    pub fn with_capacity(store: Store, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            channels: Mutex::new(Channels::new(capacity)),
            published: watch::channel(None).0,
            wake: Notify::new(),
            subscribers: watch::channel(0).0,
            lagged: AtomicU64::new(0),
            instance: uuid::Uuid::now_v7().simple().to_string(),
            store,
        });
        let (stop, stopped) = watch::channel(false);
        if shared.store.is_postgres() {
            pg::spawn(shared.clone(), stopped.clone());
        }
        tokio::spawn(tailer::run(shared.clone(), stopped));
        Self {
            inner: Arc::new(Inner { shared, stop }),
        }
    }

    /// The number of open subscriptions, to wait on (tests, metrics).
    pub fn subscribers(&self) -> watch::Receiver<usize> {
        self.inner.shared.subscribers.subscribe()
    }

    /// How many times a subscriber fell behind the channel and caught up from the
    /// database.
    pub fn lagged(&self) -> u64 {
        self.inner.shared.lagged.load(Ordering::Relaxed)
    }

    /// The owner's history events matching `filter`: those after `after` first (from
    /// the database), then new ones as they are committed. Without `after`, only
    /// events published from now on.
    pub async fn history(
        &self,
        owner_id: OwnerId,
        filter: crate::store::history::TimelineFilter,
        after: Option<TimelineCursor>,
    ) -> AppResult<HistoryFeed> {
        HistoryFeed::start(self.inner.shared.clone(), owner_id, filter, after).await
    }

    /// One task's events after sequence `after` (from the database), then new ones as
    /// they are committed; without `after`, only new ones. `NOT_FOUND` unless the task
    /// is the owner's.
    pub async fn task_events(
        &self,
        owner_id: OwnerId,
        task_id: TaskId,
        after: Option<i64>,
    ) -> AppResult<TaskFeed> {
        TaskFeed::start(self.inner.shared.clone(), owner_id, task_id, after).await
    }
}
