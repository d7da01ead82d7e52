//! WebAuthn security keys, a second factor beside the authenticator app (OWASP ASVS 2.3.2):
//! registering a key, listing and removing an account's keys, and the second step of a sign-in
//! with one. The protocol is webauthn-rs's (the kanidm project's), with its "security key"
//! policy: a key is a second factor after the password, never a sign-in by itself.
//!
//! A ceremony's state (the challenge and what the key must prove) is kept on the server: sealed
//! with the account key in a single-use token that expires after 5 minutes, so a challenge is
//! answered once, by the account it was made for, and any server of a deployment can finish a
//! ceremony another one started. The browser holds only the token.
//!
//! Keys exist only while two-factor authentication with an authenticator app is on: the app
//! and its recovery codes stay the way back in when a key is lost, and turning two-factor
//! authentication off removes the keys with them (`Store::set_totp_secret`).

use crate::audit;
use crate::audit::ClientInfo;
use crate::error::{AppError, AppResult};
use crate::state::{now_millis, random_token, token_hash, AppState};
use meshwork_domain::{ErrorCode, UserId};
use meshwork_store::{SecurityKeyRow, TokenRow, UserRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use webauthn_rs::prelude::{
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey, SecurityKeyAuthentication,
    SecurityKeyRegistration, Url, Webauthn, WebauthnBuilder,
};

/// How long a ceremony may take, from its challenge to the key's answer.
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// At most this many keys per account.
pub const MAX_KEYS: usize = 10;
/// The longest name a key may be given, in characters.
pub const MAX_NAME_CHARS: usize = 64;

const REGISTER: &str = "webauthn_register";
const SIGN_IN: &str = "webauthn_sign_in";

/// A challenge for the browser: `options` go to `navigator.credentials.create` (registration)
/// or `.get` (sign-in) as they are, and the key's answer comes back with `ceremony`.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// The ceremony's single-use token, valid for 5 minutes.
    pub ceremony: String,
    /// `{"publicKey": …}`: WebAuthn's creation or request options, binary fields in base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge").finish_non_exhaustive()
    }
}

/// A registered key, as its owner sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub id: uuid::Uuid,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What is sealed in a key's row.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    name: String,
    key: SecurityKey,
}

/// What a registration ceremony carries.
#[derive(Serialize, Deserialize)]
struct PendingRegistration {
    name: String,
    state: SecurityKeyRegistration,
}

/// What a sign-in ceremony carries: the authentication state, and what the first step learnt
/// for the end of the sign-in.
#[derive(Serialize, Deserialize)]
pub(crate) struct PendingSignIn {
    state: SecurityKeyAuthentication,
    /// The password is on the lists of leaked ones (`accounts::sign_in` mails about it).
    pub(crate) well_known: bool,
}

/// The relying party: this server, as `public_url` names it. WebAuthn binds every key to a
/// domain name, so a server named by an IP address cannot use keys (browsers refuse them too).
fn webauthn(state: &AppState) -> AppResult<&Webauthn> {
    if let Some(w) = state.webauthn.get() {
        return Ok(w);
    }
    let public = state.config.public_url.trim_end_matches('/');
    let unavailable = || {
        AppError::new(
            ErrorCode::SecurityKeysUnavailable,
            format!("security keys need `public_url` to name this server by a domain name (it is {public}); set it to the address people open, such as https://crm.example.com"),
        )
    };
    let origin = Url::parse(public).map_err(|_| unavailable())?;
    let rp_id = origin.domain().ok_or_else(unavailable)?.to_string();
    let w = WebauthnBuilder::new(&rp_id, &origin)
        .map_err(|_| unavailable())?
        .rp_name("Meshwork")
        .build()
        .map_err(|_| unavailable())?;
    Ok(state.webauthn.get_or_init(|| w))
}

/// Whether this server can use security keys: `public_url` names it by a domain name.
pub fn available(state: &AppState) -> bool {
    webauthn(state).is_ok()
}

fn seal_json<T: Serialize>(
    state: &AppState,
    user: UserId,
    field: &str,
    v: &T,
) -> AppResult<Vec<u8>> {
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(v).map_err(|e| AppError::internal(format!("sealing {field}: {e}")))?,
    );
    state.seal_account(user, field, &bytes)
}

