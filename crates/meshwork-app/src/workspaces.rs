//! Workspace services every door shares: workspaces (create, rename, delete), members and
//! their roles, invitations (sent by mail, accepted by the invited address only) and API keys.

use crate::actor::{Actor, ClientInfo, InWorkspace};
use crate::audit::{self, Event};
use crate::error::{AppError, AppResult};
use crate::mail::{self, Mail};
use crate::state::random_token;
use crate::state::{now_millis, token_hash, AppState};
use meshwork_domain::{
    ApiKeyId, EmailAddress, ErrorCode, InviteId, Permission, ProfileText, Role, UserId,
    WorkspaceId, WorkspaceName,
};
use meshwork_store::InviteOutcome;
use meshwork_store::{ApiKeyRow, InviteRow, RoleChange, WorkspaceRow};
use serde::Deserialize;
use serde::Serialize;
use serde_json::json;

/// What accepting an invitation did.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    pub workspace_id: uuid::Uuid,
    pub role: Option<String>,
    pub already_member: bool,
}

/// Accepts an invitation for `user`: only a person who proved they own the invited address (a
/// verified email whose blind index the invitation names) can take it, and only once.
pub async fn accept_invite(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    token: &str,
) -> AppResult<Accepted> {
    let u =
        state.store.user(user).await?.ok_or_else(|| {
            AppError::new(ErrorCode::InvalidSession, "the account no longer exists")
        })?;
    // An invitation is addressed to an email: only a proven owner of that address may take it.
    if !u.email_verified {
        return Err(AppError::new(
            ErrorCode::EmailNotVerified,
            "confirm your email address (see the verification mail) before accepting invitations",
        ));
    }
    match state
        .store
        .accept_invite(&token_hash(token), u.id, &u.email_index, now_millis())
        .await?
    {
        InviteOutcome::Joined { workspace, role } => {
            audit::record(
                state,
                Some(client),
                Event {
                    kind: "member.joined",
                    workspace: Some(workspace),
                    actor: Some(u.id),
                    subject: Some(u.id),
                    details: json!({"role": role}),
                },
            )
            .await?;
            Ok(Accepted {
                workspace_id: workspace.as_uuid(),
                role: Some(role.to_string()),
                already_member: false,
            })
        }
        InviteOutcome::AlreadyMember { workspace } => Ok(Accepted {
            workspace_id: workspace.as_uuid(),
            role: None,
            already_member: true,
        }),
        InviteOutcome::Invalid => Err(AppError::new(
            ErrorCode::InvalidToken,
            "field `token`: the invitation is unknown, used, expired, or for another email address",
        )),
    }
}

/// Deletes a workspace, confirmed by its exact name (or by its id when its key is already gone,
/// after a deletion cut short). Its key is destroyed first, so every copy of its data, in every
/// backup, becomes unreadable (crypto-shredding); then its index, its cached pseudonyms and its
/// rows go. Audited.
pub async fn delete(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl crate::actor::InWorkspace,
    confirm: &str,
    password: Option<String>,
) -> AppResult<()> {
    let ws = auth.workspace();
    let row = state
        .store
        .workspace(ws)
        .await?
        .ok_or_else(AppError::not_found_workspace)?;
    // A workspace whose key is already gone (a deletion cut short) is confirmed by its id.
    let expected = match state.keyring.workspace_key(ws.as_uuid()) {
        Ok(_) => state.open_workspace(ws, &ws.to_string(), "name", &row.name_sealed)?,
        Err(meshwork_keyring::KeyringError::MissingWorkspaceKey(_)) => ws.to_string(),
        Err(e) => return Err(e.into()),
    };
    if confirm != expected {
        return Err(AppError::new(
            ErrorCode::ConfirmationRequired,
            "field `confirm`: send the workspace's exact name to delete it (or its id, if its key is already gone); this cannot be undone",
        ));
    }
    // Step-up (OWASP ASVS 3.7.1, 4.3.3): a person types their password again, so a stolen
    // session alone cannot destroy a workspace. An API key was minted with the password.
    if let crate::actor::Actor::User { id, .. } = auth.actor() {
        let u = crate::accounts::load_user(state, *id).await?;
        let Some(password) = password else {
            return Err(AppError::new(
                ErrorCode::InvalidCredentials,
                "field `password`: your password is needed to delete a workspace",
            ));
        };
        crate::accounts::require_password(state, client, &u, password, "password").await?;
    }
    destroy(state, client, ws, auth.actor().user_id()).await
}

