//! Idempotent ingestion: a call with an idempotency key stores what it did, and a later
//! call with the same key and input replays that instead of appending again. What is
//! stored is one serde type per mutation, written and read through it.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use super::limits;
use crate::entities::ids::{ConversationId, TaskId};
use crate::error::{AppError, AppResult};
use crate::store::OwnerScope;
use crate::store::idempotency;

/// What a call of one mutation stored under its key.
pub trait Outcome: Serialize + DeserializeOwned {
    /// The mutation's name, which scopes its keys.
    const MUTATION: &'static str;
}

/// What `appendMessages` appended.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesAppended {
    /// The conversation segment the messages went into.
    pub conversation_id: ConversationId,
    pub first_index: i32,
    pub count: i32,
    pub message_count: i32,
}

impl Outcome for MessagesAppended {
    const MUTATION: &'static str = "appendMessages";
}

/// What `appendTaskEvents` appended: the sequences `first_sequence..=last_sequence`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEventsAppended {
    pub first_sequence: i64,
    pub last_sequence: i64,
}

impl Outcome for TaskEventsAppended {
    const MUTATION: &'static str = "appendTaskEvents";
}

/// Checks a batch (its size, its key, each item's body) and fingerprints it: returns
/// each item's serialised body and the batch's hash. `what` names the batch, `body`
/// an item's body in messages; `parts` gives an item's kind and body.
pub fn checked_batch<'a, T>(
    what: &str,
    body: &str,
    items: &'a [T],
    key: Option<&str>,
    parts: impl Fn(&'a T) -> (&'static str, &'a serde_json::Value),
) -> AppResult<(Vec<String>, String)> {
    limits::batch(what, items.len())?;
    check_key(key)?;
    let bodies = items
        .iter()
        .map(|item| limits::json(body, parts(item).1))
        .collect::<AppResult<Vec<_>>>()?;
    let kinds = items.iter().map(|item| parts(item).0);
    let hash = request_hash(kinds.zip(bodies.iter().map(String::as_str)));
    Ok((bodies, hash))
}

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

/// What an earlier call with the same key stored, if any; a different input under the
/// same key is CONFLICT.
pub async fn replayed<O: Outcome>(
    scope: OwnerScope<'_, impl sea_orm::ConnectionTrait>,
    task_id: TaskId,
    key: Option<&str>,
    hash: &str,
) -> AppResult<Option<O>> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::find(scope, O::MUTATION, task_id, key).await? {
        Some(record) if record.request_hash == hash => {
            Ok(Some(serde_json::from_str(&record.result).map_err(|e| {
                AppError::internal(format!("idempotency record: {e}"))
            })?))
        }
        Some(_) => Err(AppError::conflict(
            "idempotencyKey was already used with a different input",
        )),
        None => Ok(None),
    }
}

/// Stores what a call did under its key, in the call's transaction.
pub async fn remember<O: Outcome>(
    scope: OwnerScope<'_, impl sea_orm::ConnectionTrait>,
    task_id: TaskId,
    key: &str,
    hash: String,
    outcome: &O,
) -> AppResult<()> {
    let result = serde_json::to_string(outcome)?;
    idempotency::insert(scope, O::MUTATION, task_id, key, hash, result).await
}
