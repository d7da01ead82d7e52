//! The import wizard: choose a file and what it holds; see the layout and encoding Meshwork
//! read it in, which column feeds which field, the columns it ignores and the first rows; choose
//! how to match existing records; then follow the job live (htmx polls the status), with every
//! rejected row listed by row, column and reason, a CSV of them, and the import's revert.
//!
//! The file is sealed with the workspace key as it arrives (`meshwork_app::import::uploads`,
//! as for the API) and waits, staged, for the person to start it; a staged file never started
//! is removed by housekeeping after a day. Everything needs `crm.import`, as the API does.

use super::extract::{same_origin, InWorkspace, Posted};
use super::fields;
use super::{Chrome, PageError, Section};
use crate::auth::{csrf_matches, perm};
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::import::uploads::{self, ImportRequest, Preview, Upload};
use meshwork_app::import::{self, RowProblem};
use meshwork_app::{AppError, AppState};
use meshwork_domain::{ErrorCode, JobId};
use serde::Deserialize;
use std::collections::HashMap;

const KINDS: [(&str, &str); 3] = [
    ("contact", "Contacts"),
    ("company", "Companies"),
    ("deal", "Deals"),
];
const LAYOUTS: [(&str, &str); 5] = [
    ("", "Detect it"),
    ("hubspot", "HubSpot export"),
    ("salesforce", "Salesforce export"),
    ("pipedrive", "Pipedrive export"),
    ("vcard", "vCard (contacts)"),
];

#[derive(Template, WebTemplate)]
#[template(path = "imports/new.html")]
pub struct NewPage {
    chrome: Chrome,
    ws: String,
    kind: String,
    layout: String,
    kinds: [(&'static str, &'static str); 3],
    layouts: [(&'static str, &'static str); 5],
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    #[serde(default, rename = "type")]
    kind: String,
}

/// The list an import of `kind` belongs to, for the navigation.
fn section_of(kind: &str) -> Section {
    match kind {
        "company" => Section::Companies,
        "deal" => Section::Deals,
        _ => Section::Contacts,
    }
}

async fn new_page(
    state: &AppState,
    page: &InWorkspace<perm::CrmImport>,
    kind: &str,
    layout: &str,
    error: Option<String>,
) -> Result<NewPage, PageError> {
    Ok(NewPage {
        chrome: Chrome::workspace(state, page, section_of(kind)).await?,
        ws: page.ws().to_string(),
        kind: kind.to_string(),
        layout: layout.to_string(),
        kinds: KINDS,
        layouts: LAYOUTS,
        error,
    })
}

pub async fn new(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmImport>,
    Query(q): Query<NewQuery>,
) -> Result<Response, PageError> {
    Ok(new_page(&state, &page, &q.kind, "", None)
        .await?
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "imports/preview.html")]
pub struct PreviewPage {
    chrome: Chrome,
    ws: String,
    upload: String,
    file_name: String,
    kind: String,
    kind_label: &'static str,
    preview: Preview,
    match_on: &'static str,
    /// Each column of the file and the field it fills (empty: not imported), to change.
    columns: Vec<ColumnChoice>,
    /// The fields a column may fill: (target, label).
    targets: Vec<(String, String)>,
}

/// A column of the file in the mapping table.
#[derive(Debug)]
pub struct ColumnChoice {
    pub name: String,
    /// The field the detected layout fills from it.
    pub detected: String,
}

/// The columns of a previewed file with the fields its layout fills from them, and every field
/// of the kind a column may fill instead.
fn mapping_choices(preview: &Preview, kind: &str) -> (Vec<ColumnChoice>, Vec<(String, String)>) {
    if preview.layout == "vcard" {
        return (Vec::new(), Vec::new());
    }
    let columns: Vec<ColumnChoice> = preview
        .header
        .iter()
        .map(|h| ColumnChoice {
            name: h.clone(),
            detected: preview
                .mapped
                .iter()
                .find(|(c, _)| c == h)
                .map(|(_, t)| t.clone())
                .unwrap_or_default(),
        })
        .collect();
    let rk = match kind {
        "company" => meshwork_crm_io::RecordKind::Company,
        "deal" => meshwork_crm_io::RecordKind::Deal,
        _ => meshwork_crm_io::RecordKind::Contact,
    };
    let mut targets: Vec<(String, String)> = meshwork_crm_io::canonical_fields(rk)
        .iter()
        .map(|t| (t.to_string(), target_label(t)))
        .collect();
    // Custom fields the layout found stay choices.
    for c in &columns {
        if !c.detected.is_empty() && !targets.iter().any(|(t, _)| *t == c.detected) {
            targets.push((c.detected.clone(), target_label(&c.detected)));
        }
    }
    (columns, targets)
}

