//! The one way makima starts git: a clean environment, no system or global
//! configuration, and command-line overrides for every setting with a fixed name that
//! could run a program or send git outside the repository (the list and its reasons are
//! in the module documentation of `git` and in docs/git-safety.md).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use super::{GitError, GitResult};

/// `-c` overrides given to every git invocation. Command-line configuration wins over
/// the repository's own, so a repository cannot turn these back on.
pub const OVERRIDES: &[&str] = &[
    // Programs git would run.
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=:",
    "sequence.editor=:",
    "core.askPass=",
    "credential.helper=",
    "core.alternateRefsCommand=",
    "uploadpack.packObjectsHook=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "gpg.program=false",
    "submodule.recurse=false",
    "gc.auto=0",
    "maintenance.auto=false",
    // Every transport off: no ssh (core.sshCommand), proxy (core.gitProxy), ext:: or
    // remote-helper program can start. A repository's `protocol.<name>.allow` would win
    // over this, which is why `trust` refuses any `protocol.*` key.
    "protocol.allow=never",
    // Files read from outside the repository (a fifo there would hang git).
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    // Identity of the commits makima writes (saved states).
    "user.name=makima",
    "user.email=makima@localhost",
];

/// The longest a single git invocation may run; a repository that makes git block
/// (a fifo, a huge tree) must not hold a task's lock for ever.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Builds `git -C dir <overrides> <args>` with a cleared environment plus `env`.
fn command(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.env_clear();
    // PATH is kept so that git finds its own helpers (and so a deployment may wrap git).
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("LANG", "C")
        .env("LC_ALL", "C")
        .env("HOME", "/nonexistent")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_OPTIONAL_LOCKS", "0");
    // Discovery stops at `dir`: git must never fall back to a repository around it.
    if let Some(parent) = dir.parent() {
        cmd.env("GIT_CEILING_DIRECTORIES", parent);
    }
    cmd.arg("--no-pager").arg("-C").arg(dir);
    for o in OVERRIDES {
        cmd.arg("-c").arg(o);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs git and returns its output, whatever its exit status.
pub async fn output(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> GitResult<Output> {
    let run = command(dir, args, env).output();
    match tokio::time::timeout(TIMEOUT, run).await {
        Ok(out) => out.map_err(|e| GitError::Failed(format!("cannot run git: {e}"))),
        Err(_) => Err(GitError::Failed(format!(
            "git {} took longer than {TIMEOUT:?}",
            args.first().copied().unwrap_or("")
        ))),
    }
}

/// Runs git; a failure carries git's stderr (for the log only).
pub async fn run(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> GitResult<String> {
    let out = output(dir, args, env).await?;
    if !out.status.success() {
        return Err(GitError::Failed(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
