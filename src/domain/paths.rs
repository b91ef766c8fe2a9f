//! Repository and worktree paths: canonicalised, confined to the workspace root, and
//! checked with git (`git::Repo::check`: the layout is git's own, nothing points outside
//! the root, no configuration runs programs). Ownership is keyed by the repository's
//! common dir and claimed in the transaction that records the task or contract.
//!
//! Every refusal uses one message that never echoes the path, so a client cannot probe
//! which paths exist, nor which ones another owner uses.

use std::path::{Path, PathBuf};

use crate::entities::ids::OwnerId;
use crate::error::{AppError, AppResult};
use crate::git::{Layout, Repo};
use crate::store::OwnerScope;
use crate::store::{Store, repositories, tasks};

const REFUSED_REPOSITORY: &str =
    "repository must be an existing git repository inside the workspace root";
const REFUSED_WORKTREE: &str = "worktreePath must be the repository's main worktree or one of its linked worktrees, inside the workspace root";

/// Creates the workspace root if needed and returns its canonical form.
pub fn prepare_root(root: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    root.canonicalize()
}

fn confine(root: &Path, input: &str) -> Option<PathBuf> {
    if input.is_empty() || input.contains('\0') {
        return None;
    }
    let joined = root.join(input);
    let canonical = joined.canonicalize().ok()?;
    let private = root.join(".makima");
    (canonical.starts_with(root) && !canonical.starts_with(&private)).then_some(canonical)
}

/// The layout of a work tree git may run in, inside `root`; `None` for anything else
/// (the reason goes to the log).
async fn inspect(root: &Path, dir: &Path) -> Option<Layout> {
    match Repo::confined(dir, root).check().await {
        Ok(layout) => Some(layout),
        Err(err) => {
            tracing::info!(?err, "refused a repository or worktree path");
            None
        }
    }
}

fn utf8(path: &Path, refusal: &str) -> AppResult<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| AppError::bad_input(refusal))
}

/// A repository a client named, checked with git; `claim` records whose it is.
#[derive(Clone, Debug)]
pub struct NamedRepository {
    /// The canonical path of the work tree the client named.
    pub path: String,
    common_dir: String,
    /// Every work tree of the repository, for the first claim of a repository that
    /// tasks used before ownership was recorded.
    worktrees: Vec<String>,
}

/// Resolves a client-given repository path to its canonical absolute form, refusing
/// anything that is not a work tree git may run in inside the root.
pub async fn repository(
    store: &Store,
    root: &Path,
    owner_id: OwnerId,
    input: &str,
) -> AppResult<NamedRepository> {
    let refused = || AppError::bad_input(REFUSED_REPOSITORY);
    let path = confine(root, input).ok_or_else(refused)?;
    let layout = inspect(root, &path).await.ok_or_else(refused)?;
    let mut worktrees = vec![utf8(&path, REFUSED_REPOSITORY)?];
    let listed = Repo::confined(&path, root)
        .worktrees()
        .await
        .map_err(|_| refused())?;
    worktrees.extend(listed.iter().filter_map(|p| p.to_str().map(str::to_owned)));
    let named = NamedRepository {
        path: worktrees[0].clone(),
        common_dir: utf8(&layout.common_dir, REFUSED_REPOSITORY)?,
        worktrees,
    };
    // Early answer; `claim` decides for good inside the recording transaction.
    if tasks::path_used_by_other_owner(store.scope(owner_id), &named.path).await? {
        return Err(refused());
    }
    Ok(named)
}

/// Claims the named repository for `owner_id` in `txn`, the transaction that records
/// the task or contract naming it; another owner's repository is refused like a path
/// that does not exist.
pub async fn claim(
    txn: &impl sea_orm::ConnectionTrait,
    owner_id: OwnerId,
    named: &NamedRepository,
) -> AppResult<()> {
    if repositories::claim(
        OwnerScope::new(txn, owner_id),
        &named.common_dir,
        &named.worktrees,
    )
    .await?
    {
        Ok(())
    } else {
        Err(AppError::bad_input(REFUSED_REPOSITORY))
    }
}

/// Resolves a worktree path, which must be a work tree of the same repository (the
/// same common dir) as `repository`.
pub async fn worktree(
    store: &Store,
    root: &Path,
    owner_id: OwnerId,
    repository: &str,
    input: &str,
) -> AppResult<String> {
    let refused = || AppError::bad_input(REFUSED_WORKTREE);
    let path = confine(root, input).ok_or_else(refused)?;
    let wt = inspect(root, &path).await.ok_or_else(refused)?;
    let repo = inspect(root, Path::new(repository))
        .await
        .ok_or_else(refused)?;
    if wt.common_dir != repo.common_dir {
        return Err(refused());
    }
    let s = utf8(&path, REFUSED_WORKTREE)?;
    if tasks::path_used_by_other_owner(store.scope(owner_id), &s).await? {
        return Err(refused());
    }
    Ok(s)
}

/// A path on a daemon, relative to its workspace root: the server only checks its shape
/// (relative, normal components only, outside the daemon's `.makima`), never the disk.
/// The daemon confines and checks it again before git runs there.
pub fn on_daemon(what: &str, input: &str) -> AppResult<String> {
    use std::path::Component;
    let refused = || {
        AppError::bad_input(format!(
            "{what} of a task on a daemon must be a relative path inside the daemon's workspace root"
        ))
    };
    super::limits::name(what, input)?;
    if input.is_empty() || input.contains('\0') || input.contains('\\') {
        return Err(refused());
    }
    let path = Path::new(input);
    let mut normal = path
        .components()
        .filter(|c| *c != Component::CurDir)
        .peekable();
    if normal.peek().is_none() {
        return Err(refused());
    }
    for (i, c) in normal.enumerate() {
        match c {
            Component::Normal(part) if !(i == 0 && part == ".makima") => {}
            _ => return Err(refused()),
        }
    }
    Ok(input.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod daemon_path_tests {
    use super::on_daemon;

    #[test]
    fn daemon_paths_are_relative_and_stay_inside() {
        assert_eq!(on_daemon("repository", "repos/app/").unwrap(), "repos/app");
        for bad in [
            "/etc",
            "../x",
            "a/../../x",
            "",
            ".",
            ".makima/worktrees/x",
            "a\\b",
        ] {
            assert!(on_daemon("repository", bad).is_err(), "{bad}");
        }
    }
}