fn open_json<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    user: UserId,
    field: &str,
    sealed: &[u8],
) -> AppResult<T> {
    let bytes = zeroize::Zeroizing::new(state.open_account(user, field, sealed)?);
    serde_json::from_slice(&bytes).map_err(|e| AppError::internal(format!("opening {field}: {e}")))
}

fn key_field(id: uuid::Uuid) -> String {
    format!("security_key/{id}")
}

/// The blind index of a credential id: a credential is registered to one account at most.
fn credential_index(state: &AppState, id: &[u8]) -> AppResult<[u8; 32]> {
    Ok(state
        .account_key()?
        .blind_index("webauthn_credential", &hex::encode(id))
        .0)
}

/// Starts a ceremony: seals its state in a single-use token.
async fn begin(
    state: &AppState,
    user: UserId,
    kind: &str,
    payload: Vec<u8>,
    options: serde_json::Value,
) -> AppResult<Challenge> {
    let ceremony = random_token();
    state
        .store
        .create_token(&TokenRow {
            hash: token_hash(&ceremony),
            kind: kind.into(),
            user_id: user,
            expires_at: now_millis() + CEREMONY_TTL_MS,
            email_index: None,
            email_sealed: None,
            payload_sealed: Some(payload),
        })
        .await?;
    Ok(Challenge { ceremony, options })
}

/// Takes a ceremony's token (once), or says it is unknown, used or expired.
async fn take(state: &AppState, kind: &str, ceremony: &str) -> AppResult<TokenRow> {
    state
        .store
        .take_token(kind, &token_hash(ceremony.trim()), now_millis())
        .await?
        .filter(|t| t.payload_sealed.is_some())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidToken,
                "field `ceremony`: unknown, already used or older than 5 minutes; start again",
            )
        })
}

fn keys_of(state: &AppState, rows: &[SecurityKeyRow]) -> AppResult<Vec<StoredKey>> {
    rows.iter()
        .map(|r| open_json(state, r.user_id, &key_field(r.id), &r.key_sealed))
        .collect()
}

/// The account's keys.
pub async fn list(state: &AppState, user: UserId) -> AppResult<Vec<KeyInfo>> {
    let rows = state.store.security_keys(user).await?;
    let keys = keys_of(state, &rows)?;
    Ok(rows
        .iter()
        .zip(keys)
        .map(|(r, k)| KeyInfo {
            id: r.id,
            name: k.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
        .collect())
}

/// Whether the account has a key (sign-in offers it).
pub async fn has_keys(state: &AppState, user: UserId) -> AppResult<bool> {
    Ok(!state.store.security_keys(user).await?.is_empty())
}

fn valid_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    let problem = if name.is_empty() {
        Some("give the key a name, such as the one printed on it".to_string())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!(
            "a key's name has at most {MAX_NAME_CHARS} characters"
        ))
    } else if name.chars().any(char::is_control) {
        Some("a key's name cannot hold control characters".into())
    } else {
        None
    };
    match problem {
        Some(p) => Err(AppError::new(
            ErrorCode::InvalidField,
            format!("field `name`: {p}"),
        )),
        None => Ok(name.to_string()),
    }
}

/// Starts registering a key named `name` for a signed-in person whose session proved it is
/// them within the last 5 minutes (a new way to sign in is a sensitive change). Two-factor
/// authentication with an authenticator app must be on.
pub async fn register_start(
    state: &AppState,
    user: UserId,
    session: &[u8; 32],
    name: &str,
) -> AppResult<Challenge> {
    let name = valid_name(name)?;
    let webauthn = webauthn(state)?;
    crate::rights::require_fresh(state, session).await?;
    let u = crate::accounts::load_user(state, user).await?;
    if !u.totp_enabled {
        return Err(AppError::new(
            ErrorCode::MfaNotEnabled,
            "turn on two-factor authentication with an authenticator app first: it and its recovery codes are the way back in if a key is lost",
        ));
    }
    let rows = state.store.security_keys(user).await?;
    if rows.len() >= MAX_KEYS {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("an account holds at most {MAX_KEYS} security keys: remove one first"),
        ));
    }
    let existing: Vec<_> = keys_of(state, &rows)?
        .iter()
        .map(|k| k.key.cred_id().clone())
        .collect();
    let email = state.open_account_str(user, "email", &u.email_sealed)?;
    let display = state.open_account_str(user, "name", &u.name_sealed)?;
    let (ccr, reg) = webauthn
        .start_securitykey_registration(
            user.as_uuid(),
            &email,
            &display,
            Some(existing),
            None,
            None,
        )
        .map_err(|e| AppError::internal(format!("starting a key registration: {e}")))?;
    let mut options = serde_json::to_value(&ccr)
        .map_err(|e| AppError::internal(format!("registration options: {e}")))?;
    // webauthn-rs asks, unenforced, for the credProtect policy "user verification required".
    // Chromium refuses that request outright for a credential that is not discoverable, which
    // these are ("inconsistent or incongruent with other requested parameters"), and the policy
    // guards discoverable credentials only; a key here is a second factor after the password.
    if let Some(ext) = options["publicKey"]["extensions"].as_object_mut() {
        ext.remove("credentialProtectionPolicy");
        ext.remove("enforceCredentialProtectionPolicy");
    }
    let payload = seal_json(
        state,
        user,
        REGISTER,
        &PendingRegistration { name, state: reg },
    )?;
    begin(state, user, REGISTER, payload, options).await
}

