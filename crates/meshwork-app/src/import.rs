//! Imports as durable jobs. A job reads its file from the start each time it runs, skips the
//! rows its cursor says are done, and commits each batch of records in the same transaction as
//! the advanced cursor and counters: killed at any point and run again, it neither duplicates
//! nor loses a row. Each record it creates or changes is listed with its previous state, so
//! the whole import can be reverted.
//!
//! Rows that cannot be imported never stop the job and never half-write a record: each is
//! counted with its row, column and reason, and at the end the rejected rows are written to an
//! error CSV (re-read from the source file, so no raw cell is ever stored in the database).

use crate::crm::Crm;
use crate::error::{AppError, AppResult};
use crate::state::{now_millis, AppState};
use meshwork_crm::{CustomFieldDef, Doc, Kind, Validated};
use meshwork_crm_io::{
    CsvRows, ErrorCsv, Layout, MappedRow, Mapping, ReaderOptions, RecordKind, RowError,
};
use meshwork_domain::{ErrorCode, JobId, RecordId, UserId, WorkspaceId};
use meshwork_store::{
    CrmBatch, CrmOp, Hash32, ImportItemRow, JobRow, KeyEntry, LinkRow, RecordRow,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Rows in an import's first transaction; each next one holds as many rows as the file's rows
/// before it, up to [`MAX_BATCH`]. The first batches land (and show progress) soon; the later
/// ones are large because each transaction rewrites every page of the dedup keys' index it
/// touches, and those keys are HMACs at random places: four times the rows touch about two and
/// a half times the pages. The sizes follow from the place in the file, so a resumed import
/// cuts its batches where an uninterrupted one does (a row repeating an earlier one of its own
/// batch counts as a duplicate in the file, of an earlier batch as an update).
const FIRST_BATCH: usize = 4000;
/// Rows per transaction once an import has ramped up.
const MAX_BATCH: usize = 16_000;
/// Rows between two catch-ups of the search index while an import runs.
const INDEX_EVERY: u64 = 64_000;
/// Rejected rows remembered with their reason (beyond this only counted).
const MAX_REMEMBERED_ERRORS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Only new records; rows matching an existing record are rejected.
    Create,
    /// Only existing records; rows matching none are rejected.
    Update,
    /// Update what matches, create the rest.
    Upsert,
}

/// What an import job does; stored sealed with the job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportSpec {
    pub file: PathBuf,
    /// SHA-256 of the file: a resumed job refuses a file that changed.
    pub sha256: String,
    pub kind: String,
    /// `hubspot`, `salesforce`, `pipedrive`, `generic` (with `mapping`) or `vcard`.
    pub layout: String,
    pub mapping: Option<String>,
    pub mode: Mode,
    /// `email`, `domain` or `external_id`.
    pub match_on: String,
    pub default_owner: Option<UserId>,
    #[serde(default)]
    pub default_tags: Vec<String>,
    pub error_csv: PathBuf,
    /// Set for a file uploaded through the API: `file` is then sealed with the workspace key
    /// under this upload id (`crate::upload`), and no error CSV is written (rejected rows are in
    /// the job's progress, without their values).
    #[serde(default)]
    pub sealed_upload: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RowProblem {
    pub row: u64,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

/// A job's counters, stored sealed with the job.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
    pub errors: Vec<RowProblem>,
    #[serde(default)]
    pub reverted: u64,
    /// Rows naming an owner who is not a member of the workspace (given the default owner).
    #[serde(default)]
    pub owners_unmatched: u64,
    /// Rows that matched a record an earlier row of the same batch wrote (merged into it).
    #[serde(default)]
    pub duplicates_in_file: u64,
    /// Cells of one-line fields that held line breaks (common in other CRMs' exports), folded
    /// into spaces so the row keeps its record.
    #[serde(default)]
    pub folded: u64,
    /// The first of those, with row, column and what was done.
    #[serde(default)]
    pub notes: Vec<RowProblem>,
}

fn seal_json(crm: &Crm<'_>, job: JobId, field: &str, v: &impl Serialize) -> Vec<u8> {
    crm.seal_value(
        &job.to_string(),
        field,
        &serde_json::to_value(v).expect("serializes"),
    )
}

fn open_json<T: for<'de> Deserialize<'de>>(
    crm: &Crm<'_>,
    job: JobId,
    field: &str,
    sealed: &[u8],
) -> AppResult<T> {
    serde_json::from_value(crm.open_value(&job.to_string(), field, sealed)?)
        .map_err(|e| AppError::internal(format!("job {job} {field}: {e}")))
}

pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Creates a job (state `running`, nothing done yet).
pub async fn create_job(
    state: &AppState,
    ws: WorkspaceId,
    actor: UserId,
    spec: &ImportSpec,
) -> AppResult<JobId> {
    let crm = Crm::new(state, ws)?;
    let id = JobId::new();
    let now = now_millis();
    state
        .store
        .create_job(&JobRow {
            id,
            workspace_id: ws,
            kind: "import".into(),
            state: "running".into(),
            spec_sealed: seal_json(&crm, id, "spec", spec),
            progress_sealed: seal_json(&crm, id, "progress", &Progress::default()),
            cursor: 0,
            created_by: actor,
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok(id)
}

/// A running import of the same file into the same workspace, to resume.
pub async fn find_unfinished(
    state: &AppState,
    ws: WorkspaceId,
    sha256: &str,
) -> AppResult<Option<JobId>> {
    let crm = Crm::new(state, ws)?;
    for job in state
        .store
        .running_jobs()
        .await?
        .into_iter()
        .filter(|j| j.workspace_id == ws && j.kind == "import")
    {
        let spec: ImportSpec = open_json(&crm, job.id, "spec", &job.spec_sealed)?;
        if spec.sha256 == sha256 {
            return Ok(Some(job.id));
        }
    }
    Ok(None)
}

pub async fn job_state(
    state: &AppState,
    ws: WorkspaceId,
    id: JobId,
) -> AppResult<(JobRow, ImportSpec, Progress)> {
    let crm = Crm::new(state, ws)?;
    let job = state.store.job(ws, id).await?.ok_or_else(|| {
        AppError::new(
            ErrorCode::JobNotFound,
            format!("no job {id} in this workspace"),
        )
    })?;
    let spec = open_json(&crm, id, "spec", &job.spec_sealed)?;
    let progress = open_json(&crm, id, "progress", &job.progress_sealed)?;
    Ok((job, spec, progress))
}

fn record_kind(kind: Kind) -> AppResult<RecordKind> {
    match kind {
        Kind::Company => Ok(RecordKind::Company),
        Kind::Contact => Ok(RecordKind::Contact),
        Kind::Deal => Ok(RecordKind::Deal),
        other => Err(AppError::new(ErrorCode::InvalidField, format!("{other} records cannot be imported from a file; import companies, contacts or deals"))),
    }
}

type Rows = Box<dyn Iterator<Item = Result<MappedRow, RowError>> + Send>;
/// What opens a sealed upload: the workspace key, the workspace and the upload id.
type SealedSource = (
    std::sync::Arc<meshwork_keyring::DataKey>,
    WorkspaceId,
    String,
);

/// The import's file, read (and opened, for an upload sealed at rest) from its start.
fn open_reader(
    spec: &ImportSpec,
    sealed: Option<SealedSource>,
) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
    Ok(match sealed {
        Some((key, ws, id)) => Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            crate::upload::SealedReader::open(&spec.file, key, ws, &id)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", spec.file.display()))?,
        )),
        None => Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&spec.file)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", spec.file.display()))?,
        )),
    })
}

