//! Connectors: sources Meshwork reads itself (an LDAP directory, a folder tree), on a schedule
//! and on demand, through the clients of `meshwork-connectors` (mm01, mm03, mm04, mm05, mm14,
//! mm15). A connector's rows are the source rows of its `source` name, so search treats them
//! exactly as pushed ones: access is evaluated when a search runs.
//!
//! A sync is a job on the runner ([`crate::jobs::CONNECTOR_SYNC`]); its steps:
//!
//! 1. **People and groups**, read whole from the source, then written as differences: new or
//!    changed people, people gone (with their memberships), memberships added and removed, each
//!    in one transaction. A group that contains itself is only a cycle search already stops at.
//! 2. **Documents**: the listing's fingerprints (a hash of a document's version *and readers*)
//!    against the stored ones; only changed documents are fetched and written, each with its
//!    whole access, never merged with an older one (an access that cannot be read is none:
//!    fail closed). Archived documents (tombstones) are skipped. A complete listing prunes what
//!    disappeared at the source.
//! 3. **History**: counts and every problem (sealed: they name files and people) in
//!    `connector_runs`.
//!
//! A sync killed mid-way is taken over when its job's lease expires: the listing is read again
//! and what was already written (with its fingerprint) is skipped, so nothing is lost or written
//! twice, and every write is a document with its readers, so nothing is exposed in between.
//! Disconnecting deletes the connector, then every row of its source; a sync still writing
//! checks after each batch that its connector exists and otherwise removes what it wrote.

use crate::actor::{ClientInfo, InWorkspace};
use crate::audit;
use crate::error::{AppError, AppResult};
use crate::jobs::{self, Failure, NewJob};
use crate::search::{document_id, source_email_index, source_group, source_user, StoredDocument};
use crate::sources::{check_source, document_row};
use crate::state::{now_millis, AppState};
use meshwork_connectors::{Clients, ConnectorError, Member, Settings, Source, TextReader};

pub mod contacts;
mod mail_log;
use meshwork_domain::{ErrorCode, Millis, Permission, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_search::EVERYONE;
use meshwork_store::{ConnectorRow, ConnectorRunRow, SourcePrincipalRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Sync interval when none is given.
pub const DEFAULT_EVERY_MINUTES: u32 = 5;
/// Documents fetched and written per batch.
const BATCH: usize = 100;
/// Problems kept per run (the rest are counted).
const MAX_PROBLEMS: usize = 200;
const MAX_TITLE: usize = 1_000;
const MAX_BODY: usize = 1 << 20;
pub use meshwork_connectors::HIDDEN;

/// A connector to add.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewConnector {
    /// The source name its documents, people and groups carry (`a-z`, `0-9`, `-`, `_`); search
    /// filters on it with `source:`.
    pub source: String,
    /// Minutes between syncs (1 to 1440, default 5).
    pub every_minutes: Option<u32>,
    /// Added paused: no sync until resumed.
    #[serde(default)]
    pub paused: bool,
    /// The kind (`ldap`, `folder`) and its settings, credentials included.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
}

/// Changes to a connector.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorChange {
    pub paused: Option<bool>,
    pub every_minutes: Option<u32>,
    /// New settings of the same kind; a secret sent as `********` (or left out) is kept.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<serde_json::Value>,
}

/// A connector as people see it: settings with secrets hidden.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorView {
    pub id: String,
    pub source: String,
    pub kind: String,
    /// Its settings, secrets shown as `********`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// What it reads, read-only (mm04): `[{name, description}]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub scopes: Vec<meshwork_connectors::Scope>,
    pub paused: bool,
    pub every_minutes: i64,
    /// When the next scheduled sync is due (ms).
    pub next_sync_at: Millis,
    pub created_at: Millis,
    /// The latest sync, if any.
    pub last_run: Option<RunView>,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    pub people: u64,
    pub people_removed: u64,
    pub groups: u64,
    pub memberships_added: u64,
    pub memberships_removed: u64,
    pub listed: u64,
    pub unchanged: u64,
    pub stored: u64,
    pub removed: u64,
    pub archived_skipped: u64,
    /// Contacts connectors: cards that matched a contact someone already had (by email).
    pub contacts_matched: u64,
    /// Contacts connectors: contacts kept though their card went, as they were changed in
    /// Meshwork.
    pub contacts_kept: u64,
    /// Mail connectors logging to the CRM: messages logged on contacts' timelines.
    pub logged: u64,
    pub errors: u64,
    pub warnings: u64,
}

