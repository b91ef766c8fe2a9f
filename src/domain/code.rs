//! Running a code operation for a task and recording it: git first (it cannot join a
//! database transaction), then the rows and the event in one transaction; if that
//! transaction fails, the git step is undone.

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement};
use uuid::Uuid;

use super::kinds::{CodeOperationKind, CodeOperationStatus};
use super::{App, Viewer};
use crate::entities::{checkpoint, code_operation, conversation_snapshot, history_event, task};
use crate::error::{AppError, AppResult};
use crate::git::{self, Repo};
use crate::store::conversations::View;
use crate::store::{checkpoints, code_operations};
use crate::time::now;

/// Where a task's code lives: its worktree, else its repository.
pub fn code_dir(task: &task::Model) -> Option<PathBuf> {
    task.worktree_path
        .as_ref()
        .or(task.repository.as_ref())
        .map(PathBuf::from)
}

/// How to take a finished git step back.
enum Undo {
    Restore {
        dir: PathBuf,
        saved_ref: String,
    },
    Branch {
        repo: PathBuf,
        branch: String,
    },
    Worktree {
        repo: PathBuf,
        path: PathBuf,
        branch: String,
    },
}

/// A git step that ran but is not recorded yet.
pub struct Ran {
    pub op: code_operation::Model,
    undo: Undo,
}

fn op_row(
    viewer: &Viewer,
    id: Uuid,
    task_id: Uuid,
    kind: CodeOperationKind,
    commit: String,
    branch: Option<String>,
    saved_ref: Option<String>,
) -> code_operation::Model {
    let at = now();
    code_operation::Model {
        id,
        owner_id: viewer.owner_id,
        task_id,
        kind: kind.as_str().into(),
        status: CodeOperationStatus::Done.as_str().into(),
        commit_sha: commit,
        branch,
        saved_ref,
        error: None,
        created_at: at,
        updated_at: at,
    }
}

/// What a restore moves the worktree to.
enum RestoreTo<'a> {
    /// A commit (rewinds, resumes from a checkpoint).
    Commit(&'a str),
    /// The state an earlier restore saved under this ref (undoing it).
    Saved(&'a str),
}

/// Restores `dir`, first saving the state it replaces under `refs/makima/saved/<op>`.
async fn restore_to(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    dir: &Path,
    to: RestoreTo<'_>,
) -> AppResult<Ran> {
    let id = Uuid::now_v7();
    let saved_ref = format!("refs/makima/saved/{id}");
    let repo = Repo::confined(dir, &app.workspace_root);
    let _repo_lock = app.locks.repo(dir).await;
    let commit = match to {
        RestoreTo::Commit(commit) => git::restore(&repo, commit, &saved_ref).await?,
        RestoreTo::Saved(saved) => git::undo_restore(&repo, saved, &saved_ref).await?,
    };
    let branch = repo
        .git(&["symbolic-ref", "--quiet", "--short", "HEAD"])
        .await
        .ok();
    let op = op_row(
        viewer,
        id,
        task_id,
        CodeOperationKind::Restore,
        commit,
        branch,
        Some(saved_ref.clone()),
    );
    Ok(Ran {
        op,
        undo: Undo::Restore {
            dir: dir.to_path_buf(),
            saved_ref,
        },
    })
}

/// Restores the task's code (its worktree, else its repository) to `commit`; `None`
/// for a task with no code, which gets no operation rather than a pretend one.
pub async fn restore_task(
    app: &App,
    viewer: &Viewer,
    task: &task::Model,
    commit: &str,
) -> AppResult<Option<Ran>> {
    match code_dir(task) {
        Some(dir) => Ok(Some(
            restore_to(app, viewer, task.id, &dir, RestoreTo::Commit(commit)).await?,
        )),
        None => Ok(None),
    }
}

/// Puts `dir` back to the state a restore saved under `saved_ref`.
pub async fn undo_restore(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    dir: &Path,
    saved_ref: &str,
) -> AppResult<Ran> {
    restore_to(app, viewer, task_id, dir, RestoreTo::Saved(saved_ref)).await
}

/// Creates `branch` at `commit` in `repo`.
pub async fn branch(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    repo: &Path,
    branch: &str,
    commit: &str,
) -> AppResult<Ran> {
    let _repo_lock = app.locks.repo(repo).await;
    let full =
        git::create_branch(&Repo::confined(repo, &app.workspace_root), branch, commit).await?;
    let op = op_row(
        viewer,
        Uuid::now_v7(),
        task_id,
        CodeOperationKind::Branch,
        full,
        Some(branch.into()),
        None,
    );
    Ok(Ran {
        op,
        undo: Undo::Branch {
            repo: repo.to_path_buf(),
            branch: branch.into(),
        },
    })
}

/// Where the server puts the linked worktree of a task it creates.
pub fn worktree_path(app: &App, task_id: Uuid) -> PathBuf {
    app.workspace_root
        .join(".makima")
        .join("worktrees")
        .join(task_id.to_string())
}

/// Adds a linked worktree for `task_id` on a new `branch` at `commit`.
pub async fn worktree(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    repo: &Path,
    branch: &str,
    commit: &str,
) -> AppResult<Ran> {
    let path = worktree_path(app, task_id);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| AppError::internal(format!("worktree dir: {e}")))?;
    }
    let _repo_lock = app.locks.repo(repo).await;
    let full = git::add_worktree(
        &Repo::confined(repo, &app.workspace_root),
        &path,
        branch,
        commit,
    )
    .await?;
    let op = op_row(
        viewer,
        Uuid::now_v7(),
        task_id,
        CodeOperationKind::Worktree,
        full,
        Some(branch.into()),
        None,
    );
    Ok(Ran {
        op,
        undo: Undo::Worktree {
            repo: repo.to_path_buf(),
            path,
            branch: branch.into(),
        },
    })
}

