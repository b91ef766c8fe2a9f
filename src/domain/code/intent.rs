//! The intent of a code operation: written and committed before its git step and
//! deleted in the transaction that records the operation, so a process that dies in
//! between leaves a row saying what to take back (see `reconcile`). What it holds is
//! enough to undo the step whether it ran fully, partly or not at all.

use std::path::{Path, PathBuf};

use super::super::{App, Viewer};
use super::Site;
use crate::entities::ids::{CodeOperationId, TaskId};
use crate::entities::kinds::{CodeOperationKind, CodeOperationStatus};
use crate::entities::{code_operation, code_operation_intent};
use crate::error::{AppError, AppResult};
use crate::git::{self, GitError, Repo};
use crate::store::intents;
use crate::time::now;

/// What the git step does (kept in memory only: undoing needs just the row).
#[derive(Clone, Debug)]
enum Step {
    /// Restore the worktree to a commit.
    Restore,
    /// Put back the state an earlier restore saved under this ref.
    Unrestore { saved: String },
    /// Create a branch.
    Branch,
    /// Add a linked worktree on a new branch.
    Worktree,
    /// Read back from the table: only `undo` applies.
    Recovered,
}

/// A code operation about to run git.
#[derive(Clone, Debug)]
pub struct Intent {
    row: code_operation_intent::Model,
    /// The task the recorded operation belongs to (for a new worktree, the new task).
    op_task_id: TaskId,
    step: Step,
    /// Where git runs: here, or on the daemon that holds the code (then `row`'s paths
    /// are relative to that daemon's root and nothing runs here).
    site: Site,
}

/// A git step that ran but is not recorded yet.
pub struct Ran {
    pub op: code_operation::Model,
    pub(super) intent: Intent,
}

fn row(
    viewer: &Viewer,
    task_id: TaskId,
    kind: CodeOperationKind,
    dir: &Path,
    commit: &str,
) -> code_operation_intent::Model {
    code_operation_intent::Model {
        id: CodeOperationId::new(),
        owner_id: viewer.owner_id,
        task_id,
        kind,
        dir: dir.to_string_lossy().into_owned(),
        commit_sha: commit.into(),
        saved_ref: None,
        branch: None,
        worktree_path: None,
        created_at: now(),
    }
}

/// Refuses a branch that exists already before anything is announced, so that undoing
/// an interrupted step never deletes a branch the operation did not create.
async fn branch_is_new(site: Site, repo: &Path, branch: &str) -> AppResult<()> {
    git::check_branch_name(branch)?;
    if site == Site::Server && Repo::new(repo).branch_exists(branch).await {
        return Err(GitError::BranchExists.into());
    }
    Ok(())
}

impl Intent {
    /// Restoring `dir` (the code of `task_id`) to `commit`, saving what it replaces.
    pub fn restore(viewer: &Viewer, task_id: TaskId, site: Site, dir: &Path, commit: &str) -> Self {
        let mut row = row(viewer, task_id, CodeOperationKind::Restore, dir, commit);
        row.saved_ref = Some(format!("refs/makima/saved/{}", row.id));
        Self {
            row,
            op_task_id: task_id,
            step: Step::Restore,
            site,
        }
    }

    /// Putting `dir` back to the state a restore saved under `saved`. On a daemon the
    /// commit is the daemon's to find (it reports it).
    pub async fn unrestore(
        viewer: &Viewer,
        task_id: TaskId,
        site: Site,
        dir: &Path,
        saved: &str,
    ) -> AppResult<Self> {
        let head = match site {
            Site::Server => Repo::new(dir)
                .commit_of(&format!("{saved}^1"))
                .await
                .map_err(|_| AppError::internal("the saved state of the rewind is gone"))?,
            Site::Daemon(_) => String::new(),
        };
        let mut intent = Self::restore(viewer, task_id, site, dir, &head);
        intent.step = Step::Unrestore {
            saved: saved.into(),
        };
        Ok(intent)
    }

