//! Editing one cell of a list in place: a cell of a contact, company or deal list opens a
//! one-field form (htmx swaps it into the cell), saves the field with the version it was opened
//! at, and shows the saved value again. Without script the cell is a link to the field on the
//! record's page, where the same edit is made. Saving goes through `Crm::update`, checked as
//! the API checks it: the API's message beside the field on bad input, and an edit made against
//! an old version refused with the value saved meanwhile shown, nothing overwritten.

use super::extract::{InWorkspace, Posted};
use super::fields;
use super::records::{cell as cell_text, columns_of, stage_groups, StageGroup};
use super::PageError;
use crate::auth::perm;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::{Crm, RecordView};
use meshwork_app::AppState;
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, RecordId};
use std::collections::HashMap;

/// One cell of a list as shown: its value, and what editing it needs.
#[derive(Debug, Clone)]
pub struct Cell {
    pub ws: String,
    pub plural: &'static str,
    pub record: String,
    /// The record's name, for the edit control's accessible name.
    pub record_title: String,
    pub field: &'static str,
    /// The column's heading.
    pub label: &'static str,
    pub value: String,
}

impl Cell {
    /// Where its form is posted.
    pub fn action(&self) -> String {
        format!(
            "/w/{}/{}/{}/cell/{}",
            self.ws, self.plural, self.record, self.field
        )
    }

    /// Its input's id, unique on the page.
    pub fn input_id(&self) -> String {
        format!("cell-{}-{}", self.record, self.field)
    }
}

/// A cell's one-field form.
#[derive(Debug)]
pub struct CellForm {
    pub version: i64,
    /// `text`, `date`, `select` or `stage` (a deal's pipeline and stage as one choice).
    pub control: &'static str,
    pub value: String,
    pub options: Vec<(String, String)>,
    pub stages: Vec<StageGroup>,
    pub inputmode: Option<&'static str>,
    pub max_len: Option<usize>,
    pub hint: Option<&'static str>,
    pub error: Option<String>,
    pub saved_meanwhile: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "records/cell.html")]
pub struct CellPart {
    cell: Cell,
    form: Option<CellForm>,
    csrf: String,
}

/// The column `field` of `kind`'s list, or "not found" for any other.
fn column(kind: Kind, field: &str) -> Result<(&'static str, &'static str), PageError> {
    columns_of(kind)
        .iter()
        .find(|(_, f)| *f == field)
        .copied()
        .ok_or_else(|| {
            PageError::new(
                ErrorCode::InvalidField,
                format!(
                    "field `{field}`: a {} list has no such column",
                    kind.as_str()
                ),
            )
        })
}

async fn loaded(
    state: &AppState,
    ws: meshwork_domain::WorkspaceId,
    kind: Kind,
    id: &str,
) -> Result<(RecordView, Vec<StageGroup>), PageError> {
    let id = super::records::record_id(id)?;
    let crm = Crm::new(state, ws)?;
    let view = crm.view(&crm.record(kind, id).await?)?;
    let stages = if kind == Kind::Deal {
        stage_groups(&crm).await?
    } else {
        Vec::new()
    };
    Ok((view, stages))
}

fn shown(
    ws: meshwork_domain::WorkspaceId,
    kind: Kind,
    view: &RecordView,
    stages: &[StageGroup],
    (label, field): (&'static str, &'static str),
) -> Cell {
    let names: HashMap<String, String> = stages
        .iter()
        .flat_map(|g| g.stages.iter().cloned())
        .collect();
    Cell {
        ws: ws.to_string(),
        plural: kind.plural(),
        record: view.id.to_string(),
        record_title: fields::title(kind, &view.fields),
        field,
        label,
        value: cell_text(kind, field, &view.fields, &names),
    }
}

/// The form for `field` of `view`, filled with what is saved.
fn form_of(kind: Kind, view: &RecordView, stages: Vec<StageGroup>, field: &str) -> CellForm {
    if kind == Kind::Deal && field == "stage" {
        return CellForm {
            version: view.version,
            control: "stage",
            value: format!(
                "{}/{}",
                fields::as_text(view.fields.get("pipeline")),
                fields::as_text(view.fields.get("stage"))
            ),
            options: Vec::new(),
            stages,
            inputmode: None,
            max_len: None,
            hint: None,
            error: None,
            saved_meanwhile: None,
        };
    }
    let input = fields::inputs(kind, &view.fields, &[])
        .into_iter()
        .find(|i| i.name == field);
    let (control, options, inputmode, max_len, hint, value) = match input {
        Some(i) => (
            match i.control {
                "select" | "date" => i.control,
                _ => "text",
            },
            i.options,
            i.inputmode,
            i.max_len,
            i.hint,
            i.value,
        ),
        None => ("text", Vec::new(), None, None, None, String::new()),
    };
    CellForm {
        version: view.version,
        control,
        value,
        options,
        stages: Vec::new(),
        inputmode,
        max_len,
        hint,
        error: None,
        saved_meanwhile: None,
    }
}

