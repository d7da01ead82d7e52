//! Accounts: sign-up, sign-in (rate limit, lockout, second factor, new-device alerts) and
//! sign-out; email links (verification and password resets, single-use and expiring); TOTP and
//! recovery codes; the profile, its picture and password changes; password hashing (argon2id).

use crate::actor::{Actor, ClientInfo};
use crate::audit::{self, Event};
use crate::error::{AppError, AppResult};
use crate::mail::{self, Mail};
use crate::state::{now_millis, random_token, token_hash, AppState};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use meshwork_domain::{
    EmailAddress, ErrorCode, Password, PersonName, ProfileText, UserId, MAX_PICTURE_BYTES,
};
use meshwork_store::{PictureRow, ProfileUpdate, SessionRow, TokenRow, UserRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};

/// The purpose of the password pepper among the server keys derived from the master key.
pub const PEPPER_PURPOSE: &str = "password-pepper/v1";
/// The pepper's id in a hash's PHC string (`keyid`): a hash that carries it was made with it.
const PEPPER_ID: &[u8] = b"mwp1";

/// argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1: OWASP's recommended minimum)
/// and, as argon2's secret input, the pepper: a server secret derived from the master key and
/// never stored beside the hashes (OWASP ASVS 2.4.5), so that a copy of the database alone
/// cannot test a single guess. The PHC string records the parameters (which can be raised later
/// without breaking old hashes) and the pepper's id (`keyid`; a hash naming another id is
/// refused rather than checked with the wrong pepper).
pub fn hash_password_blocking(pepper: &[u8], password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = argon2::ParamsBuilder::new()
        .keyid(argon2::KeyId::new(PEPPER_ID).map_err(|e| anyhow::anyhow!("pepper id: {e}"))?)
        .build()
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Argon2::new_with_secret(
        pepper,
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    )
    .map_err(|e| anyhow::anyhow!("argon2 with the pepper: {e}"))?
    .hash_password(password.as_bytes(), &salt)
    .map(|h| h.to_string())
    .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `hash` was made with the pepper; hashes from before it are verified without one and
/// replaced at the next sign-in (`sign_in`).
pub fn is_peppered(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| pepper_id(&h).as_deref() == Some(PEPPER_ID))
}

/// The pepper id a hash names (`keyid`, base64 in the PHC string), if it names one.
fn pepper_id(hash: &PasswordHash<'_>) -> Option<Vec<u8>> {
    hash.params.get("keyid")?;
    argon2::Params::try_from(hash)
        .ok()
        .map(|p| p.keyid().to_vec())
}

fn verify_password_blocking(pepper: &[u8], password: &[u8], hash: &str) -> AppResult<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| AppError::internal(format!("stored password hash: {e}")))?;
    let id = pepper_id(&parsed);
    if id.as_deref().is_some_and(|id| id != PEPPER_ID) {
        return Err(AppError::internal(
            "a stored password hash names a pepper this server does not have",
        ));
    }
    let argon = if id.is_some() {
        Argon2::new_with_secret(
            pepper,
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::default(),
        )
        .map_err(AppError::internal)?
    } else {
        Argon2::default()
    };
    Ok(argon.verify_password(password, &parsed).is_ok())
}

/// At most this many argon2id computations at once (one per core): each takes 19 MiB and a
/// core for tens of milliseconds, and the blocking pool would otherwise run hundreds at a time
/// under a burst of sign-ups or sign-ins.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    )
});

/// Hashes off the async threads: argon2 is deliberately slow.
pub async fn hash_password(state: &AppState, password: String) -> AppResult<String> {
    let _permit = HASHING.acquire().await.map_err(AppError::internal)?;
    let password = zeroize::Zeroizing::new(password);
    let pepper = state.password_pepper.clone();
    tokio::task::spawn_blocking(move || {
        hash_password_blocking(pepper.dangerously_expose(), &password)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)
}

pub async fn verify_password(state: &AppState, password: String, hash: String) -> AppResult<bool> {
    let _permit = HASHING.acquire().await.map_err(AppError::internal)?;
    let password = zeroize::Zeroizing::new(password);
    let pepper = state.password_pepper.clone();
    tokio::task::spawn_blocking(move || {
        verify_password_blocking(pepper.dangerously_expose(), password.as_bytes(), &hash)
    })
    .await
    .map_err(AppError::internal)?
}

pub const TOTP_ISSUER: &str = "Meshwork";

pub fn totp(secret: &[u8], account: &str) -> AppResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some(TOTP_ISSUER.into()),
        account.into(),
    )
    .map_err(|e| AppError::internal(format!("TOTP set-up: {e}")))
}

pub fn new_totp_secret() -> Vec<u8> {
    meshwork_keyring::random_bytes::<20>().to_vec()
}

pub fn totp_base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The 30-second step whose code `code` is, if it is valid now (one step of clock skew allowed
/// either way). Callers must also consume the step (`accept_totp`) so a code works once.
pub fn check_totp(secret: &[u8], code: &str) -> AppResult<Option<u64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret, "check")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(AppError::internal)?
        .as_secs();
    for step in [now / 30, now / 30 - 1, now / 30 + 1] {
        let expected = totp.generate(step * 30);
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            code.as_bytes(),
        )) {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

/// Checks a TOTP code and consumes its time step for the user: the same code (or an older
/// one) is refused afterwards, so an observed code cannot be replayed.
pub async fn accept_totp(
    state: &crate::AppState,
    user: meshwork_domain::UserId,
    secret: &[u8],
    code: &str,
) -> AppResult<bool> {
    Ok(totp_use(state, user, secret, code).await? == TotpUse::Accepted)
}

/// What became of a TOTP code sent for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpUse {
    Accepted,
    Wrong,
    /// Right for its time step, but that step (or a later one) was already used: a replay.
    Reused,
}

/// Checks a code and consumes its step: accepted once, then reported as reused.
pub async fn totp_use(
    state: &crate::AppState,
    user: meshwork_domain::UserId,
    secret: &[u8],
    code: &str,
) -> AppResult<TotpUse> {
    Ok(match check_totp(secret, code)? {
        Some(step) if state.store.use_totp_step(user, step as i64).await? => TotpUse::Accepted,
        Some(_) => TotpUse::Reused,
        None => TotpUse::Wrong,
    })
}

/// `accept_totp` for a sign-in or a re-check, where a reused code is told apart (OWASP ASVS
/// 2.8.5): refused like a wrong one and audited as `mfa.totp_reused`. At sign-in (`at_sign_in`)
/// the account holder is also mailed, since whoever replays a code there has seen one and holds
/// the password; inside a signed-in session it is most likely the person typing the code they
/// just used, so the answer alone tells them to wait for the next one.
async fn accept_totp_reporting_reuse(
    state: &AppState,
    client: &ClientInfo,
    u: &UserRow,
    secret: &[u8],
    code: &str,
    at_sign_in: bool,
) -> AppResult<bool> {
    match totp_use(state, u.id, secret, code).await? {
        TotpUse::Accepted => Ok(true),
        TotpUse::Wrong => Ok(false),
        TotpUse::Reused => {
            audit::account_event(
                state,
                client,
                "mfa.totp_reused",
                u.id,
                json!({"at_sign_in": at_sign_in}),
            )
            .await?;
            if !at_sign_in {
                return Ok(false);
            }
            mail::enqueue(state, Mail {
                kind: "totp_reused".into(),
                to: state.open_account_str(u.id, "email", &u.email_sealed)?,
                subject: "A used two-factor code was sent for your Meshwork account".into(),
                body: format!(
                    "A sign-in to your account sent the right password with a two-factor code that had already been used (or was older than one used since), and was refused.\n\nAddress: {}\nDevice: {}\n\nIf this was you, typing a code twice, nothing is wrong: wait for the next code. If it was not you, someone has your password and has seen one of your codes: change your password now, and end your other sessions in Settings.",
                    client.ip.map(|i| i.to_string()).unwrap_or_else(|| "unknown".into()),
                    if client.user_agent.is_empty() { "unknown" } else { &client.user_agent },
                ),
            })
            .await?;
            Ok(false)
        }
    }
}

/// The alphabet of recovery codes: no 0/o, 1/l/i.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// The letters and digits of a recovery code (dashes aside): 24 from an alphabet of 31, about
/// 119 bits, past the 112 bits OWASP ASVS 2.6.2 asks of a lookup secret kept unsalted.
pub const RECOVERY_CODE_CHARS: usize = 24;