/// Receives the file (sealed as it arrives), then shows what Meshwork reads in it.
pub async fn upload(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmImport>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let bad = |m: String| PageError::new(ErrorCode::InvalidField, m);
    let (mut csrf, mut kind, mut layout, mut file_name) =
        (String::new(), String::new(), String::new(), String::new());
    let mut staged = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("the upload was cut short: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            // The token comes first in the form: nothing is stored for a forged post.
            if !csrf_matches(&state, &page.session.0.session_hash, &csrf)? {
                return Err(PageError::new(
                    ErrorCode::CsrfTokenInvalid,
                    "the form is out of date; reload the page and try again",
                ));
            }
            file_name = field.file_name().unwrap_or("the file").to_string();
            let mut upload = Upload::begin(&state, page.ws())?;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| bad(format!("the upload of {file_name} was cut short: {e}")))?
            {
                upload.write(&chunk)?;
            }
            staged = Some(upload);
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match name.as_str() {
            "csrf_token" => csrf = value,
            "type" => kind = value,
            "layout" => layout = value,
            _ => {}
        }
    }
    let again = |message: String| async {
        let mut r = new_page(&state, &page, &kind, &layout, Some(message))
            .await?
            .into_response();
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        Ok::<_, PageError>(r)
    };
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        return again("Choose what the file holds: contacts, companies or deals".into()).await;
    }
    let Some(upload) = staged.filter(|u| u.size() > 0) else {
        return again("Choose a file to import (it was empty or missing)".into()).await;
    };
    let id = upload.stage()?;
    let chosen = (!layout.is_empty()).then_some(layout.as_str());
    let preview = uploads::preview(&state, page.ws(), &id, &kind, chosen)?;
    if let Some(problem) = &preview.problem {
        return again(format!("{file_name}: {problem}")).await;
    }
    let (columns, targets) = mapping_choices(&preview, &kind);
    Ok(PreviewPage {
        chrome: Chrome::workspace(&state, &page, section_of(&kind)).await?,
        ws: page.ws().to_string(),
        upload: id,
        file_name,
        kind_label: KINDS
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, l)| *l)
            .unwrap_or("Records"),
        match_on: match kind.as_str() {
            "contact" => "email",
            "company" => "domain",
            _ => "external_id",
        },
        columns,
        targets,
        kind,
        preview,
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    upload: String,
    #[serde(rename = "type")]
    kind: String,
    layout: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    match_on: String,
    #[serde(default)]
    tags: String,
    /// The mapping table: `col_N` (a column's header cell), `det_N` (the field the layout
    /// fills from it) and `map_N` (the field chosen).
    #[serde(flatten)]
    mapping: HashMap<String, String>,
}

/// The columns and fields chosen in the mapping table, when they differ from the layout's.
fn chosen_mapping(form: &HashMap<String, String>) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut changed = false;
    for i in 0..10_000 {
        let Some(column) = form.get(&format!("col_{i}")) else {
            break;
        };
        let chosen = form.get(&format!("map_{i}")).cloned().unwrap_or_default();
        let detected = form.get(&format!("det_{i}")).cloned().unwrap_or_default();
        changed |= chosen != detected;
        if !chosen.is_empty() {
            pairs.push((column.clone(), chosen));
        }
    }
    changed.then_some(pairs)
}

