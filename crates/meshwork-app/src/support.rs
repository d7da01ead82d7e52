//! Support access (mm09): the operator's staff read a workspace's data only under a grant that
//! one of its owners approved, for a limited time, listed and revocable in the workspace's
//! settings; every read under it is in the workspace's audit log; connector documents stay
//! hidden (support reads CRM records, never a source's documents).
//!
//! The operator asks with `meshwork support request` (the owners are told by mail), an owner
//! approves or refuses in settings or the API, the operator reads with `meshwork support read`.
//! Each read checks the grant again, so a revocation or the end of the time stops it at once.

use crate::actor::{ClientInfo, InWorkspace};
use crate::audit::{self, Event};
use crate::crm::{Crm, RecordView};
use crate::error::{AppError, AppResult};
use crate::mail::{self, Mail};
use crate::state::{now_millis, AppState};
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, Millis, Role, WorkspaceId};
use meshwork_store::SupportGrantRow;
use serde::Serialize;
use serde_json::json;

/// The longest a grant may hold: a week.
pub const MAX_MINUTES: i64 = 7 * 24 * 60;

/// A grant as owners and the operator see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: uuid::Uuid,
    pub workspace_id: uuid::Uuid,
    pub operator: String,
    pub reason: String,
    pub minutes: i64,
    pub requested_at: i64,
    pub approved_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// `pending`, `active`, `expired` or `revoked`.
    pub state: String,
}

fn state_of(g: &SupportGrantRow, now: Millis) -> &'static str {
    match (g.revoked_at, g.expires_at) {
        (Some(_), _) => "revoked",
        (None, None) => "pending",
        (None, Some(until)) if now < until => "active",
        _ => "expired",
    }
}

fn view(state: &AppState, g: &SupportGrantRow, now: Millis) -> AppResult<Grant> {
    let id = g.id.to_string();
    Ok(Grant {
        id: g.id,
        workspace_id: g.workspace_id.as_uuid(),
        operator: state.open_workspace(
            g.workspace_id,
            &id,
            "support_operator",
            &g.operator_sealed,
        )?,
        reason: state.open_workspace(g.workspace_id, &id, "support_reason", &g.reason_sealed)?,
        minutes: g.minutes,
        requested_at: g.requested_at,
        approved_at: g.approved_at,
        expires_at: g.expires_at,
        revoked_at: g.revoked_at,
        state: state_of(g, now).into(),
    })
}

fn bad(field: &str, why: impl std::fmt::Display) -> AppError {
    AppError::new(ErrorCode::InvalidField, format!("field `{field}`: {why}"))
}

/// The operator asks for access to a workspace (the CLI). The owners are told by mail and see
/// it in settings; nothing can be read until one approves. Audited.
pub async fn request(
    state: &AppState,
    ws: WorkspaceId,
    operator: &str,
    reason: &str,
    minutes: i64,
) -> AppResult<Grant> {
    let operator = operator.trim();
    let reason = reason.trim();
    if operator.is_empty()
        || operator.chars().count() > 100
        || operator.chars().any(char::is_control)
    {
        return Err(bad(
            "operator",
            "one line of 1 to 100 characters naming who will read",
        ));
    }
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(bad("reason", "say why, in 1 to 2000 characters"));
    }
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(bad(
            "minutes",
            format!("between 1 and {MAX_MINUTES} (a week)"),
        ));
    }
    if state.store.workspace(ws).await?.is_none() {
        return Err(AppError::not_found_workspace());
    }
    let id = uuid::Uuid::now_v7();
    let ids = id.to_string();
    let row = SupportGrantRow {
        id,
        workspace_id: ws,
        operator_sealed: state.seal_workspace(ws, &ids, "support_operator", operator)?,
        reason_sealed: state.seal_workspace(ws, &ids, "support_reason", reason)?,
        minutes,
        requested_at: now_millis(),
        approved_by: None,
        approved_at: None,
        expires_at: None,
        revoked_at: None,
    };
    state.store.support_grant_create(&row).await?;
    audit::record(
        state,
        None,
        Event {
            kind: "support.requested",
            workspace: Some(ws),
            actor: None,
            subject: None,
            details: json!({"grant": ids, "operator": operator, "minutes": minutes}),
        },
    )
    .await?;
    for m in state.store.members(ws).await? {
        if m.role != Role::Owner {
            continue;
        }
        if let Some(u) = state.store.user(m.user_id).await? {
            mail::enqueue(
                state,
                Mail {
                    kind: "support_request".into(),
                    to: state.open_account_str(u.id, "email", &u.email_sealed)?,
                    subject: "Support asks to read your workspace's data".into(),
                    body: format!(
                        "{operator} of this Meshwork server's support asks to read your workspace's CRM data for {minutes} minutes, because:\n\n{reason}\n\nNothing can be read unless an owner approves it in the workspace's settings. Connected tools' documents are never shown to support. Every read is in the workspace's audit log, and you can revoke the access at any time.\n\n{}/w/{ws}/settings",
                        state.config.public_url.trim_end_matches('/')
                    ),
                },
            )
            .await?;
        }
    }
    view(state, &row, now_millis())
}

