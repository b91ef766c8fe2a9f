//! Forking a task from any point of its history, branching at a checkpoint, and the
//! worktree of a continued task. The source task is never changed.

use std::path::Path;

use serde_json::json;
use uuid::Uuid;

use super::code;
use super::contracts::ensure_not_archived;
use super::tasks::lock_for_change;
use super::{App, Viewer, limits};
use crate::entities::kinds::HistoryEventType;
use crate::entities::{checkpoint, code_operation, task};
use crate::error::{AppError, AppResult};
use crate::git::{Repo, check_branch_name};
use crate::store::history::{self, NewEvent};
use crate::store::{contracts, conversations, tasks};
use crate::time::now;

pub struct Fork {
    pub task_id: Uuid,
    pub checkpoint_id: Option<Uuid>,
    pub message_count: Option<i32>,
    pub name: Option<String>,
    pub branch_name: Option<String>,
}

pub struct Forked {
    pub task: task::Model,
    pub checkpoint_id: Option<Uuid>,
    pub message_count: i32,
    pub code_operation: Option<code_operation::Model>,
}

/// The branch of a task the server creates: the given name, else `makima/<task id>`.
fn branch_for(given: Option<String>, task_id: Uuid) -> AppResult<String> {
    let branch = given.unwrap_or_else(|| format!("makima/{task_id}"));
    check_branch_name(&branch)?;
    Ok(branch)
}

pub async fn fork_task(app: &App, viewer: &Viewer, input: Fork) -> AppResult<Forked> {
    limits::optional_name("name", input.name.as_deref())?;
    let source = tasks::by_id(app.store.db(), viewer.owner_id, input.task_id)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    let view = app.store.conversation(source.conversation_id).await?;
    let (count, segment, applies) = match (input.checkpoint_id, input.message_count) {
        (Some(cp_id), None) => {
            let (cp, snapshot) =
                code::checkpoint_of(app.store.db(), viewer, cp_id, source.id).await?;
            (snapshot.length, snapshot.conversation_id, Some(cp))
        }
        (None, Some(n)) => {
            if !(0..=view.length).contains(&n) {
                return Err(AppError::bad_input(format!(
                    "messageCount must be between 0 and the source's {} messages",
                    view.length
                )));
            }
            let applies =
                code::newest_prefix_checkpoint(app.store.db(), viewer, source.id, &view, n).await?;
            (
                n,
                view.snapshot_segment(source.conversation_id, n),
                applies.map(|(cp, _)| cp),
            )
        }
        _ => {
            return Err(AppError::bad_input(
                "give exactly one of checkpointId and messageCount",
            ));
        }
    };
    if let Some(id) = source.contract_id {
        let c = contracts::by_id(app.store.db(), viewer.owner_id, id).await?;
        ensure_not_archived(&c.ok_or_else(|| AppError::internal("contract of task missing"))?)?;
    }
    let fork_id = Uuid::now_v7();
    let mut intent = None;
    if let (Some(cp), Some(repo)) = (&applies, &source.repository) {
        let branch = branch_for(input.branch_name.clone(), fork_id)?;
        let path = code::worktree_path(app, fork_id);
        let repo = Path::new(repo);
        intent = Some(
            code::Intent::worktree(
                viewer,
                source.id,
                fork_id,
                repo,
                &path,
                &branch,
                &cp.commit_sha,
            )
            .await?,
        );
    } else if let Some(b) = &input.branch_name {
        check_branch_name(b)?;
    }
    let name = input.name.unwrap_or_else(|| {
        format!("fork of {}", source.name)
            .chars()
            .take(limits::MAX_NAME_CHARS)
            .collect()
    });
    // Forks of one task take its lock: an interrupted fork's intent is recovered under it.
    let _guard = match &intent {
        Some(_) => Some(app.locks.task(source.id).await),
        None => None,
    };
    let step = code::announce(app, intent).await?;
    let (txn, ran) = step.run(app, Ok(())).await?;
    let recorded = async {
        let (source, contract) = lock_for_change(&txn, viewer, source.id).await?;
        let conversation =
            conversations::branch_at(&txn, viewer.owner_id, fork_id, segment, count).await?;
        let at = now();
        let worktree = ran.as_ref().map(|_| {
            code::worktree_path(app, fork_id)
                .to_string_lossy()
                .into_owned()
        });
        let fork = tasks::insert(
            &txn,
            task::Model {
                contract_id: source.contract_id,
                parent_task_id: source.parent_task_id,
                plan: source.plan.clone(),
                repository: source.repository.clone(),
                worktree_path: worktree,
                branch: ran.as_ref().and_then(|r| r.op.branch.clone()),
                base_branch: source.branch.clone(),
                forked_from_task_id: Some(source.id),
                fork_checkpoint_id: applies.as_ref().map(|c| c.id),
                fork_message_count: Some(count),
                ..tasks::new_row(viewer.owner_id, fork_id, name, conversation.id, at)
            },
        )
        .await?;
        let op = code::record(&txn, ran.as_ref()).await?;
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::TaskForked,
                contract_id: fork.contract_id,
                task_id: Some(fork_id),
                phase: contract.map(|c| c.phase),
                data: json!({
                    "sourceTaskId": source.id.to_string(),
                    "checkpointId": applies.as_ref().map(|c| c.id.to_string()),
                    "messageCount": count,
                    "branch": fork.branch,
                    "codeOperationId": op.as_ref().map(|o| o.id.to_string()),
                }),
            },
        )
        .await?;
        Ok((event, (op, fork)))
    }
    .await;
    let (_, (op, fork)) = code::settle(app, txn, ran, recorded).await?;
    Ok(Forked {
        task: fork,
        checkpoint_id: applies.map(|c| c.id),
        message_count: count,
        code_operation: op,
    })
}

