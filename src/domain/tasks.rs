//! Tasks: creation and status changes.

use sea_orm::DatabaseTransaction;

use super::code::{self, Change, Event, Recorded};
use super::contracts::ensure_not_archived;
use super::lifecycle::Lifecycle;
use super::{App, Viewer, fork, limits, paths};
use crate::entities::event_data as data;
use crate::entities::ids::{ContractId, DaemonId, TaskId};
use crate::entities::kinds::{CodeOperationStatus, TaskStatus};
use crate::entities::{code_operation, contract, task};
use crate::error::{AppError, AppResult};
use crate::git;
use crate::store::history::{self, NewEvent};
use crate::store::{contracts, conversations, tasks};
use crate::time::now;

#[derive(Clone)]
pub struct CreateTask {
    pub name: String,
    pub plan: Option<String>,
    pub contract_id: Option<ContractId>,
    pub parent_task_id: Option<TaskId>,
    pub repository: Option<String>,
    pub worktree_path: Option<String>,
    pub branch: Option<String>,
    pub base_branch: Option<String>,
    pub continue_from_task_id: Option<TaskId>,
    /// The daemon that is to run the task (it claims it from `daemonWork`).
    pub daemon_id: Option<DaemonId>,
}

/// Records activity of a supervisor task (its messages and status changes move
/// `Supervisor.lastActivity`); other tasks have none to record.
pub async fn note_activity(
    db: &impl sea_orm::ConnectionTrait,
    task: &task::Model,
    contract: Option<&contract::Model>,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    match contract {
        Some(c) if task.is_supervisor => contracts::touch_supervisor(db, c.id, at).await,
        _ => Ok(()),
    }
}

