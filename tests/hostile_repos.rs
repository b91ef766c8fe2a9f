//! Repositories are written by agents: makima must not let a repository's own git
//! configuration run a program or reach outside the workspace root, and must key
//! ownership by the repository, not by the path that names it.

mod common;

use std::path::Path;

use common::TestApp;
use common::hostile::{
    CREATE_CONTRACT, CREATE_TASK, REWIND_TASK, ServerWithEnv, assert_refused, git, marker_script,
    missing_message, outside, snapshot, task_with_checkpoint,
};
use serde_json::json;

fn message(reply: &common::Reply) -> String {
    reply.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A rewind of `task` to `cp` must be refused as bad input and record nothing.
async fn rewind_refused(t: &TestApp, task: &str, cp: &str) {
    let before = t.timeline().await.len();
    let reply = t
        .fails("BAD_USER_INPUT", REWIND_TASK, json!({ "t": task, "c": cp }))
        .await;
    let m = message(&reply);
    assert!(!m.contains('/'), "the refusal names no path: {m}");
    assert_eq!(
        t.timeline().await.len(),
        before,
        "a refused rewind records nothing"
    );
}

#[tokio::test]
async fn core_worktree_pointing_outside_the_root_changes_nothing_there() {
    let t = TestApp::new().await;
    let repo = t.git_repo("repo");
    let elsewhere = outside(&t, "elsewhere");
    std::fs::write(elsewhere.join("precious.txt"), "keep me").unwrap();
    let (task, cp) = task_with_checkpoint(&t, &repo).await;
    let before = snapshot(&elsewhere);

    git(
        &repo,
        &["config", "core.worktree", elsewhere.to_str().unwrap()],
    );
    rewind_refused(&t, &task, &cp).await;
    assert_eq!(
        snapshot(&elsewhere),
        before,
        "nothing outside the root changed"
    );

    // Registering such a repository is refused too.
    let fresh = t.git_repo("fresh");
    git(
        &fresh,
        &["config", "core.worktree", elsewhere.to_str().unwrap()],
    );
    assert_refused(&t, &t.key, "fresh").await;
    assert_eq!(snapshot(&elsewhere), before);
}

/// `.gitattributes: * filter=x` with clean/smudge programs in the repository's config.
fn add_filter(repo: &Path, marker: &Path) {
    std::fs::write(repo.join(".gitattributes"), "* filter=x diff=x merge=x\n").unwrap();
    git(repo, &["add", ".gitattributes"]);
    git(repo, &["commit", "-q", "-m", "attributes"]);
    let cmd = format!("touch '{}'; cat", marker.display());
    for key in ["filter.x.clean", "filter.x.smudge"] {
        git(repo, &["config", key, &cmd]);
    }
    std::fs::write(repo.join("dirty.txt"), "uncommitted").unwrap();
}

#[tokio::test]
async fn a_filter_in_the_repository_config_never_runs() {
    let t = TestApp::new().await;
    let repo = t.git_repo("repo");
    let marker = outside(&t, "markers").join("filter-ran");
    let (task, cp) = task_with_checkpoint(&t, &repo).await;
    add_filter(&repo, &marker);

    rewind_refused(&t, &task, &cp).await;
    assert!(!marker.exists(), "the filter ran as the server");
    assert_eq!(
        std::fs::read_to_string(repo.join("dirty.txt")).unwrap(),
        "uncommitted"
    );

    let fresh = t.git_repo("fresh");
    add_filter(&fresh, &marker);
    assert_refused(&t, &t.key, "fresh").await;
    assert!(!marker.exists());
}

#[tokio::test]
async fn textconv_external_diff_merge_drivers_and_includes_are_refused() {
    let t = TestApp::new().await;
    let marker = outside(&t, "markers").join("ran");
    let cmd = format!("touch '{}'", marker.display());
    let include = outside(&t, "include").join("config");
    std::fs::write(&include, format!("[filter \"x\"]\n\tclean = {cmd}\n")).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("diff.x.textconv", cmd.clone()),
        ("diff.x.command", cmd.clone()),
        ("diff.external", cmd.clone()),
        ("merge.x.driver", cmd.clone()),
        ("include.path", include.to_str().unwrap().to_owned()),
        (
            "includeIf.gitdir:/.path",
            include.to_str().unwrap().to_owned(),
        ),
        ("protocol.file.allow", "always".to_owned()),
    ];
    for (i, (key, value)) in cases.iter().enumerate() {
        let name = format!("repo{i}");
        let repo = t.git_repo(&name);
        std::fs::write(repo.join(".gitattributes"), "* diff=x merge=x\n").unwrap();
        git(&repo, &["config", key, value]);
        assert_refused(&t, &t.key, &name).await;
    }
    // Set after registration: the operation checks again.
    let repo = t.git_repo("late");
    let (task, cp) = task_with_checkpoint(&t, &repo).await;
    git(
        &repo,
        &["config", "include.path", include.to_str().unwrap()],
    );
    rewind_refused(&t, &task, &cp).await;
    assert!(!marker.exists());
}

