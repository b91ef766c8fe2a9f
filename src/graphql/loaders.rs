//! DataLoaders for relation fields. They are made per request for the request's
//! owner, so every batch query is scoped to that owner and nothing is cached across
//! owners.
//!
//! Every single-row relation (a task's contract, parent and fork origin, a contract's
//! supervisor, a checkpoint's task, …) is batched. So is the first or last page, without
//! cursors, of `Contract.tasks`, `Contract.history`, `Task.events`, `Task.checkpoints`
//! and the conversations (`Task.conversation`, `Contract.conversation`): one statement
//! per batch of parents, each parent's rows an index range with its own limit.
//!
//! These run one query per parent, because a batch would buy little: a page after or
//! before a cursor (a client paging one list, not a list per parent); a supervisor's
//! conversation filtered by `phase`; `Task.forks` and `Contract.checkpoints` (rarely
//! selected below a list); `totalCount` of a nested connection that counts (only when
//! selected); and reading the ancestors of a conversation that the chain cache has not
//! seen yet (once per conversation, then kept in memory).
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

use crate::entities::ids::{CheckpointId, ContractId, ConversationId, DaemonId, OwnerId, TaskId};
use crate::entities::kinds::TaskEventType;
use crate::entities::{
    checkpoint, contract, conversation, daemon, history_event, message, supervisor_state, task,
    task_event,
};
use crate::error::{AppError, AppResult};
use crate::store::keyset::{Paged, Window, pages_per_parent};
use crate::store::{
    Store, checkpoints, contracts, conversations, daemons, history, task_events, tasks,
};

/// One owner's rows, as the loaders read them.
type Scope<'a> = crate::store::OwnerScope<'a, sea_orm::DatabaseConnection>;

/// A table whose rows a loader fetches by id, within one owner's rows.
pub trait OwnedRows: Send + Sync + 'static {
    /// The id the rows are fetched by.
    type Id: Copy + Eq + std::hash::Hash + Send + Sync + 'static;
    type Row: Clone + Send + Sync + 'static;
    fn fetch(
        scope: Scope<'_>,
        ids: &[Self::Id],
    ) -> impl Future<Output = Result<Vec<Self::Row>, AppError>> + Send;
    fn key(row: &Self::Row) -> Self::Id;
}

pub struct ById<T> {
    store: Store,
    owner_id: OwnerId,
    _rows: PhantomData<T>,
}

impl<T: OwnedRows> Loader<T::Id> for ById<T> {
    type Value = T::Row;
    type Error = AppError;

    async fn load(&self, keys: &[T::Id]) -> Result<HashMap<T::Id, T::Row>, AppError> {
        let rows = T::fetch(self.store.scope(self.owner_id), keys).await?;
        Ok(rows.into_iter().map(|r| (T::key(&r), r)).collect())
    }
}

pub struct Contracts;
impl OwnedRows for Contracts {
    type Id = ContractId;
    type Row = contract::Model;
    async fn fetch(scope: Scope<'_>, ids: &[ContractId]) -> Result<Vec<Self::Row>, AppError> {
        contracts::by_ids(scope, ids).await
    }
    fn key(row: &Self::Row) -> ContractId {
        row.id
    }
}

pub struct Tasks;
impl OwnedRows for Tasks {
    type Id = TaskId;
    type Row = task::Model;
    async fn fetch(scope: Scope<'_>, ids: &[TaskId]) -> Result<Vec<Self::Row>, AppError> {
        tasks::by_ids(scope, ids).await
    }
    fn key(row: &Self::Row) -> TaskId {
        row.id
    }
}

pub struct Daemons;
impl OwnedRows for Daemons {
    type Id = DaemonId;
    type Row = daemon::Model;
    async fn fetch(scope: Scope<'_>, ids: &[DaemonId]) -> Result<Vec<Self::Row>, AppError> {
        daemons::by_ids(scope, ids).await
    }
    fn key(row: &Self::Row) -> DaemonId {
        row.id
    }
}

pub struct Checkpoints;
impl OwnedRows for Checkpoints {
    type Id = CheckpointId;
    type Row = checkpoint::Model;
    async fn fetch(scope: Scope<'_>, ids: &[CheckpointId]) -> Result<Vec<Self::Row>, AppError> {
        checkpoints::by_ids(scope, ids).await
    }
    fn key(row: &Self::Row) -> CheckpointId {
        row.id
    }
}

/// Conversation segments (a head's length is the conversation's message count).
pub struct Conversations;
impl OwnedRows for Conversations {
    type Id = ConversationId;
    type Row = conversation::Model;
    async fn fetch(scope: Scope<'_>, ids: &[ConversationId]) -> Result<Vec<Self::Row>, AppError> {
        conversations::by_ids(scope, ids).await
    }
    fn key(row: &Self::Row) -> ConversationId {
        row.id
    }
}

