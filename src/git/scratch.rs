//! Scratch index files of `save_state`: inside the work tree's own git dir (named
//! `makima-index-*`), so that they never pile up in a shared temp directory and a
//! restarted server can find and remove what a crashed one left.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{GitResult, Repo};

const PREFIX: &str = "makima-index-";

/// A fresh scratch index path in `git_dir`.
pub fn index_path(git_dir: &Path) -> PathBuf {
    git_dir.join(format!("{PREFIX}{}", uuid::Uuid::now_v7().simple()))
}

/// Removes a scratch index and git's lock beside it.
pub fn remove(index: &Path) {
    let _ = std::fs::remove_file(index);
    let mut lock = index.as_os_str().to_owned();
    lock.push(".lock");
    let _ = std::fs::remove_file(PathBuf::from(lock));
}

fn is_old(path: &Path, older_than: Duration) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= older_than)
}

/// Removes the scratch indexes that interrupted operations left in the git dir of
/// `repo`'s work tree, older than `older_than` (a live operation of another process
/// sharing the repository may still use a younger one; `Duration::ZERO` when no other
/// process can be running). Returns how many were removed. For startup reconciliation.
pub async fn remove_leftover_indexes(repo: &Repo, older_than: Duration) -> GitResult<usize> {
    let layout = repo.check().await?;
    Ok(remove_in(&layout.git_dir, older_than))
}

/// Removes the scratch index directories (`$TMPDIR/makima-index-*`) that versions
/// before this one left in the temp directory. Returns how many were removed.
pub fn remove_legacy_temp_indexes(older_than: Duration) -> usize {
    remove_in(&std::env::temp_dir(), older_than)
}

fn remove_in(dir: &Path, older_than: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if !name.starts_with(PREFIX) || !is_old(&path, older_than) {
            continue;
        }
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
            Ok(_) => std::fs::remove_file(&path).is_ok(),
            Err(_) => false,
        };
        removed += usize::from(gone);
    }
    removed
}
