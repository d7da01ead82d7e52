//! The account pages: sign in (with the two-factor step), create an account, forgot password,
//! sign out; and the first signed-in pages, the list of one's workspaces (with the form to
//! create one) and a workspace's overview. Each calls the same `meshwork-app` services as the
//! API, so a page can do nothing the API refuses; errors are shown beside the field they name,
//! with what was typed kept (never the password).

use super::extract::{same_origin, CsrfOnly, InWorkspace, Posted, SignedIn};
use super::{Chrome, PageError, Section};
use crate::auth::{perm, PageSession};
use crate::client::Client;
use crate::http::accounts::session_cookie;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use meshwork_app::{accounts, workspaces, AppError, AppState};
use meshwork_crm::Kind;
use meshwork_domain::{EmailAddress, ErrorCode};
use serde::Deserialize;

/// A local path to go on to after signing in: only this server's own pages. Browsers drop tabs
/// and line breaks from a URL and read a backslash as a slash, so `/<TAB>/evil.example` would
/// become `//evil.example`, another site (security finding 18): any control character or
/// backslash, or a second slash at the start, sends the person home instead.
pub(super) fn local_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.chars().any(|c| c == '\\' || c.is_control());
    if local {
        next
    } else {
        "/"
    }
}

/// Splits a service error into the form field it names (`field `x`: …`) and its message.
pub(super) fn field_of(e: &AppError) -> (Option<&str>, String) {
    if let Some(rest) = e.message.strip_prefix("field `") {
        if let Some((field, msg)) = rest.split_once("`: ") {
            return (Some(field), capitalized(msg));
        }
    }
    (None, capitalized(&e.message))
}

pub(super) fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

// --- sign in ----------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "accounts/sign_in.html")]
pub struct SignInPage {
    email: String,
    next: String,
    mfa: bool,
    error: Option<String>,
    /// The challenge for the account's security keys, once the password was right.
    key: Option<KeyPrompt>,
}

/// A WebAuthn challenge as a page hands it to the browser (`app.js` runs it).
pub struct KeyPrompt {
    pub ceremony: String,
    /// The options, as JSON, for the element's `data-options` (escaped like any attribute).
    pub options: String,
}

