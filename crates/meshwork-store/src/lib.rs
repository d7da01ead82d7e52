//! The storage trait: everything Meshwork keeps in its system of record, as one async trait that
//! each backend (`meshwork-store-sqlite`, `meshwork-store-postgres`) implements with its own SQL
//! and migrations.
//!
//! Invariants every backend keeps:
//! - **Only sealed bytes.** Personal and customer content arrives here already sealed by the
//!   keyring (`Vec<u8>` fields named `*_sealed`) or as blind indexes; this crate never sees
//!   plaintext and holds no key.
//! - **Writes to workspace data append to the change feed in the same transaction**, with a
//!   per-workspace sequence number that has no gaps (`changes_since` returns them in order).
//! - **Single-use things are taken atomically**: a token, an invitation or a recovery code can be
//!   consumed once even under concurrent requests.

use async_trait::async_trait;
use meshwork_domain::{
    ApiKeyId, AuditId, InviteId, JobId, Millis, RecordId, Role, UserId, WorkspaceId,
};

mod crm;
mod overlap;
mod rows;
mod sources;
pub use crm::*;
pub use overlap::*;
pub use rows::*;
pub use sources::*;

pub type Hash32 = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the string names the rule (e.g. `users.email`).
    #[error("conflict: {0} already exists")]
    Conflict(&'static str),
    /// The database refused or failed; details are for the log, never for an API answer.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back (a corrupt row or file).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Outcome of a role change or removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Applied,
    /// Refused: the workspace would have no owner left.
    LastOwner,
    /// Refused: the member's role is no longer the expected one (or they left).
    Stale,
}

/// Outcome of taking a single-use invitation.
#[derive(Debug, PartialEq, Eq)]
pub enum InviteOutcome {
    Joined { workspace: WorkspaceId, role: Role },
    AlreadyMember { workspace: WorkspaceId },
    Invalid,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Closes connections; pending writes are finished first.
    async fn close(&self);

    /// Refreshes the query planner's statistics of the CRM tables after a bulk write (an import
    /// that doubled them). PostgreSQL otherwise plans a growing workspace's key lookups from
    /// statistics taken when it was small (autovacuum analyses at most once a minute) and scans
    /// the workspace's whole key range for each batch; a no-op on SQLite, whose queries do not
    /// depend on statistics.
    async fn analyze_after_bulk_write(&self) -> Result<()>;

