//! Partner overlap with workspaces on other Meshwork servers, over HTTP.
//!
//! - `/api/v1/workspaces/{ws}/remote-partnerships…`: the routes people and API keys use
//!   (invite, join, revoke, share, run, view, export), in the OpenAPI document.
//! - `/peer/v1/partnerships/{id}/…`: the routes partner servers call. They carry no session or
//!   API key: each request is signed with the partnership's link key (`meshwork_app::remote::link`),
//!   except the acceptance, which carries the invitation's secret. They are described in
//!   `docs/overlap-protocol.md`, not in the OpenAPI document (no person calls them).

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiResult, ErrorBody, Json, Path, Query};
use crate::http::overlap::{export_response, ExportParams};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use meshwork_app::overlap::SideSettings;
use meshwork_app::partnerships::{self, ExportFormat, Invited, RemoteOverlap, Revoked};
use meshwork_app::remote::responder::{self, PeerCall};
use meshwork_app::remote::{link, RemotePartnershipView, RunProgress};
use meshwork_app::state::AppState;
use meshwork_store::RemotePartnershipRow;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// The partnerships of this workspace with workspaces on other servers.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<RemotePartnershipView>)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
) -> ApiResult<Json<Vec<RemotePartnershipView>>> {
    Ok(Json(
        partnerships::remote_list(&state, auth.workspace).await?,
    ))
}