/// Locks a task for a change and checks that its contract is not archived. Returns the
/// task and its contract (when it has one).
pub async fn lock_for_change(
    db: &impl sea_orm::ConnectionTrait,
    viewer: &Viewer,
    task_id: TaskId,
) -> AppResult<(task::Model, Option<contract::Model>)> {
    let task = tasks::lock(viewer.scope(db), task_id)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    viewer.may_report(&task)?;
    let contract = match task.contract_id {
        Some(id) => {
            let c = contracts::by_id(viewer.scope(db), id)
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
/// With `continue_from_task_id`, the task gets a new linked worktree starting at the
/// earlier task's branch head (worktree inheritance), reported as a WORKTREE operation.
pub async fn create(
    app: &App,
    viewer: &Viewer,
    input: CreateTask,
) -> AppResult<(task::Model, Option<code_operation::Model>)> {
    limits::name("name", &input.name)?;
    limits::text("plan", input.plan.as_deref())?;
    limits::optional_name("branch", input.branch.as_deref())?;
    limits::optional_name("baseBranch", input.base_branch.as_deref())?;
    for name in [&input.branch, &input.base_branch].into_iter().flatten() {
        git::check_branch_name(name)?;
    }
    let owner_id = viewer.owner_id;
    let parent = match input.parent_task_id {
        Some(id) => Some(
            tasks::by_id(app.store.scope(owner_id), id)
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
            contracts::by_id(app.store.scope(owner_id), id)
                .await?
                .ok_or_else(|| AppError::not_found("contract"))?,
        ),
        None => None,
    };
    if let Some(c) = &contract {
        ensure_not_archived(c)?;
    }
    let source = match input.continue_from_task_id {
        Some(id) => {
            let source = tasks::by_id(app.store.scope(owner_id), id)
                .await?
                .ok_or_else(|| AppError::not_found("task to continue from"))?;
            if input.worktree_path.is_some() || input.repository.is_some() {
                return Err(AppError::bad_input(
                    "a continued task inherits its repository and gets a new worktree: give neither repository nor worktreePath",
                ));
            }
            Some(source)
        }
        None => None,
    };
    if let Some(id) = input.daemon_id {
        super::daemons::find(app.store.scope(owner_id), id).await?;
        match &source {
            None => return create_on_daemon(app, viewer, input, contract).await,
            // A continued task's worktree is added where its source's code is.
            Some(s) if code::site(s) == code::Site::Daemon(id) => {}
            Some(_) => {
                return Err(AppError::bad_input(
                    "a continued task works where the task it continues has its code: give that task's daemon, or none",
                ));
            }
        }
    }
    let named = match (&input.repository, &source) {
        (Some(r), None) => {
            Some(paths::repository(&app.store, &app.workspace_root, owner_id, r).await?)
        }
        _ => None,
    };
    let repository = match (&named, &source) {
        (_, Some(source)) => source.repository.clone(),
        (Some(n), None) => Some(n.path.clone()),
        (None, None) => contract.as_ref().and_then(|c| c.repository.clone()),
    };
    let worktree_path = match (&input.worktree_path, &repository) {
        (Some(w), Some(repo)) => {
            Some(paths::worktree(&app.store, &app.workspace_root, owner_id, repo, w).await?)
        }
        (Some(_), None) => return Err(AppError::bad_input("worktreePath needs a repository")),
        (None, _) => None,
    };

    let change = NewTask {
        task_id: TaskId::new(),
        contract,
        code_on_daemon: source.as_ref().is_some_and(|s| s.code_on_daemon),
        source,
        named,
        repository,
        worktree_path,
        input,
    };
    // A new worktree on a daemon is recorded when queued (see `code::remote`).
    let done = code::run(app, viewer, &change).await?.done()?;
    let task = code::current(app, viewer, done.output, done.code_operation.as_ref()).await?;
    Ok((task, done.code_operation))
}

/// A task assigned to a daemon: its repository and worktree are paths on that daemon,
/// which the server records but never touches.
async fn create_on_daemon(
    app: &App,
    viewer: &Viewer,
    input: CreateTask,
    contract: Option<contract::Model>,
) -> AppResult<(task::Model, Option<code_operation::Model>)> {
    let repository = input
        .repository
        .as_deref()
        .map(|r| paths::on_daemon("repository", r))
        .transpose()?;
    let worktree_path = match (&input.worktree_path, &repository) {
        (Some(w), Some(_)) => Some(paths::on_daemon("worktreePath", w)?),
        (Some(_), None) => return Err(AppError::bad_input("worktreePath needs a repository")),
        (None, _) => None,
    };
    let change = NewTask {
        task_id: TaskId::new(),
        contract,
        source: None,
        named: None,
        code_on_daemon: repository.is_some(),
        repository,
        worktree_path,
        input,
    };
    let done = code::run(app, viewer, &change).await?.done()?;
    Ok((done.output, done.code_operation))
}

/// A task to create, checked and resolved.
#[derive(Clone)]
struct NewTask {
    task_id: TaskId,
    contract: Option<contract::Model>,
    /// The task it continues, whose branch head its new worktree starts at.
    source: Option<task::Model>,
    /// A repository the client named, claimed for the owner when the task is recorded.
    named: Option<paths::NamedRepository>,
    repository: Option<String>,
    worktree_path: Option<String>,
    /// The repository and worktree are paths on the task's daemon.
    code_on_daemon: bool,
    input: CreateTask,
}

impl Change for NewTask {
    type Plan = ();
    type Output = task::Model;

    /// A continued task takes its source's lock, under which an interrupted one is recovered.
    fn task_id(&self) -> Option<TaskId> {
        self.source.as_ref().map(|s| s.id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<((), Option<code::Intent>)> {
        let intent = match &self.source {
            Some(source) => Some(
                fork::continued_worktree(
                    app,
                    viewer,
                    source,
                    self.task_id,
                    self.input.branch.clone(),
                )
                .await?,
            ),
            None => None,
        };
        Ok(((), intent))
    }

    async fn record(
        &self,
        app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        (): (),
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<task::Model>> {
        let owner_id = viewer.owner_id;
        let (task_id, input) = (self.task_id, &self.input);
        let contract_id = self.contract.as_ref().map(|c| c.id);
        if let Some(id) = contract_id {
            // Re-check under the lock: the contract may have been archived meanwhile.
            let c = contracts::lock(viewer.scope(txn), id)
                .await?
                .ok_or_else(|| AppError::not_found("contract"))?;
            ensure_not_archived(&c)?;
        }
        if let Some(n) = &self.named {
            paths::claim(txn, owner_id, n).await?;
        }
        let conversation = conversations::create_root(viewer.scope(txn), task_id).await?;
        let source = self.source.as_ref();
        let site = source.map_or(code::Site::Server, code::site);
        let task = tasks::insert(
            txn,
            task::Model {
                contract_id,
                parent_task_id: input.parent_task_id,
                plan: input.plan.clone(),
                repository: self.repository.clone(),
                // A daemon's new worktree and branch exist once it reports them DONE.
                worktree_path: match op {
                    Some(o) if o.status == CodeOperationStatus::Done => Some(
                        code::worktree_path(app, site, task_id)
                            .to_string_lossy()
                            .into_owned(),
                    ),
                    Some(_) => None,
                    None => self.worktree_path.clone(),
                },
                branch: match op {
                    Some(o) if o.status == CodeOperationStatus::Done => o.branch.clone(),
                    Some(_) => None,
                    None => input.branch.clone(),
                },
                base_branch: input
                    .base_branch
                    .clone()
                    .or_else(|| source.and_then(|s| s.branch.clone())),
                continued_from_task_id: source.map(|s| s.id),
                daemon_id: input.daemon_id.or_else(|| {
                    source
                        .filter(|s| s.code_on_daemon)
                        .and_then(|s| s.daemon_id)
                }),
                code_on_daemon: self.code_on_daemon,
                ..tasks::new_row(
                    owner_id,
                    task_id,
                    input.name.clone(),
                    conversation.id,
                    now(),
                )
            },
        )
        .await?;
        let event = Event {
            contract_id,
            task_id: Some(task_id),
            phase: self.contract.as_ref().map(|c| c.phase.clone()),
            data: data::TaskCreated {
                name: task.name.clone(),
                parent_task_id: task.parent_task_id,
                continued_from_task_id: task.continued_from_task_id,
                code_operation_id: op.map(|o| o.id),
            }
            .into(),
        };
        Ok(Recorded {
            event,
            output: task,
        })
    }
}

/// Moves a task along its lifecycle (API.md, Lifecycles). The same status again
/// succeeds and records nothing. A daemon key reports as its own daemon.
pub async fn update_status(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    to: TaskStatus,
    daemon_id: Option<DaemonId>,
) -> AppResult<task::Model> {
    let daemon_id = match (viewer.daemon, daemon_id) {
        (Some(me), Some(named)) if named != me => {
            return Err(AppError::forbidden(
                "a daemon key reports as its own daemon",
            ));
        }
        (Some(me), _) => Some(me),
        (None, named) => named,
    };
    move_status(app, viewer, task_id, to, daemon_id, |_| Ok(())).await
}

/// `update_status` once `allowed` accepted the locked task.
pub(super) async fn move_status(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    to: TaskStatus,
    daemon_id: Option<DaemonId>,
    allowed: impl FnOnce(&task::Model) -> AppResult<()>,
) -> AppResult<task::Model> {
    let txn = app.store.begin_write().await?;
    let (task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    allowed(&task)?;
    move_locked(app, viewer, txn, task, contract, to, daemon_id).await
}

/// Moves `task`, locked in `txn`, to `to`, records it and commits.
pub(super) async fn move_locked(
    app: &App,
    viewer: &Viewer,
    txn: DatabaseTransaction,
    mut task: task::Model,
    contract: Option<contract::Model>,
    to: TaskStatus,
    daemon_id: Option<DaemonId>,
) -> AppResult<task::Model> {
    let task_id = task.id;
    let from = task.status;
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
    task.status = to;
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
    note_activity(&txn, &task, contract.as_ref(), at).await?;
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id: viewer.owner_id,
            contract_id: task.contract_id,
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: data::TaskStatusChanged {
                from,
                to,
                daemon_id: task.daemon_id,
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(task)
}
