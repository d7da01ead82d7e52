//! Editing pipelines and their stages (`/w/{ws}/pipelines`, for roles that may change the
//! workspace's schema, as creating a pipeline on the board is): rename a pipeline; rename,
//! reorder, add, close (won or lost) and remove stages; delete a pipeline. Each save is one
//! `Crm::update` of the pipeline with the version it was shown at, so a stale form is refused,
//! not applied; the CRM refuses to remove a stage that still holds deals, and a pipeline that
//! still has deals, with the count.

use super::extract::{InWorkspace, Posted};
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::Crm;
use meshwork_app::AppState;
use meshwork_crm::{Doc, Kind};
use meshwork_domain::{ErrorCode, RecordId};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A stage as its row in the form shows it.
#[derive(Debug, Clone)]
pub struct StageRow {
    /// The stage's id, kept when it is renamed; empty for the row that adds a stage.
    pub id: String,
    pub name: String,
    /// `open`, `won` or `lost`.
    pub outcome: &'static str,
    pub position: usize,
}

/// A pipeline's form.
#[derive(Debug)]
pub struct PipelineForm {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub stages: Vec<StageRow>,
    pub error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "records/pipelines.html")]
pub struct PipelinesPage {
    chrome: Chrome,
    ws: String,
    pipelines: Vec<PipelineForm>,
}

/// One empty row at the end, which adds a stage.
fn with_new_row(stages: &mut Vec<StageRow>) {
    stages.push(StageRow {
        id: String::new(),
        name: String::new(),
        outcome: "open",
        position: stages.len() + 1,
    });
}

fn form_of(id: RecordId, version: i64, doc: &Doc) -> PipelineForm {
    let mut stages: Vec<StageRow> = doc
        .get("stages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, s)| StageRow {
                    id: s.get("id").and_then(Value::as_str).unwrap_or("").into(),
                    name: s.get("name").and_then(Value::as_str).unwrap_or("").into(),
                    outcome: if s.get("won").and_then(Value::as_bool) == Some(true) {
                        "won"
                    } else if s.get("lost").and_then(Value::as_bool) == Some(true) {
                        "lost"
                    } else {
                        "open"
                    },
                    position: i + 1,
                })
                .collect()
        })
        .unwrap_or_default();
    with_new_row(&mut stages);
    PipelineForm {
        id: id.to_string(),
        version,
        name: doc.get("name").and_then(Value::as_str).unwrap_or("").into(),
        stages,
        error: None,
    }
}

async fn page_of(
    state: &AppState,
    page: &InWorkspace<perm::CrmSchema>,
    replaced: Option<PipelineForm>,
) -> Result<PipelinesPage, PageError> {
    let crm = Crm::new(state, page.ws())?;
    let mut pipelines: Vec<PipelineForm> = crm
        .all(Kind::Pipeline)
        .await?
        .iter()
        .map(|(row, doc)| form_of(row.id, row.version, doc))
        .collect();
    if let Some(r) = replaced {
        if let Some(p) = pipelines.iter_mut().find(|p| p.id == r.id) {
            *p = r;
        }
    }
    Ok(PipelinesPage {
        chrome: Chrome::workspace(state, page, Section::Board).await?,
        ws: page.ws().to_string(),
        pipelines,
    })
}

fn pipeline_id(raw: &str) -> Result<RecordId, PageError> {
    raw.parse()
        .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such pipeline"))
}

/// The pipelines and their forms.
pub async fn show(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmSchema>,
) -> Result<Response, PageError> {
    Ok(page_of(&state, &page, None).await?.into_response())
}

/// The rows of a posted form, in the order their positions give (ties keep the form's order),
/// without the removed ones and the empty new row.
fn rows_of(form: &HashMap<String, String>) -> Vec<StageRow> {
    let mut rows = Vec::new();
    for i in 0..=50 {
        let get = |k: &str| form.get(&format!("s{i}_{k}")).map(|v| v.trim().to_string());
        let Some(name) = get("name") else {
            continue;
        };
        if get("remove").as_deref() == Some("yes") {
            continue;
        }
        let id = get("id").unwrap_or_default();
        if id.is_empty() && name.is_empty() {
            continue;
        }
        rows.push(StageRow {
            id,
            name,
            outcome: match get("outcome").as_deref() {
                Some("won") => "won",
                Some("lost") => "lost",
                _ => "open",
            },
            position: get("position")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1000 + i),
        });
    }
    rows.sort_by_key(|r| r.position);
    rows
}

/// Saves a pipeline's name and stages.
pub async fn save(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmSchema>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let pipeline = pipeline_id(&id)?;
    let rows = rows_of(&form);
    let stages: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut s =
                json!({"name": r.name, "won": r.outcome == "won", "lost": r.outcome == "lost"});
            if !r.id.is_empty() {
                s["id"] = Value::String(r.id.clone());
            }
            s
        })
        .collect();
    let name = form.get("name").cloned().unwrap_or_default();
    let mut patch = Doc::new();
    patch.insert("name".into(), Value::String(name.trim().into()));
    patch.insert("stages".into(), Value::Array(stages));
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let crm = Crm::new(&state, page.ws())?;
    match crm.update(Kind::Pipeline, pipeline, &patch, version).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/w/{}/pipelines#p-{pipeline}", page.ws())).into_response())
        }
        Err(e) if matches!(e.code, ErrorCode::Internal | ErrorCode::RecordNotFound) => {
            Err(e.into())
        }
        Err(e) => {
            // The form as it was posted, with what is wrong; after a conflict, what is saved
            // now (the newer version) is shown instead, to edit again.
            let replaced = if e.code == ErrorCode::ConcurrentChange {
                let row = crm.record(Kind::Pipeline, pipeline).await?;
                let mut f = form_of(pipeline, row.version, &crm.open_doc(&row)?);
                f.error = Some("Someone changed this pipeline after you opened it; here it is as saved now. Make your change again.".into());
                f
            } else {
                let mut stages = rows;
                for (i, s) in stages.iter_mut().enumerate() {
                    s.position = i + 1;
                }
                with_new_row(&mut stages);
                PipelineForm {
                    id: pipeline.to_string(),
                    version: version.unwrap_or_default(),
                    name,
                    stages,
                    error: Some(super::accounts::field_of(&e).1),
                }
            };
            let status = if e.code == ErrorCode::ConcurrentChange {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let mut r = page_of(&state, &page, Some(replaced))
                .await?
                .into_response();
            *r.status_mut() = status;
            Ok(r)
        }
    }
}

/// Deletes a pipeline (none of whose deals remain), after a ticked confirmation.
pub async fn delete(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmSchema>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let pipeline = pipeline_id(&id)?;
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(PageError::new(
            ErrorCode::InvalidField,
            "tick the box that confirms the deletion",
        ));
    }
    let crm = Crm::new(&state, page.ws())?;
    match crm.delete(Kind::Pipeline, pipeline).await {
        Ok(()) => Ok(Redirect::to(&format!("/w/{}/pipelines", page.ws())).into_response()),
        Err(e) if e.code == ErrorCode::RecordInUse => {
            let row = crm.record(Kind::Pipeline, pipeline).await?;
            let mut f = form_of(pipeline, row.version, &crm.open_doc(&row)?);
            f.error = Some(super::accounts::capitalized(&e.message));
            let mut r = page_of(&state, &page, Some(f)).await?.into_response();
            *r.status_mut() = StatusCode::CONFLICT;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}
