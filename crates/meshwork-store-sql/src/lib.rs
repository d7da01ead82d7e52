//! The queries both SQL backends run, written once in the dialect SQLite and PostgreSQL share
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`), and instantiated by each backend with
//! `impl_sql_store!(TheStore, sqlx::TheDatabase, Backend::X)`.
//!
//! Each backend still owns what differs: its connection set-up (WAL and busy timeout on SQLite),
//! its column types and its `migrations/`. A backend type provides two methods, `reader()` and
//! `writer()`, returning the pool for reads and the pool for write transactions (SQLite uses a
//! single-connection writer pool so write transactions never contend; PostgreSQL uses one pool).
//! It also provides `bulk_crm_records(ws, ids)`: its own path for reading many records by id,
//! or `Ok(None)` to run the shared statement.

pub use async_trait::async_trait;
pub use sqlx;

use meshwork_domain::Role;
use meshwork_store::{Hash32, StoreError};

/// Maps a driver error to a store error, turning unique violations into `Conflict(what)`.
pub fn db_err(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        // The trigger that keeps erased people's keys from being taken again.
        sqlx::Error::Database(d) if d.message().contains("crm_suppressed") => {
            StoreError::Conflict("crm_suppressed")
        }
        _ => StoreError::Database(Box::new(e)),
    }
}

/// A migration failure, named for the operator. A database that has a migration this binary
/// does not know was written by a newer release: this one refuses it rather than run on a
/// schema it does not understand.
pub fn migrate_err(what: &str, e: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    let message = match e {
        MigrateError::VersionMissing(v) => format!(
            "{what} was written by a newer Meshwork release (its migration {v} is unknown to this one): run that release, or restore a backup taken before the upgrade"
        ),
        MigrateError::VersionMismatch(v) => format!(
            "{what}: migration {v} differs from the one this release ships; the database was migrated by another build"
        ),
        other => format!("migrating {what}: {other}"),
    };
    StoreError::Database(message.into())
}

pub fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

pub fn hash32(v: Vec<u8>, column: &str) -> Result<Hash32, StoreError> {
    v.try_into().map_err(|v: Vec<u8>| {
        StoreError::Corrupt(format!(
            "column {column} holds {} bytes, expected 32",
            v.len()
        ))
    })
}

pub fn uuid<T: From<uuid::Uuid>>(s: &str, column: &str) -> Result<T, StoreError> {
    uuid::Uuid::parse_str(s)
        .map(T::from)
        .map_err(|_| StoreError::Corrupt(format!("column {column} holds {s:?}, not a UUID")))
}

pub fn role(s: &str) -> Result<Role, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $backend:expr) => {
        mod sql_store_rows {
            use $crate::sqlx::Row as _;
            use meshwork_domain::*;
            use meshwork_store::*;
            use $crate::{db, hash32, role, uuid};

            pub(super) type DbRow = <$db as $crate::sqlx::Database>::Row;

            pub(super) fn partnership(r: &DbRow) -> Result<PartnershipRow> {
                let a: String = r.try_get("inviter_ws").map_err(db)?;
                let b: String = r.try_get("invitee_ws").map_err(db)?;
                Ok(PartnershipRow {
                    id: r.try_get("id").map_err(db)?,
                    inviter: WorkspaceId(uuid(&a, "partnerships.inviter_ws")?),
                    invitee: WorkspaceId(uuid(&b, "partnerships.invitee_ws")?),
                    state: r.try_get("state").map_err(db)?,
                    inviter_settings: r.try_get("inviter_settings").map_err(db)?,
                    invitee_settings: r.try_get("invitee_settings").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                    version: r.try_get("version").map_err(db)?,
                })
            }

            pub(super) fn remote_partnership(r: &DbRow) -> Result<RemotePartnershipRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                Ok(RemotePartnershipRow {
                    id: r.try_get("id").map_err(db)?,
                    workspace_id: WorkspaceId(uuid(&ws, "remote_partnerships.workspace_id")?),
                    role: r.try_get("role").map_err(db)?,
                    state: r.try_get("state").map_err(db)?,
                    invite_hash: r.try_get("invite_hash").map_err(db)?,
                    invite_expires_at: r.try_get("invite_expires_at").map_err(db)?,
                    peer_sealed: r.try_get("peer_sealed").map_err(db)?,
                    settings: r.try_get("settings").map_err(db)?,
                    view_sealed: r.try_get("view_sealed").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                    version: r.try_get("version").map_err(db)?,
                })
            }

            pub(super) fn population(r: &DbRow) -> Result<PopulationRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                Ok(PopulationRow {
                    id: r.try_get("id").map_err(db)?,
                    workspace_id: WorkspaceId(uuid(&ws, "populations.workspace_id")?),
                    data_sealed: r.try_get("data_sealed").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) fn connector(r: &DbRow) -> Result<meshwork_store::ConnectorRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                Ok(meshwork_store::ConnectorRow {
                    id: r.try_get("id").map_err(db)?,
                    workspace_id: WorkspaceId(uuid(&ws, "connectors.workspace_id")?),
                    source: r.try_get("source").map_err(db)?,
                    kind: r.try_get("kind").map_err(db)?,
                    settings_sealed: r.try_get("settings_sealed").map_err(db)?,
                    paused: r.try_get("paused").map_err(db)?,
                    every_seconds: r.try_get("every_seconds").map_err(db)?,
                    next_sync_at: r.try_get("next_sync_at").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) fn connector_record(r: &DbRow) -> Result<meshwork_store::ConnectorRecordRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                Ok(meshwork_store::ConnectorRecordRow {
                    workspace_id: WorkspaceId(uuid(&ws, "connector_records.workspace_id")?),
                    connector_id: r.try_get("connector_id").map_err(db)?,
                    item: r.try_get("item").map_err(db)?,
                    record_id: RecordId(uuid(&r.try_get::<String, _>("record_id").map_err(db)?, "connector_records.record_id")?),
                    created: r.try_get("created").map_err(db)?,
                    fingerprint: r.try_get("fingerprint").map_err(db)?,
                    version: r.try_get("version").map_err(db)?,
                    state_sealed: r.try_get("state_sealed").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) fn document_mark(r: &DbRow) -> Result<meshwork_store::DocumentMarkRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                let user: String = r.try_get("user_id").map_err(db)?;
                Ok(meshwork_store::DocumentMarkRow {
                    workspace_id: WorkspaceId(uuid(&ws, "document_marks.workspace_id")?),
                    user_id: meshwork_domain::UserId(uuid(&user, "document_marks.user_id")?),
                    document_id: r.try_get("document_id").map_err(db)?,
                    source: r.try_get("source").map_err(db)?,
                    pinned: r.try_get("pinned").map_err(db)?,
                    note_sealed: r.try_get("note_sealed").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) fn connector_run(r: &DbRow) -> Result<meshwork_store::ConnectorRunRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                Ok(meshwork_store::ConnectorRunRow {
                    id: r.try_get("id").map_err(db)?,
                    workspace_id: WorkspaceId(uuid(&ws, "connector_runs.workspace_id")?),
                    connector_id: r.try_get("connector_id").map_err(db)?,
                    trigger: r.try_get("trigger").map_err(db)?,
                    state: r.try_get("state").map_err(db)?,
                    started_at: r.try_get("started_at").map_err(db)?,
                    finished_at: r.try_get("finished_at").map_err(db)?,
                    counts: r.try_get("counts").map_err(db)?,
                    report_sealed: r.try_get("report_sealed").map_err(db)?,
                })
            }

            pub(super) fn saved_view(r: &DbRow) -> Result<meshwork_store::SavedViewRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                let user: String = r.try_get("user_id").map_err(db)?;
                Ok(meshwork_store::SavedViewRow {
                    id: r.try_get("id").map_err(db)?,
                    workspace_id: WorkspaceId(uuid(&ws, "saved_views.workspace_id")?),
                    user_id: meshwork_domain::UserId(uuid(&user, "saved_views.user_id")?),
                    shared: r.try_get("shared").map_err(db)?,
                    kind: r.try_get("kind").map_err(db)?,
                    data_sealed: r.try_get("data_sealed").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                })
            }

            pub(super) fn source_doc(r: &DbRow) -> Result<SourceDocRow> {
                let ws: String = r.try_get("workspace_id").map_err(db)?;
                Ok(SourceDocRow {
                    id: r.try_get("id").map_err(db)?,
                    workspace_id: WorkspaceId(uuid(&ws, "source_documents.workspace_id")?),
                    source: r.try_get("source").map_err(db)?,
                    data_sealed: r.try_get("data_sealed").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                    fingerprint: r.try_get("fingerprint").map_err(db)?,
                })
            }

            pub(super) fn session(r: &DbRow) -> Result<meshwork_store::SessionRow> {
                Ok(meshwork_store::SessionRow {
                    token_hash: hash32(r.try_get("token_hash").map_err(db)?, "sessions.token_hash")?,
                    user_id: UserId(uuid(&r.try_get::<String, _>("user_id").map_err(db)?, "sessions.user_id")?),
                    created_at: r.try_get("created_at").map_err(db)?,
                    expires_at: r.try_get("expires_at").map_err(db)?,
                    last_seen_at: r.try_get("last_seen_at").map_err(db)?,
                    client_sealed: r.try_get("client_sealed").map_err(db)?,
                })
            }

            pub(super) fn support_grant(r: &DbRow) -> Result<meshwork_store::SupportGrantRow> {
                let approved_by: Option<String> = r.try_get("approved_by").map_err(db)?;
                Ok(meshwork_store::SupportGrantRow {
                    id: uuid(&r.try_get::<String, _>("id").map_err(db)?, "support_grants.id")?,
                    workspace_id: WorkspaceId(uuid(&r.try_get::<String, _>("workspace_id").map_err(db)?, "support_grants.workspace_id")?),
                    operator_sealed: r.try_get("operator_sealed").map_err(db)?,
                    reason_sealed: r.try_get("reason_sealed").map_err(db)?,
                    minutes: r.try_get("minutes").map_err(db)?,
                    requested_at: r.try_get("requested_at").map_err(db)?,
                    approved_by: approved_by.map(|u| uuid(&u, "support_grants.approved_by").map(UserId)).transpose()?,
                    approved_at: r.try_get("approved_at").map_err(db)?,
                    expires_at: r.try_get("expires_at").map_err(db)?,
                    revoked_at: r.try_get("revoked_at").map_err(db)?,
                })
            }

            pub(super) const USER_COLUMNS: &str = "id, email_index, email_sealed, name_sealed, company_sealed, job_title_sealed, password_hash, email_verified, age_confirmed_at, totp_secret_sealed, totp_enabled, failed_logins, locked_until, created_at, updated_at";

            pub(super) fn user(r: &DbRow) -> Result<UserRow> {
                Ok(UserRow {
                    id: UserId(uuid(&r.try_get::<String, _>("id").map_err(db)?, "users.id")?),
                    email_index: hash32(r.try_get("email_index").map_err(db)?, "users.email_index")?,
                    email_sealed: r.try_get("email_sealed").map_err(db)?,
                    name_sealed: r.try_get("name_sealed").map_err(db)?,
                    company_sealed: r.try_get("company_sealed").map_err(db)?,
                    job_title_sealed: r.try_get("job_title_sealed").map_err(db)?,
                    password_hash: r.try_get("password_hash").map_err(db)?,
                    email_verified: r.try_get("email_verified").map_err(db)?,
                    age_confirmed_at: r.try_get("age_confirmed_at").map_err(db)?,
                    totp_secret_sealed: r.try_get("totp_secret_sealed").map_err(db)?,
                    totp_enabled: r.try_get("totp_enabled").map_err(db)?,
                    failed_logins: r.try_get("failed_logins").map_err(db)?,
                    locked_until: r.try_get("locked_until").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) fn workspace(r: &DbRow) -> Result<WorkspaceRow> {
                Ok(WorkspaceRow {
                    id: WorkspaceId(uuid(&r.try_get::<String, _>("id").map_err(db)?, "workspaces.id")?),
                    name_sealed: r.try_get("name_sealed").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    last_seq: r.try_get("last_seq").map_err(db)?,
                })
            }

            pub(super) const API_KEY_COLUMNS: &str = "id, workspace_id, key_hash, prefix, name_sealed, role, created_by, created_at, expires_at, revoked_at, last_used_at, last_used_from_sealed";

            pub(super) fn api_key(r: &DbRow) -> Result<ApiKeyRow> {
                Ok(ApiKeyRow {
                    id: ApiKeyId(uuid(&r.try_get::<String, _>("id").map_err(db)?, "api_keys.id")?),
                    workspace_id: WorkspaceId(uuid(&r.try_get::<String, _>("workspace_id").map_err(db)?, "api_keys.workspace_id")?),
                    key_hash: hash32(r.try_get("key_hash").map_err(db)?, "api_keys.key_hash")?,
                    prefix: r.try_get("prefix").map_err(db)?,
                    name_sealed: r.try_get("name_sealed").map_err(db)?,
                    role: role(&r.try_get::<String, _>("role").map_err(db)?)?,
                    created_by: UserId(uuid(&r.try_get::<String, _>("created_by").map_err(db)?, "api_keys.created_by")?),
                    created_at: r.try_get("created_at").map_err(db)?,
                    expires_at: r.try_get("expires_at").map_err(db)?,
                    revoked_at: r.try_get("revoked_at").map_err(db)?,
                    last_used_at: r.try_get("last_used_at").map_err(db)?,
                    last_used_from_sealed: r.try_get("last_used_from_sealed").map_err(db)?,
                })
            }

            fn opt_uuid(r: &DbRow, col: &str) -> Result<Option<::uuid::Uuid>> {
                match r.try_get::<Option<String>, _>(col).map_err(db)? {
                    Some(s) => Ok(Some(uuid(&s, col)?)),
                    None => Ok(None),
                }
            }

            pub(super) fn audit(r: &DbRow) -> Result<AuditRow> {
                Ok(AuditRow {
                    id: AuditId(uuid(&r.try_get::<String, _>("id").map_err(db)?, "audit_log.id")?),
                    workspace_id: opt_uuid(r, "workspace_id")?.map(WorkspaceId),
                    actor: opt_uuid(r, "actor")?.map(UserId),
                    subject: opt_uuid(r, "subject")?.map(UserId),
                    kind: r.try_get("kind").map_err(db)?,
                    details_sealed: r.try_get("details_sealed").map_err(db)?,
                    at: r.try_get("at").map_err(db)?,
                })
            }

            pub(super) fn change(r: &DbRow) -> Result<ChangeRow> {
                Ok(ChangeRow {
                    workspace_id: WorkspaceId(uuid(&r.try_get::<String, _>("workspace_id").map_err(db)?, "changes.workspace_id")?),
                    seq: r.try_get("seq").map_err(db)?,
                    entity: r.try_get("entity").map_err(db)?,
                    entity_id: r.try_get("entity_id").map_err(db)?,
                    op: r.try_get("op").map_err(db)?,
                    at: r.try_get("at").map_err(db)?,
                })
            }

            pub(super) fn mail(r: &DbRow) -> Result<MailRow> {
                Ok(MailRow {
                    id: uuid(&r.try_get::<String, _>("id").map_err(db)?, "outbox.id")?,
                    to_sealed: r.try_get("to_sealed").map_err(db)?,
                    subject_sealed: r.try_get("subject_sealed").map_err(db)?,
                    body_sealed: r.try_get("body_sealed").map_err(db)?,
                    kind: r.try_get("kind").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                })
            }

            pub(super) const QUEUED_JOB_COLUMNS: &str = "id, kind, workspace_id, payload, payload_sealed, state, attempts, max_attempts, run_at, lease_holder, lease_until, error_sealed, unique_key, created_at, updated_at";

            pub(super) fn queued_job(r: &DbRow) -> Result<QueuedJobRow> {
                let ws: Option<String> = r.try_get("workspace_id").map_err(db)?;
                Ok(QueuedJobRow {
                    id: uuid(&r.try_get::<String, _>("id").map_err(db)?, "job_queue.id")?,
                    kind: r.try_get("kind").map_err(db)?,
                    workspace_id: ws.map(|w| uuid(&w, "job_queue.workspace_id").map(WorkspaceId)).transpose()?,
                    payload: r.try_get("payload").map_err(db)?,
                    payload_sealed: r.try_get("payload_sealed").map_err(db)?,
                    state: r.try_get("state").map_err(db)?,
                    attempts: r.try_get("attempts").map_err(db)?,
                    max_attempts: r.try_get("max_attempts").map_err(db)?,
                    run_at: r.try_get("run_at").map_err(db)?,
                    lease_holder: r.try_get("lease_holder").map_err(db)?,
                    lease_until: r.try_get("lease_until").map_err(db)?,
                    error_sealed: r.try_get("error_sealed").map_err(db)?,
                    unique_key: r.try_get("unique_key").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) const RECORD_COLUMNS: &str = "id, workspace_id, kind, data_sealed, occurred_at, created_at, updated_at, version";

            pub(super) fn record(r: &DbRow) -> Result<RecordRow> {
                Ok(RecordRow {
                    id: RecordId(uuid(&r.try_get::<String, _>("id").map_err(db)?, "crm_records.id")?),
                    workspace_id: WorkspaceId(uuid(&r.try_get::<String, _>("workspace_id").map_err(db)?, "crm_records.workspace_id")?),
                    kind: r.try_get("kind").map_err(db)?,
                    data_sealed: r.try_get("data_sealed").map_err(db)?,
                    occurred_at: r.try_get("occurred_at").map_err(db)?,
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                    version: r.try_get("version").map_err(db)?,
                })
            }

            pub(super) fn link(r: &DbRow) -> Result<LinkRow> {
                Ok(LinkRow {
                    from: RecordId(uuid(&r.try_get::<String, _>("from_id").map_err(db)?, "crm_links.from_id")?),
                    to: RecordId(uuid(&r.try_get::<String, _>("to_id").map_err(db)?, "crm_links.to_id")?),
                    role: r.try_get("role").map_err(db)?,
                })
            }

            pub(super) fn event(r: &DbRow) -> Result<EventRow> {
                Ok(EventRow {
                    id: uuid(&r.try_get::<String, _>("id").map_err(db)?, "crm_events.id")?,
                    subject: RecordId(uuid(&r.try_get::<String, _>("subject_id").map_err(db)?, "crm_events.subject_id")?),
                    kind: r.try_get("kind").map_err(db)?,
                    details_sealed: r.try_get("details_sealed").map_err(db)?,
                    at: r.try_get("at").map_err(db)?,
                })
            }

            pub(super) const JOB_COLUMNS: &str = "id, workspace_id, kind, state, spec_sealed, progress_sealed, cursor, created_by, created_at, updated_at";

            pub(super) fn job(r: &DbRow) -> Result<JobRow> {
                Ok(JobRow {
                    id: JobId(uuid(&r.try_get::<String, _>("id").map_err(db)?, "jobs.id")?),
                    workspace_id: WorkspaceId(uuid(&r.try_get::<String, _>("workspace_id").map_err(db)?, "jobs.workspace_id")?),
                    kind: r.try_get("kind").map_err(db)?,
                    state: r.try_get("state").map_err(db)?,
                    spec_sealed: r.try_get("spec_sealed").map_err(db)?,
                    progress_sealed: r.try_get("progress_sealed").map_err(db)?,
                    cursor: r.try_get("cursor").map_err(db)?,
                    created_by: UserId(uuid(&r.try_get::<String, _>("created_by").map_err(db)?, "jobs.created_by")?),
                    created_at: r.try_get("created_at").map_err(db)?,
                    updated_at: r.try_get("updated_at").map_err(db)?,
                })
            }

            pub(super) fn import_item(r: &DbRow) -> Result<ImportItemRow> {
                Ok(ImportItemRow {
                    job: JobId(uuid(&r.try_get::<String, _>("job_id").map_err(db)?, "import_items.job_id")?),
                    record: RecordId(uuid(&r.try_get::<String, _>("record_id").map_err(db)?, "import_items.record_id")?),
                    action: r.try_get("action").map_err(db)?,
                    previous_sealed: r.try_get("previous_sealed").map_err(db)?,
                })
            }
        }

        /// Appends one change to the workspace's feed inside the caller's transaction; the
        /// `UPDATE … RETURNING` takes the workspace row's write lock, so sequence numbers are
        /// gap-free and ordered even with several servers on one PostgreSQL.
        async fn append_change(
            tx: &mut <$db as $crate::sqlx::Database>::Connection,
            ws: meshwork_domain::WorkspaceId,
            entity: &str,
            entity_id: &str,
            op: &str,
            now: meshwork_domain::Millis,
        ) -> meshwork_store::Result<()> {
            use $crate::sqlx::Row as _;
            let seq: i64 = $crate::sqlx::query("UPDATE workspaces SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
                .bind(ws.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err($crate::db)?
                .try_get(0)
                .map_err($crate::db)?;
            $crate::sqlx::query("INSERT INTO changes (workspace_id, seq, entity, entity_id, op, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(ws.to_string())
                .bind(seq)
                .bind(entity)
                .bind(entity_id)
                .bind(op)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($crate::db)?;
            Ok(())
        }

        #[$crate::async_trait]
        impl meshwork_store::Store for $store {
            fn backend(&self) -> meshwork_store::Backend {
                $backend
            }

            async fn close(&self) {
                self.writer().close().await;
                self.reader().close().await;
            }

            async fn analyze_after_bulk_write(&self) -> meshwork_store::Result<()> {
                if $backend == meshwork_store::Backend::Postgres {
                    $crate::sqlx::raw_sql("ANALYZE crm_records, crm_keys, crm_links, changes, import_items")
                        .execute(self.writer()).await.map_err($crate::db)?;
                }
                Ok(())
            }

            async fn create_user(&self, u: &meshwork_store::UserRow) -> meshwork_store::Result<()> {
                // A new account counts as active from its creation (retention, mm13).
                $crate::sqlx::query("INSERT INTO users (id, email_index, email_sealed, name_sealed, company_sealed, job_title_sealed, password_hash, email_verified, age_confirmed_at, totp_secret_sealed, totp_enabled, failed_logins, locked_until, created_at, updated_at, last_active_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $14)")
                    .bind(u.id.to_string())
                    .bind(&u.email_index[..])
                    .bind(&u.email_sealed)
                    .bind(&u.name_sealed)
                    .bind(&u.company_sealed)
                    .bind(&u.job_title_sealed)
                    .bind(&u.password_hash)
                    .bind(u.email_verified)
                    .bind(u.age_confirmed_at)
                    .bind(&u.totp_secret_sealed)
                    .bind(u.totp_enabled)
                    .bind(u.failed_logins)
                    .bind(u.locked_until)
                    .bind(u.created_at)
                    .bind(u.updated_at)
                    .execute(self.writer())
                    .await
                    .map_err($crate::db_err("users.email"))?;
                Ok(())
            }

            async fn user(&self, id: meshwork_domain::UserId) -> meshwork_store::Result<Option<meshwork_store::UserRow>> {
                let sql = format!("SELECT {} FROM users WHERE id = $1", sql_store_rows::USER_COLUMNS);
                $crate::sqlx::query(&sql).bind(id.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::user).transpose()
            }

            async fn user_by_email_index(&self, index: &meshwork_store::Hash32) -> meshwork_store::Result<Option<meshwork_store::UserRow>> {
                let sql = format!("SELECT {} FROM users WHERE email_index = $1", sql_store_rows::USER_COLUMNS);
                $crate::sqlx::query(&sql).bind(&index[..]).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::user).transpose()
            }

            async fn update_profile(&self, id: meshwork_domain::UserId, p: &meshwork_store::ProfileUpdate, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET email_index = $2, email_sealed = $3, name_sealed = $4, company_sealed = $5, job_title_sealed = $6, email_verified = $7, updated_at = $8 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(&p.email_index[..])
                    .bind(&p.email_sealed)
                    .bind(&p.name_sealed)
                    .bind(&p.company_sealed)
                    .bind(&p.job_title_sealed)
                    .bind(p.email_verified)
                    .bind(now)
                    .execute(self.writer())
                    .await
                    .map_err($crate::db_err("users.email"))?;
                Ok(())
            }

            async fn set_password_hash(&self, id: meshwork_domain::UserId, hash: &str, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3, failed_logins = 0, locked_until = NULL WHERE id = $1")
                    .bind(id.to_string()).bind(hash).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn upgrade_password_hash(&self, id: meshwork_domain::UserId, old: &str, new: &str) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
                    .bind(id.to_string()).bind(old).bind(new)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_email_verified(&self, id: meshwork_domain::UserId, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET email_verified = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.to_string()).bind(true).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn confirm_email(&self, id: meshwork_domain::UserId, email_index: &meshwork_store::Hash32, email_sealed: Option<&[u8]>, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let done = match email_sealed {
                    Some(sealed) => $crate::sqlx::query("UPDATE users SET email_index = $2, email_sealed = $3, email_verified = $4, updated_at = $5 WHERE id = $1")
                        .bind(id.to_string()).bind(&email_index[..]).bind(sealed).bind(true).bind(now)
                        .execute(self.writer()).await.map_err($crate::db_err("users.email"))?,
                    None => $crate::sqlx::query("UPDATE users SET email_verified = $3, updated_at = $4 WHERE id = $1 AND email_index = $2")
                        .bind(id.to_string()).bind(&email_index[..]).bind(true).bind(now)
                        .execute(self.writer()).await.map_err($crate::db)?,
                };
                Ok(done.rows_affected() == 1)
            }

            async fn begin_login_attempt(&self, id: meshwork_domain::UserId, lock_after: i32, lock_until: meshwork_domain::Millis, now: meshwork_domain::Millis) -> meshwork_store::Result<Option<i32>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("UPDATE users SET failed_logins = CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_logins + 1 END, locked_until = CASE WHEN (CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_logins + 1 END) >= $2 THEN $3 ELSE NULL END WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $4) RETURNING failed_logins")
                    .bind(id.to_string()).bind(lock_after).bind(lock_until).bind(now)
                    .fetch_optional(self.writer()).await.map_err($crate::db)?;
                row.map(|r| r.try_get(0).map_err($crate::db)).transpose()
            }

            async fn refund_login_attempt(&self, id: meshwork_domain::UserId, lock_after: i32) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET failed_logins = CASE WHEN failed_logins > 0 THEN failed_logins - 1 ELSE 0 END, locked_until = CASE WHEN failed_logins - 1 < $2 THEN NULL ELSE locked_until END WHERE id = $1")
                    .bind(id.to_string()).bind(lock_after)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn reset_login_failures(&self, id: meshwork_domain::UserId) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)")
                    .bind(id.to_string())
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn set_totp_secret(&self, id: meshwork_domain::UserId, secret: Option<&[u8]>) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("UPDATE users SET totp_secret_sealed = $2, totp_enabled = $3, totp_last_step = NULL WHERE id = $1")
                    .bind(id.to_string()).bind(secret).bind(false)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                $crate::sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(id.to_string()).execute(&mut *tx).await.map_err($crate::db)?;
                // Security keys are a second factor beside the authenticator app: they go when
                // it goes, with the recovery codes.
                $crate::sqlx::query("DELETE FROM security_keys WHERE user_id = $1")
                    .bind(id.to_string()).execute(&mut *tx).await.map_err($crate::db)?;
                tx.commit().await.map_err($crate::db)
            }

            async fn add_security_key(&self, k: &meshwork_store::SecurityKeyRow, max: i64) -> meshwork_store::Result<bool> {
                // One statement: a concurrent turn-off of TOTP, or another key added meanwhile,
                // is seen (the WHERE clause also lets SQLite parse the upsert after a SELECT).
                let r = $crate::sqlx::query("INSERT INTO security_keys (id, user_id, credential_index, key_sealed, created_at, last_used_at) SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM users WHERE id = $2 AND totp_enabled) AND (SELECT COUNT(*) FROM security_keys WHERE user_id = $2) < $7 ON CONFLICT (credential_index) DO NOTHING")
                    .bind(k.id.to_string()).bind(k.user_id.to_string()).bind(&k.credential_index[..])
                    .bind(&k.key_sealed).bind(k.created_at).bind(k.last_used_at).bind(max)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn security_keys(&self, user: meshwork_domain::UserId) -> meshwork_store::Result<Vec<meshwork_store::SecurityKeyRow>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT id, credential_index, key_sealed, created_at, last_used_at FROM security_keys WHERE user_id = $1 ORDER BY created_at, id")
                    .bind(user.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?
                    .into_iter()
                    .map(|r| Ok(meshwork_store::SecurityKeyRow {
                        id: $crate::uuid(&r.try_get::<String, _>("id").map_err($crate::db)?, "security_keys.id")?,
                        user_id: user,
                        credential_index: $crate::hash32(r.try_get("credential_index").map_err($crate::db)?, "security_keys.credential_index")?,
                        key_sealed: r.try_get("key_sealed").map_err($crate::db)?,
                        created_at: r.try_get("created_at").map_err($crate::db)?,
                        last_used_at: r.try_get("last_used_at").map_err($crate::db)?,
                    }))
                    .collect()
            }

            async fn security_key_used(&self, user: meshwork_domain::UserId, id: uuid::Uuid, old: &[u8], key_sealed: &[u8], at: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE security_keys SET key_sealed = $4, last_used_at = $5 WHERE user_id = $1 AND id = $2 AND key_sealed = $3")
                    .bind(user.to_string()).bind(id.to_string()).bind(old).bind(key_sealed).bind(at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn delete_security_key(&self, user: meshwork_domain::UserId, id: uuid::Uuid) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("DELETE FROM security_keys WHERE user_id = $1 AND id = $2")
                    .bind(user.to_string()).bind(id.to_string())
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn use_totp_step(&self, id: meshwork_domain::UserId, step: i64) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)")
                    .bind(id.to_string()).bind(step)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn enable_totp(&self, id: meshwork_domain::UserId, codes: &[meshwork_store::Hash32]) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("UPDATE users SET totp_enabled = $2 WHERE id = $1")
                    .bind(id.to_string()).bind(true)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                $crate::sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(id.to_string()).execute(&mut *tx).await.map_err($crate::db)?;
                for c in codes {
                    $crate::sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(id.to_string()).bind(&c[..])
                        .execute(&mut *tx).await.map_err($crate::db)?;
                }
                tx.commit().await.map_err($crate::db)
            }

            async fn replace_recovery_codes(&self, id: meshwork_domain::UserId, secret_sealed: &[u8], codes: &[meshwork_store::Hash32]) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                // Takes the row's lock: a concurrent turn-off waits, or has already won.
                let on = $crate::sqlx::query("UPDATE users SET totp_enabled = $2 WHERE id = $1 AND totp_enabled = $2 AND totp_secret_sealed = $3")
                    .bind(id.to_string()).bind(true).bind(secret_sealed)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if on.rows_affected() != 1 {
                    return Ok(false);
                }
                $crate::sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(id.to_string()).execute(&mut *tx).await.map_err($crate::db)?;
                for c in codes {
                    $crate::sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(id.to_string()).bind(&c[..])
                        .execute(&mut *tx).await.map_err($crate::db)?;
                }
                tx.commit().await.map_err($crate::db)?;
                Ok(true)
            }

            async fn take_recovery_code(&self, id: meshwork_domain::UserId, code: &meshwork_store::Hash32) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2")
                    .bind(id.to_string()).bind(&code[..])
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, id: meshwork_domain::UserId) -> meshwork_store::Result<i64> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1")
                    .bind(id.to_string()).fetch_one(self.reader()).await.map_err($crate::db)?
                    .try_get(0).map_err($crate::db)
            }

            async fn set_picture(&self, id: meshwork_domain::UserId, p: Option<&meshwork_store::PictureRow>) -> meshwork_store::Result<()> {
                match p {
                    Some(p) => {
                        $crate::sqlx::query("INSERT INTO user_pictures (user_id, content_type, data_sealed) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, data_sealed = excluded.data_sealed")
                            .bind(id.to_string()).bind(&p.content_type).bind(&p.data_sealed)
                            .execute(self.writer()).await.map_err($crate::db)?;
                    }
                    None => {
                        $crate::sqlx::query("DELETE FROM user_pictures WHERE user_id = $1")
                            .bind(id.to_string()).execute(self.writer()).await.map_err($crate::db)?;
                    }
                }
                Ok(())
            }

            async fn picture(&self, id: meshwork_domain::UserId) -> meshwork_store::Result<Option<meshwork_store::PictureRow>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("SELECT content_type, data_sealed FROM user_pictures WHERE user_id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?;
                row.map(|r| Ok(meshwork_store::PictureRow {
                    content_type: r.try_get("content_type").map_err($crate::db)?,
                    data_sealed: r.try_get("data_sealed").map_err($crate::db)?,
                })).transpose()
            }

            async fn remember_device(&self, id: meshwork_domain::UserId, device: &meshwork_store::Hash32, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("INSERT INTO known_devices (user_id, device_hash, first_seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                    .bind(id.to_string()).bind(&device[..]).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn create_session(&self, s: &meshwork_store::SessionRow) -> meshwork_store::Result<()> {
                // A sign-in is a fresh authentication (mm18): `reauth_at` starts at it.
                $crate::sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at, client_sealed, reauth_at) VALUES ($1, $2, $3, $4, $5, $6, $3)")
                    .bind(&s.token_hash[..]).bind(s.user_id.to_string()).bind(s.created_at).bind(s.expires_at)
                    .bind(s.last_seen_at).bind(&s.client_sealed)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn session(&self, token_hash: &meshwork_store::Hash32) -> meshwork_store::Result<Option<meshwork_store::SessionRow>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("SELECT token_hash, user_id, created_at, expires_at, last_seen_at, client_sealed FROM sessions WHERE token_hash = $1")
                    .bind(&token_hash[..]).fetch_optional(self.reader()).await.map_err($crate::db)?;
                row.map(|r| sql_store_rows::session(&r)).transpose()
            }

            async fn user_sessions(&self, user: meshwork_domain::UserId) -> meshwork_store::Result<Vec<meshwork_store::SessionRow>> {
                let rows = $crate::sqlx::query("SELECT token_hash, user_id, created_at, expires_at, last_seen_at, client_sealed FROM sessions WHERE user_id = $1 ORDER BY created_at DESC")
                    .bind(user.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::session).collect()
            }

            async fn touch_session(&self, token_hash: &meshwork_store::Hash32, now: meshwork_domain::Millis, gap: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $3")
                    .bind(&token_hash[..]).bind(now).bind(now - gap)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn delete_session(&self, token_hash: &meshwork_store::Hash32) -> meshwork_store::Result<()> {
                $crate::sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(&token_hash[..]).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn delete_user_sessions(&self, user: meshwork_domain::UserId) -> meshwork_store::Result<()> {
                $crate::sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user.to_string()).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn create_token(&self, t: &meshwork_store::TokenRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO tokens (hash, kind, user_id, expires_at, email_index, email_sealed, payload_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(&t.hash[..]).bind(&t.kind).bind(t.user_id.to_string()).bind(t.expires_at)
                    .bind(t.email_index.map(|i| i.to_vec())).bind(&t.email_sealed).bind(&t.payload_sealed)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn delete_user_tokens(&self, user: meshwork_domain::UserId) -> meshwork_store::Result<()> {
                $crate::sqlx::query("DELETE FROM tokens WHERE user_id = $1")
                    .bind(user.to_string()).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn purge_expired_tokens(&self, now: meshwork_domain::Millis) -> meshwork_store::Result<u64> {
                let r = $crate::sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
                    .bind(now).execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected())
            }

            async fn take_token(&self, kind: &str, hash: &meshwork_store::Hash32, now: meshwork_domain::Millis) -> meshwork_store::Result<Option<meshwork_store::TokenRow>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("DELETE FROM tokens WHERE hash = $1 AND kind = $2 RETURNING user_id, expires_at, email_index, email_sealed, payload_sealed")
                    .bind(&hash[..]).bind(kind)
                    .fetch_optional(self.writer()).await.map_err($crate::db)?;
                let Some(r) = row else { return Ok(None) };
                let expires: i64 = r.try_get("expires_at").map_err($crate::db)?;
                if expires <= now {
                    return Ok(None);
                }
                let email_index: Option<Vec<u8>> = r.try_get("email_index").map_err($crate::db)?;
                Ok(Some(meshwork_store::TokenRow {
                    hash: *hash,
                    kind: kind.to_string(),
                    user_id: meshwork_domain::UserId($crate::uuid(&r.try_get::<String, _>("user_id").map_err($crate::db)?, "tokens.user_id")?),
                    expires_at: expires,
                    email_index: email_index.map(|i| $crate::hash32(i, "tokens.email_index")).transpose()?,
                    email_sealed: r.try_get("email_sealed").map_err($crate::db)?,
                    payload_sealed: r.try_get("payload_sealed").map_err($crate::db)?,
                }))
            }

            async fn create_workspace(&self, ws: &meshwork_store::WorkspaceRow, owner: meshwork_domain::UserId, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("INSERT INTO workspaces (id, name_sealed, created_at, last_seq) VALUES ($1, $2, $3, 0)")
                    .bind(ws.id.to_string()).bind(&ws.name_sealed).bind(ws.created_at)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                $crate::sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
                    .bind(ws.id.to_string()).bind(owner.to_string()).bind("owner").bind(now)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                append_change(&mut tx, ws.id, "workspace", &ws.id.to_string(), "create", now).await?;
                append_change(&mut tx, ws.id, "membership", &owner.to_string(), "create", now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn workspace(&self, id: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Option<meshwork_store::WorkspaceRow>> {
                $crate::sqlx::query("SELECT id, name_sealed, created_at, last_seq FROM workspaces WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::workspace).transpose()
            }

            async fn workspace_ids(&self) -> meshwork_store::Result<Vec<meshwork_domain::WorkspaceId>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT id FROM workspaces ORDER BY id")
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| {
                        let id: String = r.try_get("id").map_err($crate::db)?;
                        id.parse().map_err(|_| meshwork_store::StoreError::Database(format!("invalid workspace id {id:?}").into()))
                    })
                    .collect()
            }

            async fn rename_workspace(&self, id: meshwork_domain::WorkspaceId, name_sealed: &[u8], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("UPDATE workspaces SET name_sealed = $2 WHERE id = $1")
                    .bind(id.to_string()).bind(name_sealed)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                append_change(&mut tx, id, "workspace", &id.to_string(), "update", now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn delete_workspace(&self, id: meshwork_domain::WorkspaceId) -> meshwork_store::Result<bool> {
                // Foreign keys cascade to memberships, invites, API keys and the change feed.
                let r = $crate::sqlx::query("DELETE FROM workspaces WHERE id = $1")
                    .bind(id.to_string())
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn workspaces_of(&self, user: meshwork_domain::UserId) -> meshwork_store::Result<Vec<(meshwork_store::WorkspaceRow, meshwork_domain::Role)>> {
                use $crate::sqlx::Row as _;
                let rows = $crate::sqlx::query("SELECT w.id, w.name_sealed, w.created_at, w.last_seq, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = $1 ORDER BY w.id")
                    .bind(user.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(|r| Ok((sql_store_rows::workspace(r)?, $crate::role(&r.try_get::<String, _>("role").map_err($crate::db)?)?))).collect()
            }

            async fn role_of(&self, ws: meshwork_domain::WorkspaceId, user: meshwork_domain::UserId) -> meshwork_store::Result<Option<meshwork_domain::Role>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(ws.to_string()).bind(user.to_string())
                    .fetch_optional(self.reader()).await.map_err($crate::db)?;
                row.map(|r| $crate::role(&r.try_get::<String, _>(0).map_err($crate::db)?)).transpose()
            }

            async fn members(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::MemberRow>> {
                use $crate::sqlx::Row as _;
                let rows = $crate::sqlx::query("SELECT user_id, role, joined_at FROM memberships WHERE workspace_id = $1 ORDER BY joined_at, user_id")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(|r| Ok(meshwork_store::MemberRow {
                    user_id: meshwork_domain::UserId($crate::uuid(&r.try_get::<String, _>("user_id").map_err($crate::db)?, "memberships.user_id")?),
                    role: $crate::role(&r.try_get::<String, _>("role").map_err($crate::db)?)?,
                    joined_at: r.try_get("joined_at").map_err($crate::db)?,
                })).collect()
            }

            async fn set_role(&self, ws: meshwork_domain::WorkspaceId, user: meshwork_domain::UserId, expected: meshwork_domain::Role, role: meshwork_domain::Role, now: meshwork_domain::Millis) -> meshwork_store::Result<meshwork_store::RoleChange> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                lock_workspace(&mut tx, ws).await?;
                if expected == meshwork_domain::Role::Owner && role != meshwork_domain::Role::Owner && !other_owner_exists(&mut tx, ws, user).await? {
                    return Ok(meshwork_store::RoleChange::LastOwner);
                }
                let r = $crate::sqlx::query("UPDATE memberships SET role = $3 WHERE workspace_id = $1 AND user_id = $2 AND role = $4")
                    .bind(ws.to_string()).bind(user.to_string()).bind(role.as_str()).bind(expected.as_str())
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if r.rows_affected() != 1 {
                    return Ok(meshwork_store::RoleChange::Stale);
                }
                append_change(&mut tx, ws, "membership", &user.to_string(), "update", now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(meshwork_store::RoleChange::Applied)
            }

            async fn remove_member(&self, ws: meshwork_domain::WorkspaceId, user: meshwork_domain::UserId, expected: meshwork_domain::Role, now: meshwork_domain::Millis) -> meshwork_store::Result<meshwork_store::RoleChange> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                lock_workspace(&mut tx, ws).await?;
                if expected == meshwork_domain::Role::Owner && !other_owner_exists(&mut tx, ws, user).await? {
                    return Ok(meshwork_store::RoleChange::LastOwner);
                }
                let r = $crate::sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2 AND role = $3")
                    .bind(ws.to_string()).bind(user.to_string()).bind(expected.as_str())
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if r.rows_affected() != 1 {
                    return Ok(meshwork_store::RoleChange::Stale);
                }
                append_change(&mut tx, ws, "membership", &user.to_string(), "delete", now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(meshwork_store::RoleChange::Applied)
            }

            async fn has_pending_invite(&self, email_index: &meshwork_store::Hash32, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let row = $crate::sqlx::query("SELECT 1 FROM invites WHERE email_index = $1 AND accepted_at IS NULL AND expires_at > $2 LIMIT 1")
                    .bind(&email_index[..]).bind(now)
                    .fetch_optional(self.reader()).await.map_err($crate::db)?;
                Ok(row.is_some())
            }

            async fn users_after(&self, after: Option<meshwork_domain::UserId>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::UserRow>> {
                let sql = format!("SELECT {} FROM users WHERE id > $1 ORDER BY id LIMIT $2", sql_store_rows::USER_COLUMNS);
                $crate::sqlx::query(&sql).bind(after.map(|u| u.to_string()).unwrap_or_default()).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::user).collect()
            }

            async fn session_reauth_at(&self, token_hash: &meshwork_store::Hash32) -> meshwork_store::Result<Option<meshwork_domain::Millis>> {
                $crate::sqlx::query_scalar::<_, i64>("SELECT reauth_at FROM sessions WHERE token_hash = $1")
                    .bind(&token_hash[..]).fetch_optional(self.reader()).await.map_err($crate::db)
            }

            async fn set_session_reauth(&self, token_hash: &meshwork_store::Hash32, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE sessions SET reauth_at = $2 WHERE token_hash = $1")
                    .bind(&token_hash[..]).bind(now).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn set_user_active(&self, user: meshwork_domain::UserId, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET last_active_at = $2, retention_warned = 0 WHERE id = $1")
                    .bind(user.to_string()).bind(now).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn inactive_users(&self, before: meshwork_domain::Millis, after: Option<(meshwork_domain::Millis, meshwork_domain::UserId)>, limit: i64) -> meshwork_store::Result<Vec<(meshwork_domain::UserId, meshwork_domain::Millis, i32)>> {
                use $crate::sqlx::Row as _;
                let (at, id) = after.map(|(a, u)| (a, u.to_string())).unwrap_or((i64::MIN, String::new()));
                $crate::sqlx::query("SELECT id, last_active_at, retention_warned FROM users WHERE last_active_at < $1 AND (last_active_at > $2 OR (last_active_at = $2 AND id > $3)) ORDER BY last_active_at, id LIMIT $4")
                    .bind(before).bind(at).bind(id).bind(limit).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| Ok((
                        meshwork_domain::UserId($crate::uuid(&r.try_get::<String, _>("id").map_err($crate::db)?, "users.id")?),
                        r.try_get("last_active_at").map_err($crate::db)?,
                        r.try_get("retention_warned").map_err($crate::db)?,
                    )))
                    .collect()
            }

            async fn set_retention_warned(&self, user: meshwork_domain::UserId, days: i32, before: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE users SET retention_warned = $2 WHERE id = $1 AND last_active_at < $3")
                    .bind(user.to_string()).bind(days).bind(before).execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn marketing_opt_out(&self, user: meshwork_domain::UserId) -> meshwork_store::Result<bool> {
                Ok($crate::sqlx::query_scalar::<_, bool>("SELECT marketing_opt_out FROM users WHERE id = $1")
                    .bind(user.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .unwrap_or(true))
            }

            async fn set_marketing_opt_out(&self, user: meshwork_domain::UserId, opt_out: bool) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE users SET marketing_opt_out = $2 WHERE id = $1")
                    .bind(user.to_string()).bind(opt_out).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn delete_user(&self, user: meshwork_domain::UserId, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE created_by = $1 AND revoked_at IS NULL")
                    .bind(user.to_string()).bind(now).execute(&mut *tx).await.map_err($crate::db)?;
                // Rows that name the account but hang on a workspace, not on it.
                $crate::sqlx::query("DELETE FROM document_marks WHERE user_id = $1")
                    .bind(user.to_string()).execute(&mut *tx).await.map_err($crate::db)?;
                let r = $crate::sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user.to_string()).execute(&mut *tx).await.map_err($crate::db)?;
                tx.commit().await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn crm_suppress(&self, ws: meshwork_domain::WorkspaceId, keys: &[meshwork_store::KeyEntry], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                for k in keys {
                    $crate::sqlx::query("INSERT INTO crm_suppressions (workspace_id, key_kind, key_index, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                        .bind(ws.to_string()).bind(&k.kind).bind(&k.index[..]).bind(now)
                        .execute(&mut *tx).await.map_err($crate::db)?;
                }
                tx.commit().await.map_err($crate::db)
            }

            async fn support_grant_create(&self, g: &meshwork_store::SupportGrantRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO support_grants (id, workspace_id, operator_sealed, reason_sealed, minutes, requested_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(g.id.to_string()).bind(g.workspace_id.to_string()).bind(&g.operator_sealed).bind(&g.reason_sealed)
                    .bind(g.minutes).bind(g.requested_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn support_grant(&self, id: uuid::Uuid) -> meshwork_store::Result<Option<meshwork_store::SupportGrantRow>> {
                $crate::sqlx::query("SELECT * FROM support_grants WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::support_grant).transpose()
            }

            async fn support_grants(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::SupportGrantRow>> {
                $crate::sqlx::query("SELECT * FROM support_grants WHERE workspace_id = $1 ORDER BY requested_at DESC, id DESC")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::support_grant).collect()
            }

            async fn support_grant_approve(&self, ws: meshwork_domain::WorkspaceId, id: uuid::Uuid, by: meshwork_domain::UserId, now: meshwork_domain::Millis, expires_at: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE support_grants SET approved_by = $3, approved_at = $4, expires_at = $5 WHERE workspace_id = $1 AND id = $2 AND approved_at IS NULL AND revoked_at IS NULL")
                    .bind(ws.to_string()).bind(id.to_string()).bind(by.to_string()).bind(now).bind(expires_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn support_grant_revoke(&self, ws: meshwork_domain::WorkspaceId, id: uuid::Uuid, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE support_grants SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(ws.to_string()).bind(id.to_string()).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn usage_add(&self, counts: &[(i64, String, i64)]) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                for (day, feature, n) in counts {
                    $crate::sqlx::query("INSERT INTO usage_counts (day, feature, count) VALUES ($1, $2, $3) ON CONFLICT (day, feature) DO UPDATE SET count = usage_counts.count + excluded.count")
                        .bind(*day).bind(feature).bind(*n)
                        .execute(&mut *tx).await.map_err($crate::db)?;
                }
                tx.commit().await.map_err($crate::db)
            }

            async fn usage(&self, since_day: i64) -> meshwork_store::Result<Vec<(i64, String, i64)>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT day, feature, count FROM usage_counts WHERE day >= $1 ORDER BY day, feature")
                    .bind(since_day).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| Ok((r.try_get("day").map_err($crate::db)?, r.try_get("feature").map_err($crate::db)?, r.try_get("count").map_err($crate::db)?)))
                    .collect()
            }

            async fn processors_off(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<bool> {
                Ok($crate::sqlx::query_scalar::<_, bool>("SELECT processors_off FROM workspaces WHERE id = $1")
                    .bind(ws.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .unwrap_or(true))
            }

            async fn set_processors_off(&self, ws: meshwork_domain::WorkspaceId, off: bool) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE workspaces SET processors_off = $2 WHERE id = $1")
                    .bind(ws.to_string()).bind(off).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn admin_mfa_required(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<bool> {
                Ok($crate::sqlx::query_scalar::<_, bool>("SELECT admin_mfa_required FROM workspaces WHERE id = $1")
                    .bind(ws.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .unwrap_or(false))
            }

            async fn set_admin_mfa_required(&self, ws: meshwork_domain::WorkspaceId, on: bool) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE workspaces SET admin_mfa_required = $2 WHERE id = $1")
                    .bind(ws.to_string()).bind(on).execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn workspaces_processors_off(&self) -> meshwork_store::Result<Vec<meshwork_domain::WorkspaceId>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT id FROM workspaces WHERE processors_off")
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| {
                        let id: String = r.try_get("id").map_err($crate::db)?;
                        $crate::uuid(&id, "workspaces.id").map(meshwork_domain::WorkspaceId)
                    })
                    .collect()
            }

            async fn crm_restrict(&self, ws: meshwork_domain::WorkspaceId, id: meshwork_domain::RecordId, on: bool, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let q = if on {
                    "INSERT INTO crm_restrictions (workspace_id, record_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
                } else {
                    "DELETE FROM crm_restrictions WHERE workspace_id = $1 AND record_id = $2 AND $3 = $3"
                };
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query(q).bind(ws.to_string()).bind(id.to_string()).bind(now)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                // A change of the record for whatever follows the feed (overlap views are
                // computed again when their workspaces changed).
                append_change(&mut tx, ws, "contact", &id.to_string(), "update", now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn crm_restricted(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_domain::RecordId>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT record_id FROM crm_restrictions WHERE workspace_id = $1 ORDER BY record_id")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| {
                        let id: String = r.try_get("record_id").map_err($crate::db)?;
                        $crate::uuid(&id, "crm_restrictions.record_id").map(meshwork_domain::RecordId)
                    })
                    .collect()
            }

            async fn crm_has_suppressions(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<bool> {
                Ok($crate::sqlx::query("SELECT 1 FROM crm_suppressions WHERE workspace_id = $1 LIMIT 1")
                    .bind(ws.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .is_some())
            }

            async fn crm_suppressed(&self, ws: meshwork_domain::WorkspaceId, key_kind: &str, indexes: &[meshwork_store::Hash32]) -> meshwork_store::Result<Vec<meshwork_store::Hash32>> {
                use $crate::sqlx::Row as _;
                let mut out = Vec::new();
                for chunk in indexes.chunks(500) {
                    let sql = format!("SELECT key_index FROM crm_suppressions WHERE workspace_id = {} AND key_kind = {} AND key_index IN ({})", param(1), param(2), placeholders(3, chunk.len()));
                    let mut q = $crate::sqlx::query(&sql).bind(ws.to_string()).bind(key_kind);
                    for i in chunk {
                        q = q.bind(&i[..]);
                    }
                    for r in q.fetch_all(self.reader()).await.map_err($crate::db)? {
                        out.push($crate::hash32(r.try_get("key_index").map_err($crate::db)?, "crm_suppressions.key_index")?);
                    }
                }
                Ok(out)
            }

            async fn user_count(&self) -> meshwork_store::Result<i64> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("SELECT COUNT(*) AS n FROM users")
                    .fetch_one(self.reader()).await.map_err($crate::db)?;
                row.try_get::<i64, _>("n").map_err($crate::db)
            }

            async fn revoke_invite(&self, ws: meshwork_domain::WorkspaceId, id: meshwork_domain::InviteId, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                lock_workspace(&mut tx, ws).await?;
                let r = $crate::sqlx::query("DELETE FROM invites WHERE workspace_id = $1 AND id = $2 AND accepted_at IS NULL")
                    .bind(ws.to_string()).bind(id.to_string())
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                append_change(&mut tx, ws, "invite", &id.to_string(), "delete", now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(true)
            }

            async fn create_invite(&self, i: &meshwork_store::InviteRow, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("INSERT INTO invites (id, workspace_id, token_hash, email_index, role, invited_by, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(i.id.to_string()).bind(i.workspace_id.to_string()).bind(&i.token_hash[..]).bind(&i.email_index[..])
                    .bind(i.role.as_str()).bind(i.invited_by.to_string()).bind(i.expires_at).bind(now)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                append_change(&mut tx, i.workspace_id, "invite", &i.id.to_string(), "create", now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn accept_invite(&self, token_hash: &meshwork_store::Hash32, user: meshwork_domain::UserId, email_index: &meshwork_store::Hash32, now: meshwork_domain::Millis) -> meshwork_store::Result<meshwork_store::InviteOutcome> {
                use $crate::sqlx::Row as _;
                use meshwork_store::InviteOutcome;
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                // Lock order everywhere: the workspace row first, then its dependents.
                let target = $crate::sqlx::query("SELECT workspace_id FROM invites WHERE token_hash = $1")
                    .bind(&token_hash[..])
                    .fetch_optional(&mut *tx).await.map_err($crate::db)?;
                let Some(target) = target else { return Ok(InviteOutcome::Invalid) };
                let target_ws: meshwork_domain::WorkspaceId = meshwork_domain::WorkspaceId($crate::uuid(&target.try_get::<String, _>(0).map_err($crate::db)?, "invites.workspace_id")?);
                lock_workspace(&mut tx, target_ws).await?;
                let row = $crate::sqlx::query("UPDATE invites SET accepted_at = $2 WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 AND email_index = $3 RETURNING id, workspace_id, role, invited_by")
                    .bind(&token_hash[..]).bind(now).bind(&email_index[..])
                    .fetch_optional(&mut *tx).await.map_err($crate::db)?;
                let Some(r) = row else { return Ok(InviteOutcome::Invalid) };
                let ws = meshwork_domain::WorkspaceId($crate::uuid(&r.try_get::<String, _>("workspace_id").map_err($crate::db)?, "invites.workspace_id")?);
                let invite_id: String = r.try_get("id").map_err($crate::db)?;
                let invited_role = $crate::role(&r.try_get::<String, _>("role").map_err($crate::db)?)?;
                let inviter: String = r.try_get("invited_by").map_err($crate::db)?;
                // The inviter must still be a member, and cannot grant more than they now hold.
                let inviter_role = $crate::sqlx::query("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(ws.to_string()).bind(&inviter)
                    .fetch_optional(&mut *tx).await.map_err($crate::db)?;
                let Some(inviter_role) = inviter_role else { return Ok(InviteOutcome::Invalid) };
                let inviter_role = $crate::role(&inviter_role.try_get::<String, _>(0).map_err($crate::db)?)?;
                let role = if inviter_role.rank() < invited_role.rank() { inviter_role } else { invited_role };
                append_change(&mut tx, ws, "invite", &invite_id, "update", now).await?;
                let inserted = $crate::sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(ws.to_string()).bind(user.to_string()).bind(role.as_str()).bind(now)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                let outcome = if inserted.rows_affected() == 1 {
                    append_change(&mut tx, ws, "membership", &user.to_string(), "create", now).await?;
                    InviteOutcome::Joined { workspace: ws, role }
                } else {
                    InviteOutcome::AlreadyMember { workspace: ws }
                };
                tx.commit().await.map_err($crate::db)?;
                Ok(outcome)
            }

            async fn create_api_key(&self, k: &meshwork_store::ApiKeyRow, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("INSERT INTO api_keys (id, workspace_id, key_hash, prefix, name_sealed, role, created_by, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(k.id.to_string()).bind(k.workspace_id.to_string()).bind(&k.key_hash[..]).bind(&k.prefix)
                    .bind(&k.name_sealed).bind(k.role.as_str()).bind(k.created_by.to_string()).bind(k.created_at)
                    .bind(k.expires_at).bind(k.revoked_at)
                    .execute(&mut *tx).await.map_err($crate::db_err("api_keys.key_hash"))?;
                append_change(&mut tx, k.workspace_id, "api_key", &k.id.to_string(), "create", now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn api_key_by_hash(&self, hash: &meshwork_store::Hash32) -> meshwork_store::Result<Option<(meshwork_store::ApiKeyRow, Option<meshwork_domain::Role>)>> {
                use $crate::sqlx::Row as _;
                let sql = "SELECT k.id, k.workspace_id, k.key_hash, k.prefix, k.name_sealed, k.role, k.created_by, k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.last_used_from_sealed, m.role AS creator_role FROM api_keys k LEFT JOIN memberships m ON m.workspace_id = k.workspace_id AND m.user_id = k.created_by WHERE k.key_hash = $1";
                let row = $crate::sqlx::query(sql).bind(&hash[..]).fetch_optional(self.reader()).await.map_err($crate::db)?;
                let Some(r) = row else { return Ok(None) };
                let creator = r.try_get::<Option<String>, _>("creator_role").map_err($crate::db)?.map(|s| $crate::role(&s)).transpose()?;
                Ok(Some((sql_store_rows::api_key(&r)?, creator)))
            }

            async fn api_keys(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::ApiKeyRow>> {
                let sql = format!("SELECT {} FROM api_keys WHERE workspace_id = $1 ORDER BY id", sql_store_rows::API_KEY_COLUMNS);
                $crate::sqlx::query(&sql).bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::api_key).collect()
            }

            async fn revoke_api_key(&self, ws: meshwork_domain::WorkspaceId, id: meshwork_domain::ApiKeyId, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let r = $crate::sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id.to_string()).bind(now)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                append_change(&mut tx, ws, "api_key", &id.to_string(), "update", now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(true)
            }

            async fn api_keys_expiring(&self, now: meshwork_domain::Millis, by: meshwork_domain::Millis) -> meshwork_store::Result<Vec<meshwork_store::ApiKeyRow>> {
                let sql = format!("SELECT {} FROM api_keys WHERE revoked_at IS NULL AND expiry_warned_at IS NULL AND expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id", sql_store_rows::API_KEY_COLUMNS);
                $crate::sqlx::query(&sql).bind(now).bind(by).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::api_key).collect()
            }

            async fn claim_api_key_expiry_warning(&self, id: meshwork_domain::ApiKeyId, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE api_keys SET expiry_warned_at = $2 WHERE id = $1 AND expiry_warned_at IS NULL")
                    .bind(id.to_string()).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn touch_api_key(&self, id: meshwork_domain::ApiKeyId, at: meshwork_domain::Millis, from_sealed: &[u8]) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE api_keys SET last_used_at = $2, last_used_from_sealed = $3 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)")
                    .bind(id.to_string()).bind(at).bind(from_sealed)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn revoke_user_api_keys(&self, user: meshwork_domain::UserId, now: meshwork_domain::Millis) -> meshwork_store::Result<Vec<meshwork_domain::WorkspaceId>> {
                use $crate::sqlx::Row as _;
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let rows = $crate::sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE created_by = $1 AND revoked_at IS NULL RETURNING workspace_id, id")
                    .bind(user.to_string()).bind(now)
                    .fetch_all(&mut *tx).await.map_err($crate::db)?;
                let mut workspaces = Vec::new();
                for r in rows {
                    let ws = meshwork_domain::WorkspaceId($crate::uuid(&r.try_get::<String, _>("workspace_id").map_err($crate::db)?, "api_keys.workspace_id")?);
                    let id: String = r.try_get("id").map_err($crate::db)?;
                    append_change(&mut tx, ws, "api_key", &id, "update", now).await?;
                    if !workspaces.contains(&ws) {
                        workspaces.push(ws);
                    }
                }
                tx.commit().await.map_err($crate::db)?;
                Ok(workspaces)
            }

            async fn append_audit(&self, e: &meshwork_store::AuditRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO audit_log (id, workspace_id, actor, subject, kind, details_sealed, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(e.id.to_string()).bind(e.workspace_id.map(|w| w.to_string())).bind(e.actor.map(|u| u.to_string()))
                    .bind(e.subject.map(|u| u.to_string())).bind(&e.kind).bind(&e.details_sealed).bind(e.at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn prune_audit(&self, before: meshwork_domain::Millis) -> meshwork_store::Result<u64> {
                let done = $crate::sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(before)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected())
            }

            async fn audit(&self, scope: meshwork_store::AuditScope, before: Option<meshwork_domain::AuditId>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::AuditRow>> {
                let (column, id) = match scope {
                    meshwork_store::AuditScope::Workspace(w) => ("workspace_id", w.to_string()),
                    meshwork_store::AuditScope::User(u) => ("subject", u.to_string()),
                };
                let cols = "id, workspace_id, actor, subject, kind, details_sealed, at";
                let rows = match before {
                    Some(b) => {
                        let sql = format!("SELECT {cols} FROM audit_log WHERE {column} = $1 AND id < $2 ORDER BY id DESC LIMIT $3");
                        $crate::sqlx::query(&sql).bind(id).bind(b.to_string()).bind(limit).fetch_all(self.reader()).await
                    }
                    None => {
                        let sql = format!("SELECT {cols} FROM audit_log WHERE {column} = $1 ORDER BY id DESC LIMIT $2");
                        $crate::sqlx::query(&sql).bind(id).bind(limit).fetch_all(self.reader()).await
                    }
                }.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::audit).collect()
            }

            async fn enqueue_mail(&self, m: &meshwork_store::MailRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO outbox (id, to_sealed, subject_sealed, body_sealed, kind, created_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, 0)")
                    .bind(m.id.to_string()).bind(&m.to_sealed).bind(&m.subject_sealed).bind(&m.body_sealed).bind(&m.kind).bind(m.created_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn unsent_mail(&self, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::MailRow>> {
                $crate::sqlx::query("SELECT id, to_sealed, subject_sealed, body_sealed, kind, created_at FROM outbox WHERE sent_at IS NULL ORDER BY created_at, id LIMIT $1")
                    .bind(limit).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::mail).collect()
            }

            async fn operations(&self) -> meshwork_store::Result<meshwork_store::OperationsRow> {
                use $crate::sqlx::Row as _;
                let jobs = $crate::sqlx::query("SELECT kind, state, COUNT(*) AS n FROM job_queue WHERE state IN ('queued', 'running', 'failed') GROUP BY kind, state ORDER BY kind, state")
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| Ok((r.try_get("kind").map_err($crate::db)?, r.try_get("state").map_err($crate::db)?, r.try_get("n").map_err($crate::db)?)))
                    .collect::<meshwork_store::Result<Vec<(String, String, i64)>>>()?;
                let outbox = $crate::sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE sent_at IS NULL")
                    .fetch_one(self.reader()).await.map_err($crate::db)?;
                let last_seqs = $crate::sqlx::query("SELECT id, last_seq FROM workspaces")
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter()
                    .map(|r| Ok((meshwork_domain::WorkspaceId($crate::uuid(&r.try_get::<String, _>("id").map_err($crate::db)?, "workspaces.id")?), r.try_get("last_seq").map_err($crate::db)?)))
                    .collect::<meshwork_store::Result<Vec<_>>>()?;
                Ok(meshwork_store::OperationsRow {
                    jobs,
                    unsent_mail: outbox.try_get("n").map_err($crate::db)?,
                    oldest_unsent_at: outbox.try_get("oldest").map_err($crate::db)?,
                    last_seqs,
                })
            }

            async fn changes_since(&self, ws: meshwork_domain::WorkspaceId, after: i64, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::ChangeRow>> {
                $crate::sqlx::query("SELECT workspace_id, seq, entity, entity_id, op, at FROM changes WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                    .bind(ws.to_string()).bind(after).bind(limit).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::change).collect()
            }

            async fn crm_apply(&self, ws: meshwork_domain::WorkspaceId, batch: &meshwork_store::CrmBatch, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                use meshwork_store::CrmOp;
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let mut changes: Vec<(&str, String, &str)> = Vec::new();
                // Creations are buffered and written as multi-row inserts (one statement per
                // few hundred rows instead of one per row: an import batch is thousands of
                // rows); anything else flushes the buffer first, so statements still run in
                // the batch's order.
                let mut ins = CrmInserts::default();
                for op in &batch.ops {
                    if !matches!(op, CrmOp::Put { expected_version: None, .. } | CrmOp::ImportItem(_)) {
                        flush_inserts(&mut tx, &wss, &mut ins).await?;
                    }
                    match op {
                        CrmOp::Put { record, expected_version, keys, links } => {
                            let id = record.id.to_string();
                            match expected_version {
                                None => {
                                    ins.records.push(record);
                                    changes.push((&record.kind, id.clone(), "create"));
                                }
                                Some(expected) => {
                                    let r = $crate::sqlx::query("UPDATE crm_records SET data_sealed = $3, occurred_at = $4, updated_at = $5, version = $6 WHERE workspace_id = $1 AND id = $2 AND version = $7")
                                        .bind(&wss).bind(&id).bind(&record.data_sealed).bind(record.occurred_at)
                                        .bind(record.updated_at).bind(record.version).bind(*expected)
                                        .execute(&mut *tx).await.map_err($crate::db)?;
                                    if r.rows_affected() != 1 {
                                        return Err(meshwork_store::StoreError::Conflict("crm_records.version"));
                                    }
                                    $crate::sqlx::query("DELETE FROM crm_keys WHERE record_id = $1")
                                        .bind(&id).execute(&mut *tx).await.map_err($crate::db)?;
                                    changes.push((&record.kind, id.clone(), "update"));
                                }
                            }
                            for k in keys {
                                ins.keys.push((&k.kind, &k.index[..], id.clone()));
                            }
                            if let Some(links) = links {
                                if expected_version.is_some() {
                                    flush_inserts(&mut tx, &wss, &mut ins).await?;
                                    $crate::sqlx::query("DELETE FROM crm_links WHERE from_id = $1")
                                        .bind(&id).execute(&mut *tx).await.map_err($crate::db)?;
                                }
                                for l in links {
                                    ins.links.push((id.clone(), l.to.to_string(), &l.role));
                                }
                            }
                        }
                        CrmOp::Delete { id, kind } => {
                            let r = $crate::sqlx::query("DELETE FROM crm_records WHERE workspace_id = $1 AND id = $2")
                                .bind(&wss).bind(id.to_string())
                                .execute(&mut *tx).await.map_err($crate::db)?;
                            if r.rows_affected() == 1 {
                                changes.push((kind, id.to_string(), "delete"));
                            }
                        }
                        CrmOp::Repoint { from, to } => {
                            let (from, to) = (from.to_string(), to.to_string());
                            $crate::sqlx::query("INSERT INTO crm_links (workspace_id, from_id, to_id, role) SELECT workspace_id, $3, to_id, role FROM crm_links WHERE workspace_id = $1 AND from_id = $2 AND to_id <> $3 ON CONFLICT DO NOTHING")
                                .bind(&wss).bind(&from).bind(&to).execute(&mut *tx).await.map_err($crate::db)?;
                            $crate::sqlx::query("INSERT INTO crm_links (workspace_id, from_id, to_id, role) SELECT workspace_id, from_id, $3, role FROM crm_links WHERE workspace_id = $1 AND to_id = $2 AND from_id <> $3 ON CONFLICT DO NOTHING")
                                .bind(&wss).bind(&from).bind(&to).execute(&mut *tx).await.map_err($crate::db)?;
                            $crate::sqlx::query("DELETE FROM crm_links WHERE workspace_id = $1 AND (from_id = $2 OR to_id = $2)")
                                .bind(&wss).bind(&from).execute(&mut *tx).await.map_err($crate::db)?;
                            $crate::sqlx::query("UPDATE crm_events SET subject_id = $3 WHERE workspace_id = $1 AND subject_id = $2")
                                .bind(&wss).bind(&from).bind(&to).execute(&mut *tx).await.map_err($crate::db)?;
                        }
                        CrmOp::Event(e) => {
                            $crate::sqlx::query("INSERT INTO crm_events (id, workspace_id, subject_id, kind, details_sealed, at) VALUES ($1, $2, $3, $4, $5, $6)")
                                .bind(e.id.to_string()).bind(&wss).bind(e.subject.to_string()).bind(&e.kind).bind(&e.details_sealed).bind(e.at)
                                .execute(&mut *tx).await.map_err($crate::db)?;
                        }
                        CrmOp::Blob { record, content_sealed } => {
                            $crate::sqlx::query("INSERT INTO crm_blobs (record_id, workspace_id, content_sealed, size_bytes) VALUES ($1, $2, $3, $4) ON CONFLICT (record_id) DO UPDATE SET content_sealed = excluded.content_sealed, size_bytes = excluded.size_bytes")
                                .bind(record.to_string()).bind(&wss).bind(content_sealed).bind(content_sealed.len() as i64)
                                .execute(&mut *tx).await.map_err($crate::db)?;
                        }
                        CrmOp::ImportItem(i) => ins.items.push(i),
                        CrmOp::Job { id, state, cursor, progress_sealed } => {
                            // A running job moves on (running, done, failed); a done one is
                            // reverted. A job that was ended meanwhile (cancelled by an operator)
                            // refuses the write, and the whole batch with it.
                            let done = $crate::sqlx::query("UPDATE jobs SET state = $3, cursor = $4, progress_sealed = $5, updated_at = $6 WHERE workspace_id = $1 AND id = $2 AND state = (CASE WHEN $3 = 'reverted' THEN 'done' ELSE 'running' END)")
                                .bind(&wss).bind(id.to_string()).bind(state).bind(*cursor).bind(progress_sealed).bind(now)
                                .execute(&mut *tx).await.map_err($crate::db)?;
                            if done.rows_affected() != 1 {
                                return Err(meshwork_store::StoreError::Conflict("jobs.state"));
                            }
                        }
                    }
                }
                flush_inserts(&mut tx, &wss, &mut ins).await?;
                append_changes(&mut tx, ws, &changes, now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn crm_record(&self, ws: meshwork_domain::WorkspaceId, id: meshwork_domain::RecordId) -> meshwork_store::Result<Option<meshwork_store::RecordRow>> {
                let sql = format!("SELECT {} FROM crm_records WHERE workspace_id = $1 AND id = $2", sql_store_rows::RECORD_COLUMNS);
                $crate::sqlx::query(&sql).bind(ws.to_string()).bind(id.to_string())
                    .fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::record).transpose()
            }

            async fn crm_records(&self, ws: meshwork_domain::WorkspaceId, ids: &[meshwork_domain::RecordId]) -> meshwork_store::Result<Vec<meshwork_store::RecordRow>> {
                // Each record at most once, whatever repeats in `ids`; in id order, so lookups
                // walk the primary key forwards.
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let ids = ids.as_slice();
                // The backend's own bulk path, where it has one (SQLite: see its crate).
                if let Some(rows) = self.bulk_crm_records(ws, ids).await? {
                    return Ok(rows);
                }
                let mut out = Vec::with_capacity(ids.len());
                // On SQLite, `+workspace_id` keeps the planner from scanning the workspace's
                // whole (workspace_id, kind, id) index for every batch (quadratic in the
                // workspace's size): the ids' primary key finds each row, and the workspace
                // is then checked on it.
                let ws_column = if $backend == meshwork_store::Backend::Sqlite { "+workspace_id" } else { "workspace_id" };
                for chunk in ids.chunks(500) {
                    let sql = format!("SELECT {} FROM crm_records WHERE {ws_column} = {} AND id IN ({})", sql_store_rows::RECORD_COLUMNS, param(1), placeholders(2, chunk.len()));
                    let mut q = $crate::sqlx::query(&sql).bind(ws.to_string());
                    for id in chunk {
                        q = q.bind(id.to_string());
                    }
                    for r in q.fetch_all(self.reader()).await.map_err($crate::db)? {
                        out.push(sql_store_rows::record(&r)?);
                    }
                }
                Ok(out)
            }

            async fn crm_list(&self, ws: meshwork_domain::WorkspaceId, kind: &str, after: Option<meshwork_domain::RecordId>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::RecordRow>> {
                let sql = format!("SELECT {} FROM crm_records WHERE workspace_id = $1 AND kind = $2 AND id > $3 ORDER BY id LIMIT $4", sql_store_rows::RECORD_COLUMNS);
                let after = after.map(|a| a.to_string()).unwrap_or_default();
                $crate::sqlx::query(&sql).bind(ws.to_string()).bind(kind).bind(after).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::record).collect()
            }

            async fn crm_count(&self, ws: meshwork_domain::WorkspaceId, kind: &str) -> meshwork_store::Result<i64> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT COUNT(*) FROM crm_records WHERE workspace_id = $1 AND kind = $2")
                    .bind(ws.to_string()).bind(kind)
                    .fetch_one(self.reader()).await.map_err($crate::db)?
                    .try_get(0).map_err($crate::db)
            }

            async fn crm_find_keys(&self, ws: meshwork_domain::WorkspaceId, key_kind: &str, indexes: &[meshwork_store::Hash32]) -> meshwork_store::Result<Vec<(meshwork_store::Hash32, meshwork_domain::RecordId)>> {
                use $crate::sqlx::Row as _;
                let mut out = Vec::new();
                for chunk in indexes.chunks(500) {
                    let sql = format!("SELECT key_index, record_id FROM crm_keys WHERE workspace_id = {} AND key_kind = {} AND key_index IN ({})", param(1), param(2), placeholders(3, chunk.len()));
                    let mut q = $crate::sqlx::query(&sql).bind(ws.to_string()).bind(key_kind);
                    for i in chunk {
                        q = q.bind(&i[..]);
                    }
                    for r in q.fetch_all(self.reader()).await.map_err($crate::db)? {
                        let index = $crate::hash32(r.try_get("key_index").map_err($crate::db)?, "crm_keys.key_index")?;
                        let id = meshwork_domain::RecordId($crate::uuid(&r.try_get::<String, _>("record_id").map_err($crate::db)?, "crm_keys.record_id")?);
                        out.push((index, id));
                    }
                }
                Ok(out)
            }

            async fn crm_links_from(&self, ws: meshwork_domain::WorkspaceId, ids: &[meshwork_domain::RecordId]) -> meshwork_store::Result<Vec<meshwork_store::LinkRow>> {
                let mut out = Vec::new();
                for chunk in ids.chunks(500) {
                    let sql = format!("SELECT from_id, to_id, role FROM crm_links WHERE workspace_id = {} AND from_id IN ({}) ORDER BY from_id, role, to_id", param(1), placeholders(2, chunk.len()));
                    let mut q = $crate::sqlx::query(&sql).bind(ws.to_string());
                    for id in chunk {
                        q = q.bind(id.to_string());
                    }
                    for r in q.fetch_all(self.reader()).await.map_err($crate::db)? {
                        out.push(sql_store_rows::link(&r)?);
                    }
                }
                Ok(out)
            }

            async fn crm_links_to(&self, ws: meshwork_domain::WorkspaceId, id: meshwork_domain::RecordId, role: Option<&str>) -> meshwork_store::Result<Vec<meshwork_store::LinkRow>> {
                let rows = match role {
                    Some(role) => $crate::sqlx::query("SELECT from_id, to_id, role FROM crm_links WHERE workspace_id = $1 AND to_id = $2 AND role = $3 ORDER BY from_id")
                        .bind(ws.to_string()).bind(id.to_string()).bind(role).fetch_all(self.reader()).await,
                    None => $crate::sqlx::query("SELECT from_id, to_id, role FROM crm_links WHERE workspace_id = $1 AND to_id = $2 ORDER BY from_id")
                        .bind(ws.to_string()).bind(id.to_string()).fetch_all(self.reader()).await,
                }.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::link).collect()
            }

            async fn crm_timeline(&self, ws: meshwork_domain::WorkspaceId, subject: meshwork_domain::RecordId, before: Option<(meshwork_domain::Millis, ::uuid::Uuid)>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::TimelineEntry>> {
                use meshwork_store::TimelineEntry;
                let (at, id) = before.unwrap_or((i64::MAX, ::uuid::Uuid::max()));
                let cols = sql_store_rows::RECORD_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
                let sql = format!("SELECT {cols} FROM crm_links l JOIN crm_records r ON r.id = l.from_id WHERE l.workspace_id = $1 AND l.to_id = $2 AND l.role = 'about' AND (r.occurred_at < $3 OR (r.occurred_at = $3 AND r.id < $4)) ORDER BY r.occurred_at DESC, r.id DESC LIMIT $5");
                let items = $crate::sqlx::query(&sql).bind(ws.to_string()).bind(subject.to_string()).bind(at).bind(id.to_string()).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?;
                let events = $crate::sqlx::query("SELECT id, subject_id, kind, details_sealed, at FROM crm_events WHERE workspace_id = $1 AND subject_id = $2 AND (at < $3 OR (at = $3 AND id < $4)) ORDER BY at DESC, id DESC LIMIT $5")
                    .bind(ws.to_string()).bind(subject.to_string()).bind(at).bind(id.to_string()).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?;
                let mut out = items.iter().map(|r| sql_store_rows::record(r).map(TimelineEntry::Item))
                    .chain(events.iter().map(|r| sql_store_rows::event(r).map(TimelineEntry::Event)))
                    .collect::<meshwork_store::Result<Vec<_>>>()?;
                out.sort_by(|a, b| b.position().cmp(&a.position()));
                out.truncate(limit.max(0) as usize);
                Ok(out)
            }

            async fn crm_blob(&self, ws: meshwork_domain::WorkspaceId, record: meshwork_domain::RecordId) -> meshwork_store::Result<Option<Vec<u8>>> {
                use $crate::sqlx::Row as _;
                match $crate::sqlx::query("SELECT content_sealed FROM crm_blobs WHERE workspace_id = $1 AND record_id = $2")
                    .bind(ws.to_string()).bind(record.to_string())
                    .fetch_optional(self.reader()).await.map_err($crate::db)? {
                    Some(r) => Ok(Some(r.try_get(0).map_err($crate::db)?)),
                    None => Ok(None),
                }
            }

            async fn crm_blob_usage(&self, ws: meshwork_domain::WorkspaceId, except: meshwork_domain::RecordId) -> meshwork_store::Result<(u64, u64)> {
                use $crate::sqlx::Row as _;
                let r = $crate::sqlx::query("SELECT COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM crm_blobs WHERE workspace_id = $1 AND record_id <> $2")
                    .bind(ws.to_string()).bind(except.to_string())
                    .fetch_one(self.reader()).await.map_err($crate::db)?;
                let (files, bytes): (i64, i64) = (r.try_get(0).map_err($crate::db)?, r.try_get(1).map_err($crate::db)?);
                Ok((files.max(0) as u64, bytes.max(0) as u64))
            }

            async fn enqueue_job(&self, j: &meshwork_store::QueuedJobRow) -> meshwork_store::Result<bool> {
                let done = insert_queued_job(j).execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn enqueue_mail_job(&self, m: &meshwork_store::MailRow, j: &meshwork_store::QueuedJobRow) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("INSERT INTO outbox (id, to_sealed, subject_sealed, body_sealed, kind, created_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, 0)")
                    .bind(m.id.to_string()).bind(&m.to_sealed).bind(&m.subject_sealed).bind(&m.body_sealed).bind(&m.kind).bind(m.created_at)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                insert_queued_job(j).execute(&mut *tx).await.map_err($crate::db)?;
                tx.commit().await.map_err($crate::db)?;
                Ok(())
            }

            async fn claim_jobs(&self, holder: &str, kinds: &[&str], now: meshwork_domain::Millis, lease_until: meshwork_domain::Millis, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::QueuedJobRow>> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                // PostgreSQL: rows another runner has locked are skipped, not waited for. SQLite
                // has one writer: the statement is atomic as it is.
                let lock = if $backend == meshwork_store::Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
                let kind_params: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 5)).collect();
                let sql = format!(
                    "UPDATE job_queue SET state = 'running', lease_holder = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
                     WHERE id IN (SELECT id FROM job_queue WHERE kind IN ({}) AND ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3 AND attempts < max_attempts)) \
                     ORDER BY run_at, id LIMIT $4{lock}) RETURNING {}",
                    kind_params.join(", "),
                    sql_store_rows::QUEUED_JOB_COLUMNS
                );
                let mut q = $crate::sqlx::query(&sql).bind(holder).bind(lease_until).bind(now).bind(limit);
                for k in kinds {
                    q = q.bind(*k);
                }
                let mut jobs = q.fetch_all(self.writer()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::queued_job).collect::<meshwork_store::Result<Vec<_>>>()?;
                jobs.sort_by(|a, b| (a.run_at, a.id).cmp(&(b.run_at, b.id)));
                Ok(jobs)
            }

            async fn abandoned_jobs(&self, kinds: &[&str], now: meshwork_domain::Millis) -> meshwork_store::Result<Vec<meshwork_store::QueuedJobRow>> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                let kind_params: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 2)).collect();
                let sql = format!(
                    "SELECT {} FROM job_queue WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts AND kind IN ({}) LIMIT 100",
                    sql_store_rows::QUEUED_JOB_COLUMNS,
                    kind_params.join(", ")
                );
                let mut q = $crate::sqlx::query(&sql).bind(now);
                for k in kinds {
                    q = q.bind(*k);
                }
                q.fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::queued_job).collect()
            }

            async fn fail_abandoned_job(&self, id: uuid::Uuid, error_sealed: &[u8], now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let done = $crate::sqlx::query("UPDATE job_queue SET state = 'failed', error_sealed = $2, lease_holder = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1 AND state = 'running' AND lease_until < $3 AND attempts >= max_attempts")
                    .bind(id.to_string()).bind(error_sealed).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn renew_job_lease(&self, id: uuid::Uuid, holder: &str, lease_until: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let done = $crate::sqlx::query("UPDATE job_queue SET lease_until = $3 WHERE id = $1 AND lease_holder = $2 AND state = 'running'")
                    .bind(id.to_string()).bind(holder).bind(lease_until)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn end_job_run(&self, id: uuid::Uuid, holder: &str, outcome: &meshwork_store::JobOutcome, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                use meshwork_store::JobOutcome;
                let q = match outcome {
                    JobOutcome::Done => $crate::sqlx::query("UPDATE job_queue SET state = 'done', lease_holder = NULL, lease_until = NULL, error_sealed = NULL, updated_at = $3 WHERE id = $1 AND lease_holder = $2 AND state = 'running'").bind(id.to_string()).bind(holder).bind(now),
                    JobOutcome::RetryAt(at, error) => $crate::sqlx::query("UPDATE job_queue SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, run_at = $4, error_sealed = $5, lease_holder = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1 AND lease_holder = $2 AND state = 'running'")
                        .bind(id.to_string()).bind(holder).bind(now).bind(*at).bind(error.clone()),
                    JobOutcome::Failed(error) => $crate::sqlx::query("UPDATE job_queue SET state = 'failed', error_sealed = $4, lease_holder = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1 AND lease_holder = $2 AND state = 'running'")
                        .bind(id.to_string()).bind(holder).bind(now).bind(error.clone()),
                    JobOutcome::Released => $crate::sqlx::query("UPDATE job_queue SET state = 'queued', attempts = attempts - 1, lease_holder = NULL, lease_until = NULL, updated_at = $3 WHERE id = $1 AND lease_holder = $2 AND state = 'running'").bind(id.to_string()).bind(holder).bind(now),
                };
                let done = q.execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn queued_job(&self, id: uuid::Uuid) -> meshwork_store::Result<Option<meshwork_store::QueuedJobRow>> {
                let sql = format!("SELECT {} FROM job_queue WHERE id = $1", sql_store_rows::QUEUED_JOB_COLUMNS);
                $crate::sqlx::query(&sql).bind(id.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::queued_job).transpose()
            }

            async fn queued_jobs(&self, ws: Option<meshwork_domain::WorkspaceId>, state: Option<&str>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::QueuedJobRow>> {
                let sql = format!(
                    "SELECT {} FROM job_queue WHERE ($1 IS NULL OR workspace_id = $1) AND ($2 IS NULL OR state = $2) ORDER BY created_at DESC, id DESC LIMIT $3",
                    sql_store_rows::QUEUED_JOB_COLUMNS
                );
                $crate::sqlx::query(&sql).bind(ws.map(|w| w.to_string())).bind(state).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::queued_job).collect()
            }

            async fn retry_job(&self, id: uuid::Uuid, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let done = $crate::sqlx::query("UPDATE job_queue SET state = 'queued', attempts = 0, run_at = $2, lease_holder = NULL, lease_until = NULL, updated_at = $2 WHERE id = $1 AND state IN ('failed', 'cancelled')")
                    .bind(id.to_string()).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn cancel_job(&self, id: uuid::Uuid, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let done = $crate::sqlx::query("UPDATE job_queue SET state = 'cancelled', lease_holder = NULL, lease_until = NULL, updated_at = $2 WHERE id = $1 AND state IN ('queued', 'running')")
                    .bind(id.to_string()).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn expire_job_leases(&self, now: meshwork_domain::Millis) -> meshwork_store::Result<u64> {
                let done = $crate::sqlx::query("UPDATE job_queue SET lease_until = 0, updated_at = $1 WHERE state = 'running'")
                    .bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected())
            }

            async fn prune_jobs(&self, before: meshwork_domain::Millis) -> meshwork_store::Result<u64> {
                let done = $crate::sqlx::query("DELETE FROM job_queue WHERE state IN ('done', 'failed', 'cancelled') AND updated_at < $1")
                    .bind(before)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(done.rows_affected())
            }

            async fn mail(&self, id: uuid::Uuid) -> meshwork_store::Result<Option<(meshwork_store::MailRow, Option<meshwork_domain::Millis>)>> {
                use $crate::sqlx::Row as _;
                let Some(r) = $crate::sqlx::query("SELECT id, to_sealed, subject_sealed, body_sealed, kind, created_at, sent_at FROM outbox WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.writer()).await.map_err($crate::db)? else {
                    return Ok(None);
                };
                Ok(Some((sql_store_rows::mail(&r)?, r.try_get("sent_at").map_err($crate::db)?)))
            }

            async fn mark_mail_sent(&self, id: uuid::Uuid, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE outbox SET sent_at = $2, attempts = attempts + 1 WHERE id = $1")
                    .bind(id.to_string()).bind(now)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn create_job(&self, j: &meshwork_store::JobRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO jobs (id, workspace_id, kind, state, spec_sealed, progress_sealed, cursor, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(j.id.to_string()).bind(j.workspace_id.to_string()).bind(&j.kind).bind(&j.state).bind(&j.spec_sealed)
                    .bind(&j.progress_sealed).bind(j.cursor).bind(j.created_by.to_string()).bind(j.created_at).bind(j.updated_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn job(&self, ws: meshwork_domain::WorkspaceId, id: meshwork_domain::JobId) -> meshwork_store::Result<Option<meshwork_store::JobRow>> {
                let sql = format!("SELECT {} FROM jobs WHERE workspace_id = $1 AND id = $2", sql_store_rows::JOB_COLUMNS);
                $crate::sqlx::query(&sql).bind(ws.to_string()).bind(id.to_string())
                    .fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::job).transpose()
            }

            async fn jobs(&self, ws: meshwork_domain::WorkspaceId, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::JobRow>> {
                let sql = format!("SELECT {} FROM jobs WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2", sql_store_rows::JOB_COLUMNS);
                $crate::sqlx::query(&sql).bind(ws.to_string()).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::job).collect()
            }

            async fn running_jobs(&self) -> meshwork_store::Result<Vec<meshwork_store::JobRow>> {
                let sql = format!("SELECT {} FROM jobs WHERE state = 'running' ORDER BY id", sql_store_rows::JOB_COLUMNS);
                $crate::sqlx::query(&sql).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::job).collect()
            }

            async fn import_items(&self, job: meshwork_domain::JobId, after: Option<meshwork_domain::RecordId>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::ImportItemRow>> {
                let after = after.map(|a| a.to_string()).unwrap_or_default();
                $crate::sqlx::query("SELECT job_id, record_id, action, previous_sealed FROM import_items WHERE job_id = $1 AND record_id > $2 ORDER BY record_id LIMIT $3")
                    .bind(job.to_string()).bind(after).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::import_item).collect()
            }

            async fn source_put_documents(&self, ws: meshwork_domain::WorkspaceId, docs: &[meshwork_store::SourceDocRow], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                use $crate::sqlx::Row as _;
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let mut changes: Vec<(&str, String, &str)> = Vec::with_capacity(docs.len());
                for d in docs {
                    let archived = $crate::sqlx::query("SELECT 1 FROM source_archived WHERE workspace_id = $1 AND document_id = $2")
                        .bind(&wss).bind(&d.id).fetch_optional(&mut *tx).await.map_err($crate::db)?;
                    if archived.is_some() {
                        continue;
                    }
                    let existed = $crate::sqlx::query("SELECT source FROM source_documents WHERE id = $1 AND workspace_id = $2")
                        .bind(&d.id).bind(&wss).fetch_optional(&mut *tx).await.map_err($crate::db)?;
                    if let Some(r) = &existed {
                        let source: String = r.try_get(0).map_err($crate::db)?;
                        if source != d.source {
                            return Err(meshwork_store::StoreError::Conflict("source_documents.source"));
                        }
                    }
                    $crate::sqlx::query("INSERT INTO source_documents (id, workspace_id, source, data_sealed, updated_at, fingerprint) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET data_sealed = excluded.data_sealed, updated_at = excluded.updated_at, fingerprint = excluded.fingerprint")
                        .bind(&d.id).bind(&wss).bind(&d.source).bind(&d.data_sealed).bind(d.updated_at).bind(&d.fingerprint)
                        .execute(&mut *tx).await.map_err($crate::db)?;
                    changes.push(("document", d.id.clone(), if existed.is_some() { "update" } else { "create" }));
                }
                append_changes(&mut tx, ws, &changes, now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn source_delete_documents(&self, ws: meshwork_domain::WorkspaceId, source: &str, ids: &[String], now: meshwork_domain::Millis) -> meshwork_store::Result<u64> {
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let mut changes: Vec<(&str, String, &str)> = Vec::new();
                for id in ids {
                    let r = $crate::sqlx::query("DELETE FROM source_documents WHERE workspace_id = $1 AND source = $2 AND id = $3")
                        .bind(&wss).bind(source).bind(id).execute(&mut *tx).await.map_err($crate::db)?;
                    if r.rows_affected() == 1 {
                        changes.push(("document", id.clone(), "delete"));
                    }
                }
                append_changes(&mut tx, ws, &changes, now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(changes.len() as u64)
            }

            async fn source_documents(&self, ws: meshwork_domain::WorkspaceId, ids: &[String]) -> meshwork_store::Result<Vec<meshwork_store::SourceDocRow>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let sql = format!("SELECT id, workspace_id, source, data_sealed, updated_at, fingerprint FROM source_documents WHERE workspace_id = {} AND id IN ({})", param(1), placeholders(2, chunk.len()));
                    let mut q = $crate::sqlx::query(&sql).bind(ws.to_string());
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for r in q.fetch_all(self.reader()).await.map_err($crate::db)? {
                        out.push(sql_store_rows::source_doc(&r)?);
                    }
                }
                Ok(out)
            }

            async fn source_documents_page(&self, ws: meshwork_domain::WorkspaceId, after: Option<&str>, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::SourceDocRow>> {
                $crate::sqlx::query("SELECT id, workspace_id, source, data_sealed, updated_at, fingerprint FROM source_documents WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                    .bind(ws.to_string()).bind(after.unwrap_or("")).bind(limit)
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::source_doc).collect()
            }

            async fn source_put_principals(&self, ws: meshwork_domain::WorkspaceId, source: &str, rows: &[meshwork_store::SourcePrincipalRow], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                for p in rows {
                    $crate::sqlx::query("INSERT INTO source_principals (workspace_id, source, principal, email_index) VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, source, principal) DO UPDATE SET email_index = excluded.email_index")
                        .bind(&wss).bind(source).bind(&p.principal).bind(p.email_index.map(|e| e.to_vec()))
                        .execute(&mut *tx).await.map_err($crate::db)?;
                }
                append_changes(&mut tx, ws, &[("principals", source.to_string(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn source_delete_principal(&self, ws: meshwork_domain::WorkspaceId, source: &str, principal: &str, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let r = $crate::sqlx::query("DELETE FROM source_principals WHERE workspace_id = $1 AND source = $2 AND principal = $3")
                    .bind(&wss).bind(source).bind(principal).execute(&mut *tx).await.map_err($crate::db)?;
                // A deleted user leaves every group too.
                $crate::sqlx::query("DELETE FROM source_memberships WHERE workspace_id = $1 AND source = $2 AND member = $3")
                    .bind(&wss).bind(source).bind(principal).execute(&mut *tx).await.map_err($crate::db)?;
                append_changes(&mut tx, ws, &[("principals", source.to_string(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn source_set_group(&self, ws: meshwork_domain::WorkspaceId, source: &str, group: &str, members: &[String], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("DELETE FROM source_memberships WHERE workspace_id = $1 AND group_principal = $2")
                    .bind(&wss).bind(group).execute(&mut *tx).await.map_err($crate::db)?;
                for m in members {
                    $crate::sqlx::query("INSERT INTO source_memberships (workspace_id, source, group_principal, member) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                        .bind(&wss).bind(source).bind(group).bind(m)
                        .execute(&mut *tx).await.map_err($crate::db)?;
                }
                append_changes(&mut tx, ws, &[("groups", source.to_string(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn source_delete_group(&self, ws: meshwork_domain::WorkspaceId, source: &str, group: &str, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let r = $crate::sqlx::query("DELETE FROM source_memberships WHERE workspace_id = $1 AND source = $2 AND (group_principal = $3 OR member = $3)")
                    .bind(&wss).bind(source).bind(group).execute(&mut *tx).await.map_err($crate::db)?;
                append_changes(&mut tx, ws, &[("groups", source.to_string(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(r.rows_affected() > 0)
            }

            async fn principals_by_email(&self, ws: meshwork_domain::WorkspaceId, email_index: &meshwork_store::Hash32) -> meshwork_store::Result<Vec<String>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT principal FROM source_principals WHERE workspace_id = $1 AND email_index = $2 ORDER BY principal")
                    .bind(ws.to_string()).bind(email_index.to_vec())
                    .fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(|r| r.try_get(0).map_err($crate::db)).collect()
            }

            async fn groups_containing(&self, ws: meshwork_domain::WorkspaceId, members: &[String]) -> meshwork_store::Result<Vec<String>> {
                use $crate::sqlx::Row as _;
                let mut out = Vec::new();
                for chunk in members.chunks(500) {
                    let sql = format!("SELECT DISTINCT group_principal FROM source_memberships WHERE workspace_id = {} AND member IN ({})", param(1), placeholders(2, chunk.len()));
                    let mut q = $crate::sqlx::query(&sql).bind(ws.to_string());
                    for m in chunk {
                        q = q.bind(m);
                    }
                    for r in q.fetch_all(self.reader()).await.map_err($crate::db)? {
                        out.push(r.try_get(0).map_err($crate::db)?);
                    }
                }
                Ok(out)
            }

            async fn source_delete_all(&self, ws: meshwork_domain::WorkspaceId, source: &str, now: meshwork_domain::Millis) -> meshwork_store::Result<u64> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let n = delete_source_rows(&mut tx, ws, source, now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(n)
            }

            async fn source_fingerprints(&self, ws: meshwork_domain::WorkspaceId, source: &str) -> meshwork_store::Result<Vec<(String, Option<String>)>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT id, fingerprint FROM source_documents WHERE workspace_id = $1 AND source = $2")
                    .bind(ws.to_string()).bind(source).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(|r| Ok((r.try_get(0).map_err($crate::db)?, r.try_get(1).map_err($crate::db)?))).collect()
            }

            async fn source_principal_rows(&self, ws: meshwork_domain::WorkspaceId, source: &str) -> meshwork_store::Result<Vec<meshwork_store::SourcePrincipalRow>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT principal, email_index FROM source_principals WHERE workspace_id = $1 AND source = $2")
                    .bind(ws.to_string()).bind(source).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(|r| {
                        let e: Option<Vec<u8>> = r.try_get(1).map_err($crate::db)?;
                        Ok(meshwork_store::SourcePrincipalRow {
                            principal: r.try_get(0).map_err($crate::db)?,
                            email_index: e.map(|v| $crate::hash32(v, "source_principals.email_index")).transpose()?,
                        })
                    }).collect()
            }

            async fn source_remove_principals(&self, ws: meshwork_domain::WorkspaceId, source: &str, principals: &[String], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                if principals.is_empty() {
                    return Ok(());
                }
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                for p in principals {
                    $crate::sqlx::query("DELETE FROM source_principals WHERE workspace_id = $1 AND source = $2 AND principal = $3")
                        .bind(&wss).bind(source).bind(p).execute(&mut *tx).await.map_err($crate::db)?;
                    $crate::sqlx::query("DELETE FROM source_memberships WHERE workspace_id = $1 AND source = $2 AND member = $3")
                        .bind(&wss).bind(source).bind(p).execute(&mut *tx).await.map_err($crate::db)?;
                }
                append_changes(&mut tx, ws, &[("principals", source.to_string(), "update"), ("groups", source.to_string(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn source_memberships(&self, ws: meshwork_domain::WorkspaceId, source: &str) -> meshwork_store::Result<Vec<(String, String)>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT group_principal, member FROM source_memberships WHERE workspace_id = $1 AND source = $2")
                    .bind(ws.to_string()).bind(source).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(|r| Ok((r.try_get(0).map_err($crate::db)?, r.try_get(1).map_err($crate::db)?))).collect()
            }

            async fn source_change_memberships(&self, ws: meshwork_domain::WorkspaceId, source: &str, remove: &[(String, String)], add: &[(String, String)], now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                if remove.is_empty() && add.is_empty() {
                    return Ok(());
                }
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                for (g, m) in remove {
                    $crate::sqlx::query("DELETE FROM source_memberships WHERE workspace_id = $1 AND group_principal = $2 AND member = $3")
                        .bind(&wss).bind(g).bind(m).execute(&mut *tx).await.map_err($crate::db)?;
                }
                for chunk in add.chunks(400) {
                    let values: Vec<String> = (0..chunk.len()).map(|i| format!("({}, {}, {}, {})", param(4 * i + 1), param(4 * i + 2), param(4 * i + 3), param(4 * i + 4))).collect();
                    let sql = format!("INSERT INTO source_memberships (workspace_id, source, group_principal, member) VALUES {} ON CONFLICT DO NOTHING", values.join(", "));
                    let mut q = $crate::sqlx::query(&sql);
                    for (g, m) in chunk {
                        q = q.bind(&wss).bind(source).bind(g).bind(m);
                    }
                    q.execute(&mut *tx).await.map_err($crate::db)?;
                }
                append_changes(&mut tx, ws, &[("groups", source.to_string(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn source_archive(&self, ws: meshwork_domain::WorkspaceId, source: &str, document: &str, by: Option<meshwork_domain::UserId>, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let r = $crate::sqlx::query("DELETE FROM source_documents WHERE workspace_id = $1 AND source = $2 AND id = $3")
                    .bind(&wss).bind(source).bind(document).execute(&mut *tx).await.map_err($crate::db)?;
                let existed = r.rows_affected() == 1;
                $crate::sqlx::query("INSERT INTO source_archived (workspace_id, source, document_id, archived_by, archived_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                    .bind(&wss).bind(source).bind(document).bind(by.map(|u| u.to_string())).bind(now)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if existed {
                    append_changes(&mut tx, ws, &[("document", document.to_string(), "delete")], now).await?;
                }
                tx.commit().await.map_err($crate::db)?;
                Ok(existed)
            }

            async fn source_unarchive(&self, ws: meshwork_domain::WorkspaceId, document: &str) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("DELETE FROM source_archived WHERE workspace_id = $1 AND document_id = $2")
                    .bind(ws.to_string()).bind(document).execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn source_archived(&self, ws: meshwork_domain::WorkspaceId, source: &str) -> meshwork_store::Result<Vec<String>> {
                use $crate::sqlx::Row as _;
                $crate::sqlx::query("SELECT document_id FROM source_archived WHERE workspace_id = $1 AND source = $2 ORDER BY document_id")
                    .bind(ws.to_string()).bind(source).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(|r| r.try_get(0).map_err($crate::db)).collect()
            }

            async fn document_mark_put(&self, row: &meshwork_store::DocumentMarkRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO document_marks (workspace_id, user_id, document_id, source, pinned, note_sealed, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, user_id, document_id) DO UPDATE SET pinned = excluded.pinned, note_sealed = excluded.note_sealed, updated_at = excluded.updated_at")
                    .bind(row.workspace_id.to_string()).bind(row.user_id.to_string()).bind(&row.document_id).bind(&row.source)
                    .bind(row.pinned).bind(&row.note_sealed).bind(row.updated_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn document_mark_delete(&self, ws: meshwork_domain::WorkspaceId, user: meshwork_domain::UserId, document: &str) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("DELETE FROM document_marks WHERE workspace_id = $1 AND user_id = $2 AND document_id = $3")
                    .bind(ws.to_string()).bind(user.to_string()).bind(document).execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn document_marks(&self, ws: meshwork_domain::WorkspaceId, user: meshwork_domain::UserId, documents: Option<&[String]>) -> meshwork_store::Result<Vec<meshwork_store::DocumentMarkRow>> {
                let rows = match documents {
                    None => $crate::sqlx::query("SELECT * FROM document_marks WHERE workspace_id = $1 AND user_id = $2 ORDER BY updated_at DESC, document_id")
                        .bind(ws.to_string()).bind(user.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?,
                    Some(ids) => {
                        let mut out = Vec::new();
                        for chunk in ids.chunks(500) {
                            let list: Vec<String> = (0..chunk.len()).map(|i| param(i + 3)).collect();
                            let sql = format!("SELECT * FROM document_marks WHERE workspace_id = {} AND user_id = {} AND document_id IN ({}) ORDER BY updated_at DESC, document_id", param(1), param(2), list.join(", "));
                            let mut q = $crate::sqlx::query(&sql).bind(ws.to_string()).bind(user.to_string());
                            for id in chunk {
                                q = q.bind(id);
                            }
                            out.extend(q.fetch_all(self.reader()).await.map_err($crate::db)?);
                        }
                        out
                    }
                };
                rows.iter().map(sql_store_rows::document_mark).collect()
            }

            async fn connector_create(&self, row: &meshwork_store::ConnectorRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO connectors (id, workspace_id, source, kind, settings_sealed, paused, every_seconds, next_sync_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&row.id).bind(row.workspace_id.to_string()).bind(&row.source).bind(&row.kind).bind(&row.settings_sealed)
                    .bind(row.paused).bind(row.every_seconds).bind(row.next_sync_at).bind(row.created_at).bind(row.updated_at)
                    .execute(self.writer()).await.map_err($crate::db_err("connectors.source"))?;
                Ok(())
            }

            async fn connector(&self, ws: meshwork_domain::WorkspaceId, id: &str) -> meshwork_store::Result<Option<meshwork_store::ConnectorRow>> {
                $crate::sqlx::query("SELECT * FROM connectors WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::connector).transpose()
            }

            async fn connectors(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::ConnectorRow>> {
                $crate::sqlx::query("SELECT * FROM connectors WHERE workspace_id = $1 ORDER BY created_at, id")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::connector).collect()
            }

            async fn connectors_due(&self, now: meshwork_domain::Millis) -> meshwork_store::Result<Vec<meshwork_store::ConnectorRow>> {
                $crate::sqlx::query("SELECT * FROM connectors WHERE next_sync_at <= $1 AND NOT paused ORDER BY next_sync_at LIMIT 1000")
                    .bind(now).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::connector).collect()
            }

            async fn connector_schedule(&self, ws: meshwork_domain::WorkspaceId, id: &str, next_sync_at: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                $crate::sqlx::query("UPDATE connectors SET next_sync_at = $3 WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id).bind(next_sync_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn connector_update(&self, row: &meshwork_store::ConnectorRow) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE connectors SET settings_sealed = $3, paused = $4, every_seconds = $5, next_sync_at = $6, updated_at = $7 WHERE workspace_id = $1 AND id = $2")
                    .bind(row.workspace_id.to_string()).bind(&row.id).bind(&row.settings_sealed).bind(row.paused)
                    .bind(row.every_seconds).bind(row.next_sync_at).bind(row.updated_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn connector_delete(&self, ws: meshwork_domain::WorkspaceId, id: &str, now: meshwork_domain::Millis) -> meshwork_store::Result<Option<u64>> {
                use $crate::sqlx::Row as _;
                let wss = ws.to_string();
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let source: Option<String> = $crate::sqlx::query("DELETE FROM connectors WHERE workspace_id = $1 AND id = $2 RETURNING source")
                    .bind(&wss).bind(id).fetch_optional(&mut *tx).await.map_err($crate::db)?
                    .map(|r| r.try_get(0).map_err($crate::db)).transpose()?;
                let Some(source) = source else {
                    return Ok(None);
                };
                $crate::sqlx::query("DELETE FROM connector_runs WHERE workspace_id = $1 AND connector_id = $2")
                    .bind(&wss).bind(id).execute(&mut *tx).await.map_err($crate::db)?;
                $crate::sqlx::query("DELETE FROM connector_records WHERE workspace_id = $1 AND connector_id = $2")
                    .bind(&wss).bind(id).execute(&mut *tx).await.map_err($crate::db)?;
                let n = delete_source_rows(&mut tx, ws, &source, now).await?;
                tx.commit().await.map_err($crate::db)?;
                Ok(Some(n))
            }

            async fn connector_run_put(&self, row: &meshwork_store::ConnectorRunRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO connector_runs (id, workspace_id, connector_id, trigger, state, started_at, finished_at, counts, report_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at, counts = excluded.counts, report_sealed = excluded.report_sealed")
                    .bind(&row.id).bind(row.workspace_id.to_string()).bind(&row.connector_id).bind(&row.trigger).bind(&row.state)
                    .bind(row.started_at).bind(row.finished_at).bind(&row.counts).bind(&row.report_sealed)
                    .execute(self.writer()).await.map_err($crate::db_err("connector_runs.running"))?;
                Ok(())
            }

            async fn connector_run(&self, ws: meshwork_domain::WorkspaceId, id: &str) -> meshwork_store::Result<Option<meshwork_store::ConnectorRunRow>> {
                $crate::sqlx::query("SELECT * FROM connector_runs WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id).fetch_optional(self.reader()).await.map_err($crate::db)?
                    .as_ref().map(sql_store_rows::connector_run).transpose()
            }

            async fn connector_records(&self, ws: meshwork_domain::WorkspaceId, connector: &str) -> meshwork_store::Result<Vec<meshwork_store::ConnectorRecordRow>> {
                $crate::sqlx::query("SELECT * FROM connector_records WHERE workspace_id = $1 AND connector_id = $2 ORDER BY item")
                    .bind(ws.to_string()).bind(connector).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::connector_record).collect()
            }

            async fn connector_record_put(&self, row: &meshwork_store::ConnectorRecordRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO connector_records (workspace_id, connector_id, item, record_id, created, fingerprint, version, state_sealed, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (workspace_id, connector_id, item) DO UPDATE SET record_id = excluded.record_id, created = excluded.created, fingerprint = excluded.fingerprint, version = excluded.version, state_sealed = excluded.state_sealed, updated_at = excluded.updated_at")
                    .bind(row.workspace_id.to_string()).bind(&row.connector_id).bind(&row.item).bind(row.record_id.to_string())
                    .bind(row.created).bind(&row.fingerprint).bind(row.version).bind(&row.state_sealed).bind(row.updated_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn connector_record_delete(&self, ws: meshwork_domain::WorkspaceId, connector: &str, item: &str) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("DELETE FROM connector_records WHERE workspace_id = $1 AND connector_id = $2 AND item = $3")
                    .bind(ws.to_string()).bind(connector).bind(item).execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn connector_runs(&self, ws: meshwork_domain::WorkspaceId, connector: &str, limit: i64) -> meshwork_store::Result<Vec<meshwork_store::ConnectorRunRow>> {
                $crate::sqlx::query("SELECT * FROM connector_runs WHERE workspace_id = $1 AND connector_id = $2 ORDER BY started_at DESC, id DESC LIMIT $3")
                    .bind(ws.to_string()).bind(connector).bind(limit).fetch_all(self.reader()).await.map_err($crate::db)?
                    .iter().map(sql_store_rows::connector_run).collect()
            }

            async fn partnership_create(&self, row: &meshwork_store::PartnershipRow) -> meshwork_store::Result<()> {
                let (a, b) = (row.inviter.to_string(), row.invitee.to_string());
                let pair = if a < b { format!("{a}:{b}") } else { format!("{b}:{a}") };
                $crate::sqlx::query("INSERT INTO partnerships (id, inviter_ws, invitee_ws, pair, state, inviter_settings, invitee_settings, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(&row.id).bind(&a).bind(&b).bind(&pair).bind(&row.state)
                    .bind(&row.inviter_settings).bind(&row.invitee_settings).bind(row.created_at).bind(row.updated_at).bind(row.version)
                    .execute(self.writer()).await.map_err($crate::db_err("partnerships.pair"))?;
                Ok(())
            }

            async fn partnership(&self, id: &str) -> meshwork_store::Result<Option<meshwork_store::PartnershipRow>> {
                let row = $crate::sqlx::query("SELECT * FROM partnerships WHERE id = $1")
                    .bind(id).fetch_optional(self.reader()).await.map_err($crate::db)?;
                row.map(|r| sql_store_rows::partnership(&r)).transpose()
            }

            async fn partnerships_of(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::PartnershipRow>> {
                let rows = $crate::sqlx::query("SELECT * FROM partnerships WHERE inviter_ws = $1 OR invitee_ws = $1 ORDER BY created_at DESC, id")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::partnership).collect()
            }

            async fn partnership_update(&self, row: &meshwork_store::PartnershipRow, expected_version: i64, clear_results: bool) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let r = $crate::sqlx::query("UPDATE partnerships SET state = $2, inviter_settings = $3, invitee_settings = $4, updated_at = $5, version = $6 WHERE id = $1 AND version = $7")
                    .bind(&row.id).bind(&row.state).bind(&row.inviter_settings).bind(&row.invitee_settings)
                    .bind(row.updated_at).bind(row.version).bind(expected_version)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                if clear_results {
                    $crate::sqlx::query("DELETE FROM overlap_results WHERE partnership_id = $1")
                        .bind(&row.id).execute(&mut *tx).await.map_err($crate::db)?;
                }
                tx.commit().await.map_err($crate::db)?;
                Ok(true)
            }

            async fn overlap_result_put(&self, row: &meshwork_store::OverlapResultRow, version: i64) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                // Locks the partnership row (PostgreSQL) so a revocation cannot slip in between
                // the check and the write; SQLite has one writer at a time anyway.
                let lock = if $backend == meshwork_store::Backend::Postgres { " FOR UPDATE" } else { "" };
                let live = $crate::sqlx::query(&format!("SELECT 1 FROM partnerships WHERE id = $1 AND state = 'active' AND version = $2{lock}"))
                    .bind(&row.partnership_id).bind(version)
                    .fetch_optional(&mut *tx).await.map_err($crate::db)?;
                if live.is_none() {
                    return Ok(false);
                }
                $crate::sqlx::query("INSERT INTO overlap_results (partnership_id, workspace_id, data_sealed, computed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (partnership_id, workspace_id) DO UPDATE SET data_sealed = excluded.data_sealed, computed_at = excluded.computed_at")
                    .bind(&row.partnership_id).bind(row.workspace_id.to_string()).bind(&row.data_sealed).bind(row.computed_at)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                tx.commit().await.map_err($crate::db)?;
                Ok(true)
            }

            async fn overlap_result(&self, partnership: &str, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Option<meshwork_store::OverlapResultRow>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("SELECT data_sealed, computed_at FROM overlap_results WHERE partnership_id = $1 AND workspace_id = $2")
                    .bind(partnership).bind(ws.to_string()).fetch_optional(self.reader()).await.map_err($crate::db)?;
                row.map(|r| Ok(meshwork_store::OverlapResultRow {
                    partnership_id: partnership.to_string(),
                    workspace_id: ws,
                    data_sealed: r.try_get(0).map_err($crate::db)?,
                    computed_at: r.try_get(1).map_err($crate::db)?,
                })).transpose()
            }

            async fn remote_partnership_create(&self, row: &meshwork_store::RemotePartnershipRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO remote_partnerships (id, workspace_id, role, state, invite_hash, invite_expires_at, peer_sealed, settings, view_sealed, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(&row.id).bind(row.workspace_id.to_string()).bind(&row.role).bind(&row.state)
                    .bind(&row.invite_hash).bind(row.invite_expires_at).bind(&row.peer_sealed).bind(&row.settings)
                    .bind(&row.view_sealed).bind(row.created_at).bind(row.updated_at).bind(row.version)
                    .execute(self.writer()).await.map_err($crate::db_err("remote_partnerships.id"))?;
                Ok(())
            }

            async fn remote_partnership(&self, id: &str) -> meshwork_store::Result<Option<meshwork_store::RemotePartnershipRow>> {
                let row = $crate::sqlx::query("SELECT * FROM remote_partnerships WHERE id = $1")
                    .bind(id).fetch_optional(self.reader()).await.map_err($crate::db)?;
                row.map(|r| sql_store_rows::remote_partnership(&r)).transpose()
            }

            async fn remote_partnerships_of(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::RemotePartnershipRow>> {
                let rows = $crate::sqlx::query("SELECT * FROM remote_partnerships WHERE workspace_id = $1 ORDER BY created_at DESC, id")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::remote_partnership).collect()
            }

            async fn remote_partnership_update(&self, row: &meshwork_store::RemotePartnershipRow, expected_version: i64) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("UPDATE remote_partnerships SET state = $2, invite_hash = $3, invite_expires_at = $4, peer_sealed = $5, settings = $6, view_sealed = $7, updated_at = $8, version = $9 WHERE id = $1 AND version = $10")
                    .bind(&row.id).bind(&row.state).bind(&row.invite_hash).bind(row.invite_expires_at)
                    .bind(&row.peer_sealed).bind(&row.settings).bind(&row.view_sealed)
                    .bind(row.updated_at).bind(row.version).bind(expected_version)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn remote_view_put(&self, id: &str, version: i64, view_sealed: &[u8]) -> meshwork_store::Result<bool> {
                // One statement: a revocation (which bumps the version) cannot slip in between
                // a check and the write.
                let r = $crate::sqlx::query("UPDATE remote_partnerships SET view_sealed = $2 WHERE id = $1 AND state = 'active' AND version = $3")
                    .bind(id).bind(view_sealed).bind(version)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn remote_run_admit(&self, id: &str, now: meshwork_domain::Millis, per_hour: u32) -> meshwork_store::Result<bool> {
                use $crate::sqlx::Row as _;
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                // Locks the row (PostgreSQL) so two servers cannot both admit the last run.
                let lock = if $backend == meshwork_store::Backend::Postgres { " FOR UPDATE" } else { "" };
                let row = $crate::sqlx::query(&format!("SELECT peer_run_starts FROM remote_partnerships WHERE id = $1{lock}"))
                    .bind(id).fetch_optional(&mut *tx).await.map_err($crate::db)?;
                let Some(row) = row else { return Ok(false) };
                let text: String = row.try_get(0).map_err($crate::db)?;
                let mut starts: Vec<i64> = text
                    .split(',')
                    .filter_map(|t| t.parse().ok())
                    .filter(|t| now - t < 3_600_000)
                    .collect();
                if starts.len() >= per_hour as usize {
                    return Ok(false);
                }
                starts.push(now);
                let text = starts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",");
                $crate::sqlx::query("UPDATE remote_partnerships SET peer_run_starts = $2 WHERE id = $1")
                    .bind(id).bind(text).execute(&mut *tx).await.map_err($crate::db)?;
                tx.commit().await.map_err($crate::db)?;
                Ok(true)
            }

            async fn population_put(&self, row: &meshwork_store::PopulationRow, members_sealed: Option<&[u8]>, now: meshwork_domain::Millis) -> meshwork_store::Result<()> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                $crate::sqlx::query("INSERT INTO populations (id, workspace_id, data_sealed, members_sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET data_sealed = excluded.data_sealed, members_sealed = COALESCE(excluded.members_sealed, populations.members_sealed), updated_at = excluded.updated_at WHERE populations.workspace_id = excluded.workspace_id")
                    .bind(&row.id).bind(row.workspace_id.to_string()).bind(&row.data_sealed).bind(members_sealed)
                    .bind(row.created_at).bind(row.updated_at)
                    .execute(&mut *tx).await.map_err($crate::db)?;
                append_changes(&mut tx, row.workspace_id, &[("population", row.id.clone(), "update")], now).await?;
                tx.commit().await.map_err($crate::db)
            }

            async fn saved_view_put(&self, row: &meshwork_store::SavedViewRow) -> meshwork_store::Result<()> {
                $crate::sqlx::query("INSERT INTO saved_views (id, workspace_id, user_id, shared, kind, data_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(&row.id).bind(row.workspace_id.to_string()).bind(row.user_id.to_string()).bind(row.shared)
                    .bind(&row.kind).bind(&row.data_sealed).bind(row.created_at)
                    .execute(self.writer()).await.map_err($crate::db)?;
                Ok(())
            }

            async fn saved_views(&self, ws: meshwork_domain::WorkspaceId, kind: &str, user: meshwork_domain::UserId) -> meshwork_store::Result<Vec<meshwork_store::SavedViewRow>> {
                let rows = $crate::sqlx::query("SELECT id, workspace_id, user_id, shared, kind, data_sealed, created_at FROM saved_views WHERE workspace_id = $1 AND kind = $2 AND (shared OR user_id = $3) ORDER BY created_at, id")
                    .bind(ws.to_string()).bind(kind).bind(user.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::saved_view).collect()
            }

            async fn saved_view_delete(&self, ws: meshwork_domain::WorkspaceId, id: &str) -> meshwork_store::Result<bool> {
                let r = $crate::sqlx::query("DELETE FROM saved_views WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id).execute(self.writer()).await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn populations(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<meshwork_store::PopulationRow>> {
                let rows = $crate::sqlx::query("SELECT id, workspace_id, data_sealed, created_at, updated_at FROM populations WHERE workspace_id = $1 ORDER BY created_at, id")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                rows.iter().map(sql_store_rows::population).collect()
            }

            async fn population_members(&self, ws: meshwork_domain::WorkspaceId, id: &str) -> meshwork_store::Result<Option<Vec<u8>>> {
                use $crate::sqlx::Row as _;
                let row = $crate::sqlx::query("SELECT members_sealed FROM populations WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id).fetch_optional(self.reader()).await.map_err($crate::db)?;
                Ok(match row {
                    Some(r) => r.try_get::<Option<Vec<u8>>, _>(0).map_err($crate::db)?,
                    None => None,
                })
            }

            async fn population_delete(&self, ws: meshwork_domain::WorkspaceId, id: &str, now: meshwork_domain::Millis) -> meshwork_store::Result<bool> {
                let mut tx = self.writer().begin().await.map_err($crate::db)?;
                let r = $crate::sqlx::query("DELETE FROM populations WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.to_string()).bind(id).execute(&mut *tx).await.map_err($crate::db)?;
                if r.rows_affected() == 1 {
                    append_changes(&mut tx, ws, &[("population", id.to_string(), "delete")], now).await?;
                }
                tx.commit().await.map_err($crate::db)?;
                Ok(r.rows_affected() == 1)
            }

            async fn sources(&self, ws: meshwork_domain::WorkspaceId) -> meshwork_store::Result<Vec<(String, i64)>> {
                use $crate::sqlx::Row as _;
                let rows = $crate::sqlx::query("SELECT source, COUNT(*) FROM source_documents WHERE workspace_id = $1 GROUP BY source UNION SELECT source, 0 FROM source_principals WHERE workspace_id = $1 UNION SELECT source, 0 FROM source_memberships WHERE workspace_id = $1")
                    .bind(ws.to_string()).fetch_all(self.reader()).await.map_err($crate::db)?;
                let mut out: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
                for r in rows {
                    let s: String = r.try_get(0).map_err($crate::db)?;
                    let n: i64 = r.try_get(1).map_err($crate::db)?;
                    *out.entry(s).or_default() += n;
                }
                Ok(out.into_iter().collect())
            }
        }

        /// `$first, $first+1, …` for an `IN (…)` list of `n` values.
        /// `$first, …` for `n` parameters: on SQLite plain `?`s, so a statement using them must
        /// write every parameter with [`param`], in order. SQLite looks a numbered parameter's
        /// name up by a linear scan, and sqlx asks for every parameter's name when binding, so
        /// a statement of N numbered parameters costs N² steps to bind (several percent of an
        /// overlap run's loading, reading records 500 at a time); nameless ones cost nothing.
        fn placeholders(first: usize, n: usize) -> String {
            if $backend == meshwork_store::Backend::Sqlite {
                return vec!["?"; n].join(", ");
            }
            (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        }

        /// The insert of a queued job; a taken `unique_key` inserts nothing.
        fn insert_queued_job(j: &meshwork_store::QueuedJobRow) -> $crate::sqlx::query::Query<'_, $db, <$db as $crate::sqlx::Database>::Arguments<'_>> {
            $crate::sqlx::query("INSERT INTO job_queue (id, kind, workspace_id, payload, payload_sealed, state, attempts, max_attempts, run_at, lease_holder, lease_until, error_sealed, unique_key, created_at, updated_at) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (unique_key) DO NOTHING")
                .bind(j.id.to_string()).bind(&j.kind).bind(j.workspace_id.map(|w| w.to_string())).bind(&j.payload).bind(j.payload_sealed)
                .bind(&j.state).bind(j.attempts).bind(j.max_attempts).bind(j.run_at).bind(&j.lease_holder).bind(j.lease_until)
                .bind(&j.error_sealed).bind(&j.unique_key).bind(j.created_at).bind(j.updated_at)
        }

        /// Parameter `i` of a statement that uses [`placeholders`] (`?` on SQLite, in order).
        fn param(i: usize) -> String {
            if $backend == meshwork_store::Backend::Sqlite {
                return "?".to_string();
            }
            format!("${i}")
        }

        /// Rows of a CRM batch waiting to be written by `flush_inserts`.
        #[derive(Default)]
        struct CrmInserts<'a> {
            records: Vec<&'a meshwork_store::RecordRow>,
            /// (key kind, key index, record id)
            keys: Vec<(&'a str, &'a [u8], String)>,
            /// (from, to, role)
            links: Vec<(String, String, &'a str)>,
            items: Vec<&'a meshwork_store::ImportItemRow>,
        }

        /// `($1, $2, …), (…)`: `rows` tuples of `cols` placeholders, for a statement with no
        /// other parameter. SQLite gets anonymous `?`s: sqlx looks each numbered parameter's
        /// name up, and SQLite finds a name by a linear scan, which made binding a statement of
        /// a few thousand parameters quadratic (a third of an import's time).
        fn value_tuples(rows: usize, cols: usize) -> String {
            if $backend == meshwork_store::Backend::Sqlite {
                let tuple = format!("({})", vec!["?"; cols].join(", "));
                return vec![tuple.as_str(); rows].join(", ");
            }
            let mut out = String::with_capacity(rows * cols * 5);
            for r in 0..rows {
                if r > 0 {
                    out.push_str(", ");
                }
                out.push('(');
                for c in 0..cols {
                    if c > 0 {
                        out.push_str(", ");
                    }
                    out.push('$');
                    out.push_str(&(r * cols + c + 1).to_string());
                }
                out.push(')');
            }
            out
        }

        /// Writes the buffered rows, records first (keys, links and import items refer to
        /// them), a few hundred rows per statement, and empties the buffer.
        async fn flush_inserts(
            tx: &mut <$db as $crate::sqlx::Database>::Connection,
            wss: &str,
            ins: &mut CrmInserts<'_>,
        ) -> meshwork_store::Result<()> {
            for chunk in ins.records.chunks(400) {
                let sql = format!("INSERT INTO crm_records (id, workspace_id, kind, data_sealed, occurred_at, created_at, updated_at, version) VALUES {}", value_tuples(chunk.len(), 8));
                let mut q = $crate::sqlx::query(&sql);
                for r in chunk {
                    q = q.bind(r.id.to_string()).bind(wss).bind(&r.kind).bind(&r.data_sealed).bind(r.occurred_at)
                        .bind(r.created_at).bind(r.updated_at).bind(r.version);
                }
                q.execute(&mut *tx).await.map_err($crate::db_err("crm_records.id"))?;
            }
            for chunk in ins.keys.chunks(800) {
                let sql = format!("INSERT INTO crm_keys (workspace_id, key_kind, key_index, record_id) VALUES {}", value_tuples(chunk.len(), 4));
                let mut q = $crate::sqlx::query(&sql);
                for (kind, index, id) in chunk {
                    q = q.bind(wss).bind(*kind).bind(*index).bind(id.as_str());
                }
                q.execute(&mut *tx).await.map_err($crate::db_err("crm_keys"))?;
            }
            for chunk in ins.links.chunks(800) {
                let sql = format!("INSERT INTO crm_links (workspace_id, from_id, to_id, role) VALUES {} ON CONFLICT DO NOTHING", value_tuples(chunk.len(), 4));
                let mut q = $crate::sqlx::query(&sql);
                for (from, to, role) in chunk {
                    q = q.bind(wss).bind(from.as_str()).bind(to.as_str()).bind(*role);
                }
                q.execute(&mut *tx).await.map_err($crate::db)?;
            }
            // The first state seen wins: a record touched twice by one import reverts to what
            // it was before the import.
            for chunk in ins.items.chunks(800) {
                let sql = format!("INSERT INTO import_items (job_id, record_id, action, previous_sealed) VALUES {} ON CONFLICT DO NOTHING", value_tuples(chunk.len(), 4));
                let mut q = $crate::sqlx::query(&sql);
                for i in chunk {
                    q = q.bind(i.job.to_string()).bind(i.record.to_string()).bind(&i.action).bind(&i.previous_sealed);
                }
                q.execute(&mut *tx).await.map_err($crate::db)?;
            }
            ins.records.clear();
            ins.keys.clear();
            ins.links.clear();
            ins.items.clear();
            Ok(())
        }

        /// Appends a batch's record changes to the feed with one sequence reservation.
        /// Deletes every row of `source` (documents, principals, memberships, tombstones), with a
        /// change per document; answers the documents removed.
        async fn delete_source_rows(
            tx: &mut <$db as $crate::sqlx::Database>::Connection,
            ws: meshwork_domain::WorkspaceId,
            source: &str,
            now: meshwork_domain::Millis,
        ) -> meshwork_store::Result<u64> {
            use $crate::sqlx::Row as _;
            let wss = ws.to_string();
            let ids: Vec<String> = $crate::sqlx::query("DELETE FROM source_documents WHERE workspace_id = $1 AND source = $2 RETURNING id")
                .bind(&wss).bind(source).fetch_all(&mut *tx).await.map_err($crate::db)?
                .iter().map(|r| r.try_get(0).map_err($crate::db)).collect::<meshwork_store::Result<_>>()?;
            for table in ["source_principals", "source_memberships", "source_archived", "document_marks"] {
                $crate::sqlx::query(&format!("DELETE FROM {table} WHERE workspace_id = $1 AND source = $2"))
                    .bind(&wss).bind(source).execute(&mut *tx).await.map_err($crate::db)?;
            }
            let mut changes: Vec<(&str, String, &str)> = ids.iter().map(|id| ("document", id.clone(), "delete")).collect();
            changes.push(("groups", source.to_string(), "update"));
            append_changes(tx, ws, &changes, now).await?;
            Ok(ids.len() as u64)
        }

        async fn append_changes(
            tx: &mut <$db as $crate::sqlx::Database>::Connection,
            ws: meshwork_domain::WorkspaceId,
            changes: &[(&str, String, &str)],
            now: meshwork_domain::Millis,
        ) -> meshwork_store::Result<()> {
            use $crate::sqlx::Row as _;
            if changes.is_empty() {
                return Ok(());
            }
            let last: i64 = $crate::sqlx::query("UPDATE workspaces SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq")
                .bind(ws.to_string())
                .bind(changes.len() as i64)
                .fetch_one(&mut *tx).await.map_err($crate::db)?
                .try_get(0).map_err($crate::db)?;
            let first = last - changes.len() as i64 + 1;
            // Multi-row inserts, 100 rows (600 parameters) at a time.
            for (c, chunk) in changes.chunks(100).enumerate() {
                let values = value_tuples(chunk.len(), 6);
                let sql = format!("INSERT INTO changes (workspace_id, seq, entity, entity_id, op, at) VALUES {values}");
                let mut q = $crate::sqlx::query(&sql);
                for (i, (entity, id, op)) in chunk.iter().enumerate() {
                    q = q.bind(ws.to_string()).bind(first + (c * 100 + i) as i64).bind(*entity).bind(id.as_str()).bind(*op).bind(now);
                }
                q.execute(&mut *tx).await.map_err($crate::db)?;
            }
            Ok(())
        }

        /// Takes the workspace row's write lock for the rest of the transaction, serialising
        /// membership changes of one workspace (on SQLite the single writer already does).
        async fn lock_workspace(
            tx: &mut <$db as $crate::sqlx::Database>::Connection,
            ws: meshwork_domain::WorkspaceId,
        ) -> meshwork_store::Result<()> {
            $crate::sqlx::query("UPDATE workspaces SET last_seq = last_seq WHERE id = $1")
                .bind(ws.to_string())
                .execute(&mut *tx).await.map_err($crate::db)?;
            Ok(())
        }

        /// Whether `ws` has an owner other than `user` (so `user` may stop being one).
        async fn other_owner_exists(
            tx: &mut <$db as $crate::sqlx::Database>::Connection,
            ws: meshwork_domain::WorkspaceId,
            user: meshwork_domain::UserId,
        ) -> meshwork_store::Result<bool> {
            use $crate::sqlx::Row as _;
            let row = $crate::sqlx::query("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(ws.to_string()).bind(user.to_string())
                .fetch_optional(&mut *tx).await.map_err($crate::db)?;
            let is_owner = match row {
                Some(r) => r.try_get::<String, _>(0).map_err($crate::db)? == "owner",
                None => false,
            };
            if !is_owner {
                return Ok(true);
            }
            let n: i64 = $crate::sqlx::query("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner' AND user_id <> $2")
                .bind(ws.to_string()).bind(user.to_string())
                .fetch_one(&mut *tx).await.map_err($crate::db)?
                .try_get(0).map_err($crate::db)?;
            Ok(n > 0)
        }
    };
}
