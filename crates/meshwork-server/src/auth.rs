//! Authentication and authorisation, as extractors, so no route can forget them:
//!
//! - [`Caller`]: who is calling, from the session cookie or an `Authorization: Bearer` API key.
//!   Cookie-authenticated requests that change state must carry `X-CSRF-Token`.
//! - [`SessionUser`]: a signed-in person (account routes; API keys are refused).
//! - [`Authorized<P>`]: a caller allowed permission `P` in the workspace named by the path's
//!   `{workspace_id}`. Non-members get `404 workspace_not_found`; members without `P` get
//!   `403 permission_denied`. The permission is part of the handler's signature.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, Method};
use hmac::{Hmac, Mac};
use meshwork_app::accounts;
use meshwork_app::state::{now_millis, token_hash, AppState};
use meshwork_domain::{ErrorCode, Permission, Role, UserId, WorkspaceId};
use sha2::Sha256;
use std::marker::PhantomData;

/// The `__Host-` prefix makes browsers accept the cookie only when it is `Secure`, has `Path=/`
/// and no `Domain`, so a sibling subdomain cannot plant or shadow it (security finding 11).
pub const SESSION_COOKIE: &str = "__Host-mw_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub use meshwork_app::actor::Actor;

/// An authenticated caller (session or API key).
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

/// The CSRF token of a session: an HMAC of the session's token hash, so it needs no storage and
/// cannot be computed without the server's key.
pub fn csrf_token(state: &AppState, session_hash: &[u8; 32]) -> Result<String, ApiError> {
    let key = state.account_key()?.derive("csrf");
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.dangerously_expose()).expect("any key length");
    mac.update(session_hash);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Whether `given` is the CSRF token of the session whose token hash is `session_hash` (compared
/// in constant time). Pages carry it in a form field rather than a header.
pub fn csrf_matches(
    state: &AppState,
    session_hash: &[u8; 32],
    given: &str,
) -> Result<bool, ApiError> {
    let expected = csrf_token(state, session_hash)?;
    Ok(bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        expected.as_bytes(),
    )))
}

/// On pages: the signed-in person, if the session cookie names a live session, else `None`.
/// It checks no CSRF header: a page's form carries the token in a field, and the handler checks
/// it with [`csrf_matches`].
#[derive(Debug, Clone)]
pub struct PageSession(pub Option<SessionUser>);

impl FromRequestParts<AppState> for PageSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Some(token)) = session_cookie(parts) else {
            return Ok(Self(None));
        };
        let hash = token_hash(token);
        Ok(Self(accounts::live_session(state, &hash).await?.map(|s| {
            SessionUser {
                id: s.user_id,
                session_hash: hash,
            }
        })))
    }
}

/// The session cookie's value, if there is one; two of them are refused (security finding 11):
/// which one the browser meant cannot be told, and one may have been planted.
fn session_cookie(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let mut found = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v);
    let first = found.next();
    if found.next().is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidSession,
            "the request carries two session cookies; clear this site's cookies and sign in again",
        ));
    }
    Ok(first)
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Actor, ApiError> {
    let now = now_millis();
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let Some(key) = value.strip_prefix("Bearer ") else {
            return Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the Authorization header must be `Bearer <api key>`",
            ));
        };
        let hash = token_hash(key.trim());
        let (row, creator_role) = match state.key_cache.get(&hash) {
            Some(hit) => hit,
            None => {
                let generation = state.key_cache.generation();
                let mut found = state.store.api_key_by_hash(&hash).await?.ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid")
                })?;
                // A key made by an owner or admin whom the workspace's two-factor rule holds
                // to a member's rights acts as a member too (ASVS 4.3.1), until its creator
                // turns two-factor authentication on (within the cache's window).
                let (row, creator_role) = (&found.0, found.1);
                if creator_role.is_some_and(|r| r.at_least(Role::Admin))
                    && row.role.at_least(Role::Admin)
                    && meshwork_app::workspaces::admin_rights_withheld(
                        state,
                        row.workspace_id,
                        &Actor::User {
                            id: row.created_by,
                            session_hash: [0; 32],
                        },
                    )
                    .await?
                {
                    found.1 = Some(Role::Member);
                }
                state
                    .key_cache
                    .put(generation, hash, found.0.clone(), found.1);
                found
            }
        };
        if row.revoked_at.is_some() {
            return Err(ApiError::new(
                ErrorCode::ApiKeyRevoked,
                "the API key was revoked",
            ));
        }
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::new(
                ErrorCode::ApiKeyExpired,
                "the API key has expired",
            ));
        }
        // A key never outlives or outranks its creator's membership.
        let role = creator_role.map(|c| {
            if c.rank() < row.role.rank() {
                c
            } else {
                row.role
            }
        });
        meshwork_app::workspaces::note_key_use(
            state,
            &row,
            crate::client::address(&parts.extensions, &parts.headers, state),
        )
        .await;
        return Ok(Actor::ApiKey {
            id: row.id,
            workspace: row.workspace_id,
            role,
            created_by: row.created_by,
        });
    }
    if let Some(token) = session_cookie(parts)? {
        let hash = token_hash(token);
        let session = accounts::live_session(state, &hash).await?;
        return match session {
            Some(s) => {
                let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
                if !safe {
                    let expected = csrf_token(state, &hash)?;
                    let given = parts
                        .headers
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(
                        given.as_bytes(),
                        expected.as_bytes(),
                    )) {
                        return Err(ApiError::new(
                            ErrorCode::CsrfTokenInvalid,
                            "missing or wrong X-CSRF-Token header (it is returned by sign-in and GET /api/v1/me)",
                        ));
                    }
                }
                Ok(Actor::User {
                    id: s.user_id,
                    session_hash: hash,
                })
            }
            _ => Err(ApiError::new(
                ErrorCode::InvalidSession,
                "the session has expired or was signed out; sign in again",
            )),
        };
    }
    Err(ApiError::new(
        ErrorCode::MissingAuthentication,
        "sign in, or send `Authorization: Bearer <api key>`",
    ))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let caller = Caller(authenticate(parts, state).await?);
        // Each request counts once against its caller's allowance (ASVS 8.1.4).
        if state
            .caller_limiter
            .check_key(&caller.0.limit_key())
            .is_err()
        {
            let who = match caller.0 {
                Actor::User { .. } => "person",
                Actor::ApiKey { .. } => "API key",
            };
            tracing::warn!(caller = %caller.0.describe(), "API requests over the allowance");
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many requests from this {who}: at most {} a minute (auth.api_requests_per_minute); wait and retry",
                    state.config.auth.api_requests_per_minute
                ),
            ));
        }
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A signed-in person; API keys are refused.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub id: UserId,
    pub session_hash: [u8; 32],
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Actor::User { id, session_hash } => Ok(Self { id, session_hash }),
            Actor::ApiKey { .. } => Err(ApiError::new(
                ErrorCode::MissingAuthentication,
                "this route acts on a person's own account and needs a signed-in session; API keys cannot use it",
            )),
        }
    }
}

