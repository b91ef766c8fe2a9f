use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};

use super::task::{TaskConnection, task_connection};
use crate::domain::daemons;
use crate::entities::daemon;
use crate::entities::kinds::TaskStatus;
use crate::graphql::connection::{PageArgs, connection, page_cost};
use crate::graphql::{app, to_id};
use crate::store::tasks::TaskFilter;
use crate::time::now;

/// Whether a daemon is heartbeating.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DaemonStatus {
    /// Its last heartbeat is younger than the server's daemon timeout.
    Online,
    /// Silent for longer than the timeout (or never seen): its RUNNING tasks were
    /// interrupted.
    Offline,
}

/// A worker machine of the owner that runs tasks and holds their worktrees.
pub struct Daemon(pub daemon::Model);

connection!(DaemonConnection, DaemonEdge, Daemon, "daemons");

/// A worker machine of the owner that runs tasks and holds their worktrees.
#[Object]
impl Daemon {
    /// Unique id of the daemon.
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }
    /// Its name, unique among the owner's daemons (the `--daemon` of its key).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// ONLINE while it heartbeats, else OFFLINE.
    async fn status(&self, ctx: &Context<'_>) -> DaemonStatus {
        if daemons::is_online(&self.0, app(ctx).daemon_timeout, now()) {
            DaemonStatus::Online
        } else {
            DaemonStatus::Offline
        }
    }
    /// When it last heartbeat, claimed or asked for work; null if never.
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }
    /// The version it last reported.
    async fn version(&self) -> Option<&str> {
        self.0.version.as_deref()
    }
    /// The capabilities it last reported.
    async fn capabilities(&self) -> Vec<String> {
        serde_json::from_str(&self.0.capabilities).unwrap_or_default()
    }
    /// When its first key was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Its tasks that are not finished (PENDING, RUNNING or PAUSED), oldest first.
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn current_tasks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<TaskConnection> {
        let filter = TaskFilter {
            daemon_id: Some(self.0.id),
            status: Some(vec![
                TaskStatus::Pending,
                TaskStatus::Running,
                TaskStatus::Paused,
            ]),
            ..TaskFilter::default()
        };
        Ok(task_connection(ctx, PageArgs::new(first, after, last, before), filter).await?)
    }
}
