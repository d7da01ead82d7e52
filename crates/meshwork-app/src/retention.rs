//! Retention of inactive accounts (mm13): an account nobody signed in to for
//! `retention.inactive_months` (12) is deleted, after its owner was warned by email at each of
//! `retention.warn_days` (30, 7 and 1 days) before. Signing in at any point cancels it: the
//! account is active again and the warnings start over. Runs daily in the job runner
//! (`accounts.retention`), once across all servers.
//!
//! Audit entries older than `retention.audit_months` (24) are deleted by the daily
//! housekeeping (`prune_audit`).
//!
//! An account that is the last owner of a workspace others still use is not deleted (that would
//! strand the workspace without an owner): it is kept, and the run says so in the log and the
//! audit log, until someone is made an owner.

use crate::actor::ClientInfo;
use crate::audit::{self, Event};
use crate::error::AppResult;
use crate::mail::{self, Mail};
use crate::state::AppState;
use meshwork_domain::{ErrorCode, Millis};
use serde::Serialize;
use serde_json::json;

const DAY_MS: i64 = 86_400_000;

/// How long an account may stay unused: `months` of 30 days.
pub fn window_ms(months: u32) -> i64 {
    months as i64 * 30 * DAY_MS
}

/// Deletes the audit entries older than `retention.audit_months` as of `now` (OWASP ASVS 8.3.8:
/// the entries hold client addresses and user agents). Runs in the daily housekeeping job. The
/// store never deletes an entry younger than 30 days. Answers how many went.
pub async fn prune_audit(state: &AppState, now: Millis) -> AppResult<u64> {
    let months = state.config.retention.audit_months;
    if months == 0 {
        return Ok(0);
    }
    Ok(state.store.prune_audit(now - window_ms(months)).await?)
}

/// What a retention run did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub warned: usize,
    pub deleted: usize,
    /// Due for deletion but the last owner of a workspace others use.
    pub kept: usize,
}

/// One run of the retention policy as of `now` (the job passes the clock; tests drive it).
pub async fn run(state: &AppState, now: Millis) -> AppResult<Report> {
    let cfg = &state.config.retention;
    let mut report = Report::default();
    if cfg.inactive_months == 0 {
        return Ok(report);
    }
    let window = window_ms(cfg.inactive_months);
    let first_warning = cfg.warn_days.iter().copied().max().unwrap_or(0) as i64;
    // Accounts whose deletion is within the first warning's reach, or past.
    let horizon = now - window + first_warning * DAY_MS;
    let client = ClientInfo::default();
    let mut after = None;
    loop {
        let batch = state.store.inactive_users(horizon, after, 500).await?;
        let n = batch.len();
        after = batch.last().map(|(u, at, _)| (*at, *u));
        for (user, mut last_active, mut warned) in batch {
            let mut due = last_active + window;
            let last_step = cfg.warn_days.iter().copied().min();
            if due <= now && last_step.is_some_and(|s| warned == 0 || warned as u32 > s) {
                // Due, but its owner has not had the last warning (the server was down on the
                // day): the deletion moves to that warning's distance from now, and it is sent.
                let step = last_step.unwrap_or(0) as i64;
                last_active = now - window + step * DAY_MS;
                state.store.set_user_active(user, last_active).await?;
                (due, warned) = (last_active + window, 0);
            }
            if due <= now {
                match crate::rights::delete_account_now(state, &client, user, "account.expired")
                    .await
                {
                    Ok(_) => report.deleted += 1,
                    Err(e) if e.code == ErrorCode::LastOwner => {
                        report.kept += 1;
                        tracing::warn!(user = %user, "an inactive account is due for deletion but is the last owner of a workspace others use; kept");
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
            // Days left, rounded up: the warning for the smallest step not yet passed.
            let left = (due - now + DAY_MS - 1) / DAY_MS;
            let step = cfg
                .warn_days
                .iter()
                .copied()
                .filter(|&d| d as i64 >= left)
                .min();
            let Some(step) = step else { continue };
            if warned != 0 && warned as u32 <= step {
                continue;
            }
            // Record first: a run cut short sends at most one warning too few, never two.
            if !state
                .store
                .set_retention_warned(user, step as i32, now - window + first_warning * DAY_MS)
                .await?
            {
                continue;
            }
            let Some(u) = state.store.user(user).await? else {
                continue;
            };
            let to = state.open_account_str(u.id, "email", &u.email_sealed)?;
            let days = if left == 1 {
                "1 day".to_string()
            } else {
                format!("{left} days")
            };
            mail::enqueue(
                state,
                Mail {
                    kind: "retention_warning".into(),
                    to,
                    subject: format!("Your Meshwork account will be deleted in {days}"),
                    body: format!(
                        "Nobody has signed in to your Meshwork account for a long time. Accounts unused for {} months are deleted with their data, and yours will be in {days}.\n\nTo keep it, sign in: {}/sign-in\n\nTo let it go, do nothing.",
                        cfg.inactive_months,
                        state.config.public_url.trim_end_matches('/')
                    ),
                },
            )
            .await?;
            audit::record(
                state,
                None,
                Event {
                    kind: "account.retention_warning",
                    workspace: None,
                    actor: None,
                    subject: Some(user),
                    details: json!({"days_left": left}),
                },
            )
            .await?;
            report.warned += 1;
        }
        if n < 500 {
            break;
        }
    }
    if report != Report::default() {
        tracing::info!(
            warned = report.warned,
            deleted = report.deleted,
            kept = report.kept,
            "retention of inactive accounts"
        );
    }
    Ok(report)
}
