//! Partner overlap with a workspace on another Meshwork server (PartnerMesh across servers,
//! DESIGN.md decision 7): private set intersection over HTTPS, so that neither server ever
//! holds the other's identifiers, raw or hashed.
//!
//! - **Linking** ([`link`]): one side creates an invitation, the other pastes it into its own
//!   server, which accepts it over HTTPS and hands over a fresh link key. Both sides opted in;
//!   either revokes at once (and tells the other server, which stops serving runs).
//! - **A run** is driven by the side that wants its view (the *requester*); the partner's
//!   server answers (the *responder*, [`responder`], its sessions in [`served`]). The responder names the populations it
//!   shares and at which level. Then, per session, the two run the ECDH-PSI of
//!   `meshwork_overlap::psi` with fresh secrets, the requester as initiator:
//!   - a partner population shared **with indicators**: one full session, the requester's
//!     identifiers (all its populations) against the population's; the requester learns which
//!     of its own identifiers the partner has there;
//!   - a partner population shared **as counts**: one counts-only session per population of
//!     the requester; it learns only how many identifiers the two have in common.
//!
//!   The requester never sends the protocol's last message, so the responder learns nothing but
//!   the padded size of each query. Each side runs its own requests, under its partner's
//!   choices: what A shares decides what B can learn, and the other way round.
//! - **What is stored**: the requester's view (counts and its own records), sealed with its
//!   workspace key, only while the partnership is active at the version the run started from.
//!   Points, secrets and identifiers stay in memory for the run.
//!
//! Match-only lists keep only pseudonyms under this server's key, which another server cannot
//! match: they take part in same-server overlap only. `docs/overlap-protocol.md` has the
//! protocol and its security argument; `docs/overlap.md` the product rules.

pub mod link;
pub mod responder;
pub mod served;

