//! The durable job runner (DESIGN.md decision 8): all background work is rows of `job_queue`,
//! and every server runs one [`Runner`] that claims due jobs under a lease, renews the lease
//! while it works, and records how each run ended.
//!
//! - A job whose runner died is taken over when its lease expires (on SQLite, where one process
//!   owns the database, at once on start-up).
//! - A temporary failure is retried after `jobs.retry_base_seconds`, doubling up to
//!   `jobs.retry_max_seconds`, until the job's attempts are used up; a permanent one fails the
//!   job at once. Either way the reason is kept, sealed (it may quote an address).
//! - Periodic jobs are rows too: each period's run has a unique key (`kind@period`), so however
//!   many servers share the database, one row per period is inserted and one server runs it.
//! - Stopping finishes what runs within a grace period and puts back the rest, uncounted.
//! - An operator cancels a job (a running one stops at its next lease renewal) or retries a
//!   failed one: `meshwork jobs …`, and `GET /api/v1/workspaces/{ws}/jobs` for a workspace.
//!
//! Jobs run at least once: a server killed after a job's effect but before recording it runs
//! the job again. Each kind bounds what that repeats (mail: at most that one message, see
//! [`crate::mail`]; imports: nothing, their batches carry their own checkpoint).

use crate::error::{AppError, AppResult};
use crate::state::{now_millis, AppState};
use meshwork_domain::{ErrorCode, Millis, WorkspaceId};
use meshwork_keyring::{Aad, DataKey};
use meshwork_store::{JobOutcome, QueuedJobRow};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Sends one mail of the outbox (payload `{"mail": id}`).
pub const MAIL_SEND: &str = "mail.send";
/// Runs (or resumes) an import of an uploaded file (payload `{"job": id}`, in its workspace).
pub const IMPORT: &str = "import";
/// Syncs one connector (payload `{"connector": id, "trigger": …}`, in its workspace).
pub const CONNECTOR_SYNC: &str = "connector.sync";
/// Queues a sync of each connector whose interval has passed (`jobs.connectors_check_seconds`).
pub const CONNECTORS_DUE: &str = "connectors.due";
/// Housekeeping (`jobs.housekeeping_seconds`, daily by default): deletes finished jobs older
/// than `jobs.keep_days`, audit entries older than `retention.audit_months` and expired tokens
/// (links, security-key ceremonies), and tells the creators of API keys that expire within a
/// week.
pub const PRUNE: &str = "jobs.prune";
/// Warns, then deletes, accounts unused for `retention.inactive_months` (mm13), daily with
/// housekeeping.
pub const RETENTION: &str = "accounts.retention";
/// Finishes deleting a workspace whose key is destroyed (payload `{"workspace": id}`): queued
/// before the key goes, so a deletion cut short by a stop completes when a server runs it.
pub const WORKSPACE_DELETE: &str = "workspace.delete";
/// The daily backup (`backup.enabled`, at `backup.at`): `docs/backups.md`.
pub const BACKUP: &str = "backup";

/// A periodic job: its kind and period. Each period's run is one row across all servers.
#[derive(Debug, Clone, Copy)]
pub struct Periodic {
    pub kind: &'static str,
    /// The period: every N seconds, or a day.
    pub every: Duration,
    /// Where in each period it runs, from the Unix epoch's alignment: for a daily job, the time
    /// of day (UTC).
    pub at: Duration,
}

impl Periodic {
    /// The period `now` falls in, and when its run is due (`due <= now < due + every`, and
    /// `due` is `at` past a multiple of `every`).
    pub fn period(&self, now: Millis) -> (i64, Millis) {
        let every = (self.every.as_millis() as i64).max(1);
        let at = self.at.as_millis() as i64 % every;
        let period = (now - at).div_euclid(every);
        (period, period * every + at)
    }
}

