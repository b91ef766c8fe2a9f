//! Helpers for the timeline-horizon tests (PostgreSQL): another application's write
//! transaction held open in another database of the same cluster, and polling with a
//! deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use makima::store::{Store, StoreOptions};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};

use super::{TestApp, admin_exec, drop_database_blocking};

/// A write transaction of "another application": open in a database of its own (created
/// here, in the cluster of `app`'s database) until `end` or drop. It holds a
/// transaction id, as an idle-in-transaction session, a migration or a batch job of
/// any other application would. The server ends it after 15 s in any case, so a
/// failed test cannot leave it behind.
pub struct ForeignTxn {
    base: String,
    name: String,
    txn: Option<DatabaseTransaction>,
    store: Option<Store>,
    /// Its transaction id.
    pub xid: i64,
}

impl ForeignTxn {
    pub async fn open(app: &TestApp) -> Self {
        let (base, _) = app.pg.clone().expect("a PostgreSQL test app");
        let name = format!("makima_foreign_{}", uuid::Uuid::now_v7().simple());
        admin_exec(&base, &format!("CREATE DATABASE {name}")).await;
        let mut options = StoreOptions::new(format!("{base}/{name}"));
        options.max_connections = 1;
        let store = Store::connect(&options).await.expect("connect");
        let txn = store.db().begin().await.expect("begin");
        for sql in [
            "SET LOCAL idle_in_transaction_session_timeout = '15s'",
            "CREATE TABLE jobs (id bigint)",
            "INSERT INTO jobs VALUES (1)",
        ] {
            txn.execute_unprepared(sql).await.expect(sql);
        }
        let xid = scalar(&txn, "SELECT txid_current() AS v").await;
        Self {
            base,
            name,
            txn: Some(txn),
            store: Some(store),
            xid,
        }
    }

    /// Commits it (checking that it really stayed open until now) and drops its database.
    pub async fn end(mut self) {
        let txn = self.txn.take().expect("open");
        assert_eq!(
            scalar(&txn, "SELECT txid_current() AS v").await,
            self.xid,
            "the foreign transaction stayed open"
        );
        txn.commit().await.expect("commit the foreign transaction");
        if let Some(store) = self.store.take() {
            let _ = store.db().clone().close().await;
        }
    }
}

impl Drop for ForeignTxn {
    fn drop(&mut self) {
        drop(self.txn.take());
        drop(self.store.take());
        let (base, name) = (self.base.clone(), self.name.clone());
        drop_database_blocking(base, name);
    }
}

/// The bigint column `v` of the one row `sql` returns.
pub async fn scalar(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect(sql)
        .expect("a row");
    row.try_get("", "v").expect("column v")
}

/// Polls `check` until it returns `Some`, failing with `what` after `limit`.
pub async fn within<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        // Not synchronisation: the pause between two polls of the condition.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
