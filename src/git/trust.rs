//! Deciding whether a directory is a repository makima may run git in: where git
//! would read and write (its git dir, common dir and work tree), and whether the
//! repository's own configuration names programs or paths that the `-c` overrides of
//! `command` cannot switch off (families keyed by arbitrary names).

use std::path::{Path, PathBuf};

use super::{GitError, GitResult, command};

/// Where git works for one work tree, every path canonical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The work tree (`--show-toplevel`): the directory that was inspected.
    pub top_level: PathBuf,
    /// This work tree's git dir (`<top>/.git`, or `<common>/worktrees/<name>`).
    pub git_dir: PathBuf,
    /// The repository's shared git dir: one per repository, whatever work tree names
    /// it, so ownership is keyed by it.
    pub common_dir: PathBuf,
}

fn untrusted(why: &str) -> GitError {
    GitError::Untrusted(why.to_owned())
}

/// Configuration keys (lower-case; subsection names are case-sensitive in git, so
/// the checks match on the first and last parts) that make a repository untrusted.
fn forbidden_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let first = key.split('.').next().unwrap_or("");
    let last = key.rsplit('.').next().unwrap_or("");
    let parts = key.split('.').count();
    match first {
        // Includes can pull in any of the below from a file outside the repository.
        "include" | "includeif" => true,
        // Clean/smudge/process programs, named by attributes (in-tree .gitattributes
        // or info/attributes) and defined here.
        "filter" => true,
        // `<name>.allow=always` would re-enable a transport or remote helper.
        "protocol" => true,
        "core" => last == "worktree",
        "diff" => last == "external" || (parts >= 3 && matches!(last, "command" | "textconv")),
        "merge" => parts >= 3 && last == "driver",
        _ => false,
    }
}

