//! Search and the push API of sources. `GET …/search` is the one search box over CRM records and
//! source documents. Sources (a connector, or a script using an API key) push documents with the
//! principals allowed to read them, their users (joined to Meshwork accounts by verified email)
//! and their groups (which may contain groups); access is evaluated when a search runs, so a
//! group change needs no reindexing.

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::audit::{self, Event};
use meshwork_app::search::{
    document_id, seal_document, source_email_index, source_group, source_user, StoredDocument,
};
use meshwork_app::state::{now_millis, AppState};
use meshwork_domain::{EmailAddress, ErrorCode};
use meshwork_search::EVERYONE;
use meshwork_store::{SourceDocRow, SourcePrincipalRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchParams {
    /// What was typed in the search box (the last word is a prefix unless a space follows).
    /// Filters: `type:`, `stage:`, `owner:me`, `source:`, `tag:`, `pipeline:`. Empty: recent items.
    pub q: Option<String>,
    /// Hits per type, 1 to 100 (default 10).
    pub limit: Option<usize>,
}

/// Search everything the caller may open: CRM records (by role) and source documents (by the
/// source's permissions, evaluated now). Results are grouped by type with exact counts, hits
/// carry highlighted snippets (HTML-escaped, matches in `<mark>`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/search", tag = "search",
    security(("session" = ["search.read"]), ("api_key" = ["search.read"])),
    params(("workspace_id" = uuid::Uuid, Path), SearchParams),
    responses((status = 200, body = Object, description = "`{total, groups: [{type, count, hits: [{id, type, title, snippet, url, source, updated_at, score}]}]}`"), (status = 422, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    auth: Authorized<perm::SearchRead>,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let limit = p.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("query `limit`: must be 1 to 100, got {limit}"),
        ));
    }
    let results = state
        .search
        .search(
            &state,
            auth.workspace,
            &auth.actor,
            auth.role,
            p.q.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    Ok(Json(serde_json::to_value(results).map_err(|e| {
        ApiError::internal(format!("search results: {e}"))
    })?))
}

fn check_source(source: &str) -> ApiResult<()> {
    let ok = !source.is_empty()
        && source.len() <= 64
        && source
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "path `source`: {source:?} must be 1 to 64 characters of a-z, 0-9, `-` and `_`"
            ),
        ))
    }
}

fn check_id(field: &str, id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 512 || id.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "field `{field}`: an id must be 1 to 512 characters without control characters"
            ),
        ));
    }
    Ok(())
}

/// Who may read a document in its source.
#[derive(Debug, Default, Deserialize, ToSchema)]
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

#[derive(Debug, Deserialize, ToSchema)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentsInput {
    /// Up to 1,000 documents.
    pub documents: Vec<DocumentInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub stored: usize,
}

const MAX_BATCH: usize = 1_000;
const MAX_TITLE: usize = 1_000;
const MAX_BODY: usize = 1 << 20;

/// Add or replace documents of a source, with who may read them. Searchable when this returns.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/documents", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path)),
    request_body = DocumentsInput,
    responses((status = 200, body = Stored), (status = 422, body = ErrorBody)))]
pub async fn put_documents(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, source)): Path<(uuid::Uuid, String)>,
    Json(input): Json<DocumentsInput>,
) -> ApiResult<Json<Stored>> {
    check_source(&source)?;
    let ws = auth.workspace;
    if input.documents.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "field `documents`: {} documents; send at most {MAX_BATCH} per request",
                input.documents.len()
            ),
        ));
    }
    let now = now_millis();
    let mut rows = Vec::with_capacity(input.documents.len());
    // Everything is checked before anything is written.
    for (i, d) in input.documents.iter().enumerate() {
        let at = |f: &str| format!("documents[{i}].{f}");
        check_id(&at("id"), &d.id)?;
        if d.title.chars().count() > MAX_TITLE {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!(
                    "field `{}`: longer than {MAX_TITLE} characters",
                    at("title")
                ),
            ));
        }
        if d.body.len() > MAX_BODY {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("field `{}`: longer than {MAX_BODY} bytes", at("body")),
            ));
        }
        if let Some(u) = &d.url {
            if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2048 {
                return Err(ApiError::new(
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
            acl.push(source_user(&state, ws, &source, u)?);
        }
        for (j, g) in d.permissions.groups.iter().enumerate() {
            check_id(&at(&format!("permissions.groups[{j}]")), g)?;
            acl.push(source_group(&state, ws, &source, g)?);
        }
        let id = document_id(&state, ws, &source, &d.id)?;
        let stored = StoredDocument {
            source: source.clone(),
            external_id: d.id.clone(),
            title: d.title.clone(),
            body: d.body.clone(),
            url: d.url.clone(),
            updated_at: d.updated_at.unwrap_or(now),
            acl,
        };
        rows.push(SourceDocRow {
            data_sealed: seal_document(&state, ws, &id, &stored)?,
            id,
            workspace_id: ws,
            source: source.clone(),
            updated_at: stored.updated_at,
        });
    }
    state.store.source_put_documents(ws, &rows, now).await?;
    state.search.sync_after_write(&state, ws).await;
    Ok(Json(Stored { stored: rows.len() }))
}

/// Remove one document of a source.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/documents/{document_id}", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path), ("document_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_document(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, source, doc)): Path<(uuid::Uuid, String, String)>,
) -> ApiResult<StatusCode> {
    check_source(&source)?;
    let ws = auth.workspace;
    let id = document_id(&state, ws, &source, &doc)?;
    let n = state
        .store
        .source_delete_documents(ws, &source, &[id], now_millis())
        .await?;
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::SourceItemNotFound,
            format!("no document {doc:?} in source {source:?}"),
        ));
    }
    state.search.sync_after_write(&state, ws).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalInput {
    /// The user's id in the source.
    pub id: String,
    /// The user's email in the source. A Meshwork account with this verified email searches as
    /// this user.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalsInput {
    /// Up to 1,000 users.
    pub principals: Vec<PrincipalInput>,
}

