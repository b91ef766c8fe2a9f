//! API keys: random 256-bit secrets, stored only as their SHA-256. Creating one is a
//! write (the owner too, on its first key); checking one is the transport's
//! (`server::auth`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Viewer;
use crate::error::AppResult;
use crate::store::OwnerScope;
use crate::store::{Store, daemons, owners};

const KEY_PREFIX: &str = "mk_";

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What a key is stored and looked up by.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key and the owner it belongs to.
pub struct NewKey {
    pub viewer: Viewer,
    /// The secret itself; shown once, never stored.
    pub key: String,
}

/// Creates a key for `owner`, and the owner if it does not exist yet, in one
/// transaction: two first keys of one new owner make one owner.
pub async fn create(store: &Store, owner: &str) -> AppResult<NewKey> {
    create_for(store, owner, None).await
}

/// Creates a daemon key: it acts as the owner's daemon named `daemon` (created, with the
/// owner, if needed) and may only take and report that daemon's work.
pub async fn create_for_daemon(store: &Store, owner: &str, daemon: &str) -> AppResult<NewKey> {
    create_for(store, owner, Some(daemon)).await
}

async fn create_for(store: &Store, owner: &str, daemon: Option<&str>) -> AppResult<NewKey> {
    super::limits::name("owner", owner)?;
    if let Some(name) = daemon {
        super::limits::name("daemon", name)?;
    }
    let txn = store.begin_write().await?;
    let owner = owners::find_or_insert(&txn, owner).await?;
    let scope = OwnerScope::new(&txn, owner.id);
    let daemon = match daemon {
        Some(name) => Some(daemons::find_or_insert(scope, name).await?.id),
        None => None,
    };
    let key = generate();
    owners::insert_key(scope, &hash(&key), daemon).await?;
    txn.commit().await?;
    Ok(NewKey {
        viewer: Viewer {
            daemon,
            ..Viewer::owner(&owner)
        },
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed_stably() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43, "256 bits in base64url");
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }
}
