//! API keys: random 256-bit secrets, stored as their SHA-256, looked up by hash with a
//! short cache so that auth costs no database round trip on most requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::Viewer;
use crate::error::{AppError, AppResult};
use crate::store::OwnerScope;
use crate::store::{Store, owners};

const CACHE_TTL: Duration = Duration::from_secs(30);
const KEY_PREFIX: &str = "mk_";

pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates the owner if needed and a new key for it; returns the key (shown once).
pub async fn create_key(store: &Store, owner: &str) -> AppResult<String> {
    crate::domain::limits::name("owner", owner)?;
    let txn = store.begin_write().await?;
    let owner = match owners::find_by_name(&txn, owner).await? {
        Some(o) => o,
        None => owners::insert(&txn, owner).await?,
    };
    let key = generate_key();
    owners::insert_key(OwnerScope::new(&txn, owner.id), &hash_key(&key)).await?;
    txn.commit().await?;
    Ok(key)
}

/// Resolves API keys to owners.
pub struct Authenticator {
    store: Store,
    cache: Mutex<HashMap<String, (Viewer, Instant)>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn viewer(&self, key: Option<&str>) -> AppResult<Viewer> {
        let key = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AppError::Unauthenticated)?;
        let hash = hash_key(key);
        if let Some((viewer, at)) = self.cache.lock().expect("auth cache").get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(viewer.clone());
        }
        let owner = owners::by_key_hash(self.store.db(), &hash)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let viewer = Viewer {
            owner_id: owner.id,
            owner: owner.name,
        };
        let mut cache = self.cache.lock().expect("auth cache");
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        cache.insert(hash, (viewer.clone(), Instant::now()));
        Ok(viewer)
    }
}

/// The key of an HTTP request: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
pub fn key_from_headers(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(&v[7..]);
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}
