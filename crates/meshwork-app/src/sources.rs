//! The push API of sources, the way connectors and scripts feed workplace search: documents
//! with the principals allowed to read them, the source's users (joined to Meshwork accounts by
//! verified email) and its groups (which may contain groups). Access is evaluated when a search
//! runs, so a group change needs no reindexing. Everything a call sends is checked before
//! anything is written.

use crate::actor::{ClientInfo, InWorkspace};
use crate::audit::{self, Event};
use crate::error::{AppError, AppResult};
use crate::search::{
    document_id, seal_document, source_email_index, source_group, source_user, StoredDocument,
};
use crate::state::{now_millis, AppState};
use meshwork_domain::{EmailAddress, ErrorCode, WorkspaceId};
use meshwork_search::EVERYONE;
use meshwork_store::{SourceDocRow, SourcePrincipalRow};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn check_source(source: &str) -> AppResult<()> {
    let ok = !source.is_empty()
        && source.len() <= 64
        && source
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::InvalidField,
            format!(
                "path `source`: {source:?} must be 1 to 64 characters of a-z, 0-9, `-` and `_`"
            ),
        ))
    }
}

pub fn check_id(field: &str, id: &str) -> AppResult<()> {
    if id.is_empty() || id.len() > 512 || id.chars().any(char::is_control) {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!(
                "field `{field}`: an id must be 1 to 512 characters without control characters"
            ),
        ));
    }
    Ok(())
}

/// Who may read a document in its source.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PermissionsInput {
    /// Anyone in the organisation (every member of the workspace).
    #[serde(default)]
    pub everyone: bool,
    /// Source user ids.
    #[serde(default)]
    pub users: Vec<String>,
    /// Source group ids (groups may contain groups).
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The document's id in the source; pushing the same id again replaces it.
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// Where the document opens in its source (`http` or `https`).
    pub url: Option<String>,
    /// Last change in the source, milliseconds since the epoch (default: now).
    pub updated_at: Option<i64>,
    /// Without permissions a document is visible to nobody (fail closed).
    #[serde(default)]
    pub permissions: PermissionsInput,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DocumentsInput {
    /// Up to 1,000 documents.
    pub documents: Vec<DocumentInput>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stored {
    pub stored: usize,
}

pub const MAX_BATCH: usize = 1_000;
const MAX_TITLE: usize = 1_000;
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PrincipalInput {
    /// The user's id in the source.
    pub id: String,
    /// The user's email in the source. A Meshwork account with this verified email searches as
    /// this user.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PrincipalsInput {
    /// Up to 1,000 users.
    pub principals: Vec<PrincipalInput>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    User,
    Group,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    #[serde(rename = "type")]
    pub kind: MemberKind,
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// The group's direct members (users and groups); replaces the previous list. At most 10,000.
    pub members: Vec<MemberInput>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceInfo {
    pub source: String,
    pub documents: i64,
}

/// Adds or replaces documents of a source, with who may read them; searchable when this returns.
/// Answers how many were stored.
pub async fn put_documents(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    documents: &[DocumentInput],
) -> AppResult<usize> {
    check_source(source)?;
    if documents.len() > MAX_BATCH {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!(
                "field `documents`: {} documents; send at most {MAX_BATCH} per request",
                documents.len()
            ),
        ));
    }
    let now = now_millis();
    let mut rows = Vec::with_capacity(documents.len());
    // Everything is checked before anything is written.
    for (i, d) in documents.iter().enumerate() {
        let at = |f: &str| format!("documents[{i}].{f}");
        check_id(&at("id"), &d.id)?;
        if d.title.chars().count() > MAX_TITLE {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!(
                    "field `{}`: longer than {MAX_TITLE} characters",
                    at("title")
                ),
            ));
        }
        if d.body.len() > MAX_BODY {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("field `{}`: longer than {MAX_BODY} bytes", at("body")),
            ));
        }
        if let Some(u) = &d.url {
            if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2048 {
                return Err(AppError::new(
                    ErrorCode::InvalidField,
                    format!(
                        "field `{}`: must be an http or https URL of at most 2048 characters",
                        at("url")
                    ),
                ));
            }
        }
        let mut acl = Vec::new();
        if d.permissions.everyone {
            acl.push(EVERYONE.to_string());
        }
        for (j, u) in d.permissions.users.iter().enumerate() {
            check_id(&at(&format!("permissions.users[{j}]")), u)?;
            acl.push(source_user(state, ws, source, u)?);
        }
        for (j, g) in d.permissions.groups.iter().enumerate() {
            check_id(&at(&format!("permissions.groups[{j}]")), g)?;
            acl.push(source_group(state, ws, source, g)?);
        }
        let stored = StoredDocument {
            source: source.to_string(),
            external_id: d.id.clone(),
            title: d.title.clone(),
            body: d.body.clone(),
            url: d.url.clone(),
            updated_at: d.updated_at.unwrap_or(now),
            acl,
        };
        rows.push(document_row(state, ws, &stored, None)?);
    }
    state.store.source_put_documents(ws, &rows, now).await?;
    state.search.sync_after_write(state, ws).await;
    Ok(rows.len())
}