impl Ran {
    /// Takes the git step back after the database refused to record it.
    pub async fn undo(self, app: &App) {
        let result = match &self.undo {
            Undo::Restore { dir, saved_ref } => {
                let _l = app.locks.repo(dir).await;
                let scratch = format!("refs/makima/undone/{}", self.op.id);
                git::undo_restore(&Repo::new(dir), saved_ref, &scratch)
                    .await
                    .map(|_| ())
            }
            Undo::Branch { repo, branch } => {
                let _l = app.locks.repo(repo).await;
                Repo::new(repo)
                    .git(&["branch", "-D", "--end-of-options", branch])
                    .await
                    .map(|_| ())
            }
            Undo::Worktree { repo, path, branch } => {
                let _l = app.locks.repo(repo).await;
                let r = Repo::new(repo);
                let p = path.to_string_lossy().into_owned();
                let removed = r.git(&["worktree", "remove", "--force", "--", &p]).await;
                removed
                    .and(r.git(&["branch", "-D", "--end-of-options", branch]).await)
                    .map(|_| ())
            }
        };
        if let Err(err) = result {
            tracing::error!(op = %self.op.id, ?err, "could not undo a git step after a failed transaction");
        }
    }
}

/// On PostgreSQL, a transaction holding the task's advisory lock, opened before git runs
/// so that other makima processes wait for this operation. On SQLite, nothing: holding
/// its single write lock while git runs would stall every writer.
pub async fn cross_process_lock(
    app: &App,
    task_id: Uuid,
) -> AppResult<Option<DatabaseTransaction>> {
    if !app.store.is_postgres() {
        return Ok(None);
    }
    let txn = app.store.begin_code_operation().await?;
    let key = i64::from_be_bytes(task_id.as_bytes()[8..16].try_into().expect("8 bytes"));
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(Some(txn))
}

/// The transaction that records the operation: the one holding the advisory lock, or a
/// new write transaction.
pub async fn recording_txn(
    app: &App,
    held: Option<DatabaseTransaction>,
) -> AppResult<DatabaseTransaction> {
    match held {
        Some(txn) => Ok(txn),
        None => app.store.begin_write().await,
    }
}

/// Inserts the operation row (if any) in `txn`.
pub async fn record(
    txn: &DatabaseTransaction,
    ran: Option<&Ran>,
) -> AppResult<Option<code_operation::Model>> {
    match ran {
        Some(r) => Ok(Some(code_operations::insert(txn, r.op.clone()).await?)),
        None => Ok(None),
    }
}

/// Ends an operation whose rows were written in `txn` (`recorded`, led by its history
/// event): commits, or, when recording or committing failed, undoes the git step so
/// nothing changed.
pub async fn settle<T>(
    app: &App,
    txn: DatabaseTransaction,
    ran: Option<Ran>,
    recorded: AppResult<(history_event::Model, T)>,
) -> AppResult<(history_event::Model, T)> {
    let outcome = match recorded {
        Ok((event, rest)) => app.store.commit(txn, &event).await.map(|()| (event, rest)),
        Err(err) => Err(err),
    };
    if outcome.is_err()
        && let Some(ran) = ran
    {
        ran.undo(app).await;
    }
    outcome
}

/// The task as it stands before a git step, read under the cross-process lock when
/// there is one.
pub async fn read_task(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    held: Option<&DatabaseTransaction>,
) -> AppResult<task::Model> {
    let (task, _) = match held {
        Some(txn) => super::tasks::lock_for_change(txn, viewer, task_id).await?,
        None => super::tasks::lock_for_change(app.store.db(), viewer, task_id).await?,
    };
    Ok(task)
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
