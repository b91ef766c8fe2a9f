//! The enumerations of the data model. Each is a SeaORM active enum stored as its
//! spelling in a text column, and derives the GraphQL enum too: the API names are the
//! stored names, so one definition serves database and API. A stored spelling no
//! variant knows fails the read with a database error, never a panic.

use async_graphql::Enum;
use sea_orm::entity::prelude::*;

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, EnumIter, DeriveActiveEnum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $($(#[$vmeta])* #[sea_orm(string_value = $text)] #[serde(rename = $text)] $variant),*
        }

        impl $name {
            /// The spelling stored in the database (and used in the API and in event
            /// data), for raw SQL and messages.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }
        }
    };
}

stored_enum! {
    /// Lifecycle of a contract: ACTIVE → COMPLETED → ARCHIVED, or ACTIVE → ARCHIVED.
    ContractStatus {
        /// Being worked on.
        Active => "ACTIVE",
        /// Finished; may still be archived.
        Completed => "COMPLETED",
        /// Final: no mutation touches an archived contract or its tasks.
        Archived => "ARCHIVED",
    }
}

stored_enum! {
    /// Lifecycle of a task (a supervisor's status is its task's status).
    TaskStatus {
        /// Waiting for a daemon to pick it up.
        Pending => "PENDING",
        /// An agent is working on it.
        Running => "RUNNING",
        /// Paused by a person or the supervisor.
        Paused => "PAUSED",
        /// Stopped unexpectedly (daemon lost, process killed); resumable.
        Interrupted => "INTERRUPTED",
        /// Finished successfully; final.
        Done => "DONE",
        /// Finished with an error; resumable.
        Failed => "FAILED",
    }
}

stored_enum! {
    /// Who wrote a conversation message.
    MessageRole {
        /// A person or the orchestrator speaking to the agent.
        User => "USER",
        /// The agent.
        Assistant => "ASSISTANT",
        /// System instructions.
        System => "SYSTEM",
        /// A tool result fed back to the agent.
        Tool => "TOOL",
    }
}

stored_enum! {
    /// The kind of an entry in a task's output stream.
    TaskEventType {
        /// Text output of the agent.
        Output => "OUTPUT",
        /// A tool call the agent made.
        ToolCall => "TOOL_CALL",
        /// The result of a tool call.
        ToolResult => "TOOL_RESULT",
        /// A status report.
        Status => "STATUS",
        /// An error report.
        Error => "ERROR",
        /// A message from the platform itself.
        System => "SYSTEM",
    }
}

