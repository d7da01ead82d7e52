//! Contacts, companies and deals in the browser: each type's list (search-box text, sort, keyset
//! pages from the index, a form to add one) and each record's page (every field editable in
//! place, related records, the timeline with a composer for notes, tasks, calls and logged
//! emails, deletion). Every read and write goes through `meshwork_app::crm::Crm` with the
//! permission the API asks (`crm.read` to see, `crm.write` to change), so a page can never do
//! what the API refuses; a viewer sees no edit controls at all.

use super::extract::{InWorkspace, Posted};
use super::fields::{self, Input};
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use meshwork_app::crm::{Crm, RecordList, RecordView, TimelineItem};
use meshwork_app::{workspaces, AppError, AppState};
use meshwork_crm::{Doc, Kind};
use meshwork_domain::{ErrorCode, Permission, RecordId, WorkspaceId};
use serde_json::Value;
use std::collections::HashMap;

/// The record types with lists and pages.
pub const KINDS: [Kind; 3] = [Kind::Contact, Kind::Company, Kind::Deal];

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/w/{ws}/records/{id}", get(open_record));
    for kind in KINDS {
        let base = format!("/w/{{ws}}/{}", kind.plural());
        r = r
            .route(
                &base,
                get(move |s, p, q| list(s, p, q, kind)).post(move |s, p, f| create(s, p, f, kind)),
            )
            .route(
                &format!("{base}/{{id}}"),
                get(move |s, p, id| record(s, p, id, kind))
                    .post(move |s, p, id, f| update(s, p, id, f, kind)),
            )
            .route(
                &format!("{base}/bulk"),
                post(move |s, p, f| super::bulk::review(s, p, f, kind)),
            )
            .route(
                &format!("{base}/bulk/apply"),
                post(move |s, c, p, f| super::bulk::apply(s, c, p, f, kind)),
            )
            .route(
                &format!("{base}/export.csv"),
                get(move |s, c, p, q| super::bulk::export(s, c, p, q, kind)),
            )
            .route(
                &format!("{base}/{{id}}/merge"),
                get(move |s, c, p, id, q| super::merge::show(s, c, p, id, q, kind))
                    .post(move |s, c, p, id, f| super::merge::merge(s, c, p, id, f, kind)),
            )
            .route(
                &format!("{base}/views"),
                post(move |s, c, p, f| super::views::save(s, c, p, f, kind)),
            )
            .route(
                &format!("{base}/views/{{id}}/delete"),
                post(move |s, c, p, id, f| super::views::delete(s, c, p, id, f, kind)),
            )
            .route(
                &format!("{base}/{{id}}/cell/{{field}}"),
                get(move |s, p, h, path| super::cells::edit(s, p, h, path, kind))
                    .post(move |s, p, h, path, f| super::cells::save(s, p, h, path, f, kind)),
            )
            .route(
                &format!("{base}/{{id}}/cell/{{field}}/show"),
                get(move |s, p, path| super::cells::show(s, p, path, kind)),
            )
            .route(
                &format!("{base}/{{id}}/files"),
                post(move |s, p, h, path, f| super::files::attach(s, p, h, path, kind, f)).layer(
                    axum::extract::DefaultBodyLimit::max(super::files::BODY_LIMIT),
                ),
            )
            .route(
                &format!("{base}/{{id}}/delete"),
                post(move |s, p, id, f| delete(s, p, id, f, kind)),
            )
            .route(
                &format!("{base}/{{id}}/timeline"),
                post(move |s, p, id, f| add_to_timeline(s, p, id, f, kind)),
            );
    }
    r.route("/w/{ws}/contacts/{id}/restriction", post(restrict))
        .route("/w/{ws}/contacts/{id}/erase", post(erase))
}

/// Proves the person at the keyboard again with the password typed in a rights form (mm18),
/// or answers the contact's page with why not.
async fn fresh(
    state: &AppState,
    client: &meshwork_app::actor::ClientInfo,
    page: &InWorkspace<perm::CrmBulk>,
    id: RecordId,
    form: &HashMap<String, String>,
) -> Result<Option<Response>, PageError> {
    let password = form.get("password").cloned().unwrap_or_default();
    let s = &page.session.0;
    match meshwork_app::rights::reauthenticate(
        state,
        client,
        s.id,
        &s.session_hash,
        Some(password),
        None,
    )
    .await
    {
        Ok(()) => Ok(None),
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let read = page.also::<perm::CrmRead>()?;
            let mut r = record_page(state, &read, Kind::Contact, id, |p| {
                p.rights_error = Some(super::accounts::field_of(&e).1)
            })
            .await?
            .into_response();
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(Some(r))
        }
    }
}

