//! Rewinding and restoring conversations, and rewinding a task to a checkpoint.
//!
//! A rewind adds a head segment over a prefix of the same rows (O(1), nothing copied or
//! deleted); its history event keeps the previous head, so `restore` can put it back.

use serde_json::json;
use uuid::Uuid;

use super::code;
use super::tasks::lock_for_change;
use super::{App, Viewer};
use crate::entities::kinds::{HistoryEventType, TaskStatus};
use crate::entities::{checkpoint, code_operation, history_event, task};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
use crate::store::{contracts, conversations, tasks};

/// Which conversation to rewind and how far.
pub struct Rewind {
    pub contract_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub to_message_index: Option<i32>,
    pub by_message_count: Option<i32>,
    pub rewind_code: bool,
}

pub struct Rewound {
    pub contract_id: Option<Uuid>,
    pub task_id: Uuid,
    pub messages_removed: i32,
    pub new_message_count: i32,
    pub code_operation: Option<code_operation::Model>,
    pub event: history_event::Model,
}

/// The task whose conversation a contract id (its supervisor's) or task id names.
async fn conversation_task(
    app: &App,
    viewer: &Viewer,
    contract_id: Option<Uuid>,
    task_id: Option<Uuid>,
) -> AppResult<Uuid> {
    match (contract_id, task_id) {
        (Some(c), None) => {
            let states =
                contracts::supervisors_by_contract(app.store.db(), viewer.owner_id, &[c]).await?;
            states
                .first()
                .map(|s| s.task_id)
                .ok_or_else(|| AppError::not_found("contract"))
        }
        (None, Some(t)) => Ok(t),
        _ => Err(AppError::bad_input(
            "give exactly one of contractId and taskId",
        )),
    }
}

/// How many messages to keep, per API.md: between 1 and all messages must go.
fn kept(length: i32, to_index: Option<i32>, by_count: Option<i32>) -> AppResult<i32> {
    let keep = match (to_index, by_count) {
        (Some(i), None) if i < 0 => {
            return Err(AppError::bad_input("toMessageIndex must not be negative"));
        }
        (None, Some(n)) if n < 0 => {
            return Err(AppError::bad_input("byMessageCount must not be negative"));
        }
        // At i32::MAX the index is beyond any conversation; refused below.
        (Some(i), None) => i.saturating_add(1),
        (None, Some(n)) => length - n,
        _ => {
            return Err(AppError::bad_input(
                "give exactly one of toMessageIndex and byMessageCount",
            ));
        }
    };
    if length == 0 {
        return Err(AppError::bad_input("the conversation is empty"));
    }
    if keep >= length || keep < 0 {
        return Err(AppError::bad_input(format!(
            "a rewind must remove between 1 and all of the conversation's {length} messages"
        )));
    }
    Ok(keep)
}

