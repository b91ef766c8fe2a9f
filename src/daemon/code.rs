//! Code operations on this daemon's worktrees: read from `daemonWork.codeOperations`,
//! run one at a time with `git::steps::Step` (the server's git operations and refusals,
//! confined to the workspace root) and reported with `completeCodeOperation`.
//!
//! Crash safety is "write the intent, reconcile at startup": before a step runs, its
//! operation goes to a journal file `<root>/.makima/daemon/ops/<id>.json` (state
//! `running`); after a DONE report it says `reported` with the commit; it is deleted
//! once the operation is final. Each pass (startup, every doorbell ring and poll) first
//! reconciles the journal against the server's `codeOperation(id:) { status }`:
//!
//! - QUEUED and never reported: run again (a step is safe to re-run) and report;
//! - QUEUED and reported: follow it until it is final;
//! - DONE: delete the entry;
//! - FAILED after this daemon ran the step (the server refused the DONE report, or the
//!   deadline passed): `Step::undo`, then delete the entry.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::Shutdown;
use super::client::{CallError, Client};
use crate::git::GitError;
use crate::git::steps::{Fields, Step};

/// The capability this daemon advertises: it runs code operations.
pub const CODE_CAPABILITY: &str = "code";

const OPS: &str = "query { daemonWork { codeOperations(limit: 20) { id kind commitSha branch savedRef restoreFrom directory worktreePath deadline task { id } } } }";
const STATUS: &str = "query($id: ID!) { codeOperation(id: $id) { id status deadline error } }";
const COMPLETE: &str = "mutation($id: ID!, $s: CodeOperationStatus!, $c: String, $e: String) { completeCodeOperation(input: {codeOperationId: $id, status: $s, commitSha: $c, error: $e}) { codeOperation { id status } } }";

/// How often a reported operation's status is read while following it.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);
/// How long past its deadline a reported operation is followed.
const FOLLOW_GRACE: Duration = Duration::from_secs(10);
/// The deadline assumed when the server gives none (its default timeout).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest error text reported.
const MAX_ERROR: usize = 4000;

/// A code operation as the daemon reads it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Op {
    pub id: String,
    pub kind: String,
    pub commit_sha: String,
    pub branch: Option<String>,
    pub saved_ref: Option<String>,
    pub restore_from: Option<String>,
    pub directory: Option<String>,
    pub worktree_path: Option<String>,
    pub deadline: Option<String>,
    pub task_id: Option<String>,
}

impl Op {
    fn from_api(v: &Value) -> Option<Self> {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Some(Self {
            id: s("id")?,
            kind: s("kind")?,
            commit_sha: s("commitSha").unwrap_or_default(),
            branch: s("branch"),
            saved_ref: s("savedRef"),
            restore_from: s("restoreFrom"),
            directory: s("directory"),
            worktree_path: s("worktreePath"),
            deadline: s("deadline"),
            task_id: v["task"]["id"].as_str().map(str::to_owned),
        })
    }

    fn step(&self) -> Option<Step> {
        Step::of(&Fields {
            kind: &self.kind,
            directory: self.directory.as_deref(),
            commit_sha: &self.commit_sha,
            branch: self.branch.as_deref(),
            saved_ref: self.saved_ref.as_deref(),
            restore_from: self.restore_from.as_deref(),
            worktree_path: self.worktree_path.as_deref(),
        })
    }

    /// When to stop following it: its deadline plus a grace.
    fn follow_until(&self) -> tokio::time::Instant {
        let left = self
            .deadline
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .map(|d| {
                (d.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or(DEFAULT_TIMEOUT);
        tokio::time::Instant::now() + left + FOLLOW_GRACE
    }
}

/// Where a journaled operation stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// The step is about to run, or ran without a report yet.
    Running,
    /// DONE was reported with this commit; the server has not finished it yet.
    Reported { commit: String },
}

/// One journal file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub op: Op,
    #[serde(flatten)]
    pub state: State,
}

/// The journal: one file per unfinished operation under `<root>/.makima/daemon/ops`.
#[derive(Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join(".makima").join("daemon").join("ops"),
        }
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        // Ids are opaque, but only safe file names are written.
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        safe.then(|| self.dir.join(format!("{id}.json")))
    }

    /// Writes the entry durably (a temporary file, fsync, rename).
    pub fn write(&self, entry: &Entry) -> std::io::Result<()> {
        use std::io::Write;
        let path = self.path(&entry.op.id).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "unexpected id")
        })?;
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    pub fn remove(&self, id: &str) {
        if let Some(path) = self.path(id)
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(op = id, error = %e, "cannot delete the journal entry");
        }
    }

    pub fn get(&self, id: &str) -> Option<Entry> {
        let bytes = std::fs::read(self.path(id)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every entry; unreadable files are logged and skipped.
    pub fn entries(&self) -> Vec<Entry> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut entries = vec![];
        for file in dir.filter_map(Result::ok) {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()))
            {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "unreadable journal entry")
                }
            }
        }
        entries
    }
}

