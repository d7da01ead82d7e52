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
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use crate::http::overlap::{export_response, ExportParams};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use meshwork_app::audit;
use meshwork_app::overlap::SideSettings;
use meshwork_app::partnerships::{self, ExportFormat, Invited, RemoteOverlap, Revoked};
use meshwork_app::remote::{
    self, link, served::Session, AcceptRequest, RemotePartnershipView, RunProgress,
};
use meshwork_app::state::AppState;
use meshwork_domain::ErrorCode;
use meshwork_overlap::RunId;
use meshwork_store::RemotePartnershipRow;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
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

/// The partnership a signed peer request is for, once its signature checks out; refused unless
/// active.
async fn signed(
    state: &AppState,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<RemotePartnershipRow> {
    let not_found = || {
        ApiError::new(
            ErrorCode::PartnershipNotFound,
            format!("no partnership {id:?} on this server"),
        )
    };
    let row = state
        .store
        .remote_partnership(id)
        .await?
        .ok_or_else(not_found)?;
    let link = remote::peer_of(state, &row)?.ok_or_else(not_found)?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    link::verify(
        &link.key()?,
        method.as_str(),
        path,
        header(link::TIME_HEADER),
        header(link::SIGNATURE_HEADER),
        body,
    )?;
    if row.state != "active" {
        return Err(meshwork_app::overlap::not_active().into());
    }
    Ok(row)
}

fn parse_run(hex_id: &str) -> ApiResult<RunId> {
    hex::decode(hex_id)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(RunId)
        .ok_or_else(|| remote::served::protocol_error("a run id is 16 bytes of hex").into())
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("invalid body: {e}")))
}

async fn peer_audit(
    state: &AppState,
    row: &RemotePartnershipRow,
    kind: &str,
    details: serde_json::Value,
) -> ApiResult<()> {
    audit::record(
        state,
        None,
        audit::Event {
            kind,
            workspace: Some(row.workspace_id),
            actor: None,
            subject: None,
            details,
        },
    )
    .await?;
    Ok(())
}

