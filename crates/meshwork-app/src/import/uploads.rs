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
    /// A mapping file of the generic layout (see [`Checked::with_mapping`]).
    pub mapping: Option<String>,
}

impl Checked {
    /// The same import, reading the file with a mapping of its columns chosen by a person
    /// (header cell, target field) rather than a named layout. Checked as a mapping file is:
    /// each target a field of the kind, no column twice, at least one column imported.
    pub fn with_mapping(mut self, pairs: Vec<(String, String)>) -> AppResult<Checked> {
        if self.layout == "vcard" {
            return Err(bad(
                "layout",
                "a vCard's fields are fixed; they are not mapped",
            ));
        }
        if pairs.is_empty() {
            return Err(bad("mapping", "choose a field for at least one column"));
        }
        let kind = super::record_kind(
            self.kind
                .parse::<meshwork_crm::Kind>()
                .map_err(|_| bad("type", "not company, contact or deal"))?,
        )?;
        let mapping = meshwork_crm_io::Mapping::from_pairs(pairs, kind)
            .map_err(|e| bad("mapping", e.to_string()))?;
        self.layout = "generic".into();
        self.mapping = Some(mapping.to_toml_string());
        Ok(self)
    }
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
        mapping: None,
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
    /// What `quotas.workspace_upload_bytes` leaves this upload, given the workspace's other
    /// uploads on disk when it began (`None`: no limit).
    room: Option<u64>,
}

