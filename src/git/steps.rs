//! A code operation as a daemon receives it (the fields of a QUEUED `CodeOperation`),
//! run under the daemon's own workspace root with the same operations and the same
//! refusals as the server's (`ops`, `trust`). Paths arrive relative to the root and
//! are confined to it before git runs.
//!
//! Re-running a step after a crash is safe: a restore whose saved ref exists already
//! saved the state it replaces and only moves the worktree again; a branch or worktree
//! that exists at the operation's commit is taken as made.

use std::path::{Component, Path, PathBuf};

use super::{
    GitError, GitResult, Repo, add_worktree, create_branch, delete_branch_at, remove_worktree,
    restore, undo_restore,
};

/// One code operation to run on a daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Restore `dir` to `commit`, saving what it replaces under `saved_ref`.
    Restore {
        dir: String,
        commit: String,
        saved_ref: String,
    },
    /// Put `dir` back to the state saved under `from`, saving what it replaces under
    /// `saved_ref`.
    Unrestore {
        dir: String,
        from: String,
        saved_ref: String,
    },
    /// Create `branch` at `commit` in the repository `dir`.
    Branch {
        dir: String,
        branch: String,
        commit: String,
    },
    /// Add a linked worktree at `path` on a new `branch` at `commit` of the repository
    /// `dir` (empty: at the HEAD of `dir`, a worktree of that repository).
    Worktree {
        dir: String,
        path: String,
        branch: String,
        commit: String,
    },
}

/// `rel` under `root`, when it is a relative path of normal components.
fn inside(root: &Path, rel: &str) -> GitResult<PathBuf> {
    let path = Path::new(rel);
    let normal = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if rel.is_empty() || !normal {
        return Err(GitError::Untrusted(format!(
            "{rel:?} is not a relative path inside the workspace root"
        )));
    }
    Ok(root.join(path))
}

/// The fields of a QUEUED `CodeOperation`, as a daemon reads them from the API.
#[derive(Clone, Debug, Default)]
pub struct Fields<'a> {
    /// `RESTORE`, `BRANCH` or `WORKTREE`.
    pub kind: &'a str,
    pub directory: Option<&'a str>,
    pub commit_sha: &'a str,
    pub branch: Option<&'a str>,
    pub saved_ref: Option<&'a str>,
    pub restore_from: Option<&'a str>,
    pub worktree_path: Option<&'a str>,
}

impl Step {
    /// The step an operation's fields describe; `None` when they are incomplete.
    pub fn of(f: &Fields<'_>) -> Option<Self> {
        let dir = f.directory?.to_owned();
        Some(match (f.kind, f.restore_from) {
            ("RESTORE", None) => Self::Restore {
                dir,
                commit: f.commit_sha.to_owned(),
                saved_ref: f.saved_ref?.to_owned(),
            },
            ("RESTORE", Some(from)) => Self::Unrestore {
                dir,
                from: from.to_owned(),
                saved_ref: f.saved_ref?.to_owned(),
            },
            ("BRANCH", _) => Self::Branch {
                dir,
                branch: f.branch?.to_owned(),
                commit: f.commit_sha.to_owned(),
            },
            ("WORKTREE", _) => Self::Worktree {
                dir,
                path: f.worktree_path?.to_owned(),
                branch: f.branch?.to_owned(),
                commit: f.commit_sha.to_owned(),
            },
            _ => return None,
        })
    }

    /// Runs the step under the canonical workspace `root`; returns the commit the
    /// worktree (for a branch, the branch) is at.
    pub async fn run(&self, root: &Path) -> GitResult<String> {
        match self {
            Self::Restore {
                dir,
                commit,
                saved_ref,
            } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                if repo.commit_of(saved_ref).await.is_ok() {
                    // Ran before (its saved state exists): move the worktree again only.
                    let target = repo.resolve_commit(commit).await?;
                    repo.check().await?;
                    repo.git(&["reset", "--hard", "--quiet", &target]).await?;
                    repo.git(&["clean", "-f", "-d", "--quiet"]).await?;
                    return Ok(target);
                }
                restore(&repo, commit, saved_ref).await
            }
            Self::Unrestore {
                dir,
                from,
                saved_ref,
            } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                if repo.commit_of(saved_ref).await.is_ok() {
                    return repo.commit_of(&format!("{from}^1")).await;
                }
                undo_restore(&repo, from, saved_ref).await
            }
            Self::Branch {
                dir,
                branch,
                commit,
            } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                let target = repo.resolve_commit(commit).await?;
                if repo.branch_head(branch).await.is_ok_and(|h| h == target) {
                    return Ok(target);
                }
                create_branch(&repo, branch, commit).await
            }
            Self::Worktree {
                dir,
                path,
                branch,
                commit,
            } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                let path = inside(root, path)?;
                if path.exists() && repo.branch_exists(branch).await {
                    // Added before a crash: the branch is the operation's own.
                    return repo.branch_head(branch).await;
                }
                let target = if commit.is_empty() {
                    repo.check().await?;
                    repo.head().await?
                } else {
                    repo.resolve_commit(commit).await?
                };
                add_worktree(&repo, &path, branch, &target).await
            }
        }
    }
}

impl Step {
    /// Takes a step that ran back (the server refused its DONE report, or it came too
    /// late): a restore goes back to the state it saved; a branch or worktree it made at
    /// `commit` is removed. Safe when the step ran partly or not at all.
    pub async fn undo(&self, root: &Path, commit: &str) -> GitResult<()> {
        match self {
            Self::Restore { dir, saved_ref, .. } | Self::Unrestore { dir, saved_ref, .. } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                if repo.commit_of(saved_ref).await.is_ok() {
                    let scratch = format!("{saved_ref}-undone");
                    undo_restore(&repo, saved_ref, &scratch).await?;
                }
                Ok(())
            }
            Self::Branch { dir, branch, .. } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                delete_branch_at(&repo, branch, commit).await
            }
            Self::Worktree {
                dir, path, branch, ..
            } => {
                let repo = Repo::confined(inside(root, dir)?, root);
                remove_worktree(&repo, &inside(root, path)?).await?;
                delete_branch_at(&repo, branch, commit).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/w");
        assert_eq!(inside(root, "a/b").unwrap(), PathBuf::from("/w/a/b"));
        for bad in ["", "/etc", "../x", "a/../../x"] {
            assert!(inside(root, bad).is_err(), "{bad}");
        }
    }
}
