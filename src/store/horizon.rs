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
//! - A writer's first statement takes a shared advisory lock keyed by its backend pid
//!   (`pid_class`) while it has no transaction id yet, then gets its id and takes an
//!   exclusive advisory lock keyed by that id (`xid_class`). Both last until the
//!   transaction ends.
//! - A reader takes its statement snapshot `S` (time t0); the horizon is the smallest
//!   of `xmax(S)` and the ids in flight in `S` that are makima's or may be: going up
//!   from the smallest, an id whose xid lock is held (a failed shared try-lock) is an
//!   announced makima writer, and otherwise one read of `pg_locks` (t1 ≥ t0) decides:
//!   the id is skipped only when a backend that holds no pid announcement in this
//!   database still holds it.
//!
//! Why that never passes an in-flight makima writer `W` (with `W.xid < xmax(S)`, in
//! flight in `S`): W's id was assigned before t0, so its pid announcement was taken
//! before t0. At t1 either W still runs and holds that announcement, so it is not
//! skipped; or W has ended, no backend holds its id any more, and it is not skipped
//! either (the conservative side: a transaction that ended after the snapshot may
//! have written rows the snapshot cannot see). Ids at or above `xmax(S)` are above the
//! horizon anyway. The only ids skipped are those still running in a backend with no
//! announcement in this database: other databases' transactions and sessions that are
//! not makima writers, which never write history rows.
//!
//! Cost: nothing more than the snapshot when no transaction is in flight; one lock
//! probe per in-flight id up to the first makima writer; the `pg_locks` read (which
//! grows with the cluster's lock table) only when a transaction that is not an
//! announced makima writer is in flight below that (another application's, or a
//! makima writer in the instant between getting its id and announcing it). A reader
//! whose try-lock succeeds holds that lock until its statement ends, which can make a
//! writer in that instant wait as long: readers never run inside write transactions.

use std::sync::atomic::{AtomicI64, Ordering};

// The SQL is assembled with `concat!`, which takes only literals: these macros name
// the pieces that appear more than once.

/// The first key of the pid announcement ("mkma" = 0x6d6b6d61). The two-key form is a
/// lock space of its own (`objsubid = 2`), apart from the one-key advisory locks of
/// migrations and code operations.
macro_rules! pid_class {
    () => {
        "1835756897"
    };
}

/// The first key of the transaction-id announcement ("mkmx" = 0x6d6b6d78).
macro_rules! xid_class {
    () => {
        "1835756920"
    };
}

/// The second key of a transaction-id announcement: the id's low 32 bits as an int4
/// (ids in flight are less than 2^31 apart, so this is one-to-one among them).
macro_rules! xid_key {
    ($xid8:literal) => {
        concat!(
            "((((",
            $xid8,
            ")::text)::bigint % 4294967296) - 2147483648)::int4"
        )
    };
}

macro_rules! announce {
    () => {
        concat!(
            "pg_advisory_xact_lock(",
            xid_class!(),
            ", ",
            xid_key!("pg_current_xact_id()"),
            ") FROM (SELECT pg_advisory_xact_lock_shared(",
            pid_class!(),
            ", pg_backend_pid()) OFFSET 0) AS announced"
        )
    };
}

