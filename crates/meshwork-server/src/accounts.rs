//! Password hashing (argon2id), TOTP and recovery codes: the account security primitives, kept
//! apart from HTTP so they are easy to test and to review.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
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
pub async fn hash_password(password: String) -> ApiResult<String> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

pub async fn verify_password(password: String, hash: String) -> ApiResult<bool> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::internal(format!("stored password hash: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(ApiError::internal)?
}

pub const TOTP_ISSUER: &str = "Meshwork";

pub fn totp(secret: &[u8], account: &str) -> ApiResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some(TOTP_ISSUER.into()),
        account.into(),
    )
    .map_err(|e| ApiError::internal(format!("TOTP set-up: {e}")))
}

pub fn new_totp_secret() -> Vec<u8> {
    meshwork_keyring::random_bytes::<20>().to_vec()
}

pub fn totp_base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The 30-second step whose code `code` is, if it is valid now (one step of clock skew allowed
/// either way). Callers must also consume the step (`accept_totp`) so a code works once.
pub fn check_totp(secret: &[u8], code: &str) -> ApiResult<Option<u64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret, "check")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(ApiError::internal)?
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
) -> ApiResult<bool> {
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
