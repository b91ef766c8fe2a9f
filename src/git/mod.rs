//! Code operations with the real `git`, on repositories that agents write: makima
//! treats every repository as untrusted input. Names that reach git are checked first
//! (`names`), so no input can become an option; git runs without a shell; and a
//! repository's own configuration must not be able to run a program or make git read
//! or write outside the workspace root. How (docs/git-safety.md says the same for
//! operators):
//!
//! * **Environment** (`command`): cleared, then only `PATH`, `LANG`/`LC_ALL=C`,
//!   `HOME=/nonexistent`, `GIT_CONFIG_NOSYSTEM=1`, `GIT_CONFIG_GLOBAL=/dev/null`,
//!   `GIT_ATTR_NOSYSTEM=1`, `GIT_TERMINAL_PROMPT=0`, `GIT_NO_REPLACE_OBJECTS=1`,
//!   `GIT_OPTIONAL_LOCKS=0` and `GIT_CEILING_DIRECTORIES=<parent of the work tree>`
//!   (discovery never climbs into a repository around it). No inherited `GIT_*`
//!   variable (`GIT_DIR`, `GIT_CONFIG_PARAMETERS`, `GIT_SSH_COMMAND`, `GIT_EXTERNAL_DIFF`,
//!   `GIT_ALTERNATE_OBJECT_DIRECTORIES`, `GIT_TRACE*`, …) survives; trace2 settings are
//!   read only from system and global configuration, which are off. Every invocation
//!   has a timeout.
//! * **Overrides** (`command::OVERRIDES`, `-c` beats repository configuration) for the
//!   settings with fixed names that run programs: `core.hooksPath=/dev/null` (every
//!   hook, including reference-transaction and post-checkout), `core.fsmonitor=false`,
//!   `core.pager=cat` (and `--no-pager`; `pager.<cmd>` never applies to a pipe),
//!   `core.editor=:` and `sequence.editor=:` (git's no-op editor), `core.askPass=`,
//!   `credential.helper=`, `core.alternateRefsCommand=`, `uploadpack.packObjectsHook=`,
//!   `commit.gpgSign=false`, `tag.gpgSign=false`, `gpg.program=false` (signing runs
//!   `gpg.*.program`), `submodule.recurse=false` (no recursion into submodules, whose
//!   configuration makima never inspected), `gc.auto=0`, `maintenance.auto=false`,
//!   and `protocol.allow=never`, which stops every transport and with it
//!   `core.sshCommand`, `core.gitProxy`, `ext::` and remote helpers. Files read from
//!   outside the repository: `core.attributesFile=/dev/null`,
//!   `core.excludesFile=/dev/null`.
//! * **Refusals** (`trust::inspect`, at registration and again before every
//!   operation, since an agent may change the repository at any time) for what no
//!   fixed override can reach:
//!   - configuration keys: `filter.*` (clean/smudge/process programs, named by
//!     attributes from the in-tree `.gitattributes` or `info/attributes`, which only
//!     name drivers the configuration must define), `diff.<driver>.command`,
//!     `diff.<driver>.textconv`, `diff.external`, `merge.<driver>.driver`,
//!     `include.*`/`includeIf.*` (could bring any of these in from anywhere),
//!     `protocol.*` (a `protocol.<name>.allow` beats `protocol.allow`) and
//!     `core.worktree` (moves the work tree anywhere);
//!   - a layout git did not make itself: the work tree must be the directory named;
//!     a main work tree has a `.git` directory that is its git and common dir; a linked
//!     one a `.git` file naming `<common>/worktrees/<name>`, whose `gitdir` points back,
//!     under the common dir that physically holds it; an empty or invalid `.git` is
//!     not a repository;
//!   - with the workspace root known: the git dir, common dir and work tree must be
//!     inside it and outside `<root>/.makima` (server-made work trees excepted);
//!   - symbolic links inside the git dirs (a linked `objects`, `refs` or reflog would
//!     make git write outside the root) and object alternates (reads of another
//!     repository's objects).
//!
//! Ownership is keyed by the canonical common dir (`Layout::common_dir`), the one
//! thing every work tree of a repository shares.

