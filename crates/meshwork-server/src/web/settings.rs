//! The settings page: one's account, the password, two-factor authentication (set up with a
//! key and a confirming code, recovery codes shown once; turned off with the password and a
//! code) and where one is signed in (end a session, or every other). Every change goes through
//! the same `meshwork-app` services as the API, with the password asked again where the API asks
//! it, and each form post checks its origin and the session's CSRF token.

use super::accounts::KeyPrompt;
use super::accounts::{capitalized, field_of};
use super::extract::{CsrfOnly, Posted, SignedIn};
use super::fields::{iso, when};
use super::step_up::{self, Confirm, ConfirmForm};
use super::{Chrome, PageError};
use crate::auth::SessionUser;
use crate::client::Client;
use crate::http::accounts::session_cookie;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::{accounts, security_keys, AppState};
use meshwork_domain::ErrorCode;
use serde::Deserialize;

/// A session as the page lists it.
pub struct SessionLine {
    id: String,
    current: bool,
    device: String,
    place: String,
    started: String,
    started_iso: String,
    last_used: String,
    last_used_iso: String,
}

/// A two-factor set-up in progress: the key to type in and its `otpauth://` link.
pub struct Setup {
    secret: String,
    url: String,
    /// The `otpauth://` link as a QR code (an SVG drawn here, so no image leaves the server).
    qr_svg: String,
}

impl Setup {
    fn new(secret: String, url: String) -> Self {
        use qrcode::render::svg;
        let qr_svg = qrcode::QrCode::new(url.as_bytes())
            .map(|code| {
                code.render::<svg::Color>()
                    .min_dimensions(192, 192)
                    .dark_color(svg::Color("#000000"))
                    .light_color(svg::Color("#ffffff"))
                    .build()
            })
            .unwrap_or_default();
        Self {
            secret,
            url,
            qr_svg,
        }
    }
}

#[derive(Debug, Default)]
pub struct SettingsErrors {
    current_password: Option<String>,
    new_password: Option<String>,
    mfa: Option<String>,
    /// The new-recovery-codes form's error.
    mfa_codes: Option<String>,
    /// The profile form's refused field and why.
    profile: Option<(String, String)>,
    picture: Option<String>,
    /// The data export form's refusal (a wrong password).
    export: Option<String>,
    /// The account deletion form's refusal and the field it names (`password` or `confirm`).
    delete: Option<(String, String)>,
    /// The security keys section's refusal.
    keys: Option<String>,
}

/// A security key as the page lists it.
pub struct KeyLine {
    id: uuid::Uuid,
    name: String,
    added: String,
    last_used: Option<String>,
}

/// One input of the profile form.
#[derive(Debug)]
pub struct ProfileInput {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub kind: &'static str,
    pub auto: &'static str,
    pub required: bool,
    pub error: Option<String>,
}

const PROFILE_FIELDS: [&str; 5] = ["name", "email", "company", "job_title", "current_password"];

impl SettingsPage {
    /// The profile form's inputs, filled, with the refused one's message.
    pub fn profile_inputs(&self) -> Vec<ProfileInput> {
        let f = &self.form;
        let error = |name: &str| {
            self.errors
                .profile
                .as_ref()
                .filter(|(field, _)| field == name)
                .map(|(_, m)| m.clone())
        };
        [
            ("name", "Your name", f.name.as_str(), "text", "name", true),
            ("email", "Email", f.email.as_str(), "email", "email", true),
            (
                "company",
                "Company",
                f.company.as_str(),
                "text",
                "organization",
                false,
            ),
            (
                "job_title",
                "Job title",
                f.job_title.as_str(),
                "text",
                "organization-title",
                false,
            ),
            (
                "current_password",
                "Your password",
                "",
                "password",
                "current-password",
                false,
            ),
        ]
        .into_iter()
        .map(|(name, label, value, kind, auto, required)| ProfileInput {
            name,
            label,
            value: value.to_string(),
            kind,
            auto,
            required,
            error: error(name),
        })
        .collect()
    }