impl From<meshwork_app::security_keys::Challenge> for KeyPrompt {
    fn from(c: meshwork_app::security_keys::Challenge) -> Self {
        Self {
            ceremony: c.ceremony,
            options: c.options.to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

pub async fn sign_in_page(
    PageSession(session): PageSession,
    Query(q): Query<NextQuery>,
) -> Response {
    if session.is_some() {
        return Redirect::to(local_next(&q.next)).into_response();
    }
    SignInPage {
        email: String::new(),
        next: q.next,
        mfa: false,
        error: None,
        key: None,
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp_code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInForm").finish_non_exhaustive()
    }
}

pub async fn sign_in_submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
    let (totp, recovery) = (given(&form.totp_code), given(&form.recovery_code));
    let result = accounts::sign_in(
        &state,
        &client,
        accounts::SignIn {
            email: &form.email,
            password: form.password.clone(),
            totp_code: totp.as_deref(),
            recovery_code: recovery.as_deref(),
            offer_security_key: true,
        },
    )
    .await;
    let again = |mfa: bool, error: Option<String>| {
        let mut page = SignInPage {
            email: form.email.clone(),
            next: form.next.clone(),
            mfa,
            error,
            key: None,
        }
        .into_response();
        // A form shown again with an error says so in its status too.
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        page
    };
    match result {
        Ok(accounts::SignInStep::Done(user)) => signed_in(&state, &client, user, &form.next).await,
        Ok(accounts::SignInStep::SecurityKey(challenge)) => Ok(SignInPage {
            email: form.email.clone(),
            next: form.next.clone(),
            mfa: true,
            error: None,
            key: Some(challenge.into()),
        }
        .into_response()),
        Err(e) if e.code == ErrorCode::MfaRequired => Ok(again(true, None)),
        Err(e) if e.code == ErrorCode::InvalidMfaCode => Ok(again(
            true,
            Some("The code is wrong or already used; enter your password and a fresh code".into()),
        )),
        Err(e)
            if matches!(
                e.code,
                ErrorCode::InvalidCredentials | ErrorCode::RateLimited
            ) =>
        {
            Ok(again(false, Some(capitalized(&e.message))))
        }
        Err(e) => Err(e.into()),
    }
}

/// Starts the session of a person who just signed in, and goes where they were going.
async fn signed_in(
    state: &AppState,
    client: &meshwork_app::audit::ClientInfo,
    user: meshwork_domain::UserId,
    next: &str,
) -> Result<Response, PageError> {
    let session = accounts::start_session(state, client, user).await?;
    let mut resp = Redirect::to(local_next(next)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.token, session.max_age_secs),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct KeySignInForm {
    #[serde(default)]
    ceremony: String,
    /// The key's answer, as JSON (`app.js` fills it in).
    #[serde(default)]
    credential: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for KeySignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySignInForm").finish_non_exhaustive()
    }
}

/// The second step of a sign-in with a security key: the key's answer to the challenge the
/// sign-in page showed.
pub async fn sign_in_security_key(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<KeySignInForm>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let credential = serde_json::from_str(&form.credential).unwrap_or(serde_json::Value::Null);
    match accounts::sign_in_with_security_key(&state, &client, &form.ceremony, &credential).await {
        Ok(user) => signed_in(&state, &client, user, &form.next).await,
        Err(e)
            if matches!(
                e.code,
                ErrorCode::InvalidMfaCode | ErrorCode::InvalidToken | ErrorCode::AccountLocked
            ) =>
        {
            let mut page = SignInPage {
                email: String::new(),
                next: form.next,
                mfa: false,
                error: Some(match e.code {
                    ErrorCode::AccountLocked => capitalized(&e.message),
                    ErrorCode::InvalidToken => {
                        "The security key took too long to answer; sign in again".into()
                    }
                    _ => "Your security key's answer did not check out; sign in again".into(),
                }),
                key: None,
            }
            .into_response();
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
        Err(e) => Err(e.into()),
    }
}

// --- create an account ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    job_title: String,
    /// The checkbox: present (`on`) when ticked.
    #[serde(default)]
    confirm_age_16_or_over: Option<String>,
}

#[derive(Debug, Default)]
pub struct SignUpErrors {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    company: Option<String>,
    job_title: Option<String>,
    age: Option<String>,
    other: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/sign_up.html")]
pub struct SignUpPage {
    form: SignUpForm,
    errors: SignUpErrors,
    min_len: usize,
    /// The operator's privacy notice, when configured.
    privacy_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/check_inbox.html")]
pub struct CheckInboxPage {
    email: String,
}

pub async fn sign_up_page(State(state): State<AppState>) -> SignUpPage {
    SignUpPage {
        form: SignUpForm::default(),
        errors: SignUpErrors::default(),
        min_len: meshwork_domain::Password::MIN_LEN,
        privacy_url: state.config.privacy_url.clone(),
    }
}

pub async fn sign_up_submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(mut form): Form<SignUpForm>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let result = accounts::signup(
        &state,
        &client,
        accounts::Signup {
            name: &form.name,
            email: &form.email,
            password: &form.password,
            company: &form.company,
            job_title: &form.job_title,
            confirm_age_16_or_over: form.confirm_age_16_or_over.is_some(),
        },
    )
    .await;
    form.password.clear();
    match result {
        Ok(()) => Ok(CheckInboxPage {
            email: form.email.trim().to_string(),
        }
        .into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let mut errors = SignUpErrors::default();
            let (field, message) = field_of(&e);
            match field {
                Some("name") => errors.name = Some(message),
                Some("email") => errors.email = Some(message),
                Some("password") => errors.password = Some(message),
                Some("company") => errors.company = Some(message),
                Some("job_title") => errors.job_title = Some(message),
                Some("confirm_age_16_or_over") => errors.age = Some(message),
                _ => errors.other = Some(message),
            }
            let mut page = SignUpPage {
                form,
                errors,
                min_len: meshwork_domain::Password::MIN_LEN,
                privacy_url: state.config.privacy_url.clone(),
            }
            .into_response();
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
    }
}

// --- forgot password --------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "accounts/forgot_password.html")]
pub struct ForgotPage {
    email: String,
    sent: bool,
    error: Option<String>,
}

pub async fn forgot_page() -> ForgotPage {
    ForgotPage {
        email: String::new(),
        sent: false,
        error: None,
    }
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub async fn forgot_submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<ForgotForm>,
) -> Result<ForgotPage, PageError> {
    same_origin(&headers)?;
    let again = |error: String| ForgotPage {
        email: form.email.clone(),
        sent: false,
        error: Some(error),
    };
    let email = match EmailAddress::parse("email", &form.email) {
        Ok(e) => e,
        Err(e) => return Ok(again(field_of(&e.into()).1)),
    };
    match accounts::request_password_reset(&state, &client, &email).await {
        Ok(()) => Ok(ForgotPage {
            email: String::new(),
            sent: true,
            error: None,
        }),
        Err(e) if e.code == ErrorCode::RateLimited => Ok(again(capitalized(&e.message))),
        Err(e) => Err(e.into()),
    }
}

// --- sign out -----------------------------------------------------------------------------------

pub async fn sign_out(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), CsrfOnly {}): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    accounts::sign_out(&state, &client, session.id, &session.session_hash).await?;
    let mut resp = Redirect::to("/sign-in").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(resp)
}

// --- signed in: workspaces ------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "accounts/home.html")]
pub struct HomePage {
    chrome: Chrome,
    workspaces: Vec<workspaces::Workspace>,
    name: String,
    error: Option<String>,
}

pub async fn home(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
) -> Result<Response, PageError> {
    Ok(HomePage {
        chrome: Chrome::account(&state, &session)?,
        workspaces: workspaces::list(&state, session.id).await?,
        name: String::new(),
        error: None,
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct NewWorkspaceForm {
    #[serde(default)]
    name: String,
}

pub async fn create_workspace(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<NewWorkspaceForm>,
) -> Result<Response, PageError> {
    let input = workspaces::WorkspaceInput {
        name: form.name.clone(),
    };
    match workspaces::create(&state, &client, session.id, &input).await {
        Ok(w) => Ok(Redirect::to(&format!("/w/{}", w.id)).into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let mut page = HomePage {
                chrome: Chrome::account(&state, &session)?,
                workspaces: workspaces::list(&state, session.id).await?,
                name: form.name,
                error: Some(field_of(&e).1),
            }
            .into_response();
            *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/workspace.html")]
pub struct WorkspacePage {
    chrome: Chrome,
    workspace: workspaces::Workspace,
    counts: Vec<(&'static str, &'static str, u64)>,
}

pub async fn workspace(
    State(state): State<AppState>,
    page: InWorkspace<perm::WorkspaceRead>,
) -> Result<Response, PageError> {
    let ws = page.ws();
    let mut counts = Vec::new();
    for kind in [Kind::Contact, Kind::Company, Kind::Deal, Kind::Note] {
        let label = match kind {
            Kind::Contact => "Contacts",
            Kind::Company => "Companies",
            Kind::Deal => "Deals",
            _ => "Notes",
        };
        counts.push((
            label,
            kind.plural(),
            state
                .search
                .crm_count(&state, ws, page.member.role, kind.as_str())
                .await?,
        ));
    }
    let chrome = Chrome::workspace(&state, &page, Section::Overview).await?;
    Ok(WorkspacePage {
        chrome,
        workspace: workspaces::get(&state, &page.member).await?,
        counts,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::local_next;

    /// Finding 18: `next` after signing in went to another site when it held a tab or a line
    /// break (`/%09/evil.example`), which browsers remove before reading the URL.
    #[test]
    fn finding_18_the_page_after_sign_in_is_always_on_this_server() {
        for ok in [
            "/",
            "/w/0190a1b2/contacts?sort=name",
            "/w/0190a1b2/contacts?q=ada lovelace",
            "/settings#security",
            "/a/b//c",
        ] {
            assert_eq!(local_next(ok), ok);
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "https://evil.example",
            "evil.example",
            "",
            "/\u{0}/x",
            "/\u{7f}/x",
        ] {
            assert_eq!(local_next(bad), "/", "{bad:?}");
        }
    }
}