/// The layout of a CSV import: a named one, or the generic one with its mapping.
fn layout_of(spec: &ImportSpec) -> anyhow::Result<Layout> {
    Ok(match (spec.layout.as_str(), &spec.mapping) {
        ("generic", Some(text)) => Layout::Generic(
            Mapping::from_toml_str(text).map_err(|e| anyhow::anyhow!("mapping file: {e}"))?,
        ),
        ("generic", None) => {
            anyhow::bail!("the generic layout needs a mapping file (--mapping); see docs/import.md")
        }
        (name, _) => name.parse::<Layout>().map_err(|e| anyhow::anyhow!("{e}"))?,
    })
}

fn open_rows(spec: &ImportSpec, kind: Kind, sealed: Option<SealedSource>) -> anyhow::Result<Rows> {
    let reader = open_reader(spec, sealed)?;
    let options = ReaderOptions::default();
    let at = |e: meshwork_crm_io::FileError| anyhow::anyhow!("{}: {e}", spec.file.display());
    if spec.layout == "vcard" {
        return Ok(Box::new(
            meshwork_crm_io::read_vcards(reader, &options).map_err(at)?,
        ));
    }
    let layout = layout_of(spec)?;
    let rk = record_kind(kind).map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(Box::new(
        CsvRows::open(reader, rk, &layout, &options).map_err(at)?,
    ))
}

/// A row turned into a record document, remembering which column fed which field.
struct Draft {
    row: u64,
    line: u64,
    doc: Doc,
    columns: HashMap<String, String>,
    /// Companies to find or create for a contact or deal: (domain, name).
    company: Option<(Option<String>, Option<String>)>,
    contact_email: Option<(String, String)>,
    unmatched_owner: bool,
}

/// Sets a one-value field from a column. A field fed by several columns (an address split into
/// street, city and country) joins their values in column order.
fn set(doc: &mut Doc, columns: &mut HashMap<String, String>, field: &str, v: &str, column: &str) {
    columns
        .entry(field.to_string())
        .or_insert_with(|| column.to_string());
    match doc.get_mut(field) {
        Some(Value::String(s)) => {
            s.push_str(", ");
            s.push_str(v);
        }
        _ => {
            doc.insert(field.to_string(), json!(v));
        }
    }
}

/// Appends a value to a list field (emails, phones, domains, tags).
fn push(doc: &mut Doc, columns: &mut HashMap<String, String>, field: &str, v: &str, column: &str) {
    columns
        .entry(field.to_string())
        .or_insert_with(|| column.to_string());
    match doc.entry(field).or_insert_with(|| json!([])) {
        Value::Array(a) => a.push(json!(v)),
        other => *other = json!([v]),
    }
}

fn problem(row: u64, line: u64, column: Option<String>, reason: impl Into<String>) -> RowProblem {
    RowProblem {
        row,
        line,
        column,
        reason: reason.into(),
    }
}

/// A pipeline's lower-cased name, id, and stages as (id, name).
type PipelineStages = (String, RecordId, Vec<(String, String)>);

struct Context {
    kind: Kind,
    customs: Vec<CustomFieldDef>,
    members: HashMap<String, UserId>,
    /// Pipelines by lower-cased name and id: (id, stages as (id, name)).
    pipelines: Vec<PipelineStages>,
    spec: ImportSpec,
}

impl Context {
    fn draft(&self, r: &MappedRow) -> Result<Draft, RowProblem> {
        let mut doc = Doc::new();
        let mut columns = HashMap::new();
        let mut company: (Option<String>, Option<String>) = (None, None);
        let mut contact_email = None;
        let mut unmatched_owner = false;
        for f in &r.fields {
            let v = f.value.as_str();
            let col = f.column.as_str();
            match (self.kind, f.target.as_str()) {
                (_, "external_id") => set(&mut doc, &mut columns, "external_id", v, col),
                (_, "tags") => {
                    for t in v.split([';', ',']).map(str::trim).filter(|t| !t.is_empty()) {
                        push(&mut doc, &mut columns, "tags", t, col);
                    }
                }
                // An owner who is not a member (exports name the source CRM's users) leaves
                // the record to the default owner; the run counts how often.
                (_, "owner_email") => match self.members.get(&v.to_lowercase()) {
                    Some(id) => set(&mut doc, &mut columns, "owner", &id.0.to_string(), col),
                    None => unmatched_owner = true,
                },
                (_, t) if t.starts_with("custom.") => {
                    let key = &t["custom.".len()..];
                    let custom = doc.entry("custom").or_insert_with(|| json!({}));
                    custom[key] = json!(v);
                    columns.insert(t.to_string(), col.to_string());
                }
                (Kind::Contact, "email") => push(&mut doc, &mut columns, "emails", v, col),
                (Kind::Contact, "phone") => push(&mut doc, &mut columns, "phones", v, col),
                (Kind::Contact, "full_name") => {
                    columns.insert("first_name".into(), col.into());
                    columns.insert("last_name".into(), col.into());
                    if !r
                        .fields
                        .iter()
                        .any(|x| x.target == "first_name" || x.target == "last_name")
                    {
                        match v.rsplit_once(' ') {
                            Some((first, last)) => {
                                doc.insert("first_name".into(), json!(first.trim()));
                                doc.insert("last_name".into(), json!(last.trim()));
                            }
                            None => {
                                doc.insert("first_name".into(), json!(v));
                            }
                        }
                    }
                }
                (Kind::Contact, t @ ("first_name" | "last_name" | "title")) => {
                    set(&mut doc, &mut columns, t, v, col)
                }
                (Kind::Contact | Kind::Deal, "company_domain") => {
                    columns.insert("companies".into(), col.into());
                    company.0 = Some(v.to_string());
                }
                (Kind::Contact | Kind::Deal, "company_name") => {
                    columns
                        .entry("companies".into())
                        .or_insert_with(|| col.into());
                    company.1 = Some(v.to_string());
                }
                (Kind::Company, "domain") => push(&mut doc, &mut columns, "domains", v, col),
                (Kind::Company, t @ ("name" | "industry" | "size" | "address")) => {
                    set(&mut doc, &mut columns, t, v, col)
                }
                (Kind::Deal, t @ ("name" | "amount" | "currency" | "close_date")) => {
                    set(&mut doc, &mut columns, t, v, col)
                }
                (Kind::Deal, "pipeline") => set(&mut doc, &mut columns, "pipeline", v, col),
                (Kind::Deal, "stage") => set(&mut doc, &mut columns, "stage", v, col),
                (Kind::Deal, "contact_email") => {
                    contact_email = Some((v.to_string(), col.to_string()))
                }
                (_, other) => {
                    return Err(problem(
                        r.row,
                        r.line,
                        Some(col.into()),
                        format!("field {other:?} does not apply to {} records", self.kind),
                    ));
                }
            }
        }
        if self.kind == Kind::Deal {
            self.resolve_pipeline(r, &mut doc, &columns)?;
        }
        if let Some(owner) = self.spec.default_owner {
            doc.entry("owner").or_insert_with(|| json!(owner.0));
        }
        if !self.spec.default_tags.is_empty() {
            let tags = doc.entry("tags").or_insert_with(|| json!([]));
            if let Value::Array(a) = tags {
                a.extend(self.spec.default_tags.iter().map(|t| json!(t)));
            }
        }
        let company = (company.0.is_some() || company.1.is_some()).then_some(company);
        Ok(Draft {
            row: r.row,
            line: r.line,
            doc,
            columns,
            company,
            contact_email,
            unmatched_owner,
        })
    }