    /// A refusal of the profile form that names none of its inputs.
    pub fn other_profile_error(&self) -> Option<String> {
        self.errors
            .profile
            .as_ref()
            .filter(|(field, _)| !PROFILE_FIELDS.contains(&field.as_str()))
            .map(|(_, m)| m.clone())
    }
}

/// What the profile form shows: what is saved, or what was typed when it was refused.
#[derive(Debug, Default)]
pub struct ProfileForm {
    name: String,
    email: String,
    company: String,
    job_title: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/settings.html")]
pub struct SettingsPage {
    chrome: Chrome,
    profile: accounts::Profile,
    sessions: Vec<SessionLine>,
    setup: Option<Setup>,
    recovery_codes: Option<Vec<String>>,
    errors: SettingsErrors,
    notice: Option<&'static str>,
    min_len: usize,
    form: ProfileForm,
    picture_max_mib: usize,
    /// Whether product news is wanted (pm13).
    product_news: bool,
    /// Until when this session may sign out others without a password (ASVS 3.3.4).
    fresh: Option<String>,
    /// The "confirm it is you" form shown instead of the sign-out buttons after that.
    confirm_sessions: Confirm,
    /// The account's security keys.
    keys: Vec<KeyLine>,
    /// Whether this server can use security keys (`public_url` names it by a domain name).
    keys_available: bool,
    /// A key being added: the challenge the browser runs.
    key_prompt: Option<KeyPrompt>,
    /// The name typed for a new key, kept when the page comes back with an error.
    key_name: String,
    /// The "confirm it is you" form of the security keys section.
    confirm_keys: Confirm,
}

/// What a user agent says, shortened to what a person recognises.
fn device(user_agent: &str) -> String {
    let ua = user_agent.trim();
    if ua.is_empty() {
        return "An unnamed program".into();
    }
    let browser = ["Firefox", "Edg", "Chrome", "Safari", "curl"]
        .into_iter()
        .find(|b| ua.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let system = ["Android", "iPhone", "iPad", "Windows", "Mac OS X", "Linux"]
        .into_iter()
        .find(|s| ua.contains(s))
        .map(|s| if s == "Mac OS X" { "macOS" } else { s });
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

async fn page(
    state: &AppState,
    session: &SessionUser,
    fill: impl FnOnce(&mut SettingsPage),
) -> Result<SettingsPage, PageError> {
    let profile = accounts::profile(state, session.id).await?;
    let sessions = accounts::sessions(state, session.id, &session.session_hash)
        .await?
        .into_iter()
        .map(|s| SessionLine {
            device: device(&s.user_agent),
            place: s.ip.unwrap_or_else(|| "an unknown address".into()),
            started: when(s.created_at),
            started_iso: iso(s.created_at),
            last_used: when(s.last_seen_at),
            last_used_iso: iso(s.last_seen_at),
            current: s.current,
            id: s.id,
        })
        .collect();
    let form = ProfileForm {
        name: profile.name.clone(),
        email: profile.email.clone(),
        company: profile.company.clone(),
        job_title: profile.job_title.clone(),
    };
    let mut p = SettingsPage {
        chrome: Chrome::account(state, session)?,
        form,
        picture_max_mib: meshwork_domain::MAX_PICTURE_BYTES / 1024 / 1024,
        profile,
        sessions,
        setup: None,
        recovery_codes: None,
        errors: SettingsErrors::default(),
        notice: None,
        min_len: meshwork_domain::Password::MIN_LEN,
        product_news: meshwork_app::preferences::get(state, session.id)
            .await?
            .product_news,
        fresh: step_up::fresh_until(state, session).await?,
        confirm_sessions: Confirm::new(
            "/settings/confirm".into(),
            "sessions",
            "Your password, to sign out other devices",
            "Signing out your other devices needs your password again. It then holds for 5 minutes.",
        ),
        keys: security_keys::list(state, session.id)
            .await?
            .into_iter()
            .map(|k| KeyLine {
                id: k.id,
                name: k.name,
                added: when(k.created_at),
                last_used: k.last_used_at.map(when),
            })
            .collect(),
        keys_available: security_keys::available(state),
        key_prompt: None,
        key_name: String::new(),
        confirm_keys: Confirm::new(
            "/settings/confirm".into(),
            "keys",
            "Your password, to add or remove security keys",
            "Adding or removing a security key needs your password again. It then holds for 5 minutes.",
        ),
    };
    fill(&mut p);
    Ok(p)
}

/// The page again with an error on it (422).
fn refused(p: SettingsPage) -> Response {
    let mut r = p.into_response();
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

pub async fn settings(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let notice = match q.done.as_str() {
        "password" => Some("Your password is changed; every other device is signed out."),
        "mfa-off" => Some("Two-factor authentication is off."),
        "sessions" => Some("Every other device is signed out."),
        "session" => Some("That device is signed out."),
        "confirmed" => Some("Thank you: for 5 minutes you can sign out your other devices."),
        "confirmed-keys" => Some("Thank you: for 5 minutes you can add and remove security keys."),
        "key-added" => Some("Your security key is added: you can sign in with it."),
        "key-removed" => Some("The security key is removed."),
        "profile" => Some("Your profile is saved."),
        "email" => Some("Your profile is saved. To move your account to the new email address, open the link we sent there."),
        "picture" => Some("Your picture is saved."),
        "picture-removed" => Some("Your picture is removed."),
        "mail" => Some("Your mail preferences are saved."),
        _ => None,
    };
    Ok(page(&state, &session, |p| p.notice = notice)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

pub async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<PasswordForm>,
) -> Result<Response, PageError> {
    match accounts::change_password(
        &state,
        &client,
        session.id,
        form.current_password.clone(),
        &form.new_password,
    )
    .await
    {
        Ok(()) => {
            // Every session ended with the old password: this device gets a new one.
            let fresh = accounts::start_session(&state, &client, session.id).await?;
            let mut r = Redirect::to("/settings?done=password").into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&fresh.token, fresh.max_age_secs),
            );
            Ok(r)
        }
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let (field, message) = field_of(&e);
            Ok(refused(
                page(&state, &session, |p| match field {
                    Some("new_password") => p.errors.new_password = Some(message),
                    _ => p.errors.current_password = Some(message),
                })
                .await?,
            ))
        }
    }
}

pub async fn mfa_setup(
    State(state): State<AppState>,
    Posted(SignedIn(session), CsrfOnly {}): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    let (secret, url) = accounts::totp_setup(&state, session.id).await?;
    Ok(page(&state, &session, |p| {
        p.setup = Some(Setup::new(secret, url))
    })
    .await?
    .into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeForm").finish_non_exhaustive()
    }
}

pub async fn mfa_confirm(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<CodeForm>,
) -> Result<Response, PageError> {
    match accounts::totp_confirm(
        &state,
        &client,
        session.id,
        form.code.trim(),
        form.password.clone(),
    )
    .await
    {
        Ok(codes) => Ok(page(&state, &session, |p| p.recovery_codes = Some(codes))
            .await?
            .into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            // The key set up stays: show it again beside the reason.
            let (secret, url) = accounts::totp_pending(&state, session.id).await?;
            let message = field_of(&e).1;
            Ok(refused(
                page(&state, &session, |p| {
                    p.setup = secret.map(|secret| Setup::new(secret, url.unwrap_or_default()));
                    p.errors.mfa = Some(message);
                })
                .await?,
            ))
        }
    }
}

/// New recovery codes (ASVS 2.5.7), shown once, with the password and a code or a recovery code.
pub async fn mfa_recovery_codes(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<CodeForm>,
) -> Result<Response, PageError> {
    match accounts::replace_recovery_codes(
        &state,
        &client,
        session.id,
        form.code.trim(),
        form.password.clone(),
    )
    .await
    {
        Ok(codes) => Ok(page(&state, &session, |p| p.recovery_codes = Some(codes))
            .await?
            .into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let message = capitalized(&field_of(&e).1);
            Ok(refused(
                page(&state, &session, |p| p.errors.mfa_codes = Some(message)).await?,
            ))
        }
    }
}

pub async fn mfa_disable(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<CodeForm>,
) -> Result<Response, PageError> {
    match accounts::totp_disable(
        &state,
        &client,
        session.id,
        form.code.trim(),
        form.password.clone(),
    )
    .await
    {
        Ok(()) => Ok(Redirect::to("/settings?done=mfa-off").into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let message = capitalized(&field_of(&e).1);
            Ok(refused(
                page(&state, &session, |p| p.errors.mfa = Some(message)).await?,
            ))
        }
    }
}

/// Proves the person at the keyboard again (the sessions section's form), so that for 5
/// minutes they may sign out their other devices.
pub async fn confirm(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<ConfirmForm>,
) -> Result<Response, PageError> {
    let keys = form.section == "keys";
    match step_up::confirm(&state, &client, &session, form.password).await? {
        Ok(()) if keys => {
            Ok(Redirect::to("/settings?done=confirmed-keys#keys-heading").into_response())
        }
        Ok(()) => Ok(Redirect::to("/settings?done=confirmed#sessions-heading").into_response()),
        Err(message) => Ok(refused(
            page(&state, &session, |p| {
                if keys {
                    p.confirm_keys.error = Some(message)
                } else {
                    p.confirm_sessions.error = Some(message)
                }
            })
            .await?,
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct KeyNameForm {
    #[serde(default)]
    name: String,
}

/// The page again with the security keys section's refusal: a lapsed confirmation beside its
/// form, anything else beside the keys.
async fn key_refused(
    state: &AppState,
    session: &SessionUser,
    e: meshwork_app::AppError,
    name: String,
) -> Result<Response, PageError> {
    let lapsed = e.code == ErrorCode::ReauthenticationRequired;
    let message = step_up::refusal(e)?;
    Ok(refused(
        page(state, session, |p| {
            p.key_name = name;
            if lapsed {
                p.confirm_keys.error = Some(message)
            } else {
                p.errors.keys = Some(message)
            }
        })
        .await?,
    ))
}

/// Starts adding a security key: the page comes back with the challenge, which `app.js` hands
/// to the browser, and the key's answer goes to `security_key_finish`.
pub async fn security_key_add(
    State(state): State<AppState>,
    Posted(SignedIn(session), form): Posted<KeyNameForm>,
) -> Result<Response, PageError> {
    match security_keys::register_start(&state, session.id, &session.session_hash, &form.name).await
    {
        Ok(challenge) => Ok(page(&state, &session, |p| {
            p.key_name = form.name.trim().to_string();
            p.key_prompt = Some(challenge.into());
        })
        .await?
        .into_response()),
        Err(e) => key_refused(&state, &session, e, form.name).await,
    }
}

#[derive(Deserialize)]
pub struct KeyAnswerForm {
    #[serde(default)]
    ceremony: String,
    /// The key's answer, as JSON (`app.js` fills it in).
    #[serde(default)]
    credential: String,
}

impl std::fmt::Debug for KeyAnswerForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAnswerForm").finish_non_exhaustive()
    }
}

pub async fn security_key_finish(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<KeyAnswerForm>,
) -> Result<Response, PageError> {
    let credential = serde_json::from_str(&form.credential).unwrap_or(serde_json::Value::Null);
    match security_keys::register_finish(&state, &client, session.id, &form.ceremony, &credential)
        .await
    {
        Ok(_) => Ok(Redirect::to("/settings?done=key-added#keys-heading").into_response()),
        Err(e) => key_refused(&state, &session, e, String::new()).await,
    }
}

pub async fn security_key_remove(
    State(state): State<AppState>,
    Client(client): Client,
    Path(id): Path<uuid::Uuid>,
    Posted(SignedIn(session), CsrfOnly {}): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    match security_keys::remove(&state, &client, session.id, &session.session_hash, id).await {
        Ok(()) => Ok(Redirect::to("/settings?done=key-removed#keys-heading").into_response()),
        Err(e) => key_refused(&state, &session, e, String::new()).await,
    }
}

/// The page again with a sign-out refused (a confirmation that lapsed), or where the sign-out
/// leads.
async fn after_sign_out(
    state: &AppState,
    session: &SessionUser,
    outcome: meshwork_app::AppResult<()>,
    done: &str,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/settings?done={done}")).into_response()),
        Err(e) => {
            let message = step_up::refusal(e)?;
            Ok(refused(
                page(state, session, |p| p.confirm_sessions.error = Some(message)).await?,
            ))
        }
    }
}

pub async fn end_session(
    State(state): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
    Posted(SignedIn(session), CsrfOnly {}): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    let outcome =
        accounts::end_session(&state, &client, session.id, &session.session_hash, &id).await;
    after_sign_out(&state, &session, outcome, "session").await
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), CsrfOnly {}): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    let outcome = accounts::end_other_sessions(&state, &client, session.id, &session.session_hash)
        .await
        .map(|_| ());
    after_sign_out(&state, &session, outcome, "sessions").await
}

#[derive(Deserialize)]
pub struct ProfileFormIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    job_title: String,
    #[serde(default)]
    current_password: String,
}