/// A permission a route requires, as a type (see `perm`).
pub trait RequiredPermission: Send + Sync + 'static {
    const PERMISSION: Permission;
}

/// Marker types, one per permission: `Authorized<perm::MembersManage>`.
pub mod perm {
    use super::RequiredPermission;
    use meshwork_domain::Permission;

    macro_rules! marker {
        ($($name:ident),*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl RequiredPermission for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }
    marker!(
        WorkspaceRead,
        WorkspaceRename,
        WorkspaceDelete,
        MembersRead,
        MembersInvite,
        MembersManage,
        ApiKeysRead,
        ApiKeysManage,
        AuditRead,
        ChangesRead,
        CrmRead,
        CrmWrite,
        CrmBulk,
        CrmSchema,
        CrmImport,
        CrmExport,
        SearchRead,
        SourcesWrite,
        PartnersRead,
        PartnersManage,
        JobsRead,
        SupportManage,
        ProcessingManage,
        SecurityManage
    );
}

/// A caller holding permission `P` in the path's workspace.
#[derive(Debug)]
pub struct Authorized<P> {
    pub workspace: WorkspaceId,
    pub actor: Actor,
    /// The caller's effective role (an API key's role, capped by its creator's current role).
    pub role: Role,
    _permission: PhantomData<P>,
}

impl<P: RequiredPermission> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(actor) = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::internal("workspace route without path parameters"))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "workspace_id")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| ApiError::internal("workspace route without {workspace_id}"))?;
        let workspace: WorkspaceId = raw.parse().map_err(|_| ApiError::not_found_workspace())?;
        let role = match &actor {
            Actor::User { id, .. } => state.store.role_of(workspace, *id).await?,
            Actor::ApiKey {
                workspace: key_ws,
                role,
                ..
            } => role.filter(|_| *key_ws == workspace),
        };
        let Some(role) = role else {
            tracing::warn!(caller = %actor.describe(), %workspace, "access refused: not a member of the workspace");
            return Err(ApiError::not_found_workspace());
        };
        if !role.allows(P::PERMISSION) {
            tracing::warn!(caller = %actor.describe(), %workspace, %role, permission = %P::PERMISSION, "access refused: the role does not allow it");
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "your role ({role}) does not allow {} in this workspace",
                    P::PERMISSION
                ),
            ));
        }
        if let Err(e) =
            meshwork_app::workspaces::check_admin_mfa(state, workspace, &actor, P::PERMISSION).await
        {
            tracing::warn!(caller = %actor.describe(), %workspace, permission = %P::PERMISSION, code = e.code.as_str(), "access refused");
            return Err(e.into());
        }
        Ok(Self {
            workspace,
            actor,
            role,
            _permission: PhantomData,
        })
    }
}

impl<P> meshwork_app::actor::InWorkspace for Authorized<P> {
    fn workspace(&self) -> WorkspaceId {
        self.workspace
    }
    fn actor(&self) -> &Actor {
        &self.actor
    }
    fn role(&self) -> Role {
        self.role
    }
}