    // --- accounts -----------------------------------------------------------------------------
    /// Fails with `Conflict("users.email")` when the email index is taken.
    async fn create_user(&self, user: &UserRow) -> Result<()>;
    async fn user(&self, id: UserId) -> Result<Option<UserRow>>;
    async fn user_by_email_index(&self, index: &Hash32) -> Result<Option<UserRow>>;
    /// Replaces the profile fields. Fails with `Conflict("users.email")` on a taken email.
    async fn update_profile(&self, id: UserId, profile: &ProfileUpdate, now: Millis) -> Result<()>;
    async fn set_password_hash(&self, id: UserId, hash: &str, now: Millis) -> Result<()>;
    /// Replaces the password hash `old` by `new` (the same password, hashed anew), only if the
    /// account still has `old`: a password set meanwhile is never overwritten. Nothing else
    /// changes. True when it was replaced.
    async fn upgrade_password_hash(&self, id: UserId, old: &str, new: &str) -> Result<bool>;
    async fn set_email_verified(&self, id: UserId, now: Millis) -> Result<()>;
    /// Marks the address with blind index `email_index` verified, in one statement: with
    /// `email_sealed` (an email change), moves the account to that address (`Conflict
    /// ("users.email")` when another account has it meanwhile); without, only if the account's
    /// address is still that one. Answers whether the account was changed.
    async fn confirm_email(
        &self,
        id: UserId,
        email_index: &Hash32,
        email_sealed: Option<&[u8]>,
        now: Millis,
    ) -> Result<bool>;
    /// Reserves one sign-in attempt before the password is checked, atomically, so parallel
    /// guesses cannot slip past the lock: counts it, locks the account until `lock_until` once
    /// the count of attempts since the last success reaches `lock_after`, and returns the count.
    /// `None` when the account is locked at `now` (nothing is counted). Once a lock has ended,
    /// counting starts again from one.
    async fn begin_login_attempt(
        &self,
        id: UserId,
        lock_after: i32,
        lock_until: Millis,
        now: Millis,
    ) -> Result<Option<i32>>;
    /// Gives back a reserved attempt that turned out not to be a guess (the password was right
    /// and the second factor is still to come), lifting a lock that this attempt set.
    async fn refund_login_attempt(&self, id: UserId, lock_after: i32) -> Result<()>;
    async fn reset_login_failures(&self, id: UserId) -> Result<()>;
    /// Stores a pending TOTP secret (not yet enabled), or clears TOTP and recovery codes (`None`).
    /// Either way TOTP is off afterwards, so the account's security keys, which exist only
    /// beside it, are deleted too.
    async fn set_totp_secret(&self, id: UserId, secret_sealed: Option<&[u8]>) -> Result<()>;
    /// Consumes a TOTP time step: true when `step` is newer than the last one accepted (and is
    /// now the last), false for a replayed or older code.
    async fn use_totp_step(&self, id: UserId, step: i64) -> Result<bool>;
    /// Turns TOTP on and replaces the recovery codes with `codes`.
    async fn enable_totp(&self, id: UserId, codes: &[Hash32]) -> Result<()>;
    /// Replaces the recovery codes of an account whose TOTP is on with the secret `secret_sealed`,
    /// in one transaction; false (and nothing changed) when TOTP was turned off, or set up anew,
    /// meanwhile.
    async fn replace_recovery_codes(
        &self,
        id: UserId,
        secret_sealed: &[u8],
        codes: &[Hash32],
    ) -> Result<bool>;
    /// Adds a security key while the account has TOTP on and fewer than `max` keys; `false`
    /// (and nothing added) otherwise, or when its credential is registered already (to any
    /// account).
    async fn add_security_key(&self, key: &SecurityKeyRow, max: i64) -> Result<bool>;
    /// An account's security keys, oldest first.
    async fn security_keys(&self, user: UserId) -> Result<Vec<SecurityKeyRow>>;
    /// Saves a key's credential after a sign-in (its signature counter) and when it was used,
    /// over the sealed credential `old` only: `false` when another sign-in saved it meanwhile.
    async fn security_key_used(
        &self,
        user: UserId,
        id: uuid::Uuid,
        old: &[u8],
        key_sealed: &[u8],
        at: Millis,
    ) -> Result<bool>;
    /// Removes one of an account's keys; `false` when it has none with this id.
    async fn delete_security_key(&self, user: UserId, id: uuid::Uuid) -> Result<bool>;
    /// Consumes one recovery code; true when it existed.
    async fn take_recovery_code(&self, id: UserId, code: &Hash32) -> Result<bool>;
    async fn recovery_codes_left(&self, id: UserId) -> Result<i64>;
    async fn set_picture(&self, id: UserId, picture: Option<&PictureRow>) -> Result<()>;
    async fn picture(&self, id: UserId) -> Result<Option<PictureRow>>;
    /// Remembers a device; true when it was not known before.
    async fn remember_device(&self, id: UserId, device: &Hash32, now: Millis) -> Result<bool>;

    // --- sessions and one-time tokens ---------------------------------------------------------
    async fn create_session(&self, session: &SessionRow) -> Result<()>;
    async fn session(&self, token_hash: &Hash32) -> Result<Option<SessionRow>>;
    async fn delete_session(&self, token_hash: &Hash32) -> Result<()>;
    async fn delete_user_sessions(&self, user: UserId) -> Result<()>;
    /// The user's sessions, newest first.
    async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionRow>>;
    /// Records that a session was used at `now`, unless it was within the last `gap` ms.
    async fn touch_session(&self, token_hash: &Hash32, now: Millis, gap: Millis) -> Result<()>;
    async fn create_token(&self, token: &TokenRow) -> Result<()>;
    /// Removes every one-time token of the user (after an email change).
    async fn delete_user_tokens(&self, user: UserId) -> Result<()>;
    /// Consumes a token of `kind`; returns it when it existed and had not expired.
    async fn take_token(&self, kind: &str, hash: &Hash32, now: Millis) -> Result<Option<TokenRow>>;
    /// Deletes the tokens that expired before `now` (links never opened, ceremonies never
    /// finished); answers how many.
    async fn purge_expired_tokens(&self, now: Millis) -> Result<u64>;

