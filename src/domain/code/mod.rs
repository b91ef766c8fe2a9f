//! Running a code operation for a task and recording it. Git cannot join a database
//! transaction, so the protocol is: announce the intent (committed), take the task's
//! cross-process lock, check, run git, then record the operation and its event and
//! delete the intent in one transaction; if that transaction fails, the git step is
//! undone. A process that dies in between leaves the intent for `reconcile`.

mod intent;
mod reconcile;

use std::path::PathBuf;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement};
use uuid::Uuid;

use super::{App, Viewer};
use crate::entities::{checkpoint, code_operation, conversation_snapshot, history_event, task};
use crate::error::{AppError, AppResult};
use crate::store::conversations::View;
use crate::store::{checkpoints, code_operations, intents, tasks};

pub use intent::{Intent, Ran};
pub use reconcile::reconcile;

/// Where a task's code lives: its worktree, else its repository.
pub fn code_dir(task: &task::Model) -> Option<PathBuf> {
    task.worktree_path
        .as_ref()
        .or(task.repository.as_ref())
        .map(PathBuf::from)
}

/// Where the server puts the linked worktree of a task it creates.
pub fn worktree_path(app: &App, task_id: Uuid) -> PathBuf {
    app.workspace_root
        .join(".makima")
        .join("worktrees")
        .join(task_id.to_string())
}

/// The intent of restoring the task's code (its worktree, else its repository) to
/// `commit`; `None` for a task with no code, which gets no operation rather than a
/// pretend one.
pub fn restore_intent(viewer: &Viewer, task: &task::Model, commit: &str) -> Option<Intent> {
    code_dir(task).map(|dir| Intent::restore(viewer, task.id, &dir, commit))
}

/// A code operation announced and not yet run. Between `announce` and `run` it may read
/// only through `held()` (or hold nothing): an operation that held one pooled
/// connection for its lock and waited for a second one could starve the pool.
pub struct Announced {
    intent: Option<Intent>,
    held: Option<DatabaseTransaction>,
}

/// Announces `intent` (commits it in a transaction of its own), then, on PostgreSQL,
/// opens the transaction that will record the operation, holding the task's
/// cross-process lock, and checks that no recovery in another process took the intent
/// meanwhile. Without an intent (no git step) nothing is written or held.
pub async fn announce(app: &App, intent: Option<Intent>) -> AppResult<Announced> {
    let Some(intent) = intent else {
        return Ok(Announced {
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
    if let Some(txn) = &held
        && intents::by_id(txn, intent.id()).await?.is_none()
    {
        return Err(AppError::conflict(
            "the operation was interrupted by a server restart; try again",
        ));
    }
    Ok(Announced {
        intent: Some(intent),
        held,
    })
}

impl Announced {
    /// The transaction holding the task's cross-process lock, if any: the only
    /// connection the operation may read through until it is recorded.
    pub fn held(&self) -> Option<&DatabaseTransaction> {
        self.held.as_ref()
    }

    /// Ends an operation refused before its git step: withdraws the intent; returns `err`.
    pub async fn refuse(self, app: &App, err: AppError) -> AppError {
        if let Some(intent) = &self.intent {
            // Free the held connection first: withdrawing takes one.
            drop_txn(self.held).await;
            intent.withdraw(app).await;
        }
        err
    }

    /// Runs the git step once the operation's checks (`checked`, made under the lock)
    /// passed; returns the transaction to record it in (the held one, else a new write
    /// transaction, begun after git so SQLite's write lock is not held while git runs).
    pub async fn run(
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
            Some(txn) => match app.store.announce(&txn).await {
                Ok(()) => txn,
                Err(err) => {
                    if let Some(ran) = ran {
                        ran.undo(app).await;
                    }
                    return Err(err);
                }
            },
            None => match app.store.begin_write().await {
                Ok(txn) => txn,
                Err(err) => {
                    if let Some(ran) = ran {
                        ran.undo(app).await;
                    }
                    return Err(err);
                }
            },
        };
        Ok((txn, ran))
    }
}

/// Rolls a transaction back now (rather than whenever its connection is next used), so
/// its connection and, on SQLite, the write lock are free.
async fn drop_txn(txn: Option<DatabaseTransaction>) {
    if let Some(txn) = txn
        && let Err(err) = txn.rollback().await
    {
        tracing::warn!(?err, "rollback failed");
    }
}

/// The key of a task's PostgreSQL advisory lock, held by a code operation from before
/// its git step until it is recorded.
pub fn task_lock_key(task_id: Uuid) -> i64 {
    i64::from_be_bytes(task_id.as_bytes()[8..16].try_into().expect("8 bytes"))
}

/// On PostgreSQL, a transaction holding the task's advisory lock, opened before git runs
/// so that other makima processes wait for this operation (and their recovery leaves it
/// alone). On SQLite, nothing: holding its single write lock while git runs would stall
/// every writer.
async fn lock_task(app: &App, task_id: Uuid) -> AppResult<Option<DatabaseTransaction>> {
    if !app.store.is_postgres() {
        return Ok(None);
    }
    let txn = app.store.begin_code_operation().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "SELECT pg_advisory_xact_lock($1)",
        [task_lock_key(task_id).into()],
    ))
    .await?;
    Ok(Some(txn))
}

