//! The enumerations of the data model and their stored spellings. They derive the
//! GraphQL enum too: the API names are the stored names, so one definition serves both.

use async_graphql::Enum;

use crate::error::AppError;

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The spelling stored in the database (and used in the API).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            pub fn from_stored(s: &str) -> Result<Self, AppError> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(AppError::internal(format!(
                        concat!("unknown stored ", stringify!($name), " {:?}"), other
                    ))),
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
    }
}

impl TaskStatus {
    /// Whether `updateTaskStatus` may move a task from `self` to `to` (API.md, Lifecycles).
    /// Staying in the same status is handled by the caller (it succeeds with no event).
    pub fn can_move_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Pending, Running | Failed)
                | (Running, Paused | Interrupted | Done | Failed)
                | (Paused, Running | Interrupted | Failed)
        )
    }
}

impl ContractStatus {
    pub fn can_move_to(self, to: ContractStatus) -> bool {
        use ContractStatus::*;
        matches!(
            (self, to),
            (Active, Completed | Archived) | (Completed, Archived)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::from_stored(s.as_str()).unwrap(), *s);
        }
        for s in HistoryEventType::ALL {
            assert_eq!(HistoryEventType::from_stored(s.as_str()).unwrap(), *s);
        }
        assert!(TaskStatus::from_stored("nope").is_err());
    }

    #[test]
    fn task_transitions_follow_the_contract() {
        use TaskStatus::*;
        assert!(Pending.can_move_to(Running));
        assert!(!Done.can_move_to(Running));
        assert!(!Interrupted.can_move_to(Running));
        assert!(!Failed.can_move_to(Pending));
        assert!(Paused.can_move_to(Interrupted));
        assert!(!Pending.can_move_to(Done));
    }

    #[test]
    fn contract_transitions_follow_the_contract() {
        use ContractStatus::*;
        assert!(Active.can_move_to(Completed));
        assert!(Completed.can_move_to(Archived));
        assert!(!Archived.can_move_to(Active));
        assert!(!Completed.can_move_to(Active));
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
