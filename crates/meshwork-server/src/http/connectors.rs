//! Connectors over HTTP (the service is `meshwork_app::connectors`): add one (its scopes are
//! listed first, and settings can be tried before saving), test it, sync now, pause, the sync
//! history, disconnect; and archiving a source's document. Admins only (`sources.write`).

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiResult, ErrorBody, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::connectors::{self, ConnectorChange, ConnectorView, NewConnector, RunView};
use meshwork_app::document_marks;
use meshwork_app::state::AppState;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

/// The kinds of connector and the read-only scopes each asks for (mm04), to show before
/// connecting.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/connector-kinds", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = [Object], description = "`[{kind, name, scopes: [{name, description}]}]`")))]
pub async fn kinds(_auth: Authorized<perm::SourcesWrite>) -> Json<Value> {
    Json(connectors::kinds())
}

/// The workspace's connectors, with their latest sync.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/connectors", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<ConnectorView>)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
) -> ApiResult<Json<Vec<ConnectorView>>> {
    Ok(Json(connectors::list(&state, &auth).await?))
}

/// Add a connector: its settings (credentials are sealed and never shown again) and schedule.
/// Its first sync is queued at once unless it is added paused.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/connectors", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = NewConnector,
    responses((status = 201, body = ConnectorView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Client(client): Client,
    Json(input): Json<NewConnector>,
) -> ApiResult<(StatusCode, Json<ConnectorView>)> {
    Ok((
        StatusCode::CREATED,
        Json(connectors::create(&state, &client, &auth, input).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryInput {
    /// The settings to try, as for adding a connector.
    pub settings: Value,
}

/// Try settings before saving them: connects, reads the least that proves they work, and says
/// what it found; a 422 says what is wrong.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/connectors/try", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = TryInput,
    responses((status = 200, body = Object, description = "`{message}`"), (status = 422, body = ErrorBody)))]
pub async fn try_settings(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Json(input): Json<TryInput>,
) -> ApiResult<Json<Value>> {
    let message = connectors::try_settings(&auth, &state, input.settings).await?;
    Ok(Json(json!({"message": message})))
}

/// One connector.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/connectors/{connector_id}", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("connector_id" = String, Path)),
    responses((status = 200, body = ConnectorView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<ConnectorView>> {
    Ok(Json(connectors::get(&state, &auth, &id).await?))
}

/// Pause or resume, change the interval or the settings (a secret sent back as `********` or
/// left out is kept).
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/connectors/{connector_id}", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("connector_id" = String, Path)),
    request_body = ConnectorChange,
    responses((status = 200, body = ConnectorView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Json(change): Json<ConnectorChange>,
) -> ApiResult<Json<ConnectorView>> {
    Ok(Json(
        connectors::update(&state, &client, &auth, &id, change).await?,
    ))
}

/// Disconnect: the connector and everything it brought (documents, people, groups, archived
/// marks, index entries) are deleted; nothing else (audited).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/connectors/{connector_id}", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("connector_id" = String, Path)),
    responses((status = 200, body = connectors::Disconnected, description = "What was removed, and the contacts kept because they were changed in Meshwork"), (status = 404, body = ErrorBody)))]
pub async fn disconnect(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<connectors::Disconnected>> {
    Ok(Json(
        connectors::disconnect(&state, &client, &auth, &id).await?,
    ))
}

/// Test a saved connector's connection.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/connectors/{connector_id}/test", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("connector_id" = String, Path)),
    responses((status = 200, body = Object, description = "`{message}`"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<Value>> {
    let message = connectors::test(&state, &auth, &id).await?;
    Ok(Json(json!({"message": message})))
}

/// Sync now: queues a sync; its progress and result are in the history.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/connectors/{connector_id}/sync", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("connector_id" = String, Path)),
    responses((status = 202, body = Object, description = "`{job}`: the sync's job (and run) id"), (status = 404, body = ErrorBody)))]
pub async fn sync(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let job = connectors::sync_now(&state, &auth, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job": job}))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// How many, newest first (1 to 200, default 20).
    pub limit: Option<i64>,
}

/// The sync history: each run's trigger, state, times, counts and problems.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/connectors/{connector_id}/runs", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("connector_id" = String, Path), RunsParams),
    responses((status = 200, body = Vec<RunView>), (status = 404, body = ErrorBody)))]
pub async fn runs(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Query(p): Query<RunsParams>,
) -> ApiResult<Json<Vec<RunView>>> {
    Ok(Json(
        connectors::runs(&state, &auth, &id, p.limit.unwrap_or(20)).await?,
    ))
}

/// Archive a document of a source: it leaves search now, and no sync brings it back (mm15).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/archived/{document_id}", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path), ("document_id" = String, Path)),
    responses((status = 204), (status = 422, body = ErrorBody)))]
pub async fn archive(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Client(client): Client,
    Path((_, source, doc)): Path<(uuid::Uuid, String, String)>,
) -> ApiResult<StatusCode> {
    connectors::archive(&state, &client, &auth, &source, &doc).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore an archived document: the next sync of its source brings it back.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sources/{source}/archived/{document_id}", tag = "connectors",
    security(("session" = ["sources.write"]), ("api_key" = ["sources.write"])),
    params(("workspace_id" = uuid::Uuid, Path), ("source" = String, Path), ("document_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unarchive(
    State(state): State<AppState>,
    auth: Authorized<perm::SourcesWrite>,
    Client(client): Client,
    Path((_, source, doc)): Path<(uuid::Uuid, String, String)>,
) -> ApiResult<StatusCode> {
    connectors::unarchive(&state, &client, &auth, &source, &doc).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pin a document found in search, or write one's own note on it (or both); a mark neither
/// pinned nor noted is removed. Only documents one may open; marks are one's own, and no sync
/// resets them.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/documents/{document_id}/mark", tag = "connectors",
    security(("session" = ["search.read"]), ("api_key" = ["search.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("document_id" = String, Path, description = "The document's id as search gives it")),
    request_body = document_marks::MarkChange,
    responses((status = 200, body = document_marks::MarkView), (status = 404, body = ErrorBody, description = "No such document that the caller may open (an API key opens none)"), (status = 422, body = ErrorBody)))]
pub async fn mark(
    State(state): State<AppState>,
    auth: Authorized<perm::SearchRead>,
    Path((_, doc)): Path<(uuid::Uuid, String)>,
    Json(change): Json<document_marks::MarkChange>,
) -> ApiResult<Json<document_marks::MarkView>> {
    Ok(Json(
        document_marks::mark(&state, &auth, &doc, change).await?,
    ))
}

/// One's pinned and noted documents (those one may still open), newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/documents/marks", tag = "connectors",
    security(("session" = ["search.read"]), ("api_key" = ["search.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<document_marks::MarkView>, description = "Empty for an API key: it is not a person")))]
pub async fn marks(
    State(state): State<AppState>,
    auth: Authorized<perm::SearchRead>,
) -> ApiResult<Json<Vec<document_marks::MarkView>>> {
    Ok(Json(document_marks::list(&state, &auth).await?))
}