/// Ten one-time recovery codes, six groups of four (`xxxx-xxxx-…`) from an unambiguous alphabet
/// of 31 letters and digits, each drawn uniformly (security finding 8: a byte is used only below
/// the largest multiple of 31, so no letter is likelier than another).
pub fn new_recovery_codes() -> Vec<String> {
    let n = RECOVERY_ALPHABET.len();
    let limit = 256 - 256 % n;
    (0..10)
        .map(|_| {
            let mut chars = String::with_capacity(RECOVERY_CODE_CHARS);
            while chars.len() < RECOVERY_CODE_CHARS {
                for b in meshwork_keyring::random_bytes::<32>() {
                    if (b as usize) < limit && chars.len() < RECOVERY_CODE_CHARS {
                        chars.push(RECOVERY_ALPHABET[b as usize % n] as char);
                    }
                }
            }
            chars
                .as_bytes()
                .chunks(4)
                .map(|g| std::str::from_utf8(g).expect("ASCII"))
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// Ten new recovery codes, and the keyed hashes stored in their place.
fn recovery_codes_with_hashes(state: &AppState) -> AppResult<(Vec<String>, Vec<[u8; 32]>)> {
    let codes = new_recovery_codes();
    let hashes = codes
        .iter()
        .map(|c| recovery_code_hash(state, c))
        .collect::<AppResult<_>>()?;
    Ok((codes, hashes))
}

/// Recovery codes are compared without case or dashes.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What is stored of a recovery code: a keyed hash (HMAC-SHA256 under the account key's
/// blind-index key; security finding 8), so a copy of the database alone cannot test guesses.
pub fn recovery_code_hash(state: &AppState, code: &str) -> AppResult<[u8; 32]> {
    Ok(state
        .account_key()?
        .blind_index("recovery_code", &normalize_recovery_code(code))
        .0)
}

// --- email links: verification and password resets ------------------------------------------

/// How long a verification link works.
pub const VERIFY_TTL_MS: i64 = 24 * 3600 * 1000;
/// How long a password-reset link works.
pub const RESET_TTL_MS: i64 = 3600 * 1000;

/// A link to this server's `path` carrying a single-use `token`, from `public_url`.
pub fn link(state: &AppState, path: &str, token: &str) -> String {
    format!(
        "{}{path}?token={token}",
        state.config.public_url.trim_end_matches('/')
    )
}

fn invalid_link() -> AppError {
    AppError::new(
        ErrorCode::InvalidToken,
        "field `token`: the link is unknown, already used or expired",
    )
}

/// Queues the mail with a new single-use verification link for the account's address `email`.
/// The link is bound to that address (security finding 12): it verifies it only while the
/// account still has it.
pub async fn send_verification(state: &AppState, user: UserId, email: &str) -> AppResult<()> {
    send_email_link(state, user, email, false).await
}

/// Queues the verification link of an email change to the new address `email`: opening it
/// moves the account there. Until then the account keeps its old address.
async fn send_email_link(
    state: &AppState,
    user: UserId,
    email: &str,
    change: bool,
) -> AppResult<()> {
    let token = random_token();
    let normalized = EmailAddress::parse("email", email)?.normalized();
    state
        .store
        .create_token(&TokenRow {
            hash: token_hash(&token),
            kind: "verify_email".into(),
            user_id: user,
            expires_at: now_millis() + VERIFY_TTL_MS,
            email_index: Some(state.email_index(&normalized)?),
            email_sealed: if change {
                Some(state.seal_account(user, "email", email.as_bytes())?)
            } else {
                None
            },
            payload_sealed: None,
        })
        .await?;
    let link = link(state, "/verify-email", &token);
    let body = if change {
        format!("Someone (we hope you) asked to move a Meshwork account to this address. Confirm it by opening:\n\n{link}\n\nThe account keeps its old address until then. The link works once and expires in 24 hours. If you did not ask for this, ignore this mail.")
    } else {
        format!("Confirm this address by opening:\n\n{link}\n\nThe link works once and expires in 24 hours. If you did not sign up, ignore this mail.")
    };
    mail::enqueue(
        state,
        Mail {
            kind: "verify_email".into(),
            to: email.into(),
            subject: "Confirm your email address for Meshwork".into(),
            body,
        },
    )
    .await
}

/// Confirms an email address with the token of a verification link (once): the address the
/// link was sent to, only while the account still has it; for an email change, moves the
/// account to the new address, unless another account took it meanwhile.
pub async fn verify_email(state: &AppState, client: &ClientInfo, token: &str) -> AppResult<UserId> {
    let Some(t) = state
        .store
        .take_token("verify_email", &token_hash(token), now_millis())
        .await?
    else {
        return Err(invalid_link());
    };
    // A link from before links were bound to their address says nothing of which address
    // it confirms: refused (signing up again sends a fresh one).
    let Some(index) = t.email_index else {
        return Err(invalid_link());
    };
    let changed = t.email_sealed.is_some();
    let before = load_user(state, t.user_id).await?;
    match state
        .store
        .confirm_email(t.user_id, &index, t.email_sealed.as_deref(), now_millis())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Err(AppError::new(
                ErrorCode::InvalidToken,
                "field `token`: the account's address changed after this link was sent; use the link sent to its current address",
            ))
        }
        Err(meshwork_store::StoreError::Conflict("users.email")) => {
            return Err(AppError::new(
                ErrorCode::EmailTaken,
                "field `token`: another account has this address now; the change was not made",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    if changed {
        // Links sent to the old address must not reset the moved account.
        state.store.delete_user_tokens(t.user_id).await?;
        let old = state.open_account_str(before.id, "email", &before.email_sealed)?;
        notify_security_change(
            state,
            "email_changed",
            &old,
            "Your Meshwork account moved to another address: its link was opened. Mail about the account goes there from now on.",
        )
        .await?;
    }
    audit::account_event(
        state,
        client,
        "account.email_verified",
        t.user_id,
        json!({"email_changed": changed}),
    )
    .await?;
    Ok(t.user_id)
}

/// An operator confirms an account's email address without mail (`meshwork users
/// verify-email`), so a server without SMTP never locks its first user out. Audited.
pub async fn verify_email_by_operator(state: &AppState, email: &str) -> AppResult<UserId> {
    let email = EmailAddress::parse("email", email)?;
    let Some(user) = state
        .store
        .user_by_email_index(&state.email_index(&email.normalized())?)
        .await?
    else {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!(
                "field `email`: no account has the address {}",
                email.as_str()
            ),
        ));
    };
    state
        .store
        .set_email_verified(user.id, now_millis())
        .await?;
    audit::record(
        state,
        None,
        audit::Event {
            kind: "account.email_verified_by_operator",
            workspace: None,
            actor: None,
            subject: Some(user.id),
            details: json!({}),
        },
    )
    .await?;
    Ok(user.id)
}

/// Queues a password-reset link for the account of `email`, if there is one. Says nothing of
/// whether there is (the caller answers the same either way). Counted against the client's
/// sign-in attempts (each may send a mail).
pub async fn request_password_reset(
    state: &AppState,
    client: &ClientInfo,
    email: &EmailAddress,
) -> AppResult<()> {
    if let Some(ip) = client.rate_key() {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                "too many requests from this address; wait a minute and retry",
            ));
        }
    }
    let Some(user) = state
        .store
        .user_by_email_index(&state.email_index(&email.normalized())?)
        .await?
    else {
        return Ok(());
    };
    let token = random_token();
    state
        .store
        .create_token(&TokenRow {
            hash: token_hash(&token),
            kind: "password_reset".into(),
            user_id: user.id,
            expires_at: now_millis() + RESET_TTL_MS,
            email_index: None,
            email_sealed: None,
            payload_sealed: None,
        })
        .await?;
    let link = link(state, "/reset-password", &token);
    mail::enqueue(state, Mail {
        kind: "password_reset".into(),
        to: state.open_account_str(user.id, "email", &user.email_sealed)?,
        subject: "Reset your Meshwork password".into(),
        body: format!(
            "Choose a new password here:\n\n{link}\n\nThe link works once and expires in 1 hour; every session is signed out, and you may revoke every API key you created too.{} If you did not ask for this, ignore this mail.",
            if user.totp_enabled {
                " Your account has two-factor authentication: have a code from your authenticator app, or a recovery code, at hand."
            } else {
                ""
            }
        ),
    })
    .await?;
    audit::record(
        state,
        Some(client),
        audit::Event {
            kind: "account.password_reset_requested",
            workspace: None,
            actor: None,
            subject: Some(user.id),
            details: json!({}),
        },
    )
    .await
}

