//! `TestApp`: a real makima on a fresh database per test, driven through its HTTP
//! router in process.
//!
//! The database is SQLite (a file in a temporary directory) unless
//! `MAKIMA_TEST_DATABASE_URL` names a PostgreSQL server (`postgres://user@host:port`):
//! then each test creates its own database there and drops it afterwards.

#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use makima::domain::App;
use makima::server::{AppState, auth, router};
use makima::store::{Store, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
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
        let app = makima::open(&url, pool, &workspace)
            .await
            .expect("open makima");
        let key = auth::create_key(&app.store, "alice").await.expect("key");
        let router = router(AppState::new(app.clone()));
        Self {
            router,
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
        auth::create_key(&self.app.store, owner).await.expect("key")
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            // Drop the database from a fresh runtime: Drop cannot await.
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
    }
}
