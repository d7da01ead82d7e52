//! Account routes: sign-up, sign-in (with TOTP), sign-out, the profile and its picture, password
//! changes and resets, email verification, two-factor set-up, and the account's own audit trail.

use crate::auth::{csrf_token, SessionUser, SESSION_COOKIE};
use crate::client::{Client, ClientInfo};
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query, RawBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meshwork_app::accounts::{self};
use meshwork_app::audit;
use meshwork_app::security_keys::{self, Challenge, KeyInfo};
use meshwork_app::state::AppState;
use meshwork_domain::{EmailAddress, ErrorCode, UserId};
use meshwork_store::AuditScope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub name: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub job_title: String,
    /// Must be `true`: Meshwork is not for people under 16.
    pub confirm_age_16_or_over: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user_id: uuid::Uuid,
    /// Send this as `X-CSRF-Token` with every state-changing request made with the session cookie.
    pub csrf_token: String,
}

pub(crate) fn session_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={max_age_secs}"
    ))
    .expect("cookie is ASCII")
}

async fn start_session(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    status: StatusCode,
) -> ApiResult<Response> {
    let session = accounts::start_session(state, client, user).await?;
    let body = SignedIn {
        user_id: user.as_uuid(),
        csrf_token: csrf_token(state, &session.hash)?,
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&session.token, session.max_age_secs),
    );
    Ok(resp)
}

/// What a sign-up answers, whether or not the address already had an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupAccepted {
    pub message: String,
}