/// Every link sent before a password change or reset (another reset, a verification) dies
/// with the old password. An address still unverified gets a fresh verification link, so the
/// person is never left without one.
async fn void_links(state: &AppState, user: UserId) -> AppResult<()> {
    state.store.delete_user_tokens(user).await?;
    let u = load_user(state, user).await?;
    if !u.email_verified {
        let email = state.open_account_str(u.id, "email", &u.email_sealed)?;
        send_verification(state, u.id, &email).await?;
    }
    Ok(())
}

/// Sets a new password with the token of a reset link (once); every session is signed out.
/// With `revoke_api_keys`, every API key the person created is revoked too (security finding
/// 10: a key minted with a stolen session outlives the session).
pub async fn reset_password(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    new_password: &str,
    code: Option<&str>,
    revoke_api_keys: bool,
) -> AppResult<UserId> {
    // Check the password before taking the single-use token, so a weak password does not burn it.
    let weak_check = Password::parse("new_password", new_password, None)?;
    let Some(link) = state
        .store
        .take_token("password_reset", &token_hash(token), now_millis())
        .await?
    else {
        return Err(invalid_link());
    };
    let user = link.user_id;
    let u = load_user(state, user).await?;
    if u.totp_enabled {
        if let Err(e) = reset_second_factor(state, client, &u, code).await {
            // The link stays usable (until it expires) for a try with the right code.
            state.store.create_token(&link).await?;
            return Err(e);
        }
    }
    let hash = hash_password(state, weak_check.dangerously_as_str().to_string()).await?;
    state
        .store
        .set_password_hash(user, &hash, now_millis())
        .await?;
    state.store.delete_user_sessions(user).await?;
    void_links(state, user).await?;
    let mut revoked = 0;
    if revoke_api_keys {
        let workspaces = state.store.revoke_user_api_keys(user, now_millis()).await?;
        for ws in &workspaces {
            state.key_cache.forget_workspace(*ws);
        }
        revoked = workspaces.len();
    }
    audit::account_event(
        state,
        client,
        "account.password_reset",
        user,
        json!({"api_keys_revoked_in_workspaces": revoked}),
    )
    .await?;
    notify_security_change(
        state,
        "password_changed",
        &state.open_account_str(u.id, "email", &u.email_sealed)?,
        "The password of your Meshwork account was reset with a link sent to this address, and every session was signed out.",
    )
    .await?;
    Ok(user)
}

/// The second factor a password reset needs when two-factor authentication is on (OWASP ASVS
/// 2.5.6): a mailbox alone does not give the account away. A current code from the
/// authenticator app, or a recovery code (used up); counted toward the lockout like a sign-in.
async fn reset_second_factor(
    state: &AppState,
    client: &ClientInfo,
    u: &UserRow,
    code: Option<&str>,
) -> AppResult<()> {
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(AppError::new(
            ErrorCode::MfaRequired,
            "field `code`: your account has two-factor authentication: give a code from your authenticator app, or a recovery code, with the new password",
        ));
    };
    let secret = enabled_totp_secret(state, u)?;
    let totp_shaped = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let check = async {
        if totp_shaped {
            accept_totp_reporting_reuse(state, client, u, &secret, code, false).await
        } else {
            take_recovery_code(state, u.id, code).await
        }
    };
    if !recheck(state, client, u, "code", check).await? {
        return Err(AppError::new(
            ErrorCode::InvalidMfaCode,
            "field `code`: the code is wrong, expired or already used",
        ));
    }
    if !totp_shaped {
        audit::account_event(state, client, "mfa.recovery_code_used", u.id, json!({})).await?;
    }
    Ok(())
}

// --- sign-up and sign-in -------------------------------------------------------------------------

/// What a person gives to sign up (validated here).
pub struct Signup<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub company: &'a str,
    pub job_title: &'a str,
    /// Must be true: Meshwork is not for people under 16 (cl15).
    pub confirm_age_16_or_over: bool,
}

impl std::fmt::Debug for Signup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signup").finish_non_exhaustive()
    }
}

/// Creates an account, queues its verification mail and remembers the device. The answer is
/// the same whether or not the address already has an account (security finding 7): then its
/// owner is mailed instead (a fresh verification link when the account is still unverified),
/// after the same password hashing, and nothing changes. The person signs in once the account
/// exists; no session starts here.
pub async fn signup(state: &AppState, client: &ClientInfo, input: Signup<'_>) -> AppResult<()> {
    // Each sign-up runs argon2id and sends a mail: a burst from one address is refused.
    if let Some(ip) = client.rate_key() {
        if state.signup_limiter.check_key(&ip).is_err() {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                "too many sign-ups from this address; wait and retry later",
            ));
        }
    }
    let name = PersonName::parse("name", input.name)?;
    let email = EmailAddress::parse("email", input.email)?;
    let password = Password::parse("password", input.password, Some(&email))?;
    let company = ProfileText::parse("company", input.company)?;
    let job_title = ProfileText::parse("job_title", input.job_title)?;
    if !input.confirm_age_16_or_over {
        return Err(AppError::new(
            ErrorCode::AgeConfirmationRequired,
            "field `confirm_age_16_or_over`: Meshwork is not for people under 16; confirm you are 16 or over",
        ));
    }
    if !state.config.auth.open_signup && !signup_invited(state, &email).await? {
        return Err(AppError::new(
            ErrorCode::SignupClosed,
            "sign-up on this server is by invitation only: ask a workspace owner to invite your address",
        ));
    }
    let email_index = state.email_index(&email.normalized())?;
    // The hash is computed either way, so the answer's timing does not tell.
    let password_hash = hash_password(state, password.dangerously_as_str().to_string()).await?;
    if let Some(existing) = state.store.user_by_email_index(&email_index).await? {
        return signup_of_existing(state, client, &existing).await;
    }
    let id = UserId::new();
    let now = now_millis();
    let user = UserRow {
        id,
        email_index,
        email_sealed: state.seal_account(id, "email", email.as_str().as_bytes())?,
        name_sealed: state.seal_account(id, "name", name.as_str().as_bytes())?,
        company_sealed: state.seal_account(id, "company", company.as_str().as_bytes())?,
        job_title_sealed: state.seal_account(id, "job_title", job_title.as_str().as_bytes())?,
        password_hash,
        email_verified: false,
        age_confirmed_at: now,
        totp_secret_sealed: None,
        totp_enabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
    };
    match state.store.create_user(&user).await {
        Ok(()) => {}
        // Another sign-up with the same address won the race: as above.
        Err(meshwork_store::StoreError::Conflict("users.email")) => {
            if let Some(existing) = state.store.user_by_email_index(&email_index).await? {
                return signup_of_existing(state, client, &existing).await;
            }
            return Err(meshwork_store::StoreError::Conflict("users.email").into());
        }
        Err(e) => return Err(e.into()),
    }
    audit::account_event(state, client, "account.created", id, json!({})).await?;
    send_verification(state, id, email.as_str()).await?;
    state
        .store
        .remember_device(id, &device_hash(state, id, client)?, now)
        .await?;
    Ok(())
}

/// A sign-up with the address of an existing account: its owner gets a mail (a fresh
/// verification link while unverified), the attempt is audited, nothing else changes.
async fn signup_of_existing(
    state: &AppState,
    client: &ClientInfo,
    existing: &UserRow,
) -> AppResult<()> {
    let email = state.open_account_str(existing.id, "email", &existing.email_sealed)?;
    if existing.email_verified {
        let forgot = format!(
            "{}/forgot-password",
            state.config.public_url.trim_end_matches('/')
        );
        mail::enqueue(state, Mail {
            kind: "signup_existing".into(),
            to: email,
            subject: "You already have a Meshwork account".into(),
            body: format!("Someone (we hope you) tried to sign up to Meshwork with this address, which already has an account. Nothing was changed.\n\nIf it was you, sign in; if you forgot your password, choose a new one at:\n\n{forgot}\n\nIf it was not you, ignore this mail."),
        })
        .await?;
    } else {
        send_verification(state, existing.id, &email).await?;
    }
    audit::account_event(
        state,
        client,
        "account.signup_repeated",
        existing.id,
        json!({}),
    )
    .await
}

