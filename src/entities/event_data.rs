//! The `data` of each history event type: one serde type per type. Events are written
//! only through `EventData` (the store takes it, not JSON) and read back through
//! `EventData::parse`, so what is stored, what the code reads and what the SDL documents
//! (`HistoryEventType`, tested against these types in `tests/event_data.rs`) are one thing.
//!
//! Fields are camelCase in JSON; an absent value is written as `null`, never left out.
//! Reading tolerates keys it does not know, so a server reads what a newer one wrote.

use super::history_event;
use super::ids::{CheckpointId, CodeOperationId, ConversationId, DaemonId, HistoryEventId, TaskId};
use super::kinds::{
    CodeOperationKind, CodeOperationStatus, ContractStatus, HistoryEventType, TaskStatus,
};
use serde::{Deserialize, Serialize};

macro_rules! event_data {
    ($($variant:ident),* $(,)?) => {
        /// The data of one history event; the variant is its `HistoryEventType`.
        #[derive(Clone, Debug, PartialEq)]
        pub enum EventData {
            $($variant($variant)),*
        }

        impl EventData {
            /// The type of event this data belongs to.
            pub fn event_type(&self) -> HistoryEventType {
                match self {
                    $(Self::$variant(_) => HistoryEventType::$variant),*
                }
            }

            /// The JSON stored in `history_events.data`.
            pub fn to_json(&self) -> String {
                let written = match self {
                    $(Self::$variant(d) => serde_json::to_string(d)),*
                };
                written.expect("event data is plain data and always serialises")
            }

            /// Reads back the stored data of an event of type `event_type`.
            pub fn parse(event_type: HistoryEventType, json: &str) -> serde_json::Result<Self> {
                Ok(match event_type {
                    $(HistoryEventType::$variant => Self::$variant(serde_json::from_str(json)?)),*
                })
            }
        }

        $(impl From<$variant> for EventData {
            fn from(data: $variant) -> Self {
                Self::$variant(data)
            }
        })*
    };
}

impl EventData {
    /// The data of a stored event.
    pub fn of(event: &history_event::Model) -> crate::error::AppResult<Self> {
        Ok(Self::parse(event.event_type, &event.data)?)
    }
}

event_data!(
    ContractCreated,
    PhaseChanged,
    ContractStatusChanged,
    TaskCreated,
    TaskStatusChanged,
    MessagesAppended,
    TaskEventsAppended,
    CheckpointCreated,
    SupervisorResumed,
    ConversationRewound,
    ConversationRestored,
    TaskResumed,
    TaskRewound,
    TaskForked,
    BranchCreated,
    CodeOperationCompleted,
    CodeOperationQueued,
);

/// `CONTRACT_CREATED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractCreated {
    pub name: String,
    pub phases: Vec<String>,
}

/// `PHASE_CHANGED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseChanged {
    pub from: String,
    pub to: String,
}

/// `CONTRACT_STATUS_CHANGED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractStatusChanged {
    pub from: ContractStatus,
    pub to: ContractStatus,
}

/// `TASK_CREATED`; `codeOperationId` is the worktree of a continued task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCreated {
    pub name: String,
    pub parent_task_id: Option<TaskId>,
    pub continued_from_task_id: Option<TaskId>,
    pub code_operation_id: Option<CodeOperationId>,
}

/// `TASK_STATUS_CHANGED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatusChanged {
    pub from: TaskStatus,
    pub to: TaskStatus,
    pub daemon_id: Option<DaemonId>,
}

/// `MESSAGES_APPENDED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesAppended {
    pub count: i32,
    pub first_index: i32,
    pub message_count: i32,
}

/// `TASK_EVENTS_APPENDED`: the appended sequences are `firstSequence..=lastSequence`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEventsAppended {
    pub count: i64,
    pub first_sequence: i64,
    pub last_sequence: i64,
}

/// `CHECKPOINT_CREATED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointCreated {
    pub checkpoint_id: CheckpointId,
    pub number: i32,
    pub commit_sha: String,
    pub message_count: i32,
}

/// `SUPERVISOR_RESUMED`; `previous*` describe the supervisor before the resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorResumed {
    pub mode: String,
    pub from_status: TaskStatus,
    pub checkpoint_id: Option<CheckpointId>,
    pub message_count: i32,
    pub code_operation_id: Option<CodeOperationId>,
    pub previous_message_count: i32,
    pub previous_phase: String,
}

/// `CONVERSATION_REWOUND`: `previousConversationId` is the head the rewind replaced
/// (what a restore puts back), `conversationId` the head it made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRewound {
    pub previous_message_count: i32,
    pub new_message_count: i32,
    pub messages_removed: i32,
    pub code_operation_id: Option<CodeOperationId>,
    pub previous_conversation_id: ConversationId,
    pub conversation_id: ConversationId,
    /// Where the code the rewind replaced was saved (a restore puts it back).
    pub saved_ref: Option<String>,
}

/// `CONVERSATION_RESTORED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRestored {
    pub rewind_event_id: HistoryEventId,
    pub message_count: i32,
    pub code_operation_id: Option<CodeOperationId>,
    pub conversation_id: ConversationId,
}

/// `TASK_RESUMED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResumed {
    pub from_status: TaskStatus,
    pub checkpoint_id: Option<CheckpointId>,
    pub code_operation_id: Option<CodeOperationId>,
}

/// `TASK_REWOUND`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRewound {
    pub checkpoint_id: CheckpointId,
    pub commit_sha: String,
    pub conversation_rewound: bool,
    pub code_operation_id: Option<CodeOperationId>,
}

/// `TASK_FORKED`; the event's task is the fork.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskForked {
    pub source_task_id: TaskId,
    pub checkpoint_id: Option<CheckpointId>,
    pub message_count: i32,
    pub branch: Option<String>,
    pub code_operation_id: Option<CodeOperationId>,
}

/// `BRANCH_CREATED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchCreated {
    pub checkpoint_id: CheckpointId,
    pub branch: String,
    pub commit_sha: String,
    pub code_operation_id: CodeOperationId,
}

/// `CODE_OPERATION_COMPLETED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeOperationCompleted {
    pub code_operation_id: CodeOperationId,
    pub kind: CodeOperationKind,
    pub status: CodeOperationStatus,
    pub commit_sha: String,
    pub error: Option<String>,
}

/// `CODE_OPERATION_QUEUED`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeOperationQueued {
    pub code_operation_id: CodeOperationId,
    pub kind: CodeOperationKind,
    pub daemon_id: DaemonId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn data_round_trips_through_its_type() {
        let data: EventData = ConversationRewound {
            previous_message_count: 5,
            new_message_count: 3,
            messages_removed: 2,
            code_operation_id: None,
            previous_conversation_id: ConversationId(Uuid::nil()),
            conversation_id: ConversationId(Uuid::max()),
            saved_ref: Some("refs/makima/saved/x".into()),
        }
        .into();
        let json = data.to_json();
        assert!(json.contains("\"codeOperationId\":null"), "{json}");
        let back = EventData::parse(data.event_type(), &json).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn data_of_another_type_is_refused() {
        let json = EventData::from(PhaseChanged {
            from: "a".into(),
            to: "b".into(),
        })
        .to_json();
        assert!(EventData::parse(HistoryEventType::TaskResumed, &json).is_err());
    }
}
