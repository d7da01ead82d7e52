//! Search and the push API of sources (the service is `meshwork_app::sources`). `GET …/search` is the one search box over CRM records and
//! source documents. Sources (a connector, or a script using an API key) push documents with the
//! principals allowed to read them, their users (joined to Meshwork accounts by verified email)
//! and their groups (which may contain groups); access is evaluated when a search runs, so a
//! group change needs no reindexing.

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::sources::{
    self, DocumentsInput, GroupInput, PrincipalsInput, SourceInfo, Stored,
};
use meshwork_app::state::AppState;
use meshwork_domain::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    let stored = sources::put_documents(&state, auth.workspace, &source, &input.documents).await?;
    Ok(Json(Stored { stored }))
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
    sources::delete_document(&state, auth.workspace, &source, &doc).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let stored =
        sources::put_principals(&state, auth.workspace, &source, &input.principals).await?;
    Ok(Json(Stored { stored }))
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
    sources::delete_principal(&state, auth.workspace, &source, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    sources::set_group(&state, auth.workspace, &source, &group, &input.members).await?;
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
    sources::delete_group(&state, auth.workspace, &source, &group).await?;
    Ok(StatusCode::NO_CONTENT)
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
    Ok(Json(sources::list(&state, auth.workspace).await?))
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
    let n = sources::disconnect(&state, &client, &auth, &source).await?;
    Ok(Json(json!({"documents_removed": n})))
}