/// With sign-up closed, who may still sign up: the first account of a new server, and an
/// address with a pending workspace invitation.
async fn signup_invited(state: &AppState, email: &EmailAddress) -> AppResult<bool> {
    if state.store.user_count().await? == 0 {
        return Ok(true);
    }
    Ok(state
        .store
        .has_pending_invite(&state.email_index(&email.normalized())?, now_millis())
        .await?)
}

/// What a person gives to sign in.
pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: String,
    /// The current 6-digit code, when two-factor authentication is on.
    pub totp_code: Option<&'a str>,
    /// A one-time recovery code, instead of `totp_code`.
    pub recovery_code: Option<&'a str>,
    /// With no code given and the account's security keys registered, answer a challenge for
    /// them ([`SignInStep::SecurityKey`]) instead of `mfa_required`.
    pub offer_security_key: bool,
}

impl std::fmt::Debug for SignIn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").finish_non_exhaustive()
    }
}

/// Where a sign-in stands.
#[derive(Debug)]
pub enum SignInStep {
    /// Signed in: the caller starts a session.
    Done(UserId),
    /// The password was right; one of the account's security keys must now answer this
    /// challenge ([`sign_in_with_security_key`]).
    SecurityKey(crate::security_keys::Challenge),
}

/// Reserves one attempt of the account before a (slow) check of a password, code or key:
/// parallel guesses each take one of the few attempts, and none passes a lock set meanwhile.
/// `None` while the account is locked; else the attempt's number in the run of failures.
async fn reserve_attempt(state: &AppState, user: UserId) -> AppResult<Option<i32>> {
    let auth = &state.config.auth;
    let now = now_millis();
    Ok(state
        .store
        .begin_login_attempt(
            user,
            auth.lockout_threshold as i32,
            now + auth.lockout_minutes as i64 * 60 * 1000,
            now,
        )
        .await?)
}

/// Audits a sign-in refused because the account is locked.
async fn audit_locked_out(state: &AppState, client: &ClientInfo, user: UserId) -> AppResult<()> {
    audit::record(
        state,
        Some(client),
        Event {
            kind: "login.locked_out",
            workspace: None,
            actor: None,
            subject: Some(user),
            details: json!({}),
        },
    )
    .await
}

/// A failed sign-in attempt, `count` of the account's in a row: audited, and on the attempt
/// that reaches the threshold, the lock is audited and its owner told by mail.
async fn sign_in_failed(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRow,
    count: i32,
    reason: &str,
) -> AppResult<()> {
    audit::record(
        state,
        Some(client),
        Event {
            kind: "login.failed",
            workspace: None,
            actor: None,
            subject: Some(user.id),
            details: json!({"reason": reason}),
        },
    )
    .await?;
    if count == state.config.auth.lockout_threshold as i32 {
        audit::record(
            state,
            Some(client),
            Event {
                kind: "account.locked",
                workspace: None,
                actor: None,
                subject: Some(user.id),
                details: json!({"failures": count}),
            },
        )
        .await?;
        let minutes = state.config.auth.lockout_minutes;
        mail::enqueue(state, Mail {
            kind: "account_locked".into(),
            to: state.open_account_str(user.id, "email", &user.email_sealed)?,
            subject: "Your Meshwork account is locked for a while".into(),
            body: format!("After {count} failed sign-ins in a row, your account is locked for {minutes} minutes; sign-ins fail until then, even with the right password.\n\nIf these were not you, someone is guessing your password: once the lock ends, change it, and turn on two-factor authentication."),
        })
        .await?;
    }
    Ok(())
}

/// Checks a sign-in: the per-address rate limit, the lockout (an attempt is reserved before the
/// slow password check), the password, the second factor; mails an alert for a device not seen
/// before; audits every outcome. Answers the user, for the caller to start a session, or the
/// challenge of the account's security keys.
pub async fn sign_in(
    state: &AppState,
    client: &ClientInfo,
    input: SignIn<'_>,
) -> AppResult<SignInStep> {
    if let Some(ip) = client.rate_key() {
        if state.login_limiter.check_key(&ip).is_err() {
            audit::record(
                state,
                Some(client),
                Event {
                    kind: "login.rate_limited",
                    workspace: None,
                    actor: None,
                    subject: None,
                    details: json!({}),
                },
            )
            .await?;
            return Err(AppError::new(
                ErrorCode::RateLimited,
                "too many sign-in attempts from this address; wait a minute and retry",
            ));
        }
    }
    let wrong = || {
        AppError::new(
            ErrorCode::InvalidCredentials,
            "the email or password is wrong",
        )
    };
    let Ok(email) = EmailAddress::parse("email", input.email) else {
        return Err(wrong());
    };
    let Some(user) = state
        .store
        .user_by_email_index(&state.email_index(&email.normalized())?)
        .await?
    else {
        // Same work as a real check, so timing does not reveal which emails have accounts.
        let _ = verify_password(state, input.password, state.dummy_password_hash.clone()).await?;
        audit::record(
            state,
            Some(client),
            Event {
                kind: "login.failed",
                workspace: None,
                actor: None,
                subject: None,
                details: json!({"reason": "unknown email"}),
            },
        )
        .await?;
        return Err(wrong());
    };
    let auth = &state.config.auth;
    let Some(count) = reserve_attempt(state, user.id).await? else {
        audit_locked_out(state, client, user.id).await?;
        // The same answer as a wrong password (security finding 7): a lock must not tell
        // that the address has an account. The owner learned of the lock by mail.
        let _ = verify_password(state, input.password, state.dummy_password_hash.clone()).await?;
        return Err(wrong());
    };
    // ASVS 2.1.7: a password set before the common-password check (or before it grew) is found
    // at sign-in, when it is known to be right.
    let well_known = Password::is_well_known(&input.password);
    // A hash from before the pepper is replaced once the password is known to be right.
    let rehash = (!is_peppered(&user.password_hash))
        .then(|| zeroize::Zeroizing::new(input.password.clone()));
    if !verify_password(state, input.password, user.password_hash.clone()).await? {
        sign_in_failed(state, client, &user, count, "wrong password").await?;
        return Err(wrong());
    }
    if let Some(password) = rehash {
        let hash = hash_password(state, password.to_string()).await?;
        // Only over the hash just checked: a reset or change that landed meanwhile stands.
        state
            .store
            .upgrade_password_hash(user.id, &user.password_hash, &hash)
            .await?;
    }
    let mut factor = None;
    if user.totp_enabled {
        let secret = match &user.totp_secret_sealed {
            Some(s) => state.open_account(user.id, "totp_secret", s)?,
            None => return Err(AppError::internal("TOTP enabled without a secret")),
        };
        match (input.totp_code, input.recovery_code) {
            (Some(code), _) => {
                if !accept_totp_reporting_reuse(state, client, &user, &secret, code, true).await? {
                    sign_in_failed(state, client, &user, count, "wrong TOTP code").await?;
                    return Err(AppError::new(
                        ErrorCode::InvalidMfaCode,
                        "field `totp_code`: the code is wrong or expired",
                    ));
                }
                factor = Some("totp");
            }
            (None, Some(code)) => {
                if !take_recovery_code(state, user.id, code).await? {
                    sign_in_failed(state, client, &user, count, "wrong recovery code").await?;
                    return Err(AppError::new(
                        ErrorCode::InvalidMfaCode,
                        "field `recovery_code`: the code is wrong or already used",
                    ));
                }
                audit::account_event(state, client, "mfa.recovery_code_used", user.id, json!({}))
                    .await?;
                factor = Some("recovery_code");
            }
            (None, None) => {
                // The password was right: this was not a guess, so it does not count.
                state
                    .store
                    .refund_login_attempt(user.id, auth.lockout_threshold as i32)
                    .await?;
                if input.offer_security_key {
                    if let Some(challenge) =
                        crate::security_keys::sign_in_challenge(state, &user, well_known).await?
                    {
                        return Ok(SignInStep::SecurityKey(challenge));
                    }
                }
                return Err(AppError::new(
                    ErrorCode::MfaRequired,
                    "two-factor authentication is on: send `totp_code` (or `recovery_code`)",
                ));
            }
        }
    }
    signed_in(state, client, &user, well_known, factor).await?;
    Ok(SignInStep::Done(user.id))
}