/// Restricts the contact's processing, or lifts it (mm17), after the password again.
async fn restrict(
    State(state): State<AppState>,
    crate::client::Client(client): crate::client::Client,
    page: InWorkspace<perm::CrmBulk>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    if let Some(refused) = fresh(&state, &client, &page, id, &form).await? {
        return Ok(refused);
    }
    let on = form.get("restricted").map(String::as_str) == Some("yes");
    let s = page.session.0.session_hash;
    meshwork_app::rights::restrict_contact(&state, &client, &page.member, Some(&s), id, on).await?;
    Ok(Redirect::to(&format!("/w/{}/contacts/{id}", page.ws())).into_response())
}

/// Erases the person everywhere (mm17), after the password again and a ticked confirmation.
async fn erase(
    State(state): State<AppState>,
    crate::client::Client(client): crate::client::Client,
    page: InWorkspace<perm::CrmBulk>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(PageError::new(
            ErrorCode::InvalidField,
            "tick the box that confirms the erasure",
        ));
    }
    if let Some(refused) = fresh(&state, &client, &page, id, &form).await? {
        return Ok(refused);
    }
    let s = page.session.0.session_hash;
    meshwork_app::rights::erase_contact(&state, &client, &page.member, Some(&s), id).await?;
    Ok(Redirect::to(&format!("/w/{}/contacts?erased=1", page.ws())).into_response())
}

pub(super) fn section(kind: Kind) -> Section {
    match kind {
        Kind::Contact => Section::Contacts,
        Kind::Company => Section::Companies,
        _ => Section::Deals,
    }
}

/// "contact" → "Contacts".
fn plural_label(kind: Kind) -> String {
    super::accounts::capitalized(kind.plural())
}

/// The id a creating form was given when shown (see `Crm::create_once`).
fn form_id(form: &HashMap<String, String>) -> Result<RecordId, PageError> {
    form.get("form_id")
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| {
            PageError::new(
                ErrorCode::InvalidField,
                "the form is out of date; reload the page",
            )
        })
}

pub(super) fn record_id(raw: &str) -> Result<RecordId, PageError> {
    raw.parse()
        .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such record"))
}

/// The workspace's members as choices for an owner.
async fn member_choices(
    state: &AppState,
    page: &InWorkspace<impl Sized>,
) -> Result<Vec<(String, String)>, PageError> {
    Ok(workspaces::members(state, &page.member)
        .await?
        .into_iter()
        .map(|m| (m.user_id.to_string(), m.name))
        .collect())
}

/// A pipeline's stages as choices, `pipeline-id/stage-id`, grouped by pipeline.
#[derive(Debug, Clone)]
pub struct StageGroup {
    pub pipeline: String,
    pub stages: Vec<(String, String)>,
}

