-- Data rights and retention (docs/privacy.md).

-- mm18: when the session's owner last proved it was them (a sign-in, or a password or TOTP code
-- given again); rights requests need it within the last 5 minutes.
ALTER TABLE sessions ADD COLUMN reauth_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET reauth_at = created_at;

-- mm13: accounts nobody signed in to for a while are warned, then deleted. `retention_warned` is
-- the days-before-deletion of the last warning sent (0: none since the last sign-in).
ALTER TABLE users ADD COLUMN last_active_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN retention_warned INTEGER NOT NULL DEFAULT 0;
-- Existing accounts start their window now: nobody is deleted by an upgrade.
UPDATE users SET last_active_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX users_last_active ON users (last_active_at);

-- pm13: the person does not want product news (security and account mail still arrive).
ALTER TABLE users ADD COLUMN marketing_opt_out INTEGER NOT NULL DEFAULT 0;

-- mm17: the dedup keys (blind indexes of emails, phones…) of contacts erased at their request.
-- No record may take one again, whatever writes it (an import already running, a form, a sync):
-- the trigger refuses the key, so the write fails instead of bringing the person back.
CREATE TABLE crm_suppressions (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_kind TEXT NOT NULL,
    key_index BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, key_kind, key_index)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER crm_keys_not_suppressed BEFORE INSERT ON crm_keys
WHEN EXISTS (SELECT 1 FROM crm_suppressions s
             WHERE s.workspace_id = NEW.workspace_id AND s.key_kind = NEW.key_kind
               AND s.key_index = NEW.key_index)
BEGIN SELECT RAISE(ABORT, 'crm_suppressed'); END;

-- mm09: an operator reads a workspace's data only under a grant one of its owners approved, for
-- a limited time, revocable; every read under it is in the workspace's audit log.
CREATE TABLE support_grants (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Who asks and why, sealed with the workspace key.
    operator_sealed BLOB NOT NULL,
    reason_sealed BLOB NOT NULL,
    minutes INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    approved_by TEXT,
    approved_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX support_grants_workspace ON support_grants (workspace_id);

-- pm03, mm07: product usage, counted only as aggregates: a feature, a day, a count. No
-- workspace, person or record is named here. A workspace that turns third-party processing off
-- (`processors_off`) is left out of the counts (and of any outbound processor).
CREATE TABLE usage_counts (
    day INTEGER NOT NULL,
    feature TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, feature)
) STRICT, WITHOUT ROWID;
ALTER TABLE workspaces ADD COLUMN processors_off INTEGER NOT NULL DEFAULT 0;

-- mm17 "restrict": a contact whose processing is restricted at their request stays stored and
-- visible, but no connector changes it, no overlap run matches it and no mail is logged on it.
CREATE TABLE crm_restrictions (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    record_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, record_id)
) STRICT, WITHOUT ROWID;
