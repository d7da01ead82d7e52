//! A short-lived memory of verified API keys: scripts call with the same key many times a second,
//! and each look-up is a database round trip. Entries live `api_key_cache_seconds` (default 2).
//!
//! Correctness: expiry and revocation are still checked on every request against the cached row;
//! this server forgets a workspace's entries the moment a key is revoked or a member's role
//! changes there, so on one server every change is immediate. Other servers on the same
//! PostgreSQL notice within the TTL.

use meshwork_domain::{Role, WorkspaceId};
use meshwork_store::ApiKeyRow;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The most keys remembered; past that the memory is simply cleared (keys are few in practice).
const MAX_ENTRIES: usize = 10_000;

/// When the key was looked up, its row, and its creator's role then.
type Entry = (Instant, ApiKeyRow, Option<Role>);

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<(ApiKeyRow, Option<Role>)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().expect("key cache lock");
        let (at, row, role) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| (row.clone(), *role))
    }

    pub fn put(&self, hash: [u8; 32], row: ApiKeyRow, creator_role: Option<Role>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.write().expect("key cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (Instant::now(), row, creator_role));
    }

    /// Forgets every key of `ws`: called when a key is revoked or a role changes there.
    pub fn forget_workspace(&self, ws: WorkspaceId) {
        self.entries
            .write()
            .expect("key cache lock")
            .retain(|_, (_, row, _)| row.workspace_id != ws);
    }
}
