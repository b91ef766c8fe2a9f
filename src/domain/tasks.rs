//! Tasks: creation and status changes.

use serde_json::json;
use uuid::Uuid;

use super::contracts::ensure_not_archived;
use super::kinds::{HistoryEventType, TaskStatus};
use super::{App, Viewer, limits, paths};
use crate::entities::{contract, task};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
use crate::store::{contracts, conversations, tasks};
use crate::time::now;

pub struct CreateTask {
    pub name: String,
    pub plan: Option<String>,
    pub contract_id: Option<Uuid>,
    pub parent_task_id: Option<Uuid>,
    pub repository: Option<String>,
    pub worktree_path: Option<String>,
    pub branch: Option<String>,
    pub base_branch: Option<String>,
    pub continue_from_task_id: Option<Uuid>,
}

pub fn status_of(task: &task::Model) -> AppResult<TaskStatus> {
    TaskStatus::from_stored(&task.status)
}

/// Locks a task for a change and checks that its contract is not archived. Returns the
/// task and its contract (when it has one).
pub async fn lock_for_change(
    db: &impl sea_orm::ConnectionTrait,
    viewer: &Viewer,
    task_id: Uuid,
) -> AppResult<(task::Model, Option<contract::Model>)> {
    let task = tasks::lock(db, viewer.owner_id, task_id)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    let contract = match task.contract_id {
        Some(id) => {
            let c = contracts::by_id(db, viewer.owner_id, id)
                .await?
                .ok_or_else(|| {
                    AppError::internal(format!("contract {id} of task {task_id} is missing"))
                })?;
            ensure_not_archived(&c)?;
            Some(c)
        }
        None => None,
    };
    Ok((task, contract))
}

/// Creates a `PENDING` task, optionally in a contract and under a parent task. A task
/// without a repository of its own works in its contract's repository.
pub async fn create(app: &App, viewer: &Viewer, input: CreateTask) -> AppResult<task::Model> {
    limits::name("name", &input.name)?;
    limits::text("plan", input.plan.as_deref())?;
    limits::optional_name("branch", input.branch.as_deref())?;
    limits::optional_name("baseBranch", input.base_branch.as_deref())?;
    if input.continue_from_task_id.is_some() {
        return Err(AppError::bad_input(
            "continueFromTaskId (worktree inheritance) is not available on this server yet",
        ));
    }
    let owner_id = viewer.owner_id;
    let parent = match input.parent_task_id {
        Some(id) => Some(
            tasks::by_id(app.store.db(), owner_id, id)
                .await?
                .ok_or_else(|| AppError::not_found("parent task"))?,
        ),
        None => None,
    };
    let contract_id = match (
        input.contract_id,
        parent.as_ref().and_then(|p| p.contract_id),
    ) {
        (Some(given), Some(of_parent)) if given != of_parent => {
            return Err(AppError::bad_input(
                "the parent task belongs to another contract",
            ));
        }
        (given, of_parent) => given.or(of_parent),
    };
    let contract = match contract_id {
        Some(id) => Some(
            contracts::by_id(app.store.db(), owner_id, id)
                .await?
                .ok_or_else(|| AppError::not_found("contract"))?,
        ),
        None => None,
    };
    if let Some(c) = &contract {
        ensure_not_archived(c)?;
    }
    let repository = match &input.repository {
        Some(r) => Some(paths::repository(&app.store, &app.workspace_root, owner_id, r).await?),
        None => contract.as_ref().and_then(|c| c.repository.clone()),
    };
    let worktree_path = match (&input.worktree_path, &repository) {
        (Some(w), Some(repo)) => {
            Some(paths::worktree(&app.store, &app.workspace_root, owner_id, repo, w).await?)
        }
        (Some(_), None) => return Err(AppError::bad_input("worktreePath needs a repository")),
        (None, _) => None,
    };

    let at = now();
    let task_id = Uuid::now_v7();
    let txn = app.store.begin_write().await?;
    if let Some(id) = contract_id {
        // Re-check under the lock: the contract may have been archived meanwhile.
        let c = contracts::lock(&txn, owner_id, id)
            .await?
            .ok_or_else(|| AppError::not_found("contract"))?;
        ensure_not_archived(&c)?;
    }
    let conversation = conversations::create_root(&txn, owner_id, task_id).await?;
    let task = tasks::insert(
        &txn,
        task::Model {
            id: task_id,
            owner_id,
            contract_id,
            parent_task_id: input.parent_task_id,
            is_supervisor: false,
            name: input.name.clone(),
            plan: input.plan,
            status: TaskStatus::Pending.as_str().into(),
            daemon_id: None,
            repository,
            worktree_path,
            branch: input.branch,
            base_branch: input.base_branch,
            forked_from_task_id: None,
            fork_checkpoint_id: None,
            fork_message_count: None,
            continued_from_task_id: None,
            conversation_id: conversation.id,
            event_count: 0,
            checkpoint_count: 0,
            created_at: at,
            updated_at: at,
            started_at: None,
            completed_at: None,
        },
    )
    .await?;
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id,
            event_type: HistoryEventType::TaskCreated,
            contract_id,
            task_id: Some(task_id),
            phase: contract.as_ref().map(|c| c.phase.clone()),
            data: json!({
                "name": task.name,
                "parentTaskId": task.parent_task_id.map(|id| id.to_string()),
                "continuedFromTaskId": null,
            }),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(task)
}

/// Moves a task along its lifecycle (API.md, Lifecycles). The same status again
/// succeeds and records nothing.
pub async fn update_status(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    to: TaskStatus,
    daemon_id: Option<Uuid>,
) -> AppResult<task::Model> {
    let txn = app.store.begin_write().await?;
    let (mut task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    let from = status_of(&task)?;
    if from == to {
        return Ok(task);
    }
    if !from.can_move_to(to) {
        let hint = match from {
            TaskStatus::Done => "; DONE is final (fork the task to go on)",
            TaskStatus::Interrupted | TaskStatus::Paused | TaskStatus::Failed
                if to == TaskStatus::Pending =>
            {
                "; use a resume to queue it again"
            }
            _ => "",
        };
        return Err(AppError::conflict(format!(
            "a task cannot move from {} to {}{hint}",
            from.as_str(),
            to.as_str()
        )));
    }
    let at = now();
    task.status = to.as_str().into();
    task.updated_at = at;
    if let Some(d) = daemon_id {
        task.daemon_id = Some(d);
    }
    if to == TaskStatus::Running && task.started_at.is_none() {
        task.started_at = Some(at);
    }
    if matches!(to, TaskStatus::Done | TaskStatus::Failed) {
        task.completed_at = Some(at);
    }
    let task = tasks::update(&txn, task).await?;
    if task.is_supervisor {
        if let Some(c) = &contract {
            contracts::touch_supervisor(&txn, c.id, at).await?;
        }
    }
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id: viewer.owner_id,
            event_type: HistoryEventType::TaskStatusChanged,
            contract_id: task.contract_id,
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: json!({
                "from": from.as_str(),
                "to": to.as_str(),
                "daemonId": task.daemon_id.map(|d| d.to_string()),
            }),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(task)
}
