use crate::entities::kinds::CodeOperationStatus;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use crate::domain::rewind::{self, Rewind};
use crate::graphql::types::checkpoint::Checkpoint;
use crate::graphql::types::code_operation::CodeOperation;
use crate::graphql::types::history_event::HistoryEvent;
use crate::graphql::types::task::Task;
use crate::graphql::{app, parse_id, parse_opt_id, to_id, viewer};

/// Exactly one of contractId (the supervisor's conversation) and taskId (a task's conversation).
#[derive(InputObject)]
pub struct RewindConversationInput {
    /// The contract whose supervisor conversation to rewind.
    pub contract_id: Option<ID>,
    /// The task whose conversation to rewind.
    pub task_id: Option<ID>,
    /// Keep messages 0..=toMessageIndex.
    pub to_message_index: Option<i32>,
    /// Drop this many messages from the end.
    pub by_message_count: Option<i32>,
    /// Also restore code to the newest checkpoint whose snapshot is a prefix of the new
    /// conversation. With no such checkpoint, or no repository, the rewind still succeeds with
    /// codeRewound false and codeOperation null. Refused (CONFLICT) while the task is RUNNING.
    pub rewind_code: Option<bool>,
}

/// The rewound conversation.
#[derive(SimpleObject)]
pub struct RewindConversationPayload {
    /// The contract, when its supervisor conversation was rewound.
    pub contract_id: Option<ID>,
    /// The task whose conversation was rewound.
    pub task_id: Option<ID>,
    /// Messages no longer in the conversation (still stored; see restoreConversation).
    pub messages_removed: i32,
    /// Messages in the conversation now.
    pub new_message_count: i32,
    /// True only when code was actually restored (or the restore was accepted by the daemon that owns the worktree).
    ///
    /// On a daemon: true once the daemon reported the restore DONE within the
    /// mutation's wait; while the operation is QUEUED it is false, nothing is rewound
    /// yet (messagesRemoved 0), and the rewind is recorded when the daemon reports DONE.
    pub code_rewound: bool,
    /// The code restore, when one ran (QUEUED or FAILED on a daemon: follow it with
    /// `codeOperation(id:)` or the timeline's CODE_OPERATION_COMPLETED).
    pub code_operation: Option<CodeOperation>,
    /// The timeline event that records this rewind; restoreConversation takes it to
    /// undo. While the operation is QUEUED on a daemon: its CODE_OPERATION_QUEUED event
    /// (the CONVERSATION_REWOUND event comes with DONE).
    pub event: HistoryEvent,
}

/// Undo the rewind that this CONVERSATION_REWOUND event records (the event's id); any other
/// event is BAD_USER_INPUT. CONFLICT unless the conversation is still exactly as that rewind
/// left it (nothing appended, no later rewind or restore). When the rewind restored code, the
/// worktree goes back to the state that rewind saved (files, uncommitted edits and untracked
/// files), reported as a RESTORE code operation.
#[derive(InputObject)]
pub struct RestoreConversationInput {
    /// The id of the CONVERSATION_REWOUND event.
    pub rewind_event_id: ID,
}

/// The restored conversation.
#[derive(SimpleObject)]
pub struct RestoreConversationPayload {
    /// Messages in the conversation after the restore.
    pub message_count: i32,
    /// The CONVERSATION_RESTORED event.
    pub event: HistoryEvent,
    /// The code restore, when the rewind had restored code.
    pub code_operation: Option<CodeOperation>,
}

/// Restores a task's code (and optionally its conversation) to a checkpoint.
#[derive(InputObject)]
pub struct RewindTaskInput {
    /// The task; not while it is RUNNING.
    pub task_id: ID,
    /// A checkpoint of the task.
    pub checkpoint_id: ID,
    /// Also move the conversation to the checkpoint's snapshot.
    pub rewind_conversation: Option<bool>,
}

/// The rewound task.
#[derive(SimpleObject)]
pub struct RewindTaskPayload {
    /// The task after the rewind.
    pub task: Task,
    /// The checkpoint it was rewound to.
    pub checkpoint: Checkpoint,
    /// The code restore (null when the task has no repository).
    pub code_operation: Option<CodeOperation>,
    /// Whether the conversation moved to the checkpoint's snapshot.
    pub conversation_rewound: bool,
}

#[derive(Default)]
pub struct RewindMutation;

#[Object]
impl RewindMutation {
    /// Moves a conversation back, keeping the dropped messages addressable; writes
    /// CONVERSATION_REWOUND.
    async fn rewind_conversation(
        &self,
        ctx: &Context<'_>,
        input: RewindConversationInput,
    ) -> Result<RewindConversationPayload> {
        let rewind = Rewind {
            contract_id: parse_opt_id(input.contract_id.as_ref(), "contract")?,
            task_id: parse_opt_id(input.task_id.as_ref(), "task")?,
            to_message_index: input.to_message_index,
            by_message_count: input.by_message_count,
            rewind_code: input.rewind_code.unwrap_or(false),
        };
        let done = rewind::rewind_conversation(app(ctx), viewer(ctx)?, rewind).await?;
        Ok(RewindConversationPayload {
            contract_id: done.contract_id.map(to_id),
            task_id: Some(to_id(done.task_id)),
            messages_removed: done.messages_removed,
            new_message_count: done.new_message_count,
            code_rewound: done
                .code_operation
                .as_ref()
                .is_some_and(|o| o.status == CodeOperationStatus::Done),
            code_operation: done.code_operation.map(CodeOperation),
            event: HistoryEvent(done.event),
        })
    }

    /// Undoes a rewind; writes CONVERSATION_RESTORED.
    async fn restore_conversation(
        &self,
        ctx: &Context<'_>,
        input: RestoreConversationInput,
    ) -> Result<RestoreConversationPayload> {
        let id = parse_id(&input.rewind_event_id, "history event")?;
        let done = rewind::restore_conversation(app(ctx), viewer(ctx)?, id).await?;
        Ok(RestoreConversationPayload {
            message_count: done.message_count,
            event: HistoryEvent(done.event),
            code_operation: done.code_operation.map(CodeOperation),
        })
    }

    /// Restores a task's code to a checkpoint (and its conversation when asked); writes
    /// TASK_REWOUND.
    async fn rewind_task(
        &self,
        ctx: &Context<'_>,
        input: RewindTaskInput,
    ) -> Result<RewindTaskPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let checkpoint_id = parse_id(&input.checkpoint_id, "checkpoint")?;
        let conversation = input.rewind_conversation.unwrap_or(false);
        let done =
            rewind::rewind_task(app(ctx), viewer(ctx)?, task_id, checkpoint_id, conversation)
                .await?;
        Ok(RewindTaskPayload {
            task: Task(done.task),
            checkpoint: Checkpoint(done.checkpoint),
            code_operation: done.code_operation.map(CodeOperation),
            conversation_rewound: done.conversation_rewound,
        })
    }
}
