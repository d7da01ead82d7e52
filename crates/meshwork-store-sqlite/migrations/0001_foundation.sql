-- Foundation schema (SQLite). Sealed values are BLOBs; ids are UUID text; times are Unix millis.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email_index BLOB NOT NULL UNIQUE,
    email_sealed BLOB NOT NULL,
    name_sealed BLOB NOT NULL,
    company_sealed BLOB NOT NULL,
    job_title_sealed BLOB NOT NULL,
    password_hash TEXT NOT NULL,
    email_verified INTEGER NOT NULL,
    age_confirmed_at INTEGER NOT NULL,
    totp_secret_sealed BLOB,
    totp_enabled INTEGER NOT NULL,
    failed_logins INTEGER NOT NULL,
    locked_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE user_pictures (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data_sealed BLOB NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

CREATE TABLE known_devices (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_hash BLOB NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_hash)
) STRICT;

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE tokens (
    hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name_sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    email_index BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_hash BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name_sealed BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    workspace_id TEXT,
    actor TEXT,
    subject TEXT,
    kind TEXT NOT NULL,
    details_sealed BLOB NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_workspace ON audit_log (workspace_id, id);
CREATE INDEX audit_subject ON audit_log (subject, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    to_sealed BLOB NOT NULL,
    subject_sealed BLOB NOT NULL,
    body_sealed BLOB NOT NULL,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    attempts INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

CREATE TABLE changes (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, seq)
) STRICT;
