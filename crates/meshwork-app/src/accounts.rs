//! Accounts: password hashing (argon2id), TOTP and recovery codes, and the services of email
//! links (verification and password resets, single-use and expiring).

use crate::actor::ClientInfo;
use crate::audit;
use crate::error::{AppError, AppResult};
use crate::mail::{self, Mail};
use crate::state::{now_millis, random_token, token_hash, AppState};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use meshwork_domain::{EmailAddress, ErrorCode, Password, UserId};
use meshwork_store::TokenRow;
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};

/// argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1: OWASP's recommended minimum).
/// The PHC string records the parameters, so they can be raised later without breaking old hashes.
pub fn hash_password_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Hashes off the async threads: argon2 is deliberately slow.
pub async fn hash_password(password: String) -> AppResult<String> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

pub async fn verify_password(password: String, hash: String) -> AppResult<bool> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| AppError::internal(format!("stored password hash: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
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
    match check_totp(secret, code)? {
        Some(step) => Ok(state.store.use_totp_step(user, step as i64).await?),
        None => Ok(false),
    }
}

/// Ten one-time recovery codes, `xxxxx-xxxxx` from an unambiguous alphabet (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let bytes = meshwork_keyring::random_bytes::<10>();
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// Recovery codes are compared without case or dashes, hashed like every other token.
pub fn recovery_code_hash(code: &str) -> [u8; 32] {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::state::token_hash(&norm)
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

/// Queues the mail with a new single-use verification link for `email`.
pub async fn send_verification(state: &AppState, user: UserId, email: &str) -> AppResult<()> {
    let token = random_token();
    state
        .store
        .create_token(&TokenRow {
            hash: token_hash(&token),
            kind: "verify_email".into(),
            user_id: user,
            expires_at: now_millis() + VERIFY_TTL_MS,
        })
        .await?;
    let link = link(state, "/verify-email", &token);
    mail::enqueue(state, Mail {
        kind: "verify_email".into(),
        to: email.into(),
        subject: "Confirm your email address for Meshwork".into(),
        body: format!("Confirm this address by opening:\n\n{link}\n\nThe link works once and expires in 24 hours. If you did not sign up, ignore this mail."),
    })
    .await
}

/// Confirms an email address with the token of a verification link (once).
pub async fn verify_email(state: &AppState, client: &ClientInfo, token: &str) -> AppResult<UserId> {
    let Some(user) = state
        .store
        .take_token("verify_email", &token_hash(token), now_millis())
        .await?
    else {
        return Err(invalid_link());
    };
    state.store.set_email_verified(user, now_millis()).await?;
    audit::account_event(state, client, "account.email_verified", user, json!({})).await?;
    Ok(user)
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
/// whether there is (the caller answers the same either way).
pub async fn request_password_reset(
    state: &AppState,
    client: &ClientInfo,
    email: &EmailAddress,
) -> AppResult<()> {
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
        })
        .await?;
    let link = link(state, "/reset-password", &token);
    mail::enqueue(state, Mail {
        kind: "password_reset".into(),
        to: state.open_account_str(user.id, "email", &user.email_sealed)?,
        subject: "Reset your Meshwork password".into(),
        body: format!("Choose a new password here:\n\n{link}\n\nThe link works once and expires in 1 hour. If you did not ask for this, ignore this mail."),
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

/// Sets a new password with the token of a reset link (once); every session is signed out.
pub async fn reset_password(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    new_password: &str,
) -> AppResult<UserId> {
    // Check the password before taking the single-use token, so a weak password does not burn it.
    let weak_check = Password::parse("new_password", new_password, None)?;
    let Some(user) = state
        .store
        .take_token("password_reset", &token_hash(token), now_millis())
        .await?
    else {
        return Err(invalid_link());
    };
    let hash = hash_password(weak_check.dangerously_as_str().to_string()).await?;
    state
        .store
        .set_password_hash(user, &hash, now_millis())
        .await?;
    state.store.delete_user_sessions(user).await?;
    audit::account_event(state, client, "account.password_reset", user, json!({})).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password_blocking("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
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
            recovery_code_hash(&codes[0]),
            recovery_code_hash(&codes[0].to_uppercase().replace('-', ""))
        );
    }
}
