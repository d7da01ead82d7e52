//! Partners in the browser (PartnerMesh, same server): one's partnerships with the invitation
//! to send or accept, one's populations, and a partnership's page with what this side shares of
//! each population (nothing, counts, or indicators), the account-mapping matrix of counts and
//! the overlapping records of one's own side. Every change goes through the audited
//! `meshwork_app::partnerships` services the API uses: `partners.read` to look, and
//! `partners.manage` to invite, accept, share, compute or end.

use super::extract::{InWorkspace, Posted};
use super::fields;
use super::{Chrome, PageError, Section};
use crate::auth::perm;
use crate::client::Client;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use meshwork_app::overlap::{self, ShareLevel, SideSettings};
use meshwork_app::{partnerships, AppState};
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, Permission, RecordId, WorkspaceId};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/w/{ws}/partners", get(partners))
        .route("/w/{ws}/partners/invite", post(invite))
        .route("/w/{ws}/partners/populations", post(create_population))
        .route(
            "/w/{ws}/partners/match-lists",
            post(load_match_list).layer(axum::extract::DefaultBodyLimit::max(
                partnerships::MAX_MATCH_LIST_BYTES + 64 * 1024,
            )),
        )
        .route("/w/{ws}/partners/{id}", get(partnership))
        .route("/w/{ws}/partners/{id}/accept", post(accept))
        .route("/w/{ws}/partners/{id}/revoke", post(revoke))
        .route("/w/{ws}/partners/{id}/end", get(end))
        .route("/w/{ws}/partners/remote/invite", post(remote_invite))
        .route("/w/{ws}/partners/remote/join", post(remote_join))
        .route("/w/{ws}/partners/remote/{id}", get(remote_partnership))
        .route("/w/{ws}/partners/remote/{id}/sharing", post(remote_sharing))
        .route("/w/{ws}/partners/remote/{id}/run", post(remote_run))
        .route("/w/{ws}/partners/remote/{id}/revoke", post(remote_revoke))
        .route("/w/{ws}/partners/remote/{id}/end", get(remote_end))
        .route("/w/{ws}/partners/{id}/sharing", post(set_sharing))
        .route("/w/{ws}/partners/{id}/run", post(run))
}

#[derive(Debug)]
pub struct PartnershipLine {
    pub id: String,
    pub partner: String,
    pub state: String,
    pub invited_by_us: bool,
    pub can_accept: bool,
    pub live: bool,
}

#[derive(Debug)]
pub struct PopulationLine {
    pub name: String,
    pub what: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "partners/list.html")]
pub struct PartnersPage {
    chrome: Chrome,
    ws: String,
    partnerships: Vec<PartnershipLine>,
    populations: Vec<PopulationLine>,
    can_manage: bool,
    error: Option<String>,
    typed_partner: String,
    typed_name: String,
    typed_query: String,
    /// What loading a match-only list did, or why it was refused.
    list_report: Option<ListReport>,
    list_error: Option<String>,
    list_max_mib: usize,
    remote: Vec<RemoteLine>,
    /// A new invitation for a partner on another server, shown this once, and until when it
    /// works.
    invitation: Option<(String, String)>,
    join_error: Option<String>,
    typed_invitation: String,
}

/// A partnership with a workspace on another server, as the list shows it.
#[derive(Debug)]
pub struct RemoteLine {
    pub id: String,
    pub partner: String,
    pub state: String,
}

/// What loading a match-only list did: counts, and where rows were rejected (never their
/// values).
#[derive(Debug)]
pub struct ListReport {
    pub name: String,
    pub rows: u64,
    pub entries: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub errors: Vec<String>,
}

fn remote_label(r: &meshwork_app::remote::RemotePartnershipView) -> String {
    match (&r.partner_url, r.partner_name.is_empty()) {
        (_, false) => r.partner_name.clone(),
        (Some(url), true) => url.clone(),
        (None, true) => "An invitation not accepted yet".into(),
    }
}

fn partner_label(v: &partnerships::PartnershipView) -> String {
    if v.partner_name.is_empty() {
        format!("Workspace {}", v.partner_workspace_id)
    } else {
        v.partner_name.clone()
    }
}

