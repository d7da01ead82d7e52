//! "Confirm it is you": the form a page shows in place of a sensitive control (signing out other
//! sessions, changing roles, inviting an admin, exporting the whole workspace) while the session
//! has not proven its owner within the last 5 minutes (OWASP ASVS 3.3.4, 3.7.1, 4.3.3), and the
//! check of what that form sends. The rule itself is `meshwork_app::rights::require_fresh_actor`,
//! which the API applies too; a page only decides what to show.

use super::fields::when;
use super::PageError;
use crate::auth::SessionUser;
use meshwork_app::actor::ClientInfo;
use meshwork_app::{rights, AppError, AppState};
use meshwork_domain::ErrorCode;
use serde::Deserialize;

/// One "confirm it is you" form, as the page macro `confirm_macros.html` draws it.
#[derive(Debug)]
pub struct Confirm {
    /// Where the form posts.
    pub action: String,
    /// The page section it guards: sent back to come back to it, and part of the input's id.
    pub section: &'static str,
    /// The password input's label (unique on its page): "Your password, to change roles".
    pub label: &'static str,
    /// What it unlocks, in a sentence.
    pub why: &'static str,
    /// Why the last attempt was refused (a wrong password, a locked account).
    pub error: Option<String>,
    /// The page to come back to once confirmed (a local path), when it is not the settings.
    pub back: Option<String>,
}

impl Confirm {
    pub fn new(
        action: String,
        section: &'static str,
        label: &'static str,
        why: &'static str,
    ) -> Self {
        Self {
            action,
            section,
            label,
            why,
            error: None,
            back: None,
        }
    }
}

/// When the session's confirmation ends, as the page shows it, or `None` when it has ended.
pub async fn fresh_until(
    state: &AppState,
    session: &SessionUser,
) -> Result<Option<String>, PageError> {
    Ok(rights::fresh_until(state, &session.session_hash)
        .await?
        .map(when))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub section: String,
    /// A local path to come back to (a list page), checked like a sign-in's `next`.
    #[serde(default)]
    pub back: String,
}

impl std::fmt::Debug for ConfirmForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmForm")
            .field("section", &self.section)
            .finish_non_exhaustive()
    }
}

/// Checks the password typed into a confirmation form (counted toward the lockout like a
/// sign-in, and audited, by `rights::reauthenticate`): `Ok(Err(message))` is a refusal the page
/// shows beside the field.
pub async fn confirm(
    state: &AppState,
    client: &ClientInfo,
    session: &SessionUser,
    password: String,
) -> Result<Result<(), String>, PageError> {
    match rights::reauthenticate(
        state,
        client,
        session.id,
        &session.session_hash,
        Some(password),
        None,
    )
    .await
    {
        Ok(()) => Ok(Ok(())),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => Ok(Err(super::accounts::field_of(&e).1)),
    }
}

/// A service's refusal as a page shows it: a confirmation that lapsed is told in the page's
/// words (the form is on the page), anything else as the service said it.
pub fn refusal(e: AppError) -> Result<String, PageError> {
    match e.code {
        ErrorCode::Internal => Err(e.into()),
        ErrorCode::ReauthenticationRequired => Ok(
            "Confirm it is you first: type your password in this section's “Confirm it is you” form, then try again within 5 minutes."
                .into(),
        ),
        _ => Ok(super::accounts::field_of(&e).1),
    }
}
