//! Repository and worktree paths: canonicalised and confined to the workspace root.
//!
//! Every refusal uses one message that never echoes the path, so a client cannot probe
//! which paths exist, nor which ones another owner uses.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::store::{Store, tasks};

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

fn is_repository(path: &Path) -> bool {
    path.join(".git").exists()
}

/// The git directory that a linked worktree's `.git` file points at.
fn linked_gitdir(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let gitdir = text.strip_prefix("gitdir:")?.trim();
    worktree.join(gitdir).canonicalize().ok()
}

async fn not_used_by_others(
    store: &Store,
    owner_id: Uuid,
    path: PathBuf,
    refusal: &str,
) -> AppResult<String> {
    let s = path
        .to_str()
        .ok_or_else(|| AppError::bad_input(refusal))?
        .to_owned();
    if tasks::path_used_by_other_owner(store.db(), owner_id, &s).await? {
        return Err(AppError::bad_input(refusal));
    }
    Ok(s)
}

/// Resolves a client-given repository path to its canonical absolute form.
pub async fn repository(
    store: &Store,
    root: &Path,
    owner_id: Uuid,
    input: &str,
) -> AppResult<String> {
    let path = confine(root, input)
        .filter(|p| is_repository(p))
        .ok_or_else(|| AppError::bad_input(REFUSED_REPOSITORY))?;
    not_used_by_others(store, owner_id, path, REFUSED_REPOSITORY).await
}

/// Resolves a worktree path, which must be `repository` itself or one of its linked
/// worktrees.
pub async fn worktree(
    store: &Store,
    root: &Path,
    owner_id: Uuid,
    repository: &str,
    input: &str,
) -> AppResult<String> {
    let repo = Path::new(repository);
    let path = confine(root, input)
        .filter(|p| {
            p == repo
                || linked_gitdir(p)
                    .is_some_and(|gitdir| gitdir.starts_with(repo.join(".git").join("worktrees")))
        })
        .ok_or_else(|| AppError::bad_input(REFUSED_WORKTREE))?;
    not_used_by_others(store, owner_id, path, REFUSED_WORKTREE).await
}
