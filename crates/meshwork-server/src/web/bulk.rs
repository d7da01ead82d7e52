//! Changing many records at once from a list, and downloading a list as CSV.
//!
//! Bulk changes take two steps: the list's form names the rows (ticked ones, or every record
//! the view matches) and the action; the review page says how many records it will change and
//! asks for the value (tags, an owner, a stage) or, for a deletion, a ticked confirmation; only
//! then is it applied, through the same audited `meshwork_app::crm::bulk_*` services as the
//! API, with the permission the API asks (`crm.bulk`).

use super::extract::{InWorkspace, Posted};
use super::fields;
use super::records::{columns_of, stage_groups, StageGroup};
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::{Crm, RecordList, Selection};
use meshwork_app::{workspaces, AppState};
use meshwork_crm::{Doc, Kind};
use meshwork_domain::{ErrorCode, RecordId};
use serde_json::Value;
use std::collections::HashMap;

/// The list view a bulk form or a download was made from (its query string).
fn view_params(view: &str) -> HashMap<String, String> {
    view_of(url::form_urlencoded::parse(view.as_bytes()).into_owned())
}

/// A list's view from its query's pairs: what it shows, without the page it is on or the
/// notice of the last change.
fn view_of(pairs: impl IntoIterator<Item = (String, String)>) -> HashMap<String, String> {
    pairs
        .into_iter()
        .filter(|(k, v)| k != "cursor" && k != "done" && !v.trim().is_empty())
        .collect()
}

/// What the posted form selects: the ticked rows, or everything the view matches.
fn selection(kind: Kind, form: &[(String, String)]) -> Result<(Selection, bool), PageError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let params = view_params(get("view").unwrap_or(""));
    let list = RecordList::from_params(kind, &params)?;
    let all = get("scope") == Some("all");
    let ids = if all {
        None
    } else {
        let ids: Vec<RecordId> = form
            .iter()
            .filter(|(k, _)| k == "id")
            .filter_map(|(_, v)| v.parse().ok())
            .collect();
        if ids.is_empty() {
            return Err(PageError::new(
                ErrorCode::InvalidField,
                format!(
                    "tick the {} to change first, or choose all that match the view",
                    kind.plural()
                ),
            ));
        }
        Some(ids)
    };
    Ok((
        Selection {
            filter: list.filter,
            text: list.text,
            ids,
        },
        all,
    ))
}

#[derive(Template, WebTemplate)]
#[template(path = "records/bulk.html")]
pub struct ReviewPage {
    chrome: Chrome,
    ws: String,
    kind: &'static str,
    plural: &'static str,
    action: String,
    count: u64,
    /// The type's name as the count needs it (`1 deal`, `2 deals`).
    noun: &'static str,
    view: String,
    all: bool,
    ids: Vec<String>,
    members: Vec<(String, String)>,
    stages: Vec<StageGroup>,
    stage: String,
}

fn section(kind: Kind) -> Section {
    match kind {
        Kind::Contact => Section::Contacts,
        Kind::Company => Section::Companies,
        _ => Section::Deals,
    }
}

/// Step one: how many records, and the value to set (or the confirmation of a deletion).
pub async fn review(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmBulk>,
    Posted(_, form): Posted<Vec<(String, String)>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let action = get("action").unwrap_or_default();
    if !matches!(action.as_str(), "tags" | "owner" | "stage" | "delete")
        || (action == "stage" && kind != Kind::Deal)
    {
        return Err(PageError::new(
            ErrorCode::InvalidField,
            "field `action`: choose what to do with the selected records",
        ));
    }
    let (sel, all) = selection(kind, &form)?;
    let view = get("view").unwrap_or_default();
    let read = page.also::<perm::CrmRead>()?;
    let crm = Crm::new(&state, page.ws())?;
    let count = match &sel.ids {
        Some(ids) => ids.len() as u64,
        None => {
            let mut list = RecordList::from_params(kind, &view_params(&view))?;
            list.limit = 1;
            crm.list(&page.member.actor, page.member.role, list)
                .await?
                .total
        }
    };
    let stages = if action == "stage" {
        stage_groups(&crm).await?
    } else {
        Vec::new()
    };
    Ok(ReviewPage {
        chrome: Chrome::workspace(&state, &read, section(kind)).await?,
        ws: page.ws().to_string(),
        kind: kind.as_str(),
        plural: kind.plural(),
        action,
        noun: if count == 1 {
            kind.as_str()
        } else {
            kind.plural()
        },
        count,
        view,
        all,
        ids: sel
            .ids
            .unwrap_or_default()
            .iter()
            .map(RecordId::to_string)
            .collect(),
        members: workspaces::members(&state, &page.member)
            .await?
            .into_iter()
            .map(|m| (m.user_id.to_string(), m.name))
            .collect(),
        stage: stages
            .first()
            .and_then(|g| g.stages.first())
            .map(|s| s.0.clone())
            .unwrap_or_default(),
        stages,
    }
    .into_response())
}