/// A cell's form, for htmx; a browser that asks for it itself goes to the field on the record's
/// page.
pub async fn edit(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    headers: HeaderMap,
    Path((_, id, field)): Path<(String, String, String)>,
    kind: Kind,
) -> Result<Response, PageError> {
    let col = column(kind, &field)?;
    let ws = page.ws();
    if !headers.contains_key("hx-request") {
        return Ok(
            Redirect::to(&format!("/w/{ws}/{}/{id}#f-{}", kind.plural(), col.1)).into_response(),
        );
    }
    let (view, stages) = loaded(&state, ws, kind, &id).await?;
    Ok(CellPart {
        cell: shown(ws, kind, &view, &stages, col),
        form: Some(form_of(kind, &view, stages, col.1)),
        csrf: page.session.csrf(&state)?,
    }
    .into_response())
}

/// A cell as shown (after Cancel).
pub async fn show(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id, field)): Path<(String, String, String)>,
    kind: Kind,
) -> Result<Response, PageError> {
    let col = column(kind, &field)?;
    let ws = page.ws();
    let (view, stages) = loaded(&state, ws, kind, &id).await?;
    Ok(CellPart {
        cell: shown(ws, kind, &view, &stages, col),
        form: None,
        csrf: page.session.csrf(&state)?,
    }
    .into_response())
}

/// Saves a cell: the saved value shown, or the form again with what is wrong (422) or with the
/// value saved meanwhile (409).
pub async fn save(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    headers: HeaderMap,
    Path((_, id, field)): Path<(String, String, String)>,
    Posted(session, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let col = column(kind, &field)?;
    let ws = page.ws();
    // Sent by the browser itself (before script wired the form up): saved the same way, then
    // the list is shown again rather than a bare cell.
    let whole_page = !headers.contains_key("hx-request");
    let (before, _) = loaded(&state, ws, kind, &id).await?;
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    // Only this column's field is read from the form.
    let mut one = HashMap::new();
    let key = if kind == Kind::Deal && col.1 == "stage" {
        "pipeline_stage"
    } else {
        col.1
    };
    let typed = form.get(key).cloned().unwrap_or_default();
    one.insert(key.to_string(), typed.clone());
    let patch = fields::doc_from_form(kind, &one, false);
    let crm = Crm::new(&state, ws)?;
    let csrf = session.csrf(&state)?;
    match crm.update(kind, RecordId(before.id), &patch, version).await {
        Ok(_) if whole_page => {
            Ok(Redirect::to(&format!("/w/{ws}/{}", kind.plural())).into_response())
        }
        Ok(view) => {
            let stages = if kind == Kind::Deal {
                stage_groups(&crm).await?
            } else {
                Vec::new()
            };
            Ok(CellPart {
                cell: shown(ws, kind, &view, &stages, col),
                form: None,
                csrf,
            }
            .into_response())
        }
        Err(e) if e.code == ErrorCode::Internal || e.code == ErrorCode::RecordNotFound => {
            Err(e.into())
        }
        Err(e) => {
            let conflict = e.code == ErrorCode::ConcurrentChange;
            let (view, stages) = loaded(&state, ws, kind, &id).await?;
            let cell = shown(ws, kind, &view, &stages, col);
            let mut f = form_of(kind, &view, stages, col.1);
            if conflict {
                // What is saved now, beside what was typed; saving again applies the typed
                // value over the version now shown.
                f.saved_meanwhile = Some(if cell.value.is_empty() {
                    "(empty)".into()
                } else {
                    cell.value.clone()
                });
            } else {
                let (by_field, general) = fields::errors_of(&e);
                f.error = by_field
                    .get(col.1)
                    .or_else(|| by_field.get("pipeline"))
                    .or_else(|| by_field.get("stage"))
                    .cloned()
                    .or(general)
                    .or_else(|| by_field.into_values().next());
            }
            f.value = typed;
            let mut r = CellPart {
                cell,
                form: Some(f),
                csrf,
            }
            .into_response();
            *r.status_mut() = if conflict {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok(r)
        }
    }
}