impl Upload {
    /// Starts receiving a file for an import into `ws`.
    pub fn begin(state: &AppState, ws: WorkspaceId) -> AppResult<Self> {
        let id = uuid::Uuid::now_v7().to_string();
        let path = background::upload_path(state, ws, &id);
        let key = state.workspace_key(ws)?;
        let limit = state.config.quotas.workspace_upload_bytes;
        let room = (limit > 0).then(|| {
            let held: u64 = path
                .parent()
                .and_then(|dir| std::fs::read_dir(dir).ok())
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum();
            limit.saturating_sub(held)
        });
        let writer = crate::upload::SealedWriter::create(&path, key, ws, &id)
            .map_err(|e| AppError::internal(format!("creating {}: {e}", path.display())))?;
        Ok(Self {
            id,
            path,
            writer: Some(writer),
            size: 0,
            room,
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
        if self.room.is_some_and(|room| self.size > room) {
            return Err(AppError::new(
                ErrorCode::QuotaExceeded,
                "this workspace's import uploads would take more disk than this server allows one (quotas.workspace_upload_bytes): import or let go of the files already uploaded (an upload not imported is removed after a day), or split this one",
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

    /// Finishes the upload and keeps it, unimported, for the page that previews it: its id is
    /// answered, and [`start_staged`] imports it later. A staged upload never imported is
    /// removed by housekeeping after a day ([`sweep_staged`]).
    pub fn stage(mut self) -> AppResult<String> {
        if self.size == 0 {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                "field `file`: the file is empty",
            ));
        }
        let writer = self.writer.take().expect("an upload being written");
        if let Err(e) = writer.finish() {
            let _ = std::fs::remove_file(&self.path);
            return Err(AppError::internal(format!(
                "writing {}: {e}",
                self.path.display()
            )));
        }
        let staged = staged_path(&self.path, &self.id);
        std::fs::rename(&self.path, &staged)
            .map_err(|e| AppError::internal(format!("staging {}: {e}", self.path.display())))?;
        Ok(self.id.clone())
    }
}

/// The name prefix of a staged upload (see [`Upload::stage`]).
const STAGED: &str = "staged-";

fn staged_path(upload_path: &std::path::Path, id: &str) -> PathBuf {
    upload_path.with_file_name(format!("{STAGED}{id}.sealed"))
}

/// What a page shows of an uploaded file before it is imported: the layout it is read in (the
/// named layout that reads most of its columns, unless one was chosen), its encoding, which
/// column feeds which field, the columns nothing reads, and its first rows.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub layout: String,
    pub encoding: String,
    pub mapped: Vec<(String, String)>,
    pub ignored: Vec<String>,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Why the file cannot be imported as it is (no layout reads it, not text, ...).
    pub problem: Option<String>,
}

/// How many rows a preview shows.
const PREVIEW_ROWS: usize = 5;

/// Reads the head of a staged upload of `ws` (see [`Upload::stage`]) as `kind` records in
/// `layout` (`None`: detected).
pub fn preview(
    state: &AppState,
    ws: WorkspaceId,
    upload: &str,
    kind: &str,
    layout: Option<&str>,
) -> AppResult<Preview> {
    use meshwork_crm_io::{CsvRows, Layout, ReaderOptions};
    if uuid::Uuid::parse_str(upload).is_err() {
        return Err(bad("upload", "no such upload; send the file again"));
    }
    let path = staged_path(&background::upload_path(state, ws, upload), upload);
    let key = state.workspace_key(ws)?;
    let open = || -> AppResult<Box<dyn std::io::Read>> {
        let r = crate::upload::SealedReader::open(&path, key.clone(), ws, upload)
            .map_err(|_| bad("upload", "no such upload; send the file again"))?;
        Ok(Box::new(std::io::BufReader::new(r)))
    };
    let rk = super::record_kind(
        kind.parse::<meshwork_crm::Kind>()
            .map_err(|_| bad("type", format!("{kind:?} is not company, contact or deal")))?,
    )?;
    // A vCard says so in its first line.
    let mut head = [0u8; 64];
    let n = std::io::Read::read(&mut open()?, &mut head).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).to_ascii_uppercase();
    if layout == Some("vcard")
        || (layout.is_none()
            && text
                .trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with("BEGIN:VCARD"))
    {
        let mut p = Preview {
            layout: "vcard".into(),
            encoding: "UTF-8".into(),
            ..Default::default()
        };
        if kind != "contact" {
            p.problem = Some("vCards hold contacts; import them as contacts".into());
        }
        return Ok(p);
    }
    let candidates: Vec<&str> = match layout {
        Some(l) => vec![l],
        None => vec!["hubspot", "salesforce", "pipedrive"],
    };
    let options = ReaderOptions::default();
    // The layout that leaves fewest columns unread: (unread, name, its reader).
    type Candidate = (usize, String, CsvRows<Box<dyn std::io::Read>>);
    let mut best: Option<Candidate> = None;
    let mut last_problem = None;
    for name in candidates {
        let parsed: Layout = name
            .parse()
            .map_err(|e: meshwork_crm_io::UnknownName| bad("layout", e.to_string()))?;
        match CsvRows::open(open()?, rk, &parsed, &options) {
            Ok(rows) => {
                let ignored = rows.ignored_columns().len();
                if best.as_ref().is_none_or(|(b, _, _)| ignored < *b) {
                    best = Some((ignored, name.to_string(), rows));
                }
            }
            Err(e) => last_problem = Some(e.to_string()),
        }
    }
    let Some((_, name, mut rows)) = best else {
        return Ok(Preview {
            layout: layout.unwrap_or("hubspot").to_string(),
            problem: last_problem,
            ..Default::default()
        });
    };
    let mut p = Preview {
        layout: name,
        encoding: rows.encoding().to_string(),
        header: rows.header().to_vec(),
        ignored: rows.ignored_columns().to_vec(),
        ..Default::default()
    };
    for r in rows.by_ref().take(PREVIEW_ROWS).flatten() {
        for f in &r.fields {
            if !p.mapped.iter().any(|(c, _)| *c == f.column) {
                p.mapped.push((f.column.clone(), f.target.clone()));
            }
        }
        p.rows.push(r.raw);
    }
    Ok(p)
}

/// Imports a staged upload (see [`Upload::stage`]) with the checked settings: the job is
/// created, audited and queued, as [`start`] does for an upload just received.
pub async fn start_staged(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    checked: Checked,
    upload: &str,
) -> AppResult<JobId> {
    if uuid::Uuid::parse_str(upload).is_err() {
        return Err(bad("upload", "no such upload; send the file again"));
    }
    let ws = auth.workspace();
    let path = background::upload_path(state, ws, upload);
    // Taking the staged file is what makes a second start of the same upload find nothing.
    std::fs::rename(staged_path(&path, upload), &path).map_err(|_| {
        bad(
            "upload",
            "no such upload (it was imported already, or is more than a day old); send the file again",
        )
    })?;
    let unstage = |e: AppError| {
        // Not started: the upload waits again for its import.
        let _ = std::fs::rename(&path, staged_path(&path, upload));
        e
    };
    let size = std::fs::metadata(&path)
        .map_err(|e| unstage(AppError::internal(e.to_string())))?
        .len();
    let sha256 = sha256_file(&path).map_err(|e| unstage(AppError::internal(e)))?;
    launch(
        state,
        client,
        auth,
        checked,
        path.clone(),
        upload.to_string(),
        sha256,
        size,
    )
    .await
    .map_err(unstage)
}

/// Removes staged uploads older than a day that no import took, and the rejected rows of
/// imports once their time is up (housekeeping).
pub fn sweep_staged(state: &AppState) -> usize {
    let root = state.config.data_dir.join("uploads");
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    let rejected_cutoff = std::time::SystemTime::now()
        - std::time::Duration::from_millis(super::REJECTED_KEPT_MS as u64);
    let mut removed = 0;
    for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let modified = file.metadata().and_then(|m| m.modified()).ok();
            // Staged uploads no import took, after a day; an import's rejected rows, after
            // the time they are kept for.
            let expired = if name.starts_with(STAGED) {
                modified.is_some_and(|t| t < cutoff)
            } else if name.starts_with("rejected-") {
                modified.is_some_and(|t| t < rejected_cutoff)
            } else {
                false
            };
            if expired && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
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
    launch(
        state,
        client,
        auth,
        checked,
        path.clone(),
        upload.id.clone(),
        sha256,
        upload.size,
    )
    .await
    .map_err(cleanup)
}

/// Creates, audits and queues the import job of a sealed upload.
#[allow(clippy::too_many_arguments)]
async fn launch(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    checked: Checked,
    path: PathBuf,
    upload: String,
    sha256: String,
    size: u64,
) -> AppResult<JobId> {
    let ws = auth.workspace();
    let Checked {
        kind,
        layout,
        mode,
        match_on,
        default_owner,
        default_tags,
        mapping,
    } = checked;
    let spec = ImportSpec {
        file: path,
        sha256,
        kind: kind.clone(),
        layout: layout.clone(),
        mapping,
        mode,
        match_on,
        default_owner,
        default_tags,
        error_csv: Default::default(),
        sealed_upload: Some(upload),
    };
    let job = create_job(state, ws, auth.actor().user_id(), &spec).await?;
    audit::workspace_event(
        state,
        client,
        "crm.import_started",
        auth,
        None,
        json!({"job": job.to_string(), "type": kind, "layout": layout, "bytes": size}),
    )
    .await?;
    background::queue(state, ws, job).await?;
    Ok(job)
}

/// Undoes a finished import (records it created deleted, fields it changed restored). Audited.
pub async fn revert(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    job: JobId,
) -> AppResult<Progress> {
    let progress = super::revert(state, auth.workspace(), job).await?;
    // The rejected rows go with the import.
    let _ = std::fs::remove_file(background::rejected_path(state, auth.workspace(), job));
    audit::workspace_event(
        state,
        client,
        "crm.import_reverted",
        auth,
        None,
        json!({"job": job.to_string(), "reverted": progress.reverted}),
    )
    .await?;
    Ok(progress)
}
