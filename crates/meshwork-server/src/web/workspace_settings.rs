//! A workspace's settings page: its name, its members and their roles, invitations, API keys
//! (the secret shown once), the audit log, data export, and deleting it (typed confirmation).
//! Each section shows only to roles allowed to read it, each control only to roles allowed to
//! use it, and every change goes through the `meshwork-app` service the API uses, which checks
//! the permission again (a page can never do what the API refuses).

use super::extract::{InWorkspace, Posted};
use super::fields::when;
use super::step_up::{Confirm, ConfirmForm};
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use meshwork_app::{audit, workspaces, AppState};
use meshwork_domain::{ApiKeyId, ErrorCode, Permission, Role, UserId};
use meshwork_store::AuditScope;
use serde::Deserialize;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/w/{ws}/settings", get(settings))
        .route("/w/{ws}/settings/rename", post(rename))
        .route("/w/{ws}/settings/confirm", post(confirm))
        .route("/w/{ws}/settings/delete", post(delete))
        .route("/w/{ws}/settings/invite", post(invite))
        .route("/w/{ws}/settings/members/{user}/role", post(set_role))
        .route("/w/{ws}/settings/members/{user}/remove", post(remove))
        .route("/w/{ws}/settings/keys", post(create_key))
        .route("/w/{ws}/settings/keys/{key}/revoke", post(revoke_key))
        .route("/w/{ws}/settings/processing", post(save_processing))
        .route("/w/{ws}/settings/security", post(save_security))
        .route(
            "/w/{ws}/settings/support/{grant}/{action}",
            post(support_action),
        )
}

#[derive(Debug)]
pub struct MemberLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub me: bool,
    /// Whether the viewer may change this member (only an owner touches owners).
    pub manageable: bool,
}

#[derive(Debug)]
pub struct KeyLine {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub role: String,
    pub created: String,
    pub state: String,
    /// When and from where it was last used.
    pub used: String,
    pub live: bool,
}

/// A support access request or grant (mm09), as owners see it.
#[derive(Debug)]
pub struct SupportLine {
    pub id: String,
    pub operator: String,
    pub reason: String,
    pub minutes: i64,
    pub state: String,
    /// What the state means, in words.
    pub detail: String,
}

#[derive(Debug)]
pub struct AuditLine {
    pub when: String,
    pub what: String,
    pub who: String,
}

