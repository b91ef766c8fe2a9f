//! DataLoaders for every relation field. They are made per request for the request's
//! owner, so every batch query is scoped to that owner and nothing is cached across
//! owners.
//!
//! A batch waits until the request stops asking for keys (see `Activity`), not only
//! for the loader's 1 ms window: async-graphql yields to the runtime every couple of
//! list items, so on a slow or busy machine a page of 100 items outlasts the window
//! and a time-only batch would split into several statements.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use crate::entities::{checkpoint, contract, conversation, supervisor_state, task};
use crate::error::AppError;
use crate::store::OwnerScope;
use crate::store::keyset::Paged;
use crate::store::{Store, checkpoints, contracts, conversations, tasks};

/// A table whose rows a loader fetches by id, within one owner's rows.
pub trait OwnedRows: Send + Sync + 'static {
    type Row: Clone + Send + Sync + 'static;
    fn fetch(
        store: &Store,
        owner_id: Uuid,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Self::Row>, AppError>> + Send;
    fn key(row: &Self::Row) -> Uuid;
}

pub struct ById<T> {
    store: Store,
    owner_id: Uuid,
    _rows: PhantomData<T>,
}

impl<T: OwnedRows> Loader<Uuid> for ById<T> {
    type Value = T::Row;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, T::Row>, AppError> {
        let rows = T::fetch(&self.store, self.owner_id, keys).await?;
        Ok(rows.into_iter().map(|r| (T::key(&r), r)).collect())
    }
}

pub struct Contracts;
impl OwnedRows for Contracts {
    type Row = contract::Model;
    async fn fetch(
        store: &Store,
        owner_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Self::Row>, AppError> {
        contracts::by_ids(OwnerScope::new(store.db(), owner_id), ids).await
    }
    fn key(row: &Self::Row) -> Uuid {
        row.id
    }
}

pub struct Tasks;
impl OwnedRows for Tasks {
    type Row = task::Model;
    async fn fetch(
        store: &Store,
        owner_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Self::Row>, AppError> {
        tasks::by_ids(OwnerScope::new(store.db(), owner_id), ids).await
    }
    fn key(row: &Self::Row) -> Uuid {
        row.id
    }
}

pub struct Checkpoints;
impl OwnedRows for Checkpoints {
    type Row = checkpoint::Model;
    async fn fetch(
        store: &Store,
        owner_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Self::Row>, AppError> {
        checkpoints::by_ids(OwnerScope::new(store.db(), owner_id), ids).await
    }
    fn key(row: &Self::Row) -> Uuid {
        row.id
    }
}

/// Conversation segments (a head's length is the conversation's message count).
pub struct Conversations;
impl OwnedRows for Conversations {
    type Row = conversation::Model;
    async fn fetch(
        store: &Store,
        owner_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Self::Row>, AppError> {
        conversations::by_ids(OwnerScope::new(store.db(), owner_id), ids).await
    }
    fn key(row: &Self::Row) -> Uuid {
        row.id
    }
}

/// Supervisor state, keyed by contract id.
pub struct Supervisors;
impl OwnedRows for Supervisors {
    type Row = supervisor_state::Model;
    async fn fetch(
        store: &Store,
        owner_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Self::Row>, AppError> {
        contracts::supervisors_by_contract(OwnerScope::new(store.db(), owner_id), ids).await
    }
    fn key(row: &Self::Row) -> Uuid {
        row.contract_id
    }
}

/// The first or last N checkpoints of many tasks: `(task, N, from_end)`.
pub type CheckpointPageKey = (Uuid, u64, bool);

pub struct CheckpointPages {
    store: Store,
    owner_id: Uuid,
}

impl Loader<CheckpointPageKey> for CheckpointPages {
    type Value = Paged<checkpoint::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[CheckpointPageKey],
    ) -> Result<HashMap<CheckpointPageKey, Self::Value>, AppError> {
        let mut groups: HashMap<(u64, bool), Vec<Uuid>> = HashMap::new();
        for &(task, limit, from_end) in keys {
            groups.entry((limit, from_end)).or_default().push(task);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((limit, from_end), task_ids) in groups {
            let rows = checkpoints::first_per_task(
                OwnerScope::new(self.store.db(), self.owner_id),
                &task_ids,
                limit,
                from_end,
            )
            .await?;
            let mut by_task: HashMap<Uuid, Vec<checkpoint::Model>> = HashMap::new();
            for row in rows {
                by_task.entry(row.task_id).or_default().push(row);
            }
            for task in task_ids {
                let mut items = by_task.remove(&task).unwrap_or_default();
                let more = items.len() as u64 > limit;
                if more {
                    // The extra row is the one farthest from the end we read from.
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
                out.insert((task, limit, from_end), page);
            }
        }
        Ok(out)
    }
}

/// Bumped whenever a resolver of the request reaches for a loader (`graphql::loaders`).
#[derive(Clone, Default)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// At most this many yields before a batch runs anyway.
const MAX_WAITS: usize = 100;

/// Spawns a batch once the request's resolvers stopped reaching for loaders for a
/// whole turn of the runtime, so that every key of the current level is in it.
fn spawner(
    activity: Activity,
) -> impl Fn(BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> + Send + Sync + 'static {
    move |batch| {
        let activity = activity.clone();
        tokio::spawn(async move {
            let mut seen = activity.get();
            for _ in 0..MAX_WAITS {
                tokio::task::yield_now().await;
                let now = activity.get();
                if now == seen {
                    break;
                }
                seen = now;
            }
            batch.await
        })
    }
}

/// Every loader of one request.
pub struct Loaders {
    pub contracts: DataLoader<ById<Contracts>>,
    pub tasks: DataLoader<ById<Tasks>>,
    pub checkpoints: DataLoader<ById<Checkpoints>>,
    pub supervisors: DataLoader<ById<Supervisors>>,
    pub conversations: DataLoader<ById<Conversations>>,
    pub checkpoint_pages: DataLoader<CheckpointPages>,
    pub activity: Activity,
}

impl Loaders {
    pub fn new(store: &Store, owner_id: Uuid) -> Self {
        let activity = Activity::default();
        fn by_id<T: OwnedRows>(
            store: &Store,
            owner_id: Uuid,
            activity: &Activity,
        ) -> DataLoader<ById<T>> {
            DataLoader::new(
                ById {
                    store: store.clone(),
                    owner_id,
                    _rows: PhantomData,
                },
                spawner(activity.clone()),
            )
        }
        Self {
            contracts: by_id(store, owner_id, &activity),
            tasks: by_id(store, owner_id, &activity),
            checkpoints: by_id(store, owner_id, &activity),
            supervisors: by_id(store, owner_id, &activity),
            conversations: by_id(store, owner_id, &activity),
            checkpoint_pages: DataLoader::new(
                CheckpointPages {
                    store: store.clone(),
                    owner_id,
                },
                spawner(activity.clone()),
            ),
            activity,
        }
    }
}