/// One sync in the history.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    pub id: String,
    /// `schedule`, `manual` or `added`.
    pub trigger: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub counts: Counts,
    /// Errors and warnings, each naming its item; a failed run's reason first.
    pub problems: Vec<String>,
}

/// The kinds of connector and the read-only scopes each asks for (mm04): `[{kind, name,
/// scopes: [{name, description}]}]`.
pub fn kinds() -> serde_json::Value {
    serde_json::Value::Array(
        meshwork_connectors::KINDS
            .iter()
            .map(|(kind, name, scopes)| json!({"kind": kind, "name": name, "scopes": scopes}))
            .collect(),
    )
}

fn not_found(id: &str) -> AppError {
    AppError::new(
        ErrorCode::ConnectorNotFound,
        format!("no connector {id:?} in this workspace"),
    )
}

fn require(auth: &impl InWorkspace) -> AppResult<()> {
    if auth.role().allows(Permission::SourcesWrite) {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::PermissionDenied,
            "connectors are managed by the workspace's admins",
        ))
    }
}

fn aad<'a>(id: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        scope: "connectors",
        record: id,
        field,
    }
}

/// Reads settings sent by a person: the kind's fields, each checked, each problem naming its
/// field.
pub fn parse_settings(value: serde_json::Value) -> AppResult<Settings> {
    let settings: Settings = serde_json::from_value(value).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidField,
            format!("field `settings`: {e} (kinds: ldap, folder, imap)"),
        )
    })?;
    settings
        .validate()
        .map_err(|e| AppError::new(ErrorCode::InvalidField, format!("settings: {e}")))?;
    Ok(settings)
}

/// Where the operator lets connectors read (`connectors.folder_roots`): a folder connector's
/// folder, and its accounts files unless they are the system's, must lie under a root once
/// every link is resolved.
pub fn check_allowed(state: &AppState, settings: &Settings) -> AppResult<()> {
    let Settings::Folder(f) = settings else {
        return Ok(());
    };
    let roots: Vec<std::path::PathBuf> = state
        .config
        .connectors
        .folder_roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    let refused = |field: &str, why: String| {
        AppError::new(
            ErrorCode::InvalidField,
            format!("settings: field `{field}`: {why}"),
        )
    };
    if roots.is_empty() {
        return Err(refused("path", "this server reads no folders: its operator lists the folders connectors may read in `connectors.folder_roots`".into()));
    }
    let mut paths = vec![("path", f.path.as_str())];
    for (field, p, system) in [
        ("passwd_file", f.passwd_file.as_str(), "/etc/passwd"),
        ("group_file", f.group_file.as_str(), "/etc/group"),
    ] {
        if p != system {
            paths.push((field, p));
        }
    }
    for (field, p) in paths {
        let outside = || {
            refused(field, format!("{p} is not under a folder this server lets connectors read (`connectors.folder_roots`)"))
        };
        // Why a path cannot be read is told only for a path plainly under a root (no `..`):
        // elsewhere it would let a workspace admin probe which paths exist on the server
        // (security finding 21).
        let path = std::path::Path::new(p);
        let plainly_inside = !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
            && (roots.iter().any(|r| path.starts_with(r))
                || state
                    .config
                    .connectors
                    .folder_roots
                    .iter()
                    .any(|r| path.starts_with(r)));
        let real = match std::fs::canonicalize(p) {
            Ok(real) => real,
            Err(e) if plainly_inside => {
                return Err(refused(field, format!("cannot read {p}: {e}")))
            }
            Err(_) => return Err(outside()),
        };
        if !roots.iter().any(|r| real.starts_with(r)) {
            return Err(outside());
        }
    }
    Ok(())
}

fn every(minutes: Option<u32>) -> AppResult<i64> {
    let m = minutes.unwrap_or(DEFAULT_EVERY_MINUTES);
    if !(1..=1440).contains(&m) {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("field `every_minutes`: {m} is not 1 to 1440"),
        ));
    }
    Ok(m as i64 * 60)
}

fn seal_settings(state: &AppState, ws: WorkspaceId, id: &str, s: &Settings) -> AppResult<Vec<u8>> {
    let plain = serde_json::to_vec(s).map_err(AppError::internal)?;
    Ok(state.workspace_key(ws)?.seal(aad(id, "settings"), &plain))
}

