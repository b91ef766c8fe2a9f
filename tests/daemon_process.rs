//! `makima daemon` as a real process against a real `makima serve`: it heartbeats,
//! claims the tasks assigned to it, reports its command's output lines once each and
//! the task's end; restarted after a SIGKILL, it interrupts the task its earlier
//! process left RUNNING, and a resumed run reports its own output without a replay
//! of the first run's.

mod common;

use std::path::Path;

use common::TestApp;
use common::daemon::{Daemon, Owner, daemon_key, eventually, running_in_group};
use common::process::Spawned;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_daemons_report_output_and_end_their_tasks() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    // The daemons' workspaces lie outside the server's.
    let root = tempfile::tempdir().unwrap();

    let key1 = daemon_key(&app.url, "alice", "d1").await;
    let mut d1 = Daemon::start(
        server.addr,
        &key1,
        root.path(),
        Some("echo hello; echo oops 1>&2; exit 3"),
        "d1",
    );
    let d1_id = owner.online("d1").await;
    let failing = owner.create_task("fails", &d1_id).await;
    owner.ends(&failing, "FAILED").await;
    let mut output = owner.output(&failing).await;
    output.sort();
    assert_eq!(output, ["hello", "oops"], "each line once");
    let events = owner.events(&failing).await;
    let streams: Vec<_> = events
        .iter()
        .filter(|(kind, _)| kind == "OUTPUT")
        .map(|(_, d)| (d["text"].as_str().unwrap(), d["stream"].as_str().unwrap()))
        .collect();
    assert!(streams.contains(&("hello", "stdout")), "{events:?}");
    assert!(streams.contains(&("oops", "stderr")), "{events:?}");
    let (kind, last) = events.last().unwrap();
    assert_eq!(
        kind, "ERROR",
        "the exit status is reported last: {events:?}"
    );
    assert_eq!(last["exit"]["code"], 3);

    // A second daemon, with its own command, runs the task assigned to it.
    let key2 = daemon_key(&app.url, "alice", "d2").await;
    let d2_root = root.path().join("d2");
    let mut d2 = Daemon::start(
        server.addr,
        &key2,
        &d2_root,
        Some("echo \"hi $MAKIMA_TASK_NAME $MAKIMA_TASK_PLAN\"; pwd > where"),
        "d2",
    );
    let d2_id = owner.online("d2").await;
    let done = owner.create_task("greets", &d2_id).await;
    owner.ends(&done, "DONE").await;
    assert_eq!(owner.output(&done).await, ["hi greets p"]);
    let cwd = std::fs::read_to_string(d2_root.join("where")).unwrap();
    assert_eq!(
        Path::new(cwd.trim()),
        d2_root.canonicalize().unwrap(),
        "commands run in the workspace root"
    );
    // d1 did not take d2's task, and both heartbeat.
    assert_eq!(owner.output(&failing).await.len(), 2);
    let daemons = owner.daemons().await;
    for name in ["d1", "d2"] {
        assert!(
            daemons.iter().any(|(n, _, s)| n == name && s == "ONLINE"),
            "{daemons:?}"
        );
    }
    let data = server
        .ok(
            &app.key,
            "query($d: ID!) { daemon(id: $d) { version capabilities } }",
            json!({ "d": d1_id }),
        )
        .await;
    assert_eq!(data["daemon"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["daemon"]["capabilities"], json!(["exec"]));

    assert!(d1.terminate().await, "SIGTERM stops the daemon cleanly");
    assert!(d2.terminate().await);
    assert!(server.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_restarts_without_duplicating_output() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let root = tempfile::tempdir().unwrap();
    // Prints three lines, then waits (at most a minute) until the test creates the
    // task's release file, then leaves a file of its own and prints one more.
    let command = "echo one; echo two; echo three; i=0; \
        while [ ! -e \"$MAKIMA_TASK_ID.release\" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
        touch \"$MAKIMA_TASK_ID.ended-$$\"; echo after";
    let key = daemon_key(&app.url, "alice", "d3").await;
    let mut daemon = Daemon::start(server.addr, &key, root.path(), Some(command), "d3");
    let id = owner.online("d3").await;
    let task = owner.create_task("slow", &id).await;
    eventually("three lines reported", || async {
        (owner.output(&task).await.len() >= 3).then_some(())
    })
    .await;
    assert_eq!(owner.status(&task).await, "RUNNING");
    daemon.kill().await;

    // The restarted daemon finds the task its killed process left RUNNING and
    // interrupts it; nothing was reported twice.
    let mut daemon = Daemon::start(server.addr, &key, root.path(), Some(command), "d3'");
    owner.ends(&task, "INTERRUPTED").await;
    assert_eq!(owner.output(&task).await, ["one", "two", "three"]);
    // Let the first run's orphaned shell end.
    std::fs::write(root.path().join(format!("{task}.release")), "").unwrap();

    // Resumed, the task runs again on the daemon: the second run's lines are stored
    // (its batches have keys of their own, not the first run's).
    server
        .ok(
            &app.key,
            "mutation($t: ID!) { resumeTask(input: {taskId: $t}) { task { status } } }",
            json!({ "t": task }),
        )
        .await;
    owner.ends(&task, "DONE").await;
    assert_eq!(
        owner.output(&task).await,
        ["one", "two", "three", "one", "two", "three", "after"]
    );
    // Both runs' shells ended (the first run's, orphaned by the SIGKILL, too).
    let ended = format!("{task}.ended-");
    eventually("both runs' shells ended", || async {
        let n = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&ended)
            })
            .count();
        (n == 2).then_some(())
    })
    .await;
    assert!(daemon.terminate().await);
    assert!(server.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doorbell_reconnects_after_a_server_restart() {
    use common::daemon::{serve_on, terminate};
    use common::process::{serve_command, spawn_listening};

    let app = TestApp::new().await;
    let server_root = app.dir.path().join("server");
    let (mut first, addr) = spawn_listening(serve_command(&app.url, &server_root)).await;
    let root = tempfile::tempdir().unwrap();
    let key = daemon_key(&app.url, "alice", "d4").await;
    // No polling to speak of: only the doorbell (and its reconnections) bring work.
    let mut daemon = Daemon::start_with(
        addr,
        &key,
        root.path(),
        Some("echo ran"),
        "d4",
        &["--poll-secs", "3600"],
    );
    let daemon_id = eventually("daemon d4 ONLINE", || async {
        let data = app
            .ok("{ daemons { nodes { id status } } }", json!({}))
            .await;
        let d = &data["daemons"]["nodes"][0];
        (d["status"] == "ONLINE").then(|| d["id"].as_str().unwrap().to_owned())
    })
    .await;
    let create = "mutation($n: String!, $d: ID) { createTask(input: {name: $n, daemonId: $d}) { task { id } } }";
    let status = |task: String| {
        let app = &app;
        async move {
            let data = app
                .ok(
                    "query($t: ID!) { task(id: $t) { status } }",
                    json!({ "t": task }),
                )
                .await;
            data["task"]["status"].as_str().unwrap().to_owned()
        }
    };
    let before =
        common::process::http_post(addr, &app.key, create, json!({ "n": "a", "d": daemon_id }))
            .await;
    let before = before["data"]["createTask"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the first task DONE", || async {
        (status(before.clone()).await == "DONE").then_some(())
    })
    .await;

    // The server stops; a task is created meanwhile (in this process, on the same
    // database); a new server comes up on the same port.
    assert!(terminate(&mut first).await);
    let during =
        app.ok(create, json!({ "n": "b", "d": daemon_id })).await["createTask"]["task"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let (mut second, again) = spawn_listening(serve_on(&app.url, &server_root, addr)).await;
    assert_eq!(again, addr);
    eventually(
        "the task created while the server was down DONE",
        || async { (status(during.clone()).await == "DONE").then_some(()) },
    )
    .await;
    assert!(daemon.terminate().await);
    assert!(terminate(&mut second).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kills_the_commands_and_interrupts_their_tasks() {
    let app = TestApp::new().await;
    let mut server = Spawned::start(&app.url, &app.dir.path().join("server")).await;
    let owner = Owner {
        server: &server,
        key: &app.key,
    };
    let root = tempfile::tempdir().unwrap();
    let key = daemon_key(&app.url, "alice", "d5").await;
    // The command would outlive the test's patience by far; only the daemon ends it.
    let mut daemon = Daemon::start(
        server.addr,
        &key,
        root.path(),
        Some("echo $$ > pgid; echo started; sleep 300; echo never"),
        "d5",
    );
    let id = owner.online("d5").await;
    let task = owner.create_task("long", &id).await;
    eventually("the command started", || async {
        (owner.output(&task).await == ["started"]).then_some(())
    })
    .await;
    let pgid = std::fs::read_to_string(root.path().join("pgid")).unwrap();
    let pgid: u32 = pgid.trim().parse().unwrap();
    assert!(running_in_group(pgid) >= 1, "the command runs");
    assert!(daemon.terminate().await, "the daemon exits 0 on SIGTERM");
    assert_eq!(owner.status(&task).await, "INTERRUPTED");
    let events = owner.events(&task).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].0, "ERROR");
    // The command ran in a process group of its own (the shell's pid), now empty.
    eventually("the command's process group gone", || async {
        (running_in_group(pgid) == 0).then_some(())
    })
    .await;
    assert!(server.terminate().await);
}