    /// Creating `branch` at `commit` in `repo`. (On a daemon, the daemon refuses a
    /// branch that exists.)
    pub async fn branch(
        viewer: &Viewer,
        task_id: TaskId,
        site: Site,
        repo: &Path,
        branch: &str,
        commit: &str,
    ) -> AppResult<Self> {
        branch_is_new(site, repo, branch).await?;
        let mut row = row(viewer, task_id, CodeOperationKind::Branch, repo, commit);
        row.branch = Some(branch.into());
        Ok(Self {
            row,
            op_task_id: task_id,
            step: Step::Branch,
            site,
        })
    }

    /// Adding the linked worktree of the new task `new_task_id` at `path`, on a new
    /// `branch` at `commit` of `repo`; `source_task_id` is the existing task it comes from.
    #[allow(clippy::too_many_arguments)]
    pub async fn worktree(
        viewer: &Viewer,
        source_task_id: TaskId,
        new_task_id: TaskId,
        site: Site,
        repo: &Path,
        path: &Path,
        branch: &str,
        commit: &str,
    ) -> AppResult<Self> {
        branch_is_new(site, repo, branch).await?;
        let mut row = row(
            viewer,
            source_task_id,
            CodeOperationKind::Worktree,
            repo,
            commit,
        );
        row.branch = Some(branch.into());
        row.worktree_path = Some(path.to_string_lossy().into_owned());
        Ok(Self {
            row,
            op_task_id: new_task_id,
            step: Step::Worktree,
            site,
        })
    }

    /// An intent read back from the table, to be undone.
    pub fn recovered(row: code_operation_intent::Model) -> Self {
        Self {
            op_task_id: row.task_id,
            row,
            step: Step::Recovered,
            site: Site::Server,
        }
    }

    pub fn id(&self) -> CodeOperationId {
        self.row.id
    }

    /// The existing task the operation acts on (its cross-process lock is held).
    pub fn task_id(&self) -> TaskId {
        self.row.task_id
    }

    pub fn row(&self) -> &code_operation_intent::Model {
        &self.row
    }

    /// Where git runs.
    pub fn site(&self) -> Site {
        self.site
    }

    pub fn kind(&self) -> CodeOperationKind {
        self.row.kind
    }

    /// The task the recorded operation belongs to (for a new worktree, the new task).
    pub fn op_task_id(&self) -> TaskId {
        self.op_task_id
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from(&self.row.dir)
    }