use crate::error::{AppError, AppResult};
use crate::overlap::{
    self, bits, populations, record_elements, MatrixCell, OverlapRecord, Population,
    PopulationSpec, RecordElement, ShareLevel, SharedPopulation, SideSettings, SideView,
    StoredView, MAX_POPULATIONS,
};
use crate::partnerships::{end_state, Lifecycle, PartnershipState};
use crate::state::{now_millis, AppState};
use link::{Invitation, PeerClient, PeerLink, PeerMethod, PeerRefusal, PeerTransport};
use meshwork_domain::{ErrorCode, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_overlap::psi::{CountsOnly, Full, Initiator, PsiConfig, PsiMode};
use meshwork_overlap::{Identifier, RunId};
use meshwork_store::RemotePartnershipRow;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use served::Served;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Most identifiers one side puts into a session (a population of 2^20 records with a few
/// identifiers each); both servers use the same cap.
pub const MAX_SET: usize = 1 << 22;

pub fn psi_config() -> PsiConfig {
    PsiConfig::new(MAX_SET)
}

/// This process's share of two-server overlap: the client, the runs it serves, and the
/// progress of the runs it drives.
#[derive(Debug)]
pub struct RemoteState {
    pub client: PeerClient,
    pub served: Served,
    progress: Mutex<HashMap<String, RunProgress>>,
}

impl RemoteState {
    pub fn new(
        config: &meshwork_config::Config,
        transport: std::sync::Arc<dyn PeerTransport>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: PeerClient::new(config, transport),
            served: Served::default(),
            progress: Mutex::new(HashMap::new()),
        })
    }

    pub fn progress(&self, partnership: &str) -> Option<RunProgress> {
        self.progress
            .lock()
            .expect("progress lock")
            .get(partnership)
            .cloned()
    }

    fn update(&self, partnership: &str, f: impl FnOnce(&mut RunProgress)) {
        if let Some(p) = self
            .progress
            .lock()
            .expect("progress lock")
            .get_mut(partnership)
        {
            f(p)
        }
    }

    /// Marks a run as started, unless one is already running for the partnership.
    fn begin(&self, partnership: &str) -> AppResult<()> {
        let mut all = self.progress.lock().expect("progress lock");
        if let Some(p) = all.get(partnership) {
            if p.state == RunState::Running {
                return Err(AppError::new(
                    ErrorCode::ConcurrentChange,
                    "a run of this partnership is in progress; follow it in the overlap view",
                ));
            }
        }
        all.insert(
            partnership.to_string(),
            RunProgress {
                state: RunState::Running,
                started_at: now_millis(),
                finished_at: None,
                sessions_total: 0,
                sessions_done: 0,
                stored: false,
                error: None,
                bytes_sent: 0,
                bytes_received: 0,
            },
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Done,
    Failed,
}

/// Where the latest run of a partnership stands on this server.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunProgress {
    pub state: RunState,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// PSI sessions the run needs (one per partner population shared with indicators, one per
    /// pair of your population and a partner population shared as counts).
    pub sessions_total: u32,
    pub sessions_done: u32,
    /// Whether the view was kept (false when the partnership changed during the run).
    pub stored: bool,
    /// Why the run failed; nothing of it was kept.
    pub error: Option<String>,
    /// Bytes of request and answer bodies this server sent to and received from the partner's.
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A partnership with another server as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemotePartnershipView {
    pub id: String,
    /// `pending` (the invitation awaits acceptance), `active`, `revoked` or `declined`.
    pub state: String,
    pub invited_by_us: bool,
    /// The partner server's address, once linked.
    pub partner_url: Option<String>,
    /// The partner workspace's name as it gave it, once linked.
    pub partner_name: String,
    /// What this workspace shares.
    pub ours: SideSettings,
    /// When a pending invitation stops working.
    pub invitation_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn settings_of(row: &RemotePartnershipRow) -> AppResult<SideSettings> {
    serde_json::from_str(&row.settings)
        .map_err(|e| AppError::internal(format!("remote partnership {} settings: {e}", row.id)))
}

fn aad<'a>(scope: &'a str, id: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        scope,
        record: id,
        field,
    }
}

/// The partner's side of the link (absent while an invitation is pending).
pub fn peer_of(state: &AppState, row: &RemotePartnershipRow) -> AppResult<Option<PeerLink>> {
    let Some(sealed) = &row.peer_sealed else {
        return Ok(None);
    };
    let scope = row.workspace_id.to_string();
    let plain = state
        .workspace_key(row.workspace_id)?
        .open(aad(&scope, &row.id, "peer"), sealed)?;
    Ok(Some(serde_json::from_slice(&plain).map_err(|e| {
        AppError::internal(format!("remote partnership {} link: {e}", row.id))
    })?))
}

fn seal_peer(state: &AppState, ws: WorkspaceId, id: &str, link: &PeerLink) -> AppResult<Vec<u8>> {
    let scope = ws.to_string();
    let bytes = serde_json::to_vec(link).map_err(AppError::internal)?;
    Ok(state
        .workspace_key(ws)?
        .seal(aad(&scope, id, "peer"), &bytes))
}

pub fn describe(state: &AppState, row: &RemotePartnershipRow) -> AppResult<RemotePartnershipView> {
    let link = peer_of(state, row)?;
    Ok(RemotePartnershipView {
        id: row.id.clone(),
        state: row.state.clone(),
        invited_by_us: row.role == "inviter",
        partner_url: link.as_ref().map(|l| l.url.clone()),
        partner_name: link.map(|l| l.name).unwrap_or_default(),
        ours: settings_of(row)?,
        invitation_expires_at: (row.lifecycle() == PartnershipState::Pending)
            .then_some(row.invite_expires_at)
            .flatten(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The partnership `id` of workspace `ws`.
pub async fn find(state: &AppState, ws: WorkspaceId, id: &str) -> AppResult<RemotePartnershipRow> {
    match state.store.remote_partnership(id).await? {
        Some(row) if row.workspace_id == ws => Ok(row),
        _ => Err(AppError::new(
            ErrorCode::PartnershipNotFound,
            format!("no partnership {id:?} with another server in this workspace"),
        )),
    }
}

/// Applies a change to a row, guarded by its version.
pub async fn update(
    state: &AppState,
    mut row: RemotePartnershipRow,
    change: impl FnOnce(&mut RemotePartnershipRow),
) -> AppResult<RemotePartnershipRow> {
    let expected = row.version;
    change(&mut row);
    row.version = expected + 1;
    row.updated_at = now_millis();
    if !state
        .store
        .remote_partnership_update(&row, expected)
        .await?
    {
        return Err(AppError::new(
            ErrorCode::ConcurrentChange,
            "the partnership changed meanwhile; reload it and retry",
        ));
    }
    Ok(row)
}

/// This server's address as partners reach it, which must be https://.
fn own_url(state: &AppState) -> AppResult<String> {
    let url = state.config.public_url.trim_end_matches('/').to_string();
    link::check_peer_url(&url).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidField,
            format!("this server's public_url: {e}; set public_url to the https:// address partners reach this server at"),
        )
    })?;
    Ok(url)
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

use crate::workspaces::workspace_name;

/// Creates a pending partnership and its invitation (shown once; only its hash is kept).
pub async fn invite(
    state: &AppState,
    ws: WorkspaceId,
) -> AppResult<(RemotePartnershipRow, String)> {
    let url = own_url(state)?;
    let now = now_millis();
    let id = uuid::Uuid::now_v7().to_string();
    let invitation = Invitation {
        url,
        partnership: id.clone(),
        secret: random_hex(),
    };
    let row = RemotePartnershipRow {
        id,
        workspace_id: ws,
        role: "inviter".into(),
        state: PartnershipState::Pending.as_str().into(),
        invite_hash: Some(invitation.secret_hash()),
        invite_expires_at: Some(now + i64::from(state.config.overlap.invitation_days) * 86_400_000),
        peer_sealed: None,
        settings: serde_json::to_string(&SideSettings::default()).map_err(AppError::internal)?,
        view_sealed: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state.store.remote_partnership_create(&row).await?;
    Ok((row, invitation.encode()))
}

/// What the accepting server sends the inviting one.
#[derive(Serialize, Deserialize)]
pub struct AcceptRequest {
    pub secret: String,
    pub link_key: String,
    pub url: String,
    pub partnership: String,
    pub name: String,
}

impl std::fmt::Debug for AcceptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptRequest")
            .field("url", &self.url)
            .field("partnership", &self.partnership)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptAnswer {
    pub name: String,
}

/// Accepts an invitation from another server: hands it a fresh link key and records the link.
pub async fn join(
    state: &AppState,
    ws: WorkspaceId,
    invitation: &str,
) -> AppResult<RemotePartnershipRow> {
    let inv = Invitation::decode(invitation)?;
    let url = own_url(state)?;
    if inv.url.trim_end_matches('/') == url {
        return Err(AppError::new(
            ErrorCode::InvitationInvalid,
            "field `invitation`: it comes from this server; accept it as a same-server partnership instead",
        ));
    }
    state.remote.client.check_address(&inv.url).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let link_key = random_hex();
    // This side's row first (pending), so that an acceptance the other server recorded is never
    // left without its counterpart here: if the answer is lost, this row is declined and the
    // other server learns the partnership is over at its first request.
    let link = PeerLink {
        url: inv.url.trim_end_matches('/').to_string(),
        partnership: inv.partnership.clone(),
        name: String::new(),
        link_key: link_key.clone(),
    };
    let now = now_millis();
    let row = RemotePartnershipRow {
        peer_sealed: Some(seal_peer(state, ws, &id, &link)?),
        id: id.clone(),
        workspace_id: ws,
        role: "invitee".into(),
        state: PartnershipState::Pending.as_str().into(),
        invite_hash: None,
        invite_expires_at: None,
        settings: serde_json::to_string(&SideSettings::default()).map_err(AppError::internal)?,
        view_sealed: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state.store.remote_partnership_create(&row).await?;
    let request = AcceptRequest {
        secret: inv.secret.clone(),
        link_key,
        url,
        partnership: id,
        name: workspace_name(state, ws).await?,
    };
    let body = serde_json::to_vec(&request).map_err(AppError::internal)?;
    let path = format!("/peer/v1/partnerships/{}/accept", inv.partnership);
    let answer = state
        .remote
        .client
        .send(
            &inv.url,
            None,
            PeerMethod::Post,
            &path,
            body,
            "application/json",
        )
        .await;
    let outcome = match answer {
        Ok(Ok(bytes)) => serde_json::from_slice::<AcceptAnswer>(&bytes).map_err(|_| {
            AppError::new(
                ErrorCode::PeerUnavailable,
                format!("the server at {} is not a Meshwork server, or a different version: its answer to the acceptance is not understood", inv.url),
            )
        }),
        Ok(Err(r)) if r.code == "invitation_invalid" => Err(AppError::new(
            ErrorCode::InvitationInvalid,
            format!("field `invitation`: the inviting server says: {}", r.message),
        )),
        Ok(Err(r)) => Err(refusal_error(r)),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(answer) => {
            let link = PeerLink {
                name: answer.name.chars().take(200).collect(),
                ..link
            };
            let sealed = seal_peer(state, ws, &row.id, &link)?;
            update(state, row, |r| {
                r.set_lifecycle(PartnershipState::Active);
                r.peer_sealed = Some(sealed);
            })
            .await
        }
        Err(e) => {
            update(state, row, |r| r.set_lifecycle(PartnershipState::Declined)).await?;
            Err(e)
        }
    }
}

/// The inviting server's side of an acceptance: checks the invitation's secret (one use, before
/// it expires) and records the link.
pub async fn accept_from_peer(
    state: &AppState,
    id: &str,
    req: AcceptRequest,
) -> AppResult<(RemotePartnershipRow, AcceptAnswer)> {
    let refuse = || {
        AppError::new(
            ErrorCode::InvitationInvalid,
            "the invitation is unknown, already used, expired or withdrawn; ask for a new one",
        )
    };
    let row = state
        .store
        .remote_partnership(id)
        .await?
        .ok_or_else(refuse)?;
    // A retried acceptance (its answer was lost): the same link key, already recorded.
    if row.lifecycle() == PartnershipState::Active && row.role == "inviter" {
        if let Some(link) = peer_of(state, &row)? {
            let same: bool =
                subtle::ConstantTimeEq::ct_eq(link.link_key.as_bytes(), req.link_key.as_bytes())
                    .into();
            if same && link.partnership == req.partnership {
                let name = workspace_name(state, row.workspace_id).await?;
                return Ok((row, AcceptAnswer { name }));
            }
        }
    }
    let hash = link::secret_hash(&req.secret);
    let matches = row
        .invite_hash
        .as_deref()
        .is_some_and(|h| subtle::ConstantTimeEq::ct_eq(h, hash.as_slice()).into());
    let live = row.lifecycle() == PartnershipState::Pending
        && row.role == "inviter"
        && row.invite_expires_at.is_some_and(|t| t > now_millis());
    if !matches || !live {
        return Err(refuse());
    }
    link::check_peer_url(&req.url)
        .map_err(|e| AppError::new(ErrorCode::InvalidField, format!("field `url`: {e}")))?;
    state.remote.client.check_address(&req.url).await?;
    if hex::decode(&req.link_key).map(|k| k.len()) != Ok(32)
        || uuid::Uuid::parse_str(&req.partnership).is_err()
    {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            "field `link_key` or `partnership` is malformed",
        ));
    }
    let link = PeerLink {
        url: req.url.trim_end_matches('/').to_string(),
        partnership: req.partnership,
        name: req.name.chars().take(200).collect(),
        link_key: req.link_key,
    };
    let sealed = seal_peer(state, row.workspace_id, &row.id, &link)?;
    let ws = row.workspace_id;
    let row = update(state, row, |r| {
        r.set_lifecycle(PartnershipState::Active);
        r.invite_hash = None;
        r.peer_sealed = Some(sealed);
    })
    .await
    // A concurrent acceptance with the same secret: only one wins.
    .map_err(|_| refuse())?;
    Ok((
        row,
        AcceptAnswer {
            name: workspace_name(state, ws).await?,
        },
    ))
}

/// Ends a partnership here at once (active → revoked, pending → declined), deleting the stored
/// view, and tells the partner's server. Answers the row and whether the partner was told.
pub async fn revoke(
    state: &AppState,
    ws: WorkspaceId,
    id: &str,
) -> AppResult<(RemotePartnershipRow, bool)> {
    let mut attempts = 0;
    let row = loop {
        let row = find(state, ws, id).await?;
        let next = end_state(&row.state)?;
        match update(state, row, |r| {
            r.set_lifecycle(next);
            r.invite_hash = None;
            r.view_sealed = None;
        })
        .await
        {
            Ok(row) => break row,
            Err(e) if e.code == ErrorCode::ConcurrentChange && attempts < 10 => attempts += 1,
            Err(e) => return Err(e),
        }
    };
    state.remote.served.forget(&row.id);
    let mut told = false;
    if let Some(link) = peer_of(state, &row)? {
        let path = format!("/peer/v1/partnerships/{}/revoke", link.partnership);
        told = matches!(
            state
                .remote
                .client
                .send(
                    &link.url,
                    Some(&link.key()?),
                    PeerMethod::Post,
                    &path,
                    Vec::new(),
                    "application/json"
                )
                .await,
            Ok(Ok(_))
        );
    }
    Ok((row, told))
}

/// The partner's server says the partnership is over: end it here too.
pub async fn revoked_by_peer(state: &AppState, row: RemotePartnershipRow) -> AppResult<()> {
    state.remote.served.forget(&row.id);
    if row.lifecycle() != PartnershipState::Active {
        return Ok(());
    }
    let mut row = row;
    for _ in 0..10 {
        match update(state, row.clone(), |r| {
            r.set_lifecycle(PartnershipState::Revoked);
            r.view_sealed = None;
        })
        .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code == ErrorCode::ConcurrentChange => {
                match state.store.remote_partnership(&row.id).await? {
                    Some(r) if r.lifecycle() == PartnershipState::Active => row = r,
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(AppError::new(
        ErrorCode::ConcurrentChange,
        "the partnership kept changing; retry the revocation",
    ))
}

/// The partner's server changed what it shares: drop this side's view, which may name records
/// the partner no longer shares (the next run computes a new one).
pub async fn partner_sharing_changed(state: &AppState, row: RemotePartnershipRow) -> AppResult<()> {
    let mut row = row;
    for _ in 0..10 {
        if row.view_sealed.is_none() {
            return Ok(());
        }
        match update(state, row.clone(), |r| r.view_sealed = None).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == ErrorCode::ConcurrentChange => {
                row = state
                    .store
                    .remote_partnership(&row.id)
                    .await?
                    .ok_or_else(overlap::not_active)?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(AppError::new(
        ErrorCode::ConcurrentChange,
        "the partnership kept changing; retry",
    ))
}

/// Tells the partner's server that this side changed what it shares (answers whether it was
/// told); a served run of the old settings is dropped first.
pub async fn announce_sharing(state: &AppState, row: &RemotePartnershipRow) -> AppResult<bool> {
    state.remote.served.forget(&row.id);
    let Some(link) = peer_of(state, row)? else {
        return Ok(false);
    };
    if row.lifecycle() != PartnershipState::Active {
        return Ok(false);
    }
    let path = format!("/peer/v1/partnerships/{}/sharing-changed", link.partnership);
    Ok(matches!(
        state
            .remote
            .client
            .send(
                &link.url,
                Some(&link.key()?),
                PeerMethod::Post,
                &path,
                Vec::new(),
                "application/json"
            )
            .await,
        Ok(Ok(_))
    ))
}

/// Maps a partner server's refusal to an answer for the local caller.
fn refusal_error(r: PeerRefusal) -> AppError {
    let said = if r.message.is_empty() {
        format!("{} {}", r.status, r.code)
    } else {
        r.message.clone()
    };
    match r.code.as_str() {
        "partnership_not_active" | "partnership_not_found" => AppError::new(
            ErrorCode::PartnershipNotActive,
            format!("the partner's server says the partnership is over ({said}); nothing more is shared"),
        ),
        "rate_limited" => AppError::new(ErrorCode::RateLimited, format!("the partner's server: {said}")),
        "overlap_protocol_error" => AppError::new(ErrorCode::OverlapProtocolError, format!("the partner's server: {said}")),
        "peer_run_not_found" => AppError::new(ErrorCode::PeerRunNotFound, format!("the partner's server: {said}")),
        _ => AppError::new(
            ErrorCode::PeerUnavailable,
            format!("the partner's server refused the request ({} {}): {said}", r.status, r.code),
        ),
    }
}

/// What the responder answers when a run starts: the populations it shares with the requester.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunPlan {
    pub populations: Vec<SharedPopulation>,
    pub threshold: u32,
}

/// One signed call to the partner, with its refusal mapped.
/// `run` names the partnership whose run progress counts the bytes.
async fn call(
    state: &AppState,
    run: Option<&str>,
    link: &PeerLink,
    method: PeerMethod,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
) -> AppResult<Vec<u8>> {
    let key = link.key()?;
    let sent = body.len() as u64;
    let answer = state
        .remote
        .client
        .send(&link.url, Some(&key), method, path, body, content_type)
        .await?;
    if let Some(run) = run {
        let received = answer.as_ref().map_or(0, |b| b.len() as u64);
        state.remote.update(run, |p| {
            p.bytes_sent += sent;
            p.bytes_received += received;
        });
    }
    answer.map_err(refusal_error)
}

async fn call_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    run: Option<&str>,
    link: &PeerLink,
    path: &str,
    body: &serde_json::Value,
) -> AppResult<T> {
    let bytes = call(
        state,
        run,
        link,
        PeerMethod::Post,
        path,
        body.to_string().into_bytes(),
        "application/json",
    )
    .await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        AppError::new(
            ErrorCode::OverlapProtocolError,
            format!("the partner's server sent an answer this server does not understand ({e}); the run is abandoned"),
        )
    })
}

/// Starts a run in the background (or waits for it when `wait`), answering its progress.
pub async fn start_run(
    state: &AppState,
    row: RemotePartnershipRow,
    wait: bool,
) -> AppResult<RunProgress> {
    if row.lifecycle() != PartnershipState::Active {
        return Err(overlap::not_active());
    }
    state.remote.begin(&row.id)?;
    let id = row.id.clone();
    let task = {
        let state = state.clone();
        tokio::spawn(async move {
            let id = row.id.clone();
            // The run in a task of its own: a panic in it ends as a failed run, not as a run
            // that stays `running` for good.
            let inner = {
                let state = state.clone();
                tokio::spawn(async move {
                    tokio::time::timeout(RUN_DEADLINE, drive(&state, row))
                        .await
                        .unwrap_or_else(|_| {
                            Err(AppError::new(
                                ErrorCode::PeerUnavailable,
                                "the run took more than six hours and was abandoned",
                            ))
                        })
                })
            };
            let outcome = inner
                .await
                .unwrap_or_else(|e| Err(AppError::internal(format!("overlap run task: {e}"))));
            if let Err(e) = &outcome {
                if e.code == ErrorCode::PartnershipNotActive {
                    if let Ok(Some(current)) = state.store.remote_partnership(&id).await {
                        let _ = revoked_by_peer(&state, current).await;
                    }
                }
            }
            state.remote.update(&id, |p| {
                p.finished_at = Some(now_millis());
                match outcome {
                    Ok(stored) => {
                        p.state = RunState::Done;
                        p.stored = stored;
                    }
                    Err(e) => {
                        p.state = RunState::Failed;
                        p.error = Some(e.message);
                    }
                }
            });
        })
    };
    if wait {
        task.await
            .map_err(|e| AppError::internal(format!("overlap run task: {e}")))?;
    }
    state
        .remote
        .progress(&id)
        .ok_or_else(|| AppError::internal("run progress vanished"))
}

/// A run is abandoned after this long.
const RUN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// One planned PSI session.
struct Planned {
    /// Index into the plan's populations.
    q: usize,
    /// For a counts session: which of the requester's populations (by position).
    p: Option<usize>,
}

/// Runs every session of a run against the partner and stores the view; answers whether it
/// was kept.
async fn drive(state: &AppState, row: RemotePartnershipRow) -> AppResult<bool> {
    let link = peer_of(state, &row)?.ok_or_else(overlap::not_active)?;
    let ws = row.workspace_id;
    let mine = settings_of(&row)?;
    let pops: Vec<Population> = populations(state, ws)
        .await?
        .into_iter()
        .filter(|p| matches!(p.spec, PopulationSpec::Filter { .. }))
        .take(MAX_POPULATIONS)
        .collect();
    let run = RunId::random();
    let base = format!("/peer/v1/partnerships/{}/runs", link.partnership);
    let start = serde_json::json!({"run": hex::encode(run.as_bytes())});
    // This side's records load while the partner's server loads its own for the plan.
    let started = std::time::Instant::now();
    let (elements, plan) = tokio::join!(
        record_elements(state, ws, &pops),
        call_json::<RunPlan>(state, Some(&row.id), &link, &base, &start,)
    );
    let (elements, plan) = (elements?, plan?);
    tracing::debug!(
        records = elements.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "overlap run: records loaded, the partner's plan in"
    );
    if plan.populations.len() > MAX_POPULATIONS
        || !(1..=1000).contains(&plan.threshold)
        || plan.populations.iter().any(|q| q.level == ShareLevel::None)
    {
        return Err(AppError::new(
            ErrorCode::OverlapProtocolError,
            "the partner's server sent a plan outside the protocol's limits; the run is abandoned",
        ));
    }
    let run_path = format!("{base}/{}", hex::encode(run.as_bytes()));
    let result = sessions(state, &row, &link, &run_path, &pops, &elements, &plan).await;
    // Tell the responder to drop the run, whatever happened.
    let _ = call(
        state,
        Some(&row.id),
        &link,
        PeerMethod::Delete,
        &run_path,
        Vec::new(),
        "application/json",
    )
    .await;
    let (matched, counts) = result?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "overlap run: sessions done"
    );
    let view = build_view(
        &pops,
        &mine,
        &plan,
        &elements,
        &matched,
        &counts,
        now_millis(),
    );
    store_view(state, &row, view).await
}

type Counts = HashMap<(usize, usize), u64>;

#[allow(clippy::too_many_arguments)]
async fn sessions(
    state: &AppState,
    row: &RemotePartnershipRow,
    link: &PeerLink,
    run_path: &str,
    pops: &[Population],
    elements: &[RecordElement],
    plan: &RunPlan,
) -> AppResult<(Vec<u64>, Counts)> {
    let mut planned = Vec::new();
    for (q, pop) in plan.populations.iter().enumerate() {
        match pop.level {
            ShareLevel::Indicators => planned.push(Planned { q, p: None }),
            ShareLevel::Counts => {
                planned.extend((0..pops.len()).map(|p| Planned { q, p: Some(p) }))
            }
            ShareLevel::None => {}
        }
    }
    if planned.len() > served::MAX_SESSIONS as usize {
        return Err(AppError::internal("more sessions than the protocol allows"));
    }
    state
        .remote
        .update(&row.id, |p| p.sessions_total = planned.len() as u32);
    // Every identifier of the requester, and the element each belongs to.
    let mut all = Vec::new();
    let mut owner = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        for id in &e.identifiers {
            all.push(id.clone());
            owner.push(i);
        }
    }
    let all = Arc::new(all);
    let mut matched = vec![0u64; elements.len()];
    let mut counts = Counts::new();
    for (n, s) in planned.iter().enumerate() {
        // A revocation here, mid-run, abandons the run.
        match state.store.remote_partnership(&row.id).await? {
            Some(r) if r.lifecycle() == PartnershipState::Active && r.version == row.version => {}
            _ => {
                return Err(AppError::new(
                    ErrorCode::ConcurrentChange,
                    "the partnership changed during the run (revoked, or its sharing changed); the run is abandoned and nothing was kept",
                ))
            }
        }
        let q = &plan.populations[s.q];
        let psi_run = RunId::random();
        let session_path = format!("{run_path}/sessions/{n}");
        let start = serde_json::json!({
            "psi_run": hex::encode(psi_run.as_bytes()),
            "population": q.id,
            "mode": if s.p.is_none() { "full" } else { "counts" },
        });
        let open = Opening {
            path: &session_path,
            start: &start,
            psi_run,
        };
        match s.p {
            None => {
                let outcome = session::<Full>(state, &row.id, link, open, all.clone()).await?;
                for i in outcome.shared {
                    matched[owner[i]] |= 1 << s.q;
                }
            }
            Some(p) => {
                let items: Vec<Identifier> = elements
                    .iter()
                    .filter(|e| e.populations & (1 << p) != 0)
                    .flat_map(|e| e.identifiers.iter().cloned())
                    .collect();
                let outcome =
                    session::<CountsOnly>(state, &row.id, link, open, Arc::new(items)).await?;
                counts.insert((p, s.q), outcome.count as u64);
            }
        }
        state.remote.update(&row.id, |p| p.sessions_done += 1);
    }
    Ok((matched, counts))
}

/// Where and how a session is opened on the partner's server.
#[derive(Debug, Clone, Copy)]
struct Opening<'a> {
    path: &'a str,
    start: &'a serde_json::Value,
    psi_run: RunId,
}

/// One PSI session as the initiator: query out, the partner's points and echo in, the outcome.
/// The protocol's last message is not sent: the partner learns nothing from the session.
async fn session<M: PsiMode>(
    state: &AppState,
    run: &str,
    link: &PeerLink,
    open: Opening<'_>,
    items: Arc<Vec<Identifier>>,
) -> AppResult<M::Outcome>
where
    Initiator<M>: Send,
{
    let join = |e: tokio::task::JoinError| AppError::internal(format!("PSI task: {e}"));
    let (path, psi_run) = (open.path, open.psi_run);
    // The partner blinds its set when the session opens; ours is blinded meanwhile.
    let (opened, init) = tokio::join!(
        call_json::<serde_json::Value>(state, Some(run), link, path, open.start),
        tokio::task::spawn_blocking(move || Initiator::<M>::new(&psi_config(), psi_run, &items))
    );
    opened?;
    let mut init = init.map_err(join)?.map_err(served::protocol_error)?;
    let phase = std::time::Instant::now();
    let lap = |what: &str| {
        tracing::debug!(
            elapsed_ms = phase.elapsed().as_millis() as u64,
            "overlap session: {what}"
        )
    };
    lap("both sets blinded");
    // The partner's points (message 2) first: it computed them when the session opened.
    fetch(state, run, link, path, "points", &mut init).await?;
    lap("the partner's points in");
    // Re-blind them here while the partner computes its echo of our query, which it does on
    // receiving the query's last chunk: the two sides' largest steps overlap.
    let query = init.query().clone();
    let mut reblinding = tokio::task::spawn_blocking(move || {
        let result = init.reblind_peer();
        (init, result)
    });
    for i in 0..query.total_chunks() {
        let chunk = query.chunk(i).expect("chunk index in range");
        let sent = call(
            state,
            Some(run),
            link,
            PeerMethod::Put,
            &format!("{path}/query/{i}"),
            chunk,
            "application/octet-stream",
        )
        .await;
        if let Err(e) = sent {
            // Let the re-blinding end before the error drops the run.
            let _ = (&mut reblinding).await;
            return Err(e);
        }
    }
    drop(query);
    lap("query sent, the partner's echo computed");
    let (mut init, reblinded) = reblinding.await.map_err(join)?;
    reblinded.map_err(served::protocol_error)?;
    lap("the partner's points re-blinded");
    fetch(state, run, link, path, "echo", &mut init).await?;
    lap("the echo in");
    let (outcome, _last) = tokio::task::spawn_blocking(move || init.finish())
        .await
        .map_err(join)?
        .map_err(served::protocol_error)?;
    lap("compared");
    Ok(outcome)
}

/// Fetches every chunk of the partner's `kind` message (`points` or `echo`) into `init`.
async fn fetch<M: PsiMode>(
    state: &AppState,
    run: &str,
    link: &PeerLink,
    path: &str,
    kind: &str,
    init: &mut Initiator<M>,
) -> AppResult<()> {
    let (mut i, mut total) = (0u32, 1u32);
    while i < total {
        let bytes = call(
            state,
            Some(run),
            link,
            PeerMethod::Get,
            &format!("{path}/{kind}/{i}"),
            Vec::new(),
            "application/octet-stream",
        )
        .await?;
        let receipt = init.receive(&bytes).map_err(served::protocol_error)?;
        total = receipt.total_chunks;
        i += 1;
    }
    Ok(())
}

/// The requester's view from its sessions' outcomes: `matched[e]` holds the plan populations
/// (by position) a full session found element `e` in, `counts[(p, q)]` the counts sessions.
/// Only populations the partner shares as indicators can be named on a record: bits of any
/// other population in `matched` are ignored, whatever produced them.
pub(crate) fn build_view(
    pops: &[Population],
    mine: &SideSettings,
    plan: &RunPlan,
    elements: &[RecordElement],
    matched: &[u64],
    counts: &Counts,
    computed_at: i64,
) -> SideView {
    let threshold = plan.threshold;
    let indicators: u64 = plan
        .populations
        .iter()
        .enumerate()
        .filter(|(_, q)| q.level == ShareLevel::Indicators)
        .map(|(y, _)| 1u64 << y)
        .sum();
    let matched: Vec<u64> = matched.iter().map(|m| m & indicators).collect();
    let matched = &matched[..];
    let mut matrix = Vec::new();
    for (x, p) in pops.iter().enumerate() {
        for (y, q) in plan.populations.iter().enumerate() {
            let c = match q.level {
                ShareLevel::Indicators => elements
                    .iter()
                    .zip(matched)
                    .filter(|(e, m)| e.populations & (1 << x) != 0 && *m & (1 << y) != 0)
                    .count() as u64,
                _ => counts.get(&(x, y)).copied().unwrap_or(0),
            };
            let (count, fewer_than) = if c < u64::from(threshold) {
                (None, Some(threshold))
            } else {
                (Some(c), None)
            };
            matrix.push(MatrixCell {
                population: p.id.clone(),
                partner_population: q.id.clone(),
                count,
                fewer_than,
            });
        }
    }
    let records = elements
        .iter()
        .zip(matched)
        .filter(|(_, m)| **m != 0)
        .map(|(e, m)| OverlapRecord {
            id: e.id.to_string(),
            kind: e.kind.as_str().to_string(),
            populations: bits(e.populations, pops),
            partner_populations: plan
                .populations
                .iter()
                .enumerate()
                .filter(|(y, _)| m & (1 << y) != 0)
                .map(|(_, q)| q.id.clone())
                .collect(),
        })
        .collect();
    SideView {
        computed_at,
        populations: pops
            .iter()
            .map(|p| SharedPopulation {
                id: p.id.clone(),
                name: p.name.clone(),
                level: mine.shares.get(&p.id).copied().unwrap_or(ShareLevel::None),
            })
            .collect(),
        partner_populations: plan.populations.clone(),
        matrix,
        records,
        basis: Default::default(),
    }
}

async fn store_view(
    state: &AppState,
    row: &RemotePartnershipRow,
    view: SideView,
) -> AppResult<bool> {
    let scope = row.workspace_id.to_string();
    let stored = StoredView {
        basis: view.basis.clone(),
        view,
    };
    let bytes = serde_json::to_vec(&stored).map_err(AppError::internal)?;
    let sealed = state
        .workspace_key(row.workspace_id)?
        .seal(overlap::view_aad(&scope, &row.id), &bytes);
    Ok(state
        .store
        .remote_view_put(&row.id, row.version, &sealed)
        .await?)
}

/// The view of the last run that was kept.
pub fn load_view(state: &AppState, row: &RemotePartnershipRow) -> AppResult<Option<SideView>> {
    let Some(sealed) = &row.view_sealed else {
        return Ok(None);
    };
    let scope = row.workspace_id.to_string();
    let plain = state
        .workspace_key(row.workspace_id)?
        .open(overlap::view_aad(&scope, &row.id), sealed)?;
    let stored: StoredView = serde_json::from_slice(&plain)
        .map_err(|e| AppError::internal(format!("overlap view of {}: {e}", row.id)))?;
    Ok(Some(stored.view))
}

/// The responder's answer to a run start: the populations it shares, with their identifiers
/// loaded for the run's sessions. A retried start of the same run gets the same answer.
pub async fn serve_run(
    state: &AppState,
    row: &RemotePartnershipRow,
    run: RunId,
) -> AppResult<RunPlan> {
    let served = &state.remote.served;
    if let Some(plan) = served.plan_of(run, &row.id) {
        return serde_json::from_value(plan).map_err(AppError::internal);
    }
    served.check_room(&row.id)?;
    let per_hour = state.config.overlap.peer_runs_per_hour;
    if !state
        .store
        .remote_run_admit(&row.id, now_millis(), per_hour)
        .await?
    {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            format!("this server takes at most {per_hour} runs per partnership and hour (overlap.peer_runs_per_hour); retry later"),
        ));
    }
    let ws = row.workspace_id;
    let settings = settings_of(row)?;
    let pops: Vec<Population> = populations(state, ws)
        .await?
        .into_iter()
        .filter(|p| matches!(p.spec, PopulationSpec::Filter { .. }))
        .take(MAX_POPULATIONS)
        .collect();
    let started = std::time::Instant::now();
    let elements = record_elements(state, ws, &pops).await?;
    tracing::debug!(
        records = elements.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "overlap run served: records loaded"
    );
    let mut shared = Vec::new();
    let mut items = BTreeMap::new();
    for (bit, p) in pops.iter().enumerate() {
        let level = settings
            .shares
            .get(&p.id)
            .copied()
            .unwrap_or(ShareLevel::None);
        if level == ShareLevel::None {
            continue;
        }
        let ids: Vec<Identifier> = elements
            .iter()
            .filter(|e| e.populations & (1 << bit) != 0)
            .flat_map(|e| e.identifiers.iter().cloned())
            .collect();
        if ids.len() > MAX_SET {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!(
                    "population {:?} holds more than {MAX_SET} identifiers, over what a run allows",
                    p.name
                ),
            ));
        }
        items.insert(
            p.id.clone(),
            (level == ShareLevel::Indicators, Arc::new(ids)),
        );
        shared.push(SharedPopulation {
            id: p.id.clone(),
            name: p.name.clone(),
            level,
        });
    }
    let plan = RunPlan {
        populations: shared,
        threshold: settings.threshold,
    };
    let value = serde_json::to_value(&plan).map_err(AppError::internal)?;
    served.insert(run, row.id.clone(), ws, value, items)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    //! `build_view` against the same-server `view_for` semantics, by a brute-force oracle.
    use super::*;
    use meshwork_crm::Kind;
    use meshwork_domain::RecordId;
    use proptest::prelude::*;

    fn pop(i: usize) -> Population {
        Population {
            id: format!("p{i}"),
            name: format!("P{i}"),
            spec: PopulationSpec::Filter {
                query: "type:company".into(),
            },
            builtin: false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// The oracle works on explicit sets, not bit masks, and is fed what sessions could
        /// report, including (wrongly) a match in a population shared only as counts: the view
        /// must still name only what indicator sessions allow, and count what the promise says.
        #[test]
        fn promise_pm04_a_two_server_view_holds_exactly_what_the_sessions_allow(
            n_pops in 1usize..4,
            elems in prop::collection::vec((1u64..8, any::<u8>()), 0..10),
            levels in prop::collection::vec(prop::bool::ANY, 1..4),
            raw_counts in prop::collection::vec(0u64..6, 16),
            threshold in 1u32..4,
        ) {
            use std::collections::BTreeSet;
            let pops: Vec<Population> = (0..n_pops).map(pop).collect();
            let plan = RunPlan {
                populations: levels.iter().enumerate().map(|(i, ind)| SharedPopulation {
                    id: format!("q{i}"),
                    name: format!("Q{i}"),
                    level: if *ind { ShareLevel::Indicators } else { ShareLevel::Counts },
                }).collect(),
                threshold,
            };
            let elements: Vec<RecordElement> = elems.iter().map(|(m, _)| RecordElement {
                id: RecordId::new(),
                kind: Kind::Contact,
                identifiers: vec![],
                populations: m & ((1 << n_pops) - 1),
            }).collect();
            // What the sessions reported, unmasked: bits past the plan and of counts-only
            // populations included.
            let matched: Vec<u64> = elems.iter().map(|(_, m)| u64::from(*m)).collect();
            let mut counts = Counts::new();
            for x in 0..n_pops {
                for y in 0..levels.len() {
                    counts.insert((x, y), raw_counts[x * 4 + y]);
                }
            }
            let v = build_view(&pops, &SideSettings::default(), &plan, &elements, &matched, &counts, 0);

            // The oracle, on sets: which of my populations each record is in, and which partner
            // populations shared as indicators a session found it in.
            let mine: Vec<BTreeSet<usize>> = elems.iter().map(|(m, _)| {
                (0..n_pops).filter(|x| (m >> x) % 2 == 1).collect()
            }).collect();
            let found: Vec<BTreeSet<usize>> = elems.iter().map(|(_, m)| {
                (0..levels.len()).filter(|y| levels[*y] && (u64::from(*m) >> y) % 2 == 1).collect()
            }).collect();
            let mut cells = Vec::new();
            for x in 0..n_pops {
                for (y, indicators) in levels.iter().enumerate() {
                    let c = if *indicators {
                        (0..elems.len()).filter(|e| mine[*e].contains(&x) && found[*e].contains(&y)).count() as u64
                    } else {
                        raw_counts[x * 4 + y]
                    };
                    let shown = if c >= u64::from(threshold) { (Some(c), None) } else { (None, Some(threshold)) };
                    cells.push((format!("p{x}"), format!("q{y}"), shown));
                }
            }
            let got_cells: Vec<_> = v.matrix.iter().map(|c| (c.population.clone(), c.partner_population.clone(), (c.count, c.fewer_than))).collect();
            prop_assert_eq!(got_cells, cells);
            let expected: Vec<(String, Vec<String>, Vec<String>)> = (0..elems.len())
                .filter(|e| !found[*e].is_empty())
                .map(|e| (
                    elements[e].id.to_string(),
                    mine[e].iter().map(|x| format!("p{x}")).collect(),
                    found[e].iter().map(|y| format!("q{y}")).collect(),
                ))
                .collect();
            let got: Vec<(String, Vec<String>, Vec<String>)> = v.records.iter().map(|r| (r.id.clone(), r.populations.clone(), r.partner_populations.clone())).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
