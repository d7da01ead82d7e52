//! Row types: what the store keeps, field by field. Fields ending in `_sealed` hold values sealed
//! by the keyring; `*_index` and `*_hash` fields are one-way (blind indexes, token hashes).

use crate::Hash32;
use meshwork_domain::{ApiKeyId, AuditId, InviteId, Millis, Role, UserId, WorkspaceId};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: UserId,
    pub email_index: Hash32,
    pub email_sealed: Vec<u8>,
    pub name_sealed: Vec<u8>,
    pub company_sealed: Vec<u8>,
    pub job_title_sealed: Vec<u8>,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub email_verified: bool,
    /// When the user confirmed being 16 or over.
    pub age_confirmed_at: Millis,
    pub totp_secret_sealed: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub failed_logins: i32,
    pub locked_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub email_index: Hash32,
    pub email_sealed: Vec<u8>,
    pub name_sealed: Vec<u8>,
    pub company_sealed: Vec<u8>,
    pub job_title_sealed: Vec<u8>,
    /// False when the email changed: the new address must be verified again.
    pub email_verified: bool,
}

#[derive(Debug, Clone)]
pub struct PictureRow {
    pub content_type: String,
    pub data_sealed: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: Hash32,
    pub user_id: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// When the session was last used (kept to the minute), for the idle timeout.
    pub last_seen_at: Millis,
    /// Where it was started (user agent and address, JSON), sealed with the account key.
    pub client_sealed: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub hash: Hash32,
    /// `verify_email` or `password_reset`.
    pub kind: String,
    pub user_id: UserId,
    pub expires_at: Millis,
    /// The blind index of the address a verification link was sent to: it verifies that
    /// address only (security finding 12).
    pub email_index: Option<Hash32>,
    /// For an email change, the new address, sealed: taking the link moves the account to it.
    pub email_sealed: Option<Vec<u8>>,
    /// What the token carries, sealed: a WebAuthn ceremony's state.
    pub payload_sealed: Option<Vec<u8>>,
}

/// A WebAuthn security key of an account.
#[derive(Debug, Clone)]
pub struct SecurityKeyRow {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    /// The blind index of the credential id, unique over all accounts.
    pub credential_index: Hash32,
    /// The credential and the name its owner gave it, sealed with the account key.
    pub key_sealed: Vec<u8>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct WorkspaceRow {
    pub id: WorkspaceId,
    pub name_sealed: Vec<u8>,
    pub created_at: Millis,
    /// The sequence number of the newest change.
    pub last_seq: i64,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: Millis,
}

#[derive(Debug, Clone)]
pub struct InviteRow {
    pub id: InviteId,
    pub workspace_id: WorkspaceId,
    pub token_hash: Hash32,
    /// Blind index (account key) of the invited email: only that person can accept.
    pub email_index: Hash32,
    pub role: Role,
    pub invited_by: UserId,
    pub expires_at: Millis,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub key_hash: Hash32,
    /// The first characters of the key, shown in lists so people can tell keys apart.
    pub prefix: String,
    pub name_sealed: Vec<u8>,
    pub role: Role,
    pub created_by: UserId,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// When the key was last used (written at most once a minute per key and server).
    pub last_used_at: Option<Millis>,
    /// The client address of that use, sealed with the workspace key.
    pub last_used_from_sealed: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: AuditId,
    pub workspace_id: Option<WorkspaceId>,
    pub actor: Option<UserId>,
    /// The subject user, for account events (sign-in of whom).
    pub subject: Option<UserId>,
    pub kind: String,
    pub details_sealed: Vec<u8>,
    pub at: Millis,
}

#[derive(Debug, Clone)]
pub struct MailRow {
    pub id: uuid::Uuid,
    pub to_sealed: Vec<u8>,
    pub subject_sealed: Vec<u8>,
    pub body_sealed: Vec<u8>,
    /// Why the mail exists (`verify_email`, `password_reset`, `new_device`, `invite`).
    pub kind: String,
    pub created_at: Millis,
}

/// The queues and the feed at one moment ([`crate::Store::operations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationsRow {
    /// (kind, state, count) of the job queue's jobs not yet done: `queued`, `running`, `failed`.
    pub jobs: Vec<(String, String, i64)>,
    /// Mail in the outbox not yet sent, and when the oldest of it was queued.
    pub unsent_mail: i64,
    pub oldest_unsent_at: Option<Millis>,
    /// Each workspace's last change-feed sequence number.
    pub last_seqs: Vec<(WorkspaceId, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub workspace_id: WorkspaceId,
    pub seq: i64,
    /// The kind of record (`workspace`, `membership`, `invite`, `api_key`…).
    pub entity: String,
    pub entity_id: String,
    /// `create`, `update` or `delete`.
    pub op: String,
    pub at: Millis,
}

/// A job of the durable queue (`job_queue`): background work any server sharing the database may
/// run, under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJobRow {
    pub id: uuid::Uuid,
    /// What to run (`mail.send`, `import`, `jobs.prune`…).
    pub kind: String,
    /// The workspace the job works in, if any (its rows go when the workspace goes).
    pub workspace_id: Option<WorkspaceId>,
    /// The job's input; sealed (workspace key, or the account key without a workspace) when
    /// `payload_sealed`.
    pub payload: Vec<u8>,
    pub payload_sealed: bool,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Runs started, counting the one in progress.
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not before this time.
    pub run_at: Millis,
    pub lease_holder: Option<String>,
    pub lease_until: Option<Millis>,
    /// Why the last run failed, sealed with the account key (it may quote an address).
    pub error_sealed: Option<Vec<u8>>,
    /// At most one job per key (a periodic job's period).
    pub unique_key: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// How a run of a job ended, as its runner records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// Run again at this time (a temporary failure), unless the attempts are used up, in which
    /// case the job fails with this error.
    RetryAt(Millis, Vec<u8>),
    Failed(Vec<u8>),
    /// Put back untouched (shutdown): the attempt does not count.
    Released,
}

/// An operator's request to read a workspace's data (mm09), and, once an owner approved it,
/// until when it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportGrantRow {
    pub id: uuid::Uuid,
    pub workspace_id: WorkspaceId,
    /// Who asks, and why: sealed with the workspace key.
    pub operator_sealed: Vec<u8>,
    pub reason_sealed: Vec<u8>,
    /// How long it holds once approved.
    pub minutes: i64,
    pub requested_at: Millis,
    pub approved_by: Option<UserId>,
    pub approved_at: Option<Millis>,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}