    // --- workspaces and members (each write appends to the change feed) -----------------------
    async fn create_workspace(&self, ws: &WorkspaceRow, owner: UserId, now: Millis) -> Result<()>;
    async fn workspace(&self, id: WorkspaceId) -> Result<Option<WorkspaceRow>>;
    /// Every workspace's id (restores check each one's key).
    async fn workspace_ids(&self) -> Result<Vec<WorkspaceId>>;
    async fn rename_workspace(
        &self,
        id: WorkspaceId,
        name_sealed: &[u8],
        now: Millis,
    ) -> Result<()>;
    /// Deletes the workspace and everything stored under it (members, invitations, API keys, its
    /// change feed). Audit entries stay: the log is append-only. True when it existed.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<bool>;
    async fn workspaces_of(&self, user: UserId) -> Result<Vec<(WorkspaceRow, Role)>>;
    async fn role_of(&self, ws: WorkspaceId, user: UserId) -> Result<Option<Role>>;
    async fn members(&self, ws: WorkspaceId) -> Result<Vec<MemberRow>>;
    /// Changes a member's role from `expected` to `role`. Serialised per workspace (the
    /// workspace row is locked first), so concurrent changes cannot leave it without an owner.
    async fn set_role(
        &self,
        ws: WorkspaceId,
        user: UserId,
        expected: Role,
        role: Role,
        now: Millis,
    ) -> Result<RoleChange>;
    /// Removes a member whose role is still `expected`; serialised like `set_role`.
    async fn remove_member(
        &self,
        ws: WorkspaceId,
        user: UserId,
        expected: Role,
        now: Millis,
    ) -> Result<RoleChange>;
    async fn create_invite(&self, invite: &InviteRow, now: Millis) -> Result<()>;
    /// Takes an invitation for the user whose email index is `email_index`. The role granted is
    /// the invitation's, capped by the inviter's current role; an inviter who has left the
    /// workspace invalidates their invitations.
    async fn accept_invite(
        &self,
        token_hash: &Hash32,
        user: UserId,
        email_index: &Hash32,
        now: Millis,
    ) -> Result<InviteOutcome>;

    /// Whether the address with this blind index has an invitation not yet accepted or expired
    /// (who may sign up when sign-up is by invitation only).
    async fn has_pending_invite(&self, email_index: &Hash32, now: Millis) -> Result<bool>;
    /// How many accounts there are.
    async fn user_count(&self) -> Result<i64>;
    /// Accounts in id order, `limit` after `after` (paging over every account).
    async fn users_after(&self, after: Option<UserId>, limit: i64) -> Result<Vec<UserRow>>;

    // --- rights and retention (docs/privacy.md) ---------------------------------------------------