/// The periodic jobs every server schedules.
pub fn periodic(all: &crate::config::Config) -> Vec<Periodic> {
    let config = &all.jobs;
    let mut jobs = vec![
        Periodic {
            kind: PRUNE,
            every: Duration::from_secs(config.housekeeping_seconds as u64),
            at: Duration::from_secs(
                crate::config::time_of_day_seconds(&config.housekeeping_at).unwrap_or(0) as u64,
            ),
        },
        Periodic {
            kind: CONNECTORS_DUE,
            every: Duration::from_secs(config.connectors_check_seconds as u64),
            at: Duration::ZERO,
        },
    ];
    if all.retention.inactive_months > 0 {
        jobs.push(Periodic {
            kind: RETENTION,
            every: Duration::from_secs(config.housekeeping_seconds as u64),
            at: Duration::from_secs(
                crate::config::time_of_day_seconds(&config.housekeeping_at).unwrap_or(0) as u64,
            ),
        });
    }
    if all.backup.enabled {
        jobs.push(Periodic {
            kind: BACKUP,
            every: Duration::from_secs(86_400),
            at: Duration::from_secs(
                crate::config::time_of_day_seconds(&all.backup.at).unwrap_or(0) as u64,
            ),
        });
    }
    jobs
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub workspace: Option<WorkspaceId>,
    pub payload: serde_json::Value,
    /// Seal the payload (with the workspace key, or the account key without a workspace):
    /// for payloads that hold personal data.
    pub sealed: bool,
    pub max_attempts: i32,
    pub run_at: Millis,
    pub unique_key: Option<String>,
}

impl NewJob {
    /// A job to run now, with 5 attempts, its payload in the clear.
    pub fn new(kind: &'static str, payload: serde_json::Value) -> Self {
        Self {
            kind,
            workspace: None,
            payload,
            sealed: false,
            max_attempts: 5,
            run_at: now_millis(),
            unique_key: None,
        }
    }

    pub fn in_workspace(mut self, ws: WorkspaceId) -> Self {
        self.workspace = Some(ws);
        self
    }
}

/// How a run failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth another attempt later (a server down or misconfigured, a timeout, the store
    /// failing).
    Temporary(String),
    /// Another attempt would fail the same way (a recipient refused, a payload that cannot be
    /// opened).
    Permanent(String),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        // The store or the keyring failing is taken as passing; a refusal is not.
        if e.code == ErrorCode::Internal {
            Failure::Temporary(e.message)
        } else {
            Failure::Permanent(e.message)
        }
    }
}

fn aad<'a>(id: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        scope: "jobs",
        record: id,
        field,
    }
}

fn job_key(state: &AppState, ws: Option<WorkspaceId>) -> AppResult<Arc<DataKey>> {
    match ws {
        Some(ws) => state.workspace_key(ws),
        None => state.account_key(),
    }
}

/// The row a new job becomes (also for callers that write it in a transaction of their own).
pub fn row(state: &AppState, job: &NewJob, id: uuid::Uuid) -> AppResult<QueuedJobRow> {
    let plain = serde_json::to_vec(&job.payload).map_err(AppError::internal)?;
    let payload = if job.sealed {
        job_key(state, job.workspace)?.seal(aad(&id.to_string(), "payload"), &plain)
    } else {
        plain
    };
    let now = now_millis();
    Ok(QueuedJobRow {
        id,
        kind: job.kind.to_string(),
        workspace_id: job.workspace,
        payload,
        payload_sealed: job.sealed,
        state: "queued".into(),
        attempts: 0,
        max_attempts: job.max_attempts,
        run_at: job.run_at,
        lease_holder: None,
        lease_until: None,
        error_sealed: None,
        unique_key: job.unique_key.clone(),
        created_at: now,
        updated_at: now,
    })
}

/// Queues a job and wakes this server's runner. `None` when its unique key was taken.
pub async fn enqueue(state: &AppState, job: NewJob) -> AppResult<Option<uuid::Uuid>> {
    let id = uuid::Uuid::now_v7();
    let queued = state.store.enqueue_job(&row(state, &job, id)?).await?;
    state.jobs_wake.notify_one();
    Ok(queued.then_some(id))
}

/// A job as operators see it (the payload stays out: it may be sealed personal data).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    pub id: uuid::Uuid,
    pub kind: String,
    pub workspace_id: Option<uuid::Uuid>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// When it runs next (queued), or ran last.
    pub run_at: Millis,
    /// The server holding it, while running.
    pub lease_holder: Option<String>,
    pub lease_until: Option<Millis>,
    /// Why the last run failed.
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

