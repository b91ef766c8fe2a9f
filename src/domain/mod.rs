//! The rules of makima: what each operation checks, changes and records. No GraphQL
//! types here (the enums in `entities::kinds` merely derive the GraphQL enum);
//! resolvers parse arguments, call a handler and convert the result.

pub mod code;
pub mod contracts;
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

use crate::entities::ids::OwnerId;
use crate::store::{OwnerScope, Store};

/// Everything a handler needs besides the caller.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    /// Canonical workspace root; every repository and worktree lives below it.
    pub workspace_root: PathBuf,
    pub locks: Arc<locks::Locks>,
}

/// The owner a request acts for, resolved from its API key.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub owner_id: OwnerId,
    pub owner: String,
}

impl Viewer {
    /// `db` acting for this owner: how the viewer's rows are read and changed.
    pub fn scope<'c, C>(&self, db: &'c C) -> OwnerScope<'c, C> {
        OwnerScope::new(db, self.owner_id)
    }
}
