//! Timestamps are made in Rust and truncated to microseconds, so SQLite and PostgreSQL
//! store and return exactly the same value.

use chrono::{DateTime, SubsecRound, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
