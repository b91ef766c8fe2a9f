//! Rewinding and restoring conversations, and rewinding a task to a checkpoint.
//!
//! A rewind adds a head segment over a prefix of the same rows (O(1), nothing copied or
//! deleted); its history event keeps the previous head, so `restore` can put it back.

use sea_orm::DatabaseTransaction;

use super::code::{self, Change, Event, Intent, Outcome, Recorded};
use super::tasks::lock_for_change;
use super::{App, Viewer};
use crate::entities::event_data::{self as data, EventData};
use crate::entities::ids::{CheckpointId, ContractId, ConversationId, HistoryEventId, TaskId};
use crate::entities::kinds::TaskStatus;
use crate::entities::{checkpoint, code_operation, conversation_snapshot, history_event, task};
use crate::error::{AppError, AppResult};
use crate::store::{contracts, conversations, history, tasks};

/// Which conversation to rewind and how far.
#[derive(Clone)]
pub struct Rewind {
    pub contract_id: Option<ContractId>,
    pub task_id: Option<TaskId>,
    pub to_message_index: Option<i32>,
    pub by_message_count: Option<i32>,
    pub rewind_code: bool,
}

pub struct Rewound {
    pub contract_id: Option<ContractId>,
    pub task_id: TaskId,
    pub messages_removed: i32,
    pub new_message_count: i32,
    pub code_operation: Option<code_operation::Model>,
    pub event: history_event::Model,
}

