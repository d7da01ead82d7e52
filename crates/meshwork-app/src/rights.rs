//! Data-subject rights (mm17, mm18, pm11, pm12, cl12): see everything stored about me and take
//! it away (export), delete my account, and erase a contact everywhere with a suppression entry
//! so nothing brings them back. Each needs a fresh proof of identity (mm18): a sign-in, or a
//! password or TOTP code given again, within the last [`REAUTH_WINDOW_MS`].
//!
//! `docs/privacy.md` maps each promise to what keeps it.

use crate::actor::{Actor, ClientInfo, InWorkspace};
use crate::audit::{self, Event};
use crate::crm::Crm;
use crate::error::{AppError, AppResult};
use crate::state::{now_millis, AppState};
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, RecordId, Role, UserId};
use meshwork_store::{AuditScope, CrmBatch, CrmOp};
use serde::Serialize;
use serde_json::json;

/// How long a sign-in or re-authentication counts as fresh for a rights request.
pub const REAUTH_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Proves again that the session's owner is at the keyboard: their password, or (with
/// two-factor authentication on) a current TOTP code. Wrong passwords count toward the lockout
/// like sign-ins. Audited.
pub async fn reauthenticate(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    session: &[u8; 32],
    password: Option<String>,
    totp_code: Option<&str>,
) -> AppResult<()> {
    let u = crate::accounts::load_user(state, user).await?;
    match (password, totp_code) {
        (Some(p), _) => crate::accounts::require_password(state, client, &u, p, "password").await?,
        (None, Some(code)) => {
            let secret = match (&u.totp_secret_sealed, u.totp_enabled) {
                (Some(sealed), true) => state.open_account(u.id, "totp_secret", sealed)?,
                _ => {
                    return Err(AppError::new(
                        ErrorCode::MfaNotEnabled,
                        "field `totp_code`: two-factor authentication is off for this account; send `password`",
                    ))
                }
            };
            crate::accounts::require_totp(state, client, &u, &secret, code, "totp_code").await?;
        }
        (None, None) => {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                "field `password`: send your password (or `totp_code`, with two-factor authentication on)",
            ))
        }
    }
    state
        .store
        .set_session_reauth(session, now_millis())
        .await?;
    audit::account_event(state, client, "reauth.succeeded", u.id, json!({})).await
}

/// Refuses unless the session authenticated within the last 5 minutes (mm18).
pub async fn require_fresh(state: &AppState, session: &[u8; 32]) -> AppResult<()> {
    let at = state.store.session_reauth_at(session).await?.unwrap_or(0);
    if at + REAUTH_WINDOW_MS < now_millis() {
        return Err(AppError::new(
            ErrorCode::ReauthenticationRequired,
            "confirm it is you first: send your password (or a TOTP code) to POST /api/v1/me/reauthenticate, then repeat this request within 5 minutes",
        ));
    }
    Ok(())
}

/// Until when the session counts as freshly authenticated (a sign-in, or a password or TOTP code
/// given again), or `None` once that has passed. Pages show the confirmation form from it.
pub async fn fresh_until(state: &AppState, session: &[u8; 32]) -> AppResult<Option<i64>> {
    let at = state.store.session_reauth_at(session).await?.unwrap_or(0);
    let until = at + REAUTH_WINDOW_MS;
    Ok((until >= now_millis()).then_some(until))
}

/// Step-up for a sensitive change (OWASP ASVS 3.3.4, 3.7.1, 4.3.3): a person acting through a
/// session must have proven it is them within the last 5 minutes, so a stolen session alone
/// cannot end the owner's other sessions, grant roles or carry the whole workspace away. An API
/// key passes: it was minted with its creator's password and is itself the credential. `what`
/// names the change in the refusal.
pub async fn require_fresh_actor(state: &AppState, actor: &Actor, what: &str) -> AppResult<()> {
    let Actor::User { session_hash, .. } = actor else {
        return Ok(());
    };
    if fresh_until(state, session_hash).await?.is_some() {
        return Ok(());
    }
    Err(AppError::new(
        ErrorCode::ReauthenticationRequired,
        format!("{what} needs you to confirm it is you first: send your password (or a TOTP code) to POST /api/v1/me/reauthenticate, then repeat this request within 5 minutes"),
    ))
}

