//! GraphQL object types, one per file, plus the list filters.

pub mod checkpoint;
pub mod code_operation;
pub mod contract;
pub mod daemon;
pub mod daemon_work;
pub mod filters;
pub mod fork_origin;
pub mod history_event;
pub mod message;
pub mod supervisor;
pub mod task;
pub mod task_event;
pub mod viewer;