    /// Writes the intent in a transaction of its own, committed before git runs.
    pub(super) async fn write(&self, app: &App) -> AppResult<()> {
        let txn = app.store.begin_write().await?;
        intents::insert(&txn, self.row.clone()).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Deletes the intent after its operation was refused or undone.
    pub(super) async fn withdraw(&self, app: &App) {
        let deleted = async {
            let txn = app.store.begin_write().await?;
            intents::delete(&txn, self.row.id).await?;
            txn.commit().await?;
            AppResult::Ok(())
        }
        .await;
        if let Err(err) = deleted {
            // Left for the startup reconciliation, which undoes the step again (a no-op).
            tracing::error!(intent = %self.row.id, ?err, "could not delete a code operation intent");
        }
    }

    /// The row of the operation once its git step has run.
    pub fn operation(
        &self,
        status: CodeOperationStatus,
        commit: String,
        branch: Option<String>,
        error: Option<String>,
    ) -> code_operation::Model {
        let at = now();
        let daemon_id = match self.site {
            Site::Server => None,
            Site::Daemon(d) => Some(d),
        };
        let remote = |v: Option<String>| v.filter(|_| daemon_id.is_some());
        code_operation::Model {
            id: self.row.id,
            owner_id: self.row.owner_id,
            task_id: self.op_task_id,
            kind: self.row.kind,
            status,
            commit_sha: commit.chars().take(64).collect(),
            branch,
            saved_ref: self.row.saved_ref.clone(),
            error,
            created_at: at,
            updated_at: at,
            daemon_id,
            directory: remote(Some(self.row.dir.clone())),
            worktree_path: remote(self.row.worktree_path.clone()),
            restore_from: remote(match &self.step {
                Step::Unrestore { saved } => Some(saved.clone()),
                _ => None,
            }),
            deadline: None,
            reported_status: None,
            reported_commit: None,
            reported_error: None,
        }
    }

    /// The row of the operation handed to its daemon, to be finished by `deadline`.
    pub(super) fn queued(&self, deadline: chrono::DateTime<chrono::Utc>) -> code_operation::Model {
        code_operation::Model {
            deadline: Some(deadline),
            ..self.operation(
                CodeOperationStatus::Queued,
                self.row.commit_sha.clone(),
                self.row.branch.clone(),
                None,
            )
        }
    }

    /// Runs the git step.
    pub(super) async fn run(&self, app: &App) -> AppResult<Ran> {
        let dir = self.dir();
        let repo = Repo::confined(&dir, &app.workspace_root);
        let saved_ref = self.row.saved_ref.as_deref().unwrap_or_default();
        let branch = self.row.branch.as_deref().unwrap_or_default();
        let (commit, branch) = match &self.step {
            Step::Restore | Step::Unrestore { .. } => {
                let _repo_lock = app.locks.repo(&dir).await;
                let commit = match &self.step {
                    Step::Unrestore { saved } => git::undo_restore(&repo, saved, saved_ref).await?,
                    _ => git::restore(&repo, &self.row.commit_sha, saved_ref).await?,
                };
                (commit, repo.current_branch().await)
            }
            Step::Branch => {
                let _repo_lock = app.locks.repo(&dir).await;
                let commit = git::create_branch(&repo, branch, &self.row.commit_sha).await?;
                (commit, Some(branch.to_owned()))
            }
            Step::Worktree => {
                let path = PathBuf::from(self.row.worktree_path.as_deref().unwrap_or_default());
                let _repo_lock = app.locks.repo(&dir).await;
                let commit = git::add_worktree(&repo, &path, branch, &self.row.commit_sha).await?;
                (commit, Some(branch.to_owned()))
            }
            Step::Recovered => {
                return Err(AppError::internal("a recovered intent cannot run"));
            }
        };
        Ok(Ran {
            op: self.operation(CodeOperationStatus::Done, commit, branch, None),
            intent: self.clone(),
        })
    }

    /// Takes the git step back. Safe when it ran fully, partly or not at all: a restore
    /// changes nothing before its saved ref exists; a branch is deleted only when it
    /// points at the operation's commit (the branch was new when it was announced); the
    /// new worktree's path belongs to a task id nobody else uses.
    pub async fn undo(&self, app: &App) -> AppResult<()> {
        let dir = self.dir();
        let repo = Repo::confined(&dir, &app.workspace_root);
        let _repo_lock = app.locks.repo(&dir).await;
        match self.row.kind {
            CodeOperationKind::Restore => {
                let saved_ref = self.row.saved_ref.as_deref().unwrap_or_default();
                let saved = repo.commit_of(saved_ref).await;
                if saved.is_ok() {
                    let scratch = format!("refs/makima/undone/{}", self.row.id);
                    git::undo_restore(&repo, saved_ref, &scratch).await?;
                }
            }
            CodeOperationKind::Branch => self.delete_new_branch(&repo).await?,
            CodeOperationKind::Worktree => {
                self.remove_new_worktree(app, &repo).await?;
                self.delete_new_branch(&repo).await?;
            }
        }
        Ok(())
    }

    async fn delete_new_branch(&self, repo: &Repo) -> AppResult<()> {
        if let Some(branch) = self.row.branch.as_deref() {
            git::delete_branch_at(repo, branch, &self.row.commit_sha).await?;
        }
        Ok(())
    }

    async fn remove_new_worktree(&self, app: &App, repo: &Repo) -> AppResult<()> {
        let Some(path) = self.row.worktree_path.as_deref() else {
            return Ok(());
        };
        let ours = app.workspace_root.join(".makima").join("worktrees");
        let path = Path::new(path);
        if path.parent() != Some(ours.as_path()) {
            return Err(AppError::internal(
                "an intent names a worktree outside the server's worktrees",
            ));
        }
        Ok(git::remove_worktree(repo, path).await?)
    }
}

impl Ran {
    /// Takes the git step back after the database refused to record it, and withdraws
    /// its intent.
    pub async fn undo(self, app: &App) {
        match self.intent.undo(app).await {
            Ok(()) => self.intent.withdraw(app).await,
            Err(err) => {
                // The intent stays: the startup reconciliation tries again.
                tracing::error!(op = %self.op.id, ?err, "could not undo a git step after a failed transaction");
            }
        }
    }
}
