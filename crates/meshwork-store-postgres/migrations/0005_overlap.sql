-- Partner overlap: partnerships between two workspaces of this server, populations, and what
-- each side sees after a run. No identifier is stored here in the clear: populations and results
-- are sealed with their workspace's key, and a match-only list's members are keyed hashes, sealed
-- again. Deleting either workspace deletes its partnerships and everything derived from them.
CREATE TABLE partnerships (
    id TEXT PRIMARY KEY,
    inviter_ws TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    invitee_ws TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The two workspace ids in order, so that A→B and B→A are the same pair.
    pair TEXT NOT NULL,
    state TEXT NOT NULL,
    inviter_settings TEXT NOT NULL,
    invitee_settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX partnerships_inviter ON partnerships (inviter_ws);
CREATE INDEX partnerships_invitee ON partnerships (invitee_ws);
-- At most one pending or active partnership per pair of workspaces.
CREATE UNIQUE INDEX partnerships_open_pair ON partnerships (pair) WHERE state IN ('pending', 'active');

CREATE TABLE populations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    data_sealed BYTEA NOT NULL,
    members_sealed BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX populations_ws ON populations (workspace_id);

CREATE TABLE overlap_results (
    partnership_id TEXT NOT NULL REFERENCES partnerships (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    data_sealed BYTEA NOT NULL,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (partnership_id, workspace_id)
);
