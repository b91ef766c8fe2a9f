//! Opaque cursors: base64url of a tagged value. A cursor of the wrong kind or one that
//! does not decode is `BAD_USER_INPUT`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::entities::ids::{CheckpointId, ContractId, DaemonId, TaskId};
use crate::error::{AppError, AppResult};
use crate::store::history::TimelineCursor;

/// A value that pages a list.
pub trait Cursor: Sized {
    const TAG: &'static str;
    fn to_text(&self) -> String;
    fn from_text(s: &str) -> Option<Self>;

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", Self::TAG, self.to_text()))
    }

    fn decode(s: &str) -> AppResult<Self> {
        let bad = || AppError::bad_input("malformed cursor");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        let value = text
            .strip_prefix(Self::TAG)
            .and_then(|t| t.strip_prefix(':'))
            .ok_or_else(bad)?;
        Self::from_text(value).ok_or_else(bad)
    }
}

/// Ids: the hyphenated UUID, under one tag for every id type (lists that share one say
/// so with `list_key!`).
macro_rules! id_cursor {
    ($($id:ty),*) => {$(
        impl Cursor for $id {
            const TAG: &'static str = "id";
            fn to_text(&self) -> String {
                self.to_string()
            }
            fn from_text(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map(<$id>::from)
            }
        }
    )*};
}

id_cursor!(TaskId, ContractId, CheckpointId, DaemonId);

/// Message positions (0-based) and checkpoint numbers.
impl Cursor for i32 {
    const TAG: &'static str = "n";
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse().ok().filter(|n: &i32| *n >= 0)
    }
}

/// Task event sequences.
impl Cursor for i64 {
    const TAG: &'static str = "seq";
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Option<Self> {
        s.parse().ok().filter(|n: &i64| *n >= 0)
    }
}

/// Declares a key type whose cursors carry their own tag, for lists that share a key
/// type with another list (a contract's id, a checkpoint's id or number): a cursor of
/// one of those lists is then refused by the others.
macro_rules! list_key {
    ($(#[$meta:meta])* $name:ident($inner:ty), $tag:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl Cursor for $name {
            const TAG: &'static str = $tag;
            fn to_text(&self) -> String {
                self.0.to_text()
            }
            fn from_text(s: &str) -> Option<Self> {
                <$inner as Cursor>::from_text(s).map($name)
            }
        }
    };
}

list_key!(
    /// Pages `contracts`.
    ContractKey(ContractId),
    "contract"
);
list_key!(
    /// Pages `Contract.checkpoints` (checkpoint ids).
    CheckpointKey(CheckpointId),
    "checkpoint"
);
list_key!(
    /// Pages `Task.checkpoints` (checkpoint numbers).
    CheckpointNumber(i32),
    "cpn"
);

impl Cursor for TimelineCursor {
    const TAG: &'static str = "tl";
    fn to_text(&self) -> String {
        format!("{}.{}", self.tx_id, self.seq)
    }
    fn from_text(s: &str) -> Option<Self> {
        let (tx, seq) = s.split_once('.')?;
        Some(TimelineCursor {
            tx_id: tx.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_kinds() {
        let c = TimelineCursor { tx_id: 12, seq: 99 };
        assert_eq!(TimelineCursor::decode(&c.encode()).unwrap(), c);
        assert!(i64::decode(&c.encode()).is_err());
        assert!(i32::decode("not base64!").is_err());
        assert_eq!(i32::decode(&7i32.encode()).unwrap(), 7);
        let id = Uuid::now_v7();
        assert_eq!(TaskId::decode(&TaskId(id).encode()).unwrap(), TaskId(id));
        // Lists that share a key type still refuse each other's cursors.
        assert!(ContractKey::decode(&ContractId(id).encode()).is_err());
        assert!(CheckpointKey::decode(&ContractKey(ContractId(id)).encode()).is_err());
        assert!(i32::decode(&CheckpointNumber(3).encode()).is_err());
        assert!(CheckpointNumber::decode(&3i32.encode()).is_err());
        assert_eq!(
            CheckpointNumber::decode(&CheckpointNumber(3).encode()).unwrap(),
            CheckpointNumber(3)
        );
    }
}
