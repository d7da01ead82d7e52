//! Partnerships and what they compare, as services every door shares: populations and
//! match-only lists, same-server partnerships (invite, accept, revoke, what each side shares,
//! runs, the view and its export), and what the same-server and two-server kinds have in common
//! (the states a partnership goes through, the checks of share settings, the export of a view).
//! The overlap computation itself is [`crate::overlap`] (one server) and [`crate::remote`]
//! (two servers).

use crate::actor::{ClientInfo, InWorkspace};
use crate::audit;
use crate::error::{AppError, AppResult};
use crate::overlap::{
    self, check_name, populations, settings, OverlapRecord, Population, PopulationSpec, RunSummary,
    SideSettings, SideView,
};
use crate::remote::{self, RemotePartnershipView, RunProgress};
use crate::state::{now_millis, AppState};
use meshwork_crm_io::{CsvRows, Layout, ReaderOptions, RecordKind};
use meshwork_domain::{ErrorCode, WorkspaceId};
use meshwork_overlap::{Identifier, MatchToken};
use meshwork_store::PartnershipRow;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The largest match-only file accepted, in bytes.
pub const MAX_MATCH_LIST_BYTES: usize = 128 * 1024 * 1024;
/// Rejected rows reported in full in the answer (all are counted).
const MAX_REPORTED_ERRORS: usize = 1000;

/// Where a partnership is in its life, same-server or two-server alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnershipState {
    /// Invited, not yet accepted.
    Pending,
    Active,
    /// Declined or withdrawn before it was accepted.
    Declined,
    /// Ended by either side after it was active.
    Revoked,
}

impl PartnershipState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Declined => "declined",
            Self::Revoked => "revoked",
        }
    }

    /// The state a stored row is in (an unknown word reads as ended: nothing is shared).
    pub fn of(stored: &str) -> Self {
        match stored {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "declined" => Self::Declined,
            _ => Self::Revoked,
        }
    }

    /// Pending or active: there is, or may soon be, something shared.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }

    /// What ending it leads to: an active partnership is revoked, a pending one declined;
    /// `None` when it already ended.
    pub fn ended(self) -> Option<Self> {
        match self {
            Self::Active => Some(Self::Revoked),
            Self::Pending => Some(Self::Declined),
            Self::Declined | Self::Revoked => None,
        }
    }
}

/// Reading and setting the state of a stored partnership, of either kind.
pub trait Lifecycle {
    fn lifecycle(&self) -> PartnershipState;
    fn set_lifecycle(&mut self, state: PartnershipState);
}

impl Lifecycle for PartnershipRow {
    fn lifecycle(&self) -> PartnershipState {
        PartnershipState::of(&self.state)
    }
    fn set_lifecycle(&mut self, state: PartnershipState) {
        self.state = state.as_str().into();
    }
}

impl Lifecycle for meshwork_store::RemotePartnershipRow {
    fn lifecycle(&self) -> PartnershipState {
        PartnershipState::of(&self.state)
    }
    fn set_lifecycle(&mut self, state: PartnershipState) {
        self.state = state.as_str().into();
    }
}

/// What ending a partnership stored in state `stored` leads to (an active one is revoked, a
/// pending one declined), or the refusal when it already ended.
pub fn end_state(stored: &str) -> AppResult<PartnershipState> {
    PartnershipState::of(stored).ended().ok_or_else(|| {
        AppError::new(
            ErrorCode::PartnershipNotActive,
            format!("the partnership is already {stored}"),
        )
    })
}

// --- populations and match-only lists ------------------------------------------------------------

/// Saves a population: the CRM records a search filter matches. Audited.
pub async fn create_population(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    name: &str,
    query: &str,
) -> AppResult<Population> {
    let name = check_name(name)?;
    let query = query.trim().to_string();
    meshwork_search::query::parse(&query)
        .map_err(|e| AppError::new(ErrorCode::InvalidQuery, format!("field `query`: {e}")))?;
    if query.is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "field `query`: a population needs a filter, e.g. `type:company tag:enterprise`",
        ));
    }
    let p = overlap::create_population(
        state,
        auth.workspace(),
        name,
        PopulationSpec::Filter { query },
        None,
    )
    .await?;
    audit::workspace_event(
        state,
        client,
        "overlap.population_created",
        auth,
        None,
        json!({"population": p.id}),
    )
    .await?;
    Ok(p)
}

