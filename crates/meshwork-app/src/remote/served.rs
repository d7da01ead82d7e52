//! The responder's half of two-server runs: the runs a partner server drives against this one,
//! held in memory only (points and secrets never reach the store) and dropped when finished,
//! idle for ten minutes, or the process stops.

use crate::error::{AppError, AppResult};
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
/// Runs served at once for different partnerships (one per partnership; each holds one
/// session's points at a time, a few hundred MiB at the largest sets).
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

pub fn protocol_error(e: impl std::fmt::Display) -> AppError {
    AppError::new(
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
    ) -> AppResult<Self> {
        Ok(if full {
            Session::FullCollecting(Responder::new(config, run, items).map_err(protocol_error)?)
        } else {
            Session::CountsCollecting(Responder::new(config, run, items).map_err(protocol_error)?)
        })
    }

    pub fn is_full(&self) -> bool {
        matches!(self, Session::FullCollecting(_) | Session::FullEchoing(_))
    }

    pub fn own_points(&self) -> AppResult<&Outgoing> {
        match self {
            Session::FullCollecting(r) => Ok(r.own_points()),
            Session::CountsCollecting(r) => Ok(r.own_points()),
            Session::FullEchoing(r) => Ok(r.own_points()),
            Session::CountsEchoing(r) => Ok(r.own_points()),
            Session::Failed(m) => Err(protocol_error(m)),
        }
    }

    pub fn echo(&self) -> AppResult<&Outgoing> {
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
    pub fn receive(&mut self, chunk: &[u8]) -> AppResult<Option<ChunkReceipt>> {
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
    /// The answer to the run's start, sent again to a retried start.
    pub plan: serde_json::Value,
    /// The shared populations' identifiers and whether they are shared with indicators.
    pub populations: BTreeMap<String, (bool, Arc<Vec<Identifier>>)>,
    /// The session being served: its number, what it was opened with, the session. Opening the
    /// next one drops it (the requester runs sessions one after the other), so a run holds one
    /// session's points at a time.
    pub current: Option<(u32, String, Arc<tokio::sync::Mutex<Session>>)>,
    /// Sessions opened so far per population: (full, counts).
    pub opened: HashMap<String, (u32, u32)>,
    created: i64,
    touched: i64,
}

impl ServedRun {
    /// Admits one more session on `population`: at most one full session per population shared
    /// with indicators, and one counts session per population of the requester's (at most
    /// [`MAX_POPULATIONS`](crate::overlap::MAX_POPULATIONS)), so a run cannot be turned into
    /// many membership queries.
    pub fn admit_session(&mut self, population: &str, full: bool) -> AppResult<()> {
        let Some((indicators, _)) = self.populations.get(population) else {
            return Err(protocol_error(format!(
                "population {population:?} is not shared in this run"
            )));
        };
        if full && !indicators {
            return Err(protocol_error(format!(
                "population {population:?} is shared as counts only; a session naming records is refused"
            )));
        }
        let (f, c) = self.opened.entry(population.to_string()).or_default();
        if full && *f >= 1 {
            return Err(protocol_error(format!(
                "a run has one full session per population; {population:?} had its session"
            )));
        }
        if !full && *c >= crate::overlap::MAX_POPULATIONS as u32 {
            return Err(protocol_error(format!(
                "a run has at most {} counts sessions per population",
                crate::overlap::MAX_POPULATIONS
            )));
        }
        if full {
            *f += 1;
        } else {
            *c += 1;
        }
        Ok(())
    }
}

/// Every served run of this process, and the one permit for responder PSI work (hashing,
/// blinding, echoing: each already uses every core).
#[derive(Debug)]
pub struct Served {
    runs: Mutex<HashMap<RunId, ServedRun>>,
    pub work: tokio::sync::Semaphore,
}

impl Default for Served {
    fn default() -> Self {
        Self {
            runs: Mutex::new(HashMap::new()),
            work: tokio::sync::Semaphore::new(1),
        }
    }
}

/// A run lives at most this long, however busy.
const LIFETIME_MS: i64 = 2 * 60 * 60 * 1000;

fn live(r: &ServedRun, now: i64) -> bool {
    now - r.touched < IDLE_MS && now - r.created < LIFETIME_MS
}

impl Served {
    /// The plan of a run already started (a retried start), if any.
    pub fn plan_of(&self, run: RunId, partnership: &str) -> Option<serde_json::Value> {
        let now = now_millis();
        let runs = self.runs.lock().expect("served runs lock");
        runs.get(&run)
            .filter(|r| r.partnership == partnership && live(r, now))
            .map(|r| r.plan.clone())
    }

    /// Refuses a new run when the server serves too many for other partnerships.
    pub fn check_room(&self, partnership: &str) -> AppResult<()> {
        let now = now_millis();
        let mut runs = self.runs.lock().expect("served runs lock");
        runs.retain(|_, r| live(r, now));
        let others = runs
            .values()
            .filter(|r| r.partnership != partnership)
            .count();
        if others >= MAX_RUNS {
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!("this server is serving {MAX_RUNS} overlap runs for other partners; retry in a few minutes"),
            ));
        }
        Ok(())
    }

    /// Starts serving a run; a partnership has one run at a time (a new one replaces the old).
    pub fn insert(
        &self,
        run: RunId,
        partnership: String,
        workspace: WorkspaceId,
        plan: serde_json::Value,
        populations: BTreeMap<String, (bool, Arc<Vec<Identifier>>)>,
    ) -> AppResult<()> {
        let now = now_millis();
        let mut runs = self.runs.lock().expect("served runs lock");
        runs.retain(|_, r| live(r, now) && r.partnership != partnership);
        runs.insert(
            run,
            ServedRun {
                partnership,
                workspace,
                plan,
                populations,
                current: None,
                opened: HashMap::new(),
                created: now,
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
        f: impl FnOnce(&mut ServedRun) -> AppResult<T>,
    ) -> AppResult<T> {
        let now = now_millis();
        let mut runs = self.runs.lock().expect("served runs lock");
        runs.retain(|_, r| live(r, now));
        match runs.get_mut(&run) {
            Some(r) if r.partnership == partnership => {
                r.touched = now;
                f(r)
            }
            _ => Err(AppError::new(
                ErrorCode::PeerRunNotFound,
                format!("this server holds no run {run} for the partnership (finished, expired, replaced by a newer run, or the server restarted); start a new run"),
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

    /// Drops every run of a partnership (it was revoked, or its sharing changed).
    pub fn forget(&self, partnership: &str) {
        self.runs
            .lock()
            .expect("served runs lock")
            .retain(|_, r| r.partnership != partnership);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(pops: &[(&str, bool)]) -> (Served, RunId) {
        let served = Served::default();
        let run = RunId::random();
        let populations = pops
            .iter()
            .map(|(id, ind)| (id.to_string(), (*ind, Arc::new(Vec::new()))))
            .collect();
        served
            .insert(
                run,
                "p1".into(),
                WorkspaceId::new(),
                serde_json::Value::Null,
                populations,
            )
            .unwrap();
        (served, run)
    }

    #[test]
    fn a_run_admits_only_the_sessions_its_plan_needs() {
        let (served, run) = run_with(&[("vip", true), ("all", false)]);
        served
            .with(run, "p1", |r| {
                // Counts-only populations never get a full session; unknown ones none.
                assert!(r.admit_session("all", true).is_err());
                assert!(r.admit_session("secret", false).is_err());
                // One full session per indicator population.
                r.admit_session("vip", true)?;
                assert!(r.admit_session("vip", true).is_err());
                // Counts sessions: one per population of the requester's, at most.
                for _ in 0..crate::overlap::MAX_POPULATIONS {
                    r.admit_session("all", false)?;
                }
                let e = r.admit_session("all", false).unwrap_err();
                assert_eq!(e.code, ErrorCode::OverlapProtocolError);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_run_belongs_to_its_partnership_and_one_run_per_partnership_is_kept() {
        let (served, run) = run_with(&[("vip", true)]);
        let e = served.with(run, "p2", |_| Ok(())).unwrap_err();
        assert_eq!(e.code, ErrorCode::PeerRunNotFound);
        assert!(!served.remove(run, "p2"));
        // A new run of the same partnership replaces the old one.
        let next = RunId::random();
        served
            .insert(
                next,
                "p1".into(),
                WorkspaceId::new(),
                serde_json::Value::Null,
                BTreeMap::new(),
            )
            .unwrap();
        assert!(served.with(run, "p1", |_| Ok(())).is_err());
        assert!(served.with(next, "p1", |_| Ok(())).is_ok());
        // Other partnerships fill the server up to its limit (p1's run included).
        for i in 0..MAX_RUNS - 1 {
            served
                .insert(
                    RunId::random(),
                    format!("other{i}"),
                    WorkspaceId::new(),
                    serde_json::Value::Null,
                    BTreeMap::new(),
                )
                .unwrap();
        }
        assert_eq!(
            served.check_room("p9").unwrap_err().code,
            ErrorCode::RateLimited
        );
        // A partnership with a run may always start its next one (it replaces its own).
        assert!(served.check_room("other1").is_ok());
        served.forget("other0");
        assert!(served.check_room("p9").is_ok());
    }
}
