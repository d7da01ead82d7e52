//! Mail preferences (pm13): a person may decline product news; account, security and legal
//! mail always arrive. Set in settings, or by the one-click unsubscribe link every optional
//! mail carries (RFC 8058), which needs no sign-in.

use crate::actor::ClientInfo;
use crate::audit;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use meshwork_domain::{ErrorCode, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MailPreferences {
    /// Product news and announcements. Mail about your account, its security, legal notices
    /// and retention warnings is always sent.
    pub product_news: bool,
}

pub async fn get(state: &AppState, user: UserId) -> AppResult<MailPreferences> {
    Ok(MailPreferences {
        product_news: !state.store.marketing_opt_out(user).await?,
    })
}

/// Saves the preferences. Audited.
pub async fn set(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    prefs: &MailPreferences,
) -> AppResult<MailPreferences> {
    state
        .store
        .set_marketing_opt_out(user, !prefs.product_news)
        .await?;
    audit::account_event(
        state,
        client,
        "mail_preferences.changed",
        user,
        json!({"product_news": prefs.product_news}),
    )
    .await?;
    get(state, user).await
}

/// Declines product news for the account an unsubscribe link names (`a`, `t` of the link).
/// Idempotent. Audited.
pub async fn unsubscribe(state: &AppState, client: &ClientInfo, a: &str, t: &str) -> AppResult<()> {
    let invalid = || {
        AppError::new(
            ErrorCode::InvalidToken,
            "this unsubscribe link is not valid (the address it was sent to may have changed): sign in and change your mail preferences in settings",
        )
    };
    let index = crate::mail::unsubscribe_index(state, a, t).ok_or_else(invalid)?;
    let user = state
        .store
        .user_by_email_index(&index)
        .await?
        .ok_or_else(invalid)?;
    state.store.set_marketing_opt_out(user.id, true).await?;
    audit::account_event(
        state,
        client,
        "mail_preferences.changed",
        user.id,
        json!({"product_news": false, "by": "unsubscribe link"}),
    )
    .await
}
