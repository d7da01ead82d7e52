-- Connectors: sources Meshwork reads itself, on a schedule and on demand. Their settings
-- (credentials included) are sealed with the workspace key; a connector's rows in the source
-- tables carry its `source`, so disconnecting removes all of them.
CREATE TABLE connectors (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    settings_sealed BYTEA NOT NULL,
    paused BOOLEAN NOT NULL,
    every_seconds BIGINT NOT NULL,
    next_sync_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (workspace_id, source)
);
CREATE INDEX connectors_due ON connectors (next_sync_at);

-- Each sync: when, how it ended, counts (plain numbers) and its problems (sealed: they name
-- files, people and groups).
CREATE TABLE connector_runs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    trigger TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    counts TEXT NOT NULL,
    report_sealed BYTEA
);
CREATE INDEX connector_runs_list ON connector_runs (connector_id, started_at);

-- Documents a person archived (mm15): kept apart from the connector's rows, so a sync never
-- resets them; a sync skips every document listed here. They go with the source.
CREATE TABLE source_archived (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    document_id TEXT NOT NULL,
    archived_by TEXT,
    archived_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, document_id)
);

-- What a connector last read of a document (a hash of its version and readers), so a sync
-- fetches only what changed.
ALTER TABLE source_documents ADD COLUMN fingerprint TEXT;