impl std::fmt::Debug for ProfileFormIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileFormIn").finish_non_exhaustive()
    }
}

/// Saves the name, company and job title; a new email address also needs the password, and
/// moves the account only once the link sent there is opened.
pub async fn save_profile(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<ProfileFormIn>,
) -> Result<Response, PageError> {
    let current = accounts::profile(&state, session.id).await?;
    let email_changes = !form.email.trim().is_empty()
        && form.email.trim().to_lowercase() != current.email.to_lowercase();
    let patch = accounts::ProfilePatch {
        name: Some(form.name.clone()),
        email: email_changes.then(|| form.email.trim().to_string()),
        current_password: email_changes.then(|| form.current_password.clone()),
        company: Some(form.company.clone()),
        job_title: Some(form.job_title.clone()),
    };
    match accounts::update_profile(&state, &client, session.id, &patch).await {
        Ok(()) => Ok(Redirect::to(if email_changes {
            "/settings?done=email#profile"
        } else {
            "/settings?done=profile#profile"
        })
        .into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let (field, message) = super::accounts::field_of(&e);
            let field = field.unwrap_or("name").to_string();
            Ok(refused(
                page(&state, &session, |p| {
                    p.form = ProfileForm {
                        name: form.name,
                        email: form.email,
                        company: form.company,
                        job_title: form.job_title,
                    };
                    p.errors.profile = Some((field, message));
                })
                .await?,
            ))
        }
    }
}