/// The second step of a sign-in with a security key: the key's answer (`credential`, the
/// `PublicKeyCredential` of `navigator.credentials.get` as JSON) to the challenge of
/// [`SignInStep::SecurityKey`], whose `ceremony` token is used up either way. A wrong answer
/// counts toward the lockout like a wrong code.
pub async fn sign_in_with_security_key(
    state: &AppState,
    client: &ClientInfo,
    ceremony: &str,
    credential: &serde_json::Value,
) -> AppResult<UserId> {
    if let Some(ip) = client.rate_key() {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                "too many sign-in attempts from this address; wait a minute and retry",
            ));
        }
    }
    let (user, pending) = crate::security_keys::take_sign_in(state, ceremony).await?;
    let Some(count) = reserve_attempt(state, user.id).await? else {
        audit_locked_out(state, client, user.id).await?;
        return Err(AppError::new(
            ErrorCode::AccountLocked,
            format!(
                "too many failed sign-ins: the account is locked for up to {} minutes",
                state.config.auth.lockout_minutes
            ),
        ));
    };
    use crate::security_keys::Answer;
    match crate::security_keys::check_sign_in(state, &user, &pending, credential).await? {
        Answer::Accepted => {}
        answer => {
            let reason = if answer == Answer::CounterRegressed {
                // A valid signature with a counter that did not move: maybe a cloned key.
                audit::account_event(
                    state,
                    client,
                    "mfa.security_key_counter_regressed",
                    user.id,
                    json!({}),
                )
                .await?;
                "security key counter"
            } else {
                "security key"
            };
            sign_in_failed(state, client, &user, count, reason).await?;
            return Err(AppError::new(
                ErrorCode::InvalidMfaCode,
                "field `credential`: the security key's answer does not check out; sign in again",
            ));
        }
    }
    signed_in(
        state,
        client,
        &user,
        pending.well_known,
        Some("security_key"),
    )
    .await?;
    Ok(user.id)
}

/// The end of every successful sign-in: clears the failure count, mails an alert for a device
/// not seen before and a warning for a leaked password, audits `login.succeeded`.
async fn signed_in(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRow,
    well_known: bool,
    factor: Option<&str>,
) -> AppResult<()> {
    let now = now_millis();
    state.store.reset_login_failures(user.id).await?;
    if state
        .store
        .remember_device(user.id, &device_hash(state, user.id, client)?, now)
        .await?
    {
        let email = state.open_account_str(user.id, "email", &user.email_sealed)?;
        mail::enqueue(state, Mail {
            kind: "new_device".into(),
            to: email,
            subject: "New sign-in to your Meshwork account".into(),
            body: format!(
                "Your account was signed in from a device we had not seen before.\n\nDevice: {}\nAddress: {}\n\nIf this was not you, reset your password and turn on two-factor authentication.",
                if client.user_agent.is_empty() { "unknown" } else { &client.user_agent },
                client.ip.map(|i| i.to_string()).unwrap_or_else(|| "unknown".into())
            ),
        })
        .await?;
        audit::account_event(state, client, "login.new_device", user.id, json!({})).await?;
    }
    if well_known {
        audit::account_event(state, client, "password.well_known", user.id, json!({})).await?;
        mail::enqueue(state, Mail {
            kind: "password_well_known".into(),
            to: state.open_account_str(user.id, "email", &user.email_sealed)?,
            subject: "Change your Meshwork password: it is a commonly leaked one".into(),
            body: "You signed in with a password that is on the lists of the most common leaked passwords, which attackers try first. Choose a new one in Settings, under Password.\n\nThis mail comes at each sign-in until the password is changed.".into(),
        })
        .await?;
    }
    audit::account_event(
        state,
        client,
        "login.succeeded",
        user.id,
        json!({"mfa": user.totp_enabled, "factor": factor}),
    )
    .await
}

/// The blind index of a person's device (user and user agent), for new-device alerts.
pub fn device_hash(state: &AppState, user: UserId, client: &ClientInfo) -> AppResult<[u8; 32]> {
    Ok(state
        .account_key()?
        .blind_index("device", &format!("{user}|{}", client.user_agent))
        .0)
}

// --- two-factor authentication -----------------------------------------------------------------

/// The account of a signed-in person (gone when it was deleted meanwhile).
pub async fn load_user(state: &AppState, id: UserId) -> AppResult<UserRow> {
    state
        .store
        .user(id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::InvalidSession, "the account no longer exists"))
}

/// Re-authentication for sensitive changes: the account's password, given in `field`. Each
/// check counts like a sign-in attempt toward the lockout (security finding 6), so a stolen
/// session cannot guess the password without limit: wrong ones count, the lock refuses every
/// check until it ends, and a right one clears the count. Wrong ones are audited.
pub async fn require_password(
    state: &AppState,
    client: &ClientInfo,
    u: &UserRow,
    password: String,
    field: &str,
) -> AppResult<()> {
    let hash = u.password_hash.clone();
    if recheck(
        state,
        client,
        u,
        field,
        verify_password(state, password, hash),
    )
    .await?
    {
        return Ok(());
    }
    Err(AppError::new(
        ErrorCode::InvalidCredentials,
        format!("field `{field}`: the password is wrong"),
    ))
}

/// Re-authentication with a current TOTP code alone, given in `field`: counted toward the
/// lockout exactly like a password re-check (security finding 15), so a stolen session cannot
/// try codes until one is accepted. A code is accepted once (`accept_totp`).
pub async fn require_totp(
    state: &AppState,
    client: &ClientInfo,
    u: &UserRow,
    secret: &[u8],
    code: &str,
    field: &str,
) -> AppResult<()> {
    if recheck(
        state,
        client,
        u,
        field,
        accept_totp_reporting_reuse(state, client, u, secret, code, false),
    )
    .await?
    {
        return Ok(());
    }
    Err(AppError::new(
        ErrorCode::InvalidMfaCode,
        format!("field `{field}`: the code is wrong or already used"),
    ))
}

/// One re-check of a secret for a signed-in account, as a sign-in attempt: reserves an
/// attempt before the (slow) check so parallel guesses each take one, refuses while the account
/// is locked, clears the count on success, and on failure audits it and, on the attempt that
/// reaches the threshold, locks the account and tells its owner by mail. `Ok(false)` is a
/// wrong answer, already recorded.
async fn recheck(
    state: &AppState,
    client: &ClientInfo,
    u: &UserRow,
    field: &str,
    check: impl std::future::Future<Output = AppResult<bool>>,
) -> AppResult<bool> {
    let auth = &state.config.auth;
    // One allowance per address for sign-ins and re-checks alike (ASVS 2.2.1): a client holding
    // sessions of many accounts cannot test passwords through re-checks faster than it could
    // sign in. The account's own lockout below bounds each account.
    if let Some(ip) = client.rate_key() {
        if state.login_limiter.check_key(&ip).is_err() {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!("field `{field}`: too many password or code checks from this address; wait a minute and retry"),
            ));
        }
    }
    let Some(count) = reserve_attempt(state, u.id).await? else {
        return Err(AppError::new(
            ErrorCode::AccountLocked,
            format!(
                "too many wrong passwords or codes: the account is locked for up to {} minutes",
                auth.lockout_minutes
            ),
        ));
    };
    if check.await? {
        state.store.reset_login_failures(u.id).await?;
        return Ok(true);
    }
    audit::account_event(
        state,
        client,
        "reauth.failed",
        u.id,
        json!({"field": field}),
    )
    .await?;
    if count == auth.lockout_threshold as i32 {
        audit::account_event(
            state,
            client,
            "account.locked",
            u.id,
            json!({"failures": count}),
        )
        .await?;
        mail::enqueue(state, Mail {
            kind: "account_locked".into(),
            to: state.open_account_str(u.id, "email", &u.email_sealed)?,
            subject: "Your Meshwork account is locked for a while".into(),
            body: format!("After {count} wrong passwords or codes in a row, your account is locked for {} minutes.\n\nIf these were not you, someone may be using one of your sessions: once the lock ends, change your password (which signs out every session), and turn on two-factor authentication.", auth.lockout_minutes),
        })
        .await?;
    }
    Ok(false)
}

