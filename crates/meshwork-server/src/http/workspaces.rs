//! Workspace routes: workspaces, members and roles, invitations, API keys, the audit log and the
//! change feed. Each workspace route names its permission in its signature (`Authorized<P>`)
//! and in its OpenAPI security scopes; the route-matrix test checks the two agree.

use crate::auth::{perm, Authorized, SessionUser};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::http::accounts::AuditPage;
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::audit::{self};
use meshwork_app::state::AppState;
use meshwork_app::workspaces::{
    self, Accepted, ApiKey, ApiKeyInput, CreatedApiKey, Invitation, InviteInput, Member, RoleInput,
    Workspace, WorkspaceInput,
};
use meshwork_app::AppError;
use meshwork_domain::{ApiKeyId, ErrorCode, UserId};
use meshwork_store::AuditScope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Create a workspace; you become its owner. It gets its own encryption key.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", security(("session" = [])), request_body = WorkspaceInput,
    responses((status = 201, body = Workspace), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<WorkspaceInput>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let ws = workspaces::create(&state, &client, user.id, &req).await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

/// The workspaces you belong to.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", security(("session" = [])),
    responses((status = 200, body = Vec<Workspace>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<Json<Vec<Workspace>>> {
    Ok(Json(workspaces::list(&state, user.id).await?))
}

/// One workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    security(("session" = ["workspace.read"]), ("api_key" = ["workspace.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkspaceRead>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(workspaces::get(&state, &auth).await?))
}

/// Rename a workspace.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    security(("session" = ["workspace.rename"]), ("api_key" = ["workspace.rename"])),
    params(("workspace_id" = uuid::Uuid, Path)), request_body = WorkspaceInput,
    responses((status = 200, body = Workspace), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkspaceRename>,
    Client(client): Client,
    Json(req): Json<WorkspaceInput>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(
        workspaces::rename(&state, &client, &auth, &req).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteConfirm {
    /// The workspace's exact current name. (If its key is already gone, its id.)
    pub confirm: String,
    /// Your password, when you delete from a session: a stolen session alone cannot destroy a
    /// workspace. Not needed with an API key.
    pub password: Option<String>,
}

impl std::fmt::Debug for DeleteConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteConfirm")
            .field("confirm", &self.confirm)
            .finish_non_exhaustive()
    }
}

/// Delete a workspace: its encryption key is destroyed, so every copy of its data, in every
/// backup, becomes unreadable (crypto-shredding), and its records are removed from the store.
/// The body confirms it with the workspace's exact name, and a person's password.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    security(("session" = ["workspace.delete"]), ("api_key" = ["workspace.delete"])),
    params(("workspace_id" = uuid::Uuid, Path)), request_body = DeleteConfirm,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkspaceDelete>,
    Client(client): Client,
    Json(q): Json<DeleteConfirm>,
) -> ApiResult<StatusCode> {
    meshwork_app::workspaces::delete(&state, &client, &auth, &q.confirm, q.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a workspace and their roles.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    security(("session" = ["members.read"]), ("api_key" = ["members.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Member>), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersRead>,
) -> ApiResult<Json<Vec<Member>>> {
    Ok(Json(workspaces::members(&state, &auth).await?))
}

/// Change a member's role.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    security(("session" = ["members.manage"]), ("api_key" = ["members.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)), request_body = RoleInput,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    Client(client): Client,
    Path((_, user_id)): Path<(uuid::Uuid, uuid::Uuid)>,
    Json(req): Json<RoleInput>,
) -> ApiResult<StatusCode> {
    workspaces::set_role(&state, &client, &auth, UserId(user_id), &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member from the workspace.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    security(("session" = ["members.manage"]), ("api_key" = ["members.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    Client(client): Client,
    Path((_, user_id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    workspaces::remove_member(&state, &client, &auth, UserId(user_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invite someone by email. Only the account with that email can accept.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/invites", tag = "workspaces",
    security(("session" = ["members.invite"]), ("api_key" = ["members.invite"])),
    params(("workspace_id" = uuid::Uuid, Path)), request_body = InviteInput,
    responses((status = 201, body = Invitation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersInvite>,
    Client(client): Client,
    Json(req): Json<InviteInput>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let invitation = workspaces::invite(&state, &client, &auth, &req).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Withdraw an invitation that has not been accepted yet.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/invites/{invite_id}", tag = "workspaces",
    security(("session" = ["members.invite"]), ("api_key" = ["members.invite"])),
    params(("workspace_id" = uuid::Uuid, Path), ("invite_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersInvite>,
    Client(client): Client,
    Path((_, invite_id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    workspaces::revoke_invite(&state, &client, &auth, invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    pub token: String,
}

/// Accept an invitation sent to your email address.
#[utoipa::path(post, path = "/api/v1/invites/accept", tag = "workspaces", security(("session" = [])), request_body = AcceptInput,
    responses((status = 200, body = Accepted), (status = 400, body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<AcceptInput>,
) -> ApiResult<Json<Accepted>> {
    Ok(Json(
        meshwork_app::workspaces::accept_invite(&state, &client, user.id, &req.token).await?,
    ))
}

/// The workspace's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/api-keys", tag = "api keys",
    security(("session" = ["api_keys.read"]), ("api_key" = ["api_keys.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<ApiKey>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysRead>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(workspaces::list_keys(&state, &auth).await?))
}

/// Create an API key. The secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/api-keys", tag = "api keys",
    security(("session" = ["api_keys.manage"]), ("api_key" = ["api_keys.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)), request_body = ApiKeyInput,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    Client(client): Client,
    Json(req): Json<ApiKeyInput>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let created = workspaces::create_key(&state, &client, &auth, &req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/api-keys/{key_id}", tag = "api keys",
    security(("session" = ["api_keys.manage"]), ("api_key" = ["api_keys.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("key_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    Client(client): Client,
    Path((_, key_id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    workspaces::revoke_key(&state, &client, &auth, ApiKeyId(key_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The workspace's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/audit", tag = "workspaces",
    security(("session" = ["audit.read"]), ("api_key" = ["audit.read"])),
    params(("workspace_id" = uuid::Uuid, Path), AuditPage),
    responses((status = 200, body = Vec<audit::AuditEntry>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn workspace_audit(
    State(state): State<AppState>,
    auth: Authorized<perm::AuditRead>,
    Query(page): Query<AuditPage>,
) -> ApiResult<Json<Vec<audit::AuditEntry>>> {
    let rows = state
        .store
        .audit(
            AuditScope::Workspace(auth.workspace),
            page.before.map(meshwork_domain::AuditId),
            page.limit()?,
        )
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| audit::open(&state, r))
            .collect::<Result<_, AppError>>()?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesPage {
    /// Changes with a sequence number above this (default 0).
    pub after: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    pub seq: i64,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
    pub at: i64,
}

/// The workspace's change feed, in order: what the search index and other readers follow.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/changes", tag = "workspaces",
    security(("session" = ["changes.read"]), ("api_key" = ["changes.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ChangesPage),
    responses((status = 200, body = Vec<Change>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn changes(
    State(state): State<AppState>,
    auth: Authorized<perm::ChangesRead>,
    Query(page): Query<ChangesPage>,
) -> ApiResult<Json<Vec<Change>>> {
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("query `limit`: must be 1 to 1000, got {limit}"),
        ));
    }
    let rows = state
        .store
        .changes_since(auth.workspace, page.after.unwrap_or(0), limit)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| Change {
                seq: c.seq,
                entity: c.entity,
                entity_id: c.entity_id,
                op: c.op,
                at: c.at,
            })
            .collect(),
    ))
}

/// The workspace's security rules (owners): whether its owners and admins must use two-factor
/// authentication, and which of them do not yet.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/security", tag = "workspaces",
    security(("session" = ["security.manage"]), ("api_key" = ["security.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = workspaces::Security), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn security(
    State(state): State<AppState>,
    auth: Authorized<perm::SecurityManage>,
) -> ApiResult<Json<workspaces::Security>> {
    Ok(Json(workspaces::security(&state, &auth).await?))
}

/// Require two-factor authentication of the workspace's owners and admins, or stop requiring
/// it (owners; OWASP ASVS 4.3.1). With it on, an owner or admin without it keeps only a
/// member's rights here (`403 admin_mfa_required`), and so do the API keys they made. Turning
/// it on needs two-factor authentication on for yourself, or for the API key's creator
/// (`409 mfa_not_enabled`); from a session, a confirmation within 5 minutes.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/security", tag = "workspaces",
    security(("session" = ["security.manage"]), ("api_key" = ["security.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)), request_body = workspaces::SecurityInput,
    responses((status = 200, body = workspaces::Security), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Two-factor authentication is not on for you: turn it on before requiring it of others."),
        (status = 422, body = ErrorBody)))]
pub async fn set_security(
    State(state): State<AppState>,
    auth: Authorized<perm::SecurityManage>,
    Client(client): Client,
    Json(req): Json<workspaces::SecurityInput>,
) -> ApiResult<Json<workspaces::Security>> {
    Ok(Json(
        workspaces::set_security(&state, &client, &auth, &req).await?,
    ))
}