/// The workspace's grants, newest first (owners: `support.manage`).
pub async fn list(state: &AppState, auth: &impl InWorkspace) -> AppResult<Vec<Grant>> {
    let now = now_millis();
    state
        .store
        .support_grants(auth.workspace())
        .await?
        .iter()
        .map(|g| view(state, g, now))
        .collect()
}

fn not_found() -> AppError {
    AppError::new(
        ErrorCode::SupportGrantNotFound,
        "no support request with this id in the workspace",
    )
}

/// An owner approves a pending request: it holds from now for its minutes. Audited.
pub async fn approve(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: uuid::Uuid,
) -> AppResult<Grant> {
    let ws = auth.workspace();
    let g = state
        .store
        .support_grant(id)
        .await?
        .filter(|g| g.workspace_id == ws)
        .ok_or_else(not_found)?;
    let now = now_millis();
    let until = now + g.minutes * 60_000;
    if !state
        .store
        .support_grant_approve(ws, id, auth.actor().user_id(), now, until)
        .await?
    {
        return Err(AppError::new(
            ErrorCode::ConcurrentChange,
            "this support request was already approved or revoked",
        ));
    }
    audit::record(
        state,
        Some(client),
        Event {
            kind: "support.approved",
            workspace: Some(ws),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({"grant": id.to_string(), "expires_at": until}),
        },
    )
    .await?;
    let g = state.store.support_grant(id).await?.ok_or_else(not_found)?;
    view(state, &g, now)
}

/// An owner revokes a grant (or refuses a request): reads under it stop at once. Audited.
pub async fn revoke(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: uuid::Uuid,
) -> AppResult<Grant> {
    let ws = auth.workspace();
    let now = now_millis();
    if !state.store.support_grant_revoke(ws, id, now).await? {
        return Err(not_found());
    }
    audit::record(
        state,
        Some(client),
        Event {
            kind: "support.revoked",
            workspace: Some(ws),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({"grant": id.to_string()}),
        },
    )
    .await?;
    let g = state.store.support_grant(id).await?.ok_or_else(not_found)?;
    view(state, &g, now)
}

/// What support may read: CRM records. Source documents are not among them.
pub const READABLE: &[Kind] = &[
    Kind::Company,
    Kind::Contact,
    Kind::Deal,
    Kind::Note,
    Kind::Activity,
    Kind::Communication,
];

/// Reads up to `limit` CRM records of `kind` under a grant, as of `now`: refused unless an
/// owner approved it and it is neither revoked nor past its time. Every read is in the
/// workspace's audit log with the operator's name.
pub async fn read(
    state: &AppState,
    grant: uuid::Uuid,
    kind: &str,
    limit: i64,
    now: Millis,
) -> AppResult<Vec<RecordView>> {
    let g = state.store.support_grant(grant).await?.ok_or_else(|| {
        AppError::new(ErrorCode::PermissionDenied, "no support grant with this id")
    })?;
    let at = state_of(&g, now);
    if at != "active" {
        return Err(AppError::new(
            ErrorCode::PermissionDenied,
            match at {
                "pending" => "this support request is not approved: a workspace owner must approve it in settings",
                "revoked" => "this support access was revoked by the workspace",
                _ => "this support access has ended (its time is up); ask again",
            },
        ));
    }
    let Some(kind) = kind.parse::<Kind>().ok().filter(|k| READABLE.contains(k)) else {
        return Err(bad(
            "type",
            "support reads companies, contacts, deals, notes, activities and communications; connected tools' documents are never shown to support",
        ));
    };
    let ws = g.workspace_id;
    let crm = Crm::new(state, ws)?;
    let rows = state
        .store
        .crm_list(ws, kind.as_str(), None, limit.clamp(1, 1000))
        .await?;
    let views: Vec<RecordView> = rows.iter().map(|r| crm.view(r)).collect::<AppResult<_>>()?;
    let operator = state.open_workspace(
        ws,
        &g.id.to_string(),
        "support_operator",
        &g.operator_sealed,
    )?;
    audit::record(
        state,
        None,
        Event {
            kind: "support.read",
            workspace: Some(ws),
            actor: None,
            subject: None,
            details: json!({"grant": g.id.to_string(), "operator": operator, "type": kind.as_str(), "records": views.len()}),
        },
    )
    .await?;
    Ok(views)
}