/// Starts the import of a staged file; a second start of the same file finds it gone.
pub async fn start(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmImport>,
    Posted(_, form): Posted<StartForm>,
) -> Result<Response, PageError> {
    let request = ImportRequest {
        kind: form.kind,
        layout: Some(form.layout),
        mode: Some(form.mode).filter(|m| !m.is_empty()),
        match_on: Some(form.match_on).filter(|m| !m.is_empty()),
        owner: None,
        tags: Some(form.tags),
    };
    let mut checked = uploads::check(&state, page.ws(), &request).await?;
    if let Some(pairs) = chosen_mapping(&form.mapping) {
        checked = checked.with_mapping(pairs)?;
    }
    let job = uploads::start_staged(&state, &client, &page.member, checked, &form.upload).await?;
    Ok(Redirect::to(&format!("/w/{}/import/{job}", page.ws())).into_response())
}

fn job_id(raw: &str) -> Result<JobId, PageError> {
    raw.parse::<uuid::Uuid>()
        .map(JobId)
        .map_err(|_| PageError::new(ErrorCode::JobNotFound, "there is no such import"))
}

#[derive(Template, WebTemplate)]
#[template(path = "imports/status.html")]
pub struct StatusPage {
    chrome: Chrome,
    ws: String,
    job: String,
    state: String,
    running: bool,
    rows: u64,
    created: u64,
    updated: u64,
    rejected: u64,
    merged: u64,
    reverted: u64,
    folded: u64,
    errors: Vec<RowProblem>,
    notes: Vec<RowProblem>,
    kind_plural: String,
    notice: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    done: String,
}

pub async fn status(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmImport>,
    Path((_, job)): Path<(String, String)>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, PageError> {
    let job = job_id(&job)?;
    let (row, spec, p) = import::job_state(&state, page.ws(), job).await?;
    let shown = uploads::status(job, &row.state, &p);
    Ok(StatusPage {
        chrome: Chrome::workspace(&state, &page, section_of(&spec.kind)).await?,
        ws: page.ws().to_string(),
        job: job.to_string(),
        running: row.state == "running",
        state: row.state,
        rows: p.rows,
        created: p.created,
        updated: p.updated,
        rejected: p.rejected,
        merged: p.duplicates_in_file,
        reverted: p.reverted,
        folded: p.folded,
        errors: shown.errors.into_iter().take(200).collect(),
        notes: shown.notes.into_iter().take(50).collect(),
        kind_plural: spec
            .kind
            .parse::<meshwork_crm::Kind>()
            .map(|k| k.plural().to_string())
            .unwrap_or_else(|_| spec.kind.clone()),
        notice: (q.done == "reverted").then_some(
            "The import is reverted: the records it created are deleted, the fields it changed restored.",
        ),
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

pub async fn revert(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmImport>,
    Path((_, job)): Path<(String, String)>,
    Posted(_, Nothing {}): Posted<Nothing>,
) -> Result<Response, PageError> {
    let job = job_id(&job)?;
    uploads::revert(&state, &client, &page.member, job).await?;
    Ok(Redirect::to(&format!("/w/{}/import/{job}?done=reverted", page.ws())).into_response())
}

/// The rejected rows as CSV: each row's cells as the file had them, then row, line, column and
/// reason (kept sealed for a week after the import); afterwards, the reasons alone.
pub async fn rejected_csv(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmImport>,
    Path((_, job)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let job = job_id(&job)?;
    let (_, _, p) = import::job_state(&state, page.ws(), job).await?;
    let attachment = |body: Vec<u8>| {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"import-{job}-rejected.csv\""),
                ),
            ],
            body,
        )
            .into_response()
    };
    // The rows with their cells as the file had them, while they are kept; after that, or
    // for an import whose rows were not kept, where and why each was rejected.
    if let Some(rows) = import::rejected_rows(&state, page.ws(), job).await? {
        return Ok(attachment(rows));
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| PageError(AppError::internal(format!("csv: {e}")));
    out.write_record(["row", "line", "column", "reason"])
        .map_err(fail)?;
    for e in &p.errors {
        out.write_record([
            e.row.to_string(),
            e.line.to_string(),
            meshwork_crm_io::escape_formula(e.column.as_deref().unwrap_or("")).into_owned(),
            meshwork_crm_io::escape_formula(&e.reason).into_owned(),
        ])
        .map_err(fail)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| PageError(AppError::internal(format!("csv: {e}"))))?;
    Ok(attachment(body))
}

/// A field's name as the mapping table shows it.
pub fn target_label(target: &str) -> String {
    fields::label(target)
}