pub struct Branched {
    pub checkpoint: checkpoint::Model,
    pub code_operation: code_operation::Model,
}

/// Creates a git branch at a checkpoint's commit; an existing branch is CONFLICT.
pub async fn branch_from_checkpoint(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    checkpoint_id: Uuid,
    branch: String,
) -> AppResult<Branched> {
    let (task, _) = lock_for_change(app.store.db(), viewer, task_id).await?;
    let repo = task
        .repository
        .clone()
        .ok_or_else(|| AppError::bad_input("the task has no repository to branch in"))?;
    let (cp, _) = code::checkpoint_of(app.store.db(), viewer, checkpoint_id, task_id).await?;
    let intent =
        code::Intent::branch(viewer, task_id, repo.as_ref(), &branch, &cp.commit_sha).await?;
    let _guard = app.locks.task(task_id).await;
    let step = code::announce(app, Some(intent)).await?;
    let (txn, ran) = step.run(app, Ok(())).await?;
    let ran = ran.ok_or_else(|| AppError::internal("a branch without its git step"))?;
    let recorded = async {
        let (task, contract) = lock_for_change(&txn, viewer, task_id).await?;
        let op = code::record(&txn, Some(&ran)).await?.expect("recorded");
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::BranchCreated,
                contract_id: task.contract_id,
                task_id: Some(task_id),
                phase: contract.map(|c| c.phase),
                data: json!({
                    "checkpointId": cp.id.to_string(),
                    "branch": branch,
                    "commitSha": op.commit_sha,
                    "codeOperationId": op.id.to_string(),
                }),
            },
        )
        .await?;
        Ok((event, (op)))
    }
    .await;
    let (_, op) = code::settle(app, txn, Some(ran), recorded).await?;
    Ok(Branched {
        checkpoint: cp,
        code_operation: op,
    })
}

/// The intent of the worktree of a task that continues `source`: a new linked worktree
/// on a new branch, starting at the head of the source's branch (else of its worktree).
pub async fn continued_worktree(
    app: &App,
    viewer: &Viewer,
    source: &task::Model,
    task_id: Uuid,
    branch: Option<String>,
) -> AppResult<code::Intent> {
    let repo = source.repository.clone().ok_or_else(|| {
        AppError::bad_input("continueFromTaskId names a task without a repository")
    })?;
    let branch = branch_for(branch, task_id)?;
    let start = match &source.branch {
        Some(b) if Repo::new(&repo).branch_exists(b).await => {
            Repo::new(&repo).branch_head(b).await?
        }
        _ => {
            let dir = code::code_dir(source).unwrap_or_else(|| repo.clone().into());
            Repo::new(dir).head().await?
        }
    };
    let path = code::worktree_path(app, task_id);
    code::Intent::worktree(
        viewer,
        source.id,
        task_id,
        repo.as_ref(),
        &path,
        &branch,
        &start,
    )
    .await
}