/// A document's row: its id derived from its source and id there, its content and readers
/// sealed.
pub fn document_row(
    state: &AppState,
    ws: WorkspaceId,
    doc: &StoredDocument,
    fingerprint: Option<String>,
) -> AppResult<SourceDocRow> {
    let id = document_id(state, ws, &doc.source, &doc.external_id)?;
    Ok(SourceDocRow {
        data_sealed: seal_document(state, ws, &id, doc)?,
        id,
        workspace_id: ws,
        source: doc.source.clone(),
        updated_at: doc.updated_at,
        fingerprint,
    })
}

/// Removes one document of a source.
pub async fn delete_document(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    doc: &str,
) -> AppResult<()> {
    check_source(source)?;
    let id = document_id(state, ws, source, doc)?;
    let n = state
        .store
        .source_delete_documents(ws, source, &[id], now_millis())
        .await?;
    if n == 0 {
        return Err(AppError::new(
            ErrorCode::SourceItemNotFound,
            format!("no document {doc:?} in source {source:?}"),
        ));
    }
    state.search.sync_after_write(state, ws).await;
    Ok(())
}

/// Adds or replaces users of a source.
pub async fn put_principals(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    principals: &[PrincipalInput],
) -> AppResult<usize> {
    check_source(source)?;
    if principals.len() > MAX_BATCH {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("field `principals`: send at most {MAX_BATCH} per request"),
        ));
    }
    let mut rows = Vec::with_capacity(principals.len());
    for (i, p) in principals.iter().enumerate() {
        check_id(&format!("principals[{i}].id"), &p.id)?;
        let email_index = match &p.email {
            Some(e) => {
                let e = EmailAddress::parse(&format!("principals[{i}].email"), e)
                    .map_err(AppError::from)?;
                Some(source_email_index(state, ws, e.as_str())?)
            }
            None => None,
        };
        rows.push(SourcePrincipalRow {
            principal: source_user(state, ws, source, &p.id)?,
            email_index,
        });
    }
    state
        .store
        .source_put_principals(ws, source, &rows, now_millis())
        .await?;
    Ok(rows.len())
}

/// Removes a user of a source (and their group memberships).
pub async fn delete_principal(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    id: &str,
) -> AppResult<()> {
    check_source(source)?;
    let p = source_user(state, ws, source, id)?;
    if !state
        .store
        .source_delete_principal(ws, source, &p, now_millis())
        .await?
    {
        return Err(AppError::new(
            ErrorCode::SourceItemNotFound,
            format!("no user {id:?} in source {source:?}"),
        ));
    }
    Ok(())
}

/// Sets the direct members of a source group (replacing the previous list).
pub async fn set_group(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    group: &str,
    members_in: &[MemberInput],
) -> AppResult<()> {
    check_source(source)?;
    check_id("group_id", group)?;
    if members_in.len() > 10_000 {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "field `members`: at most 10,000 direct members",
        ));
    }
    let mut members = Vec::with_capacity(members_in.len());
    for (i, m) in members_in.iter().enumerate() {
        check_id(&format!("members[{i}].id"), &m.id)?;
        members.push(match m.kind {
            MemberKind::User => source_user(state, ws, source, &m.id)?,
            MemberKind::Group => source_group(state, ws, source, &m.id)?,
        });
    }
    let g = source_group(state, ws, source, group)?;
    state
        .store
        .source_set_group(ws, source, &g, &members, now_millis())
        .await?;
    Ok(())
}

/// Removes a source group (and its membership in other groups).
pub async fn delete_group(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    group: &str,
) -> AppResult<()> {
    check_source(source)?;
    let g = source_group(state, ws, source, group)?;
    if !state
        .store
        .source_delete_group(ws, source, &g, now_millis())
        .await?
    {
        return Err(AppError::new(
            ErrorCode::SourceItemNotFound,
            format!("no group {group:?} in source {source:?}"),
        ));
    }
    Ok(())
}

/// The sources that pushed data to a workspace, with their document counts.
pub async fn list(state: &AppState, ws: WorkspaceId) -> AppResult<Vec<SourceInfo>> {
    Ok(state
        .store
        .sources(ws)
        .await?
        .into_iter()
        .map(|(source, documents)| SourceInfo { source, documents })
        .collect())
}

/// Disconnects a source: every document, user and group it pushed is deleted from the store and
/// the index (audited). Answers how many documents went.
pub async fn disconnect(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    source: &str,
) -> AppResult<u64> {
    let ws = auth.workspace();

    check_source(source)?;
    let n = state
        .store
        .source_delete_all(ws, source, now_millis())
        .await?;
    state.search.sync_after_write(state, ws).await;
    audit::record(
        state,
        Some(client),
        Event {
            kind: "source.disconnected",
            workspace: Some(ws),
            actor: Some(auth.actor().user_id()),
            subject: None,
            details: json!({"source": source, "documents_removed": n}),
        },
    )
    .await?;
    Ok(n)
}
