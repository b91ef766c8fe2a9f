use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};

use crate::domain::ingest::{self, NewCheckpoint, NewMessage, NewTaskEvent};
use crate::entities::kinds::{MessageRole, TaskEventType};
use crate::graphql::types::checkpoint::Checkpoint;
use crate::graphql::types::message::Message;
use crate::graphql::types::task_event::TaskEvent;
use crate::graphql::{app, parse_id, viewer};

/// One message to append.
#[derive(InputObject)]
pub struct MessageInput {
    /// Who wrote it.
    pub role: MessageRole,
    /// Content blocks (at most 256 KiB serialised).
    pub content: Json<serde_json::Value>,
}

/// Messages to append to a task's conversation.
#[derive(InputObject)]
pub struct AppendMessagesInput {
    /// The task (a supervisor's task id appends to its contract's conversation).
    pub task_id: ID,
    /// 1 to 100 messages.
    pub messages: Vec<MessageInput>,
    /// Makes a retry safe: the same key and input return the first call's payload.
    pub idempotency_key: Option<String>,
}

/// The appended messages.
#[derive(SimpleObject)]
pub struct AppendMessagesPayload {
    /// The stored messages, with their indexes.
    pub messages: Vec<Message>,
    /// Messages in the conversation after the append.
    pub message_count: i32,
}

/// One event to append.
#[derive(InputObject)]
pub struct TaskEventInput {
    /// What kind of entry this is.
    #[graphql(name = "type")]
    pub event_type: TaskEventType,
    /// The payload (at most 256 KiB serialised).
    pub data: Json<serde_json::Value>,
}

/// Events to append to a task's output stream.
#[derive(InputObject)]
pub struct AppendTaskEventsInput {
    /// The task.
    pub task_id: ID,
    /// 1 to 100 events.
    pub events: Vec<TaskEventInput>,
    /// Makes a retry safe: the same key and input return the first call's payload.
    pub idempotency_key: Option<String>,
}

/// The appended events.
#[derive(SimpleObject)]
pub struct AppendTaskEventsPayload {
    /// The stored events, with their sequences.
    pub events: Vec<TaskEvent>,
}

/// A checkpoint to record.
#[derive(InputObject)]
pub struct RecordCheckpointInput {
    /// The task.
    pub task_id: ID,
    /// The commit: 7 to 64 hexadecimal characters.
    pub commit_sha: String,
    /// What the checkpoint is about (at most 64 KiB).
    pub message: String,
    /// The branch the commit was made on.
    pub branch: Option<String>,
    /// Files changed, in any JSON shape (at most 256 KiB serialised).
    pub files_changed: Option<Json<serde_json::Value>>,
}

/// The recorded checkpoint.
#[derive(SimpleObject)]
pub struct RecordCheckpointPayload {
    /// The new checkpoint, with the conversation position it captured.
    pub checkpoint: Checkpoint,
}

#[derive(Default)]
pub struct IngestMutation;

#[Object]
impl IngestMutation {
    /// Appends messages to a conversation; writes one MESSAGES_APPENDED for the batch.
    async fn append_messages(
        &self,
        ctx: &Context<'_>,
        input: AppendMessagesInput,
    ) -> Result<AppendMessagesPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let messages = input
            .messages
            .into_iter()
            .map(|m| NewMessage {
                role: m.role,
                content: m.content.0,
            })
            .collect();
        let done = ingest::append_messages(
            app(ctx),
            viewer(ctx)?,
            task_id,
            messages,
            input.idempotency_key,
        )
        .await?;
        Ok(AppendMessagesPayload {
            messages: done.messages.into_iter().map(Message).collect(),
            message_count: done.message_count,
        })
    }

    /// Appends events to a task's stream; writes one TASK_EVENTS_APPENDED for the batch.
    async fn append_task_events(
        &self,
        ctx: &Context<'_>,
        input: AppendTaskEventsInput,
    ) -> Result<AppendTaskEventsPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let events = input
            .events
            .into_iter()
            .map(|e| NewTaskEvent {
                event_type: e.event_type,
                data: e.data.0,
            })
            .collect();
        let stored = ingest::append_task_events(
            app(ctx),
            viewer(ctx)?,
            task_id,
            events,
            input.idempotency_key,
        )
        .await?;
        Ok(AppendTaskEventsPayload {
            events: stored.into_iter().map(TaskEvent).collect(),
        })
    }

    /// Records a checkpoint with the task's conversation position; writes CHECKPOINT_CREATED.
    async fn record_checkpoint(
        &self,
        ctx: &Context<'_>,
        input: RecordCheckpointInput,
    ) -> Result<RecordCheckpointPayload> {
        let task_id = parse_id(&input.task_id, "task")?;
        let checkpoint = NewCheckpoint {
            commit_sha: input.commit_sha,
            message: input.message,
            branch: input.branch,
            files_changed: input.files_changed.map(|j| j.0),
        };
        let stored = ingest::record_checkpoint(app(ctx), viewer(ctx)?, task_id, checkpoint).await?;
        Ok(RecordCheckpointPayload {
            checkpoint: Checkpoint(stored),
        })
    }
}
