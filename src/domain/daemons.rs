//! Daemons: heartbeats, what a daemon may claim, the claim itself, and the sweep that
//! interrupts the running tasks of a daemon that went silent. The protocol a daemon
//! follows is in `docs/daemons.md`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::tasks::{lock_for_change, move_locked, move_status};
use super::{App, Viewer};
use crate::entities::ids::{DaemonId, TaskId};
use crate::entities::kinds::TaskStatus;
use crate::entities::task;
use crate::entities::{code_operation, daemon};
use crate::error::{AppError, AppResult};
use crate::store::{OwnerScope, code_operations, daemons};
use crate::time::now;

/// How long a daemon may go without a heartbeat before it is OFFLINE (`--daemon-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many capabilities, each at most `limits::NAME` long.
const MAX_CAPABILITIES: usize = 64;

/// Whether the daemon is ONLINE: its last heartbeat is younger than `timeout`.
pub fn is_online(
    daemon: &daemon::Model,
    timeout: Duration,
    at: chrono::DateTime<chrono::Utc>,
) -> bool {
    daemon
        .last_seen_at
        .is_some_and(|seen| chrono::Duration::from_std(timeout).is_ok_and(|t| seen > at - t))
}

/// What a daemon reports about itself with each heartbeat.
pub struct Heartbeat {
    pub version: Option<String>,
    pub capabilities: Option<Vec<String>>,
}

/// Records that the viewer's daemon is alive (and what it runs); returns its row.
pub async fn heartbeat(app: &App, viewer: &Viewer, beat: Heartbeat) -> AppResult<daemon::Model> {
    let id = viewer.daemon()?;
    if let Some(v) = &beat.version {
        super::limits::name("version", v)?;
    }
    let capabilities = match &beat.capabilities {
        Some(list) => {
            if list.len() > MAX_CAPABILITIES {
                return Err(AppError::bad_input(format!(
                    "at most {MAX_CAPABILITIES} capabilities"
                )));
            }
            for c in list {
                super::limits::name("capability", c)?;
            }
            Some(serde_json::to_string(list)?)
        }
        None => None,
    };
    let scope = app.store.scope(viewer.owner_id);
    daemons::heartbeat(
        scope,
        id,
        beat.version.as_deref(),
        capabilities.as_deref(),
        now(),
    )
    .await?;
    daemons::by_id(scope, id)
        .await?
        .ok_or_else(|| AppError::internal(format!("daemon {id} of a valid key is missing")))
}

/// Implicit heartbeats (asking for work, claiming) are written at most this often per
/// daemon and process: a fleet polling for work must not turn every read into a write.
const IMPLICIT_BEAT: Duration = Duration::from_secs(1);

/// When this process last wrote each daemon's implicit heartbeat.
static BEATS: LazyLock<Mutex<HashMap<DaemonId, Instant>>> = LazyLock::new(Default::default);

/// Records that the daemon was seen, unless this process did so within `IMPLICIT_BEAT`.
async fn seen(app: &App, viewer: &Viewer, id: DaemonId) -> AppResult<()> {
    {
        let mut beats = BEATS.lock().expect("heartbeat cache");
        if beats
            .get(&id)
            .is_some_and(|at| at.elapsed() < IMPLICIT_BEAT)
        {
            return Ok(());
        }
        if beats.len() > 100_000 {
            beats.retain(|_, at| at.elapsed() < IMPLICIT_BEAT);
        }
        beats.insert(id, Instant::now());
    }
    daemons::heartbeat(app.store.scope(viewer.owner_id), id, None, None, now()).await
}

/// The PENDING tasks the viewer's daemon may claim, oldest first: those assigned to it
/// and those assigned to no daemon. Asking counts as a heartbeat.
pub async fn work(app: &App, viewer: &Viewer, limit: u64) -> AppResult<Vec<task::Model>> {
    let id = viewer.daemon()?;
    seen(app, viewer, id).await?;
    daemons::claimable(app.store.scope(viewer.owner_id), id, limit).await
}

/// Takes the oldest PENDING task the viewer's daemon may claim (as `claim` does), or
/// none when there is none. On PostgreSQL racing daemons take different tasks rather
/// than conflict over one.
pub async fn claim_next(app: &App, viewer: &Viewer) -> AppResult<Option<task::Model>> {
    let me = viewer.daemon()?;
    seen(app, viewer, me).await?;
    let owner = Viewer {
        daemon: None,
        ..viewer.clone()
    };
    // A read first: a fleet woken by one new task must not queue a write transaction
    // each just to find nothing.
    if daemons::claimable(app.store.scope(viewer.owner_id), me, 1)
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    let txn = app.store.begin_write().await?;
    let Some(task_id) = daemons::lock_next_claimable(owner.scope(&txn), me).await? else {
        return Ok(None);
    };
    let (task, contract) = lock_for_change(&txn, &owner, task_id).await?;
    move_locked(
        app,
        &owner,
        txn,
        task,
        contract,
        TaskStatus::Running,
        Some(me),
    )
    .await
    .map(Some)
}

