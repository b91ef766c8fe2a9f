//! Forking a task from any point of its history, branching at a checkpoint, and the
//! worktree of a continued task. The source task is never changed.

use std::path::Path;

use sea_orm::DatabaseTransaction;

use super::code::{self, Change, Event, Intent, Outcome, Recorded};
use super::contracts::ensure_not_archived;
use super::tasks::lock_for_change;
use super::{App, Viewer, limits};
use crate::entities::event_data as data;
use crate::entities::ids::{CheckpointId, ConversationId, TaskId};
use crate::entities::kinds::CodeOperationStatus;
use crate::entities::{checkpoint, code_operation, task};
use crate::error::{AppError, AppResult};
use crate::git::{Repo, check_branch_name};
use crate::store::{contracts, conversations, tasks};
use crate::time::now;

#[derive(Clone)]
pub struct Fork {
    pub task_id: TaskId,
    pub checkpoint_id: Option<CheckpointId>,
    pub message_count: Option<i32>,
    pub name: Option<String>,
    pub branch_name: Option<String>,
}

pub struct Forked {
    pub task: task::Model,
    pub checkpoint_id: Option<CheckpointId>,
    pub message_count: i32,
    pub code_operation: Option<code_operation::Model>,
}

/// The branch of a task the server creates: the given name, else `makima/<task id>`.
fn branch_for(given: Option<String>, task_id: TaskId) -> AppResult<String> {
    let branch = given.unwrap_or_else(|| format!("makima/{task_id}"));
    check_branch_name(&branch)?;
    Ok(branch)
}

pub async fn fork_task(app: &App, viewer: &Viewer, input: Fork) -> AppResult<Forked> {
    limits::optional_name("name", input.name.as_deref())?;
    let change = ForkTask {
        fork_id: TaskId::new(),
        input,
    };
    // A fork's new worktree on a daemon is recorded when queued (see `code::remote`).
    let done = code::run(app, viewer, &change).await?.done()?;
    let (task, checkpoint_id, message_count) = done.output;
    let task = code::current(app, viewer, task, done.code_operation.as_ref()).await?;
    Ok(Forked {
        task,
        checkpoint_id,
        message_count,
        code_operation: done.code_operation,
    })
}

#[derive(Clone)]
struct ForkTask {
    fork_id: TaskId,
    input: Fork,
}

/// Where a fork starts: its messages (`count` of them through `segment`) and the
/// checkpoint whose code it gets, if any.
struct Start {
    count: i32,
    segment: ConversationId,
    checkpoint: Option<checkpoint::Model>,
}

impl Change for ForkTask {
    type Plan = Start;
    type Output = (task::Model, Option<CheckpointId>, i32);