/// What `GitError` says, as the FAILED report's text.
pub fn describe(err: &GitError) -> String {
    let text = match err {
        GitError::BadInput(m) => format!("bad input: {m}"),
        GitError::BranchExists => "a branch of that name already exists".to_owned(),
        GitError::Untrusted(m) => format!("{}: {m}", crate::git::UNTRUSTED_REPOSITORY),
        GitError::Failed(m) => format!("git failed: {m}"),
    };
    truncate(text)
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The code-operation worker: one pass per ring of `wake` (and one at start), until the
/// daemon stops.
pub async fn worker(client: Client, root: PathBuf, wake: Arc<Notify>, shutdown: Shutdown) {
    let worker = Worker {
        client,
        root: root.clone(),
        journal: Journal::new(&root),
        following: Arc::new(Mutex::new(HashSet::new())),
        shutdown: shutdown.clone(),
    };
    let mut followers = JoinSet::new();
    loop {
        worker.pass(&mut followers).await;
        while followers.try_join_next().is_some() {}
        tokio::select! {
            _ = wake.notified() => {}
            _ = shutdown.stopped() => break,
        }
        if shutdown.is_stopping() {
            break;
        }
    }
    // Followers stop with the daemon; their journal entries are picked up at the next start.
    followers.shutdown().await;
}

#[derive(Clone)]
struct Worker {
    client: Client,
    root: PathBuf,
    journal: Journal,
    /// Operations a follower watches: the reconciliation leaves them alone.
    following: Arc<Mutex<HashSet<String>>>,
    shutdown: Shutdown,
}

/// How an operation ended, as `codeOperation(id:)` shows it.
enum Seen {
    Queued,
    Done,
    Failed,
    Gone,
}

impl Worker {
    async fn pass(&self, followers: &mut JoinSet<()>) {
        self.reconcile(followers).await;
        if self.shutdown.is_stopping() {
            return;
        }
        let data = match self.client.call(OPS, json!({})).await {
            Ok(data) => data,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the code operations");
                return;
            }
        };
        let ops = data["daemonWork"]["codeOperations"].as_array().cloned();
        for op in ops.unwrap_or_default() {
            if self.shutdown.is_stopping() {
                return;
            }
            let Some(op) = Op::from_api(&op) else {
                continue;
            };
            if self.is_followed(&op.id) {
                continue;
            }
            if let Some(Entry {
                state: State::Reported { .. },
                ..
            }) = self.journal.get(&op.id)
            {
                // Listed although reported: the report did not reach the server? Let the
                // reconciliation handle it next pass.
                continue;
            }
            self.execute(op, followers).await;
        }
    }

    fn is_followed(&self, id: &str) -> bool {
        self.following.lock().unwrap().contains(id)
    }

    /// Settles each journal entry with what the server says of its operation.
    async fn reconcile(&self, followers: &mut JoinSet<()>) {
        for entry in self.journal.entries() {
            if self.shutdown.is_stopping() {
                return;
            }
            let id = entry.op.id.clone();
            if self.is_followed(&id) {
                continue;
            }
            let seen = match self.status(&id).await {
                Ok(seen) => seen,
                Err(e) => {
                    tracing::warn!(op = %id, error = %e, "cannot read a journaled operation");
                    continue;
                }
            };
            match (seen, entry.state) {
                (Seen::Queued, State::Running) => {
                    tracing::warn!(op = %id, "an operation left running: running it again");
                    self.execute(entry.op, followers).await;
                }
                (Seen::Queued, State::Reported { commit }) => {
                    self.follow_in(followers, entry.op, commit);
                }
                (Seen::Done, _) => {
                    tracing::info!(op = %id, "journaled operation DONE");
                    self.journal.remove(&id);
                }
                (Seen::Failed, state) => {
                    let commit = match state {
                        State::Reported { commit } => commit,
                        State::Running => entry.op.commit_sha.clone(),
                    };
                    self.undo(&entry.op, &commit).await;
                }
                (Seen::Gone, _) => {
                    tracing::warn!(op = %id, "journaled operation unknown to the server");
                    self.journal.remove(&id);
                }
            }
        }
    }

    async fn status(&self, id: &str) -> Result<Seen, CallError> {
        match self.client.call(STATUS, json!({ "id": id })).await {
            Ok(data) => Ok(match data["codeOperation"]["status"].as_str() {
                Some("DONE") => Seen::Done,
                Some("FAILED") => Seen::Failed,
                Some(_) => Seen::Queued,
                None => Seen::Gone,
            }),
            Err(e) if e.code() == Some("NOT_FOUND") => Ok(Seen::Gone),
            Err(e) => Err(e),
        }
    }

    /// Runs one operation and reports it; after a DONE report, follows it.
    async fn execute(&self, op: Op, followers: &mut JoinSet<()>) {
        let id = op.id.clone();
        let entry = Entry {
            op: op.clone(),
            state: State::Running,
        };
        if let Err(e) = self.journal.write(&entry) {
            // Without the journal a crash could leave an unrecorded change: refuse.
            let text = format!("the daemon cannot write its journal: {e}");
            tracing::error!(op = %id, error = %text, "not running the operation");
            self.report_failed(&op, &text).await;
            return;
        }
        let Some(step) = op.step() else {
            self.report_failed(&op, "the operation's fields are incomplete")
                .await;
            return;
        };
        tracing::info!(op = %id, kind = %op.kind, task = ?op.task_id, "running a code operation");
        let commit = match step.run(&self.root).await {
            Ok(commit) => commit,
            Err(err) => {
                let text = describe(&err);
                tracing::warn!(op = %id, error = %text, "the code operation failed");
                self.report_failed(&op, &text).await;
                return;
            }
        };
        let vars = json!({ "id": id, "s": "DONE", "c": commit });
        match self
            .client
            .call_retrying(COMPLETE, vars, &self.shutdown)
            .await
        {
            Ok(_) => {
                tracing::info!(op = %id, commit = %commit, "reported DONE");
                let entry = Entry {
                    op: op.clone(),
                    state: State::Reported {
                        commit: commit.clone(),
                    },
                };
                if let Err(e) = self.journal.write(&entry) {
                    tracing::error!(op = %id, error = %e, "cannot update the journal");
                }
                self.follow_in(followers, op, commit);
            }
            Err(e) if e.code() == Some("CONFLICT") => {
                // Reported or finished already: what the server says decides.
                tracing::warn!(op = %id, error = %e, "the DONE report was refused");
                match self.status(&id).await {
                    Ok(Seen::Done) => self.journal.remove(&id),
                    Ok(Seen::Failed) | Ok(Seen::Gone) => self.undo(&op, &commit).await,
                    // Another report is pending: follow it.
                    Ok(Seen::Queued) => self.follow_in(followers, op, commit),
                    Err(_) => {} // the journal keeps it for the next pass
                }
            }
            Err(e) if e.is_transient() => {
                // The daemon is stopping: the journal says `running`; the next start
                // reports again.
                tracing::warn!(op = %id, error = %e, "the DONE report did not get through");
            }
            Err(e) => {
                // NOT_FOUND, FORBIDDEN, BAD_USER_INPUT: the server will not record it.
                tracing::error!(op = %id, error = %e, "the DONE report was refused; undoing");
                self.undo(&op, &commit).await;
            }
        }
    }

    async fn report_failed(&self, op: &Op, error: &str) {
        let vars = json!({ "id": op.id, "s": "FAILED", "e": truncate(error.to_owned()) });
        match self
            .client
            .call_retrying(COMPLETE, vars, &self.shutdown)
            .await
        {
            Ok(_) => {
                tracing::info!(op = %op.id, "reported FAILED");
                self.journal.remove(&op.id);
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(op = %op.id, error = %e, "the FAILED report did not get through")
            }
            Err(e) => {
                tracing::warn!(op = %op.id, error = %e, "the FAILED report was refused");
                if !matches!(self.status(&op.id).await, Ok(Seen::Queued) | Err(_)) {
                    self.journal.remove(&op.id);
                }
            }
        }
    }

    /// Takes the step back and forgets the operation.
    async fn undo(&self, op: &Op, commit: &str) {
        if let Some(step) = op.step() {
            match step.undo(&self.root, commit).await {
                Ok(()) => tracing::warn!(op = %op.id, "operation FAILED on the server: undone"),
                Err(err) => {
                    tracing::error!(op = %op.id, error = %describe(&err), "cannot undo the operation")
                }
            }
        }
        self.journal.remove(&op.id);
    }

    fn follow_in(&self, followers: &mut JoinSet<()>, op: Op, commit: String) {
        self.following.lock().unwrap().insert(op.id.clone());
        let worker = self.clone();
        followers.spawn(async move {
            let id = op.id.clone();
            worker.follow(op, commit).await;
            worker.following.lock().unwrap().remove(&id);
        });
    }

    /// Reads the reported operation's status every 200 ms until it is final (or its
    /// deadline and a grace passed: the journal keeps it for later passes); undoes it if
    /// it ended FAILED.
    async fn follow(&self, op: Op, commit: String) {
        let until = op.follow_until();
        loop {
            match self.status(&op.id).await {
                Ok(Seen::Done) => {
                    tracing::info!(op = %op.id, "operation DONE");
                    self.journal.remove(&op.id);
                    return;
                }
                Ok(Seen::Failed) => {
                    self.undo(&op, &commit).await;
                    return;
                }
                Ok(Seen::Gone) => {
                    self.journal.remove(&op.id);
                    return;
                }
                Ok(Seen::Queued) => {}
                Err(e) => tracing::debug!(op = %op.id, error = %e, "cannot read the operation"),
            }
            if tokio::time::Instant::now() >= until {
                tracing::warn!(op = %op.id, "operation still unfinished past its deadline");
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = self.shutdown.stopped() => return,
            }
        }
    }
}

