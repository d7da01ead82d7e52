-- Partnerships with a workspace on another Meshwork server (overlap through private set
-- intersection). Each server keeps one row for its own side. The link key that authenticates
-- the two servers to each other is sealed with the workspace key in peer_sealed, with the
-- partner's URL, its partnership id and its workspace name; a pending invitation keeps only the
-- SHA-256 of its secret. The stored view holds facts about this side's own records only.
CREATE TABLE remote_partnerships (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    state TEXT NOT NULL,
    invite_hash BYTEA,
    invite_expires_at BIGINT,
    peer_sealed BYTEA,
    settings TEXT NOT NULL,
    -- When the partner's server started runs against this one in the last hour (unix ms,
    -- comma-separated): the hourly cap holds across restarts and across servers.
    peer_run_starts TEXT NOT NULL DEFAULT '',
    view_sealed BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX remote_partnerships_ws ON remote_partnerships (workspace_id);
