//! In-process locks: one per task (state checks around git steps) and one per
//! repository (git itself does not take concurrent worktree and ref changes well).
//! Across processes, PostgreSQL advisory locks add the same per-task exclusion.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::entities::ids::TaskId;

struct KeyedLocks<K> {
    map: Mutex<HashMap<K, Arc<AsyncMutex<()>>>>,
}

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    async fn lock(&self, key: &K) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.map.lock().expect("lock map");
            // Forget locks nobody holds or waits for, so the map stays small.
            if map.len() > 1024 {
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            map.entry(key.clone()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[derive(Default)]
pub struct Locks {
    tasks: KeyedLocks<TaskId>,
    repos: KeyedLocks<PathBuf>,
}

impl Locks {
    pub async fn task(&self, id: TaskId) -> OwnedMutexGuard<()> {
        self.tasks.lock(&id).await
    }

    pub async fn repo(&self, path: &std::path::Path) -> OwnedMutexGuard<()> {
        self.repos.lock(&path.to_path_buf()).await
    }
}