    /// Replaces a deal's pipeline and stage names by ids (the first pipeline when none is given).
    fn resolve_pipeline(
        &self,
        r: &MappedRow,
        doc: &mut Doc,
        columns: &HashMap<String, String>,
    ) -> Result<(), RowProblem> {
        let col = |f: &str| columns.get(f).cloned();
        let wanted = doc
            .get("pipeline")
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        let pipeline = match &wanted {
            Some(w) => self
                .pipelines
                .iter()
                .find(|(name, id, _)| name == w || id.to_string() == *w),
            None => self.pipelines.first(),
        };
        let Some((_, pid, stages)) = pipeline else {
            return Err(problem(
                r.row,
                r.line,
                col("pipeline"),
                match wanted {
                    Some(w) => format!("no pipeline named {w:?} (create it first)"),
                    None => "the workspace has no pipeline yet; create one before importing deals"
                        .into(),
                },
            ));
        };
        doc.insert("pipeline".into(), json!(pid.to_string()));
        if let Some(stage) = doc
            .get("stage")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
        {
            let squash = |s: &str| {
                s.chars()
                    .filter(|c| c.is_alphanumeric())
                    .collect::<String>()
            };
            let found = stages.iter().find(|(id, name)| {
                *id == stage
                    || name.to_lowercase() == stage
                    || squash(id) == squash(&stage)
                    || squash(&name.to_lowercase()) == squash(&stage)
            });
            match found {
                Some((id, _)) => {
                    doc.insert("stage".into(), json!(id));
                }
                None => {
                    let names: Vec<_> = stages.iter().map(|(_, n)| n.as_str()).collect();
                    return Err(problem(
                        r.row,
                        r.line,
                        col("stage"),
                        format!(
                            "{stage:?} is not a stage of this pipeline (stages: {})",
                            names.join(", ")
                        ),
                    ));
                }
            }
        } else if let Some((first, _)) = stages.first() {
            doc.insert("stage".into(), json!(first));
        }
        Ok(())
    }