fn open_settings(state: &AppState, row: &ConnectorRow) -> AppResult<Settings> {
    let plain = state
        .workspace_key(row.workspace_id)?
        .open(aad(&row.id, "settings"), &row.settings_sealed)
        .map_err(AppError::internal)?;
    serde_json::from_slice(&plain).map_err(AppError::internal)
}

/// What connectors read with in this process: the text extractors and the HTTP transport.
fn clients(state: &AppState) -> Clients {
    Clients {
        text: TextReader {
            helper: state
                .config
                .file_text_helper
                .clone()
                .map(meshwork_extract::sandbox::Helper::meshwork),
        },
        http: state.connector_http(),
        addresses: state.connector_addresses.clone(),
    }
}

fn run_view(state: &AppState, r: ConnectorRunRow) -> RunView {
    let problems = r
        .report_sealed
        .as_ref()
        .and_then(|sealed| {
            state
                .workspace_key(r.workspace_id)
                .ok()?
                .open(aad(&r.id, "report"), sealed)
                .ok()
        })
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .unwrap_or_default();
    RunView {
        counts: serde_json::from_str(&r.counts).unwrap_or_default(),
        id: r.id,
        trigger: r.trigger,
        state: r.state,
        started_at: r.started_at,
        finished_at: r.finished_at,
        problems,
    }
}

async fn view(state: &AppState, row: ConnectorRow) -> AppResult<ConnectorView> {
    let settings = open_settings(state, &row)?;
    let last_run = state
        .store
        .connector_runs(row.workspace_id, &row.id, 1)
        .await?
        .into_iter()
        .next()
        .map(|r| run_view(state, r));
    Ok(ConnectorView {
        scopes: settings.scopes().to_vec(),
        settings: settings.redacted(),
        id: row.id,
        source: row.source,
        kind: row.kind,
        paused: row.paused,
        every_minutes: row.every_seconds / 60,
        next_sync_at: row.next_sync_at,
        created_at: row.created_at,
        last_run,
    })
}

