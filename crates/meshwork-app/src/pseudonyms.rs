//! What each workspace's CRM records stand for in same-server overlap runs, kept in memory
//! between runs: a record's kind and its identity pseudonyms (HMAC under the server-wide
//! identity key of its normalised domains, emails and phones, never the identifiers
//! themselves).
//!
//! A run of a large workspace otherwise spends most of its time reading, opening and
//! normalising every record in its populations. With this cache it opens only the records
//! written since the last run: before use, a workspace's entry replays the change feed from the
//! position it was filled at and forgets every record the feed names (any write to a record
//! appends a change naming it, as the search index also relies on). Population membership is
//! still evaluated on the search index at every run, and deals' links are read at every run:
//! only what depends on a record's own content is kept.
//!
//! Nothing here reaches the store or the disk, and nothing is a match token: those are derived
//! per partnership at each run and dropped (DESIGN.md decision 7). The cache is bounded by
//! `overlap.cache_records` over all workspaces; the workspaces used longest ago are dropped
//! first, a workspace larger than the whole budget is not kept, an entry unused for six hours
//! is dropped, and deleting a workspace drops its entry.

use crate::error::{AppError, AppResult};
use crate::overlap::Known;
use crate::state::AppState;
use meshwork_domain::{RecordId, WorkspaceId};
use meshwork_overlap::MatchToken;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Changes read from the feed per page while catching an entry up.
const FEED_PAGE: i64 = 10_000;
/// An entry no run has used for this long is dropped at the next run of any workspace.
const IDLE: std::time::Duration = std::time::Duration::from_secs(6 * 60 * 60);

/// One workspace's records, as of feed position `seq`: what each stands for, with its
/// pseudonyms.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub seq: i64,
    pub records: HashMap<RecordId, Known<Box<[MatchToken]>>>,
}

#[derive(Debug)]
struct Slot {
    entry: Arc<tokio::sync::Mutex<Option<Entry>>>,
    /// Records held when it was last put back, for the budget.
    size: usize,
    used: Instant,
}

/// The cache of every workspace of this process.
#[derive(Debug, Default)]
pub struct Pseudonyms {
    slots: Mutex<HashMap<WorkspaceId, Slot>>,
}

/// What catching an entry up did, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Refresh {
    /// Changes replayed from the feed.
    pub replayed: usize,
    /// Records forgotten because a change named them.
    pub forgotten: usize,
    /// Whether the entry started empty (first use, evicted, or the feed could not be replayed).
    pub cold: bool,
}

impl Pseudonyms {
    /// The workspace's entry, locked for one run: caught up to feed position `seq` (read before
    /// anything else of the run, so records read after it are at least that new).
    pub(crate) async fn checkout(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        seq: i64,
    ) -> AppResult<(tokio::sync::OwnedMutexGuard<Option<Entry>>, Refresh)> {
        let mut guard = self.slot(ws).lock_owned().await;
        let mut refresh = Refresh::default();
        let keep = match guard.as_mut() {
            Some(entry) if entry.seq < seq => catch_up(state, ws, entry, seq, &mut refresh).await?,
            // At this run's position, or past it (a concurrent run read a newer one): its
            // records are at least as new as the run needs.
            Some(_) => true,
            None => false,
        };
        if !keep {
            *guard = Some(Entry {
                seq,
                records: HashMap::new(),
            });
            refresh.cold = true;
        }
        Ok((guard, refresh))
    }

    fn slot(&self, ws: WorkspaceId) -> Arc<tokio::sync::Mutex<Option<Entry>>> {
        let mut slots = self.slots.lock().expect("pseudonym cache lock");
        let slot = slots.entry(ws).or_insert_with(|| Slot {
            entry: Arc::default(),
            size: 0,
            used: Instant::now(),
        });
        slot.used = Instant::now();
        slot.entry.clone()
    }

