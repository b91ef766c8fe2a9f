//! Hostile repositories: what an agent could leave in a repository under the workspace
//! root, and ways to see that makima touched nothing outside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::TestApp;

pub const REWIND_TASK: &str =
    "mutation($t: ID!, $c: ID!) { rewindTask(input: {taskId: $t, checkpointId: $c}) {
    task { id } codeOperation { kind status commitSha savedRef } } }";
pub const CREATE_TASK: &str = "mutation($r: String, $w: String, $b: String, $bb: String) { createTask(input: {name: \"t\", repository: $r, worktreePath: $w, branch: $b, baseBranch: $bb}) { task { id repository worktreePath } } }";
pub const CREATE_CONTRACT: &str = "mutation($r: String) { createContract(input: {name: \"c\", repository: $r}) { contract { id } } }";

/// Runs git as a person would (their own configuration applies, hooks and filters run).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A directory next to the workspace root (outside it), created empty.
pub fn outside(t: &TestApp, name: &str) -> PathBuf {
    let dir = t.dir.path().join("outside").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// Every file below `dir` (the `.git` directory included) with its content.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    files
}

/// The message of a repository refusal for a path that does not exist: every other
/// refusal must look the same.
pub async fn missing_message(t: &TestApp) -> String {
    let reply = t
        .fails(
            "BAD_USER_INPUT",
            CREATE_TASK,
            json!({ "r": "no-such-repo" }),
        )
        .await;
    reply.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asserts that naming `repository` in createTask and createContract is refused with
/// the same message as a path that does not exist, and records nothing.
pub async fn assert_refused(t: &TestApp, key: &str, repository: &str) {
    let missing = missing_message(t).await;
    let before = t.timeline_as(key).await.len();
    for q in [CREATE_TASK, CREATE_CONTRACT] {
        let reply = t
            .fails_as(key, "BAD_USER_INPUT", q, json!({ "r": repository }))
            .await;
        assert_eq!(
            reply.body["errors"][0]["message"].as_str().unwrap(),
            missing,
            "{repository}"
        );
    }
    assert_eq!(
        t.timeline_as(key).await.len(),
        before,
        "a refusal records nothing"
    );
}

/// A task in `repo` with a checkpoint at its current HEAD, then one more commit: a
/// rewind to that checkpoint has work to do. Returns (task id, checkpoint id).
pub async fn task_with_checkpoint(t: &TestApp, repo: &Path) -> (String, String) {
    let task = t.task_in_repo(repo.to_str().unwrap(), None).await;
    let head = git(repo, &["rev-parse", "HEAD"]);
    let cp = t.checkpoint_id(&task, &head).await;
    std::fs::write(repo.join("later.txt"), "later").unwrap();
    git(repo, &["add", "later.txt"]);
    git(repo, &["commit", "-q", "-m", "later"]);
    (task, cp)
}

/// Writes an executable shell script that creates `marker` when run.
pub fn marker_script(path: &Path, marker: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(
        path,
        format!("#!/bin/sh\ntouch '{}'\ncat\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `makima serve` as a separate process with extra environment variables (what an
/// operator's shell might export), on an ephemeral port; killed on drop.
pub struct ServerWithEnv {
    pub addr: std::net::SocketAddr,
    _child: tokio::process::Child,
}

impl ServerWithEnv {
    pub async fn start(database_url: &str, root: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = super::process::serve_command(database_url, root);
        cmd.envs(env.iter().copied());
        let (child, addr) = super::process::spawn_listening(cmd).await;
        Self {
            addr,
            _child: child,
        }
    }

    /// Runs an operation that must succeed; returns its `data`.
    pub async fn ok(
        &self,
        key: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let body = super::process::http_post(self.addr, key, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }
}