async fn row(state: &AppState, ws: WorkspaceId, id: &str) -> AppResult<ConnectorRow> {
    state
        .store
        .connector(ws, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Tries settings before they are saved: connects, reads the least that proves they work, and
/// says what it found (or what is wrong).
pub async fn try_settings(
    auth: &impl InWorkspace,
    state: &AppState,
    settings: serde_json::Value,
) -> AppResult<String> {
    require(auth)?;
    let settings = parse_settings(settings)?;
    check_connection(state, &settings).await
}

/// Connects with `settings` (where the operator allows) and says what it found, or what is wrong.
async fn check_connection(state: &AppState, settings: &Settings) -> AppResult<String> {
    check_allowed(state, settings)?;
    settings
        .source(clients(state))
        .check()
        .await
        .map_err(|e| AppError::new(ErrorCode::InvalidField, e.to_string()))
}

/// Adds a connector and queues its first sync.
pub async fn create(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    input: NewConnector,
) -> AppResult<ConnectorView> {
    require(auth)?;
    let ws = auth.workspace();
    check_source(&input.source)
        .map_err(|e| AppError::new(e.code, e.message.replace("path `source`", "field `source`")))?;
    let every_seconds = every(input.every_minutes)?;
    let settings = parse_settings(input.settings)?;
    check_allowed(state, &settings)?;
    let now = now_millis();
    let id = uuid::Uuid::now_v7().to_string();
    let row = ConnectorRow {
        settings_sealed: seal_settings(state, ws, &id, &settings)?,
        id: id.clone(),
        workspace_id: ws,
        source: input.source.clone(),
        kind: settings.kind().to_string(),
        paused: input.paused,
        every_seconds,
        next_sync_at: now + every_seconds * 1000,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .connector_create(&row)
        .await
        .map_err(|e| match e {
            meshwork_store::StoreError::Conflict(_) => AppError::new(
                ErrorCode::ConnectorExists,
                format!(
                    "field `source`: the workspace has a connector named {:?}",
                    input.source
                ),
            ),
            e => e.into(),
        })?;
    audit::workspace_event(
        state,
        client,
        "connector.added",
        auth,
        None,
        json!({"connector": id, "source": input.source, "kind": settings.kind()}),
    )
    .await?;
    if !input.paused {
        enqueue_sync(state, &row, "added").await?;
    }
    view(state, row).await
}

/// The workspace's connectors.
pub async fn list(state: &AppState, auth: &impl InWorkspace) -> AppResult<Vec<ConnectorView>> {
    require(auth)?;
    let mut out = Vec::new();
    for row in state.store.connectors(auth.workspace()).await? {
        out.push(view(state, row).await?);
    }
    Ok(out)
}

pub async fn get(state: &AppState, auth: &impl InWorkspace, id: &str) -> AppResult<ConnectorView> {
    require(auth)?;
    view(state, row(state, auth.workspace(), id).await?).await
}

/// Pauses or resumes, changes the interval or the settings (same kind; a secret sent back as
/// `********` or left out is kept).
pub async fn update(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    change: ConnectorChange,
) -> AppResult<ConnectorView> {
    require(auth)?;
    let mut r = row(state, auth.workspace(), id).await?;
    let now = now_millis();
    if let Some(m) = change.every_minutes {
        r.every_seconds = every(Some(m))?;
        r.next_sync_at = r.next_sync_at.min(now + r.every_seconds * 1000);
    }
    if let Some(mut value) = change.settings {
        let old = serde_json::to_value(open_settings(state, &r)?).map_err(AppError::internal)?;
        meshwork_connectors::keep_secrets(&mut value, &old);
        if let Some(field) = meshwork_connectors::hidden_secret(&value) {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("settings: field `{field}`: enter it again: the server or account it is for changed"),
            ));
        }
        let settings = parse_settings(value)?;
        check_allowed(state, &settings)?;
        if settings.kind() != r.kind {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!(
                    "field `settings.kind`: this connector reads {}; add a new connector for {}",
                    r.kind,
                    settings.kind()
                ),
            ));
        }
        r.settings_sealed = seal_settings(state, r.workspace_id, &r.id, &settings)?;
    }
    if let Some(p) = change.paused {
        if r.paused && !p {
            r.next_sync_at = now;
        }
        r.paused = p;
    }
    r.updated_at = now;
    if !state.store.connector_update(&r).await? {
        return Err(not_found(id));
    }
    audit::workspace_event(
        state,
        client,
        "connector.changed",
        auth,
        None,
        json!({"connector": r.id, "source": r.source, "paused": r.paused, "every_minutes": r.every_seconds / 60}),
    )
    .await?;
    view(state, r).await
}

/// Pauses a connector (no sync runs), or resumes it and queues a sync now.
pub async fn set_paused(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
    paused: bool,
) -> AppResult<ConnectorView> {
    let change = ConnectorChange {
        paused: Some(paused),
        ..Default::default()
    };
    let view = update(state, client, auth, id, change).await?;
    if !paused {
        sync_now(state, auth, id).await?;
    }
    Ok(view)
}

/// Tests a saved connector's connection.
pub async fn test(state: &AppState, auth: &impl InWorkspace, id: &str) -> AppResult<String> {
    require(auth)?;
    let r = row(state, auth.workspace(), id).await?;
    let settings = open_settings(state, &r)?;
    check_connection(state, &settings).await
}

/// Queues a sync now; answers its job id.
pub async fn sync_now(
    state: &AppState,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<uuid::Uuid> {
    require(auth)?;
    let r = row(state, auth.workspace(), id).await?;
    enqueue_sync(state, &r, "manual").await
}

async fn enqueue_sync(state: &AppState, r: &ConnectorRow, trigger: &str) -> AppResult<uuid::Uuid> {
    let mut job = NewJob::new(
        jobs::CONNECTOR_SYNC,
        json!({"connector": r.id, "trigger": trigger}),
    )
    .in_workspace(r.workspace_id);
    job.max_attempts = 3;
    jobs::enqueue(state, job)
        .await?
        .ok_or_else(|| AppError::internal("a sync job was not queued"))
}

/// The sync history, newest first.
pub async fn runs(
    state: &AppState,
    auth: &impl InWorkspace,
    id: &str,
    limit: i64,
) -> AppResult<Vec<RunView>> {
    require(auth)?;
    let r = row(state, auth.workspace(), id).await?;
    Ok(state
        .store
        .connector_runs(r.workspace_id, &r.id, limit.clamp(1, 200))
        .await?
        .into_iter()
        .map(|r| run_view(state, r))
        .collect())
}

/// What disconnecting removed.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disconnected {
    pub documents_removed: u64,
    /// Contacts a contacts connector created that nobody changed in Meshwork.
    pub contacts_removed: u64,
    /// Contacts it created that were changed in Meshwork (or that notes, deals or activities
    /// name): they stay, now Meshwork's alone.
    pub contacts_kept: u64,
    /// Each kept contact, named.
    pub kept: Vec<String>,
}