/// Deletes a workspace without asking (the caller confirmed it): its key, its index, its
/// cached pseudonyms, its uploads, its rows. Audited as done by `actor`.
pub async fn destroy(
    state: &AppState,
    client: &ClientInfo,
    ws: WorkspaceId,
    actor: UserId,
) -> AppResult<()> {
    // A durable job first: if this server stops anywhere below, the job finishes the deletion
    // when a server runs it (at once, or at the next start). It names no workspace of the
    // queue's own (those jobs go with the workspace), only the one to delete.
    let mut job = crate::jobs::NewJob::new(
        crate::jobs::WORKSPACE_DELETE,
        json!({"workspace": ws.to_string()}),
    );
    job.unique_key = Some(format!("{}@{ws}", crate::jobs::WORKSPACE_DELETE));
    crate::jobs::enqueue(state, job).await?;
    // The key next: once it is gone nothing of the workspace can be read anywhere, even if
    // removing the rows fails (the job removes them).
    state.key_cache.forget_workspace(ws);
    state.keyring.destroy_workspace_key(ws.as_uuid())?;
    crate::faults::hit("workspace.delete.after_key");
    remove_rest(state, ws).await?;
    audit::record(
        state,
        Some(client),
        Event {
            kind: "workspace.deleted",
            workspace: Some(ws),
            actor: Some(actor),
            subject: None,
            details: json!({}),
        },
    )
    .await?;
    Ok(())
}

/// What a workspace leaves once its key is destroyed: its index, cached pseudonyms, uploads and
/// rows. Idempotent: the deletion job runs it again after a stop.
pub async fn remove_rest(state: &AppState, ws: WorkspaceId) -> AppResult<()> {
    // The index is sealed with the destroyed key; its files go too. The overlap cache's
    // pseudonyms are keyed by a server key, not the workspace's: they are dropped here.
    state.search.forget(ws).await;
    state.pseudonyms.forget(ws);
    // Its uploads (import files, kept rejected rows), sealed with the same key.
    let _ = std::fs::remove_dir_all(state.config.data_dir.join("uploads").join(ws.to_string()));
    state.store.delete_workspace(ws).await?;
    // Again: a key look-up or an overlap run that ran meanwhile may have remembered some.
    state.key_cache.forget_workspace(ws);
    state.pseudonyms.forget(ws);
    Ok(())
}

// --- workspaces, members, invitations and API keys ------------------------------------------------

/// How long an invitation works.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workspace {
    pub id: uuid::Uuid,
    pub name: String,
    /// Your role in it.
    pub role: String,
    pub created_at: i64,
    /// The sequence number of the newest change in its change feed.
    pub last_seq: i64,
}

