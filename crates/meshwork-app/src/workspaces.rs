//! Workspace services every door shares: accepting an invitation (the API and the page of the
//! invitation mail's link).

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