/// Disconnects: the connector, its history, and every document, person, group, tombstone and
/// index entry of its source are deleted (mm14); nothing else. A contacts connector's contacts
/// go too, except those changed in Meshwork since, which are kept and named.
pub async fn disconnect(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    id: &str,
) -> AppResult<Disconnected> {
    require(auth)?;
    let ws = auth.workspace();
    let r = row(state, ws, id).await?;
    let (contacts, kept) = contacts::remove_all(state, ws, &r.id).await?;
    let Some(n) = state
        .store
        .connector_delete(ws, &r.id, now_millis())
        .await?
    else {
        return Err(not_found(id));
    };
    state.search.sync_after_write(state, ws).await;
    audit::workspace_event(
        state,
        client,
        "connector.disconnected",
        auth,
        None,
        json!({"connector": r.id, "source": r.source, "documents_removed": n,
            "contacts_removed": contacts.removed, "contacts_kept": contacts.kept}),
    )
    .await?;
    Ok(Disconnected {
        documents_removed: n,
        contacts_removed: contacts.removed,
        contacts_kept: contacts.kept,
        kept,
    })
}

/// Archives a document of a source: it leaves search at once and no sync brings it back
/// (mm15) until it is restored.
pub async fn archive(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    source: &str,
    document: &str,
) -> AppResult<()> {
    require(auth)?;
    let ws = auth.workspace();
    check_source(source)?;
    crate::sources::check_id("document_id", document)?;
    let id = document_id(state, ws, source, document)?;
    state
        .store
        .source_archive(ws, source, &id, Some(auth.actor().user_id()), now_millis())
        .await?;
    state.search.sync_after_write(state, ws).await;
    audit::workspace_event(
        state,
        client,
        "document.archived",
        auth,
        None,
        json!({"source": source, "document": id}),
    )
    .await
}

/// Restores an archived document: the next sync of its source brings it back.
pub async fn unarchive(
    state: &AppState,
    client: &ClientInfo,
    auth: &impl InWorkspace,
    source: &str,
    document: &str,
) -> AppResult<()> {
    require(auth)?;
    let ws = auth.workspace();
    check_source(source)?;
    crate::sources::check_id("document_id", document)?;
    let id = document_id(state, ws, source, document)?;
    if !state.store.source_unarchive(ws, &id).await? {
        return Err(AppError::new(
            ErrorCode::SourceItemNotFound,
            format!("no archived document {document:?} in source {source:?}"),
        ));
    }
    audit::workspace_event(
        state,
        client,
        "document.restored",
        auth,
        None,
        json!({"source": source, "document": id}),
    )
    .await
}

/// The periodic job: queues a sync of every connector whose interval has passed. Each due time
/// is one job across all servers (its unique key).
pub async fn queue_due(state: &AppState) -> Result<(), Failure> {
    let now = now_millis();
    for r in state
        .store
        .connectors_due(now)
        .await
        .map_err(AppError::from)?
    {
        let mut job = NewJob::new(
            jobs::CONNECTOR_SYNC,
            json!({"connector": r.id, "trigger": "schedule"}),
        )
        .in_workspace(r.workspace_id);
        job.max_attempts = 3;
        job.unique_key = Some(format!(
            "{}:{}@{}",
            jobs::CONNECTOR_SYNC,
            r.id,
            r.next_sync_at
        ));
        jobs::enqueue(state, job).await?;
        // Only the schedule: a pause or a change made meanwhile stays.
        state
            .store
            .connector_schedule(r.workspace_id, &r.id, now + r.every_seconds * 1000)
            .await
            .map_err(AppError::from)?;
    }
    Ok(())
}

/// What a run met, kept in its history.
#[derive(Default)]
struct Report {
    counts: Counts,
    problems: Vec<String>,
    dropped: usize,
}

impl Report {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.dropped += 1;
        }
    }
}

