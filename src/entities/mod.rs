//! SeaORM entities, one file per table, and the enumerations their columns hold
//! (`kinds`). They mirror the migrations in `migration/`; the migrations, not these
//! structs, define the schema.

pub mod api_key;
pub mod checkpoint;
pub mod code_operation;
pub mod code_operation_intent;
pub mod contract;
pub mod conversation;
pub mod conversation_snapshot;
pub mod daemon;
pub mod event_data;
pub mod history_event;
pub mod idempotency_key;
pub mod ids;
pub mod kinds;
pub mod message;
pub mod owner;
pub mod repository_owner;
pub mod supervisor_state;
pub mod task;
pub mod task_event;