/// Everything stored about an account, as data (pm12, mm17 "port"): its profile, memberships,
/// sessions, mail preference, security keys and its own audit trail. Secrets (the password hash, the TOTP
/// secret, recovery codes) are never included: only whether they are set.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountExport {
    pub exported_at: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub profile: serde_json::Value,
    pub marketing_opt_out: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub sessions: Vec<serde_json::Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub audit: Vec<serde_json::Value>,
    /// The security keys: their names and when they were added and last used (the keys'
    /// public keys and counters are not the person's data, and are kept out).
    pub security_keys: Vec<crate::security_keys::KeyInfo>,
}

/// The account's export (needs a fresh authentication). Audited.
pub async fn export_account(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    session: &[u8; 32],
) -> AppResult<AccountExport> {
    require_fresh(state, session).await?;
    let profile = crate::accounts::profile(state, user).await?;
    let sessions = crate::accounts::sessions(state, user, session).await?;
    let mut audit_rows = Vec::new();
    let mut before = None;
    loop {
        let page = state
            .store
            .audit(AuditScope::User(user), before, 500)
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        let n = page.len();
        for row in page {
            audit_rows.push(serde_json::to_value(audit::open(state, row)?).unwrap_or_default());
        }
        if n < 500 {
            break;
        }
    }
    audit::account_event(state, client, "account.exported", user, json!({})).await?;
    Ok(AccountExport {
        exported_at: now_millis(),
        profile: serde_json::to_value(profile).unwrap_or_default(),
        marketing_opt_out: state.store.marketing_opt_out(user).await?,
        sessions: sessions
            .into_iter()
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .collect(),
        audit: audit_rows,
        security_keys: crate::security_keys::list(state, user).await?,
    })
}

/// The export as CSV: one row per value, `section,item,field,value`, nested values flattened
/// with dotted paths. Cells that a spreadsheet would run as a formula are neutralised.
pub fn export_csv(export: &AccountExport) -> AppResult<Vec<u8>> {
    fn walk(
        out: &mut Vec<[String; 4]>,
        section: &str,
        item: &str,
        path: &str,
        v: &serde_json::Value,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(out, section, item, &p, v);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(out, section, item, &format!("{path}[{i}]"), v);
                }
            }
            serde_json::Value::Null => {
                out.push([section.into(), item.into(), path.into(), String::new()])
            }
            serde_json::Value::String(s) => {
                out.push([section.into(), item.into(), path.into(), s.clone()])
            }
            other => out.push([section.into(), item.into(), path.into(), other.to_string()]),
        }
    }
    let mut rows = Vec::new();
    walk(&mut rows, "profile", "", "", &export.profile);
    rows.push([
        "preferences".into(),
        String::new(),
        "marketing_opt_out".into(),
        export.marketing_opt_out.to_string(),
    ]);
    for (i, s) in export.sessions.iter().enumerate() {
        walk(&mut rows, "sessions", &i.to_string(), "", s);
    }
    for (i, a) in export.audit.iter().enumerate() {
        walk(&mut rows, "audit", &i.to_string(), "", a);
    }
    for (i, k) in export.security_keys.iter().enumerate() {
        walk(
            &mut rows,
            "security_keys",
            &i.to_string(),
            "",
            &serde_json::to_value(k).unwrap_or_default(),
        );
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "item", "field", "value"])
        .map_err(|e| AppError::internal(e.to_string()))?;
    for r in rows {
        let safe: Vec<String> = r
            .iter()
            .map(|c| meshwork_crm_io::escape_formula(c).into_owned())
            .collect();
        w.write_record(&safe)
            .map_err(|e| AppError::internal(e.to_string()))?;
    }
    w.into_inner()
        .map_err(|e| AppError::internal(e.to_string()))
}

