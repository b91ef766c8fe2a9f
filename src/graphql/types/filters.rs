//! Filter inputs of the lists, converted to the store's filters.

use async_graphql::{ID, InputObject};
use chrono::{DateTime, Utc};

use crate::entities::kinds::{ContractStatus, HistoryEventType, TaskEventType, TaskStatus};
use crate::error::AppResult;
use crate::graphql::parse_opt_id;
use crate::store;

/// Which contracts to list.
#[derive(InputObject, Default)]
pub struct ContractFilter {
    /// Only contracts in one of these statuses.
    pub status: Option<Vec<ContractStatus>>,
    /// Only contracts currently in this phase.
    pub phase: Option<String>,
}

impl ContractFilter {
    pub fn into_store(self) -> store::contracts::ContractFilter {
        store::contracts::ContractFilter {
            status: self.status,
            phase: self.phase,
        }
    }
}

/// Which tasks to list.
#[derive(InputObject, Default)]
pub struct TaskFilter {
    /// Only tasks of this contract.
    pub contract_id: Option<ID>,
    /// Only subtasks of this task.
    pub parent_task_id: Option<ID>,
    /// Only tasks in one of these statuses.
    pub status: Option<Vec<TaskStatus>>,
    /// Only supervisor tasks (true) or only other tasks (false).
    pub is_supervisor: Option<bool>,
}

impl TaskFilter {
    pub fn into_store(self) -> AppResult<store::tasks::TaskFilter> {
        Ok(store::tasks::TaskFilter {
            contract_id: parse_opt_id(self.contract_id.as_ref(), "contract")?,
            parent_task_id: parse_opt_id(self.parent_task_id.as_ref(), "task")?,
            forked_from_task_id: None,
            status: self.status,
            is_supervisor: self.is_supervisor,
            daemon_id: None,
        })
    }
}

/// Which events of a task's stream to list.
#[derive(InputObject, Default)]
pub struct TaskEventFilter {
    /// Only events of these types (an empty list matches nothing).
    pub types: Option<Vec<TaskEventType>>,
}

/// Which history events to list.
#[derive(InputObject, Default)]
pub struct TimelineFilter {
    /// Only events of this contract (its own and its tasks').
    pub contract_id: Option<ID>,
    /// Only events of this task.
    pub task_id: Option<ID>,
    /// Only events of these types (an empty list matches nothing).
    pub types: Option<Vec<HistoryEventType>>,
    /// Only events written while the contract was in this phase.
    pub phase: Option<String>,
    /// Only events created at or after this time (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Only events created before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
}

impl TimelineFilter {
    pub fn into_store(self) -> AppResult<store::history::TimelineFilter> {
        Ok(store::history::TimelineFilter {
            contract_id: parse_opt_id(self.contract_id.as_ref(), "contract")?,
            task_id: parse_opt_id(self.task_id.as_ref(), "task")?,
            types: self.types,
            phase: self.phase,
            since: self.since,
            until: self.until,
        })
    }
}
