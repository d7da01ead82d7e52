//! The answering side of two-server overlap: what the `/peer/v1` routes do when a partner
//! server calls (`docs/overlap-protocol.md` §6). Every request but the acceptance is signed with
//! the partnership's link key and checked here before anything else; the runs and PSI sessions
//! served live in memory only ([`super::served`]). Each step is audited in the workspace.

use super::link;
use super::served::{self, Session};
use super::{AcceptAnswer, AcceptRequest, RunPlan};
use crate::audit;
use crate::error::{AppError, AppResult};
use crate::partnerships::{Lifecycle, PartnershipState};
use crate::state::AppState;
use meshwork_domain::ErrorCode;
use meshwork_overlap::RunId;
use meshwork_store::RemotePartnershipRow;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// A request from a partner server, as far as its signature covers it.
#[derive(Debug)]
pub struct PeerCall<'a> {
    /// The partnership id in the path.
    pub partnership: &'a str,
    pub method: &'a str,
    /// The path and query, as signed.
    pub path_and_query: &'a str,
    /// The time and signature headers.
    pub time: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// The partnership a signed peer request is for, once its signature checks out; refused unless
/// active.
pub async fn verify(state: &AppState, request: &PeerCall<'_>) -> AppResult<RemotePartnershipRow> {
    let not_found = || {
        AppError::new(
            ErrorCode::PartnershipNotFound,
            format!("no partnership {:?} on this server", request.partnership),
        )
    };
    let row = state
        .store
        .remote_partnership(request.partnership)
        .await?
        .ok_or_else(not_found)?;
    let link = super::peer_of(state, &row)?.ok_or_else(not_found)?;
    link::verify(
        &link.key()?,
        request.method,
        request.path_and_query,
        request.time,
        request.signature,
        request.body,
    )?;
    if row.lifecycle() != PartnershipState::Active {
        return Err(crate::overlap::not_active());
    }
    Ok(row)
}

pub fn parse_run(hex_id: &str) -> AppResult<RunId> {
    hex::decode(hex_id)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(RunId)
        .ok_or_else(|| served::protocol_error("a run id is 16 bytes of hex"))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> AppResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::new(ErrorCode::MalformedRequest, format!("invalid body: {e}")))
}

async fn peer_audit(
    state: &AppState,
    row: &RemotePartnershipRow,
    kind: &str,
    details: serde_json::Value,
) -> AppResult<()> {
    audit::record(
        state,
        None,
        audit::Event {
            kind,
            workspace: Some(row.workspace_id),
            actor: None,
            subject: None,
            details,
        },
    )
    .await?;
    Ok(())
}

/// The partner accepted our invitation (the request carries the invitation's secret instead of
/// a signature).
pub async fn accept(state: &AppState, id: &str, body: &[u8]) -> AppResult<AcceptAnswer> {
    let req: AcceptRequest = json_body(body)?;
    let (row, answer) = super::accept_from_peer(state, id, req).await?;
    let partner_url = super::peer_of(state, &row)?.map(|l| l.url);
    peer_audit(
        state,
        &row,
        "overlap.partnership_accepted",
        json!({"partnership": row.id, "remote": true, "by": "partner", "partner_url": partner_url}),
    )
    .await?;
    Ok(answer)
}

/// The partner ended the partnership.
pub async fn revoked(state: &AppState, row: &RemotePartnershipRow) -> AppResult<()> {
    super::revoked_by_peer(state, row.clone()).await?;
    peer_audit(
        state,
        row,
        "overlap.partnership_revoked",
        json!({"partnership": row.id, "remote": true, "by": "partner"}),
    )
    .await?;
    Ok(())
}

