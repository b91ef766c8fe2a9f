//! One id type per table, so a task's id cannot be passed where a contract's is wanted.
//! Each wraps the row's `Uuid`: stored as the same UUID (no migration), serialised as the
//! same hyphenated string (`#[serde(transparent)]`, so stored JSON stays byte-identical),
//! and displayed the same way. Modelled on zed's collab `id_type!`.

use uuid::Uuid;

/// Defines `pub struct $name(pub Uuid)` with what entity columns, filters and primary
/// keys need from SeaORM (`DeriveValueType`, plus `TryFromU64`, which the derive only
/// gives integer ids), serde as a plain string, `Display` and the conversions to and from
/// `Uuid`.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            sea_orm::DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(n: u64) -> Result<Self, sea_orm::DbErr> {
                <Uuid as sea_orm::TryFromU64>::try_from_u64(n).map(Self)
            }
        }
    };
}

id_type!(
    /// `owners.id`.
    OwnerId
);
id_type!(
    /// `api_keys.id`.
    ApiKeyId
);
id_type!(
    /// `contracts.id`.
    ContractId
);
id_type!(
    /// `tasks.id`.
    TaskId
);
id_type!(
    /// `conversations.id`: one segment of a conversation log.
    ConversationId
);
id_type!(
    /// `messages.id`.
    MessageId
);
id_type!(
    /// `task_events.id`.
    TaskEventId
);
id_type!(
    /// `checkpoints.id`.
    CheckpointId
);
id_type!(
    /// `conversation_snapshots.id`.
    SnapshotId
);
id_type!(
    /// `history_events.id`.
    HistoryEventId
);
id_type!(
    /// `code_operations.id`, and the id of the intent announcing that operation.
    CodeOperationId
);
id_type!(
    /// `daemons.id`; also `tasks.daemon_id` and `api_keys.daemon_id`.
    DaemonId
);

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{Nullable, ValueType};
    use sea_orm::{TryFromU64, Value};

    use super::*;

    #[test]
    fn an_id_round_trips_through_the_orm_value() {
        let id = TaskId::new();
        let value: Value = id.into();
        assert_eq!(value, Value::from(id.0));
        assert_eq!(<TaskId as ValueType>::try_from(value).unwrap(), id);
        assert_eq!(
            <TaskId as ValueType>::column_type(),
            <Uuid as ValueType>::column_type()
        );
        assert_eq!(<TaskId as Nullable>::null(), <Uuid as Nullable>::null());
        assert!(ContractId::try_from_u64(1).is_err());
    }

    #[test]
    fn an_id_serialises_as_a_plain_string() {
        let raw = Uuid::now_v7();
        let id = ContractId::from(raw);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{raw}\""));
        assert_eq!(serde_json::to_string(&Some(id)).unwrap(), json);
        assert_eq!(serde_json::from_str::<ContractId>(&json).unwrap(), id);
        assert_eq!(id.to_string(), raw.to_string());
        assert_eq!(Uuid::from(id), raw);
    }
}