/// The signed-in person's picture, for their own pages.
pub async fn picture(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
) -> Result<Response, PageError> {
    let (content_type, bytes) = accounts::picture(&state, session.id).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (
                axum::http::header::CACHE_CONTROL,
                "private, no-store".into(),
            ),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        ],
        bytes,
    )
        .into_response())
}

/// Sets the picture from the posted file (multipart, with the CSRF token first).
pub async fn set_picture(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    headers: axum::http::HeaderMap,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    let refuse = |message: String| async {
        Ok::<_, PageError>(refused(
            page(&state, &session, |p| p.errors.picture = Some(message)).await?,
        ))
    };
    let uploaded = match super::extract::read_upload(
        &state,
        &session.session_hash,
        &headers,
        form,
        "picture",
        meshwork_domain::MAX_PICTURE_BYTES,
        |_| {
            format!(
                "The picture is larger than {} MiB",
                meshwork_domain::MAX_PICTURE_BYTES / 1024 / 1024
            )
        },
    )
    .await?
    {
        Ok(u) => u,
        Err(r) => return refuse(r.message).await,
    };
    let Some(file) = uploaded.file.filter(|f| !f.bytes.is_empty()) else {
        return refuse("Choose a picture to upload".into()).await;
    };
    match accounts::set_picture(&state, session.id, &file.bytes).await {
        Ok(()) => Ok(Redirect::to("/settings?done=picture#profile").into_response()),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => refuse(super::accounts::capitalized(&e.message)).await,
    }
}