/// Add or replace users of a source.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/principals", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path)),
    request_body = PrincipalsInput,
    responses((status = 200, body = Stored), (status = 422, body = ErrorBody)))]
pub async fn put_principals(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, source)): Path<(uuid::Uuid, String)>,
    Json(input): Json<PrincipalsInput>,
) -> ApiResult<Json<Stored>> {
    check_source(&source)?;
    let ws = auth.workspace;
    if input.principals.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("field `principals`: send at most {MAX_BATCH} per request"),
        ));
    }
    let mut rows = Vec::with_capacity(input.principals.len());
    for (i, p) in input.principals.iter().enumerate() {
        check_id(&format!("principals[{i}].id"), &p.id)?;
        let email_index = match &p.email {
            Some(e) => {
                let e = EmailAddress::parse(&format!("principals[{i}].email"), e)
                    .map_err(ApiError::from)?;
                Some(source_email_index(&state, ws, e.as_str())?)
            }
            None => None,
        };
        rows.push(SourcePrincipalRow {
            principal: source_user(&state, ws, &source, &p.id)?,
            email_index,
        });
    }
    state
        .store
        .source_put_principals(ws, &source, &rows, now_millis())
        .await?;
    Ok(Json(Stored { stored: rows.len() }))
}

/// Remove a user of a source (and their group memberships).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/principals/{principal_id}", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path), ("principal_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_principal(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, source, id)): Path<(uuid::Uuid, String, String)>,
) -> ApiResult<StatusCode> {
    check_source(&source)?;
    let ws = auth.workspace;
    let p = source_user(&state, ws, &source, &id)?;
    if !state
        .store
        .source_delete_principal(ws, &source, &p, now_millis())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::SourceItemNotFound,
            format!("no user {id:?} in source {source:?}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    User,
    Group,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    #[serde(rename = "type")]
    pub kind: MemberKind,
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// The group's direct members (users and groups); replaces the previous list. At most 10,000.
    pub members: Vec<MemberInput>,
}

/// Set the members of a source group. Takes effect on the next search, with no reindexing.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/groups/{group_id}", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path), ("group_id" = String, Path)),
    request_body = GroupInput,
    responses((status = 204), (status = 422, body = ErrorBody)))]
pub async fn put_group(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, source, group)): Path<(uuid::Uuid, String, String)>,
    Json(input): Json<GroupInput>,
) -> ApiResult<StatusCode> {
    check_source(&source)?;
    check_id("group_id", &group)?;
    let ws = auth.workspace;
    if input.members.len() > 10_000 {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "field `members`: at most 10,000 direct members",
        ));
    }
    let mut members = Vec::with_capacity(input.members.len());
    for (i, m) in input.members.iter().enumerate() {
        check_id(&format!("members[{i}].id"), &m.id)?;
        members.push(match m.kind {
            MemberKind::User => source_user(&state, ws, &source, &m.id)?,
            MemberKind::Group => source_group(&state, ws, &source, &m.id)?,
        });
    }
    let g = source_group(&state, ws, &source, &group)?;
    state
        .store
        .source_set_group(ws, &source, &g, &members, now_millis())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a source group (and its membership in other groups).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/groups/{group_id}", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path), ("group_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_group(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, source, group)): Path<(uuid::Uuid, String, String)>,
) -> ApiResult<StatusCode> {
    check_source(&source)?;
    let ws = auth.workspace;
    let g = source_group(&state, ws, &source, &group)?;
    if !state
        .store
        .source_delete_group(ws, &source, &g, now_millis())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::SourceItemNotFound,
            format!("no group {group:?} in source {source:?}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceInfo {
    pub source: String,
    pub documents: i64,
}

/// The sources that pushed data to this workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sources", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<SourceInfo>)))]
pub async fn list_sources(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
) -> ApiResult<Json<Vec<SourceInfo>>> {
    Ok(Json(
        state
            .store
            .sources(auth.workspace)
            .await?
            .into_iter()
            .map(|(source, documents)| SourceInfo { source, documents })
            .collect(),
    ))
}

/// Disconnect a source: every document, user and group it pushed is deleted from the store and
/// the index (audited).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sources/{source}", tag = "search",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path)),
    responses((status = 200, body = Object, description = "`{documents_removed}`")))]
pub async fn disconnect(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Client(client): Client,
    Path((_, source)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<Value>> {
    check_source(&source)?;
    let ws = auth.workspace;
    let n = state
        .store
        .source_delete_all(ws, &source, now_millis())
        .await?;
    state.search.sync_after_write(&state, ws).await;
    audit::record(
        &state,
        Some(&client),
        Event {
            kind: "source.disconnected",
            workspace: Some(ws),
            actor: Some(auth.actor.user_id()),
            subject: None,
            details: json!({"source": source, "documents_removed": n}),
        },
    )
    .await?;
    Ok(Json(json!({"documents_removed": n})))
}
