//! Contracts: creation (with the supervisor), phase and status changes.

use super::lifecycle::Lifecycle;
use super::{App, Viewer, limits, paths};
use crate::entities::event_data as data;
use crate::entities::ids::{ContractId, TaskId};
use crate::entities::kinds::ContractStatus;
use crate::entities::{contract, supervisor_state, task};
use crate::error::{AppError, AppResult};
use crate::store::history::{self, NewEvent};
use crate::store::{contracts, conversations, tasks};
use crate::time::now;

pub struct CreateContract {
    pub name: String,
    pub description: Option<String>,
    pub phases: Option<Vec<String>>,
    pub repository: Option<String>,
}

/// Creates a contract in its first phase, its supervisor task (with an empty
/// conversation) and supervisor state; writes CONTRACT_CREATED and TASK_CREATED.
pub async fn create(
    app: &App,
    viewer: &Viewer,
    input: CreateContract,
) -> AppResult<contract::Model> {
    limits::name("name", &input.name)?;
    limits::text("description", input.description.as_deref())?;
    let phases = limits::phases(input.phases)?;
    let named = match &input.repository {
        Some(r) => {
            Some(paths::repository(&app.store, &app.workspace_root, viewer.owner_id, r).await?)
        }
        None => None,
    };
    let repository = named.as_ref().map(|n| n.path.clone());
    let at = now();
    let contract_id = ContractId::new();
    let task_id = TaskId::new();
    let txn = app.store.begin_write().await?;
    if let Some(n) = &named {
        paths::claim(&txn, viewer.owner_id, n).await?;
    }
    let contract = contracts::insert(
        &txn,
        contract::Model {
            id: contract_id,
            owner_id: viewer.owner_id,
            name: input.name.clone(),
            description: input.description,
            phases: serde_json::to_string(&phases)?,
            phase: phases[0].clone(),
            status: ContractStatus::Active,
            repository: repository.clone(),
            created_at: at,
            updated_at: at,
        },
    )
    .await?;
    let conversation = conversations::create_root(viewer.scope(&txn), task_id).await?;
    let supervisor_name = format!("supervisor: {}", input.name);
    tasks::insert(
        &txn,
        task::Model {
            contract_id: Some(contract_id),
            is_supervisor: true,
            repository,
            ..tasks::new_row(
                viewer.owner_id,
                task_id,
                supervisor_name
                    .chars()
                    .take(limits::MAX_NAME_CHARS)
                    .collect(),
                conversation.id,
                at,
            )
        },
    )
    .await?;
    contracts::insert_supervisor(
        &txn,
        supervisor_state::Model {
            contract_id,
            owner_id: viewer.owner_id,
            task_id,
            last_activity: at,
            created_at: at,
            updated_at: at,
        },
    )
    .await?;
    history::insert(
        &txn,
        NewEvent {
            owner_id: viewer.owner_id,
            contract_id: Some(contract_id),
            task_id: None,
            phase: Some(contract.phase.clone()),
            data: data::ContractCreated {
                name: contract.name.clone(),
                phases: phases.clone(),
            }
            .into(),
        },
    )
    .await?;
    let last = history::insert(
        &txn,
        NewEvent {
            owner_id: viewer.owner_id,
            contract_id: Some(contract_id),
            task_id: Some(task_id),
            phase: Some(contract.phase.clone()),
            data: data::TaskCreated {
                name: supervisor_name,
                parent_task_id: None,
                continued_from_task_id: None,
                code_operation_id: None,
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &last).await?;
    Ok(contract)
}

pub fn phases_of(contract: &contract::Model) -> AppResult<Vec<String>> {
    Ok(serde_json::from_str(&contract.phases)?)
}

/// Refuses any change to an archived contract or its tasks.
pub fn ensure_not_archived(contract: &contract::Model) -> AppResult<()> {
    if contract.status == ContractStatus::Archived {
        return Err(AppError::conflict(
            "the contract is archived; archived contracts and their tasks cannot change",
        ));
    }
    Ok(())
}

/// Moves a contract to another of its phases; the same phase again changes nothing.
pub async fn change_phase(
    app: &App,
    viewer: &Viewer,
    contract_id: ContractId,
    phase: String,
) -> AppResult<contract::Model> {
    let txn = app.store.begin_write().await?;
    let mut contract = contracts::lock(viewer.scope(&txn), contract_id)
        .await?
        .ok_or_else(|| AppError::not_found("contract"))?;
    ensure_not_archived(&contract)?;
    if !phases_of(&contract)?.contains(&phase) {
        return Err(AppError::bad_input(
            "phase must be one of the contract's phases",
        ));
    }
    if contract.phase == phase {
        return Ok(contract);
    }
    let from = std::mem::replace(&mut contract.phase, phase.clone());
    contract.updated_at = now();
    let contract = contracts::update(&txn, contract).await?;
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id: viewer.owner_id,
            contract_id: Some(contract_id),
            task_id: None,
            phase: Some(phase.clone()),
            data: data::PhaseChanged {
                from,
                to: phase.clone(),
            }
            .into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(contract)
}

/// ACTIVE → COMPLETED → ARCHIVED (or ACTIVE → ARCHIVED); the same status again changes
/// nothing; every other move is CONFLICT.
pub async fn update_status(
    app: &App,
    viewer: &Viewer,
    contract_id: ContractId,
    status: ContractStatus,
) -> AppResult<contract::Model> {
    let txn = app.store.begin_write().await?;
    let mut contract = contracts::lock(viewer.scope(&txn), contract_id)
        .await?
        .ok_or_else(|| AppError::not_found("contract"))?;
    let from = contract.status;
    if from == status {
        return Ok(contract);
    }
    if !from.can_move_to(status) {
        return Err(AppError::conflict(format!(
            "a contract cannot move from {} to {}",
            from.as_str(),
            status.as_str()
        )));
    }
    contract.status = status;
    contract.updated_at = now();
    let contract = contracts::update(&txn, contract).await?;
    let event = history::insert(
        &txn,
        NewEvent {
            owner_id: viewer.owner_id,
            contract_id: Some(contract_id),
            task_id: None,
            phase: Some(contract.phase.clone()),
            data: data::ContractStatusChanged { from, to: status }.into(),
        },
    )
    .await?;
    app.store.commit(txn, &event).await?;
    Ok(contract)
}