/// Removes the picture.
pub async fn remove_picture(
    State(state): State<AppState>,
    Posted(SignedIn(session), _): Posted<super::extract::CsrfOnly>,
) -> Result<Response, PageError> {
    accounts::remove_picture(&state, session.id).await?;
    Ok(Redirect::to("/settings?done=picture-removed#profile").into_response())
}

#[derive(Debug, Deserialize)]
pub struct MailForm {
    #[serde(default)]
    product_news: Option<String>,
}

/// Saves the mail preferences (pm13).
pub async fn save_mail(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<MailForm>,
) -> Result<Response, PageError> {
    let prefs = meshwork_app::preferences::MailPreferences {
        product_news: form.product_news.is_some(),
    };
    meshwork_app::preferences::set(&state, &client, session.id, &prefs).await?;
    Ok(Redirect::to("/settings?done=mail").into_response())
}

#[derive(Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    format: String,
}

impl std::fmt::Debug for ExportForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportForm")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Downloads everything stored about the account (pm12, mm17), after the password again (mm18).
pub async fn export(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<ExportForm>,
) -> Result<Response, PageError> {
    use meshwork_app::rights;
    if let Err(e) = rights::reauthenticate(
        &state,
        &client,
        session.id,
        &session.session_hash,
        Some(form.password.clone()),
        None,
    )
    .await
    {
        if e.code == ErrorCode::Internal {
            return Err(e.into());
        }
        let (_, message) = field_of(&e);
        return Ok(refused(
            page(&state, &session, |p| p.errors.export = Some(message)).await?,
        ));
    }
    let data = rights::export_account(&state, &client, session.id, &session.session_hash).await?;
    let (ext, kind, body) = if form.format == "csv" {
        ("csv", "text/csv; charset=utf-8", rights::export_csv(&data)?)
    } else {
        (
            "json",
            "application/json",
            serde_json::to_vec_pretty(&data).map_err(meshwork_app::AppError::internal)?,
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"meshwork-account.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

impl std::fmt::Debug for DeleteForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteForm").finish_non_exhaustive()
    }
}

/// Deletes the account (pm11), after the password again (mm18) and its email typed out.
pub async fn delete_account(
    State(state): State<AppState>,
    Client(client): Client,
    Posted(SignedIn(session), form): Posted<DeleteForm>,
) -> Result<Response, PageError> {
    use meshwork_app::rights;
    let done = async {
        rights::reauthenticate(
            &state,
            &client,
            session.id,
            &session.session_hash,
            Some(form.password.clone()),
            None,
        )
        .await
        .map_err(|e| ("password", e))?;
        rights::delete_account(
            &state,
            &client,
            session.id,
            &session.session_hash,
            &form.confirm,
        )
        .await
        .map_err(|e| ("confirm", e))
    }
    .await;
    match done {
        Ok(_) => {
            let mut r = Redirect::to("/sign-in?deleted=1").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie("", 0));
            Ok(r)
        }
        Err((_, e)) if e.code == ErrorCode::Internal => Err(e.into()),
        Err((field, e)) => Ok(refused(
            page(&state, &session, |p| {
                p.errors.delete = Some((field.to_string(), e.message.clone()))
            })
            .await?,
        )),
    }
}
