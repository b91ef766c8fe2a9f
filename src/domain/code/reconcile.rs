//! Startup recovery of code operations that a dead process left between their git step
//! and their recording: the recording never committed, so the git step is undone and
//! the operation is recorded as FAILED with a CODE_OPERATION_COMPLETED event saying so.

use super::super::App;
use super::Intent;
use crate::entities::code_operation_intent;
use crate::entities::event_data as data;
use crate::entities::kinds::CodeOperationStatus;
use crate::error::AppResult;
use crate::store::OwnerScope;
use crate::store::history::{self, NewEvent};
use crate::store::{code_operations, contracts, intents, task_locks, tasks};

const UNDONE: &str =
    "interrupted before it was recorded (the server stopped); its git step was undone";
const LATER: &str = "interrupted before it was recorded (the server stopped); its git step was not undone because later operations changed this task's code";
const UNDO_FAILED: &str = "interrupted before it was recorded (the server stopped); undoing its git step failed (see the server log)";

/// Scratch indexes older than this are leftovers of a stopped process.
const SCRATCH_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Reconciles every intent left in the database; returns how many it settled. Call it
/// before serving. On PostgreSQL an intent whose task lock another live process holds
/// belongs to a running operation and is left alone.
pub async fn reconcile(app: &App) -> AppResult<usize> {
    let mut settled = 0;
    for row in intents::all(app.store.db()).await? {
        let id = row.id;
        match reconcile_one(app, row).await {
            Ok(true) => settled += 1,
            Ok(false) => {}
            Err(err) => tracing::error!(intent = %id, ?err, "could not reconcile a code operation"),
        }
    }
    if settled > 0 {
        tracing::warn!(settled, "undid code operations interrupted by a stop");
    }
    // Scratch indexes of versions that kept them in the temporary directory.
    crate::git::remove_legacy_temp_indexes(SCRATCH_AGE);
    Ok(settled)
}

async fn reconcile_one(app: &App, row: code_operation_intent::Model) -> AppResult<bool> {
    let _guard = app.locks.task(row.task_id).await;
    // The whole recovery of one intent happens under the task's lock, in one
    // transaction: a live operation holds that lock from before its git step.
    let txn = app.store.begin_write().await?;
    if !task_locks::try_lock(&txn, row.task_id).await? {
        return Ok(false);
    }
    let Some(row) = intents::by_id(&txn, row.id).await? else {
        return Ok(false);
    };
    let intent = Intent::recovered(row);
    let error = if code_operations::any_after(&txn, intent.task_id(), intent.id()).await? {
        LATER
    } else {
        match intent.undo(app).await {
            Ok(()) => UNDONE,
            Err(err) => {
                tracing::error!(intent = %intent.id(), ?err, "could not undo an interrupted git step");
                UNDO_FAILED
            }
        }
    };
    let row = intent.row();
    // The scratch index of a save the crash interrupted; an hour is far past git's
    // own time limit, so no live operation can still be using one that old.
    let repo = crate::git::Repo::new(&row.dir);
    if let Err(err) = crate::git::remove_leftover_indexes(&repo, SCRATCH_AGE).await {
        tracing::warn!(intent = %intent.id(), ?err, "could not remove leftover scratch indexes");
    }
    let op = intent.operation(
        CodeOperationStatus::Failed,
        row.commit_sha.clone(),
        row.branch.clone(),
        Some(error.into()),
    );
    let op = code_operations::insert(&txn, op).await?;
    intents::delete(&txn, row.id).await?;
    let task = tasks::by_id(OwnerScope::new(&txn, row.owner_id), row.task_id).await?;
    let contract = match task.as_ref().and_then(|t| t.contract_id) {
        Some(id) => contracts::by_id(OwnerScope::new(&txn, row.owner_id), id).await?,
        None => None,
    };
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id: row.owner_id,
            contract_id: contract.as_ref().map(|c| c.id),
            task_id: Some(row.task_id),
            phase: contract.map(|c| c.phase),
            data: data::CodeOperationCompleted {
                code_operation_id: op.id,
                kind: op.kind,
                status: op.status,
                commit_sha: op.commit_sha.clone(),
                error: op.error.clone(),
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    tracing::warn!(op = %op.id, kind = op.kind.as_str(), error, "recorded an interrupted code operation as FAILED");
    Ok(true)
}
