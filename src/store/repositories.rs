//! Repository ownership: one row per repository (its canonical git common dir), claimed
//! in the transaction that inserts the task or contract naming it.

use super::OwnerScope;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::tasks;
use crate::entities::repository_owner::{ActiveModel, Column, Entity};
use crate::error::AppResult;
use crate::time::now;

/// Claims the repository `common_dir` for `owner_id`, or confirms the claim; `false`
/// when it belongs to another owner. Call it inside the write transaction that inserts
/// the row naming the repository: the unique key then decides a race between owners
/// (the loser's insert waits for the winner's commit and finds its row).
///
/// Repositories used before ownership was recorded have no row (a migration cannot run
/// git). Their first claim is refused when another owner's task already names any of
/// `worktree_paths` (every work tree of the repository) as its repository or work tree.
pub async fn claim(
    scope: OwnerScope<'_, impl ConnectionTrait>,
    common_dir: &str,
    worktree_paths: &[String],
) -> AppResult<bool> {
    let (db, owner_id) = scope.parts();
    if let Some(row) = Entity::find_by_id(common_dir).one(db).await? {
        return Ok(row.owner_id == owner_id);
    }
    if tasks::paths_used_by_other_owner(OwnerScope::new(db, owner_id), worktree_paths).await? {
        return Ok(false);
    }
    let row = ActiveModel {
        common_dir: Set(common_dir.to_owned()),
        owner_id: Set(owner_id),
        created_at: Set(now()),
    };
    Entity::insert(row)
        .on_conflict_do_nothing_on([Column::CommonDir])
        .exec_without_returning(db)
        .await?;
    let row = Entity::find_by_id(common_dir).one(db).await?;
    Ok(row.is_some_and(|r| r.owner_id == owner_id))
}
