//! Workspace routes: workspaces, members and roles, invitations, API keys, the audit log and the
//! change feed. Each workspace route names its permission in its signature (`Authorized<P>`)
//! and in its OpenAPI security scopes; the route-matrix test checks the two agree.

use crate::auth::{perm, Authorized, SessionUser};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::http::accounts::AuditPage;
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::audit::{self, Event};
use meshwork_app::mail::{self, Mail};
use meshwork_app::state::{now_millis, random_token, token_hash, AppState};
use meshwork_app::workspaces::Accepted;
use meshwork_app::AppError;
use meshwork_domain::{
    ApiKeyId, EmailAddress, ErrorCode, InviteId, ProfileText, Role, UserId, WorkspaceId,
    WorkspaceName,
};
use meshwork_store::{ApiKeyRow, AuditScope, InviteRow, RoleChange, WorkspaceRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    pub id: uuid::Uuid,
    pub name: String,
    /// Your role in it.
    pub role: String,
    pub created_at: i64,
    /// The sequence number of the newest change in its change feed.
    pub last_seq: i64,
}

fn view(state: &AppState, ws: &WorkspaceRow, role: Role) -> ApiResult<Workspace> {
    Ok(Workspace {
        id: ws.id.as_uuid(),
        name: state.open_workspace(ws.id, &ws.id.to_string(), "name", &ws.name_sealed)?,
        role: role.to_string(),
        created_at: ws.created_at,
        last_seq: ws.last_seq,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceInput {
    pub name: String,
}

/// Create a workspace; you become its owner. It gets its own encryption key.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces", security(("session" = [])), request_body = WorkspaceInput,
    responses((status = 201, body = Workspace), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<WorkspaceInput>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let name = WorkspaceName::parse("name", &req.name)?;
    let id = WorkspaceId::new();
    // The key first: a crash before the row leaves an unused key, never a row without a key.
    state.keyring.create_workspace_key(id.as_uuid())?;
    let now = now_millis();
    let row = WorkspaceRow {
        id,
        name_sealed: state.seal_workspace(id, &id.to_string(), "name", name.as_str())?,
        created_at: now,
        last_seq: 0,
    };
    state.store.create_workspace(&row, user.id, now).await?;
    audit::record(
        &state,
        Some(&client),
        Event {
            kind: "workspace.created",
            workspace: Some(id),
            actor: Some(user.id),
            subject: None,
            details: json!({}),
        },
    )
    .await?;
    let row = state
        .store
        .workspace(id)
        .await?
        .ok_or_else(|| ApiError::internal("workspace vanished after creation"))?;
    Ok((StatusCode::CREATED, Json(view(&state, &row, Role::Owner)?)))
}

/// The workspaces you belong to.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", security(("session" = [])),
    responses((status = 200, body = Vec<Workspace>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<Json<Vec<Workspace>>> {
    let rows = state.store.workspaces_of(user.id).await?;
    Ok(Json(
        rows.iter()
            .filter(|(ws, _)| state.workspace_readable(ws.id))
            .map(|(ws, role)| view(&state, ws, *role))
            .collect::<ApiResult<_>>()?,
    ))
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
    let row = state
        .store
        .workspace(auth.workspace)
        .await?
        .ok_or_else(ApiError::not_found_workspace)?;
    Ok(Json(view(&state, &row, auth.role)?))
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
    let name = WorkspaceName::parse("name", &req.name)?;
    let ws = auth.workspace;
    state
        .store
        .rename_workspace(
            ws,
            &state.seal_workspace(ws, &ws.to_string(), "name", name.as_str())?,
            now_millis(),
        )
        .await?;
    audit::record(
        &state,
        Some(&client),
        Event {
            kind: "workspace.renamed",
            workspace: Some(ws),
            actor: Some(auth.actor.user_id()),
            subject: None,
            details: json!({}),
        },
    )
    .await?;
    let row = state
        .store
        .workspace(ws)
        .await?
        .ok_or_else(ApiError::not_found_workspace)?;
    Ok(Json(view(&state, &row, auth.role)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteConfirm {
    /// The workspace's exact current name. (If its key is already gone, its id.)
    pub confirm: String,
}

/// Delete a workspace: its encryption key is destroyed, so every copy of its data, in every
/// backup, becomes unreadable (crypto-shredding), and its records are removed from the store.
/// The body confirms it with the workspace's exact name.
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
    meshwork_app::workspaces::delete(&state, &client, &auth, &q.confirm).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub user_id: uuid::Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub joined_at: i64,
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
    let mut out = Vec::new();
    for m in state.store.members(auth.workspace).await? {
        let Some(u) = state.store.user(m.user_id).await? else {
            continue;
        };
        out.push(Member {
            user_id: u.id.as_uuid(),
            name: state.open_account_str(u.id, "name", &u.name_sealed)?,
            email: state.open_account_str(u.id, "email", &u.email_sealed)?,
            role: m.role.to_string(),
            joined_at: m.joined_at,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

fn parse_role(field: &str, raw: &str) -> ApiResult<Role> {
    raw.parse().map_err(|e: String| {
        ApiError::new(ErrorCode::InvalidField, format!("field `{field}`: {e}"))
    })
}

/// Only an owner may grant ownership or act on an owner; nobody grants more than they hold.
fn check_grant(
    actor_role: Role,
    target_current: Option<Role>,
    new_role: Option<Role>,
) -> ApiResult<()> {
    let touches_owner = target_current == Some(Role::Owner) || new_role == Some(Role::Owner);
    if (touches_owner && actor_role != Role::Owner)
        || new_role.is_some_and(|r| !actor_role.at_least(r))
    {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("your role ({actor_role}) cannot grant or change this role"),
        ));
    }
    Ok(())
}

fn role_change_result(outcome: RoleChange) -> ApiResult<()> {
    match outcome {
        RoleChange::Applied => Ok(()),
        RoleChange::LastOwner => Err(ApiError::new(
            ErrorCode::LastOwner,
            "this is the workspace's last owner; make someone else owner first",
        )),
        RoleChange::Stale => Err(ApiError::new(
            ErrorCode::ConcurrentChange,
            "the member's role changed while this request ran; reload and retry",
        )),
    }
}

async fn target_role(state: &AppState, ws: WorkspaceId, user: UserId) -> ApiResult<Role> {
    state.store.role_of(ws, user).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MemberNotFound,
            "no member with this id in the workspace",
        )
    })
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
    let role = parse_role("role", &req.role)?;
    let target = UserId(user_id);
    let current = target_role(&state, auth.workspace, target).await?;
    check_grant(auth.role, Some(current), Some(role))?;
    role_change_result(
        state
            .store
            .set_role(auth.workspace, target, current, role, now_millis())
            .await?,
    )?;
    state.key_cache.forget_workspace(auth.workspace);
    audit::workspace_event(
        &state,
        &client,
        "member.role_changed",
        &auth,
        Some(target),
        json!({"from": current, "to": role}),
    )
    .await?;
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
    let target = UserId(user_id);
    let current = target_role(&state, auth.workspace, target).await?;
    check_grant(auth.role, Some(current), None)?;
    role_change_result(
        state
            .store
            .remove_member(auth.workspace, target, current, now_millis())
            .await?,
    )?;
    state.key_cache.forget_workspace(auth.workspace);
    audit::workspace_event(
        &state,
        &client,
        "member.removed",
        &auth,
        Some(target),
        json!({"role": current}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    pub email: String,
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub role: String,
    pub expires_at: i64,
    /// Shown once (it is also emailed): only the invited address can accept it.
    pub accept_token: String,
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
    let email = EmailAddress::parse("email", &req.email)?;
    let role = parse_role("role", &req.role)?;
    check_grant(auth.role, None, Some(role))?;
    let token = random_token();
    let now = now_millis();
    let row = InviteRow {
        id: InviteId::new(),
        workspace_id: auth.workspace,
        token_hash: token_hash(&token),
        email_index: state.email_index(&email.normalized())?,
        role,
        invited_by: auth.actor.user_id(),
        expires_at: now + INVITE_TTL_MS,
    };
    state.store.create_invite(&row, now).await?;
    let ws = state
        .store
        .workspace(auth.workspace)
        .await?
        .ok_or_else(ApiError::not_found_workspace)?;
    let ws_name = state.open_workspace(ws.id, &ws.id.to_string(), "name", &ws.name_sealed)?;
    let link = format!(
        "{}/invites/accept?token={token}",
        state.config.public_url.trim_end_matches('/')
    );
    mail::enqueue(&state, Mail {
        kind: "invite".into(),
        to: email.as_str().into(),
        subject: format!("You are invited to {ws_name} on Meshwork"),
        body: format!("You have been invited to join {ws_name} as {role}.\n\nAccept here (sign in or sign up with this email address first):\n\n{link}\n\nThe invitation expires in 7 days."),
    })
    .await?;
    audit::workspace_event(
        &state,
        &client,
        "member.invited",
        &auth,
        None,
        json!({"role": role}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            id: row.id.as_uuid(),
            role: role.to_string(),
            expires_at: row.expires_at,
            accept_token: token,
        }),
    ))
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
    if !state
        .store
        .revoke_invite(auth.workspace, InviteId(invite_id), now_millis())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::InviteNotFound,
            "no pending invitation with this id in the workspace",
        ));
    }
    audit::workspace_event(
        &state,
        &client,
        "member.invite_revoked",
        &auth,
        None,
        json!({"invite_id": invite_id}),
    )
    .await?;
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

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub role: String,
    pub created_by: uuid::Uuid,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn key_view(state: &AppState, k: &ApiKeyRow) -> ApiResult<ApiKey> {
    Ok(ApiKey {
        id: k.id.as_uuid(),
        name: state.open_workspace(k.workspace_id, &k.id.to_string(), "name", &k.name_sealed)?,
        prefix: k.prefix.clone(),
        role: k.role.to_string(),
        created_by: k.created_by.as_uuid(),
        created_at: k.created_at,
        expires_at: k.expires_at,
        revoked_at: k.revoked_at,
    })
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
    let keys = state.store.api_keys(auth.workspace).await?;
    Ok(Json(
        keys.iter()
            .map(|k| key_view(&state, k))
            .collect::<ApiResult<_>>()?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    pub name: String,
    /// The key's role, at most your own.
    pub role: String,
    /// Days until the key stops working (1 to 3650); none for no expiry.
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret, shown this once: only its hash is stored.
    pub secret: String,
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
    let name = ProfileText::parse("name", &req.name)?;
    if name.as_str().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "field `name`: must not be empty",
        ));
    }
    let role = parse_role("role", &req.role)?;
    check_grant(auth.role, None, Some(role))?;
    let now = now_millis();
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(now + d as i64 * 24 * 3600 * 1000),
        Some(d) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("field `expires_in_days`: must be 1 to 3650, got {d}"),
            ))
        }
    };
    let secret = format!("mwk_{}", random_token());
    let id = ApiKeyId::new();
    let row = ApiKeyRow {
        id,
        workspace_id: auth.workspace,
        key_hash: token_hash(&secret),
        prefix: secret[..12].to_string(),
        name_sealed: state.seal_workspace(
            auth.workspace,
            &id.to_string(),
            "name",
            name.as_str(),
        )?,
        role,
        created_by: auth.actor.user_id(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    state.store.create_api_key(&row, now).await?;
    audit::workspace_event(
        &state,
        &client,
        "api_key.created",
        &auth,
        None,
        json!({"key_id": id, "role": role, "expires_at": expires_at}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key_view(&state, &row)?,
            secret,
        }),
    ))
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
    if !state
        .store
        .revoke_api_key(auth.workspace, ApiKeyId(key_id), now_millis())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::ApiKeyNotFound,
            "no API key with this id in the workspace",
        ));
    }
    state.key_cache.forget_workspace(auth.workspace);
    audit::workspace_event(
        &state,
        &client,
        "api_key.revoked",
        &auth,
        None,
        json!({"key_id": key_id}),
    )
    .await?;
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
