//! Product usage analytics (pm03, mm07): how often each feature is used per day, counted only as
//! aggregates. In memory a count carries its workspace, only so that a workspace which turned
//! third-party processing off can be left out; what is written (every minute, by the job
//! runner) is `(day, feature, count)` and nothing else: no workspace, person, record or content.
//! No cookie is involved. The operator reads the counts with `meshwork usage`.

use crate::actor::{ClientInfo, InWorkspace};
use crate::audit;
use crate::error::AppResult;
use crate::state::{now_millis, AppState};
use meshwork_domain::WorkspaceId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

const DAY_MS: i64 = 86_400_000;

/// The features counted.
pub const FEATURES: &[&str] = &[
    "search",
    "crm.write",
    "import",
    "export",
    "form.submit",
    "connector.sync",
    "overlap.run",
];

/// Counts not yet written, by (day, feature, workspace).
#[derive(Debug, Default)]
pub struct Usage(Mutex<HashMap<(i64, &'static str, WorkspaceId), i64>>);

impl Usage {
    /// Counts one use of `feature` in `ws`.
    pub fn count(&self, ws: WorkspaceId, feature: &'static str) {
        debug_assert!(FEATURES.contains(&feature), "{feature}");
        let day = now_millis().div_euclid(DAY_MS);
        *self
            .0
            .lock()
            .expect("usage lock")
            .entry((day, feature, ws))
            .or_default() += 1;
    }

    fn take(&self) -> HashMap<(i64, &'static str, WorkspaceId), i64> {
        std::mem::take(&mut *self.0.lock().expect("usage lock"))
    }
}

/// Writes the counts gathered since the last flush, leaving out workspaces that turned
/// third-party processing off. Answers how many (day, feature) rows it added to.
pub async fn flush(state: &AppState) -> AppResult<usize> {
    let counts = state.usage.take();
    if counts.is_empty() {
        return Ok(0);
    }
    let off: HashSet<WorkspaceId> = state
        .store
        .workspaces_processors_off()
        .await?
        .into_iter()
        .collect();
    let mut sums: HashMap<(i64, &'static str), i64> = HashMap::new();
    for ((day, feature, ws), n) in counts {
        if !off.contains(&ws) {
            *sums.entry((day, feature)).or_default() += n;
        }
    }
    let rows: Vec<(i64, String, i64)> = sums
        .into_iter()
        .map(|((day, f), n)| (day, f.to_string(), n))
        .collect();
    if !rows.is_empty() {
        state.store.usage_add(&rows).await?;
    }
    Ok(rows.len())
}

/// One day's count of one feature.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Count {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub feature: String,
    pub count: i64,
}

/// The counts of the last `days` days.
pub async fn report(state: &AppState, days: i64) -> AppResult<Vec<Count>> {
    let today = now_millis().div_euclid(DAY_MS);
    Ok(state
        .store
        .usage(today - days.max(1) + 1)
        .await?
        .into_iter()
        .map(|(day, feature, count)| {
            let date = time::OffsetDateTime::from_unix_timestamp(day * 86_400)
                .map(|t| t.date().to_string())
                .unwrap_or_default();
            Count {
                day: date,
                feature,
                count,
            }
        })
        .collect())
}

/// A workspace's processing settings (mm07).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Processing {
    /// Whether this workspace's use counts toward the server's aggregate product analytics, and
    /// whether third-party processors (an AI provider, when one is configured) may be used.
    /// Off, none is.
    pub third_party: bool,
}

pub async fn processing(state: &AppState, auth: &impl InWorkspace) -> AppResult<Processing> {
    Ok(Processing {
        third_party: !state.store.processors_off(auth.workspace()).await?,
    })
}

/// Turns third-party processing on or off for the workspace. Off takes effect at once: counts
/// not yet written are dropped at the next flush. Audited.
pub async fn set_processing(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    p: &Processing,
) -> AppResult<Processing> {
    state
        .store
        .set_processors_off(auth.workspace(), !p.third_party)
        .await?;
    audit::record(
        state,
        Some(client),
        audit::Event {
            kind: "workspace.processing_changed",
            workspace: Some(auth.workspace()),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({"third_party": p.third_party}),
        },
    )
    .await?;
    processing(state, auth).await
}