/// Starts turning on two-factor authentication: a new secret, kept sealed until confirmed.
/// Answers the secret in base32 (to type in) and its `otpauth://` URL (for a QR code).
pub async fn totp_setup(state: &AppState, user: UserId) -> AppResult<(String, String)> {
    let u = load_user(state, user).await?;
    if u.totp_enabled {
        return Err(AppError::new(
            ErrorCode::MfaAlreadyEnabled,
            "two-factor authentication is already on; turn it off first to replace it",
        ));
    }
    let secret = new_totp_secret();
    let email = state.open_account_str(u.id, "email", &u.email_sealed)?;
    let url = totp(&secret, &email)?.get_url();
    state
        .store
        .set_totp_secret(
            u.id,
            Some(&state.seal_account(u.id, "totp_secret", &secret)?),
        )
        .await?;
    Ok((totp_base32(&secret), url))
}

/// The two-factor key set up but not confirmed yet, if any: its base32 text and `otpauth://`
/// URL (for a page that shows the set-up again beside a wrong code).
pub async fn totp_pending(
    state: &AppState,
    user: UserId,
) -> AppResult<(Option<String>, Option<String>)> {
    let u = load_user(state, user).await?;
    match (&u.totp_secret_sealed, u.totp_enabled) {
        (Some(sealed), false) => {
            let secret = state.open_account(u.id, "totp_secret", sealed)?;
            let email = state.open_account_str(u.id, "email", &u.email_sealed)?;
            let url = totp(&secret, &email)?.get_url();
            Ok((Some(totp_base32(&secret)), Some(url)))
        }
        _ => Ok((None, None)),
    }
}

/// Confirms the secret with a current code (and the password: a stolen session alone cannot
/// lock a person out with a second factor); turns two-factor on and answers the recovery codes,
/// shown once.
pub async fn totp_confirm(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    code: &str,
    password: String,
) -> AppResult<Vec<String>> {
    let u = load_user(state, user).await?;
    require_password(state, client, &u, password, "password").await?;
    if u.totp_enabled {
        return Err(AppError::new(
            ErrorCode::MfaAlreadyEnabled,
            "two-factor authentication is already on",
        ));
    }
    let Some(sealed) = &u.totp_secret_sealed else {
        return Err(AppError::new(
            ErrorCode::MfaNotEnabled,
            "start with POST /api/v1/me/mfa/totp/setup",
        ));
    };
    let secret = state.open_account(u.id, "totp_secret", sealed)?;
    if !accept_totp(state, u.id, &secret, code).await? {
        return Err(AppError::new(
            ErrorCode::InvalidMfaCode,
            "field `code`: the code is wrong or expired",
        ));
    }
    let (codes, hashes) = recovery_codes_with_hashes(state)?;
    state.store.enable_totp(u.id, &hashes).await?;
    audit::account_event(state, client, "mfa.enabled", u.id, json!({})).await?;
    notify_security_change(
        state,
        "mfa_changed",
        &state.open_account_str(u.id, "email", &u.email_sealed)?,
        "Two-factor authentication was turned on for your Meshwork account.",
    )
    .await?;
    Ok(codes)
}

/// Uses up one of the account's recovery codes; false when it is not one of them (or was used).
async fn take_recovery_code(state: &AppState, user: UserId, code: &str) -> AppResult<bool> {
    // Codes from before keyed hashing (plain SHA-256, about 50 bits) are no longer accepted
    // (OWASP ASVS 2.6.3); their holders make new ones in their settings.
    Ok(state
        .store
        .take_recovery_code(user, &recovery_code_hash(state, code)?)
        .await?)
}

/// The password and a second factor, for a change to two-factor authentication itself. The
/// factor is a current TOTP code, or one of the account's recovery codes, used up (OWASP ASVS
/// 2.5.7: a person who lost their authenticator can still turn it off or replace it); it is
/// looked at only when the password is right, so a typo never burns a recovery code. Both are
/// one attempt toward the lockout, like a sign-in (security finding 23: the password was
/// checked, and counted, apart, and a right password cleared the count, so a stolen session
/// that knew the password could try codes without end).
async fn password_and_second_factor(
    state: &AppState,
    client: &ClientInfo,
    u: &UserRow,
    secret: &[u8],
    password: String,
    code: &str,
) -> AppResult<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let code = code.trim();
    let totp_shaped = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let password_right = AtomicBool::new(false);
    let check = async {
        if !verify_password(state, password, u.password_hash.clone()).await? {
            return Ok(false);
        }
        password_right.store(true, Ordering::Relaxed);
        if totp_shaped {
            accept_totp_reporting_reuse(state, client, u, secret, code, false).await
        } else {
            take_recovery_code(state, u.id, code).await
        }
    };
    if !recheck(state, client, u, "password_and_code", check).await? {
        return Err(if password_right.load(Ordering::Relaxed) {
            AppError::new(
                ErrorCode::InvalidMfaCode,
                "field `code`: the code is wrong, expired or already used",
            )
        } else {
            AppError::new(
                ErrorCode::InvalidCredentials,
                "field `password`: the password is wrong",
            )
        });
    }
    if !totp_shaped {
        audit::account_event(state, client, "mfa.recovery_code_used", u.id, json!({})).await?;
    }
    Ok(())
}

/// The account's TOTP secret, when two-factor authentication is on.
fn enabled_totp_secret(state: &AppState, u: &UserRow) -> AppResult<Vec<u8>> {
    match (u.totp_enabled, &u.totp_secret_sealed) {
        (true, Some(sealed)) => state.open_account(u.id, "totp_secret", sealed),
        _ => Err(AppError::new(
            ErrorCode::MfaNotEnabled,
            "two-factor authentication is not on",
        )),
    }
}

/// Turns two-factor authentication off, with the password and a current code or a recovery
/// code.
pub async fn totp_disable(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    code: &str,
    password: String,
) -> AppResult<()> {
    let u = load_user(state, user).await?;
    let secret = enabled_totp_secret(state, &u)?;
    password_and_second_factor(state, client, &u, &secret, password, code).await?;
    state.store.set_totp_secret(u.id, None).await?;
    audit::account_event(state, client, "mfa.disabled", u.id, json!({})).await?;
    notify_security_change(
        state,
        "mfa_changed",
        &state.open_account_str(u.id, "email", &u.email_sealed)?,
        "Two-factor authentication was turned off for your Meshwork account.",
    )
    .await?;
    Ok(())
}

/// Ten new recovery codes for an account with two-factor authentication on, with the password
/// and a current code or a recovery code; the old codes stop working (ASVS 2.5.7). The codes are
/// answered this once and stored as keyed hashes. Audited; the holder is mailed.
pub async fn replace_recovery_codes(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    code: &str,
    password: String,
) -> AppResult<Vec<String>> {
    let u = load_user(state, user).await?;
    let secret = enabled_totp_secret(state, &u)?;
    password_and_second_factor(state, client, &u, &secret, password, code).await?;
    let sealed = u.totp_secret_sealed.as_deref().unwrap_or_default();
    let (codes, hashes) = recovery_codes_with_hashes(state)?;
    if !state
        .store
        .replace_recovery_codes(u.id, sealed, &hashes)
        .await?
    {
        return Err(AppError::new(
            ErrorCode::MfaNotEnabled,
            "two-factor authentication was turned off, or set up anew, meanwhile; look at your settings",
        ));
    }
    audit::account_event(
        state,
        client,
        "mfa.recovery_codes_replaced",
        u.id,
        json!({}),
    )
    .await?;
    notify_security_change(
        state,
        "mfa_changed",
        &state.open_account_str(u.id, "email", &u.email_sealed)?,
        "New recovery codes were made for your Meshwork account; the old ones no longer work.",
    )
    .await?;
    Ok(codes)
}

// --- the profile, its picture and the password ----------------------------------------------------

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkspaceMembership {
    pub id: uuid::Uuid,
    pub name: String,
    pub role: String,
}

/// Everything Meshwork stores about you (pm09), except secrets, which are never shown.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub id: uuid::Uuid,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub company: String,
    pub job_title: String,
    pub has_picture: bool,
    pub mfa_enabled: bool,
    pub recovery_codes_left: i64,
    /// When you confirmed being 16 or over (Unix ms).
    pub age_confirmed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub workspaces: Vec<WorkspaceMembership>,
}