/// Finishes a registration with the browser's answer (`credential`, the `PublicKeyCredential`
/// of `navigator.credentials.create` as JSON). Audited; the person is told by mail.
pub async fn register_finish(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    ceremony: &str,
    credential: &serde_json::Value,
) -> AppResult<KeyInfo> {
    let token = take(state, REGISTER, ceremony).await?;
    if token.user_id != user {
        // Another account's ceremony: it stays unusable (it was taken), and says no more.
        return Err(AppError::new(
            ErrorCode::InvalidToken,
            "field `ceremony`: unknown, already used or older than 5 minutes; start again",
        ));
    }
    let pending: PendingRegistration = open_json(
        state,
        user,
        REGISTER,
        token.payload_sealed.as_deref().unwrap_or_default(),
    )?;
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(credential.clone()).map_err(|e| {
            AppError::new(
                ErrorCode::InvalidField,
                format!("field `credential`: not a WebAuthn registration answer ({e})"),
            )
        })?;
    let key = webauthn(state)?
        .finish_securitykey_registration(&reg, &pending.state)
        .map_err(|e| {
            AppError::new(
                ErrorCode::InvalidField,
                format!(
                    "field `credential`: the key's answer does not check out ({e}); start again"
                ),
            )
        })?;
    let id = uuid::Uuid::now_v7();
    let now = now_millis();
    let row = SecurityKeyRow {
        id,
        user_id: user,
        credential_index: credential_index(state, key.cred_id().as_ref())?,
        key_sealed: seal_json(
            state,
            user,
            &key_field(id),
            &StoredKey {
                name: pending.name.clone(),
                key,
            },
        )?,
        created_at: now,
        last_used_at: None,
    };
    if !state.store.add_security_key(&row, MAX_KEYS as i64).await? {
        // Said apart: two-factor authentication turned off, or keys added, since the start.
        let u = crate::accounts::load_user(state, user).await?;
        return Err(if !u.totp_enabled {
            AppError::new(
                ErrorCode::MfaNotEnabled,
                "two-factor authentication was turned off meanwhile: turn it on again, then add the key",
            )
        } else if state.store.security_keys(user).await?.len() >= MAX_KEYS {
            AppError::new(
                ErrorCode::InvalidField,
                format!("an account holds at most {MAX_KEYS} security keys: remove one first"),
            )
        } else {
            AppError::new(
                ErrorCode::SecurityKeyExists,
                "this security key is registered already",
            )
        });
    }
    changed(
        state,
        client,
        user,
        "mfa.security_key_added",
        id,
        &format!(
            "A security key named \"{}\" was added to your account: it can now be used to sign in.",
            pending.name
        ),
    )
    .await?;
    Ok(KeyInfo {
        id,
        name: pending.name,
        created_at: now,
        last_used_at: None,
    })
}

/// Removes one of the person's keys, when their session proved it is them within the last 5
/// minutes. Audited; the person is told by mail.
pub async fn remove(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    session: &[u8; 32],
    id: uuid::Uuid,
) -> AppResult<()> {
    crate::rights::require_fresh(state, session).await?;
    let name = list(state, user)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| k.name);
    let Some(name) = name else {
        return Err(not_found());
    };
    if !state.store.delete_security_key(user, id).await? {
        return Err(not_found());
    }
    changed(
        state,
        client,
        user,
        "mfa.security_key_removed",
        id,
        &format!("The security key named \"{name}\" was removed from your account: it can no longer be used to sign in."),
    )
    .await
}

