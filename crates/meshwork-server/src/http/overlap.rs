//! Partner overlap over HTTP: populations and match-only lists, partnerships (invite, accept,
//! revoke, what each side shares), runs, the account-mapping view and its export. See
//! `meshwork_app::overlap` for the scheme and `docs/overlap.md` for the product rules.

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use meshwork_app::overlap::{populations, Population, RunSummary, SideSettings, SideView};
use meshwork_app::partnerships::{self, ExportFormat, MatchListReport, PartnershipView};
use meshwork_app::state::AppState;
use meshwork_domain::{ErrorCode, WorkspaceId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub use meshwork_app::partnerships::MAX_MATCH_LIST_BYTES;

/// The workspace's populations: the built-in ones, saved filters and match-only lists.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/populations", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Population>)))]
pub async fn list_populations(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
) -> ApiResult<Json<Vec<Population>>> {
    Ok(Json(populations(&state, auth.workspace).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PopulationInput {
    pub name: String,
    /// A search filter over the CRM, e.g. `type:company tag:enterprise` or `type:deal
    /// stage:won` (deals stand for their companies and contacts).
    pub query: String,
}

/// Save a population: the CRM records a search filter matches.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/populations", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = PopulationInput,
    responses((status = 201, body = Population), (status = 422, body = ErrorBody)))]
pub async fn create_population(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Json(input): Json<PopulationInput>,
) -> ApiResult<(StatusCode, Json<Population>)> {
    let p =
        partnerships::create_population(&state, &client, &auth, &input.name, &input.query).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Delete a saved population or match-only list (built-in ones stay).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/populations/{population_id}", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("population_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_population(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<StatusCode> {
    partnerships::delete_population(&state, &client, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatchListParams {
    /// The list's name.
    pub name: String,
    /// What the rows are: `contacts` (emails, phones, company domains) or `companies`
    /// (domains). Default `contacts`.
    pub kind: Option<String>,
    /// The export's column layout: `hubspot` (default), `salesforce` or `pipedrive`.
    pub layout: Option<String>,
}

/// Load a match-only list: a CSV export from another CRM whose identifiers (emails, phones,
/// company domains) are normalised and kept only as keyed hashes, sealed; no raw value is stored
/// (pm02). The list becomes a population to compare with partners.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/match-lists", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), MatchListParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = MatchListReport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_match_list(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Query(p): Query<MatchListParams>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<MatchListReport>)> {
    let body = body.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "a match-only file is at most {} MiB",
                MAX_MATCH_LIST_BYTES / 1024 / 1024
            ),
        )
    })?;
    let report = partnerships::load_match_list(
        &state,
        &client,
        &auth,
        &p.name,
        p.kind.as_deref(),
        p.layout.as_deref(),
        body.to_vec(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(report)))
}

/// Partnerships of this workspace, pending ones included.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/partnerships", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<PartnershipView>)))]
pub async fn list_partnerships(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
) -> ApiResult<Json<Vec<PartnershipView>>> {
    Ok(Json(partnerships::list(&state, auth.workspace).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PartnerInviteInput)]
pub struct InviteInput {
    /// The partner's workspace on this server (they give you its id). Nothing is shared until
    /// they accept.
    pub partner_workspace_id: uuid::Uuid,
}

/// Invite another workspace of this server to partner. Nothing is shared until it accepts, and
/// then only what each side chooses.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = InviteInput,
    responses((status = 201, body = PartnershipView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Json(input): Json<InviteInput>,
) -> ApiResult<(StatusCode, Json<PartnershipView>)> {
    let view = partnerships::invite(
        &state,
        &client,
        &auth,
        WorkspaceId(input.partner_workspace_id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Accept an invitation (only the invited workspace can).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/accept", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = PartnershipView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<PartnershipView>> {
    Ok(Json(
        partnerships::accept(&state, &client, &auth, &id).await?,
    ))
}

/// End a partnership (either side, at any time) or decline or withdraw an invitation. Sharing
/// stops at once: both sides' stored overlap is deleted in the same transaction.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/revoke", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = PartnershipView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<PartnershipView>> {
    Ok(Json(
        partnerships::revoke(&state, &client, &auth, &id).await?,
    ))
}

/// Choose what the partner learns about each of this workspace's populations, and the
/// threshold under which counts read "fewer than N". Replaces the previous choice whole.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/sharing", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    request_body = SideSettings,
    responses((status = 200, body = PartnershipView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_sharing(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Json(input): Json<SideSettings>,
) -> ApiResult<Json<PartnershipView>> {
    Ok(Json(
        partnerships::set_sharing(&state, &client, &auth, &id, &input).await?,
    ))
}

/// Compute the overlap now, for both sides (it is also recomputed whenever a view finds either
/// side's data or the sharing changed).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/runs", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = RunSummary), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<RunSummary>> {
    Ok(Json(partnerships::run(&state, &client, &auth, &id).await?))
}

/// The account-mapping view: your populations × the partner's shared ones with counts ("fewer
/// than N" under the partner's threshold), and your own records that the partner also has, where
/// the partner shares indicators. Nothing about the partner's other records is in it.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/overlap", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = SideView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn view(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<SideView>> {
    Ok(Json(partnerships::view(&state, &client, &auth, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
}

/// Export your overlapping records (the list of the view) as CSV or JSON. Audited.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/overlap/export", tag = "partners",
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
    let bytes = partnerships::export(&state, &client, &auth, &id, format).await?;
    Ok(export_response(format, bytes))
}

/// An exported view as a response: a JSON array, or a CSV file to save.
pub(crate) fn export_response(format: ExportFormat, bytes: Vec<u8>) -> Response {
    match format {
        ExportFormat::Json => {
            ([(header::CONTENT_TYPE, format.content_type())], bytes).into_response()
        }
        ExportFormat::Csv => (
            [
                (header::CONTENT_TYPE, format.content_type()),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"overlap.csv\"",
                ),
            ],
            bytes,
        )
            .into_response(),
    }
}
