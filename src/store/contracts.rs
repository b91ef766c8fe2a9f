//! Contracts and their supervisor state.

use super::OwnerScope;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QuerySelect, Select,
};

use super::keyset::{self, Keyset, Paged, Window};
use crate::entities::ids::{ContractId, OwnerId};
use crate::entities::kinds::ContractStatus;
use crate::entities::{contract, supervisor_state};
use crate::error::AppResult;

pub async fn insert(
    db: &impl ConnectionTrait,
    model: contract::Model,
) -> AppResult<contract::Model> {
    Ok(contract::Entity::insert(model.into_active_model())
        .exec_with_returning(db)
        .await?)
}

pub async fn insert_supervisor(
    db: &impl ConnectionTrait,
    model: supervisor_state::Model,
) -> AppResult<()> {
    supervisor_state::Entity::insert(model.into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn by_id(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: ContractId,
) -> AppResult<Option<contract::Model>> {
    let (db, owner_id) = scope.parts();
    Ok(contract::Entity::find_by_id(id)
        .filter(contract::Column::OwnerId.eq(owner_id))
        .one(db)
        .await?)
}

/// The contract row, locked against concurrent writers until the transaction ends.
pub async fn lock(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    id: ContractId,
) -> AppResult<Option<contract::Model>> {
    let (db, owner_id) = scope.parts();
    Ok(contract::Entity::find_by_id(id)
        .filter(contract::Column::OwnerId.eq(owner_id))
        .lock_exclusive()
        .one(db)
        .await?)
}

pub async fn by_ids(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    ids: &[ContractId],
) -> AppResult<Vec<contract::Model>> {
    let (db, owner_id) = scope.parts();
    Ok(contract::Entity::find()
        .filter(contract::Column::OwnerId.eq(owner_id))
        .filter(contract::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

pub async fn supervisors_by_contract(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    contract_ids: &[ContractId],
) -> AppResult<Vec<supervisor_state::Model>> {
    let (db, owner_id) = scope.parts();
    Ok(supervisor_state::Entity::find()
        .filter(supervisor_state::Column::OwnerId.eq(owner_id))
        .filter(supervisor_state::Column::ContractId.is_in(contract_ids.iter().copied()))
        .all(db)
        .await?)
}

pub async fn update(
    db: &impl ConnectionTrait,
    model: contract::Model,
) -> AppResult<contract::Model> {
    Ok(model.into_active_model().reset_all().update(db).await?)
}

pub async fn touch_supervisor(
    db: &impl ConnectionTrait,
    contract_id: ContractId,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    supervisor_state::ActiveModel {
        contract_id: Set(contract_id),
        last_activity: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct ContractFilter {
    pub status: Option<Vec<ContractStatus>>,
    pub phase: Option<String>,
}

struct ById;

impl Keyset for ById {
    type Entity = contract::Entity;
    type Key = ContractId;
    fn after(k: &ContractId) -> Condition {
        Condition::all().add(contract::Column::Id.gt(*k))
    }
    fn before(k: &ContractId) -> Condition {
        Condition::all().add(contract::Column::Id.lt(*k))
    }
    fn order_columns() -> Vec<contract::Column> {
        vec![contract::Column::Id]
    }
}

fn filtered(owner_id: OwnerId, filter: &ContractFilter) -> Select<contract::Entity> {
    let mut q = contract::Entity::find().filter(contract::Column::OwnerId.eq(owner_id));
    if let Some(statuses) = &filter.status {
        q = q.filter(contract::Column::Status.is_in(statuses.iter().copied()));
    }
    if let Some(phase) = &filter.phase {
        q = q.filter(contract::Column::Phase.eq(phase.as_str()));
    }
    q
}

pub async fn page(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &ContractFilter,
    window: &Window<ContractId>,
) -> AppResult<Paged<contract::Model>> {
    let (db, owner_id) = scope.parts();
    keyset::page::<ById>(db, filtered(owner_id, filter), window).await
}

pub async fn count(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    filter: &ContractFilter,
) -> AppResult<u64> {
    let (db, owner_id) = scope.parts();
    Ok(filtered(owner_id, filter).count(db).await?)
}
