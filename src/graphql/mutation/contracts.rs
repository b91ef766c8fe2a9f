use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use crate::domain::contracts::{self, CreateContract};
use crate::entities::kinds::ContractStatus;
use crate::graphql::types::contract::Contract;
use crate::graphql::{app, parse_id, viewer};

/// A new contract; it starts ACTIVE in its first phase, with its supervisor task.
#[derive(InputObject)]
pub struct CreateContractInput {
    /// Name of the contract (at most 256 characters).
    pub name: String,
    /// What the contract is about (at most 64 KiB).
    pub description: Option<String>,
    /// Ordered phases (1 to 20 distinct names); defaults to research, specify, plan, execute, review.
    pub phases: Option<Vec<String>>,
    /// Git repository the contract works in: absolute, or relative to the workspace root.
    pub repository: Option<String>,
}

/// The created contract.
#[derive(SimpleObject)]
pub struct CreateContractPayload {
    /// The new contract.
    pub contract: Contract,
}

/// Moves a contract to another of its phases.
#[derive(InputObject)]
pub struct ChangeContractPhaseInput {
    /// The contract to move.
    pub contract_id: ID,
    /// One of the contract's phases.
    pub phase: String,
}

/// The contract after the change.
#[derive(SimpleObject)]
pub struct ChangeContractPhasePayload {
    /// The contract in its new phase.
    pub contract: Contract,
}

/// Changes a contract's status: ACTIVE → COMPLETED → ARCHIVED, or ACTIVE → ARCHIVED.
#[derive(InputObject)]
pub struct UpdateContractStatusInput {
    /// The contract to change.
    pub contract_id: ID,
    /// The new status.
    pub status: ContractStatus,
}

/// The contract after the change.
#[derive(SimpleObject)]
pub struct UpdateContractStatusPayload {
    /// The contract in its new status.
    pub contract: Contract,
}

#[derive(Default)]
pub struct ContractMutation;

#[Object]
impl ContractMutation {
    /// Creates a contract and its supervisor task; writes CONTRACT_CREATED and TASK_CREATED.
    async fn create_contract(
        &self,
        ctx: &Context<'_>,
        input: CreateContractInput,
    ) -> Result<CreateContractPayload> {
        let create = CreateContract {
            name: input.name,
            description: input.description,
            phases: input.phases,
            repository: input.repository,
        };
        let contract = contracts::create(app(ctx), viewer(ctx)?, create).await?;
        Ok(CreateContractPayload {
            contract: Contract(contract),
        })
    }

    /// Moves a contract to another of its phases; writes PHASE_CHANGED.
    async fn change_contract_phase(
        &self,
        ctx: &Context<'_>,
        input: ChangeContractPhaseInput,
    ) -> Result<ChangeContractPhasePayload> {
        let id = parse_id(&input.contract_id, "contract")?;
        let contract = contracts::change_phase(app(ctx), viewer(ctx)?, id, input.phase).await?;
        Ok(ChangeContractPhasePayload {
            contract: Contract(contract),
        })
    }

    /// Changes a contract's status; writes CONTRACT_STATUS_CHANGED.
    async fn update_contract_status(
        &self,
        ctx: &Context<'_>,
        input: UpdateContractStatusInput,
    ) -> Result<UpdateContractStatusPayload> {
        let id = parse_id(&input.contract_id, "contract")?;
        let contract = contracts::update_status(app(ctx), viewer(ctx)?, id, input.status).await?;
        Ok(UpdateContractStatusPayload {
            contract: Contract(contract),
        })
    }
}
