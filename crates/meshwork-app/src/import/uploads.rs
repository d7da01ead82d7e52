//! Imports of files uploaded through the API: the settings checked before anything is stored,
//! the upload sealed with the workspace key chunk by chunk as it arrives (no plaintext reaches
//! the disk), then the job created and queued on the runner. The API and, later, the pages call
//! the same steps.

use super::{background, create_job, sha256_file, ImportSpec, Mode, Progress, RowProblem};
use crate::actor::{ClientInfo, InWorkspace};
use crate::audit;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use meshwork_domain::{ErrorCode, JobId, WorkspaceId};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

/// The largest file an import takes.
pub const MAX_IMPORT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Rejected rows listed in a status (all are counted).
const LISTED_ERRORS: usize = 1000;

/// What the caller asks for, unchecked (the API's query string).
#[derive(Debug, Default)]
pub struct ImportRequest {
    /// `company`, `contact` or `deal`.
    pub kind: String,
    /// `hubspot` (default), `salesforce`, `pipedrive` or `vcard` (contacts).
    pub layout: Option<String>,
    /// `upsert` (default), `create` or `update`.
    pub mode: Option<String>,
    /// `email`, `domain` or `external_id`.
    pub match_on: Option<String>,
    /// A member's email: the owner of imported records that name none.
    pub owner: Option<String>,
    /// Tags added to every imported record, comma-separated.
    pub tags: Option<String>,
}

/// Where an import stands.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Cells whose line breaks were folded into spaces (the row kept its record).
    pub folded: u64,
    /// The first of those: row, line, column and what was done.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub notes: Vec<RowProblem>,
    /// The first rejected rows: row, line, column and reason.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub errors: Vec<RowProblem>,
}

pub fn status(id: JobId, state: &str, p: &Progress) -> ImportStatus {
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
        folded: p.folded,
        notes: p.notes.iter().take(LISTED_ERRORS).cloned().collect(),
        errors: p.errors.iter().take(LISTED_ERRORS).cloned().collect(),
    }
}

fn bad(field: &str, message: impl Into<String>) -> AppError {
    AppError::new(
        ErrorCode::InvalidField,
        format!("query `{field}`: {}", message.into()),
    )
}

/// The import's settings, checked before a byte of the file is stored.
#[derive(Debug)]
pub struct Checked {
    pub kind: String,
    pub layout: String,
    pub mode: Mode,
    pub match_on: String,
    pub default_owner: Option<meshwork_domain::UserId>,
    pub default_tags: Vec<String>,
}

pub async fn check(
    state: &AppState,
    ws: meshwork_domain::WorkspaceId,
    q: &ImportRequest,
) -> AppResult<Checked> {
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
            *crate::crm::members_by_email(state, ws)
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

/// An upload being received, sealed as it arrives. Dropped without [`Upload::finish`], it
/// leaves nothing behind.
#[derive(Debug)]
pub struct Upload {
    id: String,
    path: PathBuf,
    writer: Option<crate::upload::SealedWriter>,
    size: u64,
}

impl Upload {
    /// Starts receiving a file for an import into `ws`.
    pub fn begin(state: &AppState, ws: WorkspaceId) -> AppResult<Self> {
        let id = uuid::Uuid::now_v7().to_string();
        let path = background::upload_path(state, ws, &id);
        let key = state.workspace_key(ws)?;
        let writer = crate::upload::SealedWriter::create(&path, key, ws, &id)
            .map_err(|e| AppError::internal(format!("creating {}: {e}", path.display())))?;
        Ok(Self {
            id,
            path,
            writer: Some(writer),
            size: 0,
        })
    }

    /// Seals and writes the next bytes; refuses a file past [`MAX_IMPORT_BYTES`].
    pub fn write(&mut self, chunk: &[u8]) -> AppResult<()> {
        self.size += chunk.len() as u64;
        if self.size > MAX_IMPORT_BYTES {
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("an import takes at most {MAX_IMPORT_BYTES} bytes; split the file"),
            ));
        }
        self.writer
            .as_mut()
            .expect("an upload being written")
            .write(chunk)
            .map_err(|e| AppError::internal(format!("writing {}: {e}", self.path.display())))
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Finishes an upload and starts its import: the job is created, audited and queued on the
/// runner. Answers the job; an empty upload is refused and nothing is kept.
pub async fn start(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    checked: Checked,
    mut upload: Upload,
) -> AppResult<JobId> {
    let ws = auth.workspace();
    if upload.size == 0 {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "the body is empty: send the file to import",
        ));
    }
    let writer = upload.writer.take().expect("an upload being written");
    let path = upload.path.clone();
    let cleanup = |e: AppError| {
        let _ = std::fs::remove_file(&path);
        e
    };
    writer.finish().map_err(|e| {
        cleanup(AppError::internal(format!(
            "writing {}: {e}",
            path.display()
        )))
    })?;
    let sha256 = sha256_file(&path).map_err(|e| cleanup(AppError::internal(e)))?;
    let Checked {
        kind,
        layout,
        mode,
        match_on,
        default_owner,
        default_tags,
    } = checked;
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
        sealed_upload: Some(upload.id.clone()),
    };
    let job = create_job(state, ws, auth.actor().user_id(), &spec)
        .await
        .map_err(cleanup)?;
    audit::workspace_event(
        state,
        client,
        "crm.import_started",
        auth,
        None,
        json!({"job": job.to_string(), "type": kind, "layout": layout, "bytes": upload.size}),
    )
    .await?;
    background::queue(state, ws, job).await?;
    Ok(job)
}
