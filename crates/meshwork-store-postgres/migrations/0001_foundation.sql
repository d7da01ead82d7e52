-- Foundation schema (PostgreSQL). Sealed values are BYTEAs; ids are UUID text; times are Unix millis.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email_index BYTEA NOT NULL UNIQUE,
    email_sealed BYTEA NOT NULL,
    name_sealed BYTEA NOT NULL,
    company_sealed BYTEA NOT NULL,
    job_title_sealed BYTEA NOT NULL,
    password_hash TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL,
    age_confirmed_at BIGINT NOT NULL,
    totp_secret_sealed BYTEA,
    totp_enabled BOOLEAN NOT NULL,
    failed_logins INTEGER NOT NULL,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE user_pictures (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data_sealed BYTEA NOT NULL
);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE known_devices (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_hash BYTEA NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_hash)
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE tokens (
    hash BYTEA PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name_sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    last_seq BIGINT NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    email_index BYTEA NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_hash BYTEA NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name_sealed BYTEA NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    workspace_id TEXT,
    actor TEXT,
    subject TEXT,
    kind TEXT NOT NULL,
    details_sealed BYTEA NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX audit_workspace ON audit_log (workspace_id, id);
CREATE INDEX audit_subject ON audit_log (subject, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    to_sealed BYTEA NOT NULL,
    subject_sealed BYTEA NOT NULL,
    body_sealed BYTEA NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    attempts INTEGER NOT NULL
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

CREATE TABLE changes (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
