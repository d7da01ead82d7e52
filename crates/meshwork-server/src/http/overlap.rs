//! Partner overlap over HTTP: populations and match-only lists, partnerships (invite, accept,
//! revoke, what each side shares), runs, the account-mapping view and its export. See
//! `meshwork_app::overlap` for the scheme and `docs/overlap.md` for the product rules.

use crate::auth::{perm, Authorized};
use crate::client::{Client, ClientInfo};
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use meshwork_app::audit;
use meshwork_app::overlap::{
    self, check_name, populations, settings, OverlapRecord, Population, PopulationSpec, RunSummary,
    SideSettings, SideView,
};
use meshwork_app::state::{now_millis, AppState};
use meshwork_crm_io::{CsvRows, Layout, ReaderOptions, RecordKind};
use meshwork_domain::{ErrorCode, WorkspaceId};
use meshwork_overlap::{Identifier, MatchToken};
use meshwork_store::PartnershipRow;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use utoipa::{IntoParams, ToSchema};

/// The largest match-only file accepted, in bytes.
pub const MAX_MATCH_LIST_BYTES: usize = 128 * 1024 * 1024;
/// Rejected rows reported in full in the answer (all are counted).
const MAX_REPORTED_ERRORS: usize = 1000;

/// The workspace's populations: the built-in ones, saved filters and match-only lists.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/populations", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<Population>)))]
pub async fn list_populations(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
) -> ApiResult<Json<Vec<Population>>> {
    Ok(Json(populations(&state, auth.workspace).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PopulationInput {
    pub name: String,
    /// A search filter over the CRM, e.g. `type:company tag:enterprise` or `type:deal
    /// stage:won` (deals stand for their companies and contacts).
    pub query: String,
}

/// Save a population: the CRM records a search filter matches.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/populations", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = PopulationInput,
    responses((status = 201, body = Population), (status = 422, body = ErrorBody)))]
pub async fn create_population(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Json(input): Json<PopulationInput>,
) -> ApiResult<(StatusCode, Json<Population>)> {
    let name = check_name(&input.name)?;
    let query = input.query.trim().to_string();
    meshwork_search::query::parse(&query)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("field `query`: {e}")))?;
    if query.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "field `query`: a population needs a filter, e.g. `type:company tag:enterprise`",
        ));
    }
    let p = overlap::create_population(
        &state,
        auth.workspace,
        name,
        PopulationSpec::Filter { query },
        None,
    )
    .await?;
    audit::workspace_event(
        &state,
        &client,
        "overlap.population_created",
        &auth,
        None,
        json!({"population": p.id}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Delete a saved population or match-only list (built-in ones stay).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/populations/{population_id}", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("population_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_population(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<StatusCode> {
    if overlap::builtin_populations().iter().any(|p| p.id == id) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "population {id:?} is built in and cannot be deleted; share nothing of it instead"
            ),
        ));
    }
    if !state
        .store
        .population_delete(auth.workspace, &id, now_millis())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::PopulationNotFound,
            format!("no population {id:?} in this workspace"),
        ));
    }
    audit::workspace_event(
        &state,
        &client,
        "overlap.population_deleted",
        &auth,
        None,
        json!({"population": id}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MatchListParams {
    /// The list's name.
    pub name: String,
    /// What the rows are: `contacts` (emails, phones, company domains) or `companies`
    /// (domains). Default `contacts`.
    pub kind: Option<String>,
    /// The export's column layout: `hubspot` (default), `salesforce` or `pipedrive`.
    pub layout: Option<String>,
}

/// A rejected row of a match-only file.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchListRowError {
    pub row: u64,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchListReport {
    pub population: Population,
    /// Data rows read.
    pub rows: u64,
    /// Rows kept (with at least one identifier), after dropping rows identical to an earlier one.
    pub entries: u64,
    /// Rows whose identifiers all repeat an earlier row.
    pub duplicates: u64,
    /// Rows without any usable identifier.
    pub rejected: u64,
    /// The first 1,000 rejected rows: where, and why. Values are never echoed.
    pub errors: Vec<MatchListRowError>,
}

/// Load a match-only list: a CSV export from another CRM whose identifiers (emails, phones,
/// company domains) are normalised and kept only as keyed hashes, sealed; no raw value is stored
/// (pm02). The list becomes a population to compare with partners.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/match-lists", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), MatchListParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = MatchListReport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_match_list(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Query(p): Query<MatchListParams>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<MatchListReport>)> {
    let body = body.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "a match-only file is at most {} MiB",
                MAX_MATCH_LIST_BYTES / 1024 / 1024
            ),
        )
    })?;
    let name = check_name(&p.name)?;
    let kind = match p.kind.as_deref().unwrap_or("contacts") {
        "contacts" => RecordKind::Contact,
        "companies" => RecordKind::Company,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("query `kind`: {other:?} is not contacts or companies"),
            ))
        }
    };
    let layout: Layout = p
        .layout
        .as_deref()
        .unwrap_or("hubspot")
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, format!("query `layout`: {e}")))?;
    let identity = overlap::identity(&state);
    let parsed =
        tokio::task::spawn_blocking(move || read_match_list(&body, kind, &layout, &identity))
            .await
            .map_err(|e| ApiError::internal(format!("match list task: {e}")))??;
    let spec = PopulationSpec::MatchList {
        rows: parsed.rows,
        entries: parsed.entries.len() as u64,
    };
    let population =
        overlap::create_population(&state, auth.workspace, name, spec, Some(&parsed.entries))
            .await?;
    audit::workspace_event(
        &state,
        &client,
        "overlap.match_list_loaded",
        &auth,
        None,
        json!({"population": population.id, "rows": parsed.rows, "entries": parsed.entries.len(), "rejected": parsed.rejected}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(MatchListReport {
            population,
            rows: parsed.rows,
            entries: parsed.entries.len() as u64,
            duplicates: parsed.duplicates,
            rejected: parsed.rejected,
            errors: parsed.errors,
        }),
    ))
}