pub fn view(state: &AppState, ws: &WorkspaceRow, role: Role) -> AppResult<Workspace> {
    Ok(Workspace {
        id: ws.id.as_uuid(),
        name: state.open_workspace(ws.id, &ws.id.to_string(), "name", &ws.name_sealed)?,
        role: role.to_string(),
        created_at: ws.created_at,
        last_seq: ws.last_seq,
    })
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkspaceInput {
    pub name: String,
}

/// Creates a workspace with its own encryption key; `user` becomes its owner. Audited.
pub async fn create(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    req: &WorkspaceInput,
) -> AppResult<Workspace> {
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
    state.store.create_workspace(&row, user, now).await?;
    audit::record(
        state,
        Some(client),
        Event {
            kind: "workspace.created",
            workspace: Some(id),
            actor: Some(user),
            subject: None,
            details: json!({}),
        },
    )
    .await?;
    let row = state
        .store
        .workspace(id)
        .await?
        .ok_or_else(|| AppError::internal("workspace vanished after creation"))?;
    view(state, &row, Role::Owner)
}

/// The workspaces `user` belongs to (a workspace whose key is gone is left out).
pub async fn list(state: &AppState, user: UserId) -> AppResult<Vec<Workspace>> {
    let rows = state.store.workspaces_of(user).await?;
    rows.iter()
        .filter(|(ws, _)| state.workspace_readable(ws.id))
        .map(|(ws, role)| view(state, ws, *role))
        .collect()
}

/// The caller's workspace.
pub async fn get(state: &AppState, auth: &impl InWorkspace) -> AppResult<Workspace> {
    let row = state
        .store
        .workspace(auth.workspace())
        .await?
        .ok_or_else(AppError::not_found_workspace)?;
    view(state, &row, auth.role())
}

/// Renames the caller's workspace. Audited.
pub async fn rename(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    req: &WorkspaceInput,
) -> AppResult<Workspace> {
    let name = WorkspaceName::parse("name", &req.name)?;
    let ws = auth.workspace();
    state
        .store
        .rename_workspace(
            ws,
            &state.seal_workspace(ws, &ws.to_string(), "name", name.as_str())?,
            now_millis(),
        )
        .await?;
    audit::record(
        state,
        Some(client),
        Event {
            kind: "workspace.renamed",
            workspace: Some(ws),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({}),
        },
    )
    .await?;
    let row = state
        .store
        .workspace(ws)
        .await?
        .ok_or_else(AppError::not_found_workspace)?;
    view(state, &row, auth.role())
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: uuid::Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub joined_at: i64,
}

/// The members of the caller's workspace and their roles.
pub async fn members(state: &AppState, auth: &impl InWorkspace) -> AppResult<Vec<Member>> {
    let mut out = Vec::new();
    for m in state.store.members(auth.workspace()).await? {
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
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

pub fn parse_role(field: &str, raw: &str) -> AppResult<Role> {
    raw.parse().map_err(|e: String| {
        AppError::new(ErrorCode::InvalidField, format!("field `{field}`: {e}"))
    })
}

/// Only an owner may grant ownership or act on an owner; nobody grants more than they hold.
fn check_grant(
    actor_role: Role,
    target_current: Option<Role>,
    new_role: Option<Role>,
) -> AppResult<()> {
    let touches_owner = target_current == Some(Role::Owner) || new_role == Some(Role::Owner);
    if (touches_owner && actor_role != Role::Owner)
        || new_role.is_some_and(|r| !actor_role.at_least(r))
    {
        return Err(AppError::new(
            ErrorCode::PermissionDenied,
            format!("your role ({actor_role}) cannot grant or change this role"),
        ));
    }
    Ok(())
}

fn role_change_result(outcome: RoleChange) -> AppResult<()> {
    match outcome {
        RoleChange::Applied => Ok(()),
        RoleChange::LastOwner => Err(AppError::new(
            ErrorCode::LastOwner,
            "this is the workspace's last owner; make someone else owner first",
        )),
        RoleChange::Stale => Err(AppError::new(
            ErrorCode::ConcurrentChange,
            "the member's role changed while this request ran; reload and retry",
        )),
    }
}

async fn target_role(state: &AppState, ws: WorkspaceId, user: UserId) -> AppResult<Role> {
    state.store.role_of(ws, user).await?.ok_or_else(|| {
        AppError::new(
            ErrorCode::MemberNotFound,
            "no member with this id in the workspace",
        )
    })
}

/// Changes a member's role: nobody grants more than they hold, only an owner touches owners,
/// and the last owner stays. Cached API keys of the workspace are forgotten. Audited.
pub async fn set_role(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    user_id: UserId,
    req: &RoleInput,
) -> AppResult<()> {
    let role = parse_role("role", &req.role)?;
    let target = user_id;
    let current = target_role(state, auth.workspace(), target).await?;
    check_grant(auth.role(), Some(current), Some(role))?;
    crate::rights::require_fresh_actor(state, auth.actor(), "changing a member's role").await?;
    role_change_result(
        state
            .store
            .set_role(auth.workspace(), target, current, role, now_millis())
            .await?,
    )?;
    state.key_cache.forget_workspace(auth.workspace());
    audit::workspace_event(
        state,
        client,
        "member.role_changed",
        auth,
        Some(target),
        json!({"from": current, "to": role}),
    )
    .await?;
    Ok(())
}

/// Removes a member (the same rules as a role change). Audited.
pub async fn remove_member(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    user_id: UserId,
) -> AppResult<()> {
    let target = user_id;
    let current = target_role(state, auth.workspace(), target).await?;
    check_grant(auth.role(), Some(current), None)?;
    role_change_result(
        state
            .store
            .remove_member(auth.workspace(), target, current, now_millis())
            .await?,
    )?;
    state.key_cache.forget_workspace(auth.workspace());
    audit::workspace_event(
        state,
        client,
        "member.removed",
        auth,
        Some(target),
        json!({"role": current}),
    )
    .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    pub email: String,
    pub role: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub role: String,
    pub expires_at: i64,
    /// Shown once (it is also emailed): only the invited address can accept it.
    pub accept_token: String,
}

/// Invites someone by email to the caller's workspace, with a role at most the caller's; the
/// invitation is mailed (its link single-use and expiring in 7 days) and its token answered
/// once. Audited.
pub async fn invite(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    req: &InviteInput,
) -> AppResult<Invitation> {
    let email = EmailAddress::parse("email", &req.email)?;
    let role = parse_role("role", &req.role)?;
    check_grant(auth.role(), None, Some(role))?;
    if role.at_least(Role::Admin) {
        crate::rights::require_fresh_actor(state, auth.actor(), "inviting an admin or owner")
            .await?;
    }
    let token = random_token();
    let now = now_millis();
    let row = InviteRow {
        id: InviteId::new(),
        workspace_id: auth.workspace(),
        token_hash: token_hash(&token),
        email_index: state.email_index(&email.normalized())?,
        role,
        invited_by: auth.actor().user_id(),
        expires_at: now + INVITE_TTL_MS,
    };
    state.store.create_invite(&row, now).await?;
    let ws = state
        .store
        .workspace(auth.workspace())
        .await?
        .ok_or_else(AppError::not_found_workspace)?;
    let ws_name = state.open_workspace(ws.id, &ws.id.to_string(), "name", &ws.name_sealed)?;
    let link = crate::accounts::link(state, "/invites/accept", &token);
    mail::enqueue(state, Mail {
        kind: "invite".into(),
        to: email.as_str().into(),
        subject: format!("You are invited to {ws_name} on Meshwork"),
        body: format!("You have been invited to join {ws_name} as {role}.\n\nAccept here (sign in or sign up with this email address first):\n\n{link}\n\nThe invitation expires in 7 days."),
    })
    .await?;
    audit::workspace_event(
        state,
        client,
        "member.invited",
        auth,
        None,
        json!({"role": role}),
    )
    .await?;
    Ok(Invitation {
        id: row.id.as_uuid(),
        role: role.to_string(),
        expires_at: row.expires_at,
        accept_token: token,
    })
}

/// Withdraws an invitation not accepted yet. Audited.
pub async fn revoke_invite(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    invite_id: uuid::Uuid,
) -> AppResult<()> {
    if !state
        .store
        .revoke_invite(auth.workspace(), InviteId(invite_id), now_millis())
        .await?
    {
        return Err(AppError::new(
            ErrorCode::InviteNotFound,
            "no pending invitation with this id in the workspace",
        ));
    }
    audit::workspace_event(
        state,
        client,
        "member.invite_revoked",
        auth,
        None,
        json!({"invite_id": invite_id}),
    )
    .await?;
    Ok(())
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// When the key was last used, to the minute (none: never).
    pub last_used_at: Option<i64>,
    /// The client address of that use.
    pub last_used_from: Option<String>,
}

pub fn key_view(state: &AppState, k: &ApiKeyRow) -> AppResult<ApiKey> {
    let last_used_from = match &k.last_used_from_sealed {
        Some(sealed) => Some(state.open_workspace(
            k.workspace_id,
            &k.id.to_string(),
            "last_used_from",
            sealed,
        )?),
        None => None,
    };
    Ok(ApiKey {
        last_used_at: k.last_used_at,
        last_used_from,
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

/// A workspace's name, opened.
pub async fn workspace_name(state: &AppState, ws: WorkspaceId) -> AppResult<String> {
    let w = state
        .store
        .workspace(ws)
        .await?
        .ok_or_else(AppError::not_found_workspace)?;
    state.open_workspace(ws, &ws.to_string(), "name", &w.name_sealed)
}

/// The caller's workspace's API keys (never their secrets).
pub async fn list_keys(state: &AppState, auth: &impl InWorkspace) -> AppResult<Vec<ApiKey>> {
    let keys = state.store.api_keys(auth.workspace()).await?;
    keys.iter().map(|k| key_view(state, k)).collect()
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    pub name: String,
    /// The key's role, at most your own.
    pub role: String,
    /// Days until the key stops working (1 to 3650); none for no expiry.
    pub expires_in_days: Option<u32>,
    /// Your password, when you create the key from a session: a stolen session alone cannot
    /// mint a key that outlives it.
    pub password: Option<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret, shown this once: only its hash is stored.
    pub secret: String,
}

/// Creates an API key with a role at most the caller's; the secret is answered this once and
/// stored only as its hash. Audited.
pub async fn create_key(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    req: &ApiKeyInput,
) -> AppResult<CreatedApiKey> {
    let name = ProfileText::parse("name", &req.name)?;
    if name.as_str().is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "field `name`: must not be empty",
        ));
    }
    let role = parse_role("role", &req.role)?;
    check_grant(auth.role(), None, Some(role))?;
    // A person re-enters their password (security finding 10); a key that may manage keys
    // already holds that power.
    let person = match auth.actor() {
        crate::actor::Actor::User { id, .. } => {
            let u = crate::accounts::load_user(state, *id).await?;
            let Some(password) = req.password.clone() else {
                return Err(AppError::new(
                    ErrorCode::InvalidCredentials,
                    "field `password`: your password is needed to create an API key",
                ));
            };
            crate::accounts::require_password(state, client, &u, password, "password").await?;
            Some(u)
        }
        _ => None,
    };
    let now = now_millis();
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(now + d as i64 * 24 * 3600 * 1000),
        Some(d) => {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("field `expires_in_days`: must be 1 to 3650, got {d}"),
            ))
        }
    };
    let secret = format!("mwk_{}", random_token());
    let id = ApiKeyId::new();
    let row = ApiKeyRow {
        id,
        workspace_id: auth.workspace(),
        key_hash: token_hash(&secret),
        prefix: secret[..12].to_string(),
        name_sealed: state.seal_workspace(
            auth.workspace(),
            &id.to_string(),
            "name",
            name.as_str(),
        )?,
        role,
        created_by: auth.actor().user_id(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        last_used_from_sealed: None,
    };
    state.store.create_api_key(&row, now).await?;
    audit::workspace_event(
        state,
        client,
        "api_key.created",
        auth,
        None,
        json!({"key_id": id, "role": role, "expires_at": expires_at}),
    )
    .await?;
    // The person the key acts for hears of it, wherever the request came from.
    let creator = match person {
        Some(u) => Some(u),
        None => state.store.user(row.created_by).await?,
    };
    if let Some(u) = creator {
        let ws_name = workspace_name(state, auth.workspace()).await?;
        mail::enqueue(state, Mail {
            kind: "api_key_created".into(),
            to: state.open_account_str(u.id, "email", &u.email_sealed)?,
            subject: "A new API key acts for you in Meshwork".into(),
            body: format!(
                "An API key named \"{}\" with the role {role} was created in the workspace \"{ws_name}\"{}. It acts for you.\n\nIf you did not create it, revoke it in the workspace's API keys and change your password.",
                name.as_str(),
                match expires_at {
                    Some(_) => format!(", valid for {} days", req.expires_in_days.unwrap_or_default()),
                    None => ", with no expiry".into(),
                }
            ),
        })
        .await?;
    }
    Ok(CreatedApiKey {
        key: key_view(state, &row)?,
        secret,
    })
}

/// How long before an API key expires its creator is told (OWASP ASVS 2.3.3).
pub const KEY_EXPIRY_WARNING_DAYS: i64 = 7;

/// Tells the creator of each live API key that expires within `KEY_EXPIRY_WARNING_DAYS` of `now`,
/// once per key (ASVS 2.3.3: renewal instructions before a time-bound credential expires), so a
/// script does not stop without warning. Runs in the daily housekeeping; answers how many keys
/// were announced. A key whose creator has left the workspace or deleted their account is
/// skipped: it opens nothing any more.
pub async fn warn_expiring_keys(state: &AppState, now: i64) -> AppResult<usize> {
    let by = now + KEY_EXPIRY_WARNING_DAYS * 86_400_000;
    let mut told = 0;
    for key in state.store.api_keys_expiring(now, by).await? {
        // Claimed first: a run cut short sends at most one warning too few, never two.
        if !state
            .store
            .claim_api_key_expiry_warning(key.id, now)
            .await?
        {
            continue;
        }
        let Some(creator) = state.store.user(key.created_by).await? else {
            continue;
        };
        if state
            .store
            .role_of(key.workspace_id, creator.id)
            .await?
            .is_none()
        {
            continue;
        }
        let expires = key.expires_at.unwrap_or(by);
        let days = (expires - now + 86_399_999) / 86_400_000;
        let name = state.open_workspace(
            key.workspace_id,
            &key.id.to_string(),
            "name",
            &key.name_sealed,
        )?;
        let ws_name = workspace_name(state, key.workspace_id).await?;
        let when = time::OffsetDateTime::from_unix_timestamp(expires.div_euclid(1000))
            .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
            .unwrap_or_default();
        mail::enqueue(
            state,
            Mail {
                kind: "api_key_expiring".into(),
                to: state.open_account_str(creator.id, "email", &creator.email_sealed)?,
                subject: format!(
                    "Your Meshwork API key \"{name}\" stops working in {}",
                    if days == 1 { "1 day".to_string() } else { format!("{days} days") }
                ),
                body: format!(
                    "The API key \"{name}\" ({}…) in the workspace \"{ws_name}\" expires on {when}; requests with it are refused from then on.\n\nTo keep a script or integration working, create a new key in the workspace's settings (API keys), switch the script to it, then revoke the old one: {}/w/{}/settings",
                    key.prefix,
                    state.config.public_url.trim_end_matches('/'),
                    key.workspace_id,
                ),
            },
        )
        .await?;
        told += 1;
    }
    Ok(told)
}

/// Records that an API key was used, from `from` (OWASP ASVS 7.2.1: the keys page shows each
/// key's last use, so a key used from an unknown place stands out). Written at most once a minute
/// per key and server, so a busy script costs one write a minute, not one per request. A failed
/// write is logged and never fails the request.
pub async fn note_key_use(state: &AppState, key: &ApiKeyRow, from: Option<std::net::IpAddr>) {
    let now = now_millis();
    if key
        .last_used_at
        .is_some_and(|at| now - at < crate::key_cache::USE_WRITTEN_EVERY_MS)
        || !state.key_cache.use_is_due(key.id, now)
    {
        return;
    }
    let from = from.map_or_else(|| "unknown".to_string(), |a| a.to_string());
    let written = match state.seal_workspace(
        key.workspace_id,
        &key.id.to_string(),
        "last_used_from",
        &from,
    ) {
        Ok(sealed) => state
            .store
            .touch_api_key(key.id, now, &sealed)
            .await
            .map_err(AppError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(key = %key.id, error = %e, "could not record an API key's last use");
    }
}

/// Revokes an API key; it stops working at once on this server (others within the cache
/// window). Audited.
pub async fn revoke_key(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    key_id: ApiKeyId,
) -> AppResult<()> {
    if !state
        .store
        .revoke_api_key(auth.workspace(), key_id, now_millis())
        .await?
    {
        return Err(AppError::new(
            ErrorCode::ApiKeyNotFound,
            "no API key with this id in the workspace",
        ));
    }
    state.key_cache.forget_workspace(auth.workspace());
    audit::workspace_event(
        state,
        client,
        "api_key.revoked",
        auth,
        None,
        json!({"key_id": key_id}),
    )
    .await?;
    Ok(())
}

// --- security rules (OWASP ASVS 4.3.1) ----------------------------------------------------------

/// A workspace's security rules, and who they leave out.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Security {
    /// Whether owners and admins must use two-factor authentication to use an admin's rights.
    pub admin_mfa_required: bool,
    /// The owners and admins who do not use two-factor authentication (yet): with the rule
    /// on, each of them keeps only a member's rights here until they turn it on.
    pub admins_without_mfa: Vec<Member>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecurityInput {
    pub admin_mfa_required: bool,
}

/// The workspace's security rules.
pub async fn security(state: &AppState, auth: &impl InWorkspace) -> AppResult<Security> {
    let mut admins_without_mfa = Vec::new();
    for m in members(state, auth).await? {
        let admin = m
            .role
            .parse::<Role>()
            .is_ok_and(|r| r.at_least(Role::Admin));
        if admin && !uses_mfa(state, UserId(m.user_id)).await? {
            admins_without_mfa.push(m);
        }
    }
    Ok(Security {
        admin_mfa_required: state.store.admin_mfa_required(auth.workspace()).await?,
        admins_without_mfa,
    })
}

async fn uses_mfa(state: &AppState, user: UserId) -> AppResult<bool> {
    Ok(state
        .store
        .user(user)
        .await?
        .is_some_and(|u| u.totp_enabled && u.totp_secret_sealed.is_some()))
}

/// Turns the rule on or off, after a fresh confirmation from a person. It is turned on only by
/// someone (or an API key's creator) with two-factor authentication on, so that it never locks
/// out the one who set it. Audited.
pub async fn set_security(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    input: &SecurityInput,
) -> AppResult<Security> {
    crate::rights::require_fresh_actor(
        state,
        auth.actor(),
        "changing the workspace's security rules",
    )
    .await?;
    // The person turning it on (an API key's creator) must use it, so that the rule never
    // locks out the one who set it.
    if input.admin_mfa_required && !uses_mfa(state, auth.actor().user_id()).await? {
        return Err(AppError::new(
            ErrorCode::MfaNotEnabled,
            "field `admin_mfa_required`: turn on two-factor authentication for yourself first (account settings), then require it of the workspace's admins",
        ));
    }
    state
        .store
        .set_admin_mfa_required(auth.workspace(), input.admin_mfa_required)
        .await?;
    // Cached API keys carry their creator's effective role: read them again.
    state.key_cache.forget_workspace(auth.workspace());
    audit::workspace_event(
        state,
        client,
        "workspace.security_changed",
        auth,
        None,
        json!({"admin_mfa_required": input.admin_mfa_required}),
    )
    .await?;
    security(state, auth).await
}

/// Refuses an admin's right to a person without two-factor authentication when the workspace
/// requires it of its admins (ASVS 4.3.1). A member's rights, and API keys (their own
/// credential, minted with the password), are not asked. Called by the API's and the pages'
/// permission checks after the role allowed `permission`.
pub async fn check_admin_mfa(
    state: &AppState,
    ws: WorkspaceId,
    actor: &Actor,
    permission: Permission,
) -> AppResult<()> {
    if !permission.is_administrative() || !admin_rights_withheld(state, ws, actor).await? {
        return Ok(());
    }
    Err(admin_mfa_refusal(permission))
}

/// The refusal of an admin's right the workspace withholds until two-factor authentication.
pub fn admin_mfa_refusal(permission: Permission) -> AppError {
    AppError::new(
        ErrorCode::AdminMfaRequired,
        format!("this workspace requires two-factor authentication of its owners and admins: turn it on in your account settings (/settings) to use {permission} here"),
    )
}

/// Whether the workspace withholds an admin's rights from this actor: it requires two-factor
/// authentication of its admins and the actor is a person without it (pages show such a
/// person a member's controls and say why).
pub async fn admin_rights_withheld(
    state: &AppState,
    ws: WorkspaceId,
    actor: &Actor,
) -> AppResult<bool> {
    let Actor::User { id, .. } = actor else {
        return Ok(false);
    };
    Ok(state.store.admin_mfa_required(ws).await? && !uses_mfa(state, *id).await?)
}