async fn partners_page(
    state: &AppState,
    page: &InWorkspace<perm::PartnersRead>,
    fill: impl FnOnce(&mut PartnersPage),
) -> Result<PartnersPage, PageError> {
    let ws = page.ws();
    let mut p = PartnersPage {
        chrome: Chrome::workspace(state, page, Section::Partners).await?,
        ws: ws.to_string(),
        partnerships: partnerships::list(state, ws)
            .await?
            .into_iter()
            .map(|v| PartnershipLine {
                partner: partner_label(&v),
                can_accept: !v.invited_by_us && v.state == "pending",
                live: matches!(v.state.as_str(), "pending" | "active"),
                id: v.id,
                state: v.state,
                invited_by_us: v.invited_by_us,
            })
            .collect(),
        populations: overlap::populations(state, ws)
            .await?
            .into_iter()
            .map(|p| PopulationLine {
                what: match p.spec {
                    overlap::PopulationSpec::Filter { query } => {
                        format!("records matching {query}")
                    }
                    overlap::PopulationSpec::MatchList { rows, .. } => {
                        format!("a match-only list of {rows} rows")
                    }
                },
                name: p.name,
            })
            .collect(),
        can_manage: page.member.may(Permission::PartnersManage),
        error: None,
        typed_partner: String::new(),
        typed_name: String::new(),
        typed_query: String::new(),
        list_report: None,
        list_error: None,
        list_max_mib: partnerships::MAX_MATCH_LIST_BYTES / 1024 / 1024,
        remote: partnerships::remote_list(state, ws)
            .await?
            .into_iter()
            .map(|r| RemoteLine {
                partner: remote_label(&r),
                id: r.id,
                state: r.state,
            })
            .collect(),
        invitation: None,
        join_error: None,
        typed_invitation: String::new(),
    };
    fill(&mut p);
    Ok(p)
}

async fn partners(
    State(state): State<AppState>,
    page: InWorkspace<perm::PartnersRead>,
) -> Result<Response, PageError> {
    Ok(partners_page(&state, &page, |_| {}).await?.into_response())
}