struct ParsedList {
    rows: u64,
    entries: Vec<Vec<MatchToken>>,
    duplicates: u64,
    rejected: u64,
    errors: Vec<MatchListRowError>,
}

/// Reads a match-only file into rows of pseudonyms. Raw values live only in this function's
/// buffers; what leaves it are keyed hashes.
fn read_match_list(
    body: &[u8],
    kind: RecordKind,
    layout: &Layout,
    identity: &meshwork_overlap::Tokenizer,
) -> ApiResult<ParsedList> {
    let rows = CsvRows::open(body, kind, layout, &ReaderOptions::default())
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, format!("the match-only file: {e}")))?;
    let mut out = ParsedList {
        rows: 0,
        entries: Vec::new(),
        duplicates: 0,
        rejected: 0,
        errors: Vec::new(),
    };
    let mut seen: BTreeSet<Vec<MatchToken>> = BTreeSet::new();
    let reject =
        |out: &mut ParsedList, row: u64, line: u64, column: Option<String>, reason: String| {
            out.rejected += 1;
            if out.errors.len() < MAX_REPORTED_ERRORS {
                out.errors.push(MatchListRowError {
                    row,
                    line,
                    column,
                    reason,
                });
            }
        };
    for item in rows {
        let row = match item {
            Ok(row) => row,
            Err(e) => {
                out.rows += 1;
                reject(&mut out, e.row, e.line, e.column.clone(), e.reason.clone());
                if e.fatal {
                    break;
                }
                continue;
            }
        };
        out.rows += 1;
        let mut ids: Vec<Identifier> = Vec::new();
        let mut first_error: Option<(String, String)> = None;
        for f in &row.fields {
            let id = match f.target.as_str() {
                "email" => Identifier::email(&f.value),
                "phone" => Identifier::phone(&f.value, "US"),
                "domain" | "company_domain" => Identifier::company_domain(&f.value),
                _ => continue,
            };
            match id {
                Ok(id) => ids.push(id),
                Err(e) => {
                    first_error.get_or_insert((f.column.clone(), reason_without_value(&e)));
                }
            }
        }
        if ids.is_empty() {
            let (column, reason) = first_error.unwrap_or((
                String::new(),
                "the row has no email, phone or domain".to_string(),
            ));
            let column = (!column.is_empty()).then_some(column);
            reject(&mut out, row.row, row.line, column, reason);
            continue;
        }
        if out.entries.len() >= overlap::MAX_POPULATION_SIZE {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!(
                    "the match-only file has more than {} usable rows (at row {}); split it",
                    overlap::MAX_POPULATION_SIZE,
                    row.row
                ),
            ));
        }
        ids.sort();
        ids.dedup();
        ids.truncate(255);
        let pseudonyms: Vec<MatchToken> = ids.iter().map(|i| identity.token(i)).collect();
        if seen.insert(pseudonyms.clone()) {
            out.entries.push(pseudonyms);
        } else {
            out.duplicates += 1;
        }
    }
    Ok(out)
}