/// Everything stored about `user` (pm09), except secrets, which are never shown.
pub async fn profile(state: &AppState, user: UserId) -> AppResult<Profile> {
    let u = load_user(state, user).await?;
    let mut workspaces = Vec::new();
    for (ws, role) in state.store.workspaces_of(u.id).await? {
        if !state.workspace_readable(ws.id) {
            continue;
        }
        let name = state.open_workspace(ws.id, &ws.id.to_string(), "name", &ws.name_sealed)?;
        workspaces.push(WorkspaceMembership {
            id: ws.id.as_uuid(),
            name,
            role: role.to_string(),
        });
    }
    Ok(Profile {
        id: u.id.as_uuid(),
        name: state.open_account_str(u.id, "name", &u.name_sealed)?,
        email: state.open_account_str(u.id, "email", &u.email_sealed)?,
        email_verified: u.email_verified,
        company: state.open_account_str(u.id, "company", &u.company_sealed)?,
        job_title: state.open_account_str(u.id, "job_title", &u.job_title_sealed)?,
        has_picture: state.store.picture(u.id).await?.is_some(),
        mfa_enabled: u.totp_enabled,
        recovery_codes_left: state.store.recovery_codes_left(u.id).await?,
        age_confirmed_at: u.age_confirmed_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        workspaces,
    })
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    /// Changing the email needs `current_password`, and the new address must be verified.
    pub email: Option<String>,
    /// Your password: required when `email` changes (a stolen session alone cannot move the
    /// account to another address).
    pub current_password: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
}

/// Edits a profile; fields left out stay. A new email needs the current password and does not
/// change the account at once: a link goes to the new address, and opening it moves the
/// account there (and voids links sent to the old one). If another account has the address,
/// its owner is told instead, and the answer is the same (security finding 7). Audited.
pub async fn update_profile(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    req: &ProfilePatch,
) -> AppResult<()> {
    let u = load_user(state, user).await?;
    let id = u.id;
    // Validate everything before writing anything.
    let name = req
        .name
        .as_deref()
        .map(|n| PersonName::parse("name", n))
        .transpose()?;
    let email = req
        .email
        .as_deref()
        .map(|e| EmailAddress::parse("email", e))
        .transpose()?;
    let company = req
        .company
        .as_deref()
        .map(|c| ProfileText::parse("company", c))
        .transpose()?;
    let job_title = req
        .job_title
        .as_deref()
        .map(|j| ProfileText::parse("job_title", j))
        .transpose()?;
    let old_email = state.open_account_str(id, "email", &u.email_sealed)?;
    let email_changed = email
        .as_ref()
        .is_some_and(|e| e.normalized() != old_email.to_lowercase());
    if email_changed {
        let Some(password) = req.current_password.clone() else {
            return Err(AppError::new(
                ErrorCode::InvalidCredentials,
                "field `current_password`: your password is needed to change your email",
            ));
        };
        require_password(state, client, &u, password, "current_password").await?;
    }
    let update = ProfileUpdate {
        email_index: u.email_index,
        email_sealed: u.email_sealed.clone(),
        name_sealed: match &name {
            Some(n) => state.seal_account(id, "name", n.as_str().as_bytes())?,
            None => u.name_sealed.clone(),
        },
        company_sealed: match &company {
            Some(c) => state.seal_account(id, "company", c.as_str().as_bytes())?,
            None => u.company_sealed.clone(),
        },
        job_title_sealed: match &job_title {
            Some(j) => state.seal_account(id, "job_title", j.as_str().as_bytes())?,
            None => u.job_title_sealed.clone(),
        },
        email_verified: u.email_verified,
    };
    state
        .store
        .update_profile(id, &update, now_millis())
        .await?;
    audit::account_event(
        state,
        client,
        "account.profile_updated",
        id,
        json!({"email_change_requested": email_changed}),
    )
    .await?;
    if let (true, Some(e)) = (email_changed, &email) {
        let taken = state
            .store
            .user_by_email_index(&state.email_index(&e.normalized())?)
            .await?;
        notify_security_change(
            state,
            "email_changed",
            &old_email,
            &format!("A move of your Meshwork account to the address {} was asked for. It takes effect when the link sent there is opened.", e.as_str()),
        )
        .await?;
        match taken {
            None => send_email_link(state, id, e.as_str(), true).await?,
            Some(other) => {
                mail::enqueue(state, Mail {
                    kind: "email_change_refused".into(),
                    to: e.as_str().into(),
                    subject: "Your Meshwork address was not moved".into(),
                    body: "Someone asked to move another Meshwork account to this address, which already has an account. Nothing was changed.\n\nIf that was you, sign in with this address instead. If not, ignore this mail.".into(),
                })
                .await?;
                audit::account_event(
                    state,
                    client,
                    "account.email_change_refused",
                    other.id,
                    json!({}),
                )
                .await?;
            }
        }
    }
    Ok(())
}

fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Sets the profile picture (PNG, JPEG, GIF or WebP, up to 2 MiB), sealed.
pub async fn set_picture(state: &AppState, user: UserId, body: &[u8]) -> AppResult<()> {
    if body.len() > MAX_PICTURE_BYTES {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            "the picture is larger than 2 MiB",
        ));
    }
    let Some(content_type) = sniff_image(body) else {
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "the picture must be a PNG, JPEG, GIF or WebP image",
        ));
    };
    let data_sealed = state.seal_account(user, "picture", body)?;
    state
        .store
        .set_picture(
            user,
            Some(&PictureRow {
                content_type: content_type.into(),
                data_sealed,
            }),
        )
        .await?;
    Ok(())
}

/// Removes the profile picture, if one is set.
pub async fn remove_picture(state: &AppState, user: UserId) -> AppResult<()> {
    state.store.set_picture(user, None).await?;
    Ok(())
}

/// The profile picture: its content type and bytes.
pub async fn picture(state: &AppState, user: UserId) -> AppResult<(String, Vec<u8>)> {
    let Some(p) = state.store.picture(user).await? else {
        return Err(AppError::new(
            ErrorCode::PictureNotFound,
            "no profile picture is set",
        ));
    };
    let bytes = state.open_account(user, "picture", &p.data_sealed)?;
    Ok((p.content_type, bytes))
}

/// Changes the password (the current one is checked); every session is signed out. Audited.
pub async fn change_password(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    current_password: String,
    new_password: &str,
) -> AppResult<()> {
    let u = load_user(state, user).await?;
    let email = EmailAddress::parse(
        "email",
        &state.open_account_str(u.id, "email", &u.email_sealed)?,
    )?;
    let new = Password::parse("new_password", new_password, Some(&email))?;
    require_password(state, client, &u, current_password, "current_password").await?;
    let hash = hash_password(state, new.dangerously_as_str().to_string()).await?;
    state
        .store
        .set_password_hash(u.id, &hash, now_millis())
        .await?;
    state.store.delete_user_sessions(u.id).await?;
    void_links(state, u.id).await?;
    audit::account_event(state, client, "account.password_changed", u.id, json!({})).await?;
    notify_security_change(
        state,
        "password_changed",
        email.as_str(),
        "The password of your Meshwork account was changed, and every session was signed out.",
    )
    .await?;
    Ok(())
}

// --- sessions ------------------------------------------------------------------------------------

/// A session just started: the token goes in the cookie, only its hash is stored.
pub struct NewSession {
    pub token: String,
    pub hash: [u8; 32],
    /// Until the session's absolute end.
    pub max_age_secs: i64,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").finish_non_exhaustive()
    }
}

/// How often a session's last use is written (the idle timeout is counted from it).
const TOUCH_GAP_MS: i64 = 60_000;

/// Starts a session for `user`, remembering where it started (sealed) for the list of sessions.
pub async fn start_session(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
) -> AppResult<NewSession> {
    let token = random_token();
    let hash = token_hash(&token);
    let now = now_millis();
    let ttl_ms = state.config.auth.session_ttl_hours as i64 * 3600 * 1000;
    let where_from = json!({
        "user_agent": client.user_agent,
        "ip": client.ip.map(|i| i.to_string()),
    });
    state
        .store
        .create_session(&SessionRow {
            token_hash: hash,
            user_id: user,
            created_at: now,
            expires_at: now + ttl_ms,
            last_seen_at: now,
            client_sealed: Some(state.seal_account(
                user,
                "session_client",
                where_from.to_string().as_bytes(),
            )?),
        })
        .await?;
    // Signing in is what keeps an account from being deleted as inactive (mm13).
    state.store.set_user_active(user, now).await?;
    Ok(NewSession {
        token,
        hash,
        max_age_secs: ttl_ms / 1000,
    })
}