/// What deleting an account did.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountDeleted {
    /// Workspaces deleted with it: those where it was the only member.
    pub workspaces_deleted: Vec<uuid::Uuid>,
}

/// Deletes an account (pm11, cl12, mm17 "erase"), confirmed by its email address and a fresh
/// authentication. Workspaces where it is the only member are deleted with it (their keys
/// destroyed); it must not be the last owner of a workspace others still use (they would be
/// left without one): the error names those workspaces. Audited (by id: the audit log keeps no
/// name or address).
pub async fn delete_account(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    session: &[u8; 32],
    confirm: &str,
) -> AppResult<AccountDeleted> {
    require_fresh(state, session).await?;
    let u = crate::accounts::load_user(state, user).await?;
    let email = state.open_account_str(u.id, "email", &u.email_sealed)?;
    if !confirm.trim().eq_ignore_ascii_case(&email) {
        return Err(AppError::new(
            ErrorCode::ConfirmationRequired,
            "field `confirm`: type your account's email address to delete it; this cannot be undone",
        ));
    }
    delete_account_now(state, client, user, "account.deleted").await
}

/// Deletes an account without asking (the caller checked who asks): see [`delete_account`].
/// `kind` is the audit event (`account.deleted`, or `account.expired` for retention).
pub async fn delete_account_now(
    state: &AppState,
    client: &ClientInfo,
    user: UserId,
    kind: &'static str,
) -> AppResult<AccountDeleted> {
    let mut alone = Vec::new();
    let mut blocking = Vec::new();
    for (ws, role) in state.store.workspaces_of(user).await? {
        let members = state.store.members(ws.id).await?;
        if members.len() == 1 {
            alone.push(ws);
            continue;
        }
        let owners = members.iter().filter(|m| m.role == Role::Owner).count();
        if role == Role::Owner && owners == 1 {
            let name = state
                .open_workspace(ws.id, &ws.id.to_string(), "name", &ws.name_sealed)
                .unwrap_or_else(|_| ws.id.to_string());
            blocking.push(name);
        }
    }
    if !blocking.is_empty() {
        return Err(AppError::new(
            ErrorCode::LastOwner,
            format!(
                "you are the only owner of {}, which others still use: make one of them an owner (or delete the workspace) first",
                blocking.join(", ")
            ),
        ));
    }
    let mut deleted = Vec::new();
    for ws in alone {
        crate::workspaces::destroy(state, client, ws.id, user).await?;
        deleted.push(ws.id.as_uuid());
    }
    state.store.delete_user(user, now_millis()).await?;
    audit::record(
        state,
        Some(client),
        Event {
            kind,
            workspace: None,
            actor: Some(user),
            subject: Some(user),
            details: json!({"workspaces_deleted": deleted.len()}),
        },
    )
    .await?;
    Ok(AccountDeleted {
        workspaces_deleted: deleted,
    })
}

/// What erasing a contact removed.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Erased {
    /// The contact and the records only about it (notes, activities, communications, files,
    /// form submissions).
    pub records_removed: usize,
    /// Its dedup keys (blind indexes of its email addresses) no record may take again.
    pub suppressed_keys: usize,
}