/// Why a value did not normalise, in words that never repeat the value.
fn reason_without_value(e: &meshwork_overlap::NormalizeError) -> String {
    use meshwork_overlap::NormalizeError as E;
    match e {
        E::UnknownSuffix(_) => "the domain does not end in a known public suffix".into(),
        E::NotRegistrable(_) => "the domain is a public suffix, not a company's domain".into(),
        E::FreeMail(_) => "a free-mail domain names no company".into(),
        E::InvalidDomain(_) => "the domain is not a valid host name".into(),
        E::InvalidPhone(_) => "not a valid phone number".into(),
        E::InvalidLocalPart(_) => "the part before the @ is not valid".into(),
        other => other.to_string(),
    }
}

/// A partnership as one side sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnershipView {
    pub id: String,
    /// `pending`, `active`, `declined` or `revoked`.
    pub state: String,
    /// Whether this workspace sent the invitation.
    pub invited_by_us: bool,
    pub partner_workspace_id: uuid::Uuid,
    pub partner_name: String,
    /// What this workspace shares.
    pub ours: SideSettings,
    pub created_at: i64,
    pub updated_at: i64,
}

fn partner_of(p: &PartnershipRow, ws: WorkspaceId) -> WorkspaceId {
    if p.inviter == ws {
        p.invitee
    } else {
        p.inviter
    }
}

async fn partnership_view(
    state: &AppState,
    p: &PartnershipRow,
    ws: WorkspaceId,
) -> ApiResult<PartnershipView> {
    let (a, b) = settings(p)?;
    let partner = partner_of(p, ws);
    // The invited side sees who invites it; the inviting side learns the name of the workspace
    // it invited only once that workspace accepts.
    let name_visible = p.invitee == ws || p.state == "active";
    let partner_name = match state.store.workspace(partner).await? {
        Some(w) if name_visible && state.workspace_readable(partner) => {
            state.open_workspace(partner, &partner.to_string(), "name", &w.name_sealed)?
        }
        _ => String::new(),
    };
    Ok(PartnershipView {
        id: p.id.clone(),
        state: p.state.clone(),
        invited_by_us: p.inviter == ws,
        partner_workspace_id: partner.as_uuid(),
        partner_name,
        ours: if p.inviter == ws { a } else { b },
        created_at: p.created_at,
        updated_at: p.updated_at,
    })
}

/// The partnership `id` if this workspace is one of its sides.
async fn find(state: &AppState, ws: WorkspaceId, id: &str) -> ApiResult<PartnershipRow> {
    match state.store.partnership(id).await? {
        Some(p) if p.inviter == ws || p.invitee == ws => Ok(p),
        _ => Err(ApiError::new(
            ErrorCode::PartnershipNotFound,
            format!("no partnership {id:?} involving this workspace"),
        )),
    }
}