/// Deletes a saved population or match-only list (built-in ones stay). Audited.
pub async fn delete_population(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<()> {
    if overlap::builtin_populations().iter().any(|p| p.id == id) {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!(
                "population {id:?} is built in and cannot be deleted; share nothing of it instead"
            ),
        ));
    }
    if !state
        .store
        .population_delete(auth.workspace(), id, now_millis())
        .await?
    {
        return Err(AppError::new(
            ErrorCode::PopulationNotFound,
            format!("no population {id:?} in this workspace"),
        ));
    }
    audit::workspace_event(
        state,
        client,
        "overlap.population_deleted",
        auth,
        None,
        json!({"population": id}),
    )
    .await
}

/// A rejected row of a match-only file.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchListRowError {
    pub row: u64,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Loads a match-only list: a CSV export from another CRM (`kind` `contacts` or `companies`,
/// `layout` `hubspot`, `salesforce` or `pipedrive`) whose identifiers are normalised and kept
/// only as keyed hashes, sealed; no raw value is stored (pm02). Audited.
pub async fn load_match_list(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    name: &str,
    kind: Option<&str>,
    layout: Option<&str>,
    body: Vec<u8>,
) -> AppResult<MatchListReport> {
    let name = check_name(name)?;
    let kind = match kind.unwrap_or("contacts") {
        "contacts" => RecordKind::Contact,
        "companies" => RecordKind::Company,
        other => {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("query `kind`: {other:?} is not contacts or companies"),
            ))
        }
    };
    let layout: Layout = layout
        .unwrap_or("hubspot")
        .parse()
        .map_err(|e| AppError::new(ErrorCode::InvalidField, format!("query `layout`: {e}")))?;
    let identity = overlap::identity(state);
    let parsed =
        tokio::task::spawn_blocking(move || read_match_list(&body, kind, &layout, &identity))
            .await
            .map_err(|e| AppError::internal(format!("match list task: {e}")))??;
    let spec = PopulationSpec::MatchList {
        rows: parsed.rows,
        entries: parsed.entries.len() as u64,
    };
    let population =
        overlap::create_population(state, auth.workspace(), name, spec, Some(&parsed.entries))
            .await?;
    audit::workspace_event(
        state,
        client,
        "overlap.match_list_loaded",
        auth,
        None,
        json!({"population": population.id, "rows": parsed.rows, "entries": parsed.entries.len(), "rejected": parsed.rejected}),
    )
    .await?;
    Ok(MatchListReport {
        population,
        rows: parsed.rows,
        entries: parsed.entries.len() as u64,
        duplicates: parsed.duplicates,
        rejected: parsed.rejected,
        errors: parsed.errors,
    })
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
) -> AppResult<ParsedList> {
    let rows = CsvRows::open(body, kind, layout, &ReaderOptions::default())
        .map_err(|e| AppError::new(ErrorCode::InvalidField, format!("the match-only file: {e}")))?;
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
            return Err(AppError::new(
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

// --- same-server partnerships ----------------------------------------------------------------

/// A partnership as one side sees it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

pub fn partner_of(p: &PartnershipRow, ws: WorkspaceId) -> WorkspaceId {
    if p.inviter == ws {
        p.invitee
    } else {
        p.inviter
    }
}

pub async fn partnership_view(
    state: &AppState,
    p: &PartnershipRow,
    ws: WorkspaceId,
) -> AppResult<PartnershipView> {
    let (a, b) = settings(p)?;
    let partner = partner_of(p, ws);
    // The invited side sees who invites it; the inviting side learns the name of the workspace
    // it invited only once that workspace accepts.
    let name_visible = p.invitee == ws || p.lifecycle() == PartnershipState::Active;
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
pub async fn find(state: &AppState, ws: WorkspaceId, id: &str) -> AppResult<PartnershipRow> {
    match state.store.partnership(id).await? {
        Some(p) if p.inviter == ws || p.invitee == ws => Ok(p),
        _ => Err(AppError::new(
            ErrorCode::PartnershipNotFound,
            format!("no partnership {id:?} involving this workspace"),
        )),
    }
}

/// Partnerships of a workspace, pending ones included.
pub async fn list(state: &AppState, ws: WorkspaceId) -> AppResult<Vec<PartnershipView>> {
    let mut out = Vec::new();
    for p in state.store.partnerships_of(ws).await? {
        out.push(partnership_view(state, &p, ws).await?);
    }
    Ok(out)
}

/// Invites another workspace of this server. Nothing is shared until it accepts, and then only
/// what each side chooses. Audited.
pub async fn invite(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    partner: WorkspaceId,
) -> AppResult<PartnershipView> {
    let ws = auth.workspace();
    if partner == ws {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "field `partner_workspace_id`: a workspace cannot partner with itself",
        ));
    }
    if state.store.workspace(partner).await?.is_none() {
        return Err(AppError::new(
            ErrorCode::WorkspaceNotFound,
            "field `partner_workspace_id`: no workspace with this id on this server",
        ));
    }
    let open = state.store.partnerships_of(ws).await?.into_iter().any(|p| {
        partner_of(&p, ws) == partner
            && (p.lifecycle() == PartnershipState::Pending
                || p.lifecycle() == PartnershipState::Active)
    });
    if open {
        return Err(AppError::new(
            ErrorCode::ConcurrentChange,
            "a pending or active partnership with this workspace exists; revoke it first",
        ));
    }
    let now = now_millis();
    let empty = serde_json::to_string(&SideSettings::default()).map_err(AppError::internal)?;
    let row = PartnershipRow {
        id: uuid::Uuid::now_v7().to_string(),
        inviter: ws,
        invitee: partner,
        state: PartnershipState::Pending.as_str().into(),
        inviter_settings: empty.clone(),
        invitee_settings: empty,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state.store.partnership_create(&row).await?;
    audit::workspace_event(
        state,
        client,
        "overlap.partnership_invited",
        auth,
        None,
        json!({"partnership": row.id, "partner_workspace": partner.to_string()}),
    )
    .await?;
    partnership_view(state, &row, ws).await
}

/// Applies a change to a partnership row, guarded by its version.
pub async fn update(
    state: &AppState,
    mut p: PartnershipRow,
    change: impl FnOnce(&mut PartnershipRow) -> AppResult<()>,
    clear_results: bool,
) -> AppResult<PartnershipRow> {
    let expected = p.version;
    change(&mut p)?;
    p.version = expected + 1;
    p.updated_at = now_millis();
    if !state
        .store
        .partnership_update(&p, expected, clear_results)
        .await?
    {
        return Err(AppError::new(
            ErrorCode::ConcurrentChange,
            "the partnership changed meanwhile; reload it and retry",
        ));
    }
    Ok(p)
}

/// Accepts an invitation (only the invited workspace can). Audited.
pub async fn accept(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<PartnershipView> {
    let ws = auth.workspace();
    let p = find(state, ws, id).await?;
    if p.invitee != ws {
        return Err(AppError::new(
            ErrorCode::PermissionDenied,
            "only the invited workspace can accept a partnership",
        ));
    }
    if p.lifecycle() != PartnershipState::Pending {
        return Err(AppError::new(
            ErrorCode::PartnershipNotActive,
            format!("the partnership is {}, not pending", p.state),
        ));
    }
    let p = update(
        state,
        p,
        |p| {
            p.set_lifecycle(PartnershipState::Active);
            Ok(())
        },
        true,
    )
    .await?;
    audit::workspace_event(
        state,
        client,
        "overlap.partnership_accepted",
        auth,
        None,
        json!({"partnership": p.id}),
    )
    .await?;
    partnership_view(state, &p, ws).await
}

/// Ends a partnership (either side, at any time) or declines or withdraws an invitation.
/// Sharing stops at once: both sides' stored overlap is deleted in the same transaction.
/// Audited.
pub async fn revoke(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<PartnershipView> {
    let ws = auth.workspace();
    // Revocation wins over any concurrent change: on a version conflict it reloads and retries.
    let mut attempts = 0;
    let (p, next) = loop {
        let p = find(state, ws, id).await?;
        let next = end_state(&p.state)?;
        let change = |p: &mut PartnershipRow| {
            p.set_lifecycle(next);
            Ok(())
        };
        match update(state, p, change, true).await {
            Ok(p) => break (p, next),
            Err(e) if e.code == ErrorCode::ConcurrentChange && attempts < 10 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    audit::workspace_event(
        state,
        client,
        "overlap.partnership_revoked",
        auth,
        None,
        json!({"partnership": p.id, "state": next.as_str()}),
    )
    .await?;
    partnership_view(state, &p, ws).await
}

/// Checks share settings: the threshold's range, and that every population named exists (and,
/// for a partner on another server, is a saved filter: match-only lists cannot be matched there).
pub async fn check_sharing(
    state: &AppState,
    ws: WorkspaceId,
    input: &SideSettings,
    remote: bool,
) -> AppResult<()> {
    if !(1..=1000).contains(&input.threshold) {
        return Err(AppError::new(
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
                return Err(AppError::new(
                    ErrorCode::PopulationNotFound,
                    format!("field `shares.{pid}`: no population with this id in this workspace"),
                ))
            }
            Some(p) if remote && matches!(p.spec, PopulationSpec::MatchList { .. }) => {
                return Err(AppError::new(
                    ErrorCode::InvalidField,
                    format!("field `shares.{pid}`: a match-only list keeps only pseudonyms under this server's key, which another server cannot match; share it with partners on this server only"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Sets what the partner learns about each of this workspace's populations, and the threshold
/// under which counts read "fewer than N"; replaces the previous choice whole. Audited.
pub async fn set_sharing(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    input: &SideSettings,
) -> AppResult<PartnershipView> {
    let ws = auth.workspace();
    check_sharing(state, ws, input, false).await?;
    let p = find(state, ws, id).await?;
    if p.lifecycle() == PartnershipState::Revoked || p.lifecycle() == PartnershipState::Declined {
        return Err(overlap::not_active());
    }
    let text = serde_json::to_string(input).map_err(AppError::internal)?;
    let p = update(
        state,
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
    let shares: Value = serde_json::to_value(&input.shares).map_err(AppError::internal)?;
    audit::workspace_event(
        state,
        client,
        "overlap.sharing_changed",
        auth,
        None,
        json!({"partnership": p.id, "shares": shares, "threshold": input.threshold}),
    )
    .await?;
    partnership_view(state, &p, ws).await
}

/// Computes the overlap now, for both sides. Audited on both.
pub async fn run(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<RunSummary> {
    let p = find(state, auth.workspace(), id).await?;
    let summary = overlap::run(state, &p, auth.workspace()).await?;
    audit_run(state, client, auth, &p, &summary).await?;
    Ok(summary)
}

async fn audit_run(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    p: &PartnershipRow,
    summary: &RunSummary,
) -> AppResult<()> {
    // Both sides see every run in their audit log; where the request came from is the
    // requester's business only.
    for ws in [p.inviter, p.invitee] {
        let own = ws == auth.workspace();
        audit::record(
            state,
            own.then_some(client),
            audit::Event {
                kind: "overlap.run",
                workspace: Some(ws),
                actor: own.then(|| auth.actor().user_id()),
                subject: None,
                details: json!({"partnership": p.id, "requested_by": auth.workspace().to_string(), "stored": summary.stored}),
            },
        )
        .await?;
    }
    Ok(())
}

/// The caller's account-mapping view of a partnership, recomputed when stale.
pub async fn view(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<SideView> {
    let p = find(state, auth.workspace(), id).await?;
    current_view(state, client, auth, &p).await
}

/// The caller's view, recomputed (and the run audited) when stale.
pub async fn current_view(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    p: &PartnershipRow,
) -> AppResult<SideView> {
    let (v, ran) = overlap::view(state, p, auth.workspace()).await?;
    if let Some(summary) = ran {
        audit_run(state, client, auth, p, &summary).await?;
    }
    v.ok_or_else(|| {
        AppError::new(
            ErrorCode::ConcurrentChange,
            "the partnership changed while its overlap was computed; retry",
        )
    })
}

/// Exports the caller's overlapping records of a partnership on this server. Audited.
pub async fn export(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    format: ExportFormat,
) -> AppResult<Vec<u8>> {
    let p = find(state, auth.workspace(), id).await?;
    let v = current_view(state, client, auth, &p).await?;
    audit::workspace_event(
        state,
        client,
        "overlap.exported",
        auth,
        None,
        json!({"partnership": p.id, "format": format.as_str(), "records": v.records.len()}),
    )
    .await?;
    render_export(state, auth.workspace(), &v, format).await
}

// --- partnerships with a workspace on another server ---------------------------------------------

/// A new invitation, shown once.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invited {
    pub partnership: RemotePartnershipView,
    /// Give this to the partner's admin, who pastes it into their own Meshwork server. It works
    /// once, until `invitation_expires_at`; this server keeps only its hash.
    pub invitation: String,
}

// The invitation is a secret: Debug output (logs) never shows it.
impl std::fmt::Debug for Invited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invited")
            .field("partnership", &self.partnership)
            .finish_non_exhaustive()
    }
}

/// The answer to a revocation.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    pub partnership: RemotePartnershipView,
    /// Whether the partner's server was told. Sharing stops here either way; a partner server
    /// not told learns it at its next request.
    pub partner_notified: bool,
}

/// Your view of a partnership with another server: the last run's progress and the view it
/// kept.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteOverlap {
    pub partnership: RemotePartnershipView,
    /// The latest run started on this server since it started.
    pub run: Option<RunProgress>,
    /// The view of the last run that was kept (none before the first, or after a change).
    pub view: Option<SideView>,
}

/// Partnerships of a workspace with workspaces on other servers.
pub async fn remote_list(
    state: &AppState,
    ws: WorkspaceId,
) -> AppResult<Vec<RemotePartnershipView>> {
    let rows = state.store.remote_partnerships_of(ws).await?;
    rows.iter().map(|r| remote::describe(state, r)).collect()
}

/// Invites a workspace on another Meshwork server; the invitation is shown once. Audited.
pub async fn remote_invite(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
) -> AppResult<Invited> {
    let (row, invitation) = remote::invite(state, auth.workspace()).await?;
    audit::workspace_event(
        state,
        client,
        "overlap.partnership_invited",
        auth,
        None,
        json!({"partnership": row.id, "remote": true}),
    )
    .await?;
    Ok(Invited {
        partnership: remote::describe(state, &row)?,
        invitation,
    })
}

/// Accepts an invitation from a workspace on another server: this server contacts it over
/// HTTPS and the partnership is active on both sides. Audited.
pub async fn remote_join(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    invitation: &str,
) -> AppResult<RemotePartnershipView> {
    let row = remote::join(state, auth.workspace(), invitation).await?;
    let view = remote::describe(state, &row)?;
    audit::workspace_event(
        state,
        client,
        "overlap.partnership_accepted",
        auth,
        None,
        json!({"partnership": row.id, "remote": true, "partner_url": view.partner_url}),
    )
    .await?;
    Ok(view)
}

/// Ends a partnership with another server (or withdraws an invitation) at once; the partner's
/// server is told. Audited.
pub async fn remote_revoke(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<Revoked> {
    let (row, told) = remote::revoke(state, auth.workspace(), id).await?;
    audit::workspace_event(
        state,
        client,
        "overlap.partnership_revoked",
        auth,
        None,
        json!({"partnership": row.id, "remote": true, "state": row.state, "partner_notified": told}),
    )
    .await?;
    Ok(Revoked {
        partnership: remote::describe(state, &row)?,
        partner_notified: told,
    })
}

/// Sets what the partner on another server learns (saved filters only) and the threshold; the
/// partner's server is told to drop the view it computed under the old settings. Audited.
pub async fn remote_set_sharing(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    input: &SideSettings,
) -> AppResult<RemotePartnershipView> {
    check_sharing(state, auth.workspace(), input, true).await?;
    let row = remote::find(state, auth.workspace(), id).await?;
    if PartnershipState::of(&row.state).ended().is_none() {
        return Err(overlap::not_active());
    }
    let text = serde_json::to_string(input).map_err(AppError::internal)?;
    let row = remote::update(state, row, |r| r.settings = text).await?;
    // The partner's server drops its view (it may name records no longer shared) and any run
    // of the old settings; if it cannot be told now, its next run sees the new settings.
    let told = remote::announce_sharing(state, &row).await?;
    let shares = serde_json::to_value(&input.shares).map_err(AppError::internal)?;
    audit::workspace_event(
        state,
        client,
        "overlap.sharing_changed",
        auth,
        None,
        json!({"partnership": row.id, "remote": true, "shares": shares, "threshold": input.threshold, "partner_notified": told}),
    )
    .await?;
    remote::describe(state, &row)
}

/// Runs the private set intersection with the partner's server now (or starts it, when not
/// `wait`). Audited.
pub async fn remote_run(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    wait: bool,
) -> AppResult<RunProgress> {
    let row = remote::find(state, auth.workspace(), id).await?;
    let progress = remote::start_run(state, row, wait).await?;
    audit::workspace_event(
        state,
        client,
        "overlap.run",
        auth,
        None,
        json!({"partnership": id, "remote": true, "state": progress.state, "stored": progress.stored}),
    )
    .await?;
    Ok(progress)
}

/// The caller's view of a partnership with another server: the last run and the view it kept.
pub async fn remote_view(state: &AppState, ws: WorkspaceId, id: &str) -> AppResult<RemoteOverlap> {
    let row = remote::find(state, ws, id).await?;
    Ok(RemoteOverlap {
        partnership: remote::describe(state, &row)?,
        run: state.remote.progress(&row.id),
        view: if PartnershipState::of(&row.state) == PartnershipState::Active {
            remote::load_view(state, &row)?
        } else {
            None
        },
    })
}

/// Exports the caller's overlapping records with a partner on another server. Audited.
pub async fn remote_export(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    format: ExportFormat,
) -> AppResult<Vec<u8>> {
    let row = remote::find(state, auth.workspace(), id).await?;
    if PartnershipState::of(&row.state) != PartnershipState::Active {
        return Err(overlap::not_active());
    }
    let v = remote::load_view(state, &row)?.ok_or_else(|| {
        AppError::new(
            ErrorCode::ConcurrentChange,
            "no run has been kept since the partnership or its sharing last changed; start a run first",
        )
    })?;
    audit::workspace_event(
        state,
        client,
        "overlap.exported",
        auth,
        None,
        json!({"partnership": row.id, "remote": true, "format": format.as_str(), "records": v.records.len()}),
    )
    .await?;
    render_export(state, auth.workspace(), &v, format).await
}

// --- what both kinds of partnership share ------------------------------------------------------

/// The format of an exported view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    /// `csv` (the default) or `json`.
    pub fn parse(text: Option<&str>) -> AppResult<Self> {
        match text.unwrap_or("csv") {
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(AppError::new(
                ErrorCode::InvalidField,
                format!("query `format`: {other:?} is not csv or json"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
        }
    }
}

/// The list of a view as CSV (`id,type,name,populations,partner_populations`) or JSON.
pub async fn render_export(
    state: &AppState,
    ws: WorkspaceId,
    v: &SideView,
    format: ExportFormat,
) -> AppResult<Vec<u8>> {
    let names = record_names(state, ws, &v.records).await?;
    let pop_name = |id: &str, list: &[overlap::SharedPopulation]| {
        list.iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    if format == ExportFormat::Json {
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
        return Ok(Value::Array(rows).to_string().into_bytes());
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
    Ok(out.into_bytes())
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
) -> AppResult<Vec<String>> {
    let ids: Vec<meshwork_domain::RecordId> =
        records.iter().filter_map(|r| r.id.parse().ok()).collect();
    let crm = crate::crm::Crm::new(state, ws)?;
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
