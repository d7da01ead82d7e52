//! The responder's half of two-server runs: the runs a partner server drives against this one,
//! held in memory only (points and secrets never reach the store) and dropped when finished,
//! idle for ten minutes, or the process stops.

use crate::error::{ApiError, ApiResult};
use crate::state::now_millis;
use meshwork_domain::{ErrorCode, WorkspaceId};
use meshwork_overlap::psi::{
    ChunkReceipt, CountsOnly, Full, Outgoing, PsiConfig, PsiError, Responder,
    ResponderAwaitingFinal,
};
use meshwork_overlap::{Identifier, RunId};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A run is dropped after this long without a request.
const IDLE_MS: i64 = 10 * 60 * 1000;
/// Runs served at once (each may hold a few hundred MiB of points at the largest sets).
const MAX_RUNS: usize = 4;
/// Sessions in one run: one per partner population and, for counts, per population of the
/// requester (32 × 32 at most).
pub const MAX_SESSIONS: u32 = 32 * 32 + 32;

/// One PSI session as the responder holds it.
pub enum Session {
    FullCollecting(Responder<Full>),
    CountsCollecting(Responder<CountsOnly>),
    FullEchoing(ResponderAwaitingFinal<Full>),
    CountsEchoing(ResponderAwaitingFinal<CountsOnly>),
    /// The run failed; every later request gets this message.
    Failed(String),
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Session::FullCollecting(_) | Session::CountsCollecting(_) => "Collecting",
            Session::FullEchoing(_) | Session::CountsEchoing(_) => "Echoing",
            Session::Failed(_) => "Failed",
        })
    }
}

pub fn protocol_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::OverlapProtocolError,
        format!("{e}; the run is abandoned"),
    )
}

impl Session {
    /// Creates the responder for `items` (hashes and blinds them: CPU work, run off the async
    /// threads).
    pub fn new(
        config: &PsiConfig,
        run: RunId,
        full: bool,
        items: &[Identifier],
    ) -> ApiResult<Self> {
        Ok(if full {
            Session::FullCollecting(Responder::new(config, run, items).map_err(protocol_error)?)
        } else {
            Session::CountsCollecting(Responder::new(config, run, items).map_err(protocol_error)?)
        })
    }

    pub fn is_full(&self) -> bool {
        matches!(self, Session::FullCollecting(_) | Session::FullEchoing(_))
    }

    pub fn own_points(&self) -> ApiResult<&Outgoing> {
        match self {
            Session::FullCollecting(r) => Ok(r.own_points()),
            Session::CountsCollecting(r) => Ok(r.own_points()),
            Session::FullEchoing(r) => Ok(r.own_points()),
            Session::CountsEchoing(r) => Ok(r.own_points()),
            Session::Failed(m) => Err(protocol_error(m)),
        }
    }

    pub fn echo(&self) -> ApiResult<&Outgoing> {
        match self {
            Session::FullEchoing(r) => Ok(r.echo()),
            Session::CountsEchoing(r) => Ok(r.echo()),
            Session::Failed(m) => Err(protocol_error(m)),
            _ => Err(protocol_error(
                "the echo is asked for before every query chunk arrived",
            )),
        }
    }

    /// Takes one query chunk; a late copy of a consumed chunk is ignored.
    pub fn receive(&mut self, chunk: &[u8]) -> ApiResult<Option<ChunkReceipt>> {
        let r = match self {
            Session::FullCollecting(r) => r.receive(chunk),
            Session::CountsCollecting(r) => r.receive(chunk),
            Session::FullEchoing(r) => r.receive(chunk),
            Session::CountsEchoing(r) => r.receive(chunk),
            Session::Failed(m) => return Err(protocol_error(m)),
        };
        match r {
            Ok(receipt) => Ok(Some(receipt)),
            Err(PsiError::StaleMessage { .. }) => Ok(None),
            Err(e) => {
                let message = e.to_string();
                *self = Session::Failed(message.clone());
                Err(protocol_error(message))
            }
        }
    }

    /// True once every query chunk is in and the echo is still to compute.
    pub fn ready_to_respond(&self) -> bool {
        match self {
            Session::FullCollecting(r) => r.is_ready(),
            Session::CountsCollecting(r) => r.is_ready(),
            _ => false,
        }
    }

    /// Computes the echo (CPU work: one scalar multiplication per query point).
    pub fn respond(self) -> Self {
        let failed = |e: PsiError| Session::Failed(e.to_string());
        match self {
            Session::FullCollecting(r) => r.respond().map_or_else(failed, Session::FullEchoing),
            Session::CountsCollecting(r) => r.respond().map_or_else(failed, Session::CountsEchoing),
            other => other,
        }
    }
}

/// A run this server serves as responder.
#[derive(Debug)]
pub struct ServedRun {
    pub partnership: String,
    pub workspace: WorkspaceId,
    /// The shared populations' identifiers and whether they are shared with indicators.
    pub populations: BTreeMap<String, (bool, Arc<Vec<Identifier>>)>,
    /// Session number → (what it was opened with, the session).
    pub sessions: HashMap<u32, (String, Arc<tokio::sync::Mutex<Session>>)>,
    touched: i64,
}

/// Every served run of this process.
#[derive(Debug, Default)]
pub struct Served {
    runs: Mutex<HashMap<RunId, ServedRun>>,
}

impl Served {
    pub fn insert(
        &self,
        run: RunId,
        partnership: String,
        workspace: WorkspaceId,
        populations: BTreeMap<String, (bool, Arc<Vec<Identifier>>)>,
    ) -> ApiResult<()> {
        let now = now_millis();
        let mut runs = self.runs.lock().expect("served runs lock");
        runs.retain(|_, r| now - r.touched < IDLE_MS);
        if runs.contains_key(&run) {
            return Err(protocol_error("this run id was used before"));
        }
        if runs.len() >= MAX_RUNS {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("this server is serving {MAX_RUNS} overlap runs already; retry in a few minutes"),
            ));
        }
        runs.insert(
            run,
            ServedRun {
                partnership,
                workspace,
                populations,
                sessions: HashMap::new(),
                touched: now,
            },
        );
        Ok(())
    }

    /// Calls `f` on the run, if this server serves it for `partnership`.
    pub fn with<T>(
        &self,
        run: RunId,
        partnership: &str,
        f: impl FnOnce(&mut ServedRun) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let now = now_millis();
        let mut runs = self.runs.lock().expect("served runs lock");
        match runs.get_mut(&run) {
            Some(r) if r.partnership == partnership && now - r.touched < IDLE_MS => {
                r.touched = now;
                f(r)
            }
            _ => Err(ApiError::new(
                ErrorCode::PeerRunNotFound,
                format!("this server holds no run {run} for the partnership (finished, expired after ten idle minutes, or the server restarted); start a new run"),
            )),
        }
    }

    pub fn remove(&self, run: RunId, partnership: &str) -> bool {
        let mut runs = self.runs.lock().expect("served runs lock");
        match runs.get(&run) {
            Some(r) if r.partnership == partnership => runs.remove(&run).is_some(),
            _ => false,
        }
    }

    /// Drops every run of a partnership (it was revoked).
    pub fn forget(&self, partnership: &str) {
        self.runs
            .lock()
            .expect("served runs lock")
            .retain(|_, r| r.partnership != partnership);
    }
}
