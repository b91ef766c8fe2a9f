//! Broadcast channels keyed by who listens: one per owner (`historyEvents`) and one per
//! task (`taskEvents`), so that an event wakes only the subscriptions it can concern,
//! not every subscription of the process.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::LiveEvent;
use crate::entities::ids::{OwnerId, TaskId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Owner(OwnerId),
    Task(TaskId),
}

/// A task channel carries one event per append to that task; its slots are allocated
/// up front, so it stays small (1,000 followed tasks must stay cheap). With the task
/// events of an append attached only up to `ATTACH_LIMIT` bytes, one task channel holds
/// at most 64 × 64 KiB = 4 MiB, whoever stops reading it.
const TASK_CAPACITY: usize = 64;

pub(super) struct Channels {
    /// Slots of an owner's channel.
    capacity: usize,
    senders: HashMap<Key, broadcast::Sender<Arc<LiveEvent>>>,
}

impl Channels {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            senders: HashMap::new(),
        }
    }

    pub fn subscribe(&mut self, key: Key) -> broadcast::Receiver<Arc<LiveEvent>> {
        let capacity = match key {
            Key::Owner(_) => self.capacity,
            Key::Task(_) => self.capacity.min(TASK_CAPACITY),
        };
        self.senders
            .entry(key)
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe()
    }

    /// Whether some subscription follows this task's events.
    pub fn follows_task(&self, task_id: TaskId) -> bool {
        self.senders.contains_key(&Key::Task(task_id))
    }

    pub fn publish(&self, event: &Arc<LiveEvent>) {
        let send = |key, event: Arc<LiveEvent>| {
            if let Some(tx) = self.senders.get(&key) {
                // An error only means that the last receiver just went away.
                let _ = tx.send(event);
            }
        };
        // Owner channels hold many slots and their subscribers read only the history
        // event: the task events stay on the task channel.
        let owner = Key::Owner(event.event.owner_id);
        if self.senders.contains_key(&owner) {
            send(owner, Arc::new(event.notice()));
        }
        if let (Some(task), Some(_)) = (event.event.task_id, event.range) {
            send(Key::Task(task), event.clone());
        }
    }

    /// Forgets the channels nobody listens to any more.
    pub fn prune(&mut self) {
        self.senders.retain(|_, tx| tx.receiver_count() > 0);
    }
}
