//! The rules of makima: what each operation checks, changes and records. No GraphQL
//! types here (the enums in `entities::kinds` merely derive the GraphQL enum);
//! resolvers parse arguments, call a handler and convert the result.

pub mod code;
pub mod contracts;
pub mod daemons;
pub mod fork;
mod idempotent;
pub mod ingest;
pub mod keys;
pub mod lifecycle;
pub mod limits;
pub mod locks;
pub mod paths;
pub mod resume;
pub mod rewind;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::entities::ids::{DaemonId, OwnerId};
use crate::entities::{owner, task};
use crate::error::{AppError, AppResult};
use crate::store::{OwnerScope, Store};

/// Everything a handler needs besides the caller.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// Canonical workspace root; every repository and worktree lives below it.
    pub workspace_root: PathBuf,
    pub locks: Arc<locks::Locks>,
    /// How long a daemon may go without a heartbeat before it is OFFLINE.
    pub daemon_timeout: Duration,
    /// How long a mutation waits for a daemon's code operation before answering QUEUED.
    pub code_operation_wait: Duration,
    /// How long a daemon has to finish a code operation before it is FAILED.
    pub code_operation_timeout: Duration,
    /// Bumped when a daemon reports on a code operation, to wake the waiters here.
    pub code_reports: Arc<tokio::sync::watch::Sender<u64>>,
}

/// The owner a request acts for, resolved from its API key; with a daemon key, also the
/// daemon it acts as, which may only take and report its own work.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub owner_id: OwnerId,
    pub owner: String,
    pub daemon: Option<DaemonId>,
}

impl Viewer {
    /// The owner itself (an owner key).
    pub fn owner(owner: &owner::Model) -> Self {
        Self {
            owner_id: owner.id,
            owner: owner.name.clone(),
            daemon: None,
        }
    }

    /// The owner, for work the server does on its own (the daemon sweep), never for a
    /// request.
    pub fn acting_for(owner_id: OwnerId) -> Self {
        Self {
            owner_id,
            owner: String::new(),
            daemon: None,
        }
    }

    /// The daemon a daemon key acts as; an owner key is refused.
    pub fn daemon(&self) -> AppResult<DaemonId> {
        self.daemon
            .ok_or_else(|| AppError::forbidden("only a daemon key may do this"))
    }

    /// Refuses a daemon key: what follows is the owner's alone.
    pub fn only_owner(&self) -> AppResult<()> {
        match self.daemon {
            None => Ok(()),
            Some(_) => Err(AppError::forbidden(
                "a daemon key may only take and report its own daemon's work",
            )),
        }
    }

    /// Whether the caller may report the work of `task`: an owner key always (the
    /// task is the owner's), a daemon key only for a task on its daemon.
    pub fn may_report(&self, task: &task::Model) -> AppResult<()> {
        match self.daemon {
            Some(d) if task.daemon_id != Some(d) => Err(AppError::forbidden(
                "this task is not on this daemon (claim it first)",
            )),
            _ => Ok(()),
        }
    }

    /// `db` acting for this owner: how the viewer's rows are read and changed.
    pub fn scope<'c, C>(&self, db: &'c C) -> OwnerScope<'c, C> {
        OwnerScope::new(db, self.owner_id)
    }
}
