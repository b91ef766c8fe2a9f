//! `TestApp`: a real makima on a fresh database per test, driven through its HTTP
//! router in process.
//!
//! The database is SQLite (a file in a temporary directory) unless
//! `MAKIMA_TEST_DATABASE_URL` names a PostgreSQL server (`postgres://user@host:port`):
//! then each test creates its own database there and drops it afterwards.

#![allow(dead_code)]

pub mod browser;
pub mod crash;
pub mod daemon;
pub mod fuzz;
pub mod horizon;
pub mod hostile;
pub mod process;
pub mod slow;
pub mod ws;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use makima::domain::App;
use makima::domain::keys;
use makima::server::{AppState, router};
use makima::store::{Store, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    /// The state behind `router` (its live fan-out and WebSocket registry).
    pub state: AppState,
    /// The database URL (SQLite file or this test's PostgreSQL database).
    pub url: String,
    pub app: App,
    /// The API key of the default owner ("alice").
    pub key: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The first error's `extensions.code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
}

fn pg_base() -> Option<String> {
    std::env::var("MAKIMA_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

async fn admin_exec(base: &str, sql: &str) {
    let admin = Store::connect(&StoreOptions {
        url: format!("{base}/postgres"),
        max_connections: 1,
    })
    .await
    .expect("connect to PostgreSQL");
    use sea_orm::ConnectionTrait;
    admin.db().execute_unprepared(sql).await.expect(sql);
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_pool(8).await
    }

    pub async fn with_pool(pool: u32) -> Self {
        Self::configured(pool, |_| {}).await
    }

    /// A test app whose domain settings `configure` changes before it serves.
    pub async fn configured(pool: u32, configure: impl FnOnce(&mut makima::domain::App)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, pg) = match pg_base() {
            Some(base) => {
                let base = base.trim_end_matches('/').to_owned();
                let name = format!("makima_test_{}", uuid::Uuid::now_v7().simple());
                admin_exec(&base, &format!("CREATE DATABASE {name}")).await;
                (format!("{base}/{name}"), Some((base, name)))
            }
            None => (
                format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
                None,
            ),
        };
        let workspace = dir.path().join("workspace");
        let mut app = makima::open(&url, pool, &workspace)
            .await
            .expect("open makima");
        configure(&mut app);
        let key = keys::create(&app.store, "alice").await.expect("key").key;
        let state = AppState::new(app.clone());
        let router = router(state.clone());
        Self {
            router,
            state,
            url,
            app,
            key,
            dir,
            pg,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// A key for another owner.
    pub async fn key_for(&self, owner: &str) -> String {
        keys::create(&self.app.store, owner).await.expect("key").key
    }

    pub async fn request(&self, req: Request<Body>) -> Reply {
        let res = self.router.clone().oneshot(req).await.expect("router");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = to_bytes(res.into_body(), usize::MAX).await.expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn post_as(&self, key: &str, query: &str, variables: Value) -> Reply {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/graphql")
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(body))
            .unwrap();
        self.request(req).await
    }

    /// Runs an operation as the default owner and returns the reply.
    pub async fn post(&self, query: &str, variables: Value) -> Reply {
        self.post_as(&self.key, query, variables).await
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        self.ok_as(&self.key.clone(), query, variables).await
    }

    pub async fn ok_as(&self, key: &str, query: &str, variables: Value) -> Value {
        let reply = self.post_as(key, query, variables).await;
        assert!(
            reply.body.get("errors").is_none(),
            "unexpected errors: {}",
            reply.body
        );
        assert_eq!(reply.status, StatusCode::OK);
        reply.body["data"].clone()
    }

    /// Runs an operation that must fail with `code`; returns the reply.
    pub async fn fails(&self, code: &str, query: &str, variables: Value) -> Reply {
        let reply = self.post(query, variables).await;
        assert_eq!(
            reply.code(),
            Some(code),
            "expected {code}, got {}",
            reply.body
        );
        reply
    }

    // Shortcuts for the common fixtures.

    pub async fn create_contract(&self, name: &str) -> (String, String) {
        let data = self
            .ok(
                "mutation($n: String!) { createContract(input: {name: $n}) { contract { id supervisor { task { id } } } } }",
                json!({ "n": name }),
            )
            .await;
        let c = &data["createContract"]["contract"];
        (
            c["id"].as_str().unwrap().into(),
            c["supervisor"]["task"]["id"].as_str().unwrap().into(),
        )
    }

    pub async fn create_task(&self, name: &str, contract_id: Option<&str>) -> String {
        let data = self
            .ok(
                "mutation($n: String!, $c: ID) { createTask(input: {name: $n, contractId: $c}) { task { id } } }",
                json!({ "n": name, "c": contract_id }),
            )
            .await;
        data["createTask"]["task"]["id"].as_str().unwrap().into()
    }

    pub async fn append_messages(&self, task_id: &str, n: usize) -> Value {
        let messages: Vec<Value> = (0..n)
            .map(|i| json!({ "role": "ASSISTANT", "content": [{ "type": "text", "text": format!("m{i}") }] }))
            .collect();
        self.ok(
            "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount messages { index } } }",
            json!({ "t": task_id, "m": messages }),
        )
        .await
    }

    pub async fn append_events(&self, task_id: &str, n: usize) -> Value {
        let events: Vec<Value> = (0..n)
            .map(|i| json!({ "type": "OUTPUT", "data": { "i": i } }))
            .collect();
        self.ok(
            "mutation($t: ID!, $e: [TaskEventInput!]!) { appendTaskEvents(input: {taskId: $t, events: $e}) { events { sequence } } }",
            json!({ "t": task_id, "e": events }),
        )
        .await
    }

    /// The types of the timeline, oldest first (first 100).
    /// Each of `tasks` gets `per_task` appends from its own concurrent writer,
    /// alternating one message and two task events; each append writes one history
    /// event.
    pub async fn interleaved_appends(&self, tasks: &[String], per_task: usize) {
        futures_util::future::join_all(tasks.iter().map(|t| async move {
            for j in 0..per_task {
                if j % 2 == 0 {
                    self.append_messages(t, 1).await;
                } else {
                    self.append_events(t, 2).await;
                }
            }
        }))
        .await;
    }

    pub async fn timeline_types(&self) -> Vec<String> {
        let data = self
            .ok("{ timeline(first: 100) { nodes { type } } }", json!({}))
            .await;
        data["timeline"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Drops a test database from a runtime of its own, for `Drop`, which cannot await.
pub fn drop_database_blocking(base: String, name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(admin_exec(
            &base,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ));
    })
    .join();
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            drop_database_blocking(base, name);
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers added for the integration suite (transport, pagination, lifecycles, …).
// ---------------------------------------------------------------------------

/// The Relay arguments as operation variables and as field arguments.
pub const PAGE_VARS: &str = "$first: Int, $after: String, $last: Int, $before: String";
pub const PAGE_ARGS: &str = "first: $first, after: $after, last: $last, before: $before";
pub const PAGE_INFO: &str = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";

/// Percent-encodes a query-string component.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Follows a path of object keys (and array indexes given as numbers) into a value.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, k| match k.parse::<usize>() {
        Ok(i) if v.is_array() => &v[i],
        _ => &v[*k],
    })
}

/// The `id`s of a list of nodes.
pub fn ids(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .expect("a list")
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

impl TestApp {
    /// Sends a request built from its parts; `key` goes into `Authorization: Bearer`.
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.request(req.body(body.into()).unwrap()).await
    }

    /// `GET /graphql?query=…&variables=…` with the given Accept, as the default owner.
    pub async fn get(&self, query: &str, variables: Option<Value>, accept: &str) -> Reply {
        let mut uri = format!("/graphql?query={}", url_encode(query));
        if let Some(v) = variables {
            uri.push_str(&format!("&variables={}", url_encode(&v.to_string())));
        }
        let auth = format!("Bearer {}", self.key);
        self.raw(
            Method::GET,
            &uri,
            &[("accept", accept), ("authorization", &auth)],
            Body::empty(),
        )
        .await
    }

    /// Runs an operation as another owner that must fail with `code`.
    pub async fn fails_as(&self, key: &str, code: &str, query: &str, variables: Value) -> Reply {
        let reply = self.post_as(key, query, variables).await;
        assert_eq!(
            reply.code(),
            Some(code),
            "expected {code}, got {}",
            reply.body
        );
        reply
    }

    /// Creates a contract with the given phases; returns (contract id, supervisor task id).
    pub async fn contract_with_phases(&self, name: &str, phases: &[&str]) -> (String, String) {
        let data = self
            .ok(
                "mutation($n: String!, $p: [String!]) { createContract(input: {name: $n, phases: $p}) { contract { id supervisor { task { id } } } } }",
                json!({ "n": name, "p": phases }),
            )
            .await;
        let c = &data["createContract"]["contract"];
        (
            c["id"].as_str().unwrap().into(),
            c["supervisor"]["task"]["id"].as_str().unwrap().into(),
        )
    }

    /// Creates a task under a parent (and optionally a contract).
    pub async fn create_subtask(&self, name: &str, contract: Option<&str>, parent: &str) -> String {
        let data = self
            .ok(
                "mutation($n: String!, $c: ID, $p: ID) { createTask(input: {name: $n, contractId: $c, parentTaskId: $p}) { task { id } } }",
                json!({ "n": name, "c": contract, "p": parent }),
            )
            .await;
        data["createTask"]["task"]["id"].as_str().unwrap().into()
    }

    pub const SET_STATUS: &'static str = "mutation($t: ID!, $s: TaskStatus!, $d: ID) { updateTaskStatus(input: {taskId: $t, status: $s, daemonId: $d}) { task { id status startedAt completedAt daemonId updatedAt } } }";

    /// Moves a task to `status` (must succeed); returns the task.
    pub async fn set_status(&self, task: &str, status: &str) -> Value {
        let data = self
            .ok(Self::SET_STATUS, json!({ "t": task, "s": status }))
            .await;
        data["updateTaskStatus"]["task"].clone()
    }

    pub const CHECKPOINT: &'static str = "mutation($t: ID!, $sha: String!, $m: String!, $b: String, $f: JSON) { recordCheckpoint(input: {taskId: $t, commitSha: $sha, message: $m, branch: $b, filesChanged: $f}) { checkpoint { id number commitSha branch message filesChanged messageCount task { id } createdAt } } }";

    /// Records a checkpoint (must succeed); returns it.
    pub async fn checkpoint(&self, task: &str, sha: &str) -> Value {
        let data = self
            .ok(
                Self::CHECKPOINT,
                json!({ "t": task, "sha": sha, "m": format!("at {sha}") }),
            )
            .await;
        data["recordCheckpoint"]["checkpoint"].clone()
    }

    /// Records a checkpoint (must succeed); returns its id.
    pub async fn checkpoint_id(&self, task: &str, sha: &str) -> String {
        self.checkpoint(task, sha).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Appends one USER text message per entry of `texts` (must succeed).
    pub async fn say(&self, task: &str, texts: &[&str]) {
        let messages: Vec<Value> = texts
            .iter()
            .map(|s| json!({ "role": "USER", "content": [{ "type": "text", "text": s }] }))
            .collect();
        self.ok(
            "mutation($t: ID!, $m: [MessageInput!]!) { appendMessages(input: {taskId: $t, messages: $m}) { messageCount } }",
            json!({ "t": task, "m": messages }),
        )
        .await;
    }

    /// Creates a task working in `repository` (on `branch`, if given); returns its id.
    pub async fn task_in_repo(&self, repository: &str, branch: Option<&str>) -> String {
        let data = self
            .ok(
                "mutation($r: String!, $b: String) { createTask(input: {name: \"coder\", repository: $r, branch: $b}) { task { id repository } } }",
                json!({ "r": repository, "b": branch }),
            )
            .await;
        assert_eq!(data["createTask"]["task"]["repository"], repository);
        data["createTask"]["task"]["id"].as_str().unwrap().into()
    }

    /// The whole timeline (up to 100 events), oldest first, with every field.
    pub async fn timeline(&self) -> Vec<Value> {
        self.timeline_as(&self.key.clone()).await
    }

    pub async fn timeline_as(&self, key: &str) -> Vec<Value> {
        let data = self
            .ok_as(
                key,
                "{ timeline(first: 100) { nodes { id cursor type phase data createdAt contract { id } task { id } } } }",
                json!({}),
            )
            .await;
        data["timeline"]["nodes"].as_array().unwrap().clone()
    }

    /// Runs `git init` (with one commit) in `<workspace root>/<rel>`; returns its
    /// canonical path.
    pub fn git_repo(&self, rel: &str) -> std::path::PathBuf {
        let dir = self.app.workspace_root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(&dir)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .expect("run git");
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["commit", "-q", "--allow-empty", "-m", "init"]);
        dir.canonicalize().unwrap()
    }

    /// Pages through a connection in every way API.md allows and checks each page
    /// against the whole list; returns the whole list's nodes.
    ///
    /// `query` must declare `PAGE_VARS`, pass `PAGE_ARGS` to the connection at `path`
    /// (a path of keys under `data`), and select `CONN` there; `node` is the node
    /// selection. `size` is the page size of the walks.
    pub async fn walk(
        &self,
        query: &str,
        node: &str,
        vars: Value,
        path: &[&str],
        size: usize,
    ) -> Vec<Value> {
        let conn = format!("edges {{ cursor node {{ {node} }} }} nodes {{ {node} }} {PAGE_INFO}");
        let query = query.replace("CONN", &conn);
        let fetch = |args: Value| {
            let mut v = vars.clone();
            for (k, val) in args.as_object().unwrap() {
                v[k] = val.clone();
            }
            let query = query.clone();
            async move {
                let data = self.ok(&query, v).await;
                let c = at(&data, path).clone();
                assert!(c.is_object(), "no connection at {path:?}: {data}");
                let edges = c["edges"].as_array().unwrap().clone();
                let nodes: Vec<Value> = edges.iter().map(|e| e["node"].clone()).collect();
                assert_eq!(Value::Array(nodes), c["nodes"], "nodes == edges.node");
                let info = &c["pageInfo"];
                assert_eq!(
                    info["startCursor"],
                    edges.first().map_or(Value::Null, |e| e["cursor"].clone())
                );
                assert_eq!(
                    info["endCursor"],
                    edges.last().map_or(Value::Null, |e| e["cursor"].clone())
                );
                (
                    edges,
                    info["hasPreviousPage"].as_bool().unwrap(),
                    info["hasNextPage"].as_bool().unwrap(),
                )
            }
        };
        let (all, prev, next) = fetch(json!({ "first": 100 })).await;
        assert!(!prev && !next, "the whole list fits in one page");
        let n = all.len();
        let cursor = |i: usize| all[i]["cursor"].clone();
        let cursors: std::collections::HashSet<&str> =
            all.iter().map(|e| e["cursor"].as_str().unwrap()).collect();
        assert_eq!(cursors.len(), n, "cursors are distinct");

        // Forwards with first/after.
        let mut pos = 0;
        let mut after = Value::Null;
        loop {
            let (edges, prev, next) = fetch(json!({ "first": size, "after": after })).await;
            let end = (pos + size).min(n);
            assert_eq!(edges, all[pos..end], "forward page at {pos}");
            assert_eq!(prev, pos > 0, "hasPreviousPage forward at {pos}");
            assert_eq!(next, end < n, "hasNextPage forward at {pos}");
            if !next {
                assert_eq!(end, n);
                break;
            }
            after = cursor(end - 1);
            pos = end;
        }
        // Backwards with last/before.
        let mut end = n;
        let mut before = Value::Null;
        loop {
            let (edges, prev, next) = fetch(json!({ "last": size, "before": before })).await;
            let start = end.saturating_sub(size);
            assert_eq!(edges, all[start..end], "backward page ending at {end}");
            assert_eq!(prev, start > 0, "hasPreviousPage backward at {end}");
            assert_eq!(next, end < n, "hasNextPage backward at {end}");
            if !prev {
                assert_eq!(start, 0);
                break;
            }
            before = cursor(start);
            end = start;
        }
        if n >= 3 {
            // `before` alone means `last: 20`.
            let j = n - 1;
            let (edges, prev, next) = fetch(json!({ "before": cursor(j) })).await;
            let start = j.saturating_sub(20);
            assert_eq!(edges, all[start..j], "before alone");
            assert_eq!((prev, next), (start > 0, true), "before alone: page info");
            // A window between two cursors, read from both ends.
            let (i, j) = (0, n - 1);
            let (edges, prev, next) =
                fetch(json!({ "first": 1, "after": cursor(i), "before": cursor(j) })).await;
            assert_eq!(edges, all[1..2]);
            assert_eq!((prev, next), (true, true), "window from the start");
            let (edges, prev, next) =
                fetch(json!({ "last": 1, "after": cursor(i), "before": cursor(j) })).await;
            assert_eq!(edges, all[j - 1..j]);
            assert_eq!((prev, next), (true, true), "window from the end");
            // Everything between the cursors.
            let (edges, prev, next) =
                fetch(json!({ "first": 100, "after": cursor(i), "before": cursor(j) })).await;
            assert_eq!(edges, all[1..j]);
            assert_eq!((prev, next), (true, true), "whole window");
            // After the last item / before the first one: nothing, one side open.
            let (edges, prev, next) = fetch(json!({ "first": size, "after": cursor(n - 1) })).await;
            assert!(edges.is_empty());
            assert_eq!((prev, next), (true, false), "after the last item");
            let (edges, prev, next) = fetch(json!({ "last": size, "before": cursor(0) })).await;
            assert!(edges.is_empty());
            assert_eq!((prev, next), (false, true), "before the first item");
        }
        // first: 0 and last: 0 read nothing.
        let (edges, prev, next) = fetch(json!({ "first": 0 })).await;
        assert!(edges.is_empty());
        assert_eq!((prev, next), (false, n > 0), "first: 0");
        let (edges, prev, next) = fetch(json!({ "last": 0 })).await;
        assert!(edges.is_empty());
        assert_eq!((prev, next), (n > 0, false), "last: 0");
        all.into_iter().map(|e| e["node"].clone()).collect()
    }

    /// Checks that a connection refuses bad arguments with BAD_USER_INPUT. `query`
    /// follows the `walk` conventions; `foreign` is a cursor of another list.
    pub async fn refuses_bad_page_args(
        &self,
        query: &str,
        vars: Value,
        valid_cursor: &str,
        foreign: &[String],
    ) {
        let query = query.replace("CONN", &format!("nodes {{ __typename }} {PAGE_INFO}"));
        let mut cases = vec![
            json!({ "first": 101 }),
            json!({ "last": 101 }),
            json!({ "first": -1 }),
            json!({ "last": -1 }),
            json!({ "first": 1, "last": 1 }),
            json!({ "after": "not a cursor" }),
            json!({ "before": "%%%" }),
            json!({ "first": 5, "after": "" }),
            json!({ "first": 5, "after": format!("{valid_cursor}!") }),
            json!({ "last": 5, "before": format!("!{valid_cursor}") }),
        ];
        for f in foreign {
            cases.push(json!({ "first": 5, "after": f }));
            cases.push(json!({ "last": 5, "before": f }));
        }
        for args in cases {
            let mut v = vars.clone();
            for (k, val) in args.as_object().unwrap() {
                v[k] = val.clone();
            }
            let reply = self.post(&query, v).await;
            assert_eq!(
                reply.code(),
                Some("BAD_USER_INPUT"),
                "args {args} should be refused: {}",
                reply.body
            );
        }
        // The limits themselves are fine.
        let mut v = vars.clone();
        v["first"] = json!(100);
        self.ok(&query, v).await;
        let mut v = vars;
        v["last"] = json!(100);
        self.ok(&query, v).await;
    }
}

// ---------------------------------------------------------------------------
// Daemons (tests/daemons.rs).
// ---------------------------------------------------------------------------

impl TestApp {
    /// A new daemon key of `owner`'s daemon named `daemon` (both created if needed);
    /// returns the key and the daemon's id.
    pub async fn daemon_key(&self, owner: &str, daemon: &str) -> (String, String) {
        let new = keys::create_for_daemon(&self.app.store, owner, daemon)
            .await
            .expect("daemon key");
        let id = new.viewer.daemon.expect("a daemon key acts as a daemon");
        (new.key, id.to_string())
    }

    /// Claims `task` with a daemon key (must succeed); returns the task.
    pub async fn claim(&self, key: &str, task: &str) -> Value {
        let data = self
            .ok_as(
                key,
                "mutation($t: ID!) { claimTask(input: {taskId: $t}) { task { id status daemonId } } }",
                json!({ "t": task }),
            )
            .await;
        data["claimTask"]["task"].clone()
    }

    /// The ids of what a daemon key's `daemonWork` lists, oldest first.
    pub async fn daemon_work(&self, key: &str) -> Vec<String> {
        let data = self
            .ok_as(
                key,
                "{ daemonWork { tasks(limit: 100) { id } } }",
                json!({}),
            )
            .await;
        ids(&data["daemonWork"]["tasks"])
    }
}

/// Runs an operation that must succeed on `router` (another server over the same
/// database) as `key`; returns its `data`.
pub async fn post_to(router: &Router, key: &str, query: &str, variables: Value) -> Value {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap();
    let res = router.clone().oneshot(req).await.expect("router");
    let body = to_bytes(res.into_body(), usize::MAX).await.expect("body");
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert!(v.get("errors").is_none(), "{v}");
    v["data"].clone()
}