pub async fn rewind_conversation(app: &App, viewer: &Viewer, input: Rewind) -> AppResult<Rewound> {
    let task_id = conversation_task(app, viewer, input.contract_id, input.task_id).await?;
    let _guard = app.locks.task(task_id).await;
    let task = code::read_task(app, viewer, task_id).await?;
    let pre_head = task.conversation_id;
    let pre_view = app.store.conversation(pre_head).await?;
    let keep = kept(
        pre_view.length,
        input.to_message_index,
        input.by_message_count,
    )?;
    let not_running = |t: &task::Model| match t.status {
        TaskStatus::Running if input.rewind_code => Err(AppError::conflict(
            "the task is RUNNING; stop it before rewinding its code",
        )),
        _ => Ok(()),
    };
    not_running(&task)?;
    let mut intent = None;
    if input.rewind_code {
        let applies =
            code::newest_prefix_checkpoint(app.store.db(), viewer, task_id, &pre_view, keep)
                .await?;
        if let Some((cp, _)) = applies {
            intent = code::restore_intent(viewer, &task, &cp.commit_sha);
        }
    }
    let step = code::announce(app, intent).await?;
    let checked = code::recheck(viewer, task_id, &step, not_running).await;
    let (txn, ran) = step.run(app, checked).await?;
    let recorded = async {
        let (mut now_task, contract) = lock_for_change(&txn, viewer, task_id).await?;
        not_running(&now_task)?;
        // Decided again under the lock, so a racing append lands wholly before or after.
        let head = now_task.conversation_id;
        let view = app.store.conversation_in(&txn, head).await?;
        let keep = kept(view.length, input.to_message_index, input.by_message_count)?;
        if ran.is_some() && (head != pre_head || view.length != pre_view.length) {
            return Err(AppError::conflict(
                "the conversation changed while its code was rewound; try again",
            ));
        }
        let segment = view.snapshot_segment(head, keep);
        let new_head =
            conversations::branch_at(&txn, viewer.owner_id, task_id, segment, keep).await?;
        now_task.conversation_id = new_head.id;
        now_task.updated_at = crate::time::now();
        let now_task = tasks::update(&txn, now_task).await?;
        let op = code::record(&txn, ran.as_ref()).await?;
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::ConversationRewound,
                contract_id: now_task.contract_id,
                task_id: Some(task_id),
                phase: contract.as_ref().map(|c| c.phase.clone()),
                data: json!({
                    "previousMessageCount": view.length,
                    "newMessageCount": keep,
                    "messagesRemoved": view.length - keep,
                    "codeOperationId": op.as_ref().map(|o| o.id.to_string()),
                    "previousConversationId": head.to_string(),
                    "conversationId": new_head.id.to_string(),
                    "savedRef": op.as_ref().and_then(|o| o.saved_ref.clone()),
                }),
            },
        )
        .await?;
        let contract_id = contract.map(|c| c.id).filter(|_| now_task.is_supervisor);
        Ok((event, (op, contract_id, view.length, keep)))
    }
    .await;
    let (event, (op, contract_id, length, keep)) = code::settle(app, txn, ran, recorded).await?;
    Ok(Rewound {
        contract_id,
        task_id,
        messages_removed: length - keep,
        new_message_count: keep,
        code_operation: op,
        event,
    })
}

pub struct Restored {
    pub message_count: i32,
    pub event: history_event::Model,
    pub code_operation: Option<code_operation::Model>,
}

fn data_uuid(data: &serde_json::Value, key: &str) -> AppResult<Uuid> {
    data[key]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| AppError::internal(format!("rewind event lacks {key}")))
}

/// Undoes the rewind that `rewind_event_id` records, when the conversation is still
/// exactly as that rewind left it.
pub async fn restore_conversation(
    app: &App,
    viewer: &Viewer,
    rewind_event_id: Uuid,
) -> AppResult<Restored> {
    let rewind = history::by_id(app.store.db(), viewer.owner_id, rewind_event_id)
        .await?
        .ok_or_else(|| AppError::not_found("history event"))?;
    if rewind.event_type != HistoryEventType::ConversationRewound {
        return Err(AppError::bad_input(
            "rewindEventId must name a CONVERSATION_REWOUND event",
        ));
    }
    let data: serde_json::Value = serde_json::from_str(&rewind.data)?;
    let task_id = rewind
        .task_id
        .ok_or_else(|| AppError::internal("rewind event without task"))?;
    let rewound_head = data_uuid(&data, "conversationId")?;
    let previous_head = data_uuid(&data, "previousConversationId")?;
    let saved_ref = data["savedRef"].as_str().map(str::to_owned);

    let _guard = app.locks.task(task_id).await;
    let unchanged = |task: &task::Model, length: i32| {
        task.conversation_id == rewound_head
            && Some(length as i64) == data["newMessageCount"].as_i64()
    };
    let task = code::read_task(app, viewer, task_id).await?;
    let head = conversations::by_id(app.store.db(), task.conversation_id).await?;
    if !unchanged(&task, head.length) {
        return Err(AppError::conflict(
            "the conversation changed since that rewind (messages appended, or a later rewind or restore)",
        ));
    }
    let intent = match (&saved_ref, code::code_dir(&task)) {
        (Some(saved), Some(dir)) => {
            Some(code::Intent::unrestore(viewer, task_id, &dir, saved).await?)
        }
        _ => None,
    };
    let step = code::announce(app, intent).await?;
    // The conversation itself is checked again when recording.
    let (txn, ran) = step.run(app, Ok(())).await?;
    let recorded = async {
        let (mut now_task, contract) = lock_for_change(&txn, viewer, task_id).await?;
        let head = conversations::by_id(&txn, now_task.conversation_id).await?;
        if !unchanged(&now_task, head.length) {
            return Err(AppError::conflict(
                "the conversation changed while restoring; try again",
            ));
        }
        let previous = conversations::by_id(&txn, previous_head).await?;
        now_task.conversation_id = previous.id;
        now_task.updated_at = crate::time::now();
        tasks::update(&txn, now_task.clone()).await?;
        let op = code::record(&txn, ran.as_ref()).await?;
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::ConversationRestored,
                contract_id: now_task.contract_id,
                task_id: Some(task_id),
                phase: contract.map(|c| c.phase),
                data: json!({
                    "rewindEventId": rewind.id.to_string(),
                    "messageCount": previous.length,
                    "codeOperationId": op.as_ref().map(|o| o.id.to_string()),
                    "conversationId": previous.id.to_string(),
                }),
            },
        )
        .await?;
        Ok((event, (op, previous.length)))
    }
    .await;
    let (event, (op, message_count)) = code::settle(app, txn, ran, recorded).await?;
    Ok(Restored {
        message_count,
        event,
        code_operation: op,
    })
}

