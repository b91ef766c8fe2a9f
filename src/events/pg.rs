//! PostgreSQL `LISTEN/NOTIFY` between makima processes on one database: a wake-up
//! signal only (the rows stay the source of truth, and a payload is capped at 8,000
//! bytes), so a notification carries nothing but the sending process's id.
//!
//! The sender notifies after local commits, coalescing a burst into one `NOTIFY` and
//! staying off the mutation's path. The listener holds a dedicated connection (not one
//! of the pool's); notifications sent while it reconnects are lost, so every
//! (re)connect wakes the tailer to catch up from its cursor.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use tokio::sync::watch;

use super::Shared;

pub const CHANNEL: &str = "makima_history";

pub(super) fn spawn(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    tokio::spawn(notify_commits(shared.clone(), stop.clone()));
    tokio::spawn(listen(shared, stop));
}

async fn notify_commits(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut commits = shared.store.commits();
    let stmt = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), shared.instance.clone().into()],
    );
    loop {
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
        if let Err(e) = shared.store.db().execute_raw(stmt.clone()).await {
            tracing::warn!(error = %e, "live events: NOTIFY failed");
        }
    }
}

async fn connect(shared: &Shared) -> Result<PgListener, sea_orm::sqlx::Error> {
    let options = shared
        .store
        .db()
        .get_postgres_connection_pool()
        .connect_options();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with((*options).clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn listen(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = tokio::select! {
            l = connect(&shared) => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "live events: LISTEN failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        backoff = Duration::from_millis(100);
        // Whatever was notified before we listened is caught up from the cursor.
        shared.wake.notify_one();
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = stop.changed() => return,
            };
            match received {
                Ok(Some(n)) if n.payload() == shared.instance => {}
                // Another process committed, or the connection was lost and re-made
                // (`None`): read the table.
                Ok(_) => shared.wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "live events: listener lost; reconnecting");
                    shared.wake.notify_one();
                    break;
                }
            }
        }
    }
}