pub async fn stage_groups(crm: &Crm<'_>) -> Result<Vec<StageGroup>, PageError> {
    let mut groups = Vec::new();
    for (row, doc) in crm.all(Kind::Pipeline).await? {
        let stages = doc
            .get("stages")
            .and_then(Value::as_array)
            .map(|stages| {
                stages
                    .iter()
                    .filter_map(|s| {
                        let id = s.get("id")?.as_str()?;
                        let name = s.get("name").and_then(Value::as_str).unwrap_or(id);
                        Some((format!("{}/{id}", row.id), name.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        groups.push(StageGroup {
            pipeline: fields::title(Kind::Pipeline, &doc),
            stages,
        });
    }
    Ok(groups)
}

// --- the list --------------------------------------------------------------------------------

/// One row of a list.
#[derive(Debug)]
pub struct Row {
    pub id: String,
    pub href: String,
    pub title: String,
    pub cells: Vec<super::cells::Cell>,
}

/// The columns of a type's list, after its name.
pub(super) fn columns_of(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Contact => &[
            ("Email", "emails"),
            ("Phone", "phones"),
            ("Title", "title"),
            ("Tags", "tags"),
        ],
        Kind::Company => &[
            ("Domain", "domains"),
            ("Industry", "industry"),
            ("Size", "size"),
            ("Tags", "tags"),
        ],
        _ => &[
            ("Amount", "amount"),
            ("Stage", "stage"),
            ("Close date", "close_date"),
            ("Tags", "tags"),
        ],
    }
}

pub(super) fn cell(
    kind: Kind,
    field: &str,
    doc: &Doc,
    stage_names: &HashMap<String, String>,
) -> String {
    match (kind, field) {
        (Kind::Deal, "amount") => doc
            .get("amount")
            .and_then(Value::as_str)
            .map(|a| fields::money(a, doc.get("currency").and_then(Value::as_str)))
            .unwrap_or_default(),
        (Kind::Deal, "stage") => {
            let key = format!(
                "{}/{}",
                fields::as_text(doc.get("pipeline")),
                fields::as_text(doc.get("stage"))
            );
            stage_names
                .get(&key)
                .cloned()
                .unwrap_or_else(|| fields::as_text(doc.get("stage")))
        }
        _ => fields::as_text(doc.get(field)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "records/list.html")]
pub struct ListPage {
    chrome: Chrome,
    ws: String,
    kind: &'static str,
    plural: &'static str,
    heading: String,
    headers: Vec<&'static str>,
    rows: Vec<Row>,
    total: u64,
    q: String,
    sort: String,
    sorts: Vec<(&'static str, &'static str)>,
    next: Option<String>,
    first: Option<String>,
    can_write: bool,
    can_bulk: bool,
    can_export: bool,
    /// Until when the download link works without the password again (ASVS 3.7.1); `None`
    /// shows the "confirm it is you" form in its place.
    fresh: Option<String>,
    confirm_export: super::step_up::Confirm,
    can_import: bool,
    /// The view's query string (no cursor), carried by the bulk form and the download link.
    view: String,
    notice: Option<String>,
    new_form: NewForm,
    error: Option<String>,
    views: Vec<super::views::ViewLink>,
    /// No saved view matches the list as shown.
    unsaved: bool,
    view_form: super::views::ViewForm,
}

/// The form that adds a record, with its one-time id (a double submit creates one record).
#[derive(Debug)]
pub struct NewForm {
    pub form_id: String,
    pub inputs: Vec<Input>,
    pub stages: Vec<StageGroup>,
    pub stage: String,
    pub general: Option<String>,
    pub open: bool,
}

/// The inputs a new record's form asks for.
fn new_inputs(kind: Kind, typed: &Doc) -> Vec<Input> {
    let wanted: &[&str] = match kind {
        Kind::Contact => &["first_name", "last_name", "emails", "phones", "title"],
        Kind::Company => &["name", "domains", "industry"],
        _ => &["name", "amount", "currency", "close_date"],
    };
    fields::inputs(kind, typed, &[])
        .into_iter()
        .filter(|i| wanted.contains(&i.name))
        .collect()
}

fn query_string(params: &HashMap<String, String>, cursor: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    let mut keys: Vec<_> = params.keys().filter(|k| *k != "cursor").collect();
    keys.sort();
    for k in keys {
        if !params[k].is_empty() {
            out.append_pair(k, &params[k]);
        }
    }
    if let Some(c) = cursor {
        out.append_pair("cursor", c);
    }
    out.finish()
}

/// The list again with the "save this view" form as it was posted, and why it was refused.
pub(super) async fn list_with_view_form(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    params: HashMap<String, String>,
    kind: Kind,
    view_form: super::views::ViewForm,
) -> Result<ListPage, PageError> {
    let mut p = list_page(state, page, params, kind, None).await?;
    p.view_form = view_form;
    Ok(p)
}

async fn list_page(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    mut params: HashMap<String, String>,
    kind: Kind,
    new_form: Option<NewForm>,
) -> Result<ListPage, PageError> {
    params.retain(|_, v| !v.trim().is_empty());
    let views = super::views::links(state, page, kind, &params).await?;
    let notice = params.remove("done").and_then(|d| {
        let (what, n) = d.split_once('-')?;
        let n: u64 = n.parse().ok()?;
        let noun = if n == 1 { kind.as_str() } else { kind.plural() };
        match what {
            "updated" => Some(format!("Changed {n} {noun}.")),
            "deleted" => Some(format!("Deleted {n} {noun}.")),
            _ => None,
        }
    });
    let crm = Crm::new(state, page.ws())?;
    let stages = if kind == Kind::Deal {
        stage_groups(&crm).await?
    } else {
        Vec::new()
    };
    let stage_names: HashMap<String, String> = stages
        .iter()
        .flat_map(|g| g.stages.iter().cloned())
        .collect();
    let (records, total, next, error) = match RecordList::from_params(kind, &params) {
        Ok(list) => {
            let p = crm.list(&page.member.actor, page.member.role, list).await?;
            (p.records, p.total, p.next_cursor, None)
        }
        Err(e) if e.code == ErrorCode::Internal => return Err(e.into()),
        Err(e) => (
            Vec::new(),
            0,
            None,
            Some(super::accounts::capitalized(&e.message)),
        ),
    };
    let ws = page.ws();
    let rows = records
        .iter()
        .map(|r| {
            let title = fields::title(kind, &r.fields);
            Row {
                id: r.id.to_string(),
                href: format!("/w/{ws}/{}/{}", kind.plural(), r.id),
                cells: columns_of(kind)
                    .iter()
                    .map(|(label, f)| super::cells::Cell {
                        ws: ws.to_string(),
                        plural: kind.plural(),
                        record: r.id.to_string(),
                        record_title: title.clone(),
                        field: f,
                        label,
                        value: cell(kind, f, &r.fields, &stage_names),
                    })
                    .collect(),
                title,
            }
        })
        .collect();
    let mut headers = vec!["Name"];
    headers.extend(columns_of(kind).iter().map(|(h, _)| *h));
    let mut sorts = vec![
        ("created", "Oldest first"),
        ("-created", "Newest first"),
        ("-updated", "Recently changed"),
        ("name", "Name, A to Z"),
        ("-name", "Name, Z to A"),
    ];
    if kind == Kind::Deal {
        sorts.push(("-amount", "Largest amount"));
    }
    let first = params
        .contains_key("cursor")
        .then(|| query_string(&params, None));
    let next = next.map(|c| query_string(&params, Some(&c)));
    let new_form = match new_form {
        Some(f) => f,
        None => NewForm {
            form_id: RecordId::new().to_string(),
            inputs: new_inputs(kind, &Doc::new()),
            stage: stages
                .first()
                .and_then(|g| g.stages.first())
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            stages: stages.clone(),
            general: None,
            open: false,
        },
    };
    Ok(ListPage {
        chrome: Chrome::workspace(state, page, section(kind)).await?,
        ws: ws.to_string(),
        kind: kind.as_str(),
        plural: kind.plural(),
        heading: plural_label(kind),
        headers,
        rows,
        total,
        q: params.get("q").cloned().unwrap_or_default(),
        sort: params.get("sort").cloned().unwrap_or_default(),
        sorts,
        next,
        first,
        can_write: page.member.may(Permission::CrmWrite),
        can_bulk: page.member.may(Permission::CrmBulk),
        can_export: page.member.may(Permission::CrmExport),
        fresh: super::step_up::fresh_until(state, &page.session.0).await?,
        confirm_export: {
            let mut c = super::step_up::Confirm::new(
                format!("/w/{ws}/settings/confirm"),
                "list-export",
                "Your password, to download this list",
                "Downloading a list needs your password again. It then holds for 5 minutes.",
            );
            c.back = Some(format!(
                "/w/{ws}/{}?{}",
                kind.plural(),
                query_string(&params, None)
            ));
            c
        },
        can_import: page.member.may(Permission::CrmImport),
        view: query_string(&params, None),
        notice,
        new_form,
        error,
        unsaved: !views.iter().any(|v| v.current),
        views,
        view_form: super::views::ViewForm::default(),
    })
}

async fn list(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmRead>,
    Query(params): Query<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    Ok(list_page(&state, &page, params, kind, None)
        .await?
        .into_response())
}

async fn create(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    Posted(_, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let ws = page.ws();
    let form_id = form_id(&form)?;
    let doc = fields::doc_from_form(kind, &form, true);
    let crm = Crm::new(&state, ws)?;
    match crm.create_once(kind, form_id, &doc).await {
        Ok((view, _)) => {
            Ok(Redirect::to(&format!("/w/{ws}/{}/{}", kind.plural(), view.id)).into_response())
        }
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let (by_field, general) = fields::errors_of(&e);
            let mut inputs = new_inputs(kind, &doc);
            let mut general = general;
            for i in &mut inputs {
                i.value = form.get(i.name).cloned().unwrap_or_default();
                i.error = by_field.get(i.name).cloned();
            }
            if general.is_none() && !by_field.keys().any(|k| inputs.iter().any(|i| i.name == k)) {
                general = by_field.values().next().cloned();
            }
            let read = page.also::<perm::CrmRead>()?;
            let crm = Crm::new(&state, ws)?;
            let new_form = NewForm {
                form_id: form_id.to_string(),
                inputs,
                stages: if kind == Kind::Deal {
                    stage_groups(&crm).await?
                } else {
                    Vec::new()
                },
                stage: form.get("pipeline_stage").cloned().unwrap_or_default(),
                general,
                open: true,
            };
            let mut r = list_page(&state, &read, HashMap::new(), kind, Some(new_form))
                .await?
                .into_response();
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}

// --- one record --------------------------------------------------------------------------------

/// A link to a related record.
#[derive(Debug)]
pub struct Related {
    pub label: String,
    pub items: Vec<(String, String)>,
    /// Where to see them all (a filtered list), when there may be more than shown.
    pub more: Option<String>,
}

/// A file of the record, as its Files section lists it.
#[derive(Debug)]
pub struct FileItem {
    pub href: String,
    pub name: String,
    pub size: String,
}

/// One entry of the timeline as shown.
#[derive(Debug)]
pub struct Entry {
    pub kind: &'static str,
    pub heading: String,
    pub when: String,
    pub iso: String,
    pub body: String,
    pub lines: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "records/record.html")]
pub struct RecordPage {
    chrome: Chrome,
    ws: String,
    kind: &'static str,
    plural: &'static str,
    list_label: String,
    title: String,
    id: String,
    version: i64,
    inputs: Vec<Input>,
    stages: Vec<StageGroup>,
    stage: String,
    facts: Vec<(String, String)>,
    related: Vec<Related>,
    files: Vec<FileItem>,
    files_more: Option<String>,
    /// Why the last upload was refused.
    pub file_error: Option<String>,
    file_form_id: String,
    max_file_mib: usize,
    timeline: Vec<Entry>,
    can_write: bool,
    notice: Option<String>,
    general: Option<String>,
    composer_form_id: String,
    /// A contact's page, for owners and admins: restrict or erase the person (mm17).
    can_rights: bool,
    restricted: bool,
    rights_error: Option<String>,
}

fn entry(item: &TimelineItem) -> Entry {
    let mut e = entry_of(item);
    e.iso = fields::iso(item.at);
    e
}

fn entry_of(item: &TimelineItem) -> Entry {
    let when = fields::when(item.at);
    let text = |d: &Doc, k: &str| fields::as_text(d.get(k));
    match (&item.record, item.kind.as_str()) {
        (Some(r), "note") => Entry {
            kind: "Note",
            heading: "Note".into(),
            when,
            iso: String::new(),
            body: text(&r.fields, "body"),
            lines: Vec::new(),
        },
        (Some(r), "activity") => {
            let d = &r.fields;
            let mut lines = Vec::new();
            if let Some(due) = d.get("due_at").and_then(Value::as_i64) {
                lines.push(format!("Due {}", fields::when(due)));
            }
            if d.get("done").and_then(Value::as_bool) == Some(true) {
                lines.push("Done".into());
            }
            Entry {
                kind: "Activity",
                heading: format!("{}: {}", fields::label(&text(d, "type")), text(d, "title")),
                when,
                iso: String::new(),
                body: text(d, "description"),
                lines,
            }
        }
        (Some(r), "communication") => {
            let d = &r.fields;
            let channel = match text(d, "channel").as_str() {
                "sms" => "Text message",
                "call" => "Call",
                _ => "Email",
            };
            let mut lines = Vec::new();
            if !text(d, "from").is_empty() || !text(d, "to").is_empty() {
                lines.push(format!("From {} to {}", text(d, "from"), text(d, "to")));
            }
            if !text(d, "direction").is_empty() {
                lines.push(fields::label(&text(d, "direction")));
            }
            Entry {
                kind: "Communication",
                heading: format!("{channel}: {}", fields::title(Kind::Communication, d)),
                when,
                iso: String::new(),
                body: text(d, "body"),
                lines,
            }
        }
        (Some(r), kind) => Entry {
            kind: "Record",
            heading: format!(
                "{}: {}",
                fields::label(kind),
                fields::title(kind.parse().unwrap_or(Kind::Note), &r.fields)
            ),
            when,
            iso: String::new(),
            body: String::new(),
            lines: Vec::new(),
        },
        (None, kind) => {
            let changes = item
                .details
                .as_ref()
                .and_then(|d| d.get("changes"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let lines = changes
                .iter()
                .map(|c| {
                    let field = c.get("field").and_then(Value::as_str).unwrap_or("");
                    let (before, after) = (
                        fields::as_text(c.get("before")),
                        fields::as_text(c.get("after")),
                    );
                    match (before.is_empty(), after.is_empty()) {
                        (true, _) => format!("{} set to “{after}”", fields::label(field)),
                        (_, true) => format!("{} removed (was “{before}”)", fields::label(field)),
                        _ => format!("{}: “{before}” → “{after}”", fields::label(field)),
                    }
                })
                .collect();
            Entry {
                kind: "Change",
                heading: if kind == "merge" {
                    "Merged with a duplicate".into()
                } else {
                    "Changed".into()
                },
                when,
                iso: String::new(),
                body: String::new(),
                lines,
            }
        }
    }
}

/// What a page needs of a record besides its form.
struct Loaded {
    view: RecordView,
    related: Vec<Related>,
    files: Vec<FileItem>,
    files_more: Option<String>,
    timeline: Vec<Entry>,
    stages: Vec<StageGroup>,
    members: Vec<(String, String)>,
}

async fn load(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    kind: Kind,
    id: RecordId,
) -> Result<Loaded, PageError> {
    let ws = page.ws();
    let crm = Crm::new(state, ws)?;
    let row = crm.record(kind, id).await?;
    let view = crm.view(&row)?;
    let mut related = Vec::new();
    // Links held by this record (a contact's companies, a deal's contacts and companies).
    for (field, target) in match kind {
        Kind::Contact => vec![("companies", Kind::Company)],
        Kind::Deal => vec![("contacts", Kind::Contact), ("companies", Kind::Company)],
        _ => vec![],
    } {
        let ids: Vec<RecordId> = view
            .fields
            .get(field)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        let rows = state.store.crm_records(ws, &ids).await?;
        let mut items = Vec::new();
        for r in &rows {
            items.push((
                format!("/w/{ws}/{}/{}", target.plural(), r.id),
                fields::title(target, &crm.open_doc(r)?),
            ));
        }
        related.push(Related {
            label: plural_label(target),
            items,
            more: None,
        });
    }
    // Records that link to this one (a company's contacts, the deals of a contact or company).
    for target in match kind {
        Kind::Company => vec![Kind::Contact, Kind::Deal],
        Kind::Contact => vec![Kind::Deal],
        _ => vec![],
    } {
        let list = RecordList {
            kind: target,
            filter: meshwork_crm::Filter::default(),
            text: None,
            sort: "-updated".parse().unwrap_or_default(),
            cursor: None,
            limit: 10,
            linked_to: Some(id),
        };
        let p = crm.list(&page.member.actor, page.member.role, list).await?;
        related.push(Related {
            label: plural_label(target),
            items: p
                .records
                .iter()
                .map(|r| {
                    (
                        format!("/w/{ws}/{}/{}", target.plural(), r.id),
                        fields::title(target, &r.fields),
                    )
                })
                .collect(),
            more: (p.total > 10).then(|| format!("{} in all", p.total)),
        });
    }
    // Its files, newest first.
    let list = RecordList {
        kind: Kind::File,
        filter: meshwork_crm::Filter::default(),
        text: None,
        sort: "-created".parse().unwrap_or_default(),
        cursor: None,
        limit: 20,
        linked_to: Some(id),
    };
    let p = crm.list(&page.member.actor, page.member.role, list).await?;
    let files = p
        .records
        .iter()
        .map(|r| FileItem {
            href: format!("/w/{ws}/files/{}", r.id),
            name: fields::as_text(r.fields.get("name")),
            size: r
                .fields
                .get("size")
                .and_then(Value::as_u64)
                .map(fields::bytes)
                .unwrap_or_default(),
        })
        .collect();
    let files_more = (p.total > 20).then(|| format!("{} files in all", p.total));
    let timeline = crm
        .timeline(kind, id, None, 100)
        .await?
        .iter()
        .map(entry)
        .collect();
    let stages = if kind == Kind::Deal {
        stage_groups(&crm).await?
    } else {
        Vec::new()
    };
    Ok(Loaded {
        view,
        related,
        files,
        files_more,
        timeline,
        stages,
        members: member_choices(state, page).await?,
    })
}

fn facts(view: &RecordView) -> Vec<(String, String)> {
    let mut out = vec![
        ("Created".to_string(), fields::when(view.created_at)),
        ("Last changed".to_string(), fields::when(view.updated_at)),
    ];
    if let Some(custom) = view.fields.get("custom").and_then(Value::as_object) {
        for (k, v) in custom {
            out.push((fields::label(k), fields::as_text(Some(v))));
        }
    }
    out
}

/// The record's page again after a refused upload, with the reason beside the upload form.
pub(super) async fn with_file_error(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    kind: Kind,
    id: RecordId,
    error: String,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut r = record_page(state, page, kind, id, |p| p.file_error = Some(error))
        .await?
        .into_response();
    *r.status_mut() = status;
    Ok(r)
}

async fn record_page(
    state: &AppState,
    page: &InWorkspace<perm::CrmRead>,
    kind: Kind,
    id: RecordId,
    fill: impl FnOnce(&mut RecordPage),
) -> Result<RecordPage, PageError> {
    let loaded = load(state, page, kind, id).await?;
    let v = &loaded.view;
    let stage = format!(
        "{}/{}",
        fields::as_text(v.fields.get("pipeline")),
        fields::as_text(v.fields.get("stage"))
    );
    let mut p = RecordPage {
        chrome: Chrome::workspace(state, page, section(kind)).await?,
        ws: page.ws().to_string(),
        kind: kind.as_str(),
        plural: kind.plural(),
        list_label: plural_label(kind),
        title: fields::title(kind, &v.fields),
        id: v.id.to_string(),
        version: v.version,
        inputs: fields::inputs(kind, &v.fields, &loaded.members),
        stages: loaded.stages,
        stage,
        facts: facts(v),
        related: loaded.related,
        files: loaded.files,
        files_more: loaded.files_more,
        file_error: None,
        file_form_id: RecordId::new().to_string(),
        max_file_mib: meshwork_app::crm::MAX_FILE_BYTES / 1024 / 1024,
        timeline: loaded.timeline,
        can_write: page.member.may(Permission::CrmWrite),
        notice: None,
        general: None,
        composer_form_id: RecordId::new().to_string(),
        can_rights: kind == Kind::Contact && page.member.may(Permission::CrmBulk),
        restricted: kind == Kind::Contact
            && state.store.crm_restricted(page.ws()).await?.contains(&id),
        rights_error: None,
    };
    fill(&mut p);
    Ok(p)
}

async fn record(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmRead>,
    Path((_, id)): Path<(String, String)>,
    kind: Kind,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    Ok(record_page(&state, &page, kind, id, |_| {})
        .await?
        .into_response())
}

async fn update(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    let ws = page.ws();
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let patch = fields::doc_from_form(kind, &form, false);
    let crm = Crm::new(&state, ws)?;
    let read = page.also::<perm::CrmRead>()?;
    match crm.update(kind, id, &patch, version).await {
        Ok(_) => Ok(Redirect::to(&format!("/w/{ws}/{}/{id}", kind.plural())).into_response()),
        Err(e) if e.code == ErrorCode::ConcurrentChange => {
            // Someone saved first: show what is saved now beside what was typed, overwrite
            // nothing, and let the person save again over the new version.
            let p = record_page(&state, &read, kind, id, |p| {
                p.notice = Some("Someone changed this record after you opened it. Your edits are kept below; where the saved value differs, it is shown under the field. Save again to apply your edits.".into());
                for i in &mut p.inputs {
                    if let Some(typed) = form.get(i.name) {
                        if typed.trim() != i.value.trim() {
                            i.saved_meanwhile = Some(if i.value.is_empty() { "(empty)".into() } else { i.value.clone() });
                            i.value = typed.clone();
                        }
                    }
                }
                if let Some(s) = form.get("pipeline_stage") {
                    p.stage = s.clone();
                }
            })
            .await?;
            let mut r = p.into_response();
            *r.status_mut() = StatusCode::CONFLICT;
            Ok(r)
        }
        Err(e) if e.code == ErrorCode::Internal || e.code == ErrorCode::RecordNotFound => {
            Err(e.into())
        }
        Err(e) => {
            let (by_field, general) = fields::errors_of(&e);
            let p = record_page(&state, &read, kind, id, |p| {
                for i in &mut p.inputs {
                    if let Some(typed) = form.get(i.name) {
                        i.value = typed.clone();
                    }
                    i.error = by_field.get(i.name).cloned();
                }
                if let Some(s) = form.get("pipeline_stage") {
                    p.stage = s.clone();
                }
                p.general = general.or_else(|| {
                    by_field
                        .get("pipeline")
                        .or_else(|| by_field.get("stage"))
                        .cloned()
                });
            })
            .await?;
            let mut r = p.into_response();
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    let ws = page.ws();
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(PageError::new(
            ErrorCode::InvalidField,
            "tick the box that confirms the deletion",
        ));
    }
    Crm::new(&state, ws)?.delete(kind, id).await?;
    Ok(Redirect::to(&format!("/w/{ws}/{}", kind.plural())).into_response())
}

/// The composer: a note, a task, meeting or call, or a logged email about this record.
async fn add_to_timeline(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
    kind: Kind,
) -> Result<Response, PageError> {
    let id = record_id(&id)?;
    let ws = page.ws();
    let crm = Crm::new(&state, ws)?;
    crm.record(kind, id).await?;
    let form_id = form_id(&form)?;
    let get = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or("");
    let mut doc = Doc::new();
    let entry_kind = match get("entry") {
        "note" => {
            doc.insert(
                "body".into(),
                fields::parse(meshwork_crm::FieldType::LongText, get("body")),
            );
            Kind::Note
        }
        "activity" => {
            doc.insert("type".into(), Value::String(get("type").into()));
            doc.insert("title".into(), Value::String(get("title").into()));
            if !get("due_at").is_empty() {
                // A `datetime-local` input has no zone: read as UTC until people set theirs.
                doc.insert(
                    "due_at".into(),
                    Value::String(format!("{}:00Z", get("due_at"))),
                );
            }
            Kind::Activity
        }
        "email" => {
            doc.insert("channel".into(), Value::String("email".into()));
            for k in ["direction", "subject", "body"] {
                if !get(k).is_empty() {
                    doc.insert(k.into(), Value::String(get(k).into()));
                }
            }
            Kind::Communication
        }
        other => {
            return Err(PageError::new(
                ErrorCode::InvalidField,
                format!("field `entry`: {other:?} is not something the timeline holds"),
            ))
        }
    };
    doc.retain(|_, v| !v.is_null() && v.as_str() != Some(""));
    doc.insert(
        "about".into(),
        Value::Array(vec![Value::String(id.to_string())]),
    );
    match crm.create_once(entry_kind, form_id, &doc).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/w/{ws}/{}/{id}#timeline", kind.plural())).into_response())
        }
        Err(e) if e.code == ErrorCode::Internal => Err(e.into()),
        Err(e) => {
            let (by_field, general) = fields::errors_of(&e);
            let message = general
                .or_else(|| {
                    by_field
                        .into_iter()
                        .next()
                        .map(|(f, m)| format!("{}: {m}", fields::label(&f)))
                })
                .unwrap_or_default();
            let read = page.also::<perm::CrmRead>()?;
            let mut r = record_page(&state, &read, kind, id, |p| {
                p.general = Some(message);
                p.composer_form_id = form_id.to_string();
            })
            .await?
            .into_response();
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}

/// A search hit for a note, activity, message or file opens the record it is about.
async fn open_record(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let ws: WorkspaceId = page.ws();
    let id = record_id(&id)?;
    let crm = Crm::new(&state, ws)?;
    let not_found = || PageError::new(ErrorCode::RecordNotFound, "there is no such record");
    let row = state
        .store
        .crm_records(ws, &[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(not_found)?;
    let kind: Kind = row.kind.parse().map_err(|_| not_found())?;
    if KINDS.contains(&kind) {
        return Ok(Redirect::to(&format!("/w/{ws}/{}/{id}", kind.plural())).into_response());
    }
    let doc = crm.open_doc(&row)?;
    for about in doc
        .get("about")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse::<RecordId>().ok())
    {
        if let Some(subject) = state
            .store
            .crm_records(ws, &[about])
            .await?
            .into_iter()
            .next()
        {
            if let Ok(k) = subject.kind.parse::<Kind>() {
                return Ok(
                    Redirect::to(&format!("/w/{ws}/{}/{about}#timeline", k.plural()))
                        .into_response(),
                );
            }
        }
    }
    Err(PageError(AppError::new(
        ErrorCode::RecordNotFound,
        format!(
            "this {} is about no contact, company or deal",
            kind.as_str().replace('_', " ")
        ),
    )))
}