/// The code operations on the viewer daemon's worktrees that it has not reported yet,
/// oldest first.
pub async fn queued_operations(
    app: &App,
    viewer: &Viewer,
    limit: u64,
) -> AppResult<Vec<code_operation::Model>> {
    let id = viewer.daemon()?;
    code_operations::queued_for(app.store.scope(viewer.owner_id), id, limit).await
}

/// Takes a PENDING task for the viewer's daemon: the task becomes RUNNING on it
/// (TASK_STATUS_CHANGED in the timeline). The task row is locked while it is checked, so
/// of daemons racing for one task exactly one wins; the others get CONFLICT. Claiming
/// counts as a heartbeat.
pub async fn claim(app: &App, viewer: &Viewer, task_id: TaskId) -> AppResult<task::Model> {
    let me = viewer.daemon()?;
    seen(app, viewer, me).await?;
    // The daemon key may not report a task it does not hold yet: check as the owner.
    let owner = Viewer {
        daemon: None,
        ..viewer.clone()
    };
    move_status(
        app,
        &owner,
        task_id,
        TaskStatus::Running,
        Some(me),
        |task| {
            if task.status != TaskStatus::Pending {
                return Err(AppError::conflict(format!(
                    "the task is {}: only a PENDING task can be claimed",
                    task.status.as_str()
                )));
            }
            match task.daemon_id {
                Some(d) if d != me => {
                    Err(AppError::conflict("the task is assigned to another daemon"))
                }
                _ => Ok(()),
            }
        },
    )
    .await
}

/// Interrupts the RUNNING tasks of every daemon silent for longer than the timeout
/// (TASK_STATUS_CHANGED to INTERRUPTED, resumable); returns how many. Runs in every
/// server process: a task already moved by another is left alone.
pub async fn sweep(app: &App, at: chrono::DateTime<chrono::Utc>) -> AppResult<usize> {
    let timeout = chrono::Duration::from_std(app.daemon_timeout)
        .map_err(|e| AppError::internal(format!("daemon timeout: {e}")))?;
    let silent = daemons::silent_with_running_tasks(app.store.db(), at - timeout, 100).await?;
    let mut interrupted = 0;
    for daemon in silent {
        let viewer = Viewer::acting_for(daemon.owner_id);
        let scope = app.store.scope(daemon.owner_id);
        for task_id in daemons::tasks_in_status(scope, daemon.id, TaskStatus::Running).await? {
            let moved = move_status(
                app,
                &viewer,
                task_id,
                TaskStatus::Interrupted,
                None,
                |task| still_running_on(task, daemon.id),
            )
            .await;
            match moved {
                Ok(_) => interrupted += 1,
                // Moved on meanwhile (finished, or swept by another process).
                Err(AppError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(interrupted)
}

fn still_running_on(task: &task::Model, daemon: DaemonId) -> AppResult<()> {
    if task.status == TaskStatus::Running && task.daemon_id == Some(daemon) {
        Ok(())
    } else {
        Err(AppError::conflict("no longer running on that daemon"))
    }
}

/// Runs `sweep` (and fails code operations past their deadline) every quarter of the
/// daemon timeout until the process ends.
pub async fn sweep_forever(app: App) {
    let every = (app.daemon_timeout / 4).max(Duration::from_millis(250));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sweep(&app, now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(interrupted = n, "tasks of silent daemons interrupted"),
            Err(err) => tracing::warn!(?err, "daemon sweep failed"),
        }
        match super::code::expire(&app, now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(failed = n, "code operations past their deadline failed"),
            Err(err) => tracing::warn!(?err, "code operation sweep failed"),
        }
    }
}

/// The owner's daemon `id`, for assigning a task to it; another owner's or an unknown
/// one is NOT_FOUND.
pub async fn find(
    scope: OwnerScope<'_, impl sea_orm::ConnectionTrait>,
    id: DaemonId,
) -> AppResult<daemon::Model> {
    daemons::by_id(scope, id)
        .await?
        .ok_or_else(|| AppError::not_found("daemon"))
}