#[tokio::test]
async fn hooks_and_fsmonitor_never_run() {
    let t = TestApp::new().await;
    let repo = t.git_repo("repo");
    let markers = outside(&t, "markers");
    let (task, cp) = task_with_checkpoint(&t, &repo).await;
    for hook in [
        "post-checkout",
        "reference-transaction",
        "post-index-change",
        "pre-commit",
    ] {
        marker_script(&repo.join(".git/hooks").join(hook), &markers.join(hook));
    }
    let monitor = markers.join("fsmonitor.sh");
    marker_script(&monitor, &markers.join("fsmonitor"));
    git(
        &repo,
        &["config", "core.fsmonitor", monitor.to_str().unwrap()],
    );
    git(&repo, &["config", "core.hooksPath", ".git/hooks"]);

    t.ok(REWIND_TASK, json!({ "t": task, "c": cp })).await;
    assert!(!repo.join("later.txt").exists(), "the rewind ran");
    let ran: Vec<_> = std::fs::read_dir(&markers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sh"))
        .collect();
    assert!(ran.is_empty(), "programs ran: {ran:?}");
}

#[tokio::test]
async fn a_git_file_pointing_outside_the_root_is_refused() {
    let t = TestApp::new().await;
    let external = outside(&t, "external");
    git(&external, &["init", "-q", "-b", "main"]);
    git(&external, &["commit", "-q", "--allow-empty", "-m", "x"]);
    let before = snapshot(&external);
    let root = &t.app.workspace_root;
    std::fs::create_dir_all(root.join("pointer")).unwrap();
    std::fs::write(
        root.join("pointer/.git"),
        format!("gitdir: {}\n", external.join(".git").display()),
    )
    .unwrap();
    assert_refused(&t, &t.key, "pointer").await;

    // A registered linked worktree whose .git file is rewritten afterwards.
    let repo = t.git_repo("repo");
    git(&repo, &["worktree", "add", "-q", "-b", "wt", "../wt"]);
    let wt = root.join("wt").canonicalize().unwrap();
    let data = t.ok(CREATE_TASK, json!({ "r": "repo", "w": "wt" })).await;
    let task = data["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cp = t
        .checkpoint_id(&task, &git(&wt, &["rev-parse", "HEAD"]))
        .await;
    std::fs::write(
        wt.join(".git"),
        format!("gitdir: {}\n", external.join(".git").display()),
    )
    .unwrap();
    rewind_refused(&t, &task, &cp).await;
    assert_eq!(
        snapshot(&external),
        before,
        "the outside repository is untouched"
    );
}

#[tokio::test]
async fn an_empty_or_invalid_git_is_not_a_repository() {
    let t = TestApp::new().await;
    let root = &t.app.workspace_root;
    std::fs::create_dir_all(root.join("emptydir/.git")).unwrap();
    std::fs::create_dir_all(root.join("emptyfile")).unwrap();
    std::fs::write(root.join("emptyfile/.git"), "").unwrap();
    std::fs::create_dir_all(root.join("garbage")).unwrap();
    std::fs::write(root.join("garbage/.git"), "gitdir: nowhere\n").unwrap();
    for name in ["emptydir", "emptyfile", "garbage"] {
        assert_refused(&t, &t.key, name).await;
    }
}

#[tokio::test]
async fn a_linked_worktree_of_another_owners_repository_is_refused() {
    let t = TestApp::new().await;
    let repo = t.git_repo("alice-repo");
    t.task_in_repo(repo.to_str().unwrap(), None).await;
    git(&repo, &["worktree", "add", "-q", "-b", "wt", "../bob-wt"]);
    let branches = git(&repo, &["branch", "--list"]);
    let bob = t.key_for("bob").await;
    assert_refused(&t, &bob, "bob-wt").await;

    // The same before ownership was recorded (a repository used before the upgrade):
    // the first claim sees alice's task on one of the repository's work trees.
    use sea_orm::ConnectionTrait;
    t.app
        .store
        .db()
        .execute_unprepared("DELETE FROM repository_owners")
        .await
        .unwrap();
    assert_refused(&t, &bob, "bob-wt").await;
    assert_eq!(
        git(&repo, &["branch", "--list"]),
        branches,
        "no branch was created"
    );

    // Alice herself may use it, and bob his own repository.
    t.ok(CREATE_TASK, json!({ "r": "bob-wt" })).await;
    t.git_repo("bob-repo");
    t.ok_as(&bob, CREATE_CONTRACT, json!({ "r": "bob-repo" }))
        .await;
    let reply = t
        .fails("BAD_USER_INPUT", CREATE_TASK, json!({ "r": "bob-repo" }))
        .await;
    assert_eq!(message(&reply), missing_message(&t).await);
}

#[tokio::test]
async fn branch_names_of_create_task_are_checked() {
    let t = TestApp::new().await;
    let before = t.timeline().await.len();
    for (b, bb) in [
        (json!("-x"), json!(null)),
        (json!("a..b"), json!(null)),
        (json!(null), json!("-x")),
        (json!(null), json!("a..b")),
        (json!("ok"), json!("a b")),
    ] {
        t.fails("BAD_USER_INPUT", CREATE_TASK, json!({ "b": b, "bb": bb }))
            .await;
    }
    assert_eq!(t.timeline().await.len(), before);
    t.ok(CREATE_TASK, json!({ "b": "feature/x", "bb": "main" }))
        .await;
}

#[tokio::test]
async fn undoing_a_code_rewind_keeps_tracked_files_that_match_gitignore() {
    let t = TestApp::new().await;
    let repo = t.git_repo("repo");
    std::fs::write(repo.join(".gitignore"), ".env\n").unwrap();
    std::fs::write(repo.join(".env"), "committed").unwrap();
    git(&repo, &["add", "-f", ".gitignore", ".env"]);
    git(&repo, &["commit", "-q", "-m", "tracked but ignored"]);
    let task = t.task_in_repo(repo.to_str().unwrap(), None).await;
    t.say(&task, &["m0"]).await;
    t.checkpoint_id(&task, &git(&repo, &["rev-parse", "HEAD"]))
        .await;
    t.say(&task, &["m1"]).await;
    std::fs::write(repo.join(".env"), "local edit").unwrap();

    let d = t
        .ok(
            "mutation($t: ID!) { rewindConversation(input: {taskId: $t, byMessageCount: 1, rewindCode: true}) { codeRewound event { id } } }",
            json!({ "t": task }),
        )
        .await;
    assert_eq!(d["rewindConversation"]["codeRewound"], true);
    assert_eq!(
        std::fs::read_to_string(repo.join(".env")).unwrap(),
        "committed"
    );
    let event = d["rewindConversation"]["event"]["id"].clone();
    t.ok(
        "mutation($id: ID!) { restoreConversation(input: {rewindEventId: $id}) { messageCount } }",
        json!({ "id": event }),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(repo.join(".env")).ok().as_deref(),
        Some("local edit"),
        "the undo brought the edit back"
    );
    // No scratch index is left behind, in the temp dir or the git dir.
    let left: Vec<_> = std::fs::read_dir(repo.join(".git"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("makima-index-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn leftover_scratch_indexes_are_removed() {
    let t = TestApp::new().await;
    let repo = t.git_repo("repo");
    let leftover = repo.join(".git/makima-index-0193aaaa");
    std::fs::write(&leftover, "partial").unwrap();
    let r = makima::git::Repo::confined(&repo, &t.app.workspace_root);
    let young = makima::git::remove_leftover_indexes(&r, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(young, 0, "a young one may belong to a live operation");
    assert!(leftover.exists());
    let removed = makima::git::remove_leftover_indexes(&r, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(!leftover.exists());
    assert!(repo.join(".git/HEAD").exists(), "nothing else is removed");
}

#[tokio::test]
async fn symlinks_and_alternates_in_the_git_dir_are_refused() {
    let t = TestApp::new().await;
    let external = outside(&t, "external");
    git(&external, &["init", "-q", "-b", "main"]);
    git(&external, &["commit", "-q", "--allow-empty", "-m", "x"]);
    let before = snapshot(&external);

    // A reflog directory that lives outside the root: git would append to it.
    let repo = t.git_repo("linked-logs");
    let logs = outside(&t, "logs");
    std::fs::remove_dir_all(repo.join(".git/logs")).unwrap();
    std::os::unix::fs::symlink(&logs, repo.join(".git/logs")).unwrap();
    assert_refused(&t, &t.key, "linked-logs").await;

    // Alternates: another repository's objects would become restorable here.
    let repo = t.git_repo("alternates");
    std::fs::write(
        repo.join(".git/objects/info/alternates"),
        format!("{}\n", external.join(".git/objects").display()),
    )
    .unwrap();
    assert_refused(&t, &t.key, "alternates").await;
    assert_eq!(snapshot(&external), before);
}

#[tokio::test]
async fn two_owners_racing_for_one_repository_cannot_both_win() {
    let t = TestApp::new().await;
    let repo = t.git_repo("shared");
    git(
        &repo,
        &["worktree", "add", "-q", "-b", "wt", "../shared-wt"],
    );
    let bob = t.key_for("bob").await;
    for round in 0..3 {
        let (a, b) = tokio::join!(
            t.post(CREATE_TASK, json!({ "r": "shared" })),
            t.post_as(&bob, CREATE_TASK, json!({ "r": "shared-wt" })),
        );
        let won = [&a, &b].iter().filter(|r| r.code().is_none()).count();
        assert_eq!(won, 1, "round {round}: {} / {}", a.body, b.body);
        for r in [&a, &b] {
            assert!(
                matches!(r.code(), None | Some("BAD_USER_INPUT")),
                "{}",
                r.body
            );
        }
    }
}

#[tokio::test]
async fn git_configuration_in_the_server_environment_never_reaches_git() {
    let t = TestApp::new().await;
    let root = t.dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".gitattributes"), "* filter=x\n").unwrap();
    git(&repo, &["add", ".gitattributes"]);
    git(&repo, &["commit", "-q", "-m", "attributes"]);
    let marker = outside(&t, "markers").join("env-filter-ran");
    let cmd = format!("touch '{}'; cat", marker.display());
    // Configuration passed through the environment (git's GIT_CONFIG_COUNT protocol)
    // and a GIT_DIR naming another repository.
    let external = outside(&t, "external");
    git(&external, &["init", "-q"]);
    let external_git = external.join(".git");
    let server = ServerWithEnv::start(
        &t.url,
        &root,
        &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "filter.x.clean"),
            ("GIT_CONFIG_VALUE_0", &cmd),
            ("GIT_DIR", external_git.to_str().unwrap()),
        ],
    )
    .await;
    let data = server.ok(&t.key, CREATE_TASK, json!({ "r": "repo" })).await;
    let task = data["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let data = server
        .ok(
            &t.key,
            "mutation($t: ID!, $s: String!) { recordCheckpoint(input: {taskId: $t, commitSha: $s, message: \"m\"}) { checkpoint { id } } }",
            json!({ "t": task, "s": head }),
        )
        .await;
    let cp = data["recordCheckpoint"]["checkpoint"]["id"].clone();
    std::fs::write(repo.join("dirty.txt"), "uncommitted").unwrap();
    let data = server
        .ok(&t.key, REWIND_TASK, json!({ "t": task, "c": cp }))
        .await;
    assert_eq!(data["rewindTask"]["codeOperation"]["status"], "DONE");
    assert!(!repo.join("dirty.txt").exists(), "the rewind ran");
    assert!(
        !marker.exists(),
        "a filter from the server's environment ran"
    );
}