    fn task_id(&self) -> Option<TaskId> {
        Some(self.input.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<(Start, Option<Intent>)> {
        let source = tasks::by_id(viewer.scope(app.store.db()), self.input.task_id)
            .await?
            .ok_or_else(|| AppError::not_found("task"))?;
        let start = self.start(app, viewer, &source).await?;
        if let Some(id) = source.contract_id {
            let c = contracts::by_id(viewer.scope(app.store.db()), id).await?;
            ensure_not_archived(&c.ok_or_else(|| AppError::internal("contract of task missing"))?)?;
        }
        let branch = branch_for(self.input.branch_name.clone(), self.fork_id)?;
        let intent = match (&start.checkpoint, &source.repository) {
            (Some(cp), Some(repo)) => Some(
                Intent::worktree(
                    viewer,
                    source.id,
                    self.fork_id,
                    code::site(&source),
                    Path::new(repo),
                    &code::worktree_path(app, code::site(&source), self.fork_id),
                    &branch,
                    &cp.commit_sha,
                )
                .await?,
            ),
            _ => None,
        };
        Ok((start, intent))
    }

    async fn record(
        &self,
        app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        start: Start,
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<Self::Output>> {
        let (source, contract) = lock_for_change(txn, viewer, self.input.task_id).await?;
        let fork_id = self.fork_id;
        let conversation =
            conversations::branch_at(viewer.scope(txn), fork_id, start.segment, start.count)
                .await?;
        let name = self.input.name.clone().unwrap_or_else(|| {
            format!("fork of {}", source.name)
                .chars()
                .take(limits::MAX_NAME_CHARS)
                .collect()
        });
        let checkpoint_id = start.checkpoint.as_ref().map(|c| c.id);
        let done = op.filter(|o| o.status == CodeOperationStatus::Done);
        let fork = tasks::insert(
            txn,
            task::Model {
                contract_id: source.contract_id,
                parent_task_id: source.parent_task_id,
                plan: source.plan.clone(),
                repository: source.repository.clone(),
                // A daemon's new worktree and branch exist once it reports them DONE.
                worktree_path: done.map(|_| {
                    code::worktree_path(app, code::site(&source), fork_id)
                        .to_string_lossy()
                        .into_owned()
                }),
                branch: done.and_then(|o| o.branch.clone()),
                daemon_id: source.daemon_id.filter(|_| source.code_on_daemon),
                code_on_daemon: source.code_on_daemon,
                base_branch: source.branch.clone(),
                forked_from_task_id: Some(source.id),
                fork_checkpoint_id: checkpoint_id,
                fork_message_count: Some(start.count),
                ..tasks::new_row(viewer.owner_id, fork_id, name, conversation.id, now())
            },
        )
        .await?;
        let event = Event {
            contract_id: fork.contract_id,
            task_id: Some(fork_id),
            phase: contract.map(|c| c.phase),
            data: data::TaskForked {
                source_task_id: source.id,
                checkpoint_id,
                message_count: start.count,
                branch: fork.branch.clone(),
                code_operation_id: op.map(|o| o.id),
            }
            .into(),
        };
        Ok(Recorded {
            event,
            output: (fork, checkpoint_id, start.count),
        })
    }
}

impl ForkTask {
    /// The fork's messages and the checkpoint whose code applies to them.
    async fn start(&self, app: &App, viewer: &Viewer, source: &task::Model) -> AppResult<Start> {
        let view = app.store.conversation(source.conversation_id).await?;
        match (self.input.checkpoint_id, self.input.message_count) {
            (Some(cp_id), None) => {
                let (cp, snapshot) =
                    code::checkpoint_of(app.store.db(), viewer, cp_id, source.id).await?;
                Ok(Start {
                    count: snapshot.length,
                    segment: snapshot.conversation_id,
                    checkpoint: Some(cp),
                })
            }
            (None, Some(n)) => {
                if !(0..=view.length).contains(&n) {
                    return Err(AppError::bad_input(format!(
                        "messageCount must be between 0 and the source's {} messages",
                        view.length
                    )));
                }
                let applies =
                    code::newest_prefix_checkpoint(app.store.db(), viewer, source.id, &view, n)
                        .await?;
                Ok(Start {
                    count: n,
                    segment: view.snapshot_segment(source.conversation_id, n),
                    checkpoint: applies.map(|(cp, _)| cp),
                })
            }
            _ => Err(AppError::bad_input(
                "give exactly one of checkpointId and messageCount",
            )),
        }
    }
}

pub struct Branched {
    pub checkpoint: checkpoint::Model,
    pub code_operation: code_operation::Model,
}

/// Creates a git branch at a checkpoint's commit; an existing branch is CONFLICT.
pub async fn branch_from_checkpoint(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    checkpoint_id: CheckpointId,
    branch: String,
) -> AppResult<Branched> {
    let change = BranchFromCheckpoint {
        task_id,
        checkpoint_id,
        branch,
    };
    let (checkpoint, op) = match code::run(app, viewer, &change).await? {
        Outcome::Done(done) => (done.output, done.code_operation),
        Outcome::Pending { code_operation, .. } => {
            let (cp, _) =
                code::checkpoint_of(app.store.db(), viewer, checkpoint_id, task_id).await?;
            (cp, Some(code_operation))
        }
    };
    Ok(Branched {
        checkpoint,
        code_operation: op.ok_or_else(|| AppError::internal("a branch without its git step"))?,
    })
}

#[derive(Clone)]
struct BranchFromCheckpoint {
    task_id: TaskId,
    checkpoint_id: CheckpointId,
    branch: String,
}

impl Change for BranchFromCheckpoint {
    type Plan = checkpoint::Model;
    type Output = checkpoint::Model;

    fn task_id(&self) -> Option<TaskId> {
        Some(self.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<(Self::Plan, Option<Intent>)> {
        let task = code::read_task(app, viewer, self.task_id).await?;
        let repo = task
            .repository
            .clone()
            .ok_or_else(|| AppError::bad_input("the task has no repository to branch in"))?;
        let (cp, _) =
            code::checkpoint_of(app.store.db(), viewer, self.checkpoint_id, task.id).await?;
        let intent = Intent::branch(
            viewer,
            task.id,
            code::site(&task),
            repo.as_ref(),
            &self.branch,
            &cp.commit_sha,
        )
        .await?;
        Ok((cp, Some(intent)))
    }

    async fn record(
        &self,
        _app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        cp: checkpoint::Model,
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<checkpoint::Model>> {
        let op = op.ok_or_else(|| AppError::internal("a branch without its git step"))?;
        let (task, contract) = lock_for_change(txn, viewer, self.task_id).await?;
        let event = Event::on(
            &task,
            contract.as_ref(),
            data::BranchCreated {
                checkpoint_id: cp.id,
                branch: self.branch.clone(),
                commit_sha: op.commit_sha.clone(),
                code_operation_id: op.id,
            }
            .into(),
        );
        Ok(Recorded { event, output: cp })
    }
}

/// The intent of the worktree of a task that continues `source`: a new linked worktree
/// on a new branch, starting at the head of the source's branch (else of its worktree).
pub async fn continued_worktree(
    app: &App,
    viewer: &Viewer,
    source: &task::Model,
    task_id: TaskId,
    branch: Option<String>,
) -> AppResult<Intent> {
    let repo = source.repository.clone().ok_or_else(|| {
        AppError::bad_input("continueFromTaskId names a task without a repository")
    })?;
    let branch = branch_for(branch, task_id)?;
    let site = code::site(source);
    let path = code::worktree_path(app, site, task_id);
    if site != code::Site::Server {
        // The daemon adds the worktree from the source's own worktree (else its
        // repository), at that worktree's HEAD, and reports the commit.
        let dir = code::code_dir(source).unwrap_or_else(|| repo.clone().into());
        return Intent::worktree(viewer, source.id, task_id, site, &dir, &path, &branch, "").await;
    }
    let start = match &source.branch {
        Some(b) if Repo::new(&repo).branch_exists(b).await => {
            Repo::new(&repo).branch_head(b).await?
        }
        _ => {
            let dir = code::code_dir(source).unwrap_or_else(|| repo.clone().into());
            Repo::new(dir).head().await?
        }
    };
    Intent::worktree(
        viewer,
        source.id,
        task_id,
        code::Site::Server,
        repo.as_ref(),
        &path,
        &branch,
        &start,
    )
    .await
}