/// The partner changed what it shares: our view of the old settings goes.
pub async fn sharing_changed(state: &AppState, row: &RemotePartnershipRow) -> AppResult<()> {
    super::partner_sharing_changed(state, row.clone()).await?;
    peer_audit(
        state,
        row,
        "overlap.partner_sharing_changed",
        json!({"partnership": row.id, "remote": true, "by": "partner"}),
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
struct RunStart {
    run: String,
}

/// The partner starts a run: what we share, loaded for its sessions.
pub async fn start_run(
    state: &AppState,
    row: &RemotePartnershipRow,
    body: &[u8],
) -> AppResult<RunPlan> {
    let start: RunStart = json_body(body)?;
    let run = parse_run(&start.run)?;
    let plan = super::serve_run(state, row, run).await?;
    let shared: Vec<&str> = plan.populations.iter().map(|p| p.id.as_str()).collect();
    peer_audit(
        state,
        row,
        "overlap.run",
        json!({"partnership": row.id, "remote": true, "requested_by": "partner", "shared": shared}),
    )
    .await?;
    Ok(plan)
}

/// The partner ends a run: its sessions' state goes.
pub fn end_run(state: &AppState, row: &RemotePartnershipRow, run: &str) -> AppResult<()> {
    state.remote.served.remove(parse_run(run)?, &row.id);
    Ok(())
}

#[derive(Deserialize)]
struct SessionStart {
    psi_run: String,
    population: String,
    mode: String,
}

/// The partner opens session `n` of a run (retries of the same opening are answered alike).
pub async fn open_session(
    state: &AppState,
    row: &RemotePartnershipRow,
    run: &str,
    n: u32,
    body: &[u8],
) -> AppResult<()> {
    let run = parse_run(run)?;
    let start: SessionStart = json_body(body)?;
    let protocol = |m: String| served::protocol_error(m);
    if n >= served::MAX_SESSIONS {
        return Err(protocol(format!(
            "session {n} is past the most a run may have"
        )));
    }
    let full = match start.mode.as_str() {
        "full" => true,
        "counts" => false,
        other => return Err(protocol(format!("mode {other:?} is not full or counts"))),
    };
    let psi_run = parse_run(&start.psi_run)?;
    let key = format!("{}/{}/{}", start.population, start.mode, start.psi_run);
    let items = state.remote.served.with(run, &row.id, |r| {
        if let Some((m, k, _)) = &r.current {
            if *m == n {
                return if *k == key {
                    Ok(None) // a retried request: the session exists
                } else {
                    Err(protocol(format!(
                        "session {n} was opened with other parameters"
                    )))
                };
            }
            if *m > n {
                return Err(protocol(format!("session {n} comes after session {m}")));
            }
        }
        r.admit_session(&start.population, full)?;
        // The previous session is over: drop its points.
        r.current = None;
        Ok(Some(r.populations[&start.population].1.clone()))
    })?;
    if let Some(items) = items {
        let _permit = state
            .remote
            .served
            .work
            .acquire()
            .await
            .map_err(AppError::internal)?;
        let started = std::time::Instant::now();
        let session = tokio::task::spawn_blocking(move || {
            Session::new(&super::psi_config(), psi_run, full, &items)
        })
        .await
        .map_err(|e| AppError::internal(format!("PSI task: {e}")))??;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "overlap session served: own set blinded"
        );
        state.remote.served.with(run, &row.id, |r| {
            r.current = Some((n, key, Arc::new(tokio::sync::Mutex::new(session))));
            Ok(())
        })?;
    }
    Ok(())
}

fn session_of(
    state: &AppState,
    row: &RemotePartnershipRow,
    run: RunId,
    n: u32,
) -> AppResult<Arc<tokio::sync::Mutex<Session>>> {
    state
        .remote
        .served
        .with(run, &row.id, |r| match &r.current {
            Some((m, _, s)) if *m == n => Ok(s.clone()),
            _ => Err(served::protocol_error(format!(
                "session {n} is not the run's current session"
            ))),
        })
}

/// A chunk of the partner's query for session `n`; the last one computes the echo (audited).
pub async fn query_chunk(
    state: &AppState,
    row: &RemotePartnershipRow,
    run_hex: &str,
    n: u32,
    body: &[u8],
) -> AppResult<()> {
    let run = parse_run(run_hex)?;
    let session = session_of(state, row, run, n)?;
    let mut guard = session.clone().lock_owned().await;
    guard.receive(body)?;
    if !guard.ready_to_respond() {
        return Ok(());
    }
    // The last chunk: compute the echo in a task of its own, holding the session's lock, so
    // that it completes even if this request is dropped (a retry then finds the echo).
    let work_state = state.clone();
    let task = tokio::spawn(async move {
        let _permit = work_state.remote.served.work.acquire().await;
        let taken = std::mem::replace(
            &mut *guard,
            Session::Failed("the echo is being computed".into()),
        );
        let started = std::time::Instant::now();
        let done = tokio::task::spawn_blocking(move || taken.respond()).await;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "overlap session served: echo computed"
        );
        *guard = match done {
            Ok(s) => s,
            Err(e) => Session::Failed(format!("the echo failed: {e}")),
        };
        match &*guard {
            Session::Failed(m) => Err(m.clone()),
            s => Ok((s.is_full(), s.echo().map(|e| e.total_points()).unwrap_or(0))),
        }
    });
    let (full, points) = task
        .await
        .map_err(|e| AppError::internal(format!("PSI task: {e}")))?
        .map_err(served::protocol_error)?;
    let population = state.remote.served.with(run, &row.id, |r| {
        Ok(r.current
            .as_ref()
            .and_then(|(_, k, _)| k.split('/').next().map(str::to_string))
            .unwrap_or_default())
    })?;
    // Each session is audited with what the partner asked: the population, the mode and the
    // size of its (padded) query.
    peer_audit(
        state,
        row,
        "overlap.session",
        json!({"partnership": row.id, "run": run_hex, "session": n, "population": population,
               "mode": if full { "full" } else { "counts" }, "query_points": points}),
    )
    .await?;
    Ok(())
}

/// A chunk of one of session `n`'s messages to the partner: `points` or `echo`.
pub async fn message_chunk(
    state: &AppState,
    row: &RemotePartnershipRow,
    run: &str,
    n: u32,
    kind: &str,
    chunk: u32,
) -> AppResult<Vec<u8>> {
    let session = session_of(state, row, parse_run(run)?, n)?;
    let guard = session.lock().await;
    let out = match kind {
        "points" => guard.own_points()?,
        "echo" => guard.echo()?,
        _ => {
            return Err(AppError::new(
                ErrorCode::RouteNotFound,
                "a session has `points` and `echo` messages",
            ))
        }
    };
    let bytes = out.chunk(chunk).ok_or_else(|| {
        served::protocol_error(format!(
            "chunk {chunk} is past the end of the {kind} message ({} chunks)",
            out.total_chunks()
        ))
    })?;
    Ok(bytes.to_vec())
}