fn view(state: &AppState, r: QueuedJobRow) -> JobView {
    let error = r.error_sealed.as_ref().map(|sealed| {
        state
            .account_key()
            .and_then(|key| Ok(key.open_str(aad(&r.id.to_string(), "error"), sealed)?))
            .unwrap_or_else(|_| "(the reason can no longer be opened)".into())
    });
    JobView {
        id: r.id,
        kind: r.kind,
        workspace_id: r.workspace_id.map(|w| w.as_uuid()),
        state: r.state,
        attempts: r.attempts,
        max_attempts: r.max_attempts,
        run_at: r.run_at,
        lease_holder: r.lease_holder,
        lease_until: r.lease_until,
        error,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

const STATES: [&str; 5] = ["queued", "running", "done", "failed", "cancelled"];

/// Jobs, newest first: one workspace's, or (`None`) every job of the server.
pub async fn list(
    state: &AppState,
    ws: Option<WorkspaceId>,
    job_state: Option<&str>,
    limit: i64,
) -> AppResult<Vec<JobView>> {
    if let Some(s) = job_state {
        if !STATES.contains(&s) {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("field `state`: {s:?} is not a job state; use one of {STATES:?}"),
            ));
        }
    }
    let rows = state.store.queued_jobs(ws, job_state, limit).await?;
    Ok(rows.into_iter().map(|r| view(state, r)).collect())
}

fn not_found(id: uuid::Uuid) -> AppError {
    AppError::new(ErrorCode::JobNotFound, format!("no job {id}"))
}

