//! A short-lived memory of verified API keys: scripts call with the same key many times a second,
//! and each look-up is a database round trip. Entries live `api_key_cache_seconds` (default 2).
//!
//! Correctness: expiry and revocation are still checked on every request against the cached row;
//! this server forgets a workspace's entries the moment a key is revoked or a member's role
//! changes there, so on one server every change is immediate. Other servers on the same
//! PostgreSQL notice within the TTL.

use meshwork_domain::{ApiKeyId, Millis, Role, WorkspaceId};
use meshwork_store::ApiKeyRow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// The most keys remembered; past that the memory is simply cleared (keys are few in practice).
const MAX_ENTRIES: usize = 10_000;

/// How often a key's last use is written to the store, per key and server.
pub const USE_WRITTEN_EVERY_MS: Millis = 60_000;

/// When the key was looked up, its row, and its creator's role then.
type Entry = (Instant, ApiKeyRow, Option<Role>);

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    /// Bumped by every `forget_workspace`: a look-up that started before a revocation must not
    /// put its (now stale) row back afterwards.
    generation: AtomicU64,
    /// When this server last wrote each key's last use.
    uses: Mutex<HashMap<ApiKeyId, Millis>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// True when `key`'s last use should be written now (none written by this server in the
    /// last `USE_WRITTEN_EVERY_MS`), and notes that it is.
    pub fn use_is_due(&self, key: ApiKeyId, now: Millis) -> bool {
        let mut uses = self.uses.lock().expect("key use lock");
        if uses
            .get(&key)
            .is_some_and(|at| now - at < USE_WRITTEN_EVERY_MS)
        {
            return false;
        }
        if uses.len() >= MAX_ENTRIES {
            uses.retain(|_, at| now - *at < USE_WRITTEN_EVERY_MS);
        }
        uses.insert(key, now);
        true
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<(ApiKeyRow, Option<Role>)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().expect("key cache lock");
        let (at, row, role) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| (row.clone(), *role))
    }

    /// The generation to pass to `put`: read it before looking the key up in the store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a key looked up during `generation`, unless something was forgotten since.
    pub fn put(&self, generation: u64, hash: [u8; 32], row: ApiKeyRow, creator_role: Option<Role>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.write().expect("key cache lock");
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (Instant::now(), row, creator_role));
    }

    /// Forgets every key of `ws`: called when a key is revoked or a role changes there.
    pub fn forget_workspace(&self, ws: WorkspaceId) {
        let mut entries = self.entries.write().expect("key cache lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, (_, row, _)| row.workspace_id != ws);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_domain::{ApiKeyId, UserId};

    fn row(ws: WorkspaceId) -> ApiKeyRow {
        ApiKeyRow {
            id: ApiKeyId::new(),
            workspace_id: ws,
            key_hash: [1; 32],
            prefix: "mwk_".into(),
            name_sealed: vec![],
            role: Role::Owner,
            created_by: UserId::new(),
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            last_used_from_sealed: None,
        }
    }

    #[test]
    fn a_lookup_from_before_a_revocation_is_not_remembered() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let ws = WorkspaceId::new();
        let before = cache.generation();
        cache.forget_workspace(ws); // a revocation lands while the look-up runs
        cache.put(before, [1; 32], row(ws), Some(Role::Owner));
        assert!(cache.get(&[1; 32]).is_none());
        cache.put(cache.generation(), [1; 32], row(ws), Some(Role::Owner));
        assert!(cache.get(&[1; 32]).is_some());
        cache.forget_workspace(ws);
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn a_keys_use_is_due_once_a_minute() {
        let cache = KeyCache::new(Duration::ZERO);
        let (a, b) = (ApiKeyId::new(), ApiKeyId::new());
        assert!(cache.use_is_due(a, 1_000));
        assert!(!cache.use_is_due(a, 1_000 + USE_WRITTEN_EVERY_MS - 1));
        assert!(cache.use_is_due(b, 1_000), "each key counts apart");
        assert!(cache.use_is_due(a, 1_000 + USE_WRITTEN_EVERY_MS));
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.put(cache.generation(), [1; 32], row(WorkspaceId::new()), None);
        assert!(cache.get(&[1; 32]).is_none());
    }
}