/// Takes the task's advisory lock in `txn` if no live operation holds it (PostgreSQL;
/// always true elsewhere).
pub(super) async fn try_lock_task(txn: &DatabaseTransaction, task_id: Uuid) -> AppResult<bool> {
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(true);
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [task_lock_key(task_id).into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal("no lock row"))?;
    Ok(row.try_get("", "locked")?)
}

/// Records the operation (if any) in `txn` and deletes its intent there, so the row and
/// the intent change together.
pub async fn record(
    txn: &DatabaseTransaction,
    ran: Option<&Ran>,
) -> AppResult<Option<code_operation::Model>> {
    let Some(ran) = ran else {
        return Ok(None);
    };
    if !intents::delete(txn, ran.intent.id()).await? {
        return Err(AppError::conflict(
            "the operation was interrupted by a server restart; try again",
        ));
    }
    Ok(Some(code_operations::insert(txn, ran.op.clone()).await?))
}

/// Ends an operation whose rows were written in `txn` (`recorded`, led by its history
/// event): commits, or, when recording or committing failed, undoes the git step so
/// nothing changed. A commit that reports an error although its rows are there (the
/// connection failed after COMMIT) succeeded: the git step stays.
pub async fn settle<T>(
    app: &App,
    txn: DatabaseTransaction,
    ran: Option<Ran>,
    recorded: AppResult<(history_event::Model, T)>,
) -> AppResult<(history_event::Model, T)> {
    let outcome = match recorded {
        Ok((event, rest)) => match app.store.commit(txn, &event).await {
            Ok(()) => Ok((event, rest)),
            Err(err) if committed_anyway(app, ran.as_ref()).await => {
                tracing::warn!(
                    ?err,
                    "commit reported an error but the operation is recorded"
                );
                Ok((event, rest))
            }
            Err(err) => Err(err),
        },
        Err(err) => {
            drop_txn(Some(txn)).await;
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
            code_operations::by_id(app.store.db(), r.op.owner_id, r.op.id).await,
            Ok(Some(_))
        ),
        None => false,
    }
}

/// The task as it stands before an operation is announced (its contract not archived).
pub async fn read_task(app: &App, viewer: &Viewer, task_id: Uuid) -> AppResult<task::Model> {
    let (task, _) = super::tasks::lock_for_change(app.store.db(), viewer, task_id).await?;
    Ok(task)
}

/// Checks the task again through the held lock's transaction (PostgreSQL; elsewhere the
/// recording transaction checks it), for `Announced::run`. A plain read, no row lock:
/// the advisory lock already excludes other operations, and a row lock would give the
/// transaction an id for the whole git step, holding back every timeline reader's horizon.
pub async fn recheck(
    viewer: &Viewer,
    task_id: Uuid,
    step: &Announced,
    check: impl Fn(&task::Model) -> AppResult<()>,
) -> AppResult<()> {
    match step.held() {
        Some(held) => check(
            &tasks::by_id(held, viewer.owner_id, task_id)
                .await?
                .ok_or_else(|| AppError::not_found("task"))?,
        ),
        None => Ok(()),
    }
}

/// A checkpoint given for `task_id`: another owner's or a missing one is NOT_FOUND,
/// another task's BAD_USER_INPUT.
pub async fn checkpoint_of(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    checkpoint_id: Uuid,
    task_id: Uuid,
) -> AppResult<(checkpoint::Model, conversation_snapshot::Model)> {
    let cp = checkpoints::by_id(db, viewer.owner_id, checkpoint_id)
        .await?
        .ok_or_else(|| AppError::not_found("checkpoint"))?;
    if cp.task_id != task_id {
        return Err(AppError::bad_input(
            "the checkpoint belongs to another task",
        ));
    }
    let snapshot = checkpoints::snapshot(db, cp.snapshot_id).await?;
    Ok((cp, snapshot))
}

/// The newest checkpoint of `task_id` whose conversation snapshot is a prefix of the
/// first `length` messages of `view`.
pub async fn newest_prefix_checkpoint(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    task_id: Uuid,
    view: &View,
    length: i32,
) -> AppResult<Option<(checkpoint::Model, conversation_snapshot::Model)>> {
    let all = checkpoints::with_snapshots_newest_first(db, viewer.owner_id, task_id).await?;
    Ok(all
        .into_iter()
        .find(|(_, s)| s.length <= length && view.has_prefix(s.conversation_id, s.length)))
}