/// Step two: applies it, and goes back to the list with how many records changed.
pub async fn apply(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmBulk>,
    Posted(_, form): Posted<Vec<(String, String)>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (sel, _) = selection(kind, &form)?;
    let action = get("action").unwrap_or_default();
    let affected = if action == "delete" {
        if get("confirm").as_deref() != Some("yes") {
            return Err(PageError::new(
                ErrorCode::ConfirmationRequired,
                "tick the box that confirms the deletion",
            ));
        }
        meshwork_app::crm::bulk_delete(&state, &client, &page.member, kind, &sel).await?
    } else {
        let value = get("value").unwrap_or_default();
        let mut set = Doc::new();
        match action.as_str() {
            "tags" => {
                set.insert(
                    "tags".into(),
                    fields::parse(meshwork_crm::FieldType::Texts, &value),
                );
            }
            "owner" => {
                set.insert(
                    "owner".into(),
                    fields::parse(meshwork_crm::FieldType::Member, &value),
                );
            }
            "stage" if kind == Kind::Deal => {
                let (pipeline, stage) = value.split_once('/').ok_or_else(|| {
                    PageError::new(ErrorCode::InvalidField, "field `value`: choose a stage")
                })?;
                set.insert("pipeline".into(), Value::String(pipeline.into()));
                set.insert("stage".into(), Value::String(stage.into()));
            }
            _ => {
                return Err(PageError::new(
                    ErrorCode::InvalidField,
                    "field `action`: choose what to do with the selected records",
                ))
            }
        }
        meshwork_app::crm::bulk_update(&state, &client, &page.member, kind, &sel, &set).await?
    };
    let done = if action == "delete" {
        "deleted"
    } else {
        "updated"
    };
    let mut back: Vec<(String, String)> = view_params(&get("view").unwrap_or_default())
        .into_iter()
        .collect();
    back.sort();
    back.push(("done".into(), format!("{done}-{affected}")));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(back)
        .finish();
    Ok(Redirect::to(&format!("/w/{}/{}?{query}", page.ws(), kind.plural())).into_response())
}

/// The list as its view shows it (every page of it), as CSV: the name, then the list's columns.
pub async fn export(
    State(state): State<AppState>,
    crate::client::Client(client): crate::client::Client,
    page: InWorkspace<perm::CrmExport>,
    Query(params): Query<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    // A whole list leaving: a person confirms it is them first (ASVS 3.7.1), as for the
    // workspace's export.
    meshwork_app::rights::require_fresh_actor(&state, &page.member.actor, "downloading a list")
        .await?;
    let read = page.also::<perm::CrmRead>()?;
    let crm = Crm::new(&state, page.ws())?;
    let stage_names: HashMap<String, String> = if kind == Kind::Deal {
        stage_groups(&crm)
            .await?
            .into_iter()
            .flat_map(|g| g.stages)
            .collect()
    } else {
        HashMap::new()
    };
    let mut params = view_of(params);
    params.insert("limit".into(), "500".into());
    let mut out = csv::Writer::from_writer(Vec::new());
    let cols = columns_of(kind);
    let mut header = vec!["Name"];
    header.extend(cols.iter().map(|(h, _)| *h));
    let fail = |e: csv::Error| PageError(meshwork_app::AppError::internal(format!("csv: {e}")));
    out.write_record(&header).map_err(fail)?;
    let mut exported = 0usize;
    loop {
        let list = RecordList::from_params(kind, &params)?;
        let p = crm.list(&read.member.actor, read.member.role, list).await?;
        exported += p.records.len();
        for r in &p.records {
            let mut row = vec![fields::title(kind, &r.fields)];
            row.extend(
                cols.iter()
                    .map(|(_, f)| super::records::cell(kind, f, &r.fields, &stage_names)),
            );
            // A cell a spreadsheet would run as a formula is quoted as text.
            let row: Vec<String> = row
                .iter()
                .map(|c| meshwork_crm_io::escape_formula(c).into_owned())
                .collect();
            out.write_record(&row).map_err(fail)?;
        }
        match p.next_cursor {
            Some(c) => {
                params.insert("cursor".into(), c);
            }
            None => break,
        }
    }
    let body = out
        .into_inner()
        .map_err(|e| PageError(meshwork_app::AppError::internal(format!("csv: {e}"))))?;
    // Audited as the workspace's export is: what left and how much, never its content.
    meshwork_app::audit::workspace_event(
        &state,
        &client,
        "crm.exported",
        &page.member,
        None,
        serde_json::json!({"file": format!("{}.csv", kind.plural()), "records": exported, "bytes": body.len(), "list": true}),
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", kind.plural()),
            ),
        ],
        body,
    )
        .into_response())
}