/// Erases a contact everywhere (mm17): the record, every note, activity, communication, file
/// and form submission about it and nothing else, its events, its index entries (through the
/// change feed), its cached overlap pseudonyms; then suppresses its dedup keys, so a later
/// import, form or sync cannot bring the person back, even one already running. Needs a fresh
/// authentication of the member asking. Audited without the person's details.
pub async fn erase_contact(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    session: Option<&[u8; 32]>,
    id: RecordId,
) -> AppResult<Erased> {
    match session {
        Some(s) => require_fresh(state, s).await?,
        None => {
            return Err(AppError::new(
                ErrorCode::ReauthenticationRequired,
                "erasing a person is done by a signed-in member who confirms it is them, not by an API key",
            ))
        }
    }
    let crm = Crm::new(state, auth.workspace())?;
    let row = crm.record(Kind::Contact, id).await?;
    let customs = crm.customs().await?;
    let validated = meshwork_crm::Validated::check(Kind::Contact, &crm.open_doc(&row)?, &customs)
        .map_err(|e| {
        AppError::internal(format!("the stored contact does not validate: {e:?}"))
    })?;
    let keys = crm.key_entries(Kind::Contact, &validated);
    // The records about it that are about nothing else.
    let mut ops = Vec::new();
    let ws = auth.workspace();
    let about: Vec<RecordId> = state
        .store
        .crm_links_to(ws, id, Some("about"))
        .await?
        .into_iter()
        .map(|l| l.from)
        .collect();
    // Those also about another record stay; one read of their links and records each.
    let shared: std::collections::HashSet<RecordId> = state
        .store
        .crm_links_from(ws, &about)
        .await?
        .into_iter()
        .filter(|l| l.role == "about" && l.to != id)
        .map(|l| l.from)
        .collect();
    let only: Vec<RecordId> = about.into_iter().filter(|r| !shared.contains(r)).collect();
    for r in state.store.crm_records(ws, &only).await? {
        ops.push(CrmOp::Delete {
            id: r.id,
            kind: r.kind,
        });
    }
    ops.push(CrmOp::Delete {
        id,
        kind: "contact".into(),
    });
    let removed = ops.len();
    // The keys first: from here on no write can take them, so an import running now cannot
    // recreate the person between the deletion and the suppression.
    state
        .store
        .crm_suppress(auth.workspace(), &keys, now_millis())
        .await?;
    crm.apply(&CrmBatch { ops }, now_millis()).await?;
    state.pseudonyms.forget(auth.workspace());
    audit::record(
        state,
        Some(client),
        Event {
            kind: "contact.erased",
            workspace: Some(auth.workspace()),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({"record": id.to_string(), "records_removed": removed, "suppressed_keys": keys.len()}),
        },
    )
    .await?;
    Ok(Erased {
        records_removed: removed,
        suppressed_keys: keys.len(),
    })
}

/// Whether a contact's processing is restricted (mm17).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// Restricted: kept and visible, but no connector changes it, no overlap run matches it, no
    /// mail is logged on it, and no outside processor sees it.
    pub restricted: bool,
}

pub async fn restriction(
    state: &AppState,
    auth: &impl InWorkspace,
    id: RecordId,
) -> AppResult<Restriction> {
    let crm = Crm::new(state, auth.workspace())?;
    crm.record(Kind::Contact, id).await?;
    Ok(Restriction {
        restricted: state
            .store
            .crm_restricted(auth.workspace())
            .await?
            .contains(&id),
    })
}

/// Restricts a contact's processing at their request, or lifts it (mm17). A signed-in member
/// with a fresh authentication. Audited.
pub async fn restrict_contact(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    session: Option<&[u8; 32]>,
    id: RecordId,
    restricted: bool,
) -> AppResult<Restriction> {
    match session {
        Some(s) => require_fresh(state, s).await?,
        None => {
            return Err(AppError::new(
                ErrorCode::ReauthenticationRequired,
                "restricting a person's processing is done by a signed-in member who confirms it is them, not by an API key",
            ))
        }
    }
    let crm = Crm::new(state, auth.workspace())?;
    crm.record(Kind::Contact, id).await?;
    state
        .store
        .crm_restrict(auth.workspace(), id, restricted, now_millis())
        .await?;
    // Same-server overlap keeps pseudonyms between runs: the next run reads the set again.
    state.pseudonyms.forget(auth.workspace());
    audit::record(
        state,
        Some(client),
        Event {
            kind: if restricted {
                "contact.restricted"
            } else {
                "contact.unrestricted"
            },
            workspace: Some(auth.workspace()),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({"record": id.to_string()}),
        },
    )
    .await?;
    Ok(Restriction { restricted })
}