/// A key added or removed: audited as `kind`, and its owner told by mail (`what`).
async fn changed(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    kind: &str,
    id: uuid::Uuid,
    what: &str,
) -> AppResult<()> {
    audit::account_event(state, client, kind, user, json!({"key": id})).await?;
    crate::accounts::notify_account(state, user, "mfa_changed", what).await
}

fn not_found() -> AppError {
    AppError::new(
        ErrorCode::SecurityKeyNotFound,
        "no security key of yours has this id",
    )
}

/// The second step of a sign-in, after a right password: a challenge for the account's keys.
pub(crate) async fn sign_in_challenge(
    state: &AppState,
    user: &UserRow,
    well_known: bool,
) -> AppResult<Option<Challenge>> {
    let rows = state.store.security_keys(user.id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // Keys registered while `public_url` named a domain, which it no longer does: the sign-in
    // falls back to the codes rather than failing.
    let Ok(webauthn) = webauthn(state) else {
        return Ok(None);
    };
    let keys: Vec<SecurityKey> = keys_of(state, &rows)?.into_iter().map(|k| k.key).collect();
    let (rcr, auth) = webauthn
        .start_securitykey_authentication(&keys)
        .map_err(|e| AppError::internal(format!("starting a key sign-in: {e}")))?;
    let options = serde_json::to_value(&rcr)
        .map_err(|e| AppError::internal(format!("request options: {e}")))?;
    let payload = seal_json(
        state,
        user.id,
        SIGN_IN,
        &PendingSignIn {
            state: auth,
            well_known,
        },
    )?;
    begin(state, user.id, SIGN_IN, payload, options)
        .await
        .map(Some)
}

/// The ceremony of a sign-in's second step, taken (once), with its account.
pub(crate) async fn take_sign_in(
    state: &AppState,
    ceremony: &str,
) -> AppResult<(UserRow, PendingSignIn)> {
    let token = take(state, SIGN_IN, ceremony).await?;
    let user = crate::accounts::load_user(state, token.user_id).await?;
    let pending = open_json(
        state,
        user.id,
        SIGN_IN,
        token.payload_sealed.as_deref().unwrap_or_default(),
    )?;
    Ok((user, pending))
}

/// How a key's answer to a sign-in challenge turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Accepted,
    /// The answer does not check out (or names a key removed meanwhile).
    Refused,
    /// A valid signature whose counter did not move past the stored one: the key may have
    /// been cloned (WebAuthn § 6.1.1). Refused.
    CounterRegressed,
}

/// Checks a key's answer to a sign-in challenge and saves the key's new signature counter.
pub(crate) async fn check_sign_in(
    state: &AppState,
    user: &UserRow,
    pending: &PendingSignIn,
    credential: &serde_json::Value,
) -> AppResult<Answer> {
    let Ok(answer) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
        return Ok(Answer::Refused);
    };
    let Ok(result) = webauthn(state)?.finish_securitykey_authentication(&answer, &pending.state)
    else {
        return Ok(Answer::Refused);
    };
    let rows = state.store.security_keys(user.id).await?;
    for (row, mut stored) in rows.iter().zip(keys_of(state, &rows)?) {
        if stored.key.cred_id() != result.cred_id() {
            continue;
        }
        // webauthn-rs compared the counter with the key as it was when the challenge was
        // made; compare it with the key as stored now, which a sign-in meanwhile may have
        // moved on.
        if stored.key.update_credential(&result) == Some(false) && result.counter() > 0 {
            return Ok(Answer::CounterRegressed);
        }
        let sealed = seal_json(state, user.id, &key_field(row.id), &stored)?;
        if !state
            .store
            .security_key_used(user.id, row.id, &row.key_sealed, &sealed, now_millis())
            .await?
        {
            // Another sign-in saved the key between the read and the write: its counter may
            // be past this one, so this answer is refused, as a counter that did not move.
            return Ok(Answer::CounterRegressed);
        }
        return Ok(Answer::Accepted);
    }
    // A key removed while the ceremony ran.
    Ok(Answer::Refused)
}
