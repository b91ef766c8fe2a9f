//! The one protocol of every change that may run a code operation. Git cannot join a
//! database transaction, so `run` does, in this order and nowhere else:
//!
//! 1. take the task's in-process lock, and let the change plan (read, decide its git step);
//! 2. announce the git step's intent (committed on its own), then, on PostgreSQL, open
//!    the recording transaction holding the task's cross-process lock, and check the
//!    change's rules through it;
//! 3. run the git step;
//! 4. record: the change's own writes, the operation's row, its history event and the
//!    intent's deletion, in that one transaction;
//! 5. settle: commit, or undo the git step if recording or committing failed.
//!
//! A process that dies between 2 and 5 leaves the intent for `reconcile`. A change with
//! no git step goes straight from planning to recording.

use sea_orm::DatabaseTransaction;

use super::super::{App, Viewer};
use super::Site;
use super::intent::{Intent, Ran};
use super::remote::{self, Outcome};
use crate::entities::event_data::EventData;
use crate::entities::ids::{ContractId, OwnerId, TaskId};
use crate::entities::{code_operation, contract, history_event, task};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
use crate::store::{code_operations, intents, task_locks, tasks};

/// A use case that may run a code operation. `run` calls its steps in order.
/// Its steps' futures are `Send`, so a change can run on any executor thread.
pub trait Change: Sync {
    /// What planning found, handed on to `record`.
    type Plan: Send;
    /// What the use case returns.
    type Output: Send;

    /// The existing task the change acts on (for a new worktree, the task it comes
    /// from): changes of one task run one at a time, and an interrupted git step is
    /// recovered under this task's lock. `None`: the change touches no existing task.
    fn task_id(&self) -> Option<TaskId>;

    /// Reads what the change needs (outside any transaction, the task's in-process lock
    /// held), checks what it can, and decides the git step, if any.
    fn plan(
        &self,
        app: &App,
        viewer: &Viewer,
    ) -> impl Future<Output = AppResult<(Self::Plan, Option<Intent>)>> + Send;

    /// The rules the task must still meet when git is about to run; checked through the
    /// held cross-process lock (PostgreSQL). `record` must check them again.
    fn check(&self, _task: &task::Model) -> AppResult<()> {
        Ok(())
    }

    /// Writes the change in `txn`, given the operation its git step made (`run` writes
    /// the operation's row and the returned event after this).
    fn record(
        &self,
        app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        plan: Self::Plan,
        op: Option<&code_operation::Model>,
    ) -> impl Future<Output = AppResult<Recorded<Self::Output>>> + Send;
}

/// What `Change::record` wrote: the event to record with it, and the use case's result.
pub struct Recorded<T> {
    pub event: Event,
    pub output: T,
}

/// A history event of the viewer's (the owner is the viewer's).
pub struct Event {
    pub contract_id: Option<ContractId>,
    pub task_id: Option<TaskId>,
    pub phase: Option<String>,
    pub data: EventData,
}

impl Event {
    /// Writes the event in `txn`, as the owner's.
    pub(super) async fn insert(
        self,
        txn: &DatabaseTransaction,
        owner_id: OwnerId,
    ) -> AppResult<history_event::Model> {
        history::insert(
            txn,
            NewEvent {
                owner_id,
                contract_id: self.contract_id,
                task_id: self.task_id,
                phase: self.phase,
                data: self.data,
            },
        )
        .await
    }

    /// An event about `task` (in `contract`, whose phase it records, when it has one).
    pub fn on(task: &task::Model, contract: Option<&contract::Model>, data: EventData) -> Self {
        Self {
            contract_id: task.contract_id,
            task_id: Some(task.id),
            phase: contract.map(|c| c.phase.clone()),
            data,
        }
    }
}

/// A change that was recorded and committed.
pub struct Done<T> {
    pub output: T,
    pub code_operation: Option<code_operation::Model>,
    pub event: history_event::Model,
}

const RESTARTED: &str = "the operation was interrupted by a server restart; try again";

/// Runs `change` through the protocol above; a git step on a daemon's worktree is
/// queued for that daemon instead (`remote`).
pub async fn run<C>(app: &App, viewer: &Viewer, change: &C) -> AppResult<Outcome<C::Output>>
where
    C: Change + Clone + Send + 'static,
    C::Plan: 'static,
    C::Output: 'static,
{
    let _guard = match change.task_id() {
        Some(id) => Some(app.locks.task(id).await),
        None => None,
    };
    let (plan, intent) = change.plan(app, viewer).await?;
    if let Some(intent) = intent.as_ref().filter(|i| i.site() != Site::Server) {
        return remote::run(app, viewer, change, plan, intent.clone()).await;
    }
    let step = Step::announce(app, intent).await?;
    let checked = step.check(viewer, change).await;
    let (txn, ran) = step.run(app, checked).await?;
    let recorded = async {
        let op = ran.as_ref().map(|r| &r.op);
        let Recorded { event, output } = change.record(app, viewer, &txn, plan, op).await?;
        let op = match &ran {
            Some(ran) => Some(insert_operation(&txn, ran).await?),
            None => None,
        };
        let event = event.insert(&txn, viewer.owner_id).await?;
        Ok((event, output, op))
    }
    .await;
    let (event, output, code_operation) = settle(app, txn, ran, recorded).await?;
    Ok(Outcome::Done(Done {
        output,
        code_operation,
        event,
    }))
}

/// Records the operation in `txn` and deletes its intent there, so both change together.
async fn insert_operation(
    txn: &DatabaseTransaction,
    ran: &Ran,
) -> AppResult<code_operation::Model> {
    if !intents::delete(txn, ran.intent.id()).await? {
        return Err(AppError::conflict(RESTARTED));
    }
    code_operations::insert(txn, ran.op.clone()).await
}

