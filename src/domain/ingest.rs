//! What agents and daemons report: conversation messages, task events and checkpoints.
//! Each call is one transaction holding the task's lock, with its history event.

use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::tasks::{lock_for_change, note_activity};
use super::{App, Viewer, limits};
use crate::entities::kinds::{HistoryEventType, MessageRole, TaskEventType};
use crate::entities::{checkpoint, conversation_snapshot, message, task_event};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
use crate::store::{checkpoints, conversations, idempotency, task_events, tasks};
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

const APPEND_MESSAGES: &str = "appendMessages";
const APPEND_TASK_EVENTS: &str = "appendTaskEvents";

/// The fingerprint of a batch: each item's kind and serialised body (already made for
/// the size check), so nothing is serialised twice.
fn request_hash<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut hasher = Sha256::new();
    for (kind, body) in items {
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        hasher.update(body.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn check_key(key: Option<&str>) -> AppResult<()> {
    match key {
        Some("") => Err(AppError::bad_input("idempotencyKey must not be empty")),
        other => limits::optional_name("idempotencyKey", other),
    }
}

/// What an earlier call with the same idempotency key stored, if any; a different
/// input under the same key is CONFLICT.
async fn replayed(
    db: &impl sea_orm::ConnectionTrait,
    owner_id: Uuid,
    mutation: &str,
    task_id: Uuid,
    key: Option<&str>,
    hash: &str,
) -> AppResult<Option<serde_json::Value>> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::find(db, owner_id, mutation, task_id, key).await? {
        Some(record) if record.request_hash == hash => {
            Ok(Some(serde_json::from_str(&record.result)?))
        }
        Some(_) => Err(AppError::conflict(
            "idempotencyKey was already used with a different input",
        )),
        None => Ok(None),
    }
}

fn stored_i64(result: &serde_json::Value, field: &str) -> AppResult<i64> {
    result[field]
        .as_i64()
        .ok_or_else(|| AppError::internal(format!("idempotency record lacks {field}")))
}

/// Appends up to 100 messages to a task's conversation (a supervisor task's
/// conversation is its contract's). Supervisor messages carry the contract's phase.
pub async fn append_messages(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    messages: Vec<NewMessage>,
    key: Option<String>,
) -> AppResult<AppendedMessages> {
    limits::batch("messages", messages.len())?;
    check_key(key.as_deref())?;
    let mut contents = Vec::with_capacity(messages.len());
    for m in &messages {
        contents.push(limits::json("message content", &m.content)?);
    }
    let hash = request_hash(
        messages
            .iter()
            .map(|m| m.role.as_str())
            .zip(contents.iter().map(String::as_str)),
    );
    let owner_id = viewer.owner_id;

    let txn = app.store.begin_write().await?;
    let (task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    if let Some(done) = replayed(
        &txn,
        owner_id,
        APPEND_MESSAGES,
        task_id,
        key.as_deref(),
        &hash,
    )
    .await?
    {
        drop(txn);
        let segment = Uuid::parse_str(done["conversationId"].as_str().unwrap_or_default())
            .map_err(|_| AppError::internal("idempotency record lacks conversationId"))?;
        let first = stored_i64(&done, "firstIndex")? as i32;
        let count = stored_i64(&done, "count")? as i32;
        let view = conversations::View::single(segment, first, first + count);
        let messages =
            conversations::range(app.store.db(), owner_id, &view, first, first + count).await?;
        return Ok(AppendedMessages {
            messages,
            message_count: stored_i64(&done, "messageCount")? as i32,
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
            id: Uuid::now_v7(),
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
        let result = json!({
            "conversationId": head.id.to_string(),
            "firstIndex": first,
            "count": count,
            "messageCount": message_count,
        });
        idempotency::insert(&txn, owner_id, APPEND_MESSAGES, task_id, key, hash, result).await?;
    }
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id,
            event_type: HistoryEventType::MessagesAppended,
            contract_id: task.contract_id,
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: json!({ "count": count, "firstIndex": first, "messageCount": message_count }),
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
    task_id: Uuid,
    events: Vec<NewTaskEvent>,
    key: Option<String>,
) -> AppResult<Vec<task_event::Model>> {
    limits::batch("events", events.len())?;
    check_key(key.as_deref())?;
    let mut datas = Vec::with_capacity(events.len());
    for e in &events {
        datas.push(limits::json("event data", &e.data)?);
    }
    let hash = request_hash(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .zip(datas.iter().map(String::as_str)),
    );
    let owner_id = viewer.owner_id;

    let txn = app.store.begin_write().await?;
    let (mut task, contract) = lock_for_change(&txn, viewer, task_id).await?;
    if let Some(done) = replayed(
        &txn,
        owner_id,
        APPEND_TASK_EVENTS,
        task_id,
        key.as_deref(),
        &hash,
    )
    .await?
    {
        drop(txn);
        let (first, last) = (
            stored_i64(&done, "firstSequence")?,
            stored_i64(&done, "lastSequence")?,
        );
        return task_events::range(app.store.db(), owner_id, task_id, first, last).await;
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
            id: Uuid::now_v7(),
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
        let result = json!({ "firstSequence": first, "lastSequence": last });
        idempotency::insert(
            &txn,
            owner_id,
            APPEND_TASK_EVENTS,
            task_id,
            key,
            hash,
            result,
        )
        .await?;
    }
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id,
            event_type: HistoryEventType::TaskEventsAppended,
            contract_id: contract.as_ref().map(|c| c.id),
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: json!({ "count": rows.len(), "firstSequence": first, "lastSequence": last }),
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
    task_id: Uuid,
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
    let snapshot_id = Uuid::now_v7();
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
            id: Uuid::now_v7(),
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
            event_type: HistoryEventType::CheckpointCreated,
            contract_id: contract.as_ref().map(|c| c.id),
            task_id: Some(task_id),
            phase: contract.map(|c| c.phase),
            data: json!({
                "checkpointId": checkpoint.id.to_string(),
                "number": number,
                "commitSha": checkpoint.commit_sha,
                "messageCount": checkpoint.message_count,
            }),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(checkpoint)
}