async fn save_run(
    state: &AppState,
    base: &ConnectorRunRow,
    run_state: &str,
    report: &Report,
    finished: bool,
) -> AppResult<()> {
    let mut problems = report.problems.clone();
    if report.dropped > 0 {
        problems.push(format!("… and {} more", report.dropped));
    }
    let sealed = state.workspace_key(base.workspace_id)?.seal(
        aad(&base.id, "report"),
        &serde_json::to_vec(&problems).map_err(AppError::internal)?,
    );
    let mut row = base.clone();
    row.state = run_state.to_string();
    row.finished_at = finished.then(now_millis);
    row.counts = serde_json::to_string(&report.counts).map_err(AppError::internal)?;
    row.report_sealed = Some(sealed);
    state.store.connector_run_put(&row).await?;
    Ok(())
}

/// Runs one sync job (payload `{"connector": id, "trigger": …}`).
pub async fn run_job(
    state: &AppState,
    ws: WorkspaceId,
    job_id: uuid::Uuid,
    input: &serde_json::Value,
) -> Result<(), Failure> {
    let Some(id) = input.get("connector").and_then(|v| v.as_str()) else {
        return Err(Failure::Permanent("a sync job without a connector".into()));
    };
    let trigger = input
        .get("trigger")
        .and_then(|v| v.as_str())
        .unwrap_or("manual");
    state.usage.count(ws, "connector.sync");
    let Some(connector) = state
        .store
        .connector(ws, id)
        .await
        .map_err(AppError::from)?
    else {
        return Ok(()); // disconnected since it was queued
    };
    // One sync of a connector at a time: another live one makes this one needless; one whose
    // job is gone (its server stopped) is closed, and this one resumes its work.
    let now = now_millis();
    let run_id = job_id.to_string();
    for other in state
        .store
        .connector_runs(ws, id, 5)
        .await
        .map_err(AppError::from)?
    {
        if other.state != "running" || other.id == run_id {
            continue;
        }
        let live = match other.id.parse::<uuid::Uuid>() {
            Ok(j) => state
                .store
                .queued_job(j)
                .await
                .map_err(AppError::from)?
                .is_some_and(|j| j.state == "running" && j.lease_until.is_some_and(|l| l > now)),
            Err(_) => false,
        };
        if live {
            tracing::info!(
                connector = id,
                "a sync is already running; this one is not needed"
            );
            return Ok(());
        }
        let mut closed = other.clone();
        closed.state = "failed".into();
        closed.finished_at = Some(now);
        let mut report = Report {
            counts: serde_json::from_str(&other.counts).unwrap_or_default(),
            ..Default::default()
        };
        report.problem(
            "stopped before it finished (its server stopped); the next sync took over".into(),
        );
        save_run(state, &closed, "failed", &report, true).await?;
    }
    let base = match state
        .store
        .connector_run(ws, &run_id)
        .await
        .map_err(AppError::from)?
    {
        Some(r) => r,
        None => ConnectorRunRow {
            id: run_id.clone(),
            workspace_id: ws,
            connector_id: id.to_string(),
            trigger: trigger.to_string(),
            state: "running".into(),
            started_at: now,
            finished_at: None,
            counts: "{}".into(),
            report_sealed: None,
        },
    };
    let mut report = Report::default();
    // The claim: the store refuses a second running run of one connector, so two syncs started
    // in the same instant cannot both pass the check above.
    match save_run(state, &base, "running", &report, false).await {
        Err(e) if e.code == ErrorCode::ConcurrentChange => {
            tracing::info!(
                connector = id,
                "a sync is already running; this one is not needed"
            );
            return Ok(());
        }
        r => r?,
    }
    match sync(state, &connector, &base, &mut report).await {
        Ok(()) => {
            save_run(state, &base, "done", &report, true).await?;
            tracing::info!(
                connector = id,
                stored = report.counts.stored,
                removed = report.counts.removed,
                errors = report.counts.errors,
                "connector synced"
            );
            Ok(())
        }
        Err(SyncError::Disconnected) => Ok(()),
        Err(e) => {
            report.counts.errors += 1;
            report.problems.insert(0, e.to_string());
            save_run(state, &base, "failed", &report, true).await?;
            Err(match e {
                SyncError::Source(c) if c.temporary() => Failure::Temporary(c.to_string()),
                SyncError::Source(c) => Failure::Permanent(c.to_string()),
                SyncError::App(a) => Failure::from(a),
                SyncError::Disconnected => unreachable!("handled above"),
            })
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("{0}")]
    Source(#[from] ConnectorError),
    #[error("{}", .0.message)]
    App(#[from] AppError),
    #[error("the connector was disconnected during the sync")]
    Disconnected,
}

impl From<meshwork_store::StoreError> for SyncError {
    fn from(e: meshwork_store::StoreError) -> Self {
        SyncError::App(e.into())
    }
}

async fn sync(
    state: &AppState,
    c: &ConnectorRow,
    run: &ConnectorRunRow,
    report: &mut Report,
) -> Result<(), SyncError> {
    let ws = c.workspace_id;
    let source = c.source.as_str();
    let settings = open_settings(state, c)?;
    // The operator may have narrowed where connectors read since it was added.
    check_allowed(state, &settings)
        .map_err(|e| SyncError::Source(ConnectorError::Settings(e.message)))?;
    let log_to_crm = matches!(&settings, Settings::Imap(s) if s.log_to_crm);
    let mut log = mail_log::Log::default();
    let client = match settings.source(clients(state)) {
        Source::Contacts(dav) => return contacts::sync(state, c, run, report, &dav).await,
        Source::Documents(client) => client,
    };

    // 1. People and groups.
    let dir = client.directory().await?;
    for p in dir.problems {
        report.counts.warnings += 1;
        report.problem(p);
    }
    let existing: HashMap<String, Option<[u8; 32]>> = state
        .store
        .source_principal_rows(ws, source)
        .await?
        .into_iter()
        .map(|r| (r.principal, r.email_index))
        .collect();
    let mut seen = HashSet::new();
    let mut changed = Vec::new();
    for p in &dir.principals {
        let principal = source_user(state, ws, source, &p.id)?;
        let email_index = match &p.email {
            Some(e) => match meshwork_domain::EmailAddress::parse("email", e) {
                Ok(e) => Some(source_email_index(state, ws, e.as_str())?),
                Err(_) => {
                    report.counts.warnings += 1;
                    report.problem(format!(
                        "person {}: email {e:?} is not valid; they join no account",
                        p.id
                    ));
                    None
                }
            },
            None => None,
        };
        if existing.get(&principal) != Some(&email_index) {
            changed.push(SourcePrincipalRow {
                principal: principal.clone(),
                email_index,
            });
        }
        seen.insert(principal);
    }
    report.counts.people = seen.len() as u64;
    for chunk in changed.chunks(1000) {
        state
            .store
            .source_put_principals(ws, source, chunk, now_millis())
            .await?;
    }
    let gone: Vec<String> = existing
        .keys()
        .filter(|p| !seen.contains(*p))
        .cloned()
        .collect();
    report.counts.people_removed = gone.len() as u64;
    state
        .store
        .source_remove_principals(ws, source, &gone, now_millis())
        .await?;

    let mut want: HashSet<(String, String)> = HashSet::new();
    for g in &dir.groups {
        let gp = source_group(state, ws, source, &g.id)?;
        for m in &g.members {
            want.insert((
                gp.clone(),
                match m {
                    Member::User(u) => source_user(state, ws, source, u)?,
                    Member::Group(h) => source_group(state, ws, source, h)?,
                    Member::Everyone => EVERYONE.to_string(),
                },
            ));
        }
    }
    report.counts.groups = dir.groups.len() as u64;
    let have: HashSet<(String, String)> = state
        .store
        .source_memberships(ws, source)
        .await?
        .into_iter()
        .collect();
    let remove: Vec<_> = have.difference(&want).cloned().collect();
    let add: Vec<_> = want.difference(&have).cloned().collect();
    report.counts.memberships_added = add.len() as u64;
    report.counts.memberships_removed = remove.len() as u64;
    state
        .store
        .source_change_memberships(ws, source, &remove, &add, now_millis())
        .await?;
    still_connected(state, c).await?;

    // 2. Documents.
    if !client.has_documents() {
        return Ok(());
    }
    let listing = client.list().await?;
    for p in listing.problems {
        report.counts.warnings += 1;
        report.problem(p);
    }
    report.counts.listed = listing.items.len() as u64;
    let archived: HashSet<String> = state
        .store
        .source_archived(ws, source)
        .await?
        .into_iter()
        .collect();
    let stored: HashMap<String, Option<String>> = state
        .store
        .source_fingerprints(ws, source)
        .await?
        .into_iter()
        .collect();
    let mut listed_ids = HashSet::with_capacity(listing.items.len());
    let mut to_fetch = Vec::new();
    for item in &listing.items {
        let did = document_id(state, ws, source, &item.id)?;
        if archived.contains(&did) {
            report.counts.archived_skipped += 1;
        } else if stored.get(&did) == Some(&Some(item.fingerprint.clone())) {
            report.counts.unchanged += 1;
        } else {
            to_fetch.push(item.id.clone());
        }
        listed_ids.insert(did);
    }
    for batch in to_fetch.chunks(BATCH) {
        let mut rows = Vec::with_capacity(batch.len());
        let mut unreadable = Vec::new();
        let mut mail = Vec::new();
        for item in client.fetch(batch).await? {
            let d = match item {
                Ok(d) => d,
                Err(e) => {
                    report.counts.errors += 1;
                    report.problem(format!(
                        "{}: {}; out of search until it can be read",
                        e.id, e.error
                    ));
                    // Fail closed: a stored copy would keep the access it had before; the next
                    // sync reads it again.
                    unreadable.push(document_id(state, ws, source, &e.id)?);
                    continue;
                }
            };
            if let Some(w) = &d.warning {
                report.counts.warnings += 1;
                report.problem(w.clone());
            }
            if let (true, Some(m)) = (log_to_crm, &d.mail) {
                mail.push(mail_log::Read {
                    id: d.id.clone(),
                    subject: d.title.clone(),
                    body: d.body.clone(),
                    at: d.updated_at,
                    mail: m.clone(),
                });
            }
            let mut acl = Vec::new();
            if d.access.everyone {
                acl.push(EVERYONE.to_string());
            }
            for u in &d.access.users {
                acl.push(source_user(state, ws, source, u)?);
            }
            for g in &d.access.groups {
                acl.push(source_group(state, ws, source, g)?);
            }
            let doc = StoredDocument {
                source: source.to_string(),
                external_id: d.id,
                title: cut(&d.title, MAX_TITLE, true),
                body: cut(&d.body, MAX_BODY, false),
                url: d
                    .url
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
                updated_at: d.updated_at,
                acl,
            };
            rows.push(document_row(state, ws, &doc, Some(d.fingerprint))?);
        }
        state
            .store
            .source_put_documents(ws, &rows, now_millis())
            .await?;
        report.counts.stored += rows.len() as u64;
        report.counts.removed += state
            .store
            .source_delete_documents(ws, source, &unreadable, now_millis())
            .await?;
        if !mail.is_empty() {
            mail_log::log_messages(state, c, mail, &mut log, report).await?;
        }
        still_connected(state, c).await?;
        state.search.sync_after_write(state, ws).await;
        // Progress, for the history while the sync runs.
        save_run(state, run, "running", report, false).await?;
    }
    // Gone from the listing, or archived meanwhile: removed. A listing that missed part of the
    // source (a folder it may no longer read) removes that part too: its access is not known
    // now, so it is out of search until it is (fail closed). Only what a sync wrote (it has a
    // fingerprint) is pruned; documents pushed to the same source name stay.
    let prune: Vec<String> = stored
        .iter()
        .filter(|(id, fp)| fp.is_some() && (!listed_ids.contains(*id) || archived.contains(*id)))
        .map(|(id, _)| id.clone())
        .collect();
    for chunk in prune.chunks(500) {
        report.counts.removed += state
            .store
            .source_delete_documents(ws, source, chunk, now_millis())
            .await?;
    }
    if !listing.complete {
        report.counts.warnings += 1;
        report.problem(
            "part of the source could not be listed: its documents are out of search until it can be"
                .into(),
        );
    }
    state.search.sync_after_write(state, ws).await;
    Ok(())
}

/// After each write: a connector disconnected meanwhile has its source's rows removed again
/// (the disconnect's own removal may have run before this write).
async fn still_connected(state: &AppState, c: &ConnectorRow) -> Result<(), SyncError> {
    if state
        .store
        .connector(c.workspace_id, &c.id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    state
        .store
        .source_delete_all(c.workspace_id, &c.source, now_millis())
        .await?;
    state.search.sync_after_write(state, c.workspace_id).await;
    Err(SyncError::Disconnected)
}

/// `s` cut to at most `max` characters (`chars`) or bytes, at a character boundary.
fn cut(s: &str, max: usize, chars: bool) -> String {
    if chars {
        s.chars().take(max).collect()
    } else if s.len() <= max {
        s.to_string()
    } else {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    }
}