/// Partnerships of this workspace, pending ones included.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/partnerships", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<PartnershipView>)))]
pub async fn list_partnerships(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
) -> ApiResult<Json<Vec<PartnershipView>>> {
    let mut out = Vec::new();
    for p in state.store.partnerships_of(auth.workspace).await? {
        out.push(partnership_view(&state, &p, auth.workspace).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    /// The partner's workspace on this server (they give you its id). Nothing is shared until
    /// they accept.
    pub partner_workspace_id: uuid::Uuid,
}

/// Invite another workspace of this server to partner. Nothing is shared until it accepts, and
/// then only what each side chooses.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path)),
    request_body = InviteInput,
    responses((status = 201, body = PartnershipView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Json(input): Json<InviteInput>,
) -> ApiResult<(StatusCode, Json<PartnershipView>)> {
    let ws = auth.workspace;
    let partner = WorkspaceId(input.partner_workspace_id);
    if partner == ws {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "field `partner_workspace_id`: a workspace cannot partner with itself",
        ));
    }
    if state.store.workspace(partner).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::WorkspaceNotFound,
            "field `partner_workspace_id`: no workspace with this id on this server",
        ));
    }
    let open =
        state.store.partnerships_of(ws).await?.into_iter().any(|p| {
            partner_of(&p, ws) == partner && (p.state == "pending" || p.state == "active")
        });
    if open {
        return Err(ApiError::new(
            ErrorCode::ConcurrentChange,
            "a pending or active partnership with this workspace exists; revoke it first",
        ));
    }
    let now = now_millis();
    let empty = serde_json::to_string(&SideSettings::default()).map_err(ApiError::internal)?;
    let row = PartnershipRow {
        id: uuid::Uuid::now_v7().to_string(),
        inviter: ws,
        invitee: partner,
        state: "pending".into(),
        inviter_settings: empty.clone(),
        invitee_settings: empty,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state.store.partnership_create(&row).await?;
    audit::workspace_event(
        &state,
        &client,
        "overlap.partnership_invited",
        &auth,
        None,
        json!({"partnership": row.id, "partner_workspace": partner.to_string()}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(partnership_view(&state, &row, ws).await?),
    ))
}

/// Applies a change to a partnership row, guarded by its version.
async fn update(
    state: &AppState,
    mut p: PartnershipRow,
    change: impl FnOnce(&mut PartnershipRow) -> ApiResult<()>,
    clear_results: bool,
) -> ApiResult<PartnershipRow> {
    let expected = p.version;
    change(&mut p)?;
    p.version = expected + 1;
    p.updated_at = now_millis();
    if !state
        .store
        .partnership_update(&p, expected, clear_results)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::ConcurrentChange,
            "the partnership changed meanwhile; reload it and retry",
        ));
    }
    Ok(p)
}

/// Accept an invitation (only the invited workspace can).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/accept", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = PartnershipView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<PartnershipView>> {
    let ws = auth.workspace;
    let p = find(&state, ws, &id).await?;
    if p.invitee != ws {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "only the invited workspace can accept a partnership",
        ));
    }
    if p.state != "pending" {
        return Err(ApiError::new(
            ErrorCode::PartnershipNotActive,
            format!("the partnership is {}, not pending", p.state),
        ));
    }
    let p = update(
        &state,
        p,
        |p| {
            p.state = "active".into();
            Ok(())
        },
        true,
    )
    .await?;
    audit::workspace_event(
        &state,
        &client,
        "overlap.partnership_accepted",
        &auth,
        None,
        json!({"partnership": p.id}),
    )
    .await?;
    Ok(Json(partnership_view(&state, &p, ws).await?))
}