/// The session whose token hashes to `hash`, if it is live: before its absolute end
/// (`auth.session_ttl_hours`) and used within the idle timeout (`auth.session_idle_hours`;
/// security finding 11). A live session's last use is recorded (at most once a minute).
pub async fn live_session(state: &AppState, hash: &[u8; 32]) -> AppResult<Option<SessionRow>> {
    let now = now_millis();
    let idle_ms = state.config.auth.session_idle_hours as i64 * 3600 * 1000;
    let Some(s) = state.store.session(hash).await? else {
        return Ok(None);
    };
    if s.expires_at <= now || s.last_seen_at + idle_ms <= now {
        // Gone for good: the row goes now rather than waiting for housekeeping.
        state.store.delete_session(hash).await?;
        return Ok(None);
    }
    if s.last_seen_at + TOUCH_GAP_MS < now {
        state.store.touch_session(hash, now, TOUCH_GAP_MS).await?;
    }
    Ok(Some(s))
}

/// A session's public id: the first 8 bytes of its token's hash, in hex (neither the token nor
/// enough of its hash to matter).
pub fn session_id(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..8])
}

/// One of a person's sessions, as they see it in their settings.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub id: String,
    /// The session this request came with.
    pub current: bool,
    pub created_at: i64,
    /// Last use, to the minute.
    pub last_seen_at: i64,
    pub expires_at: i64,
    /// The browser or program that signed in, as it named itself.
    pub user_agent: String,
    /// The address it signed in from.
    pub ip: Option<String>,
}

/// The person's live sessions, newest first.
pub async fn sessions(
    state: &AppState,
    user: UserId,
    current: &[u8; 32],
) -> AppResult<Vec<SessionView>> {
    let now = now_millis();
    let idle_ms = state.config.auth.session_idle_hours as i64 * 3600 * 1000;
    let mut out = Vec::new();
    for s in state.store.user_sessions(user).await? {
        if s.expires_at <= now || s.last_seen_at + idle_ms <= now {
            continue;
        }
        let client: serde_json::Value = match &s.client_sealed {
            Some(sealed) => {
                serde_json::from_slice(&state.open_account(user, "session_client", sealed)?)
                    .unwrap_or_default()
            }
            None => serde_json::Value::Null,
        };
        out.push(SessionView {
            id: session_id(&s.token_hash),
            current: &s.token_hash == current,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            user_agent: client["user_agent"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            ip: client["ip"].as_str().map(str::to_string),
        });
    }
    Ok(out)
}

/// Ends the person's session with public id `id`, from their session `current`, which must be
/// freshly authenticated (ASVS 3.3.4: a stolen session cannot sign its owner out). Audited.
pub async fn end_session(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    current: &[u8; 32],
    id: &str,
) -> AppResult<()> {
    crate::rights::require_fresh_actor(
        state,
        &Actor::User {
            id: user,
            session_hash: *current,
        },
        "signing out a session",
    )
    .await?;
    let Some(s) = state
        .store
        .user_sessions(user)
        .await?
        .into_iter()
        .find(|s| session_id(&s.token_hash) == id)
    else {
        return Err(AppError::new(
            ErrorCode::SessionNotFound,
            "no session of yours has this id",
        ));
    };
    state.store.delete_session(&s.token_hash).await?;
    audit::account_event(state, client, "session.ended", user, json!({"session": id})).await
}

/// Signs the person out everywhere but here; answers how many sessions ended. The session
/// must be freshly authenticated (ASVS 3.3.4). Audited.
pub async fn end_other_sessions(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    current: &[u8; 32],
) -> AppResult<usize> {
    crate::rights::require_fresh_actor(
        state,
        &Actor::User {
            id: user,
            session_hash: *current,
        },
        "signing out your other sessions",
    )
    .await?;
    let mut ended = 0;
    for s in state.store.user_sessions(user).await? {
        if &s.token_hash != current {
            state.store.delete_session(&s.token_hash).await?;
            ended += 1;
        }
    }
    audit::account_event(
        state,
        client,
        "session.ended_elsewhere",
        user,
        json!({"sessions": ended}),
    )
    .await?;
    Ok(ended)
}

/// Tells the person by mail of a change to how they sign in (ASVS 2.2.3), at their address.
pub(crate) async fn notify_account(
    state: &AppState,
    user: UserId,
    kind: &str,
    what: &str,
) -> AppResult<()> {
    let u = load_user(state, user).await?;
    let to = state.open_account_str(user, "email", &u.email_sealed)?;
    notify_security_change(state, kind, &to, what).await
}

/// Tells the person by mail of a change to how they sign in (ASVS 2.2.3), at `to`.
async fn notify_security_change(
    state: &AppState,
    kind: &str,
    to: &str,
    what: &str,
) -> AppResult<()> {
    mail::enqueue(state, Mail {
        kind: kind.into(),
        to: to.into(),
        subject: "A security setting of your Meshwork account changed".into(),
        body: format!("{what}\n\nIf this was you, nothing more is needed. If it was not, reset your password now (which signs out every session) and turn on two-factor authentication."),
    })
    .await
}

/// Signs out one session. Audited.
pub async fn sign_out(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    session_hash: &[u8; 32],
) -> AppResult<()> {
    state.store.delete_session(session_hash).await?;
    audit::account_event(state, client, "logout", user, json!({})).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let pepper = [7u8; 32];
        let h = hash_password_blocking(&pepper, "correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct"));
        assert!(is_peppered(&h));
        assert!(verify_password_blocking(&pepper, b"correct horse battery", &h).unwrap());
        assert!(!verify_password_blocking(&pepper, b"wrong", &h).unwrap());
    }

    /// ASVS 2.4.5: a hash made with the pepper cannot be checked without it, so a copy of the
    /// database alone (with the hashes) cannot test a guess; hashes from before the pepper still
    /// verify, without one.
    #[test]
    fn asvs_2_4_5_a_peppered_hash_needs_the_pepper() {
        let h = hash_password_blocking(&[7u8; 32], "correct horse battery").unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_err());
        assert!(!verify_password_blocking(&[8u8; 32], b"correct horse battery", &h).unwrap());
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(!is_peppered(&old));
        assert!(verify_password_blocking(&[7u8; 32], b"correct horse battery", &old).unwrap());
        assert!(!verify_password_blocking(&[7u8; 32], b"wrong", &old).unwrap());
    }

    #[test]
    fn totp_codes_check_and_reject() {
        let secret = new_totp_secret();
        let now = totp(&secret, "a").unwrap().generate_current().unwrap();
        assert!(check_totp(&secret, &now).unwrap().is_some());
        assert!(check_totp(&secret, "12345").unwrap().is_none());
        assert!(check_totp(&secret, "abcdef").unwrap().is_none());
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut d = codes.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 10);
        assert_eq!(
            normalize_recovery_code(&codes[0]),
            normalize_recovery_code(&codes[0].to_uppercase().replace('-', ""))
        );
        for c in &codes {
            assert_eq!(c.len(), 29, "{c}");
            assert_eq!(c.matches('-').count(), 5, "{c}");
            // OWASP ASVS 2.6.2: at least 112 bits.
            let bits = RECOVERY_CODE_CHARS as f64 * (RECOVERY_ALPHABET.len() as f64).log2();
            assert!(bits >= 112.0, "{bits} bits");
        }
    }

    /// Security finding 8: every letter of the alphabet is drawn equally often (a modulo draw
    /// over bytes made the first 8 letters 1/8 likelier). 10 × 24 × 2,000 = 480,000 letters,
    /// about 15,484 each; a chi-square over 30 degrees of freedom stays far below 80 for a
    /// uniform draw (p < 10^-5), while the biased draw scored about 670 (on codes half as long).
    #[test]
    fn recovery_codes_are_drawn_without_bias() {
        let mut counts = [0u64; 31];
        for _ in 0..2_000 {
            for code in new_recovery_codes() {
                for c in code.bytes().filter(|c| *c != b'-') {
                    let i = RECOVERY_ALPHABET.iter().position(|a| *a == c).unwrap();
                    counts[i] += 1;
                }
            }
        }
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / 31.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 80.0, "chi-square {chi2:.1}: {counts:?}");
    }
}
