//! Merging a duplicate into a record, from the record's page: find the duplicate (the record's
//! own name is searched first), preview the merge (a dry run of `meshwork_app::crm::merge`,
//! which writes nothing: every field as it is on each side and as it will be), then confirm.
//! The merge itself is the API's: this record's values win, lists are united, the duplicate's
//! links and timeline move here, the duplicate is deleted, and the audit log has it.

use super::extract::{InWorkspace, Posted};
use super::fields;
use super::records::record_id;
use super::{Chrome, PageError};
use crate::auth::perm;
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::{Crm, RecordList, RecordView};
use meshwork_app::AppState;
use meshwork_crm::{Doc, Kind};
use meshwork_domain::{ErrorCode, RecordId};
use std::collections::HashMap;

/// A record that may be the duplicate.
#[derive(Debug)]
pub struct Candidate {
    pub id: String,
    pub title: String,
    pub detail: String,
}

/// One field, on each side and after the merge.
#[derive(Debug)]
pub struct Compared {
    pub label: String,
    pub this: String,
    pub other: String,
    pub after: String,
}

/// The dry run's result.
#[derive(Debug)]
pub struct Preview {
    pub other_id: String,
    pub other_title: String,
    pub fields: Vec<Compared>,
    pub relations_moved: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "records/merge.html")]
pub struct MergePage {
    chrome: Chrome,
    ws: String,
    kind: &'static str,
    plural: &'static str,
    id: String,
    title: String,
    q: String,
    candidates: Vec<Candidate>,
    preview: Option<Preview>,
    error: Option<String>,
}

/// What tells two records apart at a glance: emails, domains, or amount and stage.
fn detail(kind: Kind, doc: &Doc) -> String {
    let field = match kind {
        Kind::Contact => "emails",
        Kind::Company => "domains",
        _ => "amount",
    };
    fields::as_text(doc.get(field))
}

fn compared(kind: Kind, this: &Doc, other: &Doc, after: &Doc) -> Vec<Compared> {
    let shown = |d: &Doc| fields::inputs(kind, d, &[]);
    let (a, b, c) = (shown(this), shown(other), shown(after));
    a.into_iter()
        .zip(b)
        .zip(c)
        .filter(|((a, b), c)| !(a.value.is_empty() && b.value.is_empty() && c.value.is_empty()))
        .map(|((a, b), c)| Compared {
            label: a.label.clone(),
            this: a.display(),
            other: b.display(),
            after: c.display(),
        })
        .collect()
}

async fn page_for(
    state: &AppState,
    client: &meshwork_app::actor::ClientInfo,
    page: &InWorkspace<perm::CrmWrite>,
    kind: Kind,
    id: RecordId,
    params: &HashMap<String, String>,
) -> Result<MergePage, PageError> {
    let ws = page.ws();
    let crm = Crm::new(state, ws)?;
    let this: RecordView = crm.view(&crm.record(kind, id).await?)?;
    let title = fields::title(kind, &this.fields);
    let q = params
        .get("q")
        .map(|q| q.trim().to_string())
        .unwrap_or_else(|| title.clone());
    let mut error = None;
    let mut candidates = Vec::new();
    if !q.is_empty() {
        let mut p = HashMap::new();
        p.insert("q".to_string(), q.clone());
        p.insert("limit".to_string(), "11".to_string());
        match RecordList::from_params(kind, &p) {
            Ok(list) => {
                let found = crm.list(&page.member.actor, page.member.role, list).await?;
                candidates = found
                    .records
                    .iter()
                    .filter(|r| r.id != this.id)
                    .take(10)
                    .map(|r| Candidate {
                        id: r.id.to_string(),
                        title: fields::title(kind, &r.fields),
                        detail: detail(kind, &r.fields),
                    })
                    .collect();
            }
            Err(e) if e.code == ErrorCode::Internal => return Err(e.into()),
            Err(e) => error = Some(super::accounts::capitalized(&e.message)),
        }
    }
    let mut preview = None;
    if let Some(other) = params.get("other").filter(|o| !o.is_empty()) {
        let other_id: RecordId = other
            .parse()
            .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such record"))?;
        match meshwork_app::crm::merge(state, client, &page.member, kind, id, other_id, true).await
        {
            Ok(result) => {
                let other_view = crm.view(&crm.record(kind, other_id).await?)?;
                preview = Some(Preview {
                    other_id: other_id.to_string(),
                    other_title: fields::title(kind, &other_view.fields),
                    fields: compared(
                        kind,
                        &this.fields,
                        &other_view.fields,
                        &result.survivor.fields,
                    ),
                    relations_moved: result.relations_moved,
                });
            }
            Err(e) if e.code == ErrorCode::Internal => return Err(e.into()),
            Err(e) => error = Some(super::accounts::capitalized(&e.message)),
        }
    }
    Ok(MergePage {
        chrome: Chrome::workspace(state, page, super::records::section(kind)).await?,
        ws: ws.to_string(),
        kind: kind.as_str(),
        plural: kind.plural(),
        id: id.to_string(),
        title,
        q,
        candidates,
        preview,
        error,
    })
}

/// Finding the duplicate, and the preview of merging it.
pub async fn show(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    Ok(page_for(&state, &client, &page, kind, id, &params)
        .await?
        .into_response())
}

/// Merges the previewed duplicate into the record, then shows the record.
pub async fn merge(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    let other = record_id(form.get("other").map(String::as_str).unwrap_or(""))?;
    meshwork_app::crm::merge(&state, &client, &page.member, kind, id, other, false).await?;
    Ok(Redirect::to(&format!("/w/{}/{}/{id}#timeline", page.ws(), kind.plural())).into_response())
}
