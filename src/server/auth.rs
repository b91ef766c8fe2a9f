//! Request authentication: an API key is looked up by its hash (`domain::keys`), with
//! a short cache so that auth costs no database round trip on most requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::Viewer;
use crate::domain::keys::hash as hash_key;
use crate::error::{AppError, AppResult};
use crate::store::{Store, owners};

const CACHE_TTL: Duration = Duration::from_secs(30);

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
        let (owner, daemon) = owners::by_key_hash(self.store.db(), &hash)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let viewer = Viewer {
            daemon,
            ..Viewer::owner(&owner)
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