/// A git step announced and not yet run. Until it runs it reads only through `held`
/// (or holds nothing): one holding a pooled connection for its lock while waiting for
/// a second one could starve the pool.
struct Step {
    intent: Option<Intent>,
    held: Option<DatabaseTransaction>,
}

impl Step {
    /// Commits the intent, then, on PostgreSQL, opens the recording transaction with
    /// the task's cross-process lock and checks that no recovery in another process
    /// took the intent meanwhile. Without an intent nothing is written or held.
    async fn announce(app: &App, intent: Option<Intent>) -> AppResult<Self> {
        let Some(intent) = intent else {
            return Ok(Self {
                intent: None,
                held: None,
            });
        };
        intent.write(app).await?;
        let held = match lock_task(app, intent.task_id()).await {
            Ok(held) => held,
            Err(err) => {
                intent.withdraw(app).await;
                return Err(err);
            }
        };
        let step = Self {
            intent: Some(intent.clone()),
            held,
        };
        if let Some(txn) = &step.held {
            let still_ours = intents::by_id(txn, intent.id()).await.map(|i| i.is_some());
            match still_ours {
                Ok(true) => {}
                Ok(false) => return Err(step.refuse(app, AppError::conflict(RESTARTED)).await),
                Err(err) => return Err(step.refuse(app, err).await),
            }
        }
        Ok(step)
    }

    /// The change's rules on the task as the held lock's transaction sees it. A plain
    /// read, no row lock: the advisory lock already excludes other operations, and a
    /// row lock would give the transaction an id for the whole git step, holding back
    /// every timeline reader. Without a held lock the recording transaction checks.
    async fn check<C: Change>(&self, viewer: &Viewer, change: &C) -> AppResult<()> {
        let (Some(held), Some(task_id)) = (&self.held, change.task_id()) else {
            return Ok(());
        };
        let task = tasks::by_id(viewer.scope(held), task_id)
            .await?
            .ok_or_else(|| AppError::not_found("task"))?;
        change.check(&task)
    }

    /// Ends a step refused before git ran: withdraws the intent; returns `err`.
    async fn refuse(self, app: &App, err: AppError) -> AppError {
        if let Some(intent) = &self.intent {
            // Free the held connection first: withdrawing takes one.
            rollback(self.held).await;
            intent.withdraw(app).await;
        }
        err
    }

    /// Runs the git step once `checked` passed; returns the transaction to record it in
    /// (the held one, else a new write transaction, begun after git so that SQLite's
    /// write lock is not held while git runs).
    async fn run(
        self,
        app: &App,
        checked: AppResult<()>,
    ) -> AppResult<(DatabaseTransaction, Option<Ran>)> {
        if let Err(err) = checked {
            return Err(self.refuse(app, err).await);
        }
        let ran = match &self.intent {
            Some(intent) => match intent.run(app).await {
                Ok(ran) => Some(ran),
                Err(err) => return Err(self.refuse(app, err).await),
            },
            None => None,
        };
        let txn = match self.held {
            Some(txn) => app.store.announce(&txn).await.map(|()| txn),
            None => app.store.begin_write().await,
        };
        match txn {
            Ok(txn) => Ok((txn, ran)),
            Err(err) => {
                if let Some(ran) = ran {
                    ran.undo(app).await;
                }
                Err(err)
            }
        }
    }
}

/// On PostgreSQL, a transaction holding the task's cross-process lock, opened before git
/// runs. On SQLite, nothing: holding its single write lock while git runs would stall
/// every writer.
async fn lock_task(app: &App, task_id: TaskId) -> AppResult<Option<DatabaseTransaction>> {
    if !app.store.is_postgres() {
        return Ok(None);
    }
    let txn = app.store.begin_code_operation().await?;
    task_locks::lock(&txn, task_id).await?;
    Ok(Some(txn))
}

/// Rolls a transaction back now (rather than whenever its connection is next used), so
/// its connection and, on SQLite, the write lock are free.
async fn rollback(txn: Option<DatabaseTransaction>) {
    if let Some(txn) = txn
        && let Err(err) = txn.rollback().await
    {
        tracing::warn!(?err, "rollback failed");
    }
}

/// Ends a step whose rows were written in `txn`: commits, or, when recording or
/// committing failed, undoes the git step so that nothing changed. A commit that
/// reports an error although the operation's row is there (the connection failed after
/// COMMIT) succeeded: the git step stays.
async fn settle<T>(
    app: &App,
    txn: DatabaseTransaction,
    ran: Option<Ran>,
    recorded: AppResult<(history_event::Model, T, Option<code_operation::Model>)>,
) -> AppResult<(history_event::Model, T, Option<code_operation::Model>)> {
    let outcome = match recorded {
        Ok(done) => match app.store.commit(txn, &done.0).await {
            Ok(()) => Ok(done),
            Err(err) if committed_anyway(app, ran.as_ref()).await => {
                tracing::warn!(
                    ?err,
                    "commit reported an error but the operation is recorded"
                );
                Ok(done)
            }
            Err(err) => Err(err),
        },
        Err(err) => {
            rollback(Some(txn)).await;
            Err(err)
        }
    };
    if outcome.is_err()
        && let Some(ran) = ran
    {
        ran.undo(app).await;
    }
    outcome
}

/// Whether the operation's row is in the database (its recording committed).
async fn committed_anyway(app: &App, ran: Option<&Ran>) -> bool {
    match ran {
        Some(r) => matches!(
            code_operations::by_id(app.store.scope(r.op.owner_id), r.op.id).await,
            Ok(Some(_))
        ),
        None => false,
    }
}