mod command;
mod names;
mod ops;
mod scratch;
pub mod steps;
mod trust;

use std::path::{Path, PathBuf};

pub use names::check_branch_name;
pub use ops::{
    add_worktree, create_branch, delete_branch_at, remove_worktree, restore, undo_restore,
};
pub use scratch::{remove_leftover_indexes, remove_legacy_temp_indexes};
pub use trust::Layout;

/// Why a git step failed, in the API's terms.
#[derive(Debug)]
pub enum GitError {
    /// The input names something git cannot use (bad branch name, unknown commit).
    BadInput(String),
    /// The branch to create exists already.
    BranchExists,
    /// The repository is not one makima may run git in (see the module documentation);
    /// the reason is for the log only.
    Untrusted(String),
    /// Anything else (I/O, a git failure); details for the log only.
    Failed(String),
}

/// What a client is told about a repository makima refuses to run git in: never a
/// path, nor which rule it broke.
pub const UNTRUSTED_REPOSITORY: &str = "the repository is not a git repository makima can use: it must be inside the workspace root, and its configuration must not run programs or point outside the root";

impl From<GitError> for crate::error::AppError {
    fn from(err: GitError) -> Self {
        match err {
            GitError::BadInput(m) => Self::BadInput(m),
            GitError::BranchExists => Self::Conflict("a branch of that name already exists".into()),
            GitError::Untrusted(why) => {
                tracing::warn!(%why, "refused a repository");
                Self::BadInput(UNTRUSTED_REPOSITORY.into())
            }
            GitError::Failed(detail) => Self::Internal(format!("git: {detail}")),
        }
    }
}

pub type GitResult<T> = Result<T, GitError>;

/// A git working tree (a repository's main worktree or a linked one).
#[derive(Clone, Debug)]
pub struct Repo {
    pub dir: PathBuf,
    /// The workspace root the repository must stay inside, when the caller knows it.
    pub root: Option<PathBuf>,
}

impl Repo {
    /// A work tree; operations check its layout and configuration but, without a root,
    /// not where it lives (see `confined`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            root: None,
        }
    }

    /// A work tree that must stay inside the canonical workspace `root`.
    pub fn confined(dir: impl Into<PathBuf>, root: &Path) -> Self {
        Self {
            dir: dir.into(),
            root: Some(root.to_path_buf()),
        }
    }

    /// Checks that git may run here (module documentation) and returns where git works.
    pub async fn check(&self) -> GitResult<Layout> {
        let dir = self
            .dir
            .canonicalize()
            .map_err(|_| GitError::Untrusted("the work tree does not exist".into()))?;
        trust::inspect(&dir, self.root.as_deref()).await
    }

    /// The canonical paths of all work trees of this repository.
    pub async fn worktrees(&self) -> GitResult<Vec<PathBuf>> {
        trust::worktrees(&self.dir).await
    }

    /// Runs git with `args` in this worktree; returns trimmed stdout.
    pub async fn git(&self, args: &[&str]) -> GitResult<String> {
        self.git_env(args, &[]).await
    }

    /// Runs git with extra environment variables (the only ones git sees besides the
    /// hardened set).
    pub async fn git_env(&self, args: &[&str], env: &[(&str, &Path)]) -> GitResult<String> {
        command::run(&self.dir, args, env).await
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

    /// The branch checked out, if any (none on a detached HEAD).
    pub async fn current_branch(&self) -> Option<String> {
        self.git(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .await
            .ok()
    }

    pub async fn head(&self) -> GitResult<String> {
        self.git(&["rev-parse", "--verify", "HEAD^{commit}"]).await
    }

    /// The commit that `revision` (a ref makima wrote, such as a saved state, possibly
    /// with a suffix like `^1`) names; an error when it names none.
    pub async fn commit_of(&self, revision: &str) -> GitResult<String> {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{revision}^{{commit}}"),
        ])
        .await
    }
}