fn refused<T: IntoResponse>(page: T) -> Response {
    let mut r = page.into_response();
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

/// A refusal a page shows beside its form (anything but an internal failure).
fn shown(e: meshwork_app::AppError) -> Result<String, PageError> {
    if e.code == ErrorCode::Internal {
        return Err(e.into());
    }
    Ok(super::accounts::field_of(&e).1)
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    partner_workspace_id: String,
}

async fn invite(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Posted(_, form): Posted<InviteForm>,
) -> Result<Response, PageError> {
    let typed = form.partner_workspace_id.trim().to_string();
    let result = match typed.parse::<WorkspaceId>() {
        Ok(partner) => partnerships::invite(&state, &client, &page.member, partner)
            .await
            .map(|_| ()),
        Err(_) => Err(meshwork_app::AppError::new(
            ErrorCode::InvalidField,
            "field `partner_workspace_id`: paste the id your partner's workspace shows on its Partners page",
        )),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/w/{}/partners", page.ws())).into_response()),
        Err(e) => {
            let message = shown(e)?;
            let read = page.also::<perm::PartnersRead>()?;
            Ok(refused(
                partners_page(&state, &read, |p| {
                    p.error = Some(message);
                    p.typed_partner = typed;
                })
                .await?,
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PopulationForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
}

async fn create_population(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Posted(_, form): Posted<PopulationForm>,
) -> Result<Response, PageError> {
    match partnerships::create_population(&state, &client, &page.member, &form.name, &form.query)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/w/{}/partners", page.ws())).into_response()),
        Err(e) => {
            let message = shown(e)?;
            let read = page.also::<perm::PartnersRead>()?;
            Ok(refused(
                partners_page(&state, &read, |p| {
                    p.error = Some(message);
                    p.typed_name = form.name;
                    p.typed_query = form.query;
                })
                .await?,
            ))
        }
    }
}

/// Loads a match-only list from an uploaded CSV (multipart: the CSRF token first, then its
/// name, kind and layout, then the file): its identifiers are kept only as keyed hashes.
async fn load_match_list(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    headers: axum::http::HeaderMap,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    let read = page.also::<perm::PartnersRead>()?;
    let refuse = |message: String| async {
        Ok::<_, PageError>(refused(
            partners_page(&state, &read, |p| p.list_error = Some(message)).await?,
        ))
    };
    let uploaded = match super::extract::read_upload(
        &state,
        &page.session.0.session_hash,
        &headers,
        form,
        "file",
        partnerships::MAX_MATCH_LIST_BYTES,
        |_| {
            format!(
                "The file is larger than {} MiB, the most a match-only list may be",
                partnerships::MAX_MATCH_LIST_BYTES / 1024 / 1024
            )
        },
    )
    .await?
    {
        Ok(u) => u,
        Err(r) => return refuse(r.message).await,
    };
    let Some(body) = uploaded.file.map(|f| f.bytes).filter(|b| !b.is_empty()) else {
        return refuse("Choose a CSV file to load (it was empty or missing)".into()).await;
    };
    let field = |k: &str| {
        uploaded
            .fields
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let name = field("name").unwrap_or("").to_string();
    match partnerships::load_match_list(
        &state,
        &client,
        &page.member,
        &name,
        field("kind"),
        field("layout"),
        body,
    )
    .await
    {
        Ok(r) => {
            let report = ListReport {
                name: r.population.name.clone(),
                rows: r.rows,
                entries: r.entries,
                duplicates: r.duplicates,
                rejected: r.rejected,
                errors: r
                    .errors
                    .iter()
                    .take(20)
                    .map(|e| {
                        format!(
                            "Row {} (line {}){}: {}",
                            e.row,
                            e.line,
                            e.column
                                .as_deref()
                                .map(|c| format!(", column {c}"))
                                .unwrap_or_default(),
                            e.reason
                        )
                    })
                    .collect(),
            };
            Ok(
                partners_page(&state, &read, |p| p.list_report = Some(report))
                    .await?
                    .into_response(),
            )
        }
        Err(e) => {
            let message = shown(e)?;
            refuse(message).await
        }
    }
}

// --- one partnership -----------------------------------------------------------------------------

#[derive(Debug)]
pub struct ShareLine {
    pub id: String,
    pub name: String,
    pub level: &'static str,
}

#[derive(Debug)]
pub struct OverlapLine {
    pub href: String,
    pub title: String,
    pub kind: String,
    pub populations: String,
    pub partner_populations: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "partners/partnership.html")]
pub struct PartnershipPage {
    chrome: Chrome,
    ws: String,
    partner: String,
    state: String,
    active: bool,
    can_manage: bool,
    shares: Vec<ShareLine>,
    threshold: u32,
    /// Column headings: the partner's populations shared with us.
    columns: Vec<String>,
    /// Rows: our population, then a cell per column.
    matrix: Vec<(String, Vec<String>)>,
    computed: Option<String>,
    records: Vec<OverlapLine>,
    more_records: usize,
    error: Option<String>,
    notice: Option<&'static str>,
    /// Where its forms post: the same-server partnership's or the remote one's address.
    base: String,
    /// The partner's server, for a partnership with another server.
    partner_url: Option<String>,
}

const LEVELS: [(ShareLevel, &str); 3] = [
    (ShareLevel::None, "none"),
    (ShareLevel::Counts, "counts"),
    (ShareLevel::Indicators, "indicators"),
];

fn level_name(l: ShareLevel) -> &'static str {
    LEVELS
        .iter()
        .find(|(x, _)| *x == l)
        .map(|(_, n)| *n)
        .unwrap_or("none")
}

/// Overlapping records shown on the page (all are in the export).
const SHOWN_RECORDS: usize = 200;

/// The matrix and the overlapping records of one side's view, as the page shows them.
#[derive(Debug, Default)]
pub struct SideLines {
    columns: Vec<String>,
    matrix: Vec<(String, Vec<String>)>,
    records: Vec<OverlapLine>,
    computed: Option<String>,
    more: usize,
}

async fn side_lines(
    state: &AppState,
    ws: WorkspaceId,
    side: &meshwork_app::overlap::SideView,
) -> Result<SideLines, PageError> {
    let (mut matrix, mut records) = (Vec::new(), Vec::new());
    let computed = Some(fields::when(side.computed_at));
    let ours: HashMap<&str, &str> = side
        .populations
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    let theirs: HashMap<&str, &str> = side
        .partner_populations
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    let columns: Vec<String> = side
        .partner_populations
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut cells: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for c in &side.matrix {
        let text = match (c.count, c.fewer_than) {
            (Some(n), _) => n.to_string(),
            (None, Some(n)) => format!("fewer than {n}"),
            (None, None) => "—".into(),
        };
        cells.insert((c.population.as_str(), c.partner_population.as_str()), text);
    }
    for p in &side.populations {
        matrix.push((
            p.name.clone(),
            side.partner_populations
                .iter()
                .map(|q| {
                    cells
                        .get(&(p.id.as_str(), q.id.as_str()))
                        .cloned()
                        .unwrap_or_else(|| "0".into())
                })
                .collect(),
        ));
    }
    let more = side.records.len().saturating_sub(SHOWN_RECORDS);
    let shown = &side.records[..side.records.len().min(SHOWN_RECORDS)];
    let ids: Vec<RecordId> = shown.iter().filter_map(|r| r.id.parse().ok()).collect();
    let crm = meshwork_app::crm::Crm::new(state, ws)?;
    let mut titles = HashMap::new();
    for r in state.store.crm_records(ws, &ids).await? {
        if let Ok(kind) = r.kind.parse::<Kind>() {
            titles.insert(
                r.id.to_string(),
                (kind, fields::title(kind, &crm.open_doc(&r)?)),
            );
        }
    }
    let names = |ids: &[String], from: &HashMap<&str, &str>| {
        ids.iter()
            .map(|i| {
                from.get(i.as_str())
                    .copied()
                    .unwrap_or(i.as_str())
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for r in shown {
        // A list row of a match-only list is no record: it has no page.
        let (href, title) = match titles.get(&r.id) {
            Some((kind, title)) => (format!("/w/{ws}/{}/{}", kind.plural(), r.id), title.clone()),
            None => (String::new(), format!("List row {}", r.id)),
        };
        records.push(OverlapLine {
            href,
            title,
            kind: r.kind.replace('_', " "),
            populations: names(&r.populations, &ours),
            partner_populations: names(&r.partner_populations, &theirs),
        });
    }

    Ok(SideLines {
        columns,
        matrix,
        records,
        computed,
        more,
    })
}

/// What this side shares of each of its populations.
fn share_lines(populations: &[overlap::Population], ours: &SideSettings) -> Vec<ShareLine> {
    populations
        .iter()
        .map(|p| ShareLine {
            level: level_name(ours.shares.get(&p.id).copied().unwrap_or(ShareLevel::None)),
            id: p.id.clone(),
            name: p.name.clone(),
        })
        .collect()
}

async fn partnership_page(
    state: &AppState,
    client: &meshwork_app::actor::ClientInfo,
    page: &InWorkspace<perm::PartnersRead>,
    id: &str,
    fill: impl FnOnce(&mut PartnershipPage),
) -> Result<PartnershipPage, PageError> {
    let ws = page.ws();
    let row = partnerships::find(state, ws, id).await?;
    let view = partnerships::partnership_view(state, &row, ws).await?;
    let active = view.state == "active";
    let populations = overlap::populations(state, ws).await?;
    let shares = share_lines(&populations, &view.ours);
    let lines = if active {
        let side = partnerships::current_view(state, client, &page.member, &row).await?;
        side_lines(state, ws, &side).await?
    } else {
        SideLines::default()
    };
    let mut p = PartnershipPage {
        chrome: Chrome::workspace(state, page, Section::Partners).await?,
        ws: ws.to_string(),
        partner: partner_label(&view),
        state: view.state.clone(),
        active,
        can_manage: page.member.may(Permission::PartnersManage),
        shares,
        threshold: view.ours.threshold,
        columns: lines.columns,
        matrix: lines.matrix,
        computed: lines.computed,
        records: lines.records,
        more_records: lines.more,
        error: None,
        notice: None,
        base: format!("/w/{ws}/partners/{id}"),
        partner_url: None,
    };
    fill(&mut p);
    Ok(p)
}

async fn partnership(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    Ok(partnership_page(&state, &client, &page, &id, |_| {})
        .await?
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

async fn accept(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, Nothing {}): Posted<Nothing>,
) -> Result<Response, PageError> {
    partnerships::accept(&state, &client, &page.member, &id).await?;
    Ok(Redirect::to(&format!("/w/{}/partners/{id}", page.ws())).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "partners/end.html")]
pub struct EndPage {
    chrome: Chrome,
    partner: String,
    /// The partnership's address (same server or another).
    base: String,
}

/// Ending an active partnership, asked once more: both sides stop seeing the overlap.
async fn end(
    State(state): State<AppState>,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let ws = page.ws();
    let row = partnerships::find(&state, ws, &id).await?;
    let view = partnerships::partnership_view(&state, &row, ws).await?;
    Ok(EndPage {
        chrome: Chrome::workspace(&state, &page, Section::Partners).await?,
        base: format!("/w/{ws}/partners/{id}"),
        partner: view.partner_name,
    }
    .into_response())
}

/// Declines or withdraws an invitation, or ends an active partnership (that only with the
/// confirmation its page asks for).
async fn revoke(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let row = partnerships::find(&state, page.ws(), &id).await?;
    if row.state == "active" && form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(PageError::new(
            ErrorCode::ConfirmationRequired,
            "tick the box that confirms ending the partnership",
        ));
    }
    partnerships::revoke(&state, &client, &page.member, &id).await?;
    Ok(Redirect::to(&format!("/w/{}/partners", page.ws())).into_response())
}

/// What the sharing form asks: a level per population and the threshold.
fn parsed_sharing(form: &HashMap<String, String>) -> Result<SideSettings, meshwork_app::AppError> {
    let mut shares = BTreeMap::new();
    for (k, v) in form {
        if let Some(population) = k.strip_prefix("share.") {
            let level = LEVELS
                .iter()
                .find(|(_, n)| n == v)
                .map(|(l, _)| *l)
                .ok_or_else(|| {
                    meshwork_app::AppError::new(
                        ErrorCode::InvalidField,
                        format!("field `{k}`: {v:?} is not none, counts or indicators"),
                    )
                })?;
            if level != ShareLevel::None {
                shares.insert(population.to_string(), level);
            }
        }
    }
    let threshold = form
        .get("threshold")
        .and_then(|t| t.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            meshwork_app::AppError::new(
                ErrorCode::InvalidField,
                "field `threshold`: a whole number from 1 to 1000",
            )
        })?;
    Ok(SideSettings { shares, threshold })
}

async fn set_sharing(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let result = match parsed_sharing(&form) {
        Ok(input) => partnerships::set_sharing(&state, &client, &page.member, &id, &input)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    let read = page.also::<perm::PartnersRead>()?;
    match result {
        Ok(()) => Ok(partnership_page(&state, &client, &read, &id, |p| {
            p.notice = Some("Saved: your partner sees this from its next look.")
        })
        .await?
        .into_response()),
        Err(e) => {
            let message = shown(e)?;
            Ok(refused(
                partnership_page(&state, &client, &read, &id, |p| p.error = Some(message)).await?,
            ))
        }
    }
}

async fn run(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, Nothing {}): Posted<Nothing>,
) -> Result<Response, PageError> {
    partnerships::run(&state, &client, &page.member, &id).await?;
    Ok(Redirect::to(&format!("/w/{}/partners/{id}", page.ws())).into_response())
}

// --- partnerships with other servers -------------------------------------------------------------

/// Creates an invitation for a partner on another Meshwork server and shows it this once.
async fn remote_invite(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Posted(_, _form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let read = page.also::<perm::PartnersRead>()?;
    match partnerships::remote_invite(&state, &client, &page.member).await {
        Ok(invited) => {
            let until = invited
                .partnership
                .invitation_expires_at
                .map(fields::when)
                .unwrap_or_default();
            Ok(partners_page(&state, &read, |p| {
                p.invitation = Some((invited.invitation.clone(), until))
            })
            .await?
            .into_response())
        }
        Err(e) => {
            let message = shown(e)?;
            Ok(refused(
                partners_page(&state, &read, |p| p.join_error = Some(message)).await?,
            ))
        }
    }
}

/// Accepts an invitation from a workspace on another server.
async fn remote_join(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let invitation = form.get("invitation").cloned().unwrap_or_default();
    match partnerships::remote_join(&state, &client, &page.member, invitation.trim()).await {
        Ok(view) => Ok(
            Redirect::to(&format!("/w/{}/partners/remote/{}", page.ws(), view.id)).into_response(),
        ),
        Err(e) => {
            let message = shown(e)?;
            let read = page.also::<perm::PartnersRead>()?;
            Ok(refused(
                partners_page(&state, &read, |p| {
                    p.join_error = Some(message);
                    p.typed_invitation = invitation;
                })
                .await?,
            ))
        }
    }
}

async fn remote_page(
    state: &AppState,
    page: &InWorkspace<perm::PartnersRead>,
    id: &str,
    fill: impl FnOnce(&mut PartnershipPage),
) -> Result<PartnershipPage, PageError> {
    let ws = page.ws();
    let overlap = partnerships::remote_view(state, ws, id).await?;
    let r = &overlap.partnership;
    let populations = overlap::populations(state, ws).await?;
    let shares = share_lines(&populations, &r.ours);
    let lines = match &overlap.view {
        Some(side) => side_lines(state, ws, side).await?,
        None => SideLines::default(),
    };
    let running = overlap
        .run
        .as_ref()
        .is_some_and(|r| matches!(r.state, meshwork_app::remote::RunState::Running));
    let run_error = overlap.run.as_ref().and_then(|r| r.error.clone());
    let mut p = PartnershipPage {
        chrome: Chrome::workspace(state, page, Section::Partners).await?,
        ws: ws.to_string(),
        partner: remote_label(r),
        state: r.state.clone(),
        active: r.state == "active",
        can_manage: page.member.may(Permission::PartnersManage),
        shares,
        threshold: r.ours.threshold,
        columns: lines.columns,
        matrix: lines.matrix,
        computed: lines.computed,
        records: lines.records,
        more_records: lines.more,
        error: run_error.map(|e| format!("The last run failed: {e}")),
        notice: running
            .then_some("A run with your partner's server is under way; reload to see it."),
        base: format!("/w/{ws}/partners/remote/{id}"),
        partner_url: r.partner_url.clone(),
    };
    fill(&mut p);
    Ok(p)
}

async fn remote_partnership(
    State(state): State<AppState>,
    page: InWorkspace<perm::PartnersRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    Ok(remote_page(&state, &page, &id, |_| {})
        .await?
        .into_response())
}

async fn remote_sharing(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let result = match parsed_sharing(&form) {
        Ok(input) => partnerships::remote_set_sharing(&state, &client, &page.member, &id, &input)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    let read = page.also::<perm::PartnersRead>()?;
    match result {
        Ok(()) => Ok(remote_page(&state, &read, &id, |p| {
            p.notice = Some("Saved: your partner's server was told; its next run uses it.")
        })
        .await?
        .into_response()),
        Err(e) => {
            let message = shown(e)?;
            Ok(refused(
                remote_page(&state, &read, &id, |p| p.error = Some(message)).await?,
            ))
        }
    }
}

/// Starts a run with the partner's server; the page shows it under way.
async fn remote_run(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, _form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    partnerships::remote_run(&state, &client, &page.member, &id, false).await?;
    Ok(Redirect::to(&format!("/w/{}/partners/remote/{id}", page.ws())).into_response())
}

/// Ending a partnership with another server, asked once more.
async fn remote_end(
    State(state): State<AppState>,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let ws = page.ws();
    let overlap = partnerships::remote_view(&state, ws, &id).await?;
    Ok(EndPage {
        chrome: Chrome::workspace(&state, &page, Section::Partners).await?,
        partner: remote_label(&overlap.partnership),
        base: format!("/w/{ws}/partners/remote/{id}"),
    }
    .into_response())
}

/// Withdraws an invitation, or ends an active partnership (with the confirmation its page
/// asks for); the partner's server is told.
async fn remote_revoke(
    State(state): State<AppState>,
    Client(client): Client,
    page: InWorkspace<perm::PartnersManage>,
    Path((_, id)): Path<(String, String)>,
    Posted(_, form): Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let current = partnerships::remote_view(&state, page.ws(), &id).await?;
    if current.partnership.state == "active"
        && form.get("confirm").map(String::as_str) != Some("yes")
    {
        return Err(PageError::new(
            ErrorCode::ConfirmationRequired,
            "tick the box that confirms ending the partnership",
        ));
    }
    partnerships::remote_revoke(&state, &client, &page.member, &id).await?;
    Ok(Redirect::to(&format!("/w/{}/partners", page.ws())).into_response())
}
