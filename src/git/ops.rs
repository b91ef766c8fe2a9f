//! The four code operations: restore a worktree to a commit (saving what it replaces),
//! undo such a restore, create a branch, add a linked worktree; and taking back the
//! last two.

use std::path::Path;

use super::{GitError, GitResult, Layout, Repo, check_branch_name, scratch};

/// Saves the worktree's complete state (HEAD plus staged, unstaged and untracked
/// changes, and every tracked file, ignored or not; untracked ignored files excluded)
/// as a commit under `saved_ref`, without touching the worktree or its index.
async fn save_state(repo: &Repo, layout: &Layout, saved_ref: &str) -> GitResult<String> {
    let index = scratch::index_path(&layout.git_dir);
    let env = [("GIT_INDEX_FILE", index.as_path())];
    let result = async {
        // Starting from the real index keeps every tracked path: `add -A` on an empty
        // index would skip tracked files that match .gitignore, and the undo would then
        // delete them.
        let real = layout.git_dir.join("index");
        if real.is_file() {
            std::fs::copy(&real, &index)
                .map_err(|e| GitError::Failed(format!("copy the index: {e}")))?;
        } else {
            repo.git_env(&["read-tree", "HEAD"], &env).await?;
        }
        repo.git_env(&["add", "-A", "--", "."], &env).await?;
        let tree = repo.git_env(&["write-tree"], &env).await?;
        let head = repo.head().await?;
        let commit = repo
            .git(&[
                "commit-tree",
                &tree,
                "-p",
                &head,
                "-m",
                "makima: worktree state saved before a restore",
            ])
            .await?;
        repo.git(&["update-ref", saved_ref, &commit]).await?;
        Ok(commit)
    }
    .await;
    scratch::remove(&index);
    result
}

/// Removes `rel` inside the work tree, unless a directory on the way is a symbolic
/// link (git would not follow one either).
fn remove_inside(dir: &Path, rel: &str) {
    let mut at = dir.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        if std::fs::symlink_metadata(&at).map_or(true, |m| !m.is_dir()) {
            return;
        }
    }
    let _ = std::fs::remove_file(dir.join(rel));
}

/// Makes the worktree, index and current branch equal to `commit`: files created after
/// it are removed, ignored files kept. The replaced state is saved under `saved_ref`
/// first. Returns the full commit id.
pub async fn restore(repo: &Repo, commit: &str, saved_ref: &str) -> GitResult<String> {
    let layout = repo.check().await?;
    let target = repo.resolve_commit(commit).await?;
    save_state(repo, &layout, saved_ref).await?;
    repo.git(&["reset", "--hard", "--quiet", &target]).await?;
    repo.git(&["clean", "-f", "-d", "--quiet"]).await?;
    Ok(target)
}

/// Puts the worktree back to the state saved under `saved_ref` by `restore`: the branch
/// at the saved HEAD, the files (uncommitted edits and untracked files included) as they
/// were. The state it replaces is saved under `new_saved_ref`.
pub async fn undo_restore(repo: &Repo, saved_ref: &str, new_saved_ref: &str) -> GitResult<String> {
    let layout = repo.check().await?;
    let saved = repo
        .commit_of(saved_ref)
        .await
        .map_err(|_| GitError::Failed("the saved state of the rewind is gone".into()))?;
    let head = repo
        .git(&["rev-parse", "--verify", &format!("{saved}^1")])
        .await?;
    save_state(repo, &layout, new_saved_ref).await?;
    repo.git(&["reset", "--hard", "--quiet", &head]).await?;
    repo.git(&["clean", "-f", "-d", "--quiet"]).await?;
    // Files of the saved state, left unstaged as they were.
    repo.git(&["checkout", &saved, "--", "."]).await?;
    let deleted = repo
        .git(&[
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            "--name-only",
            "--no-renames",
            "--diff-filter=D",
            &head,
            &saved,
        ])
        .await?;
    for path in deleted.lines().filter(|l| !l.is_empty()) {
        remove_inside(&repo.dir, path);
    }
    repo.git(&["reset", "--quiet"]).await?;
    Ok(head)
}

/// Creates `branch` at `commit`; an existing branch is `BranchExists`.
pub async fn create_branch(repo: &Repo, branch: &str, commit: &str) -> GitResult<String> {
    check_branch_name(branch)?;
    repo.check().await?;
    let target = repo.resolve_commit(commit).await?;
    if repo.branch_exists(branch).await {
        return Err(GitError::BranchExists);
    }
    repo.git(&["branch", "--no-track", "--end-of-options", branch, &target])
        .await
        .map_err(|e| match e {
            GitError::Failed(m) if m.contains("already exists") => GitError::BranchExists,
            other => other,
        })?;
    Ok(target)
}

/// Adds a linked worktree at `path` on a new `branch` starting at `commit`.
pub async fn add_worktree(
    repo: &Repo,
    path: &Path,
    branch: &str,
    commit: &str,
) -> GitResult<String> {
    check_branch_name(branch)?;
    repo.check().await?;
    let target = repo.resolve_commit(commit).await?;
    if repo.branch_exists(branch).await {
        return Err(GitError::BranchExists);
    }
    let path_str = path
        .to_str()
        .ok_or_else(|| GitError::Failed("worktree path is not UTF-8".into()))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| GitError::Failed(format!("worktree directory: {e}")))?;
    }
    repo.git(&[
        "worktree", "add", "--quiet", "-b", branch, "--", path_str, &target,
    ])
    .await?;
    Ok(target)
}

/// Deletes `branch` if it points at `commit` (a branch an operation created there);
/// leaves it, or its absence, alone otherwise.
pub async fn delete_branch_at(repo: &Repo, branch: &str, commit: &str) -> GitResult<()> {
    let (Ok(target), Ok(head)) = (
        repo.resolve_commit(commit).await,
        repo.branch_head(branch).await,
    ) else {
        return Ok(());
    };
    if head == target {
        repo.git(&["branch", "-D", "--end-of-options", branch])
            .await?;
    }
    Ok(())
}

/// Removes the linked worktree at `path`, registered or not (an `add_worktree` that
/// was cut off leaves a directory git may not know yet).
pub async fn remove_worktree(repo: &Repo, path: &Path) -> GitResult<()> {
    let p = path.to_string_lossy();
    if repo
        .git(&["worktree", "remove", "--force", "--", &p])
        .await
        .is_err()
        && path.exists()
    {
        std::fs::remove_dir_all(path)
            .map_err(|e| GitError::Failed(format!("removing a worktree: {e}")))?;
    }
    repo.git(&["worktree", "prune"]).await?;
    Ok(())
}
