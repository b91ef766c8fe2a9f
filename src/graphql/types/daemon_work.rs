use async_graphql::{Context, Object, Result};

use super::code_operation::CodeOperation;
use super::task::Task;
use crate::domain::daemons;
use crate::error::AppError;
use crate::graphql::{app, viewer};

/// The work a daemon may take (see `docs/daemons.md`).
pub struct DaemonWork;

fn page_limit(limit: i32) -> Result<u64, AppError> {
    u64::try_from(limit)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| AppError::bad_input("limit must be between 1 and 100"))
}

/// The work a daemon may take (see `docs/daemons.md`).
#[Object]
impl DaemonWork {
    /// PENDING tasks the daemon may claim with `claimTask` (assigned to it or to no
    /// daemon), oldest first, at most `limit` (1 to 100, default 20). Reading them counts
    /// as a heartbeat.
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<Task>> {
        let limit = page_limit(limit)?;
        let tasks = daemons::work(app(ctx), viewer(ctx)?, limit).await?;
        Ok(tasks.into_iter().map(Task).collect())
    }

    /// Code operations on the daemon's worktrees it has not reported yet (QUEUED),
    /// oldest first, at most `limit` (1 to 100, default 20): run each and report it with
    /// `completeCodeOperation`.
    async fn code_operations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<CodeOperation>> {
        let limit = page_limit(limit)?;
        let ops = daemons::queued_operations(app(ctx), viewer(ctx)?, limit).await?;
        Ok(ops.into_iter().map(CodeOperation).collect())
    }
}