/// Create an account. The answer is the same whether or not the address already has one (its
/// owner is mailed instead); a verification link goes to the address. Then sign in.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 202, body = SignupAccepted, description = "Accepted: a mail is on its way to the address; sign in with the password chosen."),
              (status = 403, body = ErrorBody, description = "Sign-up is by invitation only."),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    Json(req): Json<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SignupAccepted>)> {
    accounts::signup(
        &state,
        &client,
        accounts::Signup {
            name: &req.name,
            email: &req.email,
            password: &req.password,
            company: &req.company,
            job_title: &req.job_title,
            confirm_age_16_or_over: req.confirm_age_16_or_over,
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignupAccepted {
            message: "Check your inbox: a mail to this address says what comes next. If the account is new, confirm the address with the link, and sign in with the password you chose.".into(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The current 6-digit code, when two-factor authentication is on.
    pub totp_code: Option<String>,
    /// A one-time recovery code, instead of `totp_code`.
    pub recovery_code: Option<String>,
    /// `true`: when two-factor authentication is on, no code is given and the account has
    /// security keys, answer `202` with a challenge for them instead of `401 mfa_required`.
    #[serde(default)]
    pub security_key: bool,
}

/// Sign in with email and password (and a TOTP or recovery code when two-factor is on). With
/// `security_key: true` and no code, an account with security keys gets a challenge (`202`)
/// to answer at `POST /api/v1/auth/login/security-key`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SignedIn, description = "Signed in; the session cookie is set."),
              (status = 202, body = Challenge, description = "The password was right: pass `options` to `navigator.credentials.get` and send the key's answer with `ceremony` to `POST /api/v1/auth/login/security-key` within 5 minutes."),
              (status = 401, body = ErrorBody), (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let step = accounts::sign_in(
        &state,
        &client,
        accounts::SignIn {
            email: &req.email,
            password: req.password,
            totp_code: req.totp_code.as_deref(),
            recovery_code: req.recovery_code.as_deref(),
            offer_security_key: req.security_key,
        },
    )
    .await?;
    match step {
        accounts::SignInStep::Done(user) => {
            start_session(&state, &client, user, StatusCode::OK).await
        }
        accounts::SignInStep::SecurityKey(challenge) => {
            Ok((StatusCode::ACCEPTED, Json(challenge)).into_response())
        }
    }
}

/// A security key's answer to a challenge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyAnswer {
    /// The `ceremony` of the challenge.
    pub ceremony: String,
    /// The `PublicKeyCredential` the browser answered, as JSON (its `toJSON()`; binary fields
    /// in base64url).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

impl std::fmt::Debug for KeyAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAnswer").finish_non_exhaustive()
    }
}

/// The second step of a sign-in with a security key: the key's answer to the challenge that
/// `POST /api/v1/auth/login` gave. The ceremony works once, whatever the answer.
#[utoipa::path(post, path = "/api/v1/auth/login/security-key", tag = "accounts", request_body = KeyAnswer,
    responses((status = 200, body = SignedIn, description = "Signed in; the session cookie is set."),
              (status = 400, body = ErrorBody, description = "The ceremony is unknown, used or older than 5 minutes (`invalid_token`): sign in again."),
              (status = 401, body = ErrorBody, description = "The key's answer does not check out (`invalid_mfa_code`); it counts toward the lockout."),
              (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login_security_key(
    State(state): State<AppState>,
    Client(client): Client,
    Json(req): Json<KeyAnswer>,
) -> ApiResult<Response> {
    let user = accounts::sign_in_with_security_key(&state, &client, &req.ceremony, &req.credential)
        .await?;
    start_session(&state, &client, user, StatusCode::OK).await
}

/// Sign out: the session ends on the server and the cookie is cleared.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", security(("session" = [])),
    responses((status = 204, description = "Signed out."), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
) -> ApiResult<Response> {
    accounts::sign_out(&state, &client, user.id, &user.session_hash).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(resp)
}

/// Everything Meshwork stores about you (pm09), except secrets, which are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub profile: accounts::Profile,
    /// Send as `X-CSRF-Token` with state-changing requests.
    pub csrf_token: String,
}

/// Your profile and everything stored about you.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, user: SessionUser) -> ApiResult<Json<Me>> {
    Ok(Json(Me {
        profile: accounts::profile(&state, user.id).await?,
        csrf_token: csrf_token(&state, &user.session_hash)?,
    }))
}

/// Edit your profile; fields left out stay as they are.
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("session" = [])), request_body = accounts::ProfilePatch,
    responses((status = 200, body = Me), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<accounts::ProfilePatch>,
) -> ApiResult<Json<Me>> {
    accounts::update_profile(&state, &client, user.id, &req).await?;
    me(State(state), user).await
}

/// Upload your profile picture (PNG, JPEG, GIF or WebP, up to 2 MiB), stored encrypted.
#[utoipa::path(put, path = "/api/v1/me/picture", tag = "accounts", security(("session" = [])),
    request_body(content = String, content_type = "image/png", description = "The image bytes."),
    responses((status = 204), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn put_picture(
    State(state): State<AppState>,
    user: SessionUser,
    RawBody(body): RawBody,
) -> ApiResult<StatusCode> {
    accounts::set_picture(&state, user.id, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your profile picture.
#[utoipa::path(get, path = "/api/v1/me/picture", tag = "accounts", security(("session" = [])),
    responses((status = 200, content_type = "image/png", body = String), (status = 404, body = ErrorBody)))]
pub async fn get_picture(State(state): State<AppState>, user: SessionUser) -> ApiResult<Response> {
    let (content_type, bytes) = accounts::picture(&state, user.id).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).map_err(ApiError::internal)?,
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok((headers, bytes).into_response())
}

/// Remove your profile picture.
#[utoipa::path(delete, path = "/api/v1/me/picture", tag = "accounts", security(("session" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn delete_picture(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<StatusCode> {
    accounts::remove_picture(&state, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change your password; every other session is signed out.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", security(("session" = [])), request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<PasswordChange>,
) -> ApiResult<Response> {
    accounts::change_password(
        &state,
        &client,
        user.id,
        req.current_password,
        &req.new_password,
    )
    .await?;
    start_session(&state, &client, user.id, StatusCode::OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// Confirm your email address with the token from the verification mail.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "accounts", request_body = TokenRequest,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    Client(client): Client,
    Json(req): Json<TokenRequest>,
) -> ApiResult<StatusCode> {
    accounts::verify_email(&state, &client, &req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

/// Ask for a password-reset link. Always answers 202, whether or not the account exists.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "accounts", request_body = ResetRequest,
    responses((status = 202), (status = 422, body = ErrorBody)))]
pub async fn request_reset(
    State(state): State<AppState>,
    Client(client): Client,
    Json(req): Json<ResetRequest>,
) -> ApiResult<StatusCode> {
    let email = EmailAddress::parse("email", &req.email)?;
    accounts::request_password_reset(&state, &client, &email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    pub token: String,
    pub new_password: String,
    /// When two-factor authentication is on: a current code from the authenticator app, or a
    /// recovery code (used up).
    #[serde(default)]
    pub code: Option<String>,
    /// Also revoke every API key you created, in every workspace (default false).
    #[serde(default)]
    pub revoke_api_keys: bool,
}

/// Set a new password with a reset token; every session is signed out. An account with
/// two-factor authentication also needs a code (`401 mfa_required` without one; the token
/// stays usable for another try).
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "accounts", request_body = ResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "Two-factor authentication is on: the code is missing (`mfa_required`) or wrong (`invalid_mfa_code`)."),
              (status = 422, body = ErrorBody), (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    Client(client): Client,
    Json(req): Json<ResetConfirm>,
) -> ApiResult<StatusCode> {
    accounts::reset_password(
        &state,
        &client,
        &req.token,
        &req.new_password,
        req.code.as_deref(),
        req.revoke_api_keys,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetup {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    /// An `otpauth://` URL, for a QR code.
    pub otpauth_url: String,
}

/// Start turning on two-factor authentication: returns a new TOTP secret to confirm.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/setup", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = TotpSetup), (status = 409, body = ErrorBody)))]
pub async fn totp_setup(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<Json<TotpSetup>> {
    let (secret, otpauth_url) = accounts::totp_setup(&state, user.id).await?;
    Ok(Json(TotpSetup {
        secret,
        otpauth_url,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    /// The current code from the authenticator app.
    pub code: String,
    /// Your password: a stolen session alone cannot lock you out with a second factor.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once: each signs you in once if you lose your authenticator.
    pub recovery_codes: Vec<String>,
}

/// Confirm the TOTP secret with a current code; turns two-factor on and returns recovery codes.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "accounts", security(("session" = [])), request_body = TotpConfirm,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<TotpConfirm>,
) -> ApiResult<Json<RecoveryCodes>> {
    let recovery_codes =
        accounts::totp_confirm(&state, &client, user.id, &req.code, req.password).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Your password and a second factor, for a change to two-factor authentication.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaDisable {
    pub password: String,
    /// A current code from your authenticator app, or one of your recovery codes (which it uses
    /// up), when the authenticator is lost.
    pub code: String,
}

impl std::fmt::Debug for MfaDisable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaDisable").finish_non_exhaustive()
    }
}

/// Turn two-factor authentication off (needs your password and a current code or a recovery
/// code).
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/disable", tag = "accounts", security(("session" = [])), request_body = MfaDisable,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<MfaDisable>,
) -> ApiResult<StatusCode> {
    accounts::totp_disable(&state, &client, user.id, &req.code, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make ten new recovery codes; the old ones stop working. Needs your password and a current
/// code or a recovery code. The codes are in this answer only.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", tag = "accounts", security(("session" = [])), request_body = MfaDisable,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn replace_recovery_codes(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<MfaDisable>,
) -> ApiResult<Json<RecoveryCodes>> {
    let recovery_codes =
        accounts::replace_recovery_codes(&state, &client, user.id, &req.code, req.password).await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Your security keys.
#[utoipa::path(get, path = "/api/v1/me/mfa/security-keys", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = Vec<KeyInfo>)))]
pub async fn security_keys(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<Json<Vec<KeyInfo>>> {
    Ok(Json(security_keys::list(&state, user.id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecurityKey {
    /// What to call the key (1 to 64 characters), such as the name printed on it.
    pub name: String,
}

/// Start registering a security key: answers a challenge for `navigator.credentials.create`.
/// Two-factor authentication with an authenticator app must be on, and the session must have
/// proven it is you within the last 5 minutes (`POST /api/v1/me/reauthenticate`).
#[utoipa::path(post, path = "/api/v1/me/mfa/security-keys", tag = "accounts", security(("session" = [])), request_body = NewSecurityKey,
    responses((status = 200, body = Challenge, description = "Pass `options` to `navigator.credentials.create`, then send the key's answer with `ceremony` to `POST /api/v1/me/mfa/security-keys/finish` within 5 minutes."),
              (status = 403, body = ErrorBody, description = "The session has not proven it is you within the last 5 minutes (`reauthentication_required`)."),
              (status = 409, body = ErrorBody, description = "Two-factor authentication with an app is off (`mfa_not_enabled`), or this server's `public_url` is not a domain name (`security_keys_unavailable`)."),
              (status = 422, body = ErrorBody, description = "The name is empty, too long or holds control characters, or the account has 10 keys.")))]
pub async fn security_key_start(
    State(state): State<AppState>,
    user: SessionUser,
    Json(req): Json<NewSecurityKey>,
) -> ApiResult<Json<Challenge>> {
    Ok(Json(
        security_keys::register_start(&state, user.id, &user.session_hash, &req.name).await?,
    ))
}

/// Finish registering a security key with its answer to the challenge. You are told by mail.
#[utoipa::path(post, path = "/api/v1/me/mfa/security-keys/finish", tag = "accounts", security(("session" = [])), request_body = KeyAnswer,
    responses((status = 201, body = KeyInfo),
              (status = 400, body = ErrorBody, description = "The ceremony is unknown, used, another account's or older than 5 minutes (`invalid_token`): start again."),
              (status = 409, body = ErrorBody, description = "The key is registered already (`security_key_exists`), or two-factor authentication was turned off meanwhile (`mfa_not_enabled`)."),
              (status = 422, body = ErrorBody, description = "The key's answer does not check out, or the account has 10 keys.")))]
pub async fn security_key_finish(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Json(req): Json<KeyAnswer>,
) -> ApiResult<(StatusCode, Json<KeyInfo>)> {
    let key =
        security_keys::register_finish(&state, &client, user.id, &req.ceremony, &req.credential)
            .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Remove one of your security keys (the session must have proven it is you within the last 5
/// minutes). You are told by mail.
#[utoipa::path(delete, path = "/api/v1/me/mfa/security-keys/{key_id}", tag = "accounts", security(("session" = [])),
    params(("key_id" = uuid::Uuid, Path, description = "The key's id.")),
    responses((status = 204),
              (status = 403, body = ErrorBody, description = "The session has not proven it is you within the last 5 minutes (`reauthentication_required`)."),
              (status = 404, body = ErrorBody, description = "No key of yours has this id (`security_key_not_found`).")))]
pub async fn security_key_remove(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Path(key_id): Path<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    security_keys::remove(&state, &client, user.id, &user.session_hash, key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    /// Return entries older than this id (from the previous page's last entry).
    pub before: Option<uuid::Uuid>,
    /// At most this many entries (1 to 200, default 50).
    pub limit: Option<i64>,
}

impl AuditPage {
    pub fn limit(&self) -> ApiResult<i64> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=200).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("query `limit`: must be 1 to 200, got {n}"),
            )),
        }
    }
}

/// Your live sessions (where and when each signed in, and its last use), newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = Vec<accounts::SessionView>), (status = 401, body = ErrorBody)))]
pub async fn my_sessions(
    State(state): State<AppState>,
    user: SessionUser,
) -> ApiResult<Json<Vec<accounts::SessionView>>> {
    Ok(Json(
        accounts::sessions(&state, user.id, &user.session_hash).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    pub signed_out: usize,
}

/// Sign out everywhere else: every session but this one ends. The session must have confirmed
/// it is you within 5 minutes (a sign-in, or `POST /api/v1/me/reauthenticate`).
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = SessionsEnded), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn end_other_sessions(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
) -> ApiResult<Json<SessionsEnded>> {
    let signed_out =
        accounts::end_other_sessions(&state, &client, user.id, &user.session_hash).await?;
    Ok(Json(SessionsEnded { signed_out }))
}

/// End one of your sessions (its id is in the list). The session must have confirmed it is you
/// within 5 minutes (a sign-in, or `POST /api/v1/me/reauthenticate`).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", tag = "accounts", security(("session" = [])),
    params(("session_id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    user: SessionUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    accounts::end_session(&state, &client, user.id, &user.session_hash, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The security events of your account (sign-ins, failures, MFA and password changes).
#[utoipa::path(get, path = "/api/v1/me/audit", tag = "accounts", security(("session" = [])), params(AuditPage),
    responses((status = 200, body = Vec<audit::AuditEntry>), (status = 401, body = ErrorBody)))]
pub async fn my_audit(
    State(state): State<AppState>,
    user: SessionUser,
    Query(page): Query<AuditPage>,
) -> ApiResult<Json<Vec<audit::AuditEntry>>> {
    let rows = state
        .store
        .audit(
            AuditScope::User(user.id),
            page.before.map(meshwork_domain::AuditId),
            page.limit()?,
        )
        .await?;
    let me = user.id.as_uuid();
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let mut entry = audit::open(&state, row)?;
        // Events about you done by someone else (an admin changing your role) keep their
        // address and browser to themselves.
        if entry.actor.is_some_and(|a| a != me) {
            if let serde_json::Value::Object(map) = &mut entry.details {
                map.remove("ip");
                map.remove("user_agent");
            }
        }
        entries.push(entry);
    }
    Ok(Json(entries))
}