/// End a partnership (either side, at any time) or decline or withdraw an invitation. Sharing
/// stops at once: both sides' stored overlap is deleted in the same transaction.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/revoke", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = PartnershipView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<PartnershipView>> {
    let ws = auth.workspace;
    // Revocation wins over any concurrent change: on a version conflict it reloads and retries.
    let mut attempts = 0;
    let (p, next) = loop {
        let p = find(&state, ws, &id).await?;
        let next = match p.state.as_str() {
            "active" => "revoked",
            "pending" => "declined",
            other => {
                return Err(ApiError::new(
                    ErrorCode::PartnershipNotActive,
                    format!("the partnership is already {other}"),
                ))
            }
        };
        let change = |p: &mut PartnershipRow| {
            p.state = next.into();
            Ok(())
        };
        match update(&state, p, change, true).await {
            Ok(p) => break (p, next),
            Err(e) if e.code == ErrorCode::ConcurrentChange && attempts < 10 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    audit::workspace_event(
        &state,
        &client,
        "overlap.partnership_revoked",
        &auth,
        None,
        json!({"partnership": p.id, "state": next}),
    )
    .await?;
    Ok(Json(partnership_view(&state, &p, ws).await?))
}

/// Checks share settings: the threshold's range, and that every population named exists (and,
/// for a partner on another server, is a saved filter: match-only lists cannot be matched there).
pub(crate) async fn check_sharing(
    state: &AppState,
    ws: WorkspaceId,
    input: &SideSettings,
    remote: bool,
) -> ApiResult<()> {
    if !(1..=1000).contains(&input.threshold) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "field `threshold`: must be 1 to 1000, got {}",
                input.threshold
            ),
        ));
    }
    let known = populations(state, ws).await?;
    for pid in input.shares.keys() {
        match known.iter().find(|p| &p.id == pid) {
            None => {
                return Err(ApiError::new(
                    ErrorCode::PopulationNotFound,
                    format!("field `shares.{pid}`: no population with this id in this workspace"),
                ))
            }
            Some(p) if remote && matches!(p.spec, PopulationSpec::MatchList { .. }) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidField,
                    format!("field `shares.{pid}`: a match-only list keeps only pseudonyms under this server's key, which another server cannot match; share it with partners on this server only"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Choose what the partner learns about each of this workspace's populations, and the
/// threshold under which counts read "fewer than N". Replaces the previous choice whole.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/sharing", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    request_body = SideSettings,
    responses((status = 200, body = PartnershipView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_sharing(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Json(input): Json<SideSettings>,
) -> ApiResult<Json<PartnershipView>> {
    let ws = auth.workspace;
    check_sharing(&state, ws, &input, false).await?;
    let p = find(&state, ws, &id).await?;
    if p.state == "revoked" || p.state == "declined" {
        return Err(overlap::not_active().into());
    }
    let text = serde_json::to_string(&input).map_err(ApiError::internal)?;
    let p = update(
        &state,
        p,
        |p| {
            if p.inviter == ws {
                p.inviter_settings = text;
            } else {
                p.invitee_settings = text;
            }
            Ok(())
        },
        true,
    )
    .await?;
    let shares: Value = serde_json::to_value(&input.shares).map_err(ApiError::internal)?;
    audit::workspace_event(
        &state,
        &client,
        "overlap.sharing_changed",
        &auth,
        None,
        json!({"partnership": p.id, "shares": shares, "threshold": input.threshold}),
    )
    .await?;
    Ok(Json(partnership_view(&state, &p, ws).await?))
}

/// Compute the overlap now, for both sides (it is also recomputed whenever a view finds either
/// side's data or the sharing changed).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/runs", tag = "partners",
    security(("session" = ["partners.manage"]), ("api_key" = ["partners.manage"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = RunSummary), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersManage>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<RunSummary>> {
    let p = find(&state, auth.workspace, &id).await?;
    let summary = overlap::run(&state, &p, auth.workspace).await?;
    audit_run(&state, &client, &auth, &p, &summary).await?;
    Ok(Json(summary))
}

async fn audit_run<P>(
    state: &AppState,
    client: &ClientInfo,
    auth: &Authorized<P>,
    p: &PartnershipRow,
    summary: &RunSummary,
) -> ApiResult<()> {
    // Both sides see every run in their audit log; where the request came from is the
    // requester's business only.
    for ws in [p.inviter, p.invitee] {
        let own = ws == auth.workspace;
        audit::record(
            state,
            own.then_some(client),
            audit::Event {
                kind: "overlap.run",
                workspace: Some(ws),
                actor: own.then(|| auth.actor.user_id()),
                subject: None,
                details: json!({"partnership": p.id, "requested_by": auth.workspace.to_string(), "stored": summary.stored}),
            },
        )
        .await?;
    }
    Ok(())
}

/// The account-mapping view: your populations × the partner's shared ones with counts ("fewer
/// than N" under the partner's threshold), and your own records that the partner also has, where
/// the partner shares indicators. Nothing about the partner's other records is in it.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/overlap", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path)),
    responses((status = 200, body = SideView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn view(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
) -> ApiResult<Json<SideView>> {
    let p = find(&state, auth.workspace, &id).await?;
    Ok(Json(current_view(&state, &client, &auth, &p).await?))
}

/// The caller's view, recomputed (and the run audited) when stale.
async fn current_view<P>(
    state: &AppState,
    client: &ClientInfo,
    auth: &Authorized<P>,
    p: &PartnershipRow,
) -> ApiResult<SideView> {
    let (v, ran) = overlap::view(state, p, auth.workspace).await?;
    if let Some(summary) = ran {
        audit_run(state, client, auth, p, &summary).await?;
    }
    v.ok_or_else(|| {
        ApiError::new(
            ErrorCode::ConcurrentChange,
            "the partnership changed while its overlap was computed; retry",
        )
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportParams {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
}

pub(crate) fn export_format(q: &ExportParams) -> ApiResult<&str> {
    let format = q.format.as_deref().unwrap_or("csv");
    if format != "csv" && format != "json" {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("query `format`: {format:?} is not csv or json"),
        ));
    }
    Ok(format)
}

/// Export your overlapping records (the list of the view) as CSV or JSON. Audited.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/partnerships/{partnership_id}/overlap/export", tag = "partners",
    security(("session" = ["partners.read"]), ("api_key" = ["partners.read"])),
    params(("workspace_id" = uuid::Uuid, Path), ("partnership_id" = String, Path), ExportParams),
    responses((status = 200, description = "CSV (`id,type,name,populations,partner_populations`) or a JSON array"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    auth: Authorized<perm::PartnersRead>,
    Client(client): Client,
    Path((_, id)): Path<(uuid::Uuid, String)>,
    Query(q): Query<ExportParams>,
) -> ApiResult<Response> {
    let format = export_format(&q)?;
    let p = find(&state, auth.workspace, &id).await?;
    let v = current_view(&state, &client, &auth, &p).await?;
    audit::workspace_event(
        &state,
        &client,
        "overlap.exported",
        &auth,
        None,
        json!({"partnership": p.id, "format": format, "records": v.records.len()}),
    )
    .await?;
    render_export(&state, auth.workspace, &v, format).await
}

/// The list of a view as CSV (`id,type,name,populations,partner_populations`) or JSON.
pub(crate) async fn render_export(
    state: &AppState,
    ws: WorkspaceId,
    v: &SideView,
    format: &str,
) -> ApiResult<Response> {
    let names = record_names(state, ws, &v.records).await?;
    let pop_name = |id: &str, list: &[overlap::SharedPopulation]| {
        list.iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    if format == "json" {
        let rows: Vec<Value> = v
            .records
            .iter()
            .zip(&names)
            .map(|(r, name)| {
                json!({
                    "id": r.id, "type": r.kind, "name": name,
                    "populations": r.populations.iter().map(|x| pop_name(x, &v.populations)).collect::<Vec<_>>(),
                    "partner_populations": r.partner_populations.iter().map(|x| pop_name(x, &v.partner_populations)).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Value::Array(rows).to_string(),
        )
            .into_response());
    }
    let mut out = String::from("id,type,name,populations,partner_populations\r\n");
    for (r, name) in v.records.iter().zip(&names) {
        let ours: Vec<String> = r
            .populations
            .iter()
            .map(|x| pop_name(x, &v.populations))
            .collect();
        let theirs: Vec<String> = r
            .partner_populations
            .iter()
            .map(|x| pop_name(x, &v.partner_populations))
            .collect();
        let cells = [
            r.id.clone(),
            r.kind.clone(),
            name.clone(),
            ours.join("; "),
            theirs.join("; "),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"overlap.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

/// A CSV cell, quoted, with formula triggers escaped.
fn csv_cell(s: &str) -> String {
    let s = meshwork_crm_io::escape_formula(s);
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Display names of your own records (a company's name, a contact's name or first email).
async fn record_names(
    state: &AppState,
    ws: WorkspaceId,
    records: &[OverlapRecord],
) -> ApiResult<Vec<String>> {
    let ids: Vec<meshwork_domain::RecordId> =
        records.iter().filter_map(|r| r.id.parse().ok()).collect();
    let crm = meshwork_app::crm::Crm::new(state, ws)?;
    let mut names = std::collections::HashMap::new();
    for chunk in ids.chunks(2000) {
        for row in state.store.crm_records(ws, chunk).await? {
            let doc = crm.open_doc(&row)?;
            let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let name = match row.kind.as_str() {
                "company" => text("name"),
                _ => {
                    let full = format!("{} {}", text("first_name"), text("last_name"));
                    full.trim().to_string()
                }
            };
            names.insert(row.id.to_string(), name);
        }
    }
    Ok(records
        .iter()
        .map(|r| names.get(&r.id).cloned().unwrap_or_default())
        .collect())
}