/// The horizon of the snapshot `$snapshot` (a `pg_snapshot` expression).
macro_rules! horizon {
    ($snapshot:literal) => {
        concat!(
            "(WITH locks AS MATERIALIZED (",
            "SELECT locktype, pid, transactionid FROM pg_locks ",
            "WHERE granted AND ((locktype = 'transactionid' AND mode = 'ExclusiveLock') ",
            "OR (locktype = 'advisory' AND classid = '",
            pid_class!(),
            "'::oid AND objsubid = 2 ",
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())))) ",
            "SELECT least((pg_snapshot_xmax(cur.s)::text)::bigint, ",
            "(SELECT (x::text)::bigint ",
            "FROM (SELECT x FROM pg_snapshot_xip(cur.s) AS x ORDER BY x OFFSET 0) AS xs ",
            "WHERE NOT pg_try_advisory_xact_lock_shared(",
            xid_class!(),
            ", ",
            xid_key!("x"),
            ") ",
            // Not announced by id: makima's only if no unannounced backend holds it.
            "OR NOT EXISTS (SELECT 1 FROM locks t ",
            "WHERE t.locktype = 'transactionid' AND t.transactionid = xid(x) ",
            "AND NOT EXISTS (SELECT 1 FROM locks a WHERE a.locktype = 'advisory' AND a.pid = t.pid)) ",
            "LIMIT 1)) ",
            "FROM (SELECT ",
            $snapshot,
            " AS s) AS cur)"
        )
    };
}

/// The first statement of a makima write transaction: bounds how long each statement
/// and each idle gap may take (`$1`, in milliseconds) and announces the transaction as
/// a makima writer (see the module notes): by pid, then by the id it assigns.
pub(super) const BEGIN_WRITE: &str = concat!(
    "SELECT set_config('statement_timeout', $1, true), ",
    "set_config('idle_in_transaction_session_timeout', $1, true), ",
    announce!()
);

/// The timeouts of `BEGIN_WRITE` without the announcement, for a transaction that
/// only takes locks until it writes.
pub(super) const LIMIT_ONLY: &str = concat!(
    "SELECT set_config('statement_timeout', $1, true), ",
    "set_config('idle_in_transaction_session_timeout', $1, true)"
);

/// `BEGIN_WRITE` for servers that can also bound the whole transaction (PostgreSQL 17
/// and later have `transaction_timeout`), to the same limit.
pub(super) const BEGIN_WRITE_BOUNDED: &str = concat!(
    "SELECT set_config('statement_timeout', $1, true), ",
    "set_config('idle_in_transaction_session_timeout', $1, true), ",
    "set_config('transaction_timeout', $1, true), ",
    announce!()
);

/// The horizon as a scalar SQL expression (a bigint) that takes the floor as `$1`: every
/// history event with a `tx_id` below it is committed and visible to the statement
/// that evaluates it.
pub(super) const HORIZON: &str = concat!(
    "greatest($1::bigint, ",
    horizon!("pg_current_snapshot()"),
    ")"
);

/// `HORIZON` of the snapshot `$2` instead of the statement's own, so a test can hand the
/// reader a snapshot in a state that a race produces only rarely.
pub(super) const HORIZON_OF_SNAPSHOT: &str = concat!(
    "greatest($1::bigint, ",
    horizon!("$2::text::pg_snapshot"),
    ")"
);

/// The condition on history rows that keeps a read below the horizon; the floor is `$1`.
pub(super) const BELOW_HORIZON: &str = concat!(
    "tx_id < greatest($1::bigint, ",
    horizon!("pg_current_snapshot()"),
    ")"
);

/// The highest horizon this store has computed: a lower bound for every later read.
///
/// A horizon stays valid for every statement that starts after the one that computed
/// it: the events below it were committed before that statement's snapshot, so every
/// later snapshot sees them, and no new transaction gets an id below it. A fresh
/// computation can come out lower than an earlier one, on the conservative side of the
/// module notes: an id in flight in the reader's snapshot that ended before its read of
/// `pg_locks` (any transaction of the cluster, another database's included) holds the
/// horizon at that id for that one statement. Without a floor, a client that saw its
/// mutation's response could then read a timeline without that mutation's event, and
/// the live fan-out, woken by that commit, could read nothing and wait for the next one.
/// The floor is per store (per database): another database's horizon says nothing about
/// this one's writers.
#[derive(Debug, Default)]
pub struct Floor(AtomicI64);

impl Floor {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// Records a horizon that a completed statement computed.
    pub fn raise(&self, horizon: i64) {
        self.0.fetch_max(horizon, Ordering::AcqRel);
    }
}
