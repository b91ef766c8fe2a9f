//! Repository and worktree paths of createTask and createContract: canonical, confined
//! to the workspace root (not under `<root>/.makima`), never echoed in errors.

mod common;

use common::TestApp;
use serde_json::{Value, json};

const CREATE_TASK: &str = "mutation($n: String!, $c: ID, $r: String, $w: String) { createTask(input: {name: $n, contractId: $c, repository: $r, worktreePath: $w}) { task { id repository worktreePath } } }";
const CREATE_CONTRACT: &str = "mutation($r: String) { createContract(input: {name: \"c\", repository: $r}) { contract { id repository supervisor { task { repository } } } } }";

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn message(reply: &common::Reply) -> String {
    reply.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn repositories_and_worktrees_inside_the_root() {
    let t = TestApp::new().await;
    let root = t.app.workspace_root.clone();
    let repo = t.git_repo("repo1");
    let repo_s = repo.to_str().unwrap().to_owned();
    assert!(repo.starts_with(&root));
    git(&repo, &["worktree", "add", "-q", "-b", "wt", "../wt1"]);
    let wt = root.join("wt1").canonicalize().unwrap();
    let wt_s = wt.to_str().unwrap().to_owned();

    for (r, w, expected_w) in [
        (json!("repo1"), json!(null), Value::Null),
        (json!(repo_s), json!(null), Value::Null),
        (json!("./repo1/../repo1/"), json!("repo1"), json!(repo_s)),
        (json!("repo1"), json!(repo_s), json!(repo_s)),
        (json!("repo1"), json!("wt1"), json!(wt_s)),
        (json!(repo_s), json!(wt_s), json!(wt_s)),
    ] {
        let data = t.ok(CREATE_TASK, json!({ "n": "t", "r": r, "w": w })).await;
        let task = &data["createTask"]["task"];
        assert_eq!(task["repository"], repo_s.as_str(), "{r} {w}");
        assert_eq!(task["worktreePath"], expected_w, "{r} {w}");
    }
    // A contract's repository, inherited by its tasks.
    let data = t.ok(CREATE_CONTRACT, json!({ "r": "repo1" })).await;
    let c = &data["createContract"]["contract"];
    assert_eq!(c["repository"], repo_s.as_str());
    assert_eq!(c["supervisor"]["task"]["repository"], repo_s.as_str());
    let data = t.ok(CREATE_TASK, json!({ "n": "t", "c": c["id"] })).await;
    assert_eq!(data["createTask"]["task"]["repository"], repo_s.as_str());
    let data = t
        .ok(CREATE_TASK, json!({ "n": "t", "c": c["id"], "w": "wt1" }))
        .await;
    assert_eq!(data["createTask"]["task"]["worktreePath"], wt_s.as_str());
}

#[tokio::test]
async fn refused_paths_share_one_message_that_names_no_path() {
    let t = TestApp::new().await;
    let root = t.app.workspace_root.clone();
    let repo = t.git_repo("repo1");
    t.git_repo("repo2");
    std::fs::create_dir_all(root.join("plain")).unwrap();
    // A git repository outside the root, one under <root>/.makima, and a symlink
    // inside the root to the outside one.
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    git(&outside, &["init", "-q"]);
    t.git_repo(".makima/hidden");
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    std::os::unix::fs::symlink(root.join(".makima/hidden"), root.join("link2")).unwrap();
    let before = t.timeline().await.len();

    let outside_s = outside.to_str().unwrap().to_owned();
    let hidden_s = root.join(".makima/hidden").to_str().unwrap().to_owned();
    let repos = [
        "missing".to_owned(),
        root.join("missing").to_str().unwrap().to_owned(),
        "plain".to_owned(),
        "/etc".to_owned(),
        "/".to_owned(),
        "..".to_owned(),
        outside_s.clone(),
        "../outside".to_owned(),
        "link".to_owned(),
        "link2".to_owned(),
        ".makima/hidden".to_owned(),
        hidden_s.clone(),
        ".makima".to_owned(),
        "".to_owned(),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for r in &repos {
        let reply = t
            .fails("BAD_USER_INPUT", CREATE_TASK, json!({ "n": "t", "r": r }))
            .await;
        let m = message(&reply);
        for word in ["missing", "plain", "etc", "outside", "link", "hidden", "/"] {
            assert!(!m.contains(word), "{r:?}: message echoes the path: {m}");
        }
        messages.insert(m);
        let reply = t
            .fails("BAD_USER_INPUT", CREATE_CONTRACT, json!({ "r": r }))
            .await;
        messages.insert(message(&reply));
    }
    assert_eq!(
        messages.len(),
        1,
        "one message for every refusal: {messages:?}"
    );
    // A NUL is refused in every string before any path is looked at (PostgreSQL cannot
    // store it), with a message that says so and still names no path.
    for query in [CREATE_TASK, CREATE_CONTRACT] {
        let reply = t
            .fails("BAD_USER_INPUT", query, json!({ "n": "t", "r": "repo1\0" }))
            .await;
        assert!(!message(&reply).contains("repo1"), "{}", reply.body);
    }

    // Worktrees must be the repository's own.
    let mut messages = std::collections::BTreeSet::new();
    for w in [
        "plain", "repo2", "missing", "/etc", &outside_s, &hidden_s, "link",
    ] {
        let reply = t
            .fails(
                "BAD_USER_INPUT",
                CREATE_TASK,
                json!({ "n": "t", "r": "repo1", "w": w }),
            )
            .await;
        let m = message(&reply);
        assert!(
            !m.contains('/') && !m.contains("repo2") && !m.contains("plain"),
            "{m}"
        );
        messages.insert(m);
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
    // A worktree needs a repository.
    t.fails(
        "BAD_USER_INPUT",
        CREATE_TASK,
        json!({ "n": "t", "w": "repo1" }),
    )
    .await;
    assert_eq!(t.timeline().await.len(), before, "refusals write nothing");

    // A path another owner's task uses is refused like one that does not exist.
    let missing = message(
        &t.fails(
            "BAD_USER_INPUT",
            CREATE_TASK,
            json!({ "n": "t", "r": "missing" }),
        )
        .await,
    );
    t.ok(CREATE_TASK, json!({ "n": "t", "r": "repo1" })).await;
    let bob = t.key_for("bob").await;
    let repo_s = repo.to_str().unwrap();
    for r in ["repo1", repo_s] {
        let reply = t
            .fails_as(
                &bob,
                "BAD_USER_INPUT",
                CREATE_TASK,
                json!({ "n": "t", "r": r }),
            )
            .await;
        assert_eq!(message(&reply), missing);
        let reply = t
            .fails_as(&bob, "BAD_USER_INPUT", CREATE_CONTRACT, json!({ "r": r }))
            .await;
        assert_eq!(message(&reply), missing);
    }
    // bob may use a repository nobody else uses.
    let data = t
        .ok_as(&bob, CREATE_TASK, json!({ "n": "t", "r": "repo2" }))
        .await;
    assert!(
        data["createTask"]["task"]["repository"]
            .as_str()
            .unwrap()
            .ends_with("repo2")
    );
}