    /// Puts an entry back after a run: records its size and drops what is over the budget.
    pub(crate) fn checkin(
        &self,
        ws: WorkspaceId,
        mut guard: tokio::sync::OwnedMutexGuard<Option<Entry>>,
        budget: usize,
    ) {
        let size = guard.as_ref().map_or(0, |e| e.records.len());
        if size > budget {
            *guard = None;
        }
        let kept = guard.as_ref().map_or(0, |e| e.records.len());
        drop(guard);
        let mut slots = self.slots.lock().expect("pseudonym cache lock");
        if kept == 0 {
            slots.remove(&ws);
        } else if let Some(slot) = slots.get_mut(&ws) {
            slot.size = kept;
            slot.used = Instant::now();
        }
        // Entries no run used for a long time go (a workspace deleted through another server
        // of the same database is never named here again).
        slots.retain(|w, s| *w == ws || s.used.elapsed() < IDLE || s.entry.try_lock().is_err());
        let mut total: usize = slots.values().map(|s| s.size).sum();
        while total > budget {
            // The entry used longest ago that is not in use (a run holds its lock) goes first.
            let oldest = slots
                .iter()
                .filter(|(w, s)| **w != ws && s.size > 0 && s.entry.try_lock().is_ok())
                .min_by_key(|(_, s)| s.used)
                .map(|(w, _)| *w);
            let Some(victim) = oldest else { break };
            if let Some(slot) = slots.remove(&victim) {
                total -= slot.size;
            }
        }
    }

    /// Drops a workspace's entry.
    pub fn forget(&self, ws: WorkspaceId) {
        self.slots.lock().expect("pseudonym cache lock").remove(&ws);
    }

    /// Records held over all workspaces.
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .expect("pseudonym cache lock")
            .values()
            .map(|s| s.size)
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Replays the feed after `entry.seq` up to `seq`, forgetting every record it names. Answers
/// false when the entry cannot be trusted (the feed has a gap) and must start over.
async fn catch_up(
    state: &AppState,
    ws: WorkspaceId,
    entry: &mut Entry,
    seq: i64,
    refresh: &mut Refresh,
) -> AppResult<bool> {
    // More changes than records held (a large import): reading them all afresh is cheaper.
    if seq - entry.seq > entry.records.len() as i64 {
        return Ok(false);
    }
    while entry.seq < seq {
        let page = state
            .store
            .changes_since(ws, entry.seq, FEED_PAGE)
            .await
            .map_err(AppError::from)?;
        if page.is_empty() {
            return Ok(false);
        }
        for c in &page {
            // Positions are consecutive per workspace; a gap means changes this entry never saw.
            if c.seq != entry.seq + 1 {
                return Ok(false);
            }
            entry.seq = c.seq;
            refresh.replayed += 1;
            if let Ok(id) = c.entity_id.parse::<RecordId>() {
                if entry.records.remove(&id).is_some() {
                    refresh.forgotten += 1;
                }
            }
            if entry.seq >= seq {
                break;
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlap::Stands;
    use meshwork_crm::Kind;

    async fn put(cache: &Pseudonyms, ws: WorkspaceId, records: usize, budget: usize) {
        let mut guard = cache.slot(ws).lock_owned().await;
        let mut entry = Entry::default();
        for i in 0..records {
            entry.records.insert(
                RecordId::new(),
                Known {
                    stands: Stands::Itself(Kind::Company),
                    value: Box::new([[i as u8; 32]]),
                },
            );
        }
        *guard = Some(entry);
        cache.checkin(ws, guard, budget);
    }

    fn held(cache: &Pseudonyms, ws: WorkspaceId) -> usize {
        cache.slots.lock().unwrap().get(&ws).map_or(0, |s| s.size)
    }

    #[tokio::test]
    async fn the_budget_drops_the_workspace_used_longest_ago_and_keeps_none_larger_than_it() {
        let cache = Pseudonyms::default();
        let (a, b, c) = (WorkspaceId::new(), WorkspaceId::new(), WorkspaceId::new());
        put(&cache, a, 2, 5).await;
        put(&cache, b, 2, 5).await;
        assert_eq!((cache.len(), held(&cache, a), held(&cache, b)), (4, 2, 2));
        // a was used longest ago: it goes to make room for c.
        put(&cache, c, 3, 5).await;
        assert_eq!(
            (held(&cache, a), held(&cache, b), held(&cache, c)),
            (0, 2, 3)
        );
        assert_eq!(cache.len(), 5);
        // Larger than the whole budget: not kept, and the others stay.
        put(&cache, a, 6, 5).await;
        assert_eq!(
            (held(&cache, a), held(&cache, b), held(&cache, c)),
            (0, 2, 3)
        );
        // An entry in use (a run holds it) is not dropped from under the run.
        let busy = cache.slot(b).lock_owned().await;
        put(&cache, a, 2, 5).await;
        assert_eq!(held(&cache, b), 2);
        assert_eq!((held(&cache, a), held(&cache, c)), (2, 0));
        drop(busy);
        cache.forget(b);
        assert_eq!(cache.len(), 2);
    }
}
