//! What an operator watches: the state of the queues and the search indexes at one moment
//! ([`snapshot`]), and how this process's job runs ended ([`JobRuns`]). The server renders it as
//! Prometheus metrics (`GET /metrics`); nothing here names a person or a record.

use crate::error::AppResult;
use crate::state::{now_millis, AppState};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How one job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunOutcome {
    Done,
    /// Failed for now; it runs again later.
    Retried,
    /// Failed for good.
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Done => "done",
            RunOutcome::Retried => "retried",
            RunOutcome::Failed => "failed",
        }
    }
}

/// Counts and total run time of this process's job runs, by kind and outcome, since it started.
#[derive(Debug, Default)]
pub struct JobRuns {
    runs: Mutex<BTreeMap<(String, RunOutcome), (u64, Duration)>>,
}

impl JobRuns {
    pub fn record(&self, kind: &str, outcome: RunOutcome, took: Duration) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let entry = runs.entry((kind.to_string(), outcome)).or_default();
        entry.0 += 1;
        entry.1 += took;
    }

    /// (kind, outcome, runs, total seconds), in order.
    pub fn counts(&self) -> Vec<(String, RunOutcome, u64, f64)> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter()
            .map(|((kind, outcome), (n, took))| (kind.clone(), *outcome, *n, took.as_secs_f64()))
            .collect()
    }
}

/// The queues and indexes at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// (kind, state, count) of jobs not done: `queued`, `running`, `failed`.
    pub jobs: Vec<(String, String, i64)>,
    pub unsent_mail: i64,
    /// Seconds since the oldest unsent mail was queued; 0 when none waits.
    pub oldest_unsent_age_secs: f64,
    /// Search indexes open in this process.
    pub indexes_open: usize,
    /// Changes of the feed not yet in this process's open indexes, over all of them, and in the
    /// one furthest behind.
    pub index_lag_total: i64,
    pub index_lag_max: i64,
    pub workspaces: usize,
}

/// Reads the store's queues and compares each open index with its workspace's feed.
pub async fn snapshot(state: &AppState) -> AppResult<Snapshot> {
    let ops = state.store.operations().await?;
    let applied = state.search.applied_seqs().await;
    let last: std::collections::HashMap<_, _> = ops.last_seqs.iter().copied().collect();
    let lags = applied
        .iter()
        .filter_map(|(ws, seq)| last.get(ws).map(|l| (l - seq).max(0)));
    let (mut total, mut max) = (0, 0);
    for lag in lags {
        total += lag;
        max = max.max(lag);
    }
    Ok(Snapshot {
        jobs: ops.jobs,
        unsent_mail: ops.unsent_mail,
        oldest_unsent_age_secs: ops
            .oldest_unsent_at
            .map(|at| (now_millis() - at).max(0) as f64 / 1000.0)
            .unwrap_or(0.0),
        indexes_open: applied.len(),
        index_lag_total: total,
        index_lag_max: max,
        workspaces: ops.last_seqs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_runs_add_up_by_kind_and_outcome() {
        let runs = JobRuns::default();
        runs.record("mail.send", RunOutcome::Done, Duration::from_millis(500));
        runs.record("mail.send", RunOutcome::Done, Duration::from_millis(250));
        runs.record("mail.send", RunOutcome::Retried, Duration::from_secs(1));
        runs.record("backup", RunOutcome::Failed, Duration::from_secs(2));
        assert_eq!(
            runs.counts(),
            vec![
                ("backup".to_string(), RunOutcome::Failed, 1, 2.0),
                ("mail.send".to_string(), RunOutcome::Done, 2, 0.75),
                ("mail.send".to_string(), RunOutcome::Retried, 1, 1.0),
            ]
        );
    }
}
