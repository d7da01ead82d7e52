//! CRM imports through the API: upload a file (CSV in HubSpot, Salesforce or Pipedrive layout,
//! or vCard), follow its progress, revert it. The upload is sealed with the workspace key as it
//! arrives (`meshwork_app::upload`), so no plaintext reaches the disk; the import runs as a durable job
//! in the background and resumes after a restart (`meshwork_app::import::background`).

use crate::auth::{perm, Authorized};
use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use meshwork_app::audit;
use meshwork_app::import::{self, ImportSpec, Mode, Progress, RowProblem};
use meshwork_app::state::AppState;
use meshwork_domain::{ErrorCode, JobId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// The largest file an import takes.
pub const MAX_IMPORT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Rejected rows listed in a status (all are counted).
const LISTED_ERRORS: usize = 1000;

#[derive(Debug, Deserialize, IntoParams)]
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

/// Where an import stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportStatus {
    pub id: uuid::Uuid,
    /// `running`, `done`, `failed` or `reverted`.
    pub state: String,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
    /// Rows that matched a record an earlier row of the file wrote (merged into it).
    pub duplicates_in_file: u64,
    /// Rows naming an owner who is not a member (given the default owner).
    pub owners_unmatched: u64,
    pub reverted: u64,
    /// The first rejected rows: row, line, column and reason.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<RowProblem>,
}

fn status(id: JobId, state: &str, p: &Progress) -> ImportStatus {
    ImportStatus {
        id: id.as_uuid(),
        state: state.to_string(),
        rows: p.rows,
        created: p.created,
        updated: p.updated,
        rejected: p.rejected,
        duplicates_in_file: p.duplicates_in_file,
        owners_unmatched: p.owners_unmatched,
        reverted: p.reverted,
        errors: p.errors.iter().take(LISTED_ERRORS).cloned().collect(),
    }
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidField,
        format!("query `{field}`: {}", message.into()),
    )
}

/// The import's settings from the query, checked before a byte of the body is stored.
struct Checked {
    kind: String,
    layout: String,
    mode: Mode,
    match_on: String,
    default_owner: Option<meshwork_domain::UserId>,
    default_tags: Vec<String>,
}

async fn check(
    state: &AppState,
    ws: meshwork_domain::WorkspaceId,
    q: &ImportParams,
) -> ApiResult<Checked> {
    let kind = match q.kind.as_str() {
        "company" | "contact" | "deal" => q.kind.clone(),
        other => {
            return Err(bad(
                "type",
                format!("{other:?} is not company, contact or deal"),
            ))
        }
    };
    let layout = q
        .layout
        .clone()
        .unwrap_or_else(|| "hubspot".into())
        .to_lowercase();
    if !["hubspot", "salesforce", "pipedrive", "vcard"].contains(&layout.as_str()) {
        return Err(bad("layout", format!("{layout:?} is not hubspot, salesforce, pipedrive or vcard (the generic layout needs a mapping file: use `meshwork import`)")));
    }
    if layout == "vcard" && kind != "contact" {
        return Err(bad("layout", "vCards hold contacts; use type=contact"));
    }
    let mode = match q.mode.as_deref().unwrap_or("upsert") {
        "upsert" => Mode::Upsert,
        "create" => Mode::Create,
        "update" => Mode::Update,
        other => {
            return Err(bad(
                "mode",
                format!("{other:?} is not upsert, create or update"),
            ))
        }
    };
    let match_on = q.match_on.clone().unwrap_or_else(|| {
        match kind.as_str() {
            "contact" => "email",
            "company" => "domain",
            _ => "external_id",
        }
        .into()
    });
    if !["email", "domain", "external_id"].contains(&match_on.as_str()) {
        return Err(bad(
            "match_on",
            format!("{match_on:?} is not email, domain or external_id"),
        ));
    }
    let default_owner = match &q.owner {
        Some(email) => Some(
            *meshwork_app::crm::members_by_email(state, ws)
                .await?
                .get(&email.trim().to_lowercase())
                .ok_or_else(|| {
                    bad(
                        "owner",
                        format!("{email:?} is not a member of this workspace"),
                    )
                })?,
        ),
        None => None,
    };
    let default_tags: Vec<String> = q
        .tags
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();

    Ok(Checked {
        kind,
        layout,
        mode,
        match_on,
        default_owner,
        default_tags,
    })
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
    let ws = auth.workspace;
    let Checked {
        kind,
        layout,
        mode,
        match_on,
        default_owner,
        default_tags,
    } = match check(&state, ws, &q).await {
        Ok(c) => c,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };

    // The upload, sealed chunk by chunk as it arrives.
    let upload = uuid::Uuid::now_v7().to_string();
    let path = import::background::upload_path(&state, ws, &upload);
    let key = state.workspace_key(ws)?;
    let mut writer = meshwork_app::upload::SealedWriter::create(&path, key, ws, &upload)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", path.display())))?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    let received: Result<(), ApiError> = async {
        use futures_util::StreamExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!("the upload was interrupted: {e}"),
                )
            })?;
            size += chunk.len() as u64;
            if size > MAX_IMPORT_BYTES {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("an import takes at most {MAX_IMPORT_BYTES} bytes; split the file"),
                ));
            }
            writer
                .write(&chunk)
                .map_err(|e| ApiError::internal(format!("writing {}: {e}", path.display())))?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = received {
        drop(writer);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    if size == 0 {
        drop(writer);
        let _ = std::fs::remove_file(&path);
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "the body is empty: send the file to import",
        ));
    }
    writer
        .finish()
        .map_err(|e| ApiError::internal(format!("writing {}: {e}", path.display())))?;
    let sha256 = import::sha256_file(&path).map_err(ApiError::internal)?;
    let spec = ImportSpec {
        file: path.clone(),
        sha256,
        kind: kind.clone(),
        layout: layout.clone(),
        mapping: None,
        mode,
        match_on,
        default_owner,
        default_tags,
        error_csv: Default::default(),
        sealed_upload: Some(upload),
    };
    let job = match import::create_job(&state, ws, auth.actor.user_id(), &spec).await {
        Ok(job) => job,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
    };
    audit::workspace_event(
        &state,
        &client,
        "crm.import_started",
        &auth,
        None,
        json!({"job": job.to_string(), "type": kind, "layout": layout, "bytes": size}),
    )
    .await?;
    import::background::queue(&state, ws, job).await?;
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
    let progress = import::revert(&state, auth.workspace, job).await?;
    audit::workspace_event(
        &state,
        &client,
        "crm.import_reverted",
        &auth,
        None,
        json!({"job": job.to_string(), "reverted": progress.reverted}),
    )
    .await?;
    Ok(Json(status(job, "reverted", &progress)))
}
