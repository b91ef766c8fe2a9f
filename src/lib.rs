//! makima: the history, resume and rewind server of an agent orchestration platform.
//!
//! Layers, each depending only on those below it:
//! `server` (HTTP) → `graphql` (schema, loaders) → `domain` (rules) → `store` (SQL)
//! → `entities` (tables). `daemon` is apart: the reference daemon, a client of the
//! server over HTTP and WebSocket that uses none of the layers.

pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod entities;
pub mod error;
pub mod events;
pub mod git;
pub mod graphql;
pub mod server;
pub mod store;
pub mod time;

use std::path::Path;
use std::sync::Arc;

use domain::App;
use error::{AppError, AppResult};
use store::{Store, StoreOptions};

/// Connects, migrates and prepares the workspace root: everything `serve` needs.
pub async fn open(database_url: &str, pool: u32, workspace_root: &Path) -> AppResult<App> {
    let mut options = StoreOptions::new(database_url);
    options.max_connections = pool;
    let store = Store::connect(&options).await?;
    store.migrate().await?;
    let workspace_root = domain::paths::prepare_root(workspace_root)
        .map_err(|e| AppError::internal(format!("cannot prepare the workspace root: {e}")))?;
    Ok(App {
        store,
        workspace_root,
        locks: Default::default(),
        daemon_timeout: domain::daemons::DEFAULT_TIMEOUT,
        code_operation_wait: domain::code::DEFAULT_WAIT,
        code_operation_timeout: domain::code::DEFAULT_TIMEOUT,
        code_reports: Arc::new(tokio::sync::watch::channel(0).0),
    })
}
