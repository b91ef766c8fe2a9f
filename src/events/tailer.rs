//! The tailer: reads every owner's new history events in timeline order and publishes
//! them, one batch at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{LiveEvent, Shared};
use crate::entities::event_data::EventData;
use crate::entities::ids::TaskId;
use crate::entities::kinds::HistoryEventType;
use crate::entities::{history_event, task_event};
use crate::error::AppResult;
use crate::store::history::TimelineCursor;
use crate::store::live;

/// Events read (and published) per query.
const BATCH: u64 = 256;

/// The safety net: how often the tailer looks even when nothing woke it. It catches
/// notifications lost while the listener reconnected, events that were not yet readable
/// when their commit signalled (a long transaction in flight on PostgreSQL), and
/// writers without a fan-out of their own (`makima demo`, another SQLite process).
fn poll_interval(postgres: bool) -> Duration {
    if postgres {
        Duration::from_millis(250)
    } else {
        Duration::from_millis(1000)
    }
}

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut commits = shared.store.commits();
    let mut backoff = Duration::from_millis(50);
    let mut cursor = loop {
        match live::head(shared.store.db(), shared.store.horizon_floor()).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = ?e, "live events: cannot read the timeline head");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    shared.published.send_replace(Some(cursor));
    let poll = poll_interval(shared.store.is_postgres());
    loop {
        if let Err(e) = drain(&shared, &mut cursor).await {
            tracing::warn!(error = ?e, "live events: reading new events failed");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Publishes everything readable after `cursor`.
async fn drain(shared: &Shared, cursor: &mut TimelineCursor) -> AppResult<()> {
    loop {
        let rows = live::tail(
            shared.store.db(),
            shared.store.horizon_floor(),
            *cursor,
            BATCH,
        )
        .await?;
        let full = rows.len() as u64 == BATCH;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let last = TimelineCursor::of(last);
        let events = prepare(shared, rows).await?;
        shared.publish(events);
        *cursor = last;
        if !full {
            return Ok(());
        }
    }
}

/// The `(first, last)` sequences of a `TASK_EVENTS_APPENDED` event.
fn appended_range(event: &history_event::Model) -> Option<(i64, i64)> {
    if event.event_type != HistoryEventType::TaskEventsAppended {
        return None;
    }
    match EventData::of(event) {
        Ok(EventData::TaskEventsAppended(d)) => Some((d.first_sequence, d.last_sequence)),
        _ => None,
    }
}

/// Appends whose task events are read together: the tailer holds at most this many
/// appends' rows at once (an append is at most one request body, 1 MiB).
const READ_TOGETHER: usize = 32;

/// Wraps the rows for publishing; for the tasks that some subscription follows, reads
/// the task events that the batch appended, once for all subscribers, and attaches
/// those small enough to travel on a channel.
async fn prepare(
    shared: &Shared,
    rows: Vec<history_event::Model>,
) -> AppResult<Vec<Arc<LiveEvent>>> {
    let ranges: Vec<Option<(i64, i64)>> = rows.iter().map(appended_range).collect();
    let wanted: Vec<(TaskId, i64, i64)> = rows
        .iter()
        .zip(&ranges)
        .filter_map(|(e, r)| Some((e.task_id?, r.as_ref()?.0, r.as_ref()?.1)))
        .filter(|(task, _, _)| shared.follows_task(*task))
        .collect();
    // Keyed by (task, first sequence) of the append.
    let mut loaded: HashMap<(TaskId, i64), Vec<task_event::Model>> = HashMap::new();
    for chunk in wanted.chunks(READ_TOGETHER) {
        let mut read: HashMap<(TaskId, i64), Vec<task_event::Model>> = HashMap::new();
        for te in live::task_event_ranges(shared.store.db(), chunk).await? {
            let append = chunk.iter().find(|(task, first, last)| {
                *task == te.task_id && (*first..=*last).contains(&te.sequence)
            });
            if let Some(&(task, first, _)) = append {
                read.entry((task, first)).or_default().push(te);
            }
        }
        read.retain(|_, rows| attachable(rows));
        loaded.extend(read);
    }
    Ok(rows
        .into_iter()
        .zip(ranges)
        .map(|(event, range)| {
            let task_events = match (event.task_id, range) {
                (Some(task), Some((first, last))) => loaded
                    .remove(&(task, first))
                    .filter(|rows| rows.len() as i64 == last - first + 1),
                _ => None,
            };
            Arc::new(LiveEvent {
                event,
                range,
                task_events,
            })
        })
        .collect())
}

/// Whether the task events of one append are small enough to travel on a channel.
fn attachable(rows: &[task_event::Model]) -> bool {
    let bytes: usize = rows
        .iter()
        .map(|r| r.data.len() + r.event_type.as_str().len() + 64)
        .sum();
    bytes <= super::ATTACH_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::ids::{OwnerId, TaskEventId};
    use crate::entities::kinds::TaskEventType;

    fn event(bytes: usize) -> task_event::Model {
        task_event::Model {
            task_id: TaskId::new(),
            sequence: 1,
            id: TaskEventId::new(),
            owner_id: OwnerId::new(),
            event_type: TaskEventType::Output,
            data: "x".repeat(bytes),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn only_small_batches_travel_on_channels() {
        assert!(attachable(
            &(0..100).map(|_| event(200)).collect::<Vec<_>>()
        ));
        assert!(!attachable(&[event(200 * 1024)]));
        assert!(!attachable(
            &(0..100).map(|_| event(1024)).collect::<Vec<_>>()
        ));
    }
}