    /// When the session's owner last authenticated (signed in, or re-authenticated), if the
    /// session exists.
    async fn session_reauth_at(&self, token_hash: &Hash32) -> Result<Option<Millis>>;
    /// Records a re-authentication on the session.
    async fn set_session_reauth(&self, token_hash: &Hash32, now: Millis) -> Result<()>;
    /// Records that the account was used (a sign-in): it is active, and no retention warning
    /// is pending any more.
    async fn set_user_active(&self, user: UserId, now: Millis) -> Result<()>;
    /// Accounts not active since `before`, oldest first, after the `(last active, id)` cursor:
    /// (id, last active, last warning sent, in days before deletion; 0 none).
    async fn inactive_users(
        &self,
        before: Millis,
        after: Option<(Millis, UserId)>,
        limit: i64,
    ) -> Result<Vec<(UserId, Millis, i32)>>;
    /// Records the retention warning sent (days before deletion), unless the account was
    /// active since `before` (then false: the warning is moot).
    async fn set_retention_warned(&self, user: UserId, days: i32, before: Millis) -> Result<bool>;
    async fn marketing_opt_out(&self, user: UserId) -> Result<bool>;
    async fn set_marketing_opt_out(&self, user: UserId, opt_out: bool) -> Result<()>;
    /// Deletes an account and everything that hangs on it (sessions, tokens, devices, codes,
    /// picture, memberships, saved views, marks), and revokes the API keys it created. The
    /// audit log keeps its entries (append-only; ids and sealed details). False when absent.
    async fn delete_user(&self, user: UserId, now: Millis) -> Result<bool>;
    /// Keeps these dedup keys from being taken by any record again (an erasure, mm17).
    async fn crm_suppress(
        &self,
        ws: WorkspaceId,
        keys: &[crate::KeyEntry],
        now: Millis,
    ) -> Result<()>;
    async fn support_grant_create(&self, grant: &SupportGrantRow) -> Result<()>;
    async fn support_grant(&self, id: uuid::Uuid) -> Result<Option<SupportGrantRow>>;
    /// The workspace's grants, newest first.
    async fn support_grants(&self, ws: WorkspaceId) -> Result<Vec<SupportGrantRow>>;
    /// Approves a pending grant (not approved, not revoked); false when it is not one.
    async fn support_grant_approve(
        &self,
        ws: WorkspaceId,
        id: uuid::Uuid,
        by: UserId,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool>;
    /// Revokes a grant not yet revoked; false when there is none.
    async fn support_grant_revoke(
        &self,
        ws: WorkspaceId,
        id: uuid::Uuid,
        now: Millis,
    ) -> Result<bool>;
    /// Adds to the usage counts: (day since the epoch, feature, how many).
    async fn usage_add(&self, counts: &[(i64, String, i64)]) -> Result<()>;
    /// The usage counts from `since_day` on, by day then feature.
    async fn usage(&self, since_day: i64) -> Result<Vec<(i64, String, i64)>>;
    /// Whether the workspace turned third-party processing (analytics, AI) off.
    async fn processors_off(&self, ws: WorkspaceId) -> Result<bool>;
    async fn set_processors_off(&self, ws: WorkspaceId, off: bool) -> Result<()>;
    /// Whether the workspace requires two-factor authentication of owners and admins (ASVS
    /// 4.3.1). A workspace that is gone requires nothing (its routes answer 404 anyway).
    async fn admin_mfa_required(&self, ws: WorkspaceId) -> Result<bool>;
    async fn set_admin_mfa_required(&self, ws: WorkspaceId, on: bool) -> Result<()>;
    /// Every workspace that turned third-party processing off.
    async fn workspaces_processors_off(&self) -> Result<Vec<WorkspaceId>>;
    /// Restricts (or lifts the restriction of) a record's processing (mm17).
    async fn crm_restrict(
        &self,
        ws: WorkspaceId,
        id: RecordId,
        on: bool,
        now: Millis,
    ) -> Result<()>;
    /// The workspace's restricted records.
    async fn crm_restricted(&self, ws: WorkspaceId) -> Result<Vec<RecordId>>;
    /// Whether the workspace has erased anyone (so writers need to look keys up at all).
    async fn crm_has_suppressions(&self, ws: WorkspaceId) -> Result<bool>;
    /// Which of these keys of `key_kind` are suppressed.
    async fn crm_suppressed(
        &self,
        ws: WorkspaceId,
        key_kind: &str,
        indexes: &[Hash32],
    ) -> Result<Vec<Hash32>>;

    /// Withdraws an invitation not yet accepted; false when there is none.
    async fn revoke_invite(&self, ws: WorkspaceId, id: InviteId, now: Millis) -> Result<bool>;

    // --- API keys -----------------------------------------------------------------------------
    async fn create_api_key(&self, key: &ApiKeyRow, now: Millis) -> Result<()>;
    /// The key with this hash, and its creator's current role in the key's workspace (`None` when
    /// the creator has left it): everything authentication needs, in one query.
    async fn api_key_by_hash(&self, hash: &Hash32) -> Result<Option<(ApiKeyRow, Option<Role>)>>;
    async fn api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKeyRow>>;
    /// Revokes every live key `user` created, in every workspace; answers the workspaces.
    async fn revoke_user_api_keys(&self, user: UserId, now: Millis) -> Result<Vec<WorkspaceId>>;
    /// Revokes a key of `ws`; false when there is no such key.
    async fn revoke_api_key(&self, ws: WorkspaceId, id: ApiKeyId, now: Millis) -> Result<bool>;
    /// Live keys that expire after `now` and by `by`, whose creator was not yet told (ASVS 2.3.3).
    async fn api_keys_expiring(&self, now: Millis, by: Millis) -> Result<Vec<ApiKeyRow>>;
    /// Notes that a key's creator is being told it expires soon; false when someone already did
    /// (so each key is announced once, whichever server runs the housekeeping).
    async fn claim_api_key_expiry_warning(&self, id: ApiKeyId, now: Millis) -> Result<bool>;
    /// Records a key's use: when, and from where (sealed). Never moves `last_used_at` back.
    async fn touch_api_key(&self, id: ApiKeyId, at: Millis, from_sealed: &[u8]) -> Result<()>;

    // --- audit log, outbox, change feed -------------------------------------------------------
    async fn append_audit(&self, event: &AuditRow) -> Result<()>;
    /// Deletes the audit entries made before `before` (retention). The store refuses to delete
    /// an entry younger than 30 days, whatever `before` says. Answers how many went.
    async fn prune_audit(&self, before: Millis) -> Result<u64>;
    /// Newest first; `before` pages backwards.
    async fn audit(
        &self,
        scope: AuditScope,
        before: Option<AuditId>,
        limit: i64,
    ) -> Result<Vec<AuditRow>>;
    async fn enqueue_mail(&self, mail: &MailRow) -> Result<()>;
    async fn unsent_mail(&self, limit: i64) -> Result<Vec<MailRow>>;
    /// What an operator watches (`/metrics`): queued jobs by kind and state, the outbox's
    /// backlog, and each workspace's last change-feed sequence number.
    async fn operations(&self) -> Result<OperationsRow>;
    /// Changes of `ws` with `seq > after`, in order.
    async fn changes_since(
        &self,
        ws: WorkspaceId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChangeRow>>;

    // --- CRM records ----------------------------------------------------------------------------
    /// Applies the batch in one transaction (see [`CrmOp`]); nothing is written when any op fails.
    async fn crm_apply(&self, ws: WorkspaceId, batch: &CrmBatch, now: Millis) -> Result<()>;
    async fn crm_record(&self, ws: WorkspaceId, id: RecordId) -> Result<Option<RecordRow>>;
    /// The records of `ws` among `ids` that exist, each once however often `ids` names it (any
    /// order).
    async fn crm_records(&self, ws: WorkspaceId, ids: &[RecordId]) -> Result<Vec<RecordRow>>;
    /// Records of `kind` in id (creation) order, after the cursor.
    async fn crm_list(
        &self,
        ws: WorkspaceId,
        kind: &str,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Vec<RecordRow>>;
    async fn crm_count(&self, ws: WorkspaceId, kind: &str) -> Result<i64>;
    /// Which records hold these keys of `key_kind` (dedup look-ups, batched for imports).
    async fn crm_find_keys(
        &self,
        ws: WorkspaceId,
        key_kind: &str,
        indexes: &[Hash32],
    ) -> Result<Vec<(Hash32, RecordId)>>;
    async fn crm_links_from(&self, ws: WorkspaceId, ids: &[RecordId]) -> Result<Vec<LinkRow>>;
    /// Links pointing at `id`, optionally only those with `role`.
    async fn crm_links_to(
        &self,
        ws: WorkspaceId,
        id: RecordId,
        role: Option<&str>,
    ) -> Result<Vec<LinkRow>>;
    /// The subject's timeline, newest first: records linked to it as `about`, and its events,
    /// strictly before `before` (a `(time, id)` position) when given.
    async fn crm_timeline(
        &self,
        ws: WorkspaceId,
        subject: RecordId,
        before: Option<(Millis, uuid::Uuid)>,
        limit: i64,
    ) -> Result<Vec<TimelineEntry>>;
    async fn crm_blob(&self, ws: WorkspaceId, record: RecordId) -> Result<Option<Vec<u8>>>;
    /// The workspace's attached files, but for `except`'s (whose content is being replaced):
    /// how many, and their stored (sealed) bytes.
    async fn crm_blob_usage(&self, ws: WorkspaceId, except: RecordId) -> Result<(u64, u64)>;

    // --- the job queue ------------------------------------------------------------------------------
    /// Adds a job. Answers false (and writes nothing) when its `unique_key` is taken.
    async fn enqueue_job(&self, job: &QueuedJobRow) -> Result<bool>;
    /// Adds a mail and the job that sends it, in one transaction.
    async fn enqueue_mail_job(&self, mail: &MailRow, job: &QueuedJobRow) -> Result<()>;
    /// Claims up to `limit` jobs of `kinds` that are due (queued with `run_at <= now`, or running
    /// under a lease that expired before `now` with attempts left), oldest first: each becomes
    /// `running` under `holder`'s lease until `lease_until`, its attempts counted. Jobs another runner is
    /// claiming at the same moment are skipped, never claimed twice.
    async fn claim_jobs(
        &self,
        holder: &str,
        kinds: &[&str],
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<QueuedJobRow>>;
    /// Running jobs of `kinds` whose lease expired before `now` with their attempts used up:
    /// their runners kept stopping (a crash each time), so they are not to be taken over again.
    async fn abandoned_jobs(&self, kinds: &[&str], now: Millis) -> Result<Vec<QueuedJobRow>>;
    /// Fails such a job with `error_sealed`; false when it is no longer one (renewed, ended).
    async fn fail_abandoned_job(
        &self,
        id: uuid::Uuid,
        error_sealed: &[u8],
        now: Millis,
    ) -> Result<bool>;
    /// Extends a lease; false when `holder` no longer holds the job (taken over or cancelled).
    async fn renew_job_lease(
        &self,
        id: uuid::Uuid,
        holder: &str,
        lease_until: Millis,
    ) -> Result<bool>;
    /// Records how a run ended; false when `holder` no longer holds the job.
    async fn end_job_run(
        &self,
        id: uuid::Uuid,
        holder: &str,
        outcome: &JobOutcome,
        now: Millis,
    ) -> Result<bool>;
    async fn queued_job(&self, id: uuid::Uuid) -> Result<Option<QueuedJobRow>>;
    /// Newest first, optionally only one workspace's (`None` for every job) or one state's.
    async fn queued_jobs(
        &self,
        ws: Option<WorkspaceId>,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<QueuedJobRow>>;
    /// An operator's retry: a failed or cancelled job is queued again with its attempts reset.
    async fn retry_job(&self, id: uuid::Uuid, now: Millis) -> Result<bool>;
    /// An operator's cancel: a queued or running job becomes cancelled (a running one stops
    /// when its runner next renews the lease).
    async fn cancel_job(&self, id: uuid::Uuid, now: Millis) -> Result<bool>;
    /// Ends every lease at once (a single-server SQLite store at start-up: nobody else can hold
    /// one). Answers how many jobs were held.
    async fn expire_job_leases(&self, now: Millis) -> Result<u64>;
    /// Deletes jobs that ended (done, failed, cancelled) before `before`.
    async fn prune_jobs(&self, before: Millis) -> Result<u64>;
    /// A mail of the outbox and when it was sent.
    async fn mail(&self, id: uuid::Uuid) -> Result<Option<(MailRow, Option<Millis>)>>;
    async fn mark_mail_sent(&self, id: uuid::Uuid, now: Millis) -> Result<()>;

    // --- jobs -------------------------------------------------------------------------------------
    async fn create_job(&self, job: &JobRow) -> Result<()>;
    async fn job(&self, ws: WorkspaceId, id: JobId) -> Result<Option<JobRow>>;
    /// Newest first.
    async fn jobs(&self, ws: WorkspaceId, limit: i64) -> Result<Vec<JobRow>>;
    /// Every job in state `running`, in every workspace (to resume after a restart).
    async fn running_jobs(&self) -> Result<Vec<JobRow>>;
    async fn import_items(
        &self,
        job: JobId,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Vec<ImportItemRow>>;

    // --- Sources: documents, principals, groups -------------------------------------------------
    /// Inserts or replaces documents (by id), appending `document` changes; a document archived
    /// in its source (a tombstone) is skipped, so a write racing an archive cannot bring it back.
    async fn source_put_documents(
        &self,
        ws: WorkspaceId,
        docs: &[SourceDocRow],
        now: Millis,
    ) -> Result<()>;
    /// Deletes documents of `source` by id; answers how many existed.
    async fn source_delete_documents(
        &self,
        ws: WorkspaceId,
        source: &str,
        ids: &[String],
        now: Millis,
    ) -> Result<u64>;
    async fn source_documents(&self, ws: WorkspaceId, ids: &[String]) -> Result<Vec<SourceDocRow>>;
    /// Documents in id order after `after` (for rebuilding the index).
    async fn source_documents_page(
        &self,
        ws: WorkspaceId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SourceDocRow>>;
    /// Inserts or replaces principals of `source`.
    async fn source_put_principals(
        &self,
        ws: WorkspaceId,
        source: &str,
        rows: &[SourcePrincipalRow],
        now: Millis,
    ) -> Result<()>;
    async fn source_delete_principal(
        &self,
        ws: WorkspaceId,
        source: &str,
        principal: &str,
        now: Millis,
    ) -> Result<bool>;
    /// Replaces the direct members (`u:…` or `g:…`) of a group of `source`.
    async fn source_set_group(
        &self,
        ws: WorkspaceId,
        source: &str,
        group: &str,
        members: &[String],
        now: Millis,
    ) -> Result<()>;
    async fn source_delete_group(
        &self,
        ws: WorkspaceId,
        source: &str,
        group: &str,
        now: Millis,
    ) -> Result<bool>;
    /// The principals whose email has this blind index.
    async fn principals_by_email(
        &self,
        ws: WorkspaceId,
        email_index: &Hash32,
    ) -> Result<Vec<String>>;
    /// The groups that list any of `members` as a direct member.
    async fn groups_containing(&self, ws: WorkspaceId, members: &[String]) -> Result<Vec<String>>;
    /// Removes everything `source` wrote (documents, principals, groups), appending a delete
    /// change per document; answers the number of documents removed.
    async fn source_delete_all(&self, ws: WorkspaceId, source: &str, now: Millis) -> Result<u64>;
    /// The sources with data in `ws` and their document counts.
    async fn sources(&self, ws: WorkspaceId) -> Result<Vec<(String, i64)>>;
    /// Every document of `source` with its fingerprint.
    async fn source_fingerprints(
        &self,
        ws: WorkspaceId,
        source: &str,
    ) -> Result<Vec<(String, Option<String>)>>;
    /// Every principal of `source`.
    async fn source_principal_rows(
        &self,
        ws: WorkspaceId,
        source: &str,
    ) -> Result<Vec<SourcePrincipalRow>>;
    /// Removes principals of `source` (and their memberships).
    async fn source_remove_principals(
        &self,
        ws: WorkspaceId,
        source: &str,
        principals: &[String],
        now: Millis,
    ) -> Result<()>;
    /// Every (group, member) pair of `source`.
    async fn source_memberships(
        &self,
        ws: WorkspaceId,
        source: &str,
    ) -> Result<Vec<(String, String)>>;
    /// Removes and adds (group, member) pairs of `source` in one transaction.
    async fn source_change_memberships(
        &self,
        ws: WorkspaceId,
        source: &str,
        remove: &[(String, String)],
        add: &[(String, String)],
        now: Millis,
    ) -> Result<()>;
    /// Archives a document: it is deleted and a tombstone keeps it from coming back (mm15).
    /// Answers whether the document existed.
    async fn source_archive(
        &self,
        ws: WorkspaceId,
        source: &str,
        document: &str,
        by: Option<UserId>,
        now: Millis,
    ) -> Result<bool>;
    /// Removes a tombstone (the next sync brings the document back).
    async fn source_unarchive(&self, ws: WorkspaceId, document: &str) -> Result<bool>;
    /// The archived documents of `source`.
    async fn source_archived(&self, ws: WorkspaceId, source: &str) -> Result<Vec<String>>;

    /// Inserts or replaces a person's mark on a document.
    async fn document_mark_put(&self, row: &DocumentMarkRow) -> Result<()>;
    async fn document_mark_delete(
        &self,
        ws: WorkspaceId,
        user: UserId,
        document: &str,
    ) -> Result<bool>;
    /// A person's marks: all of them, or those on `documents`.
    async fn document_marks(
        &self,
        ws: WorkspaceId,
        user: UserId,
        documents: Option<&[String]>,
    ) -> Result<Vec<DocumentMarkRow>>;

    // --- Connectors -----------------------------------------------------------------------------
    /// Fails with `Conflict("connectors.source")` when the workspace has a connector of that
    /// source name.
    async fn connector_create(&self, row: &ConnectorRow) -> Result<()>;
    async fn connector(&self, ws: WorkspaceId, id: &str) -> Result<Option<ConnectorRow>>;
    async fn connectors(&self, ws: WorkspaceId) -> Result<Vec<ConnectorRow>>;
    /// Connectors of every workspace, not paused, due at `now`.
    async fn connectors_due(&self, now: Millis) -> Result<Vec<ConnectorRow>>;
    /// Sets only when the next scheduled sync is due.
    async fn connector_schedule(
        &self,
        ws: WorkspaceId,
        id: &str,
        next_sync_at: Millis,
    ) -> Result<()>;
    /// Writes settings, pause, schedule and next sync.
    async fn connector_update(&self, row: &ConnectorRow) -> Result<bool>;
    /// Deletes the connector, its runs, its CRM record rows and every row of its source
    /// (documents, principals, memberships, tombstones, with a change per document), in one
    /// transaction; answers the documents removed, or `None` when there is no such connector.
    async fn connector_delete(&self, ws: WorkspaceId, id: &str, now: Millis)
        -> Result<Option<u64>>;
    /// Inserts or replaces a run. Fails with `Conflict("connector_runs.running")` when it is
    /// written as running while another run of the same connector is: one sync at a time.
    async fn connector_run_put(&self, row: &ConnectorRunRow) -> Result<()>;
    async fn connector_run(&self, ws: WorkspaceId, id: &str) -> Result<Option<ConnectorRunRow>>;
    /// The CRM records a connector brought in.
    async fn connector_records(
        &self,
        ws: WorkspaceId,
        connector: &str,
    ) -> Result<Vec<ConnectorRecordRow>>;
    /// Inserts or replaces a card's row.
    async fn connector_record_put(&self, row: &ConnectorRecordRow) -> Result<()>;
    async fn connector_record_delete(
        &self,
        ws: WorkspaceId,
        connector: &str,
        item: &str,
    ) -> Result<bool>;
    /// Newest first.
    async fn connector_runs(
        &self,
        ws: WorkspaceId,
        connector: &str,
        limit: i64,
    ) -> Result<Vec<ConnectorRunRow>>;

    // --- Partner overlap ----------------------------------------------------------------------
    async fn partnership_create(&self, row: &PartnershipRow) -> Result<()>;
    async fn partnership(&self, id: &str) -> Result<Option<PartnershipRow>>;
    /// Partnerships with `ws` on either side, newest first.
    async fn partnerships_of(&self, ws: WorkspaceId) -> Result<Vec<PartnershipRow>>;
    /// Replaces a partnership whose version is still `expected_version` (answers false when it
    /// changed meanwhile). `clear_results` deletes both sides' stored results in the same
    /// transaction (a revocation, or a change to what is shared).
    async fn partnership_update(
        &self,
        row: &PartnershipRow,
        expected_version: i64,
        clear_results: bool,
    ) -> Result<bool>;
    /// Stores one side's result, only while the partnership is active and still at `version`
    /// (answers false otherwise, storing nothing): a run overtaken by a revocation or a settings
    /// change leaves no trace.
    async fn overlap_result_put(&self, row: &OverlapResultRow, version: i64) -> Result<bool>;
    async fn overlap_result(
        &self,
        partnership: &str,
        ws: WorkspaceId,
    ) -> Result<Option<OverlapResultRow>>;
    /// Inserts or replaces a population (with the sealed members of a match-only list), appending
    /// a `population` change so that overlap results computed before it are stale.
    async fn population_put(
        &self,
        row: &PopulationRow,
        members_sealed: Option<&[u8]>,
        now: Millis,
    ) -> Result<()>;
    async fn populations(&self, ws: WorkspaceId) -> Result<Vec<PopulationRow>>;
    /// The sealed members of a match-only list.
    async fn population_members(&self, ws: WorkspaceId, id: &str) -> Result<Option<Vec<u8>>>;
    async fn population_delete(&self, ws: WorkspaceId, id: &str, now: Millis) -> Result<bool>;
    async fn saved_view_put(&self, row: &SavedViewRow) -> Result<()>;
    /// The views of `kind`'s list that `user` sees: the workspace's shared ones and their own,
    /// oldest first.
    async fn saved_views(
        &self,
        ws: WorkspaceId,
        kind: &str,
        user: UserId,
    ) -> Result<Vec<SavedViewRow>>;
    async fn saved_view_delete(&self, ws: WorkspaceId, id: &str) -> Result<bool>;
    async fn remote_partnership_create(&self, row: &RemotePartnershipRow) -> Result<()>;
    async fn remote_partnership(&self, id: &str) -> Result<Option<RemotePartnershipRow>>;
    /// This workspace's partnerships with other servers, newest first.
    async fn remote_partnerships_of(&self, ws: WorkspaceId) -> Result<Vec<RemotePartnershipRow>>;
    /// Replaces a remote partnership still at `expected_version` (answers false otherwise).
    async fn remote_partnership_update(
        &self,
        row: &RemotePartnershipRow,
        expected_version: i64,
    ) -> Result<bool>;
    /// Stores this side's view, only while the partnership is active and still at `version`.
    async fn remote_view_put(&self, id: &str, version: i64, view_sealed: &[u8]) -> Result<bool>;
    /// Counts a run the partner's server starts against the hourly cap: answers false, counting
    /// nothing, when `per_hour` runs started in the hour before `now`.
    async fn remote_run_admit(&self, id: &str, now: Millis, per_hour: u32) -> Result<bool>;
}

/// Whose audit entries to read.
#[derive(Debug, Clone, Copy)]
pub enum AuditScope {
    Workspace(WorkspaceId),
    User(UserId),
}

#[doc(hidden)]
pub fn _assert_object_safe(_: &dyn Store) {}
