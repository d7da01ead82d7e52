//! Data-rights routes (mm17, mm18, pm11, pm12): re-authenticate, export your account, delete
//! it, erase a contact. The work is `meshwork_app::rights`; these parse and answer.

use crate::auth::{perm, Authorized, SessionUser};
use crate::client::Client;
use crate::error::{ApiResult, ErrorBody, Json, Path, Query};
use crate::http::accounts::session_cookie;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use meshwork_app::actor::{Actor, InWorkspace};
use meshwork_app::preferences::{self, MailPreferences};
use meshwork_app::rights::{self, AccountDeleted, AccountExport, Erased, Restriction};
use meshwork_app::state::AppState;
use meshwork_app::support::{self, Grant};
use meshwork_app::usage::{self, Processing};
use meshwork_domain::{ErrorCode, RecordId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauthenticate {
    /// Your password.
    pub password: Option<String>,
    /// Or, with two-factor authentication on, a current code from your authenticator.
    pub totp_code: Option<String>,
}

/// Confirm it is you (mm18): rights requests (export, account deletion, erasure) then work for
/// 5 minutes in this session. A sign-in counts as one too.
#[utoipa::path(post, path = "/api/v1/me/reauthenticate", tag = "rights", security(("session" = [])), request_body = Reauthenticate,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn reauthenticate(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<Reauthenticate>,
) -> ApiResult<StatusCode> {
    rights::reauthenticate(
        &state,
        &client,
        user.id,
        &user.session_hash,
        req.password,
        req.totp_code.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormat {
    /// `json` (the default) or `csv` (one row per value: section, item, field, value).
    pub format: Option<String>,
}

/// Everything stored about your account, to keep or take elsewhere (pm12, mm17): profile,
/// memberships, sessions, mail preference, your audit trail. Needs a fresh authentication.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "rights", security(("session" = [])), params(ExportFormat),
    responses((status = 200, content((AccountExport = "application/json"), (String = "text/csv")), description = "JSON, or CSV with `format=csv`"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Query(q): Query<ExportFormat>,
) -> ApiResult<Response> {
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(meshwork_app::AppError::new(
            ErrorCode::InvalidField,
            format!("query `format`: {format:?} is not json or csv"),
        )
        .into());
    }
    let export = rights::export_account(&state, &client, user.id, &user.session_hash).await?;
    let disposition = |ext: &str| format!("attachment; filename=\"meshwork-account.{ext}\"");
    Ok(match format {
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition("csv")),
            ],
            rights::export_csv(&export)?,
        )
            .into_response(),
        _ => (
            [(header::CONTENT_DISPOSITION, disposition("json"))],
            Json(export),
        )
            .into_response(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    /// Your account's email address, typed out.
    pub confirm: String,
}

/// Delete your account (pm11, cl12): it and everything that hangs on it go at once, with the
/// workspaces where you are the only member. Needs a fresh authentication and your email typed
/// out. Backups keep it until they expire (7 days by default).
#[utoipa::path(delete, path = "/api/v1/me", tag = "rights", security(("session" = [])), request_body = DeleteAccount,
    responses((status = 200, body = AccountDeleted), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_me(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<DeleteAccount>,
) -> ApiResult<Response> {
    let done =
        rights::delete_account(&state, &client, user.id, &user.session_hash, &req.confirm).await?;
    let mut resp = Json(done).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(resp)
}

/// Erase a contact at their request (mm17): the record, what is only about it (notes,
/// activities, communications, files, submissions), its index entries and overlap pseudonyms;
/// its email addresses are suppressed (as blind indexes) so no import, form or sync brings the
/// person back.
/// Owners and admins, signed in, with a fresh authentication.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/contacts/{id}/erase", tag = "rights",
    security(("session" = ["crm.bulk"])),
    params(("workspace_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Erased), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn erase_contact(
    State(state): State<AppState>,
    auth: Authorized<perm::CrmBulk>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<Erased>> {
    let session = match auth.actor() {
        Actor::User { session_hash, .. } => Some(*session_hash),
        Actor::ApiKey { .. } => None,
    };
    Ok(Json(
        rights::erase_contact(&state, &client, &auth, session.as_ref(), RecordId(id)).await?,
    ))
}

/// Your mail preferences (pm13).
#[utoipa::path(get, path = "/api/v1/me/mail-preferences", tag = "rights", security(("session" = [])),
    responses((status = 200, body = MailPreferences), (status = 401, body = ErrorBody)))]
pub async fn mail_preferences(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<Json<MailPreferences>> {
    Ok(Json(preferences::get(&state, user.id).await?))
}

/// Decline (or accept again) product news. Mail about your account, its security, legal
/// notices and retention warnings always arrives.
#[utoipa::path(put, path = "/api/v1/me/mail-preferences", tag = "rights", security(("session" = [])), request_body = MailPreferences,
    responses((status = 200, body = MailPreferences), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_mail_preferences(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<MailPreferences>,
) -> ApiResult<Json<MailPreferences>> {
    Ok(Json(
        preferences::set(&state, &client, user.id, &req).await?,
    ))
}

/// The operator's requests to read this workspace's data (mm09), newest first: pending,
/// active, expired or revoked. Owners only.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/support-grants", tag = "rights",
    security(("session" = ["support.manage"]), ("api_key" = ["support.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Grant>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn support_grants(
    State(state): State<AppState>,
    auth: Authorized<perm::SupportManage>,
) -> ApiResult<Json<Vec<Grant>>> {
    Ok(Json(support::list(&state, &auth).await?))
}

/// Approve a support request: the operator may read the workspace's CRM data (never connected
/// tools' documents) from now for the minutes it asked, each read in the audit log.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/support-grants/{grant_id}/approve", tag = "rights",
    security(("session" = ["support.manage"]), ("api_key" = ["support.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("grant_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn approve_support(
    State(state): State<AppState>,
    auth: Authorized<perm::SupportManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(support::approve(&state, &client, &auth, id).await?))
}

/// Revoke support access (or refuse a request): reads under it stop at once.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/support-grants/{grant_id}/revoke", tag = "rights",
    security(("session" = ["support.manage"]), ("api_key" = ["support.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("grant_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Grant), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn revoke_support(
    State(state): State<AppState>,
    auth: Authorized<perm::SupportManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(support::revoke(&state, &client, &auth, id).await?))
}

/// Whether third-party processing is on for the workspace (mm07): aggregate usage analytics,
/// and any outbound processor such as an AI provider.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/processing", tag = "rights",
    security(("session" = ["workspace.read"]), ("api_key" = ["workspace.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Processing), (status = 404, body = ErrorBody)))]
pub async fn processing(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkspaceRead>,
) -> ApiResult<Json<Processing>> {
    Ok(Json(usage::processing(&state, &auth).await?))
}

/// Turn third-party processing on or off for the workspace (owners). Off, the workspace's use
/// is left out of the server's usage counts and no outbound processor is used for it.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/processing", tag = "rights",
    security(("session" = ["processing.manage"]), ("api_key" = ["processing.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)), request_body = Processing,
    responses((status = 200, body = Processing), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_processing(
    State(state): State<AppState>,
    auth: Authorized<perm::ProcessingManage>,
    Client(client): Client,
    Json(req): Json<Processing>,
) -> ApiResult<Json<Processing>> {
    Ok(Json(
        usage::set_processing(&state, &client, &auth, &req).await?,
    ))
}

/// Whether a contact's processing is restricted at their request (mm17).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/contacts/{id}/restriction", tag = "rights",
    security(("session" = ["crm.read"]), ("api_key" = ["crm.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Restriction), (status = 404, body = ErrorBody)))]
pub async fn restriction(
    State(state): State<AppState>,
    auth: Authorized<perm::CrmRead>,
    Path((_, id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<Restriction>> {
    Ok(Json(
        rights::restriction(&state, &auth, RecordId(id)).await?,
    ))
}

/// Restrict a contact's processing at their request, or lift it (mm17): kept and visible, but no
/// connector changes it, no overlap run matches it, no mail is logged on it. Owners and admins,
/// signed in, with a fresh authentication.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/contacts/{id}/restriction", tag = "rights",
    security(("session" = ["crm.bulk"])),
    params(("workspace_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)), request_body = Restriction,
    responses((status = 200, body = Restriction), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_restriction(
    State(state): State<AppState>,
    auth: Authorized<perm::CrmBulk>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, uuid::Uuid)>,
    Json(req): Json<Restriction>,
) -> ApiResult<Json<Restriction>> {
    let session = match auth.actor() {
        Actor::User { session_hash, .. } => Some(*session_hash),
        Actor::ApiKey { .. } => None,
    };
    Ok(Json(
        rights::restrict_contact(
            &state,
            &client,
            &auth,
            session.as_ref(),
            RecordId(id),
            req.restricted,
        )
        .await?,
    ))
}