/// The task whose conversation a contract id (its supervisor's) or task id names.
async fn conversation_task(
    app: &App,
    viewer: &Viewer,
    contract_id: Option<ContractId>,
    task_id: Option<TaskId>,
) -> AppResult<TaskId> {
    match (contract_id, task_id) {
        (Some(c), None) => {
            let states =
                contracts::supervisors_by_contract(viewer.scope(app.store.db()), &[c]).await?;
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
    let contract_id = input.contract_id;
    match code::run(app, viewer, &RewindConversation { task_id, input }).await? {
        Outcome::Done(done) => {
            let (contract_id, length, keep) = done.output;
            Ok(Rewound {
                contract_id,
                task_id,
                messages_removed: length - keep,
                new_message_count: keep,
                code_operation: done.code_operation,
                event: done.event,
            })
        }
        // The daemon has not restored the code yet: nothing is rewound so far.
        Outcome::Pending {
            code_operation,
            event,
        } => Ok(Rewound {
            contract_id,
            task_id,
            messages_removed: 0,
            new_message_count: message_count(app, viewer, task_id).await?,
            code_operation: Some(code_operation),
            event,
        }),
    }
}

/// The length of the task's conversation now.
async fn message_count(app: &App, viewer: &Viewer, task_id: TaskId) -> AppResult<i32> {
    let task = tasks::by_id(viewer.scope(app.store.db()), task_id)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    Ok(app.store.conversation(task.conversation_id).await?.length)
}

#[derive(Clone)]
struct RewindConversation {
    task_id: TaskId,
    input: Rewind,
}

/// The conversation as planned: its head and length when the git step was decided.
struct Planned {
    head: ConversationId,
    length: i32,
}

impl Change for RewindConversation {
    type Plan = Planned;
    /// The supervisor's contract (for a supervisor's conversation), the length before and
    /// the messages kept.
    type Output = (Option<ContractId>, i32, i32);

    fn task_id(&self) -> Option<TaskId> {
        Some(self.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<(Planned, Option<Intent>)> {
        let task = code::read_task(app, viewer, self.task_id).await?;
        let view = app.store.conversation(task.conversation_id).await?;
        let keep = self.kept(view.length)?;
        self.check(&task)?;
        let mut intent = None;
        if self.input.rewind_code {
            let applies =
                code::newest_prefix_checkpoint(app.store.db(), viewer, task.id, &view, keep)
                    .await?;
            if let Some((cp, _)) = applies {
                intent = code::restore_intent(viewer, &task, &cp.commit_sha);
            }
        }
        let planned = Planned {
            head: task.conversation_id,
            length: view.length,
        };
        Ok((planned, intent))
    }

    fn check(&self, task: &task::Model) -> AppResult<()> {
        match task.status {
            TaskStatus::Running if self.input.rewind_code => Err(AppError::conflict(
                "the task is RUNNING; stop it before rewinding its code",
            )),
            _ => Ok(()),
        }
    }

    async fn record(
        &self,
        app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        planned: Planned,
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<Self::Output>> {
        let (mut task, contract) = lock_for_change(txn, viewer, self.task_id).await?;
        self.check(&task)?;
        // Decided again under the lock, so a racing append lands wholly before or after.
        let head = task.conversation_id;
        let view = app.store.conversation_in(txn, head).await?;
        let keep = self.kept(view.length)?;
        if op.is_some() && (head != planned.head || view.length != planned.length) {
            return Err(AppError::conflict(
                "the conversation changed while its code was rewound; try again",
            ));
        }
        let segment = view.snapshot_segment(head, keep);
        let new_head = conversations::branch_at(viewer.scope(txn), task.id, segment, keep).await?;
        task.conversation_id = new_head.id;
        task.updated_at = crate::time::now();
        let task = tasks::update(txn, task).await?;
        let event = Event::on(
            &task,
            contract.as_ref(),
            data::ConversationRewound {
                previous_message_count: view.length,
                new_message_count: keep,
                messages_removed: view.length - keep,
                code_operation_id: op.map(|o| o.id),
                previous_conversation_id: head,
                conversation_id: new_head.id,
                saved_ref: op.and_then(|o| o.saved_ref.clone()),
            }
            .into(),
        );
        let contract_id = contract.map(|c| c.id).filter(|_| task.is_supervisor);
        Ok(Recorded {
            event,
            output: (contract_id, view.length, keep),
        })
    }
}

impl RewindConversation {
    fn kept(&self, length: i32) -> AppResult<i32> {
        kept(
            length,
            self.input.to_message_index,
            self.input.by_message_count,
        )
    }
}

pub struct Restored {
    pub message_count: i32,
    pub event: history_event::Model,
    pub code_operation: Option<code_operation::Model>,
}

/// Undoes the rewind that `rewind_event_id` records, when the conversation is still
/// exactly as that rewind left it.
pub async fn restore_conversation(
    app: &App,
    viewer: &Viewer,
    rewind_event_id: HistoryEventId,
) -> AppResult<Restored> {
    let event = history::by_id(viewer.scope(app.store.db()), rewind_event_id)
        .await?
        .ok_or_else(|| AppError::not_found("history event"))?;
    let EventData::ConversationRewound(rewind) = EventData::of(&event)? else {
        return Err(AppError::bad_input(
            "rewindEventId must name a CONVERSATION_REWOUND event",
        ));
    };
    let task_id = event
        .task_id
        .ok_or_else(|| AppError::internal("rewind event without task"))?;
    let change = RestoreConversation {
        rewind_event_id: event.id,
        task_id,
        rewind,
    };
    match code::run(app, viewer, &change).await? {
        Outcome::Done(done) => Ok(Restored {
            message_count: done.output,
            event: done.event,
            code_operation: done.code_operation,
        }),
        Outcome::Pending {
            code_operation,
            event,
        } => Ok(Restored {
            message_count: message_count(app, viewer, task_id).await?,
            event,
            code_operation: Some(code_operation),
        }),
    }
}

#[derive(Clone)]
struct RestoreConversation {
    rewind_event_id: HistoryEventId,
    task_id: TaskId,
    rewind: data::ConversationRewound,
}

impl RestoreConversation {
    /// Whether the task's conversation is still exactly as the rewind left it.
    fn unchanged(&self, task: &task::Model, length: i32) -> AppResult<()> {
        if task.conversation_id == self.rewind.conversation_id
            && length == self.rewind.new_message_count
        {
            return Ok(());
        }
        Err(AppError::conflict(
            "the conversation changed since that rewind (messages appended, or a later rewind or restore)",
        ))
    }
}

impl Change for RestoreConversation {
    type Plan = ();
    /// The length of the restored conversation.
    type Output = i32;

    fn task_id(&self) -> Option<TaskId> {
        Some(self.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<((), Option<Intent>)> {
        let task = code::read_task(app, viewer, self.task_id).await?;
        let head = conversations::by_id(app.store.db(), task.conversation_id).await?;
        self.unchanged(&task, head.length)?;
        let intent = match (&self.rewind.saved_ref, code::code_dir(&task)) {
            (Some(saved), Some(dir)) => {
                Some(Intent::unrestore(viewer, task.id, code::site(&task), &dir, saved).await?)
            }
            _ => None,
        };
        Ok(((), intent))
    }

    async fn record(
        &self,
        _app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        (): (),
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<i32>> {
        let (mut task, contract) = lock_for_change(txn, viewer, self.task_id).await?;
        let head = conversations::by_id(txn, task.conversation_id).await?;
        self.unchanged(&task, head.length)?;
        let previous = conversations::by_id(txn, self.rewind.previous_conversation_id).await?;
        task.conversation_id = previous.id;
        task.updated_at = crate::time::now();
        let task = tasks::update(txn, task).await?;
        let event = Event::on(
            &task,
            contract.as_ref(),
            data::ConversationRestored {
                rewind_event_id: self.rewind_event_id,
                message_count: previous.length,
                code_operation_id: op.map(|o| o.id),
                conversation_id: previous.id,
            }
            .into(),
        );
        Ok(Recorded {
            event,
            output: previous.length,
        })
    }
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
    task_id: TaskId,
    checkpoint_id: CheckpointId,
    rewind_conversation: bool,
) -> AppResult<TaskRewound> {
    let change = RewindTask {
        task_id,
        checkpoint_id,
        rewind_conversation,
    };
    match code::run(app, viewer, &change).await? {
        Outcome::Done(done) => {
            let (task, checkpoint) = done.output;
            Ok(TaskRewound {
                task,
                checkpoint,
                code_operation: done.code_operation,
                conversation_rewound: rewind_conversation,
            })
        }
        Outcome::Pending { code_operation, .. } => {
            let task = code::read_task(app, viewer, task_id).await?;
            let (checkpoint, _) =
                code::checkpoint_of(app.store.db(), viewer, checkpoint_id, task_id).await?;
            Ok(TaskRewound {
                task,
                checkpoint,
                code_operation: Some(code_operation),
                conversation_rewound: false,
            })
        }
    }
}

#[derive(Clone)]
struct RewindTask {
    task_id: TaskId,
    checkpoint_id: CheckpointId,
    rewind_conversation: bool,
}

impl Change for RewindTask {
    type Plan = (checkpoint::Model, conversation_snapshot::Model);
    type Output = (task::Model, checkpoint::Model);

    fn task_id(&self) -> Option<TaskId> {
        Some(self.task_id)
    }

    async fn plan(&self, app: &App, viewer: &Viewer) -> AppResult<(Self::Plan, Option<Intent>)> {
        let task = code::read_task(app, viewer, self.task_id).await?;
        self.check(&task)?;
        let (cp, snapshot) =
            code::checkpoint_of(app.store.db(), viewer, self.checkpoint_id, task.id).await?;
        let intent = code::restore_intent(viewer, &task, &cp.commit_sha);
        Ok(((cp, snapshot), intent))
    }

    fn check(&self, task: &task::Model) -> AppResult<()> {
        match task.status {
            TaskStatus::Running => Err(AppError::conflict(
                "the task is RUNNING; stop it before rewinding it",
            )),
            _ => Ok(()),
        }
    }

    async fn record(
        &self,
        _app: &App,
        viewer: &Viewer,
        txn: &DatabaseTransaction,
        (cp, snapshot): Self::Plan,
        op: Option<&code_operation::Model>,
    ) -> AppResult<Recorded<Self::Output>> {
        let (mut task, contract) = lock_for_change(txn, viewer, self.task_id).await?;
        self.check(&task)?;
        if self.rewind_conversation {
            let head = conversations::branch_at(
                viewer.scope(txn),
                task.id,
                snapshot.conversation_id,
                snapshot.length,
            )
            .await?;
            task.conversation_id = head.id;
        }
        task.updated_at = crate::time::now();
        let task = tasks::update(txn, task).await?;
        let event = Event::on(
            &task,
            contract.as_ref(),
            data::TaskRewound {
                checkpoint_id: cp.id,
                commit_sha: cp.commit_sha.clone(),
                conversation_rewound: self.rewind_conversation,
                code_operation_id: op.map(|o| o.id),
            }
            .into(),
        );
        Ok(Recorded {
            event,
            output: (task, cp),
        })
    }
}