/// Supervisor state, keyed by contract id.
pub struct Supervisors;
impl OwnedRows for Supervisors {
    type Id = ContractId;
    type Row = supervisor_state::Model;
    async fn fetch(scope: Scope<'_>, ids: &[ContractId]) -> Result<Vec<Self::Row>, AppError> {
        contracts::supervisors_by_contract(scope, ids).await
    }
    fn key(row: &Self::Row) -> ContractId {
        row.contract_id
    }
}

/// The first or last page (no cursors) of one parent's list, narrowed by `filter`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey<P, F> {
    pub parent: P,
    pub filter: F,
    pub limit: u64,
    pub from_end: bool,
}

impl<P, F> PageKey<P, F> {
    /// The key of `window`'s page of `parent`'s list, when the window has no cursor:
    /// only first and last pages are batched.
    pub fn of<K>(parent: P, filter: F, window: &Window<K>) -> Option<Self> {
        (window.after.is_none() && window.before.is_none()).then_some(Self {
            parent,
            filter,
            limit: window.limit,
            from_end: window.from_end,
        })
    }
}

/// A page a batch loader was asked for: it answers every key it is given.
pub fn batched<T>(page: Option<T>) -> AppResult<T> {
    page.ok_or_else(|| AppError::internal("a batched page is missing"))
}

/// A list under a parent row whose first or last page is read for a whole batch of
/// parents in one statement (`keyset::per_parent`).
pub trait ChildList: Send + Sync + 'static {
    /// What narrows the list besides its parent; keys with equal filters and sizes
    /// share a statement.
    type Filter: Clone + Eq + std::hash::Hash + Send + Sync + 'static;
    /// The id of the parent row.
    type Parent: Copy + Eq + std::hash::Hash + Send + Sync + 'static;
    type Row: Clone + Send + Sync + 'static;
    fn fetch(
        scope: Scope<'_>,
        parents: &[Self::Parent],
        filter: &Self::Filter,
        limit: u64,
        from_end: bool,
    ) -> impl Future<Output = Result<Vec<Self::Row>, AppError>> + Send;
    /// The parent a fetched row belongs to (`None`: to none of the pages).
    fn parent(row: &Self::Row) -> Option<Self::Parent>;
}

pub struct FirstPages<L> {
    store: Store,
    owner_id: OwnerId,
    _list: PhantomData<L>,
}

impl<L: ChildList> Loader<PageKey<L::Parent, L::Filter>> for FirstPages<L> {
    type Value = Paged<L::Row>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[PageKey<L::Parent, L::Filter>],
    ) -> Result<HashMap<PageKey<L::Parent, L::Filter>, Self::Value>, AppError> {
        let mut groups: HashMap<(L::Filter, u64, bool), Vec<L::Parent>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.filter.clone(), key.limit, key.from_end))
                .or_default()
                .push(key.parent);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((filter, limit, from_end), parents) in groups {
            let rows = L::fetch(
                self.store.scope(self.owner_id),
                &parents,
                &filter,
                limit,
                from_end,
            )
            .await?;
            for (parent, page) in pages_per_parent(rows, L::parent, &parents, limit, from_end) {
                let key = PageKey {
                    parent,
                    filter: filter.clone(),
                    limit,
                    from_end,
                };
                out.insert(key, page);
            }
        }
        Ok(out)
    }
}

/// A task's checkpoints.
pub struct TaskCheckpoints;
impl ChildList for TaskCheckpoints {
    type Filter = ();
    type Parent = TaskId;
    type Row = checkpoint::Model;
    async fn fetch(
        scope: Scope<'_>,
        parents: &[TaskId],
        _: &(),
        limit: u64,
        from_end: bool,
    ) -> Result<Vec<Self::Row>, AppError> {
        checkpoints::first_per_task(scope, parents, limit, from_end).await
    }
    fn parent(row: &Self::Row) -> Option<TaskId> {
        Some(row.task_id)
    }
}

/// A task's events, of some types or all.
pub struct TaskEvents;
impl ChildList for TaskEvents {
    type Filter = Option<Vec<TaskEventType>>;
    type Parent = TaskId;
    type Row = task_event::Model;
    async fn fetch(
        scope: Scope<'_>,
        parents: &[TaskId],
        types: &Self::Filter,
        limit: u64,
        from_end: bool,
    ) -> Result<Vec<Self::Row>, AppError> {
        let types = types.as_deref();
        task_events::first_per_task(scope, parents, types, limit, from_end).await
    }
    fn parent(row: &Self::Row) -> Option<TaskId> {
        Some(row.task_id)
    }
}