#[derive(Debug, Default)]
pub struct Errors {
    pub name: Option<String>,
    pub invite: Option<String>,
    pub key: Option<String>,
    pub key_password: Option<String>,
    pub members: Option<String>,
    pub delete: Option<String>,
    pub security: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/settings.html")]
pub struct SettingsPage {
    chrome: Chrome,
    ws: String,
    name: String,
    my_role: String,
    can_rename: bool,
    can_delete: bool,
    can_invite: bool,
    can_keys: bool,
    can_manage_keys: bool,
    can_audit: bool,
    can_export: bool,
    can_shape: bool,
    can_connect: bool,
    can_support: bool,
    support: Vec<SupportLine>,
    can_processing: bool,
    third_party: bool,
    members: Vec<MemberLine>,
    roles: Vec<&'static str>,
    keys: Vec<KeyLine>,
    audit: Vec<AuditLine>,
    exports: Vec<String>,
    errors: Errors,
    notice: Option<String>,
    secret: Option<String>,
    typed: HashMap<String, String>,
    /// Until when this session may change roles, invite admins and export without a password
    /// (ASVS 3.7.1, 4.3.3); `None` shows the "confirm it is you" forms instead.
    fresh: Option<String>,
    /// Whether this owner or admin keeps only a member's rights here until they turn on
    /// two-factor authentication (the workspace requires it: ASVS 4.3.1).
    withheld: bool,
    /// The security rules, for owners.
    security: Option<workspaces::Security>,
    /// Whether any member's role is the viewer's to change.
    members_manageable: bool,
    confirm_members: Confirm,
    confirm_export: Confirm,
}

const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

async fn page(
    state: &AppState,
    page: &InWorkspace<perm::WorkspaceRead>,
    fill: impl FnOnce(&mut SettingsPage),
) -> Result<SettingsPage, PageError> {
    let role = page.member.role;
    // An owner or admin without two-factor authentication, where the workspace requires it,
    // is shown a member's controls (the server refuses the rest: ASVS 4.3.1).
    let withheld = page.member.admin_withheld;
    let allows = |p: Permission| page.member.may(p);
    let me = page.session.0.id;
    let members = if allows(Permission::MembersRead) {
        workspaces::members(state, &page.member)
            .await?
            .into_iter()
            .map(|m| MemberLine {
                manageable: allows(Permission::MembersManage)
                    && m.user_id != me.as_uuid()
                    && (m.role != "owner" || role == Role::Owner),
                me: m.user_id == me.as_uuid(),
                id: m.user_id.to_string(),
                name: m.name,
                email: m.email,
                role: m.role,
            })
            .collect()
    } else {
        Vec::new()
    };
    let keys = if allows(Permission::ApiKeysRead) {
        let now = meshwork_app::state::now_millis();
        workspaces::list_keys(state, &page.member)
            .await?
            .into_iter()
            .map(|k| {
                let (state, live) = match (k.revoked_at, k.expires_at) {
                    (Some(at), _) => (format!("revoked {}", when(at)), false),
                    (None, Some(at)) if at <= now => (format!("expired {}", when(at)), false),
                    (None, Some(at)) => (format!("expires {}", when(at)), true),
                    (None, None) => ("never expires".into(), true),
                };
                let used = match (k.last_used_at, &k.last_used_from) {
                    (Some(at), Some(from)) => format!("last used {} from {from}", when(at)),
                    (Some(at), None) => format!("last used {}", when(at)),
                    _ => "never used".into(),
                };
                KeyLine {
                    used,
                    id: k.id.to_string(),
                    name: k.name,
                    prefix: k.prefix,
                    role: k.role,
                    created: when(k.created_at),
                    state,
                    live,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let audit = if allows(Permission::AuditRead) {
        let names: HashMap<uuid::Uuid, String> = workspaces::members(state, &page.member)
            .await?
            .into_iter()
            .map(|m| (m.user_id, m.name))
            .collect();
        state
            .store
            .audit(AuditScope::Workspace(page.ws()), None, 50)
            .await?
            .into_iter()
            .map(|r| audit::open(state, r))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|e| AuditLine {
                when: when(e.at),
                what: e.kind.replace(['.', '_'], " "),
                who: e
                    .actor
                    .map(|a| {
                        names
                            .get(&a)
                            .cloned()
                            .unwrap_or_else(|| "a former member".into())
                    })
                    .unwrap_or_else(|| "Meshwork".into()),
            })
            .collect()
    } else {
        Vec::new()
    };
    let members_manageable = members.iter().any(|m| m.manageable);
    let mut p = SettingsPage {
        chrome: Chrome::workspace(state, page, Section::Settings).await?,
        ws: page.ws().to_string(),
        name: workspaces::workspace_name(state, page.ws()).await?,
        my_role: role.to_string(),
        can_rename: allows(Permission::WorkspaceRename),
        can_delete: allows(Permission::WorkspaceDelete),
        can_shape: allows(Permission::CrmSchema),
        can_connect: allows(Permission::SourcesWrite),
        can_invite: allows(Permission::MembersInvite),
        can_keys: allows(Permission::ApiKeysRead),
        can_manage_keys: allows(Permission::ApiKeysManage),
        can_audit: allows(Permission::AuditRead),
        can_export: allows(Permission::CrmExport),
        can_support: allows(Permission::SupportManage),
        can_processing: allows(Permission::ProcessingManage),
        third_party: meshwork_app::usage::processing(state, &page.member)
            .await?
            .third_party,
        support: if allows(Permission::SupportManage) {
            meshwork_app::support::list(state, &page.member)
                .await?
                .into_iter()
                .map(|g| SupportLine {
                    detail: match g.state.as_str() {
                        "pending" => format!(
                            "asked {}; nothing can be read until you approve",
                            when(g.requested_at)
                        ),
                        "active" => {
                            format!("approved; ends {}", when(g.expires_at.unwrap_or_default()))
                        }
                        "revoked" => format!("revoked {}", when(g.revoked_at.unwrap_or_default())),
                        _ => format!("ended {}", when(g.expires_at.unwrap_or_default())),
                    },
                    id: g.id.to_string(),
                    operator: g.operator,
                    reason: g.reason,
                    minutes: g.minutes,
                    state: g.state,
                })
                .collect()
        } else {
            Vec::new()
        },
        members,
        // Nobody grants more than they hold.
        roles: ROLES
            .into_iter()
            .filter(|r| r.parse::<Role>().is_ok_and(|r| role.rank() >= r.rank()))
            .collect(),
        keys,
        audit,
        exports: if allows(Permission::CrmExport) {
            meshwork_app::export::file_names()
        } else {
            Vec::new()
        },
        errors: Errors::default(),
        notice: None,
        secret: None,
        typed: HashMap::new(),
        fresh: super::step_up::fresh_until(state, &page.session.0).await?,
        withheld,
        security: if allows(Permission::SecurityManage) {
            Some(workspaces::security(state, &page.member).await?)
        } else {
            None
        },
        members_manageable,
        confirm_members: Confirm::new(
            format!("/w/{}/settings/confirm", page.ws()),
            "members",
            "Your password, to change roles",
            "Changing a member's role, or inviting an admin or owner, needs your password again. It then holds for 5 minutes.",
        ),
        confirm_export: Confirm::new(
            format!("/w/{}/settings/confirm", page.ws()),
            "export",
            "Your password, to export",
            "Downloading the whole workspace needs your password again. It then holds for 5 minutes.",
        ),
    };
    fill(&mut p);
    Ok(p)
}

fn refused(p: SettingsPage) -> Response {
    let mut r = p.into_response();
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

fn done(ws: impl std::fmt::Display, what: &str) -> Response {
    Redirect::to(&format!("/w/{ws}/settings?done={what}")).into_response()
}

/// A refusal the page shows (anything but an internal failure).
fn shown(e: meshwork_app::AppError) -> Result<String, PageError> {
    if e.code == ErrorCode::Internal {
        return Err(e.into());
    }
    Ok(super::accounts::field_of(&e).1)
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

async fn settings(
    State(state): State<AppState>,
    p: InWorkspace<perm::WorkspaceRead>,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let notice = match q.done.as_str() {
        "renamed" => Some("The workspace is renamed."),
        "confirmed" => {
            Some("Thank you: for 5 minutes you can change roles, invite admins and export.")
        }
        "invited" => Some("The invitation is on its way; it works for 7 days."),
        "role" => Some("The role is changed."),
        "removed" => Some("The member is removed."),
        "revoked" => Some("The key is revoked; it stops working at once."),
        "processing" => Some("Third-party processing is saved."),
        "security" => Some("The security rules are saved."),
        "support-approved" => Some("Support access is approved; every read is in the audit log."),
        "support-revoked" => Some("Support access is revoked; it stops at once."),
        _ => None,
    };
    Ok(page(&state, &p, |p| p.notice = notice.map(Into::into))
        .await?
        .into_response())
}

/// Proves the person at the keyboard again (the members or export section's form), so that
/// for 5 minutes they may change roles, invite admins and export the workspace.
async fn confirm(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::WorkspaceRead>,
    Posted(_, form): Posted<ConfirmForm>,
) -> Result<Response, PageError> {
    let section = if form.section == "export" {
        "export"
    } else {
        "members"
    };
    let ws_prefix = format!("/w/{}/", p.ws());
    let back = super::accounts::local_next(&form.back);
    match super::step_up::confirm(&state, &client, &p.session.0, form.password).await? {
        // A list page that asked (its CSV download) is where the person goes on.
        Ok(()) if back.starts_with(&ws_prefix) => Ok(Redirect::to(back).into_response()),
        Ok(()) => Ok(Redirect::to(&format!(
            "/w/{}/settings?done=confirmed#{section}-h",
            p.ws()
        ))
        .into_response()),
        Err(message) => Ok(refused(
            page(&state, &p, |s| {
                if section == "export" {
                    s.confirm_export.error = Some(message);
                } else {
                    s.confirm_members.error = Some(message);
                }
            })
            .await?,
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::WorkspaceRename>,
    Posted(_, form): Posted<NameForm>,
) -> Result<Response, PageError> {
    let input = workspaces::WorkspaceInput {
        name: form.name.clone(),
    };
    match workspaces::rename(&state, &client, &p.member, &input).await {
        Ok(_) => Ok(done(p.ws(), "renamed")),
        Err(e) => {
            let message = shown(e)?;
            let read = p.also::<perm::WorkspaceRead>()?;
            Ok(refused(
                page(&state, &read, |s| {
                    s.errors.name = Some(message);
                    s.typed.insert("name".into(), form.name);
                })
                .await?,
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for DeleteForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteForm")
            .field("confirm", &self.confirm)
            .finish_non_exhaustive()
    }
}

async fn delete(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::WorkspaceDelete>,
    Posted(_, form): Posted<DeleteForm>,
) -> Result<Response, PageError> {
    let password = Some(form.password.clone());
    match workspaces::delete(&state, &client, &p.member, &form.confirm, password).await {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(e) => {
            let message = shown(e)?;
            let read = p.also::<perm::WorkspaceRead>()?;
            Ok(refused(
                page(&state, &read, |s| s.errors.delete = Some(message)).await?,
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn invite(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::MembersInvite>,
    Posted(_, form): Posted<InviteForm>,
) -> Result<Response, PageError> {
    let input = workspaces::InviteInput {
        email: form.email.clone(),
        role: form.role.clone(),
    };
    match workspaces::invite(&state, &client, &p.member, &input).await {
        Ok(_) => Ok(done(p.ws(), "invited")),
        Err(e) => {
            let message = super::step_up::refusal(e)?;
            let read = p.also::<perm::WorkspaceRead>()?;
            Ok(refused(
                page(&state, &read, |s| {
                    s.errors.invite = Some(message);
                    s.typed.insert("invite_email".into(), form.email);
                    s.typed.insert("invite_role".into(), form.role);
                })
                .await?,
            ))
        }
    }
}

fn user_id(raw: &str) -> Result<UserId, PageError> {
    raw.parse()
        .map_err(|_| PageError::new(ErrorCode::MemberNotFound, "there is no such member"))
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

async fn set_role(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::MembersManage>,
    Path((_, user)): Path<(String, String)>,
    Posted(_, form): Posted<RoleForm>,
) -> Result<Response, PageError> {
    let input = workspaces::RoleInput { role: form.role };
    match workspaces::set_role(&state, &client, &p.member, user_id(&user)?, &input).await {
        Ok(()) => Ok(done(p.ws(), "role")),
        Err(e) => {
            let message = super::step_up::refusal(e)?;
            let read = p.also::<perm::WorkspaceRead>()?;
            Ok(refused(
                page(&state, &read, |s| s.errors.members = Some(message)).await?,
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

async fn remove(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::MembersManage>,
    Path((_, user)): Path<(String, String)>,
    Posted(_, Nothing {}): Posted<Nothing>,
) -> Result<Response, PageError> {
    match workspaces::remove_member(&state, &client, &p.member, user_id(&user)?).await {
        Ok(()) => Ok(done(p.ws(), "removed")),
        Err(e) => {
            let message = shown(e)?;
            let read = p.also::<perm::WorkspaceRead>()?;
            Ok(refused(
                page(&state, &read, |s| s.errors.members = Some(message)).await?,
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expires_in_days: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for KeyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyForm").finish_non_exhaustive()
    }
}

async fn create_key(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::ApiKeysManage>,
    Posted(_, form): Posted<KeyForm>,
) -> Result<Response, PageError> {
    let read = p.also::<perm::WorkspaceRead>()?;
    let days = form.expires_in_days.trim();
    let expires_in_days = match days {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Ok(refused(
                    page(&state, &read, |s| {
                        s.errors.key = Some("Days until it expires must be a whole number".into())
                    })
                    .await?,
                ))
            }
        },
    };
    let input = workspaces::ApiKeyInput {
        name: form.name.clone(),
        role: form.role.clone(),
        expires_in_days,
        password: Some(form.password.clone()),
    };
    match workspaces::create_key(&state, &client, &p.member, &input).await {
        // The secret is shown on this answer only: it is never stored, so no redirect.
        Ok(created) => Ok(page(&state, &read, |s| s.secret = Some(created.secret))
            .await?
            .into_response()),
        Err(e) => {
            let (field, _) = super::accounts::field_of(&e);
            let password = field == Some("password");
            let message = shown(e)?;
            Ok(refused(
                page(&state, &read, |s| {
                    if password {
                        s.errors.key_password = Some(message);
                    } else {
                        s.errors.key = Some(message);
                    }
                    s.typed.insert("key_name".into(), form.name);
                    s.typed.insert("key_role".into(), form.role);
                    s.typed.insert("key_days".into(), form.expires_in_days);
                })
                .await?,
            ))
        }
    }
}

async fn revoke_key(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::ApiKeysManage>,
    Path((_, key)): Path<(String, String)>,
    Posted(_, Nothing {}): Posted<Nothing>,
) -> Result<Response, PageError> {
    let key: ApiKeyId = key
        .parse()
        .map_err(|_| PageError::new(ErrorCode::ApiKeyNotFound, "there is no such key"))?;
    workspaces::revoke_key(&state, &client, &p.member, key).await?;
    Ok(done(p.ws(), "revoked"))
}

/// Approves or revokes (refuses) a support access request: `{action}` is `approve` or `revoke`.
async fn support_action(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::SupportManage>,
    Path((_, grant, action)): Path<(String, String, String)>,
    Posted(_, Nothing {}): Posted<Nothing>,
) -> Result<Response, PageError> {
    let grant: uuid::Uuid = grant
        .parse()
        .map_err(|_| PageError::new(ErrorCode::InvalidField, "there is no such request"))?;
    match action.as_str() {
        "approve" => meshwork_app::support::approve(&state, &client, &p.member, grant).await?,
        "revoke" => meshwork_app::support::revoke(&state, &client, &p.member, grant).await?,
        _ => return Err(PageError::new(ErrorCode::InvalidField, "approve or revoke")),
    };
    Ok(done(p.ws(), &format!("support-{action}d")))
}

#[derive(Debug, Deserialize)]
struct ProcessingForm {
    #[serde(default)]
    third_party: Option<String>,
}

async fn save_processing(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::ProcessingManage>,
    Posted(_, form): Posted<ProcessingForm>,
) -> Result<Response, PageError> {
    let processing = meshwork_app::usage::Processing {
        third_party: form.third_party.is_some(),
    };
    meshwork_app::usage::set_processing(&state, &client, &p.member, &processing).await?;
    Ok(done(p.ws(), "processing"))
}

#[derive(Debug, Deserialize)]
pub struct SecurityForm {
    #[serde(default)]
    admin_mfa: String,
}

/// Requires two-factor authentication of the owners and admins, or stops requiring it.
async fn save_security(
    State(state): State<AppState>,
    Client(client): Client,
    p: InWorkspace<perm::SecurityManage>,
    Posted(_, form): Posted<SecurityForm>,
) -> Result<Response, PageError> {
    let input = workspaces::SecurityInput {
        admin_mfa_required: form.admin_mfa == "yes",
    };
    match workspaces::set_security(&state, &client, &p.member, &input).await {
        Ok(_) => Ok(done(p.ws(), "security")),
        Err(e) => {
            let message = shown(e)?;
            let read = p.also::<perm::WorkspaceRead>()?;
            Ok(refused(
                page(&state, &read, |s| s.errors.security = Some(message)).await?,
            ))
        }
    }
}