async fn peer_accept(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: AcceptRequest = json_body(&body)?;
    let (row, answer) = remote::accept_from_peer(&state, &id, req).await?;
    let partner_url = remote::peer_of(&state, &row)?.map(|l| l.url);
    peer_audit(
        &state,
        &row,
        "overlap.partnership_accepted",
        json!({"partnership": row.id, "remote": true, "by": "partner", "partner_url": partner_url}),
    )
    .await?;
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
    remote::revoked_by_peer(&state, row.clone()).await?;
    peer_audit(
        &state,
        &row,
        "overlap.partnership_revoked",
        json!({"partnership": row.id, "remote": true, "by": "partner"}),
    )
    .await?;
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
    remote::partner_sharing_changed(&state, row.clone()).await?;
    peer_audit(
        &state,
        &row,
        "overlap.partner_sharing_changed",
        json!({"partnership": row.id, "remote": true, "by": "partner"}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RunStart {
    run: String,
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
    let start: RunStart = json_body(&body)?;
    let run = parse_run(&start.run)?;
    let plan = remote::serve_run(&state, &row, run).await?;
    let shared: Vec<&str> = plan.populations.iter().map(|p| p.id.as_str()).collect();
    peer_audit(
        &state,
        &row,
        "overlap.run",
        json!({"partnership": row.id, "remote": true, "requested_by": "partner", "shared": shared}),
    )
    .await?;
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
    state.remote.served.remove(parse_run(&run)?, &row.id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SessionStart {
    psi_run: String,
    population: String,
    mode: String,
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
    let run = parse_run(&run)?;
    let start: SessionStart = json_body(&body)?;
    let protocol = |m: String| remote::served::protocol_error(m);
    if n >= remote::served::MAX_SESSIONS {
        return Err(protocol(format!("session {n} is past the most a run may have")).into());
    }
    let full = match start.mode.as_str() {
        "full" => true,
        "counts" => false,
        other => return Err(protocol(format!("mode {other:?} is not full or counts")).into()),
    };
    let psi_run = parse_run(&start.psi_run)?;
    let key = format!("{}/{}/{}", start.population, start.mode, start.psi_run);
    let items = state.remote.served.with(run, &row.id, |r| {
        if let Some((m, k, _)) = &r.current {
            if *m == n {
                return if *k == key {
                    Ok(None) // a retried request: the session exists
                } else {
                    Err(protocol(format!(
                        "session {n} was opened with other parameters"
                    )))
                };
            }
            if *m > n {
                return Err(protocol(format!("session {n} comes after session {m}")));
            }
        }
        r.admit_session(&start.population, full)?;
        // The previous session is over: drop its points.
        r.current = None;
        Ok(Some(r.populations[&start.population].1.clone()))
    })?;
    if let Some(items) = items {
        let _permit = state
            .remote
            .served
            .work
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        let started = std::time::Instant::now();
        let session = tokio::task::spawn_blocking(move || {
            Session::new(&remote::psi_config(), psi_run, full, &items)
        })
        .await
        .map_err(|e| ApiError::internal(format!("PSI task: {e}")))??;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "overlap session served: own set blinded"
        );
        state.remote.served.with(run, &row.id, |r| {
            r.current = Some((n, key, Arc::new(tokio::sync::Mutex::new(session))));
            Ok(())
        })?;
    }
    Ok(axum::Json(json!({"session": n})).into_response())
}

fn session_of(
    state: &AppState,
    row: &RemotePartnershipRow,
    run: RunId,
    n: u32,
) -> ApiResult<Arc<tokio::sync::Mutex<Session>>> {
    state
        .remote
        .served
        .with(run, &row.id, |r| match &r.current {
            Some((m, _, s)) if *m == n => Ok(s.clone()),
            _ => Err(remote::served::protocol_error(format!(
                "session {n} is not the run's current session"
            ))),
        })
        .map_err(ApiError::from)
}

async fn peer_query_chunk(
    State(state): State<AppState>,
    axum::extract::Path((id, run_hex, n, _chunk)): axum::extract::Path<(String, String, u32, u32)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let row = signed(&state, &id, &method, &uri, &headers, &body).await?;
    let run = parse_run(&run_hex)?;
    let session = session_of(&state, &row, run, n)?;
    let mut guard = session.clone().lock_owned().await;
    guard.receive(&body)?;
    if !guard.ready_to_respond() {
        return Ok(StatusCode::NO_CONTENT);
    }
    // The last chunk: compute the echo in a task of its own, holding the session's lock, so
    // that it completes even if this request is dropped (a retry then finds the echo).
    let work_state = state.clone();
    let task = tokio::spawn(async move {
        let _permit = work_state.remote.served.work.acquire().await;
        let taken = std::mem::replace(
            &mut *guard,
            Session::Failed("the echo is being computed".into()),
        );
        let started = std::time::Instant::now();
        let done = tokio::task::spawn_blocking(move || taken.respond()).await;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "overlap session served: echo computed"
        );
        *guard = match done {
            Ok(s) => s,
            Err(e) => Session::Failed(format!("the echo failed: {e}")),
        };
        match &*guard {
            Session::Failed(m) => Err(m.clone()),
            s => Ok((s.is_full(), s.echo().map(|e| e.total_points()).unwrap_or(0))),
        }
    });
    let (full, points) = task
        .await
        .map_err(|e| ApiError::internal(format!("PSI task: {e}")))?
        .map_err(remote::served::protocol_error)?;
    let population = state.remote.served.with(run, &row.id, |r| {
        Ok(r.current
            .as_ref()
            .and_then(|(_, k, _)| k.split('/').next().map(str::to_string))
            .unwrap_or_default())
    })?;
    // Each session is audited with what the partner asked: the population, the mode and the
    // size of its (padded) query.
    peer_audit(
        &state,
        &row,
        "overlap.session",
        json!({"partnership": row.id, "run": run_hex, "session": n, "population": population,
               "mode": if full { "full" } else { "counts" }, "query_points": points}),
    )
    .await?;
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
    let session = session_of(&state, &row, parse_run(&run)?, n)?;
    let guard = session.lock().await;
    let out = match kind.as_str() {
        "points" => guard.own_points()?,
        "echo" => guard.echo()?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::RouteNotFound,
                "a session has `points` and `echo` messages",
            ))
        }
    };
    let bytes = out.chunk(chunk).ok_or_else(|| {
        remote::served::protocol_error(format!(
            "chunk {chunk} is past the end of the {kind} message ({} chunks)",
            out.total_chunks()
        ))
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes,
    )
        .into_response())
}