/// A contract's tasks (the filter's own `contract_id` is ignored).
pub struct ContractTasks;
impl ChildList for ContractTasks {
    type Filter = tasks::TaskFilter;
    type Parent = ContractId;
    type Row = task::Model;
    async fn fetch(
        scope: Scope<'_>,
        parents: &[ContractId],
        filter: &Self::Filter,
        limit: u64,
        from_end: bool,
    ) -> Result<Vec<Self::Row>, AppError> {
        tasks::first_per_contract(scope, parents, filter, limit, from_end).await
    }
    fn parent(row: &Self::Row) -> Option<ContractId> {
        row.contract_id
    }
}

/// A contract's slice of the timeline (the filter's own `contract_id` is ignored).
pub struct ContractHistory;
impl ChildList for ContractHistory {
    type Filter = history::TimelineFilter;
    type Parent = ContractId;
    type Row = history_event::Model;
    async fn fetch(
        scope: Scope<'_>,
        parents: &[ContractId],
        filter: &Self::Filter,
        limit: u64,
        from_end: bool,
    ) -> Result<Vec<Self::Row>, AppError> {
        history::first_per_contract(scope, parents, filter, limit, from_end).await
    }
    fn parent(row: &Self::Row) -> Option<ContractId> {
        row.contract_id
    }
}

/// The first or last page of a conversation (by its head segment) and its length.
pub struct ConversationPages {
    store: Store,
    owner_id: OwnerId,
}

impl Loader<PageKey<ConversationId, ()>> for ConversationPages {
    type Value = (Paged<message::Model>, i32);
    type Error = AppError;

    async fn load(
        &self,
        keys: &[PageKey<ConversationId, ()>],
    ) -> Result<HashMap<PageKey<ConversationId, ()>, Self::Value>, AppError> {
        let heads: Vec<ConversationId> = keys.iter().map(|k| k.parent).collect();
        let rows = conversations::by_ids(self.store.scope(self.owner_id), &heads).await?;
        let rows: HashMap<ConversationId, conversation::Model> =
            rows.into_iter().map(|r| (r.id, r)).collect();
        let mut views = HashMap::with_capacity(rows.len());
        for (id, row) in &rows {
            views.insert(*id, self.store.conversation_of(row).await?);
        }
        let mut groups: HashMap<(u64, bool), Vec<ConversationId>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.limit, key.from_end))
                .or_default()
                .push(key.parent);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((limit, from_end), heads) in groups {
            let window = Window {
                after: None,
                before: None,
                limit,
                from_end,
            };
            let mut found = Vec::with_capacity(heads.len());
            for head in heads {
                let view = views
                    .get(&head)
                    .ok_or_else(|| AppError::internal(format!("conversation {head} is missing")))?;
                found.push((head, view));
            }
            let in_order: Vec<_> = found.iter().map(|(_, view)| *view).collect();
            let pages =
                conversations::pages(self.store.scope(self.owner_id), &in_order, &window).await?;
            for ((head, view), page) in found.into_iter().zip(pages) {
                let key = PageKey {
                    parent: head,
                    filter: (),
                    limit,
                    from_end,
                };
                out.insert(key, (page, view.length));
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
    pub daemons: DataLoader<ById<Daemons>>,
    pub checkpoints: DataLoader<ById<Checkpoints>>,
    pub supervisors: DataLoader<ById<Supervisors>>,
    pub conversations: DataLoader<ById<Conversations>>,
    pub task_checkpoints: DataLoader<FirstPages<TaskCheckpoints>>,
    pub task_events: DataLoader<FirstPages<TaskEvents>>,
    pub contract_tasks: DataLoader<FirstPages<ContractTasks>>,
    pub contract_history: DataLoader<FirstPages<ContractHistory>>,
    pub conversation_pages: DataLoader<ConversationPages>,
    pub activity: Activity,
}

impl Loaders {
    pub fn new(store: &Store, owner_id: OwnerId) -> Self {
        let activity = Activity::default();
        fn by_id<T: OwnedRows>(
            store: &Store,
            owner_id: OwnerId,
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
        fn first_pages<L: ChildList>(
            store: &Store,
            owner_id: OwnerId,
            activity: &Activity,
        ) -> DataLoader<FirstPages<L>> {
            DataLoader::new(
                FirstPages {
                    store: store.clone(),
                    owner_id,
                    _list: PhantomData,
                },
                spawner(activity.clone()),
            )
        }
        Self {
            contracts: by_id(store, owner_id, &activity),
            tasks: by_id(store, owner_id, &activity),
            daemons: by_id(store, owner_id, &activity),
            checkpoints: by_id(store, owner_id, &activity),
            supervisors: by_id(store, owner_id, &activity),
            conversations: by_id(store, owner_id, &activity),
            task_checkpoints: first_pages(store, owner_id, &activity),
            task_events: first_pages(store, owner_id, &activity),
            contract_tasks: first_pages(store, owner_id, &activity),
            contract_history: first_pages(store, owner_id, &activity),
            conversation_pages: DataLoader::new(
                ConversationPages {
                    store: store.clone(),
                    owner_id,
                },
                spawner(activity.clone()),
            ),
            activity,
        }
    }
}
