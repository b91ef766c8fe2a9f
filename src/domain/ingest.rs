//! What agents and daemons report: conversation messages, task events and checkpoints.
//! Each call is one transaction holding the task's lock, with its history event.

use super::idempotent;
use super::tasks::{lock_for_change, note_activity};
use super::{App, Viewer, limits};
use crate::entities::event_data as data;
use crate::entities::ids::{CheckpointId, MessageId, SnapshotId, TaskEventId, TaskId};
use crate::entities::kinds::{MessageRole, TaskEventType};
use crate::entities::{checkpoint, conversation_snapshot, message, task_event};
use crate::error::AppResult;
use crate::store::history::{self, NewEvent};
use crate::store::{checkpoints, conversations, task_events, tasks};
use crate::time::now;

pub struct NewMessage {
    pub role: MessageRole,
    pub content: serde_json::Value,
}

pub struct NewTaskEvent {
    pub event_type: TaskEventType,
    pub data: serde_json::Value,
}

pub struct AppendedMessages {
    pub messages: Vec<message::Model>,
    pub message_count: i32,
}

/// Appends up to 100 messages to a task's conversation (a supervisor task's
/// conversation is its contract's). Supervisor messages carry the contract's phase.
pub async fn append_messages(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    messages: Vec<NewMessage>,
    key: Option<String>,
) -> AppResult<AppendedMessages> {
    let (contents, hash) = idempotent::checked_batch(
        "messages",
        "message content",
        &messages,
        key.as_deref(),
        |m| (m.role.as_str(), &m.content),
    )?;
    let owner_id = viewer.owner_id;

    let txn = app.store.begin_write().await?;
    let (task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    let done: Option<idempotent::MessagesAppended> =
        idempotent::replayed(viewer.scope(&txn), task_id, key.as_deref(), &hash).await?;
    if let Some(done) = done {
        drop(txn);
        let (first, end) = (done.first_index, done.first_index + done.count);
        let view = conversations::View::single(done.conversation_id, first, end);
        let messages = conversations::range(app.store.scope(owner_id), &view, first, end).await?;
        return Ok(AppendedMessages {
            messages,
            message_count: done.message_count,
        });
    }

    let head = conversations::by_id(&txn, task.conversation_id).await?;
    let first = head.length;
    let at = now();
    let phase = if task.is_supervisor {
        contract.as_ref().map(|c| c.phase.clone())
    } else {
        None
    };
    let rows: Vec<message::Model> = messages
        .iter()
        .zip(contents)
        .enumerate()
        .map(|(i, (m, content))| message::Model {
            conversation_id: head.id,
            position: first + i as i32,
            id: MessageId::new(),
            owner_id,
            role: m.role,
            content,
            phase: phase.clone(),
            created_at: at,
        })
        .collect();
    let count = rows.len() as i32;
    let message_count = first + count;
    conversations::insert_messages(&txn, rows.clone()).await?;
    conversations::set_length(&txn, head.id, message_count).await?;
    note_activity(&txn, &task, contract.as_ref(), at).await?;
    if let Some(key) = &key {
        let outcome = idempotent::MessagesAppended {
            conversation_id: head.id,
            first_index: first,
            count,
            message_count,
        };
        idempotent::remember(viewer.scope(&txn), task_id, key, hash, &outcome).await?;
    }
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id,
            contract_id: task.contract_id,
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: data::MessagesAppended {
                count,
                first_index: first,
                message_count,
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(AppendedMessages {
        messages: rows,
        message_count,
    })
}

/// Appends up to 100 events to a task's output stream with gapless sequences.
pub async fn append_task_events(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    events: Vec<NewTaskEvent>,
    key: Option<String>,
) -> AppResult<Vec<task_event::Model>> {
    let (datas, hash) =
        idempotent::checked_batch("events", "event data", &events, key.as_deref(), |e| {
            (e.event_type.as_str(), &e.data)
        })?;
    let owner_id = viewer.owner_id;

    let txn = app.store.begin_write().await?;
    let (mut task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    let done: Option<idempotent::TaskEventsAppended> =
        idempotent::replayed(viewer.scope(&txn), task_id, key.as_deref(), &hash).await?;
    if let Some(done) = done {
        drop(txn);
        let (first, last) = (done.first_sequence, done.last_sequence);
        return task_events::range(app.store.scope(owner_id), task_id, first, last).await;
    }
    let first = task.event_count + 1;
    let at = now();
    let rows: Vec<task_event::Model> = events
        .iter()
        .zip(datas)
        .enumerate()
        .map(|(i, (e, data))| task_event::Model {
            task_id,
            sequence: first + i as i64,
            id: TaskEventId::new(),
            owner_id,
            event_type: e.event_type,
            data,
            created_at: at,
        })
        .collect();
    let last = first + rows.len() as i64 - 1;
    task_events::insert_many(&txn, rows.clone()).await?;
    task.event_count = last;
    task.updated_at = at;
    tasks::update(&txn, task).await?;
    if let Some(key) = &key {
        let outcome = idempotent::TaskEventsAppended {
            first_sequence: first,
            last_sequence: last,
        };
        idempotent::remember(viewer.scope(&txn), task_id, key, hash, &outcome).await?;
    }
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id,
            contract_id: contract.as_ref().map(|c| c.id),
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: data::TaskEventsAppended {
                count: rows.len() as i64,
                first_sequence: first,
                last_sequence: last,
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(rows)
}

pub struct NewCheckpoint {
    pub commit_sha: String,
    pub message: String,
    pub branch: Option<String>,
    pub files_changed: Option<serde_json::Value>,
}

/// Records a checkpoint: a commit plus the task's conversation position right now
/// (a snapshot row pointing at the head segment and its length, not a copy).
pub async fn record_checkpoint(
    app: &App,
    viewer: &Viewer,
    task_id: TaskId,
    input: NewCheckpoint,
) -> AppResult<checkpoint::Model> {
    let commit_sha = limits::commit_sha(&input.commit_sha)?;
    limits::text("message", Some(&input.message))?;
    limits::optional_name("branch", input.branch.as_deref())?;
    let files_changed = match &input.files_changed {
        Some(v) => Some(limits::json("filesChanged", v)?),
        None => None,
    };
    let owner_id = viewer.owner_id;
    let txn = app.store.begin_write().await?;
    let (mut task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    let view = app
        .store
        .conversation_in(&txn, task.conversation_id)
        .await?;
    let at = now();
    let snapshot_id = SnapshotId::new();
    checkpoints::insert_snapshot(
        &txn,
        conversation_snapshot::Model {
            id: snapshot_id,
            owner_id,
            task_id,
            conversation_id: view.snapshot_segment(task.conversation_id, view.length),
            length: view.length,
            created_at: at,
        },
    )
    .await?;
    task.checkpoint_count += 1;
    task.updated_at = at;
    let number = task.checkpoint_count;
    tasks::update(&txn, task).await?;
    let checkpoint = checkpoints::insert(
        &txn,
        checkpoint::Model {
            id: CheckpointId::new(),
            owner_id,
            task_id,
            number,
            commit_sha,
            branch: input.branch,
            message: input.message,
            files_changed,
            snapshot_id,
            message_count: view.length,
            created_at: at,
        },
    )
    .await?;
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id,
            contract_id: contract.as_ref().map(|c| c.id),
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: data::CheckpointCreated {
                checkpoint_id: checkpoint.id,
                number,
                commit_sha: checkpoint.commit_sha.clone(),
                message_count: checkpoint.message_count,
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(checkpoint)
}
