-- The CRM records a connector brought: a contacts connector's (CardDAV) contacts, one row per
-- card, and a mail connector's communications logged on contacts' timelines, one row per
-- message. Per row: which record, whether the connector created it (only those may be removed
-- with their item), a hash of the item's version (a card's ETag), the record's version after the
-- connector last wrote it, and, sealed, the item's name and the values last written (what a
-- change made in Meshwork is told from). A row whose record was deleted in Meshwork stays, so the
-- item does not bring it back.
CREATE TABLE connector_records (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    item TEXT NOT NULL,
    record_id TEXT NOT NULL,
    created BOOLEAN NOT NULL,
    fingerprint TEXT NOT NULL,
    version BIGINT NOT NULL,
    state_sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, connector_id, item)
);

-- One sync of a connector at a time, claimed by the store: a second run can only be written as
-- running once the first is no longer (runs left running by a stopped server are closed first).
UPDATE connector_runs SET state = 'failed'
WHERE state = 'running'
  AND id NOT IN (SELECT max(id) FROM connector_runs WHERE state = 'running' GROUP BY connector_id);
CREATE UNIQUE INDEX connector_runs_one_running ON connector_runs (connector_id) WHERE state = 'running';

-- A person's own marks on source documents: pinned, and a private note (sealed). Kept apart from
-- the documents, which syncs rewrite, so a re-sync never resets them; they go with the source.
CREATE TABLE document_marks (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL,
    source TEXT NOT NULL,
    pinned BOOLEAN NOT NULL,
    note_sealed BYTEA,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id, document_id)
);
CREATE INDEX document_marks_source ON document_marks (workspace_id, source);