/// Invite a workspace on another Meshwork server. Nothing is shared until it accepts (with the
/// invitation) and each side chooses what to share.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 201, body = Invited), (status = 422, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
) -> ApiResult<(StatusCode, Json<Invited>)> {
    let invited = partnerships::remote_invite(&state, &client, &auth).await?;
    Ok((StatusCode::CREATED, Json(invited)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinInput {
    /// The invitation (`mwinv1.…`) the partner's admin gave you.
    pub invitation: String,
}

/// Accept an invitation from a workspace on another server: this server contacts it over
/// HTTPS and the partnership is active on both sides.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships/join", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = JoinInput,
    responses((status = 201, body = RemotePartnershipView), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn join(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Json(input): Json<JoinInput>,
) -> ApiResult<(StatusCode, Json<RemotePartnershipView>)> {
    let view = partnerships::remote_join(&state, &client, &auth, &input.invitation).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

impl std::fmt::Debug for JoinInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinInput").finish_non_exhaustive()
    }
}

/// End a partnership with another server (or withdraw an invitation), at once: the stored view
/// is deleted and the partner's server is told.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships/{partnership_id}/revoke", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = Revoked), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<Revoked>> {
    Ok(Json(
        partnerships::remote_revoke(&state, &client, &auth, &id).await?,
    ))
}

/// Choose what the partner learns about each of this workspace's populations (saved filters
/// only) and the "fewer than N" threshold. Replaces the previous choice; the partner's server
/// is told to drop the view it computed under the old one.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships/{partnership_id}/sharing", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    request_body = SideSettings,
    responses((status = 200, body = RemotePartnershipView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_sharing(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Json(input): Json<SideSettings>,
) -> ApiResult<Json<RemotePartnershipView>> {
    Ok(Json(
        partnerships::remote_set_sharing(&state, &client, &auth, &id, &input).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunParams {
    /// Answer when the run is over instead of at once (default false).
    pub wait: Option<bool>,
}

/// Compute your view of the overlap with the partner's server now (private set intersection;
/// large sets take minutes). Answers the run's progress; the view holds the result.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships/{partnership_id}/runs", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path), RunParams),
    responses((status = 202, body = RunProgress), (status = 200, body = RunProgress), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Query(q): Query<RunParams>,
) -> ApiResult<(StatusCode, Json<RunProgress>)> {
    let wait = q.wait.unwrap_or(false);
    let progress = partnerships::remote_run(&state, &client, &auth, &id, wait).await?;
    let status = if wait {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(progress)))
}

/// The account-mapping view of a partnership with another server.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships/{partnership_id}/overlap", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = RemoteOverlap), (status = 404, body = ErrorBody)))]
pub async fn view(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<RemoteOverlap>> {
    Ok(Json(
        partnerships::remote_view(&state, auth.workspace, &id).await?,
    ))
}

/// Export your overlapping records with a partner on another server as CSV or JSON. Audited.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/remote-partnerships/{partnership_id}/overlap/export", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path), ExportParams),
    responses((status = 200, description = "CSV (`id,type,name,populations,partner_populations`) or a JSON array"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Query(q): Query<ExportParams>,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(q.format.as_deref())?;
    let bytes = partnerships::remote_export(&state, &client, &auth, &id, format).await?;
    Ok(export_response(format, bytes))
}

// --- Routes partner servers call ----------------------------------------------------------------

/// Largest body a partner server sends: one chunk of points, with room to spare.
const PEER_BODY_LIMIT: usize = 1024 * 1024;

/// The peer routes (outside the OpenAPI document; authenticated by signature).
pub fn peer_router() -> Router<AppState> {
    Router::new()
        .route("/peer/v1/partnerships/{id}/accept", post(peer_accept))
        .route("/peer/v1/partnerships/{id}/revoke", post(peer_revoke))
        .route(
            "/peer/v1/partnerships/{id}/sharing-changed",
            post(peer_sharing_changed),
        )
        .route("/peer/v1/partnerships/{id}/runs", post(peer_run))
        .route(
            "/peer/v1/partnerships/{id}/runs/{run}",
            axum::routing::delete(peer_run_end),
        )
        .route(
            "/peer/v1/partnerships/{id}/runs/{run}/sessions/{n}",
            post(peer_session),
        )
        .route(
            "/peer/v1/partnerships/{id}/runs/{run}/sessions/{n}/query/{chunk}",
            put(peer_query_chunk),
        )
        .route(
            "/peer/v1/partnerships/{id}/runs/{run}/sessions/{n}/{kind}/{chunk}",
            get(peer_chunk),
        )
        .layer(DefaultBodyLimit::max(PEER_BODY_LIMIT))
}

/// The partnership a signed peer request is for, once its signature checks out (refused unless
/// active).
async fn signed(
    state: &AppState,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<RemotePartnershipRow> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    Ok(responder::verify(
        state,
        &PeerCall {
            partnership: id,
            method: method.as_str(),
            path_and_query: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            time: header(link::TIME_HEADER),
            signature: header(link::SIGNATURE_HEADER),
            body,
        },
    )
    .await?)
}

async fn peer_accept(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let answer = responder::accept(&state, &id, &body).await?;
    Ok(axum::Json(answer).into_response())
}

async fn peer_revoke(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    responder::revoked(&state, &row).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn peer_sharing_changed(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    responder::sharing_changed(&state, &row).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn peer_run(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    let plan = responder::start_run(&state, &row, &body).await?;
    Ok(axum::Json(plan).into_response())
}

async fn peer_run_end(
    State(state): State<AppState>,
    axum::extract::Path((id, run)): axum::extract::Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    responder::end_run(&state, &row, &run)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn peer_session(
    State(state): State<AppState>,
    axum::extract::Path((id, run, n)): axum::extract::Path<(String, String, u32)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    responder::open_session(&state, &row, &run, n, &body).await?;
    Ok(axum::Json(json!({"session": n})).into_response())
}

async fn peer_query_chunk(
    State(state): State<AppState>,
    axum::extract::Path((id, run, n, _chunk)): axum::extract::Path<(String, String, u32, u32)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    responder::query_chunk(&state, &row, &run, n, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn peer_chunk(
    State(state): State<AppState>,
    axum::extract::Path((id, run, n, kind, chunk)): axum::extract::Path<(
        String,
        String,
        u32,
        String,
        u32,
    )>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    let bytes = responder::message_chunk(&state, &row, &run, n, &kind, chunk).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}
