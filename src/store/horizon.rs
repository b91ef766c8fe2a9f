//! The timeline horizon on PostgreSQL: the cursor below which every history event is
//! committed and readable, so a reader may hand out events below it without one later
//! appearing behind a cursor it has already seen.
//!
//! History rows carry the writing transaction's id (`tx_id`). An event is safe to hand
//! out once no makima write transaction with a smaller id can still commit. Taking
//! the oldest transaction in flight in the whole cluster (`pg_snapshot_xmin`) would be
//! safe too, but then any other application's long transaction, in any database of
//! the cluster, freezes the timeline. So makima's write transactions *announce*
//! themselves and readers only wait for announced ones:
//!
//! - A writer takes a shared advisory lock `(announce_class, its backend pid)` as its
//!   first statement, before it has a transaction id (an advisory lock assigns none),
//!   and holds it to the end of the transaction.
//! - A reader takes its statement snapshot `S` (time t0), then reads `pg_locks` once
//!   (t1 ≥ t0). The horizon is the smallest of `xmax(S)` and every id in flight in `S`
//!   except those that, at t1, are still held by a backend that has not announced
//!   itself in this database.
//!
//! Why that never passes an in-flight makima writer `W` (with `W.xid < xmax(S)`, in
//! flight in `S`): W's id was assigned before t0, so its announcement was taken before
//! t0. At t1, either W still runs, holds its announcement and so is not skipped; or W
//! has ended, no backend holds its id any more, and it is not skipped either (the
//! conservative side: a transaction that ended after the snapshot may have written
//! rows the snapshot cannot see). Ids at or above `xmax(S)` are above the horizon
//! anyway. The only ids skipped are those still running in a backend with no
//! announcement in this database: other databases' transactions and sessions that
//! are not makima writers, which never write history rows.
//!
//! `pg_locks` is read only when the snapshot has transactions in flight at all.

// The SQL is assembled with `concat!`, which takes only literals: these macros name
// the pieces that appear more than once.

/// The first key of the announcement lock ("mkma" = 0x6d6b6d61); the second is the
/// backend pid. The two-key form is a lock space of its own (`objsubid = 2`), apart
/// from the one-key advisory locks of migrations and code operations.
macro_rules! announce_class {
    () => {
        "1835756897"
    };
}

macro_rules! announce {
    () => {
        concat!(
            "pg_advisory_xact_lock_shared(",
            announce_class!(),
            ", pg_backend_pid())"
        )
    };
}

macro_rules! horizon {
    () => {
        concat!(
            "(WITH locks AS MATERIALIZED (",
            "SELECT locktype, pid, transactionid FROM pg_locks ",
            "WHERE granted AND ((locktype = 'transactionid' AND mode = 'ExclusiveLock') ",
            "OR (locktype = 'advisory' AND classid = '",
            announce_class!(),
            "'::oid AND objsubid = 2 ",
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())))) ",
            "SELECT least((pg_snapshot_xmax(cur.s)::text)::bigint, ",
            "(SELECT min((x::text)::bigint) FROM pg_snapshot_xip(cur.s) AS x ",
            // Skipped: ids still held by a backend that has not announced itself here.
            "WHERE NOT EXISTS (SELECT 1 FROM locks t ",
            "WHERE t.locktype = 'transactionid' AND t.transactionid = xid(x) ",
            "AND NOT EXISTS (SELECT 1 FROM locks a WHERE a.locktype = 'advisory' AND a.pid = t.pid)))) ",
            "FROM (SELECT pg_current_snapshot() AS s) AS cur)"
        )
    };
}

/// The first statement of a makima write transaction: bounds how long each statement
/// and each idle gap may take (`$1`, in milliseconds) and announces the transaction as
/// a makima writer (see the module notes) before it has an id.
pub(super) const BEGIN_WRITE: &str = concat!(
    "SELECT set_config('statement_timeout', $1, true), ",
    "set_config('idle_in_transaction_session_timeout', $1, true), ",
    announce!()
);

/// `BEGIN_WRITE` for servers that can also bound the whole transaction (PostgreSQL 17
/// and later have `transaction_timeout`), to the same limit.
pub(super) const BEGIN_WRITE_BOUNDED: &str = concat!(
    "SELECT set_config('statement_timeout', $1, true), ",
    "set_config('idle_in_transaction_session_timeout', $1, true), ",
    "set_config('transaction_timeout', $1, true), ",
    announce!()
);

/// The horizon as a scalar SQL expression (a bigint): every history event with a
/// `tx_id` below it is committed and visible to the statement that evaluates it.
pub(super) const HORIZON: &str = horizon!();

/// The condition on history rows that keeps a read below the horizon.
pub(super) const BELOW_HORIZON: &str = concat!("tx_id < ", horizon!());
