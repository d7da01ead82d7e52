//! CRM imports through the API: upload a file (CSV in HubSpot, Salesforce or Pipedrive layout,
//! or vCard), follow its progress, revert it. The body is streamed into
//! `meshwork_app::import::uploads`, which seals it as it arrives (no plaintext reaches the disk)
//! and queues the import on the job runner.

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::import::uploads::{self, status, ImportRequest, ImportStatus, Upload};
use meshwork_app::import::{self, Progress};
use meshwork_app::state::AppState;
use meshwork_domain::{ErrorCode, JobId};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `company`, `contact` or `deal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `hubspot` (default), `salesforce`, `pipedrive` or `vcard` (contacts).
    pub layout: Option<String>,
    /// `upsert` (default), `create` or `update`.
    pub mode: Option<String>,
    /// `email`, `domain` or `external_id`; by default email for contacts, domain for companies,
    /// external_id for deals.
    pub match_on: Option<String>,
    /// A member's email: the owner of imported records that name none.
    pub owner: Option<String>,
    /// Tags added to every imported record, comma-separated.
    pub tags: Option<String>,
}

/// Reads and drops what is left of a refused upload (up to 16 MiB), so the client gets the
/// answer instead of a connection cut mid-send.
async fn drain(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > 16 << 20 {
            break;
        }
    }
}

/// Start an import: the body is the file (up to 2 GiB). Answers at once with the job; follow it
/// with `GET …/imports/{job_id}`. Rows are checked one by one: a bad row is rejected (listed by
/// row, line, column and reason) and never stops the import or half-writes a record.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/imports", tag = "crm",
    security(("session" = ["crm.import"]), ("api_key" = ["crm.import"])),
    params(("workspace_id" = uuid::Uuid, Path), ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The file: CSV with a header row, or vCard 3/4"),
    responses((status = 202, body = ImportStatus), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    auth: Authorized<perm::CrmImport>,
    Client(client): Client,
    Query(q): Query<ImportParams>,
    body: Body,
) -> ApiResult<(StatusCode, Json<ImportStatus>)> {
    let request = ImportRequest {
        kind: q.kind,
        layout: q.layout,
        mode: q.mode,
        match_on: q.match_on,
        owner: q.owner,
        tags: q.tags,
    };
    let checked = match uploads::check(&state, auth.workspace, &request).await {
        Ok(c) => c,
        Err(e) => {
            drain(body).await;
            return Err(e.into());
        }
    };
    // The upload, sealed chunk by chunk as it arrives.
    let mut upload = Upload::begin(&state, auth.workspace)?;
    let mut stream = body.into_data_stream();
    {
        use futures_util::StreamExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!("the upload was interrupted: {e}"),
                )
            })?;
            upload.write(&chunk)?;
        }
    }
    let job = uploads::start(&state, &client, &auth, checked, upload).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(status(job, "running", &Progress::default())),
    ))
}

/// Where an import stands: its counters and its first rejected rows.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/imports/{job_id}", tag = "crm",
    security(("session" = ["crm.import"]), ("api_key" = ["crm.import"])),
    params(("workspace_id" = uuid::Uuid, Path), ("job_id" = uuid::Uuid, Path)),
    responses((status = 200, body = ImportStatus), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::CrmImport>,
    Path((_, job)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<ImportStatus>> {
    let job = JobId(job);
    let (row, _, progress) = import::job_state(&state, auth.workspace, job).await?;
    Ok(Json(status(job, &row.state, &progress)))
}

/// Undo a finished import: delete the records it created, restore the fields it changed.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/imports/{job_id}/revert", tag = "crm",
    security(("session" = ["crm.import"]), ("api_key" = ["crm.import"])),
    params(("workspace_id" = uuid::Uuid, Path), ("job_id" = uuid::Uuid, Path)),
    responses((status = 200, body = ImportStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revert(
    State(state): State<AppState>,
    auth: Authorized<perm::CrmImport>,
    Client(client): Client,
    Path((_, job)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<ImportStatus>> {
    let job = JobId(job);
    let progress = uploads::revert(&state, &client, &auth, job).await?;
    Ok(Json(status(job, "reverted", &progress)))
}