pub struct TaskRewound {
    pub task: task::Model,
    pub checkpoint: checkpoint::Model,
    pub code_operation: Option<code_operation::Model>,
    pub conversation_rewound: bool,
}

/// Restores a task's code to a checkpoint, and its conversation to the checkpoint's
/// snapshot when asked. Refused while the task is RUNNING.
pub async fn rewind_task(
    app: &App,
    viewer: &Viewer,
    task_id: Uuid,
    checkpoint_id: Uuid,
    rewind_conversation: bool,
) -> AppResult<TaskRewound> {
    let _guard = app.locks.task(task_id).await;
    let task = code::read_task(app, viewer, task_id).await?;
    let not_running = |t: &task::Model| match t.status {
        TaskStatus::Running => Err(AppError::conflict(
            "the task is RUNNING; stop it before rewinding it",
        )),
        _ => Ok(()),
    };
    not_running(&task)?;
    let (cp, snapshot) =
        code::checkpoint_of(app.store.db(), viewer, checkpoint_id, task_id).await?;
    let intent = code::restore_intent(viewer, &task, &cp.commit_sha);
    let step = code::announce(app, intent).await?;
    let checked = code::recheck(viewer, task_id, &step, not_running).await;
    let (txn, ran) = step.run(app, checked).await?;
    let recorded = async {
        let (mut now_task, contract) = lock_for_change(&txn, viewer, task_id).await?;
        not_running(&now_task)?;
        if rewind_conversation {
            let head = conversations::branch_at(
                &txn,
                viewer.owner_id,
                task_id,
                snapshot.conversation_id,
                snapshot.length,
            )
            .await?;
            now_task.conversation_id = head.id;
        }
        now_task.updated_at = crate::time::now();
        let now_task = tasks::update(&txn, now_task).await?;
        let op = code::record(&txn, ran.as_ref()).await?;
        let event = history::insert(
            &txn,
            NewEvent {
                owner_id: viewer.owner_id,
                event_type: HistoryEventType::TaskRewound,
                contract_id: now_task.contract_id,
                task_id: Some(task_id),
                phase: contract.map(|c| c.phase),
                data: json!({
                    "checkpointId": cp.id.to_string(),
                    "commitSha": cp.commit_sha,
                    "conversationRewound": rewind_conversation,
                    "codeOperationId": op.as_ref().map(|o| o.id.to_string()),
                }),
            },
        )
        .await?;
        Ok((event, (op, now_task)))
    }
    .await;
    let (_, (op, task)) = code::settle(app, txn, ran, recorded).await?;
    Ok(TaskRewound {
        task,
        checkpoint: cp,
        code_operation: op,
        conversation_rewound: rewind_conversation,
    })
}