/// The directory `--exec` runs a task in: `<root>/<worktreePath or repository>` when
/// that is a relative path (the task's code is on this daemon), else the root (no code,
/// or code in the server's workspace, named by an absolute path).
pub fn task_dir(root: &Path, task: &Value) -> Result<PathBuf, String> {
    let rel = task["worktreePath"]
        .as_str()
        .or_else(|| task["repository"].as_str());
    let Some(rel) = rel.filter(|r| !r.is_empty()) else {
        return Ok(root.to_owned());
    };
    let path = Path::new(rel);
    if path.is_absolute() {
        return Ok(root.to_owned());
    }
    let normal = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !normal {
        return Err(format!(
            "the task's directory {rel:?} is not a relative path inside the workspace root"
        ));
    }
    let dir = root.join(path);
    let canonical = dir
        .canonicalize()
        .map_err(|e| format!("the task's directory {rel:?}: {e}"))?;
    if !canonical.starts_with(root) || !canonical.is_dir() {
        return Err(format!(
            "the task's directory {rel:?} is not a directory inside the workspace root"
        ));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_dirs_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("repo/wt")).unwrap();
        let dir = |t: Value| task_dir(&root, &t);
        assert_eq!(dir(json!({})).unwrap(), root);
        assert_eq!(dir(json!({ "repository": "/srv/x" })).unwrap(), root);
        assert_eq!(
            dir(json!({ "repository": "repo" })).unwrap(),
            root.join("repo")
        );
        assert_eq!(
            dir(json!({ "repository": "repo", "worktreePath": "repo/wt" })).unwrap(),
            root.join("repo/wt")
        );
        assert!(dir(json!({ "repository": "../x" })).is_err());
        assert!(dir(json!({ "repository": "missing" })).is_err());
        std::os::unix::fs::symlink("/", root.join("out")).unwrap();
        assert!(dir(json!({ "repository": "out" })).is_err());
    }

    #[test]
    fn journal_entries_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let journal = Journal::new(root.path());
        let entry = Entry {
            op: Op {
                id: "abc-1".into(),
                kind: "RESTORE".into(),
                ..Op::default()
            },
            state: State::Reported {
                commit: "c0ffee".into(),
            },
        };
        journal.write(&entry).unwrap();
        assert_eq!(journal.entries(), vec![entry.clone()]);
        assert_eq!(journal.get("abc-1"), Some(entry));
        journal.remove("abc-1");
        assert!(journal.entries().is_empty());
        assert!(journal.path("../x").is_none());
    }
}