pub async fn show(state: &AppState, id: uuid::Uuid) -> AppResult<JobView> {
    let row = state
        .store
        .queued_job(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(view(state, row))
}

/// Queues a failed or cancelled job again, its attempts reset.
pub async fn retry(state: &AppState, id: uuid::Uuid) -> AppResult<JobView> {
    let job = show(state, id).await?;
    if !state.store.retry_job(id, now_millis()).await? {
        return Err(AppError::new(
            ErrorCode::ConcurrentChange,
            format!(
                "job {id} is {}; only a failed or cancelled job can be retried",
                job.state
            ),
        ));
    }
    state.jobs_wake.notify_one();
    show(state, id).await
}

/// Cancels a queued or running job (a running one stops at its runner's next lease renewal).
pub async fn cancel(state: &AppState, id: uuid::Uuid) -> AppResult<JobView> {
    let job = show(state, id).await?;
    if !state.store.cancel_job(id, now_millis()).await? {
        return Err(AppError::new(
            ErrorCode::ConcurrentChange,
            format!(
                "job {id} is {}; only a queued or running job can be cancelled",
                job.state
            ),
        ));
    }
    after_failure(state, id).await;
    show(state, id).await
}

/// Opens a job's payload. A payload whose key is gone (its workspace was deleted) fails the job
/// for good.
fn payload(state: &AppState, job: &QueuedJobRow) -> Result<serde_json::Value, Failure> {
    let plain = if job.payload_sealed {
        let key = job_key(state, job.workspace_id).map_err(|_| {
            Failure::Permanent("the job's payload cannot be opened: its key is gone".into())
        })?;
        key.open(aad(&job.id.to_string(), "payload"), &job.payload)
            .map_err(|_| {
                Failure::Permanent("the job's payload cannot be opened: its key is gone".into())
            })?
    } else {
        job.payload.clone()
    };
    serde_json::from_slice(&plain)
        .map_err(|e| Failure::Permanent(format!("the job's payload is not valid JSON: {e}")))
}

/// Runs one job of any kind.
async fn run_one(state: &AppState, job: &QueuedJobRow) -> Result<(), Failure> {
    let input = payload(state, job)?;
    match job.kind.as_str() {
        MAIL_SEND => crate::mail::send_job(state, &input).await,
        IMPORT => {
            let ws = job
                .workspace_id
                .ok_or_else(|| Failure::Permanent("an import job without a workspace".into()))?;
            crate::import::background::run_job(state, ws, &input).await
        }
        CONNECTOR_SYNC => {
            let ws = job
                .workspace_id
                .ok_or_else(|| Failure::Permanent("a sync job without a workspace".into()))?;
            crate::connectors::run_job(state, ws, job.id, &input).await
        }
        CONNECTORS_DUE => crate::connectors::queue_due(state).await,
        PRUNE => {
            let keep = Duration::from_secs(state.config.jobs.keep_days as u64 * 24 * 3600);
            let before = now_millis() - keep.as_millis() as Millis;
            let n = state
                .store
                .prune_jobs(before)
                .await
                .map_err(AppError::from)?;
            tracing::info!(jobs = n, "pruned finished jobs");
            // Each chore on its own: one that fails is logged, and the others still run.
            match crate::workspaces::warn_expiring_keys(state, now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    keys = n,
                    "told the creators of API keys that expire within a week"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not tell the creators of expiring API keys")
                }
            }
            match crate::retention::prune_audit(state, now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    entries = n,
                    "pruned audit entries past retention.audit_months"
                ),
                Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
            }
            // Links never opened and security-key ceremonies never finished.
            match state.store.purge_expired_tokens(now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tokens = n, "deleted expired links and ceremonies"),
                Err(e) => tracing::warn!(error = %e, "could not delete expired tokens"),
            }
            // Uploads staged for a preview and never imported.
            let n = crate::import::uploads::sweep_staged(state);
            if n > 0 {
                tracing::info!(uploads = n, "removed staged uploads never imported");
            }
            Ok(())
        }
        WORKSPACE_DELETE => {
            let ws: WorkspaceId = input
                .get("workspace")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Failure::Permanent("a deletion job without a workspace".into()))?;
            // Only a workspace whose key is gone: a job can never delete a live one.
            match state.keyring.workspace_key(ws.as_uuid()) {
                Err(meshwork_keyring::KeyringError::MissingWorkspaceKey(_)) => {
                    crate::workspaces::remove_rest(state, ws)
                        .await
                        .map_err(|e| Failure::Temporary(e.to_string()))
                }
                // Run before the deleting request destroyed the key (it queues this job just
                // before): look again later. A workspace not being deleted fails it in the end.
                Ok(_) => Err(Failure::Temporary(
                    "the workspace's key still exists: not deleted (yet)".into(),
                )),
                Err(e) => Err(Failure::Temporary(e.to_string())),
            }
        }
        RETENTION => crate::retention::run(state, now_millis())
            .await
            .map(|_| ())
            .map_err(|e| Failure::Temporary(e.to_string())),
        BACKUP => crate::backup::create(state, None)
            .await
            .map(|_| ())
            .map_err(|e| Failure::Temporary(format!("{e:#}"))),
        other => Err(Failure::Permanent(format!("unknown job kind {other:?}"))),
    }
}

/// The delay before attempt `attempts + 1` after a temporary failure.
pub fn backoff(config: &crate::config::JobsConfig, attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let secs = (config.retry_base_seconds as u64).saturating_mul(1u64 << exp.min(20));
    Duration::from_secs(secs.min(config.retry_max_seconds as u64))
}

/// This server's runner.
#[derive(Debug)]
pub struct Runner {
    /// `Some(grace)` asks the runner to stop.
    stop: watch::Sender<Option<Duration>>,
    task: tokio::task::JoinHandle<()>,
    /// On SQLite, the lock that makes this the database's only runner (held while it runs).
    _sqlite_lock: Option<std::fs::File>,
}