    fn column_of(&self, d: &Draft, field: &str) -> Option<String> {
        let base = field.split('[').next().unwrap_or(field);
        d.columns
            .get(field)
            .or_else(|| d.columns.get(base))
            .cloned()
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub job: JobId,
    pub progress: Progress,
    pub error_csv: Option<PathBuf>,
}

/// Runs (or resumes) an import job to the end. `tick` is called after each committed batch with
/// the progress as of that batch (for a progress bar).
pub async fn run(
    state: &AppState,
    ws: WorkspaceId,
    job_id: JobId,
    tick: &(dyn Fn(&Progress) + Sync),
) -> anyhow::Result<Summary> {
    let crm = Crm::new(state, ws).map_err(|e| anyhow::anyhow!(e.message))?;
    state.usage.count(ws, "import");
    // Held by this run and by its write in flight: a run of this job stopped part-way (its
    // task cancelled) may still be committing its last batch, and this run reads the job's
    // cursor only once that write has landed or failed.
    let held = Arc::new(state.job_locks.of(job_id).lock_owned().await);
    let (job, spec, mut progress) = job_state(state, ws, job_id)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    anyhow::ensure!(
        job.state == "running",
        "job {job_id} is {}, not running",
        job.state
    );
    let sha = sha256_file(&spec.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", spec.file.display()))?;
    anyhow::ensure!(
        sha == spec.sha256,
        "{} changed since the import started; start a new import instead of resuming",
        spec.file.display()
    );
    let kind: Kind = spec.kind.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let api = |e: AppError| anyhow::anyhow!(e.message);
    let mut pipelines = Vec::new();
    for (row, doc) in crm.all(Kind::Pipeline).await.map_err(api)? {
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let stages = doc
            .get("stages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or_default().to_string(),
                    s["name"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        pipelines.push((name, row.id, stages));
    }
    let ctx = Context {
        kind,
        customs: crm.customs().await.map_err(api)?,
        members: crate::crm::members_by_email(state, ws).await.map_err(api)?,
        pipelines,
        spec: spec.clone(),
    };
    let sealed = match &spec.sealed_upload {
        Some(id) => Some((state.workspace_key(ws).map_err(api)?, ws, id.clone())),
        None => None,
    };
    let mut rows = open_rows(&spec, kind, sealed.clone())?;
    let mut cursor = job.cursor as u64;
    let mut companies: HashMap<String, RecordId> = HashMap::new();
    // The search index catches up beside the import (one catch-up at a time, started after a
    // batch when none is running), and once more at the end: the import's records are
    // searchable when it returns.
    let mut indexing: Option<tokio::task::JoinHandle<()>> = None;
    let mut batches = 0u64;
    // Rows read since the last catch-up of the index was started.
    let mut unindexed = 0u64;
    // One batch is written while the next is prepared.
    let mut inflight = Inflight::default();
    // The progress as of the batch being written, reported to `tick` once it is committed.
    let mut written: Option<Progress> = None;
    // Where the time goes, logged at the end: reading the file, preparing batches (lookups,
    // validation, sealing), writing them, and waiting for the index.
    let (mut t_read, mut t_prepare, mut t_write) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    loop {
        let t = std::time::Instant::now();
        let size = usize::try_from(cursor)
            .unwrap_or(MAX_BATCH)
            .clamp(FIRST_BATCH, MAX_BATCH);
        let mut batch = Vec::with_capacity(size);
        let mut fatal = None;
        for item in rows.by_ref() {
            let n = match &item {
                Ok(r) => r.row,
                Err(e) => e.row,
            };
            if let Err(e) = &item {
                if e.fatal {
                    fatal = Some(e.to_string());
                    break;
                }
            }
            if n <= cursor {
                continue;
            }
            batch.push(item);
            if batch.len() == size {
                break;
            }
        }
        if batch.is_empty() {
            if let Some(f) = fatal {
                // The batch before the fault is valid: it commits before the job stops.
                inflight.finish().await.map_err(api)?;
                anyhow::bail!("{}: {f}; the job stays resumable", spec.file.display());
            }
            break;
        }
        let read = batch.len() as u64;
        let last = batch
            .iter()
            .map(|i| match i {
                Ok(r) => r.row,
                Err(e) => e.row,
            })
            .max()
            .unwrap_or(cursor);
        t_read += t.elapsed();
        let t = std::time::Instant::now();
        let ops = match apply_batch(
            &crm,
            &ctx,
            job_id,
            batch,
            &mut progress,
            &mut companies,
            &mut inflight,
        )
        .await
        {
            Ok(ops) => ops,
            Err(e) => {
                // The previous batch lands (or fails) before the job reports the error, so the
                // job's stored cursor is final when the caller reads it.
                let _ = inflight.finish().await;
                return Err(api(e));
            }
        };
        cursor = last;
        let mut ops = ops;
        ops.push(CrmOp::Job {
            id: job_id,
            state: "running".into(),
            cursor: cursor as i64,
            progress_sealed: seal_json(&crm, job_id, "progress", &progress),
        });
        t_prepare += t.elapsed();
        // The previous batch's write must be committed before this one's starts (they are
        // ordered: this batch may link to companies the previous one created).
        let t = std::time::Instant::now();
        inflight.finish().await.map_err(api)?;
        t_write += t.elapsed();
        batches += 1;
        if batches.is_power_of_two() {
            // The workspace's tables doubled (or the import just started): fresh planner
            // statistics keep the next batches' key lookups on their index.
            state
                .store
                .analyze_after_bulk_write()
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        // Every INDEX_EVERY rows: each catch-up commits a segment, and small segments cost
        // more in merging than they save.
        unindexed += read;
        if unindexed >= INDEX_EVERY && indexing.as_ref().is_none_or(|h| h.is_finished()) {
            unindexed = 0;
            let st = state.clone();
            indexing = Some(tokio::spawn(async move {
                st.search.sync_after_write(&st, ws).await;
            }));
        }
        if let Some(p) = written.take() {
            tick(&p);
        }
        inflight.start(state, ws, ops, held.clone());
        written = Some(progress.clone());
        if let Some(f) = fatal {
            inflight.finish().await.map_err(api)?;
            anyhow::bail!("{}: {f}; the job stays resumable", spec.file.display());
        }
    }
    let t = std::time::Instant::now();
    inflight.finish().await.map_err(api)?;
    t_write += t.elapsed();
    if let Some(p) = written.take() {
        tick(&p);
    }
    let t = std::time::Instant::now();
    if let Some(h) = indexing.take() {
        let _ = h.await;
    }
    let error_csv = if progress.rejected > 0 && spec.sealed_upload.is_none() {
        Some(write_error_csv(&spec, kind, &progress)?)
    } else {
        None
    };
    if let (true, Some(source)) = (progress.rejected > 0, sealed.clone()) {
        // Kept for the import's page; the import is done even if this fails.
        if let Err(e) = keep_rejected(state, ws, job_id, &spec, kind, &progress, source) {
            tracing::warn!(job = %job_id, error = %e, "the rejected rows could not be kept for download");
        }
    }
    crm.apply(
        &CrmBatch {
            ops: vec![CrmOp::Job {
                id: job_id,
                state: "done".into(),
                cursor: cursor as i64,
                progress_sealed: seal_json(&crm, job_id, "progress", &progress),
            }],
        },
        now_millis(),
    )
    .await
    .map_err(api)?;
    tracing::info!(
        job = %job_id,
        rows = progress.rows,
        read_s = t_read.as_secs_f64(),
        prepare_s = t_prepare.as_secs_f64(),
        write_s = t_write.as_secs_f64(),
        index_wait_s = t.elapsed().as_secs_f64(),
        "import finished"
    );
    Ok(Summary {
        job: job_id,
        progress,
        error_csv,
    })
}

/// Writes the rejected rows (re-read from the source file) with their reasons.
fn write_error_csv(spec: &ImportSpec, kind: Kind, progress: &Progress) -> anyhow::Result<PathBuf> {
    let out = std::fs::File::create(&spec.error_csv)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", spec.error_csv.display()))?;
    write_rejected(spec, kind, progress, None, std::io::BufWriter::new(out))?;
    Ok(spec.error_csv.clone())
}

/// The rejected rows of an upload's import as an error CSV (their cells as the file had them,
/// then row, line, column and reason), kept sealed beside the uploads until the import is
/// reverted or `REJECTED_KEPT_MS` has passed: the upload itself is deleted when the import ends.
fn keep_rejected(
    state: &AppState,
    ws: WorkspaceId,
    job: JobId,
    spec: &ImportSpec,
    kind: Kind,
    progress: &Progress,
    sealed: SealedSource,
) -> anyhow::Result<()> {
    let mut csv = Vec::new();
    write_rejected(spec, kind, progress, Some(sealed), &mut csv)?;
    let path = background::rejected_path(state, ws, job);
    let name = format!("rejected-{job}");
    let mut w = crate::upload::SealedWriter::create(
        &path,
        state
            .workspace_key(ws)
            .map_err(|e| anyhow::anyhow!(e.message))?,
        ws,
        &name,
    )?;
    w.write(&csv)?;
    w.finish()?;
    Ok(())
}

/// How long the rejected rows of an upload's import are kept for their download.
pub const REJECTED_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// The rejected rows of an upload's import, with their cells, while they are kept (see
/// [`keep_rejected`]); `None` once they are gone.
pub async fn rejected_rows(
    state: &AppState,
    ws: WorkspaceId,
    job: JobId,
) -> AppResult<Option<Vec<u8>>> {
    job_state(state, ws, job).await?;
    let path = background::rejected_path(state, ws, job);
    if !path.exists() {
        return Ok(None);
    }
    let key = state.workspace_key(ws)?;
    let name = format!("rejected-{job}");
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut r = crate::upload::SealedReader::open(&path, key, ws, &name)?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| AppError::internal(e.to_string()))?;
    read.map(Some)
        .map_err(|e| AppError::internal(format!("the rejected rows do not read: {e}")))
}

fn write_rejected<W: std::io::Write>(
    spec: &ImportSpec,
    kind: Kind,
    progress: &Progress,
    sealed: Option<SealedSource>,
    out: W,
) -> anyhow::Result<()> {
    let reasons: HashMap<u64, &RowProblem> = progress.errors.iter().map(|e| (e.row, e)).collect();
    let header: Vec<String> = if spec.layout == "vcard" {
        vec!["vcard".into()]
    } else {
        let rk = record_kind(kind).map_err(|e| anyhow::anyhow!(e.message))?;
        CsvRows::open(
            open_reader(spec, sealed.clone())?,
            rk,
            &layout_of(spec)?,
            &ReaderOptions::default(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .header()
        .to_vec()
    };
    let mut w = ErrorCsv::new(out, &header)?;
    for item in open_rows(spec, kind, sealed)? {
        let (row, line, raw) = match item {
            Ok(r) => (r.row, r.line, r.raw),
            Err(e) => (e.row, e.line, e.raw),
        };
        if let Some(p) = reasons.get(&row) {
            w.write(&RowError {
                row,
                line,
                column: p.column.clone(),
                reason: p.reason.clone(),
                raw,
                fatal: false,
            })?;
        }
    }
    w.finish()?;
    Ok(())
}

/// Folds the line breaks of a row's cells into spaces (a comma and a space in an address):
/// every field import fills is one line, and exports of other CRMs often carry a break inside a
/// name or an address. Answers the columns it changed.
fn fold_line_breaks(r: &mut MappedRow) -> Vec<String> {
    let mut folded = Vec::new();
    for f in &mut r.fields {
        if f.value.contains(['\n', '\r']) {
            let sep = if f.target.starts_with("address") {
                ", "
            } else {
                " "
            };
            f.value = f
                .value
                .split(['\n', '\r'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(sep);
            folded.push(f.column.clone());
        }
    }
    folded
}

fn reject(progress: &mut Progress, p: RowProblem) {
    progress.rejected += 1;
    if progress.errors.len() < MAX_REMEMBERED_ERRORS {
        progress.errors.push(p);
    }
}

struct Pending {
    id: RecordId,
    /// `None` for a record this batch creates.
    existing: Option<RecordRow>,
    doc: Doc,
    keys: Vec<KeyEntry>,
    links: Vec<LinkRow>,
}

/// The write of the batch before the one being prepared: it runs while the next batch is
/// read, validated, looked up and sealed. A batch whose rows ask about a key this write holds
/// (a row repeating a record of the previous batch) waits for it before its lookups.
#[derive(Default)]
struct Inflight {
    write: Option<tokio::task::JoinHandle<AppResult<()>>>,
    /// The dedup keys the write stores, and their record.
    keys: HashMap<(String, Hash32), RecordId>,
    /// The batch being written, shared with the write task.
    batch: Option<Arc<CrmBatch>>,
    /// The records the write stores (as they will be once it is committed), by their place
    /// in `batch`.
    records: HashMap<RecordId, usize>,
}

impl Inflight {
    /// Starts writing `ops`. The write holds `held` (the job's lock) until it has committed or
    /// failed, and runs to its end even when the import is cancelled: it is one transaction,
    /// and a resumed import starts after it.
    fn start(&mut self, state: &AppState, ws: WorkspaceId, ops: Vec<CrmOp>, held: Held) {
        debug_assert!(self.write.is_none());
        self.keys.clear();
        self.records.clear();
        for (i, op) in ops.iter().enumerate() {
            if let CrmOp::Put { record, keys, .. } = op {
                self.keys
                    .extend(keys.iter().map(|k| ((k.kind.clone(), k.index), record.id)));
                self.records.insert(record.id, i);
            }
        }
        let batch = Arc::new(CrmBatch { ops });
        self.batch = Some(batch.clone());
        let state = state.clone();
        self.write = Some(tokio::spawn(async move {
            let crm = Crm::new(&state, ws)?;
            let done = crm.apply_unindexed(&batch, now_millis()).await;
            drop(held);
            done
        }));
    }

    /// A record the write stores, as it will be once committed.
    fn record(&self, id: &RecordId) -> Option<&RecordRow> {
        let i = *self.records.get(id)?;
        match &self.batch.as_ref()?.ops[i] {
            CrmOp::Put { record, .. } => Some(record),
            _ => None,
        }
    }

    /// Waits for the write to be committed (or to fail).
    ///
    /// Dropped unfinished (the import itself cancelled), the write goes on to its end, and the
    /// job's lock with it: its transaction commits with its cursor (or fails whole), and a
    /// resumed import, which takes the lock first, starts after it.
    async fn finish(&mut self) -> AppResult<()> {
        self.keys.clear();
        self.records.clear();
        self.batch = None;
        match self.write.take() {
            Some(h) => h
                .await
                .map_err(|e| AppError::internal(format!("import write task: {e}")))?,
            None => Ok(()),
        }
    }
}

/// The lock of a job, held by its run and by the run's write in flight.
type Held = Arc<tokio::sync::OwnedMutexGuard<()>>;

/// One lock per import job of this process (see [`crate::state::Inner::job_locks`]).
#[derive(Debug, Default)]
pub struct JobLocks(std::sync::Mutex<HashMap<JobId, Arc<tokio::sync::Mutex<()>>>>);

impl JobLocks {
    /// The lock of `job`. Locks no run holds are forgotten as others are asked for.
    fn of(&self, job: JobId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(job).or_default().clone()
    }
}

/// Dedup-key lookups of one batch, asked of the store in one query per key kind before the
/// batch's rows are processed. The store does not change while a batch is prepared (its writes
/// are committed afterwards, and keys the batch itself takes are tracked apart), so the
/// answers hold for the whole batch; a key not asked for in advance is looked up on demand.
struct KeyLookup {
    known: HashMap<(String, Hash32), Option<RecordId>>,
}

impl KeyLookup {
    async fn find(
        &mut self,
        crm: &Crm<'_>,
        inflight: &mut Inflight,
        kind: &str,
        index: Hash32,
    ) -> AppResult<Option<RecordId>> {
        let key = (kind.to_string(), index);
        if let Some(v) = self.known.get(&key) {
            return Ok(*v);
        }
        if let Some(id) = inflight.keys.get(&key) {
            return Ok(Some(*id));
        }
        let v = crm
            .state
            .store
            .crm_find_keys(crm.ws, kind, &[index])
            .await?
            .first()
            .map(|(_, id)| *id);
        self.known.insert(key, v);
        Ok(v)
    }
}

/// Looks up, in a few queries, every dedup key a batch's rows will ask about (their own keys,
/// their company's domain, a deal's contact email), and reads the records their keys match.
async fn prefetch(
    crm: &Crm<'_>,
    ctx: &Context,
    drafts: &[Result<Draft, RowProblem>],
    companies: &HashMap<String, RecordId>,
    inflight: &mut Inflight,
) -> AppResult<(KeyLookup, HashMap<RecordId, RecordRow>)> {
    let kind = ctx.kind;
    let mut wanted: HashMap<String, Vec<Hash32>> = HashMap::new();
    for d in drafts.iter().flatten() {
        if let Some((Some(domain), _)) = &d.company {
            if let Some(dom) = meshwork_crm::registrable_domain(domain) {
                if !companies.contains_key(&dom) {
                    wanted
                        .entry(Crm::key_kind(Kind::Company, "domain"))
                        .or_default()
                        .push(crm.key_index(Kind::Company, "domain", &dom));
                }
            }
        }
        if let Some((email, _)) = &d.contact_email {
            wanted
                .entry(Crm::key_kind(Kind::Contact, "email"))
                .or_default()
                .push(crm.key_index(Kind::Contact, "email", &email.trim().to_lowercase()));
        }
        if let Ok(v) = Validated::check(kind, &d.doc, &ctx.customs) {
            for (k, value) in &v.keys {
                wanted
                    .entry(Crm::key_kind(kind, k))
                    .or_default()
                    .push(crm.key_index(kind, k, value));
            }
        }
    }
    let own_kind = format!("{kind}.");
    // Twice at most: when the store names a record the previous batch's write is changing
    // (its keys may be about to change too), that write is waited for and the store asked
    // again.
    for _ in 0..2 {
        let mut known = HashMap::new();
        let mut hits = Vec::new();
        let mut stale = false;
        let mut from_inflight: HashMap<RecordId, RecordRow> = HashMap::new();
        for (key_kind, indexes) in &wanted {
            let mut indexes = indexes.clone();
            indexes.sort_unstable();
            indexes.dedup();
            // Keys the previous batch is writing are answered from it.
            indexes.retain(|i| {
                let key = (key_kind.clone(), *i);
                match inflight.keys.get(&key) {
                    Some(id) => {
                        if let Some(row) = inflight.record(id) {
                            from_inflight.insert(*id, row.clone());
                        }
                        known.insert(key, Some(*id));
                        false
                    }
                    None => true,
                }
            });
            for i in &indexes {
                known.insert((key_kind.clone(), *i), None);
            }
            for (i, id) in crm
                .state
                .store
                .crm_find_keys(crm.ws, key_kind, &indexes)
                .await?
            {
                stale |= inflight.records.contains_key(&id);
                if key_kind.starts_with(&own_kind) {
                    hits.push(id);
                }
                known.insert((key_kind.clone(), i), Some(id));
            }
        }
        if stale {
            inflight.finish().await?;
            continue;
        }
        hits.sort_unstable();
        hits.dedup();
        let mut matched: HashMap<RecordId, RecordRow> = crm
            .state
            .store
            .crm_records(crm.ws, &hits)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        // A company the previous batch created for a contact is linked, never merged into.
        matched.extend(
            from_inflight
                .into_iter()
                .filter(|(_, r)| r.kind == kind.as_str()),
        );
        return Ok((KeyLookup { known }, matched));
    }
    Err(AppError::internal(
        "import: the previous batch's records were still changing after its write",
    ))
}

/// The batch's own dedup keys that belong to people erased at their request (usually none:
/// one indexed look-up per key kind).
async fn suppressed_keys(
    crm: &Crm<'_>,
    ctx: &Context,
    drafts: &[Result<Draft, RowProblem>],
) -> AppResult<std::collections::HashSet<(String, Hash32)>> {
    let kind = ctx.kind;
    let mut out = std::collections::HashSet::new();
    if !crm.state.store.crm_has_suppressions(crm.ws).await? {
        return Ok(out);
    }
    let mut wanted: HashMap<String, Vec<Hash32>> = HashMap::new();
    for d in drafts.iter().flatten() {
        if let Ok(v) = Validated::check(kind, &d.doc, &ctx.customs) {
            for (k, value) in &v.keys {
                wanted
                    .entry(Crm::key_kind(kind, k))
                    .or_default()
                    .push(crm.key_index(kind, k, value));
            }
        }
    }
    for (key_kind, indexes) in wanted {
        for i in crm
            .state
            .store
            .crm_suppressed(crm.ws, &key_kind, &indexes)
            .await?
        {
            out.insert((key_kind.clone(), i));
        }
    }
    Ok(out)
}

async fn apply_batch(
    crm: &Crm<'_>,
    ctx: &Context,
    job: JobId,
    batch: Vec<Result<MappedRow, RowError>>,
    progress: &mut Progress,
    companies: &mut HashMap<String, RecordId>,
    inflight: &mut Inflight,
) -> AppResult<Vec<CrmOp>> {
    let kind = ctx.kind;
    let now = now_millis();
    let mut ops = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // Keys taken by records of this batch: (key kind, index) → position in `pending`.
    let mut taken: HashMap<(String, Hash32), usize> = HashMap::new();
    let match_key = ctx.spec.match_on.as_str();
    let drafts: Vec<Result<Draft, RowProblem>> = batch
        .into_iter()
        .map(|item| match item {
            Ok(mut r) => {
                for column in fold_line_breaks(&mut r) {
                    progress.folded += 1;
                    if progress.notes.len() < MAX_REMEMBERED_ERRORS {
                        progress.notes.push(problem(
                            r.row,
                            r.line,
                            Some(column),
                            "the cell held line breaks; they were folded into spaces",
                        ));
                    }
                }
                ctx.draft(&r)
            }
            Err(e) => Err(problem(e.row, e.line, e.column, e.reason)),
        })
        .collect();
    let (mut lookup, matched) = prefetch(crm, ctx, &drafts, companies, inflight).await?;
    let suppressed = suppressed_keys(crm, ctx, &drafts).await?;
    for d in drafts {
        progress.rows += 1;
        let mut d = match d {
            Ok(d) => d,
            Err(p) => {
                reject(progress, p);
                continue;
            }
        };
        // A person erased at their request is not brought back (mm17).
        if !suppressed.is_empty() {
            if let Ok(v) = Validated::check(kind, &d.doc, &ctx.customs) {
                if let Some((key, _)) = v.keys.iter().find(|(k, value)| {
                    suppressed.contains(&(Crm::key_kind(kind, k), crm.key_index(kind, k, value)))
                }) {
                    reject(
                        progress,
                        problem(
                            d.row,
                            d.line,
                            None,
                            format!("this {kind}'s {key} belongs to a person erased from the workspace at their request; the row is skipped"),
                        ),
                    );
                    continue;
                }
            }
        }
        if d.unmatched_owner {
            progress.owners_unmatched += 1;
        }
        // Links by domain or email, to records that exist or this import created.
        let mut new_company = None;
        if let Some((domain, name)) = d.company.take() {
            let registrable = domain.as_deref().and_then(meshwork_crm::registrable_domain);
            if domain.is_some() && registrable.is_none() {
                reject(
                    progress,
                    problem(
                        d.row,
                        d.line,
                        ctx.column_of(&d, "companies"),
                        format!("{:?} is not a web domain", domain.unwrap_or_default()),
                    ),
                );
                continue;
            }
            let cache_key = registrable.clone().unwrap_or_else(|| {
                format!("name:{}", name.clone().unwrap_or_default().to_lowercase())
            });
            let id = match companies.get(&cache_key) {
                Some(id) => Some(*id),
                None => match &registrable {
                    Some(dom) => {
                        let index = crm.key_index(Kind::Company, "domain", dom);
                        lookup
                            .find(
                                crm,
                                inflight,
                                &Crm::key_kind(Kind::Company, "domain"),
                                index,
                            )
                            .await?
                    }
                    None => None,
                },
            };
            let id = match id {
                Some(id) => id,
                None => {
                    let id = RecordId::new();
                    let mut cdoc = Doc::new();
                    cdoc.insert(
                        "name".into(),
                        json!(name.clone().or(registrable.clone()).unwrap_or_default()),
                    );
                    if let Some(dom) = &registrable {
                        cdoc.insert("domains".into(), json!([dom]));
                    }
                    new_company = Some((id, cdoc, cache_key.clone()));
                    id
                }
            };
            // A company this row creates is remembered once the row is accepted (below): a
            // rejected row writes no company for later rows to link to.
            if new_company.is_none() {
                companies.insert(cache_key, id);
            }
            d.doc.insert("companies".into(), json!([id.to_string()]));
        }
        if let Some((email, column)) = d.contact_email.take() {
            let index = crm.key_index(Kind::Contact, "email", &email.trim().to_lowercase());
            match lookup
                .find(crm, inflight, &Crm::key_kind(Kind::Contact, "email"), index)
                .await?
            {
                Some(id) => {
                    d.doc.insert("contacts".into(), json!([id.to_string()]));
                }
                None => {
                    reject(
                        progress,
                        problem(
                            d.row,
                            d.line,
                            Some(column),
                            format!("no contact with email {email:?}; import contacts first"),
                        ),
                    );
                    continue;
                }
            }
        }
        let validated = match Validated::check(kind, &d.doc, &ctx.customs) {
            Ok(v) => v,
            Err(e) => {
                let f = &e.0[0];
                reject(
                    progress,
                    problem(
                        d.row,
                        d.line,
                        ctx.column_of(&d, &f.field),
                        format!("{}: {}", f.field, f.message),
                    ),
                );
                continue;
            }
        };
        // Which record does this row match?
        let match_values: Vec<&String> = validated
            .keys
            .iter()
            .filter(|(k, _)| *k == match_key)
            .map(|(_, v)| v)
            .collect();
        let mut target: Option<usize> = None;
        let mut existing_id: Option<RecordId> = None;
        for v in &match_values {
            let index = crm.key_index(kind, match_key, v);
            let kk = Crm::key_kind(kind, match_key);
            if let Some(pos) = taken.get(&(kk.clone(), index)) {
                target = Some(*pos);
                break;
            }
            if let Some(id) = lookup.find(crm, inflight, &kk, index).await? {
                existing_id = Some(id);
                break;
            }
        }
        if let (None, Some(id)) = (target, existing_id) {
            target = pending.iter().position(|p| p.id == id);
        }
        let is_new = target.is_none() && existing_id.is_none();
        match (ctx.spec.mode, is_new) {
            (Mode::Create, false) => {
                reject(
                    progress,
                    problem(
                        d.row,
                        d.line,
                        ctx.column_of(
                            &d,
                            if match_key == "email" {
                                "emails"
                            } else if match_key == "domain" {
                                "domains"
                            } else {
                                match_key
                            },
                        ),
                        format!(
                            "a {kind} with this {match_key} exists and the mode is create-only"
                        ),
                    ),
                );
                continue;
            }
            (Mode::Update, true) => {
                reject(
                    progress,
                    problem(
                        d.row,
                        d.line,
                        None,
                        format!(
                            "no {kind} matches this row's {match_key} and the mode is update-only"
                        ),
                    ),
                );
                continue;
            }
            _ => {}
        }
        // The document to write: the row alone, or the row's values over the matched record.
        let (id, existing, base) = match (target, existing_id) {
            (Some(pos), _) => (
                pending[pos].id,
                pending[pos].existing.clone(),
                Some(pending[pos].doc.clone()),
            ),
            (None, Some(id)) => {
                // Kept in `matched`: this row may still be rejected, and a later one match
                // the same record.
                let row = match matched.get(&id).or_else(|| inflight.record(&id)).cloned() {
                    Some(row) => row,
                    None => crm
                        .state
                        .store
                        .crm_record(crm.ws, id)
                        .await?
                        .ok_or_else(|| AppError::internal("matched record vanished"))?,
                };
                let doc = crm.open_doc(&row)?;
                (id, Some(row), Some(doc))
            }
            (None, None) => (RecordId::new(), None, None),
        };
        // A new record's document is the row's, already checked.
        let merged = base.as_ref().map(|b| {
            Validated::check(
                kind,
                &meshwork_crm::merge(kind, &validated.doc, b),
                &ctx.customs,
            )
        });
        let validated = match merged {
            None => validated,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                let f = &e.0[0];
                reject(
                    progress,
                    problem(
                        d.row,
                        d.line,
                        ctx.column_of(&d, &f.field),
                        format!("{}: {}", f.field, f.message),
                    ),
                );
                continue;
            }
        };
        // Every key must be free, or held by this very record.
        let mut keys = Vec::new();
        let mut clash = None;
        for (k, v) in &validated.keys {
            let kk = Crm::key_kind(kind, k);
            let index = crm.key_index(kind, k, v);
            let holder_in_batch = taken.get(&(kk.clone(), index)).map(|p| pending[*p].id);
            let holder = match holder_in_batch {
                Some(h) => Some(h),
                None => lookup.find(crm, inflight, &kk, index).await?,
            };
            if holder.is_some_and(|h| h != id) {
                clash = Some((k, v.clone(), holder.unwrap_or(id)));
                break;
            }
            let e = KeyEntry { kind: kk, index };
            if !keys.contains(&e) {
                keys.push(e);
            }
        }
        if let Some((k, v, holder)) = clash {
            let field = match *k {
                "email" => "emails",
                "domain" => "domains",
                other => other,
            };
            reject(
                progress,
                problem(
                    d.row,
                    d.line,
                    ctx.column_of(&d, field),
                    format!("{k} {v:?} belongs to another {kind} ({holder})"),
                ),
            );
            continue;
        }
        if let Some((cid, cdoc, cache_key)) = new_company {
            companies.insert(cache_key, cid);
            let cv = Validated::check(Kind::Company, &cdoc, &[])
                .map_err(|e| AppError::internal(e.to_string()))?;
            let ckeys = crm.key_entries(Kind::Company, &cv);
            ops.push(CrmOp::Put {
                record: RecordRow {
                    id: cid,
                    workspace_id: crm.ws,
                    kind: "company".into(),
                    data_sealed: crm.seal_doc(cid, &cv.doc),
                    occurred_at: now,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                },
                expected_version: None,
                keys: ckeys,
                links: Some(vec![]),
            });
            ops.push(CrmOp::ImportItem(ImportItemRow {
                job,
                record: cid,
                action: "created".into(),
                previous_sealed: None,
            }));
            progress.created += 1;
        }
        let links: Vec<LinkRow> = validated
            .links
            .iter()
            .map(|l| LinkRow {
                from: id,
                to: l.to,
                role: l.role.to_string(),
            })
            .collect();
        let entry = Pending {
            id,
            existing,
            doc: validated.doc,
            keys,
            links,
        };
        let pos = match target {
            Some(pos) => {
                progress.duplicates_in_file += 1;
                pending[pos] = entry;
                pos
            }
            None => {
                if entry.existing.is_some() {
                    progress.updated += 1;
                } else {
                    progress.created += 1;
                }
                pending.push(entry);
                pending.len() - 1
            }
        };
        for k in &pending[pos].keys {
            taken.insert((k.kind.clone(), k.index), pos);
        }
    }
    for p in pending {
        match p.existing {
            None => {
                ops.push(CrmOp::Put {
                    record: RecordRow {
                        id: p.id,
                        workspace_id: crm.ws,
                        kind: kind.as_str().into(),
                        data_sealed: crm.seal_doc(p.id, &p.doc),
                        occurred_at: now,
                        created_at: now,
                        updated_at: now,
                        version: 1,
                    },
                    expected_version: None,
                    keys: p.keys,
                    links: Some(p.links),
                });
                ops.push(CrmOp::ImportItem(ImportItemRow {
                    job,
                    record: p.id,
                    action: "created".into(),
                    previous_sealed: None,
                }));
            }
            Some(row) => {
                let before = crm.open_doc(&row)?;
                let prev_links: Vec<Value> = crm
                    .state
                    .store
                    .crm_links_from(crm.ws, &[row.id])
                    .await?
                    .iter()
                    .map(|l| json!({"to": l.to, "role": l.role}))
                    .collect();
                let previous = crm.seal_value(
                    &format!("{job}:{}", row.id),
                    "previous",
                    &json!({"doc": before, "links": prev_links}),
                );
                let prepared = crate::crm::Prepared {
                    validated: Validated::check(kind, &p.doc, &ctx.customs)
                        .map_err(|e| AppError::internal(e.to_string()))?,
                    keys: p.keys,
                    links: p.links,
                };
                let (mut put, _) = crm.update_ops(&row, &before, prepared, now, "field_change");
                ops.append(&mut put);
                ops.push(CrmOp::ImportItem(ImportItemRow {
                    job,
                    record: row.id,
                    action: "updated".into(),
                    previous_sealed: Some(previous),
                }));
            }
        }
    }
    Ok(ops)
}

/// Reverts a finished import: deletes the records it created and restores the ones it changed
/// (their fields and links as before the import). Records changed since by someone else are
/// restored too: the import's previous state wins, and the change is on the timeline.
pub async fn revert(state: &AppState, ws: WorkspaceId, job_id: JobId) -> AppResult<Progress> {
    let crm = Crm::new(state, ws)?;
    let (job, _spec, mut progress) = job_state(state, ws, job_id).await?;
    if job.state != "done" {
        return Err(AppError::new(
            ErrorCode::JobNotRevertible,
            format!(
                "job {job_id} is {}; only a finished import can be reverted",
                job.state
            ),
        ));
    }
    let customs = crm.customs().await?;
    let now = now_millis();
    let mut after = None;
    let mut ops = Vec::new();
    let mut deletes = Vec::new();
    loop {
        let items = state.store.import_items(job_id, after, 1000).await?;
        let Some(last) = items.last() else { break };
        after = Some(last.record);
        for item in items {
            let Some(row) = state.store.crm_record(ws, item.record).await? else {
                continue;
            };
            let kind: Kind = row.kind.parse().map_err(AppError::internal)?;
            match (item.action.as_str(), item.previous_sealed) {
                ("created", _) => deletes.push(CrmOp::Delete {
                    id: row.id,
                    kind: row.kind.clone(),
                }),
                ("updated", Some(prev)) => {
                    let prev =
                        crm.open_value(&format!("{job_id}:{}", row.id), "previous", &prev)?;
                    let doc: Doc = prev["doc"].as_object().cloned().unwrap_or_default();
                    let before = crm.open_doc(&row)?;
                    let validated = Validated::check(kind, &doc, &customs)
                        .map_err(|e| AppError::internal(e.to_string()))?;
                    let keys = crm.key_entries(kind, &validated);
                    let links = prev["links"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|l| {
                            Some(LinkRow {
                                from: row.id,
                                to: l["to"].as_str()?.parse().ok()?,
                                role: l["role"].as_str()?.to_string(),
                            })
                        })
                        .collect();
                    let (mut put, _) = crm.update_ops(
                        &row,
                        &before,
                        crate::crm::Prepared {
                            validated,
                            keys,
                            links,
                        },
                        now,
                        "import_reverted",
                    );
                    ops.append(&mut put);
                }
                _ => {}
            }
            progress.reverted += 1;
        }
    }
    // Deletions first (they free the keys the restored records take back), then restorations,
    // then the job's new state, all in one transaction.
    let mut all = deletes;
    all.extend(ops);
    all.push(CrmOp::Job {
        id: job_id,
        state: "reverted".into(),
        cursor: job.cursor,
        progress_sealed: seal_json(&crm, job_id, "progress", &progress),
    });
    crm.apply(&CrmBatch { ops: all }, now).await?;
    Ok(progress)
}

/// Files uploaded through the API: settings checked, the upload sealed, the import started.
pub mod uploads;

/// Imports of uploads run as jobs of the runner (`crate::jobs`), which resumes them on whichever
/// server claims them after a stop.
pub mod background {
    use super::*;
    use crate::jobs::{self, Failure, NewJob};

    /// Where a sealed upload lives.
    /// Where the rejected rows of an upload's import are kept, sealed.
    pub fn rejected_path(state: &AppState, ws: WorkspaceId, job: JobId) -> PathBuf {
        state
            .config
            .data_dir
            .join("uploads")
            .join(ws.to_string())
            .join(format!("rejected-{job}.sealed"))
    }

    pub fn upload_path(state: &AppState, ws: WorkspaceId, upload: &str) -> PathBuf {
        state
            .config
            .data_dir
            .join("uploads")
            .join(ws.to_string())
            .join(format!("{upload}.sealed"))
    }

    /// Queues the run of an import job on the job runner (at most one queue job per import,
    /// however often this is called).
    pub async fn queue(state: &AppState, ws: WorkspaceId, job: JobId) -> AppResult<()> {
        let mut queued = NewJob::new(jobs::IMPORT, serde_json::json!({ "job": job.to_string() }))
            .in_workspace(ws);
        // Attempts count runs cut short (a server stopped mid-import, the next one resumes);
        // an import that fails says so at once.
        queued.max_attempts = 5;
        queued.unique_key = Some(format!("import:{job}"));
        jobs::enqueue(state, queued).await?;
        Ok(())
    }

    /// The import a runner job's payload (`{"job": id}`) names.
    fn job_of(input: &serde_json::Value) -> Option<JobId> {
        input
            .get("job")
            .and_then(|v| v.as_str())
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(JobId)
    }

    /// The runner's `import` job: runs the import to its end. One that cannot go on (its upload
    /// is damaged or gone) is marked failed, with the reason in its progress; the upload is
    /// deleted when the import ends either way.
    pub async fn run_job(
        state: &AppState,
        ws: WorkspaceId,
        input: &serde_json::Value,
    ) -> Result<(), Failure> {
        let job = job_of(input)
            .ok_or_else(|| Failure::Permanent("an import job without a job id".into()))?;
        let outcome = run(state, ws, job, &|_| {}).await;
        let spec = job_state(state, ws, job).await.ok().map(|(_, s, _)| s);
        let result = match outcome {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(%job, error = %e, "import failed");
                if let Err(e2) = fail(state, ws, job, &e.to_string()).await {
                    tracing::error!(%job, error = %e2.message, "could not mark the import failed");
                }
                Err(Failure::Permanent(format!("the import stopped: {e}")))
            }
        };
        if let Some(spec) = spec.filter(|s| s.sealed_upload.is_some()) {
            let _ = std::fs::remove_file(&spec.file);
        }
        result
    }

    /// The runner gave the import's job up (cancelled by an operator, or its runs kept
    /// stopping): the import is marked failed with the reason and its upload deleted, so it is
    /// neither left running nor resumed later.
    pub async fn give_up(
        state: &AppState,
        ws: WorkspaceId,
        input: &serde_json::Value,
        reason: &str,
    ) {
        let Some(job) = job_of(input) else {
            return;
        };
        let spec = job_state(state, ws, job).await.ok().map(|(_, s, _)| s);
        if let Err(e) = fail(state, ws, job, reason).await {
            tracing::warn!(%job, error = %e.message, "could not mark the import failed");
        }
        if let Some(spec) = spec.filter(|s| s.sealed_upload.is_some()) {
            let _ = std::fs::remove_file(&spec.file);
        }
    }

    async fn fail(state: &AppState, ws: WorkspaceId, job: JobId, why: &str) -> AppResult<()> {
        let crm = Crm::new(state, ws)?;
        let (row, _, mut progress) = job_state(state, ws, job).await?;
        if row.state != "running" {
            // Another run of the job ended it (done, failed or reverted): that outcome stays.
            return Ok(());
        }
        progress.errors.insert(
            0,
            RowProblem {
                row: 0,
                line: 0,
                column: None,
                reason: format!("the import stopped: {why}"),
            },
        );
        crm.apply(
            &CrmBatch {
                ops: vec![CrmOp::Job {
                    id: job,
                    state: "failed".into(),
                    cursor: row.cursor,
                    progress_sealed: seal_json(&crm, job, "progress", &progress),
                }],
            },
            now_millis(),
        )
        .await
    }

    /// Makes sure every unfinished import of an upload has its job on the runner (imports
    /// started before the runner existed get one; the others already have theirs, which the
    /// runner takes over once the stopped run's lease has expired).
    pub async fn resume_all(state: &AppState) -> AppResult<usize> {
        let mut n = 0;
        for job in state.store.running_jobs().await? {
            if job.kind != "import" || !state.workspace_readable(job.workspace_id) {
                continue;
            }
            let (_, spec, _) = job_state(state, job.workspace_id, job.id).await?;
            if spec.sealed_upload.is_some() {
                queue(state, job.workspace_id, job.id).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}
