//! Workspace services every door shares: accepting an invitation (the API and the page of the
//! invitation mail's link) and deleting a workspace.

use crate::actor::ClientInfo;
use crate::audit::{self, Event};
use crate::error::{AppError, AppResult};
use crate::state::{now_millis, token_hash, AppState};
use meshwork_domain::{ErrorCode, UserId};
use meshwork_store::InviteOutcome;
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
    // The key first: once it is gone nothing of the workspace can be read anywhere, even if
    // removing the rows fails (they can then be removed by deleting again, confirmed by id).
    state.key_cache.forget_workspace(ws);
    state.keyring.destroy_workspace_key(ws.as_uuid())?;
    // The index is sealed with the destroyed key; its files go too. The overlap cache's
    // pseudonyms are keyed by a server key, not the workspace's: they are dropped here.
    state.search.forget(ws).await;
    state.pseudonyms.forget(ws);
    state.store.delete_workspace(ws).await?;
    // Again: a key look-up or an overlap run that ran meanwhile may have remembered some.
    state.key_cache.forget_workspace(ws);
    state.pseudonyms.forget(ws);
    audit::record(
        state,
        Some(client),
        Event {
            kind: "workspace.deleted",
            workspace: Some(ws),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({}),
        },
    )
    .await?;
    Ok(())
}