/// Keys of the repository's own configuration files (local and worktree scope; system
/// and global are off), read without following includes.
async fn config_keys(dir: &Path) -> GitResult<Vec<String>> {
    let out = command::output(
        dir,
        &["config", "--list", "--no-includes", "--show-scope", "-z"],
        &[],
    )
    .await?;
    if !out.status.success() {
        return Err(untrusted("its configuration cannot be read"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split('\0');
    let mut keys = Vec::new();
    while let (Some(scope), Some(entry)) = (fields.next(), fields.next()) {
        if scope != "command" {
            keys.push(entry.split('\n').next().unwrap_or("").to_owned());
        }
    }
    Ok(keys)
}

fn canonical(p: &str) -> GitResult<PathBuf> {
    Path::new(p)
        .canonicalize()
        .map_err(|_| untrusted("a git path does not resolve"))
}

/// The canonical git dir, common dir and top level of `dir` as git itself resolves
/// them (with the hardened invocation).
async fn resolve(dir: &Path) -> GitResult<Layout> {
    let out = command::output(
        dir,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--absolute-git-dir",
            "--git-common-dir",
            "--show-toplevel",
        ],
        &[],
    )
    .await?;
    if !out.status.success() {
        return Err(untrusted("not a git work tree"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let [git_dir, common_dir, top_level] = lines.as_slice() else {
        return Err(untrusted("unexpected rev-parse output"));
    };
    Ok(Layout {
        git_dir: canonical(git_dir)?,
        common_dir: canonical(common_dir)?,
        top_level: canonical(top_level)?,
    })
}

/// Checks that the layout is what git makes itself, so that no file written by an
/// agent can redirect it: a main work tree has a `.git` directory that is its common
/// dir; a linked one has a `.git` file naming `<common>/worktrees/<name>`, whose
/// `gitdir` file points back at it (git's own two-way link), and that common dir is
/// the one physically holding the entry (a `commondir` file cannot send it elsewhere).
fn check_shape(dir: &Path, layout: &Layout) -> GitResult<()> {
    if layout.top_level != dir {
        return Err(untrusted("the work tree is not the directory given"));
    }
    let dot_git = dir.join(".git");
    let meta = std::fs::symlink_metadata(&dot_git).map_err(|_| untrusted("no .git"))?;
    if meta.is_dir() {
        if layout.git_dir != dot_git || layout.common_dir != dot_git {
            return Err(untrusted("the .git directory is not the git dir"));
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Err(untrusted(".git is neither a directory nor a file"));
    }
    let entries = layout.git_dir.parent();
    let in_worktrees = entries.is_some_and(|p| p.file_name() == Some("worktrees".as_ref()));
    if !in_worktrees || entries.and_then(Path::parent) != Some(layout.common_dir.as_path()) {
        return Err(untrusted("a .git file that is not a linked work tree"));
    }
    let back = std::fs::read_to_string(layout.git_dir.join("gitdir"))
        .map_err(|_| untrusted("a linked work tree without its back link"))?;
    let back = Path::new(back.trim())
        .canonicalize()
        .map_err(|_| untrusted("a broken back link"))?;
    if back != dot_git {
        return Err(untrusted("a linked work tree that belongs elsewhere"));
    }
    Ok(())
}

/// Whether `p` is inside `root` and outside makima's private `<root>/.makima`, except
/// its server-made work trees when `allow_server_worktree`.
fn confined(root: &Path, p: &Path, allow_server_worktree: bool) -> bool {
    let private = root.join(".makima");
    p.starts_with(root)
        && (!p.starts_with(&private)
            || (allow_server_worktree && p.starts_with(private.join("worktrees"))))
}

/// Refuses symbolic links inside the git dirs (a symlinked `objects`, `refs` or reflog
/// would make git write outside the root). Loose objects and packs are not walked: git
/// only reads existing ones and creates new files beside them.
fn check_no_symlinks(dir: &Path) -> GitResult<()> {
    let objects = dir.join("objects");
    // Hooks never run (core.hooksPath) and git never writes there; hook managers
    // commonly symlink them.
    let hooks = dir.join("hooks");
    let skipped =
        |p: &Path| p.parent() == Some(objects.as_path()) && p.file_name() != Some("info".as_ref());
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|_| untrusted("unreadable git dir"))?;
        for entry in entries {
            let entry = entry.map_err(|_| untrusted("unreadable git dir"))?;
            seen += 1;
            if seen > 200_000 {
                return Err(untrusted("the git dir is too large to check"));
            }
            let kind = entry
                .file_type()
                .map_err(|_| untrusted("unreadable git dir"))?;
            let path = entry.path();
            if path == hooks {
                continue;
            }
            if kind.is_symlink() {
                return Err(untrusted("a symbolic link inside the git dir"));
            }
            if kind.is_dir() && !skipped(&path) {
                stack.push(path);
            }
        }
    }
    Ok(())
}

/// Refuses alternates: they would let a repository read another one's objects (a
/// checkpoint could then restore someone else's code).
fn check_no_alternates(common_dir: &Path) -> GitResult<()> {
    let file = common_dir.join("objects/info/alternates");
    match std::fs::read_to_string(&file) {
        Ok(text)
            if text
                .lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#')) =>
        {
            Err(untrusted("object alternates"))
        }
        _ => Ok(()),
    }
}

/// Inspects the work tree at `dir` (canonical): its layout must be git's own, its
/// configuration free of program- and path-redirecting keys, its git dirs free of
/// symbolic links and alternates, and (when `root` is given) every path inside the
/// root. Returns the layout.
pub async fn inspect(dir: &Path, root: Option<&Path>) -> GitResult<Layout> {
    let layout = resolve(dir).await?;
    check_shape(dir, &layout)?;
    if let Some(root) = root
        && !(confined(root, &layout.top_level, true)
            && confined(root, &layout.git_dir, false)
            && confined(root, &layout.common_dir, false))
    {
        return Err(untrusted("outside the workspace root"));
    }
    if let Some(key) = config_keys(dir).await?.iter().find(|k| forbidden_key(k)) {
        return Err(GitError::Untrusted(format!("configuration key {key}")));
    }
    check_no_alternates(&layout.common_dir)?;
    check_no_symlinks(&layout.common_dir)?;
    if !layout.git_dir.starts_with(&layout.common_dir) {
        check_no_symlinks(&layout.git_dir)?;
    }
    Ok(layout)
}

/// The canonical paths of every work tree of the repository (`git worktree list`).
pub async fn worktrees(dir: &Path) -> GitResult<Vec<PathBuf>> {
    let out = command::run(dir, &["worktree", "list", "--porcelain", "-z"], &[]).await?;
    Ok(out
        .split('\0')
        .filter_map(|f| f.strip_prefix("worktree "))
        .filter_map(|p| Path::new(p).canonicalize().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::forbidden_key;

    #[test]
    fn keys_that_run_programs_or_move_paths_are_forbidden() {
        for bad in [
            "filter.x.clean",
            "filter.lfs.process",
            "filter.x.required",
            "diff.x.textconv",
            "diff.Foo.command",
            "diff.external",
            "merge.x.driver",
            "core.worktree",
            "include.path",
            "includeIf.gitdir:/x/.path",
            "protocol.file.allow",
            "protocol.allow",
        ] {
            assert!(forbidden_key(bad), "{bad}");
        }
        for ok in [
            "core.bare",
            "core.filemode",
            "diff.renames",
            "diff.x.binary",
            "merge.ff",
            "user.name",
            "remote.origin.url",
            "core.fsmonitor",
        ] {
            assert!(!forbidden_key(ok), "{ok}");
        }
    }
}
