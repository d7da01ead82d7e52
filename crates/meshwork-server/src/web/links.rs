//! The pages behind the links in Meshwork's mail: confirm an email address, choose a new
//! password, accept an invitation. Opening a link never changes anything (mail scanners open
//! links too); the page asks the person to confirm with a button, and the form's post does it
//! through the same services as the API.

use super::{same_origin, PageError};
use crate::auth::{csrf_matches, PageSession};
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Form;
use meshwork_app::{accounts, workspaces, AppState};
use meshwork_domain::ErrorCode;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub enum VerifyStep {
    Confirm(String),
    Done,
    Invalid,
}

#[derive(Template, WebTemplate)]
#[template(path = "links/verify_email.html")]
pub struct VerifyPage {
    step: VerifyStep,
}

pub async fn verify_email_page(Query(q): Query<TokenQuery>) -> VerifyPage {
    VerifyPage {
        step: if q.token.is_empty() {
            VerifyStep::Invalid
        } else {
            VerifyStep::Confirm(q.token)
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

pub async fn verify_email_submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<VerifyPage, PageError> {
    same_origin(&headers)?;
    let step = match accounts::verify_email(&state, &client, &form.token).await {
        Ok(_) => VerifyStep::Done,
        Err(e) if e.code == ErrorCode::InvalidToken => VerifyStep::Invalid,
        Err(e) => return Err(e.into()),
    };
    Ok(VerifyPage { step })
}

pub enum ResetStep {
    Form {
        token: String,
        /// Why the new password was refused.
        error: Option<String>,
        /// Why the code was asked for or refused (two-factor authentication is on).
        code_error: Option<String>,
    },
    Done,
    Invalid,
}

#[derive(Template, WebTemplate)]
#[template(path = "links/reset_password.html")]
pub struct ResetPage {
    step: ResetStep,
    /// The password policy's shortest length, for the form's hint and check.
    min_len: usize,
}

pub async fn reset_page(Query(q): Query<TokenQuery>) -> ResetPage {
    ResetPage {
        min_len: meshwork_domain::Password::MIN_LEN,
        step: if q.token.is_empty() {
            ResetStep::Invalid
        } else {
            ResetStep::Form {
                token: q.token,
                error: None,
                code_error: None,
            }
        },
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    /// A code, when two-factor authentication is on.
    #[serde(default)]
    code: String,
    /// The checkbox: present (`on`) when ticked.
    #[serde(default)]
    revoke_api_keys: Option<String>,
}

impl std::fmt::Debug for ResetForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetForm").finish_non_exhaustive()
    }
}

pub async fn reset_submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<ResetPage, PageError> {
    same_origin(&headers)?;
    let step = match accounts::reset_password(
        &state,
        &client,
        &form.token,
        &form.new_password,
        Some(form.code.as_str()),
        form.revoke_api_keys.is_some(),
    )
    .await
    {
        Ok(_) => ResetStep::Done,
        Err(e) if e.code == ErrorCode::InvalidToken => ResetStep::Invalid,
        // A weak password: the form again, with the reason beside the field (the token is
        // not used up).
        Err(e) if e.code.status() == 422 => ResetStep::Form {
            token: form.token,
            error: Some(
                e.message
                    .trim_start_matches("field `new_password`: ")
                    .to_string(),
            ),
            code_error: None,
        },
        // Two-factor authentication is on: the code is missing or wrong, or too many were
        // wrong (the link stays usable).
        Err(e)
            if matches!(
                e.code,
                ErrorCode::MfaRequired
                    | ErrorCode::InvalidMfaCode
                    | ErrorCode::AccountLocked
                    | ErrorCode::RateLimited
            ) =>
        {
            ResetStep::Form {
                token: form.token,
                error: None,
                code_error: Some(super::accounts::field_of(&e).1),
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ResetPage {
        step,
        min_len: meshwork_domain::Password::MIN_LEN,
    })
}

pub enum InviteStep {
    Confirm { token: String, csrf: String },
    SignIn,
    Joined(Option<String>),
    Failed(String),
}

#[derive(Template, WebTemplate)]
#[template(path = "links/invite.html")]
pub struct InvitePage {
    step: InviteStep,
}

pub async fn invite_page(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Query(q): Query<TokenQuery>,
) -> Result<InvitePage, PageError> {
    let step = match session {
        None => InviteStep::SignIn,
        Some(_) if q.token.is_empty() => {
            InviteStep::Failed("The link has no invitation in it".into())
        }
        Some(s) => InviteStep::Confirm {
            token: q.token,
            csrf: crate::auth::csrf_token(&state, &s.session_hash)?,
        },
    };
    Ok(InvitePage { step })
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn invite_submit(
    State(state): State<AppState>,
    Client(client): Client,
    PageSession(session): PageSession,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> Result<InvitePage, PageError> {
    same_origin(&headers)?;
    let Some(session) = session else {
        return Ok(InvitePage {
            step: InviteStep::SignIn,
        });
    };
    if !csrf_matches(&state, &session.session_hash, &form.csrf_token)? {
        return Err(PageError::new(
            ErrorCode::CsrfTokenInvalid,
            "the form is out of date; open the link from the mail again",
        ));
    }
    let step = match workspaces::accept_invite(&state, &client, session.id, &form.token).await {
        Ok(a) => InviteStep::Joined(a.role),
        Err(e) if e.code != ErrorCode::Internal => {
            InviteStep::Failed(super::accounts::capitalized(&e.message))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(InvitePage { step })
}

#[derive(Debug, Deserialize)]
pub struct UnsubscribeLink {
    #[serde(default)]
    a: String,
    #[serde(default)]
    t: String,
}

pub enum UnsubscribeStep {
    Confirm { a: String, t: String },
    Done,
    Invalid,
}

#[derive(Template, WebTemplate)]
#[template(path = "links/unsubscribe.html")]
pub struct UnsubscribePage {
    step: UnsubscribeStep,
}

/// The page an unsubscribe link opens: opening it changes nothing (mail scanners open links);
/// its button declines product news (pm13).
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Query(q): Query<UnsubscribeLink>,
) -> UnsubscribePage {
    let step = match meshwork_app::mail::unsubscribe_index(&state, &q.a, &q.t) {
        Some(_) => UnsubscribeStep::Confirm { a: q.a, t: q.t },
        None => UnsubscribeStep::Invalid,
    };
    UnsubscribePage { step }
}

/// Declines product news: the page's button, or a mail client's one-click `POST` (RFC 8058:
/// the link's query, a body of `List-Unsubscribe=One-Click`). The link's keyed token is the
/// authority, so no session is needed.
pub async fn unsubscribe_submit(
    State(state): State<AppState>,
    Client(client): Client,
    Query(q): Query<UnsubscribeLink>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Result<UnsubscribePage, PageError> {
    let a = form.get("a").cloned().unwrap_or(q.a);
    let t = form.get("t").cloned().unwrap_or(q.t);
    let step = match meshwork_app::preferences::unsubscribe(&state, &client, &a, &t).await {
        Ok(()) => UnsubscribeStep::Done,
        Err(e) if e.code == ErrorCode::InvalidToken => UnsubscribeStep::Invalid,
        Err(e) => return Err(e.into()),
    };
    Ok(UnsubscribePage { step })
}