impl Runner {
    /// Starts the runner: it claims jobs of the kinds this server can run (mail only with an SMTP
    /// server configured) and schedules the periodic jobs.
    pub async fn start(state: &AppState) -> AppResult<Runner> {
        let mut sqlite_lock = None;
        if let Some(db) = crate::sqlite_path(&state.config) {
            // One server runs jobs on a SQLite database, and holds this lock while it does; a
            // lease still held in it is then a stopped server's, taken over at once.
            let path = db.with_extension("db-runner.lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| AppError::internal(format!("opening {}: {e}", path.display())))?;
            if file.try_lock().is_err() {
                return Err(AppError::new(
                    ErrorCode::Internal,
                    format!(
                        "another meshwork serve runs on the SQLite database {} (it holds {}); stop it first, or use PostgreSQL for several servers",
                        db.display(),
                        path.display()
                    ),
                ));
            }
            sqlite_lock = Some(file);
            let n = state.store.expire_job_leases(now_millis()).await?;
            if n > 0 {
                tracing::info!(jobs = n, "taking over jobs a stopped server was running");
            }
        }
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(run_loop(state.clone(), stopped));
        Ok(Runner {
            stop,
            task,
            _sqlite_lock: sqlite_lock,
        })
    }

    /// Stops claiming, lets running jobs finish for up to `grace`, and puts back the rest.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(Some(grace));
        let mut task = self.task;
        if tokio::time::timeout(grace + Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// The kinds this server runs.
fn kinds(state: &AppState) -> Vec<&'static str> {
    let mut kinds = vec![
        IMPORT,
        PRUNE,
        CONNECTOR_SYNC,
        CONNECTORS_DUE,
        BACKUP,
        RETENTION,
        WORKSPACE_DELETE,
    ];
    if state.mailer.is_some() {
        kinds.push(MAIL_SEND);
    }
    kinds
}

/// A job this runner is running: its claim (the lease holder it was claimed under, fresh for
/// every claim, so a run is fenced from any later run of the same job) and its task.
struct Held {
    job: uuid::Uuid,
    holder: String,
}

async fn run_loop(state: AppState, mut stopped: watch::Receiver<Option<Duration>>) {
    let cfg = state.config.jobs.clone();
    let lease = Duration::from_secs(cfg.lease_seconds as u64);
    let kinds = kinds(&state);
    let mut running: JoinSet<()> = JoinSet::new();
    let mut held: HashMap<tokio::task::Id, Held> = HashMap::new();
    let mut scheduled: HashMap<&'static str, i64> = HashMap::new();
    let mut claims: u64 = 0;
    let mut pruned = std::time::Instant::now();
    loop {
        if pruned.elapsed() > Duration::from_secs(60) {
            state.prune_rate_limiters();
            if let Err(e) = crate::usage::flush(&state).await {
                tracing::warn!(error = %e, "could not write the usage counts");
            }
            pruned = std::time::Instant::now();
        }
        while let Some(done) = running.try_join_next_with_id() {
            finished(&state, &mut held, done).await;
        }
        schedule_periodic(&state, &mut scheduled).await;
        fail_abandoned(&state, &kinds).await;
        let free = (cfg.concurrency as usize).saturating_sub(held.len());
        if free > 0 {
            let now = now_millis();
            claims += 1;
            let holder = format!("{}/{claims}", state.runner_id);
            match state
                .store
                .claim_jobs(
                    &holder,
                    &kinds,
                    now,
                    now + lease.as_millis() as Millis,
                    free as i64,
                )
                .await
            {
                Ok(jobs) => {
                    for job in jobs {
                        let id = job.id;
                        let state = state.clone();
                        let run_holder = holder.clone();
                        let task = running.spawn(async move {
                            work(&state, job, &run_holder, lease).await;
                        });
                        held.insert(
                            task.id(),
                            Held {
                                job: id,
                                holder: holder.clone(),
                            },
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim jobs"),
            }
        }
        let poll = Duration::from_millis(cfg.poll_millis as u64);
        tokio::select! {
            _ = stopped.changed() => break,
            _ = state.jobs_wake.notified() => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                finished(&state, &mut held, done).await;
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
    // Shutdown: finish within the grace period, then put back what is left, once its task has
    // really stopped (an abort takes effect at the task's next await).
    let grace = stopped.borrow().unwrap_or_default();
    let _ = tokio::time::timeout(grace, async {
        while let Some(done) = running.join_next_with_id().await {
            finished(&state, &mut held, done).await;
        }
    })
    .await;
    running.abort_all();
    while let Some(done) = running.join_next_with_id().await {
        if let Err(e) = &done {
            if e.is_cancelled() {
                if let Some(h) = held.remove(&e.id()) {
                    release(&state, &h).await;
                }
                continue;
            }
        }
        finished(&state, &mut held, done).await;
    }
    for (_, h) in held {
        release(&state, &h).await;
    }
}

async fn release(state: &AppState, h: &Held) {
    match state
        .store
        .end_job_run(h.job, &h.holder, &JobOutcome::Released, now_millis())
        .await
    {
        Ok(_) => tracing::info!(job = %h.job, "put a running job back for another run"),
        Err(e) => {
            tracing::warn!(job = %h.job, error = %e, "could not put a job back; its lease will expire")
        }
    }
}

/// A task ended: its slot is free. A task that panicked fails its job for good, with the
/// reason (a panic would only repeat).
async fn finished(
    state: &AppState,
    held: &mut HashMap<tokio::task::Id, Held>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let id = match &done {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    };
    let Some(h) = held.remove(&id) else {
        return;
    };
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(job = %h.job, "a job panicked; it is failed and will not run again");
            let why = seal_reason(
                state,
                h.job,
                "the job stopped with an internal error (a panic); the server log has the details",
            );
            if let Err(e) = state
                .store
                .end_job_run(h.job, &h.holder, &JobOutcome::Failed(why), now_millis())
                .await
            {
                tracing::warn!(job = %h.job, error = %e, "could not record a job's failure");
            }
            after_failure(state, h.job).await;
        }
    }
}

/// Jobs whose runners stopped (their leases expired) as often as they may run fail for good
/// instead of being taken over once more: a job that kills its server must not loop.
async fn fail_abandoned(state: &AppState, kinds: &[&str]) {
    let now = now_millis();
    let Ok(jobs) = state.store.abandoned_jobs(kinds, now).await else {
        return;
    };
    for job in jobs {
        let why = seal_reason(
            state,
            job.id,
            &format!(
                "its server stopped while running it, {} times; it is not started again",
                job.attempts
            ),
        );
        match state.store.fail_abandoned_job(job.id, &why, now).await {
            Ok(true) => {
                tracing::warn!(job = %job.id, kind = %job.kind, "a job whose runs kept stopping is failed");
                after_failure(state, job.id).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(job = %job.id, error = %e, "could not fail an abandoned job"),
        }
    }
}

/// What a kind does when its job ends without success for good (failed or cancelled): an
/// import is marked failed and its upload deleted, so it is neither stuck as running nor
/// resumed later.
async fn after_failure(state: &AppState, id: uuid::Uuid) {
    let Ok(Some(job)) = state.store.queued_job(id).await else {
        return;
    };
    if job.kind == IMPORT {
        if let (Some(ws), Ok(input)) = (job.workspace_id, payload(state, &job)) {
            let reason = match job.state.as_str() {
                "cancelled" => "it was cancelled by an operator",
                _ => "its runs kept stopping",
            };
            crate::import::background::give_up(state, ws, &input, reason).await;
        }
    }
}

/// A failure reason, sealed with the account key (bound to the job).
fn seal_reason(state: &AppState, id: uuid::Uuid, why: &str) -> Vec<u8> {
    match state.account_key() {
        Ok(key) => key.seal(aad(&id.to_string(), "error"), why.as_bytes()),
        Err(_) => Vec::new(),
    }
}

/// Inserts each periodic job's row for the current period, once per period per server (the
/// unique key makes it once across servers).
async fn schedule_periodic(state: &AppState, scheduled: &mut HashMap<&'static str, i64>) {
    let now = now_millis();
    for p in periodic(&state.config) {
        let (period, due) = p.period(now);
        if scheduled.get(p.kind) == Some(&period) {
            continue;
        }
        let mut job = NewJob::new(p.kind, serde_json::json!({}));
        job.run_at = due;
        job.max_attempts = 3;
        job.unique_key = Some(format!("{}@{period}", p.kind));
        match enqueue(state, job).await {
            Ok(_) => {
                scheduled.insert(p.kind, period);
            }
            Err(e) => {
                tracing::warn!(kind = p.kind, error = %e, "could not schedule a periodic job")
            }
        }
    }
}

/// Runs a claimed job while renewing its lease, and records the outcome. A lost lease (the job
/// was cancelled, retried, or taken over) stops the work; so does a lease this runner can no
/// longer confirm (the store unreachable) before it would expire, since another server may then
/// take the job over.
async fn work(state: &AppState, job: QueuedJobRow, holder: &str, lease: Duration) {
    let id = job.id;
    let started = std::time::Instant::now();
    let renew = async {
        let mut confirmed_until = job.lease_until.unwrap_or_else(now_millis);
        let tick = lease / 3;
        loop {
            tokio::time::sleep(tick).await;
            let until = now_millis() + lease.as_millis() as Millis;
            match state.store.renew_job_lease(id, holder, until).await {
                Ok(true) => confirmed_until = until,
                Ok(false) => return "it was cancelled, retried or taken over",
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "could not renew a job's lease");
                    if now_millis() + tick.as_millis() as Millis >= confirmed_until {
                        return "its lease could not be renewed before it expired";
                    }
                }
            }
        }
    };
    let result = tokio::select! {
        r = run_one(state, &job) => r,
        why = renew => {
            tracing::warn!(job = %id, kind = %job.kind, why, "a job stopped");
            return;
        }
    };
    let now = now_millis();
    let outcome = match &result {
        Ok(()) => JobOutcome::Done,
        Err(Failure::Temporary(why)) => {
            let delay = backoff(&state.config.jobs, job.attempts);
            if job.attempts >= job.max_attempts {
                tracing::warn!(job = %id, kind = %job.kind, attempts = job.attempts, "a job failed for good: its attempts are used up");
            } else {
                tracing::info!(job = %id, kind = %job.kind, attempts = job.attempts, retry_in_s = delay.as_secs(), "a job failed; it will be retried");
            }
            // Reasons are sealed with the account key, not the workspace's: a job failing
            // because its workspace key is gone must still be able to say so.
            JobOutcome::RetryAt(
                now + delay.as_millis() as Millis,
                seal_reason(state, id, why),
            )
        }
        Err(Failure::Permanent(why)) => {
            tracing::warn!(job = %id, kind = %job.kind, "a job failed for good");
            JobOutcome::Failed(seal_reason(state, id, why))
        }
    };
    state.job_runs.record(
        &job.kind,
        match &outcome {
            JobOutcome::Done => crate::operations::RunOutcome::Done,
            JobOutcome::Failed(_) => crate::operations::RunOutcome::Failed,
            _ if job.attempts >= job.max_attempts => crate::operations::RunOutcome::Failed,
            _ => crate::operations::RunOutcome::Retried,
        },
        started.elapsed(),
    );
    match state.store.end_job_run(id, holder, &outcome, now).await {
        Ok(true) => {
            let ended_badly = matches!(outcome, JobOutcome::Failed(_))
                || (matches!(outcome, JobOutcome::RetryAt(..)) && job.attempts >= job.max_attempts);
            if ended_badly {
                after_failure(state, id).await;
            }
        }
        Ok(false) => {
            tracing::warn!(job = %id, "a job ended after it was cancelled or taken over; its outcome was not recorded")
        }
        Err(e) => {
            tracing::warn!(job = %id, error = %e, "could not record a job's outcome; it will run again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_daily_job_at_a_time_of_day_runs_once_a_day_at_that_time() {
        let daily = Periodic {
            kind: PRUNE,
            every: Duration::from_secs(86_400),
            at: Duration::from_secs(3 * 3600 + 30 * 60),
        };
        let day = 86_400_000;
        let at = (3 * 3600 + 30 * 60) * 1000;
        // 02:00 on day 10: the run due is day 9's, at 03:30.
        assert_eq!(daily.period(10 * day + 2 * 3600 * 1000), (9, 9 * day + at));
        // 03:30 sharp on day 10: day 10's.
        assert_eq!(daily.period(10 * day + at), (10, 10 * day + at));
    }

    proptest! {
        #[test]
        fn the_period_due_is_the_last_aligned_time_before_now(
            now in 0i64..4_000_000_000_000,
            every_s in 1u64..200_000,
            at_s in 0u64..200_000,
        ) {
            let p = Periodic { kind: PRUNE, every: Duration::from_secs(every_s), at: Duration::from_secs(at_s) };
            let (period, due) = p.period(now);
            let every = every_s as i64 * 1000;
            prop_assert!(due <= now && now < due + every);
            prop_assert_eq!((due - (at_s as i64 * 1000) % every).rem_euclid(every), 0);
            // The next millisecond after the period ends is the next period.
            prop_assert_eq!(p.period(due + every).0, period + 1);
        }
    }
}
