-- CRM records, their dedup keys, links, timeline events and file contents; durable jobs.
-- Fields live in one sealed document per record (data_sealed); nothing here is plaintext.
CREATE TABLE crm_records (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    data_sealed BLOB NOT NULL,
    occurred_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL
) STRICT;
CREATE INDEX crm_records_kind ON crm_records (workspace_id, kind, id);

CREATE TABLE crm_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_kind TEXT NOT NULL,
    key_index BLOB NOT NULL,
    record_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, key_kind, key_index)
) STRICT;
CREATE INDEX crm_keys_record ON crm_keys (record_id);

CREATE TABLE crm_links (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    from_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    to_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (from_id, to_id, role)
) STRICT;
CREATE INDEX crm_links_to ON crm_links (to_id, role);

CREATE TABLE crm_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    details_sealed BLOB NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX crm_events_subject ON crm_events (subject_id, at, id);

CREATE TABLE crm_blobs (
    record_id TEXT PRIMARY KEY REFERENCES crm_records (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    content_sealed BLOB NOT NULL
) STRICT;

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    spec_sealed BLOB NOT NULL,
    progress_sealed BLOB NOT NULL,
    cursor INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_workspace ON jobs (workspace_id, id);
CREATE INDEX jobs_running ON jobs (state) WHERE state = 'running';

-- No foreign key to crm_records: a record deleted after its import stays listed, and revert
-- skips it.
CREATE TABLE import_items (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    previous_sealed BLOB,
    PRIMARY KEY (job_id, record_id)
) STRICT;
