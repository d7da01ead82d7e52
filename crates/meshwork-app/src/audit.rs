//! The audit log: append-only records of security-relevant events (sign-ins, failures, MFA
//! changes, keys, roles, invitations, exports, deletions). Details are sealed with the account
//! key, since they hold addresses and user agents; the kind and the ids stay readable for paging.

use crate::error::AppResult;
use crate::state::{now_millis, AppState};
use meshwork_domain::{AuditId, UserId, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_store::AuditRow;
use serde::Serialize;

pub use crate::actor::ClientInfo;

/// One event to record.
#[derive(Debug)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub workspace: Option<WorkspaceId>,
    pub actor: Option<UserId>,
    pub subject: Option<UserId>,
    pub details: serde_json::Value,
}

fn aad(id: &str) -> Aad<'_> {
    Aad {
        scope: "audit",
        record: id,
        field: "details",
    }
}

/// Records an event a person did to their own account (sign-in, MFA, profile changes).
pub async fn account_event(
    state: &AppState,
    client: &ClientInfo,
    kind: &str,
    user: UserId,
    details: serde_json::Value,
) -> AppResult<()> {
    let event = Event {
        kind,
        workspace: None,
        actor: Some(user),
        subject: Some(user),
        details,
    };
    record(state, Some(client), event).await
}

/// Records an event in a workspace by an authorised caller (its person, or an API key's creator).
pub async fn workspace_event(
    state: &AppState,
    client: &ClientInfo,
    kind: &str,
    auth: &impl crate::actor::InWorkspace,
    subject: Option<UserId>,
    details: serde_json::Value,
) -> AppResult<()> {
    let event = Event {
        kind,
        workspace: Some(auth.workspace()),
        actor: Some(auth.actor().user_id()),
        subject,
        details,
    };
    record(state, Some(client), event).await
}

pub async fn record(
    state: &AppState,
    client: Option<&ClientInfo>,
    event: Event<'_>,
) -> AppResult<()> {
    let id = AuditId::new();
    let mut details = event.details;
    if let (Some(c), serde_json::Value::Object(map)) = (client, &mut details) {
        if let Some(ip) = c.ip {
            map.insert("ip".into(), ip.to_string().into());
        }
        if !c.user_agent.is_empty() {
            map.insert("user_agent".into(), c.user_agent.clone().into());
        }
    }
    let key = state.account_key()?;
    let id_text = id.to_string();
    let details_sealed = key.seal(aad(&id_text), details.to_string().as_bytes());
    state
        .store
        .append_audit(&AuditRow {
            id,
            workspace_id: event.workspace,
            actor: event.actor,
            subject: event.subject,
            kind: event.kind.to_string(),
            details_sealed,
            at: now_millis(),
        })
        .await?;
    tracing::info!(kind = event.kind, "audit event");
    Ok(())
}

/// An audit entry as the API shows it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    /// Unix milliseconds.
    pub at: i64,
    pub kind: String,
    pub workspace_id: Option<uuid::Uuid>,
    pub actor: Option<uuid::Uuid>,
    pub subject: Option<uuid::Uuid>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

pub fn open(state: &AppState, row: AuditRow) -> AppResult<AuditEntry> {
    let id_text = row.id.to_string();
    let plain = state
        .account_key()?
        .open(aad(&id_text), &row.details_sealed)?;
    Ok(AuditEntry {
        id: row.id.as_uuid(),
        at: row.at,
        kind: row.kind,
        workspace_id: row.workspace_id.map(|w| w.as_uuid()),
        actor: row.actor.map(|u| u.as_uuid()),
        subject: row.subject.map(|u| u.as_uuid()),
        details: serde_json::from_slice(&plain).unwrap_or(serde_json::Value::Null),
    })
}
