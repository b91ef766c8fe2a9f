//! Code operations with the real `git`: run without a shell, with hooks and prompts
//! off, on repositories that `domain::paths` has already confined to the workspace
//! root. Names that reach git are checked first, so no input can become an option.

mod ops;

use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use ops::{add_worktree, create_branch, restore, undo_restore};

/// Why a git step failed, in the API's terms.
#[derive(Debug)]
pub enum GitError {
    /// The input names something git cannot use (bad branch name, unknown commit).
    BadInput(String),
    /// The branch to create exists already.
    BranchExists,
    /// Anything else (I/O, a git failure); details for the log only.
    Failed(String),
}

impl From<GitError> for crate::error::AppError {
    fn from(err: GitError) -> Self {
        match err {
            GitError::BadInput(m) => Self::BadInput(m),
            GitError::BranchExists => Self::Conflict("a branch of that name already exists".into()),
            GitError::Failed(detail) => Self::Internal(format!("git: {detail}")),
        }
    }
}

pub type GitResult<T> = Result<T, GitError>;

/// A git working tree (a repository's main worktree or a linked one).
#[derive(Clone, Debug)]
pub struct Repo {
    pub dir: PathBuf,
}

impl Repo {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Runs git with `args` in this worktree; returns trimmed stdout.
    pub async fn git(&self, args: &[&str]) -> GitResult<String> {
        self.git_env(args, &[]).await
    }

    pub async fn git_env(&self, args: &[&str], env: &[(&str, &Path)]) -> GitResult<String> {
        let mut cmd = tokio::process::Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.fsmonitor=false",
            ])
            .args([
                "-c",
                "user.name=makima",
                "-c",
                "user.email=makima@localhost",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| GitError::Failed(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(GitError::Failed(format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Whether `args` succeeds (for existence checks).
    async fn succeeds(&self, args: &[&str]) -> bool {
        self.git(args).await.is_ok()
    }

    /// The full id of the commit that `name` (a hex commit name) resolves to.
    pub async fn resolve_commit(&self, name: &str) -> GitResult<String> {
        if !name.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(GitError::BadInput(
                "commit names must be hexadecimal".into(),
            ));
        }
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{name}^{{commit}}"),
        ])
        .await
        .map_err(|_| {
            GitError::BadInput("the checkpoint's commit does not exist in the repository".into())
        })
    }

    pub async fn branch_exists(&self, branch: &str) -> bool {
        self.succeeds(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("refs/heads/{branch}"),
        ])
        .await
    }

    /// The commit a branch points at.
    pub async fn branch_head(&self, branch: &str) -> GitResult<String> {
        check_branch_name(branch)?;
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("refs/heads/{branch}^{{commit}}"),
        ])
        .await
        .map_err(|_| GitError::BadInput("the branch does not exist in the repository".into()))
    }

    pub async fn head(&self) -> GitResult<String> {
        self.git(&["rev-parse", "--verify", "HEAD^{commit}"]).await
    }
}

/// Checks a branch name as `git check-ref-format --branch` does, and refuses names that
/// could be taken for options.
pub fn check_branch_name(name: &str) -> GitResult<()> {
    let bad = |why: &str| Err(GitError::BadInput(format!("invalid branch name: {why}")));
    if name.is_empty() || name.len() > 255 {
        return bad("it must be 1 to 255 bytes");
    }
    if name.starts_with('-') {
        return bad("it must not start with '-'");
    }
    if name == "@" || name == "HEAD" {
        return bad("it is reserved");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') || name.contains("//") {
        return bad("misplaced '/' or '.'");
    }
    if name.contains("..") || name.contains("@{") || name.ends_with(".lock") {
        return bad("'..', '@{' and a '.lock' ending are not allowed");
    }
    for c in name.chars() {
        if c.is_control() || c == ' ' || "~^:?*[\\\x7f".contains(c) {
            return bad("it contains a character git does not allow");
        }
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return bad("a component starts with '.' or ends with '.lock'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_branch_name;

    #[test]
    fn branch_names_follow_git_rules() {
        for ok in ["main", "feature/x", "makima/0193-abc", "a.b", "v1.2"] {
            assert!(check_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-f", "--force", "a..b", "a b", "a~1", "x.lock", "a/.b", "/a", "a/", "HEAD",
            "a@{1}", "a:b", "a\\b",
        ] {
            assert!(check_branch_name(bad).is_err(), "{bad}");
        }
    }
}