stored_enum! {
    /// What a history event records.
    HistoryEventType {
        /// A contract was created. data: {name, phases}
        ContractCreated => "CONTRACT_CREATED",
        /// A contract moved to another phase. data: {from, to}
        PhaseChanged => "PHASE_CHANGED",
        /// A contract's status changed. data: {from, to}
        ContractStatusChanged => "CONTRACT_STATUS_CHANGED",
        /// A task was created; `codeOperationId` is the new worktree of a continued task. data: {name, parentTaskId, continuedFromTaskId, codeOperationId}
        TaskCreated => "TASK_CREATED",
        /// A task's status changed. data: {from, to, daemonId}
        TaskStatusChanged => "TASK_STATUS_CHANGED",
        /// Messages were appended to a conversation. data: {count, firstIndex, messageCount}
        MessagesAppended => "MESSAGES_APPENDED",
        /// Events were appended to a task's stream. data: {count, firstSequence, lastSequence}
        TaskEventsAppended => "TASK_EVENTS_APPENDED",
        /// A checkpoint was recorded. data: {checkpointId, number, commitSha, messageCount}
        CheckpointCreated => "CHECKPOINT_CREATED",
        /// A supervisor was resumed; `previousMessageCount` and `previousPhase` are as it stood before. data: {mode, fromStatus, checkpointId, messageCount, codeOperationId, previousMessageCount, previousPhase}
        SupervisorResumed => "SUPERVISOR_RESUMED",
        /// A conversation was rewound; `previousConversationId` is the head it replaced (what a restore puts back), `savedRef` where the replaced code was saved. data: {previousMessageCount, newMessageCount, messagesRemoved, codeOperationId, previousConversationId, conversationId, savedRef}
        ConversationRewound => "CONVERSATION_REWOUND",
        /// A rewind was undone. data: {rewindEventId, messageCount, codeOperationId, conversationId}
        ConversationRestored => "CONVERSATION_RESTORED",
        /// A task was resumed. data: {fromStatus, checkpointId, codeOperationId}
        TaskResumed => "TASK_RESUMED",
        /// A task was rewound to a checkpoint. data: {checkpointId, commitSha, conversationRewound, codeOperationId}
        TaskRewound => "TASK_REWOUND",
        /// A task was forked; the event's task is the fork. data: {sourceTaskId, checkpointId, messageCount, branch, codeOperationId}
        TaskForked => "TASK_FORKED",
        /// A branch was created at a checkpoint. data: {checkpointId, branch, commitSha, codeOperationId}
        BranchCreated => "BRANCH_CREATED",
        /// A code operation ended after its mutation had answered (one that a server stop interrupted before it was recorded is undone at the next start and ends FAILED). data: {codeOperationId, kind, status, commitSha, error}
        CodeOperationCompleted => "CODE_OPERATION_COMPLETED",
        /// A code operation was handed to the daemon that holds the task's code; what it changes is recorded when the daemon reports it DONE. data: {codeOperationId, kind, daemonId}
        CodeOperationQueued => "CODE_OPERATION_QUEUED",
    }
}

stored_enum! {
    /// What a code operation does to a task's repository.
    CodeOperationKind {
        /// The worktree was restored to a commit (rewinds, resume from a checkpoint, restore).
        Restore => "RESTORE",
        /// A branch was created at a commit.
        Branch => "BRANCH",
        /// A linked worktree on a new branch was created (forks, continued tasks).
        Worktree => "WORKTREE",
    }
}

stored_enum! {
    /// Where a code operation stands.
    CodeOperationStatus {
        /// Carried out.
        Done => "DONE",
        /// Waiting for the daemon that owns the worktree.
        Queued => "QUEUED",
        /// Did not happen (`error` says why): the daemon that owns the worktree reported a failure, or a server stop interrupted it and its git step was undone.
        Failed => "FAILED",
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::*;

    /// Every variant goes through the conversion the ORM uses on write and on read and
    /// comes back as itself, stored as the spelling `as_str` reports, which is also
    /// its GraphQL name; a spelling no variant has is an error.
    fn round_trips<E>(as_str: fn(E) -> &'static str)
    where
        E: ActiveEnum<Value = String> + EnumType + std::fmt::Debug,
    {
        let mut seen = 0;
        for variant in E::iter() {
            let stored = variant.to_value();
            assert_eq!(stored, as_str(variant));
            assert_eq!(E::try_from_value(&stored).unwrap(), variant);
            seen += 1;
        }
        assert!(seen > 0);
        assert_eq!(E::items().len(), seen);
        for item in E::items() {
            assert_eq!(item.name, as_str(item.value));
        }
        let err = E::try_from_value(&"NOT_A_VARIANT".to_owned()).unwrap_err();
        assert!(matches!(err, DbErr::Type(_)), "{err:?}");
    }

    #[test]
    fn every_variant_round_trips_through_its_stored_spelling() {
        round_trips(ContractStatus::as_str);
        round_trips(TaskStatus::as_str);
        round_trips(MessageRole::as_str);
        round_trips(TaskEventType::as_str);
        round_trips(HistoryEventType::as_str);
        round_trips(CodeOperationKind::as_str);
        round_trips(CodeOperationStatus::as_str);
    }
}
