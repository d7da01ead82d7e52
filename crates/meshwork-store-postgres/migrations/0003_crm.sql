-- CRM records (PostgreSQL), their dedup keys, links, timeline events and file contents; durable jobs.
-- Fields live in one sealed document per record (data_sealed); nothing here is plaintext.
CREATE TABLE crm_records (
    id TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    data_sealed BYTEA NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX crm_records_kind ON crm_records (workspace_id, kind, id);

CREATE TABLE crm_keys (
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_kind TEXT NOT NULL,
    key_index BYTEA NOT NULL,
    record_id TEXT COLLATE "C" NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, key_kind, key_index)
);
CREATE INDEX crm_keys_record ON crm_keys (record_id);

CREATE TABLE crm_links (
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    from_id TEXT COLLATE "C" NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    to_id TEXT COLLATE "C" NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (from_id, to_id, role)
);
CREATE INDEX crm_links_to ON crm_links (to_id, role);

CREATE TABLE crm_events (
    id TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject_id TEXT COLLATE "C" NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    details_sealed BYTEA NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX crm_events_subject ON crm_events (subject_id, at, id);

CREATE TABLE crm_blobs (
    record_id TEXT COLLATE "C" PRIMARY KEY REFERENCES crm_records (id) ON DELETE CASCADE,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    content_sealed BYTEA NOT NULL
);

CREATE TABLE jobs (
    id TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    spec_sealed BYTEA NOT NULL,
    progress_sealed BYTEA NOT NULL,
    cursor BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_workspace ON jobs (workspace_id, id);
CREATE INDEX jobs_running ON jobs (state) WHERE state = 'running';

-- No foreign key to crm_records: a record deleted after its import stays listed, and revert
-- skips it.
CREATE TABLE import_items (
    job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    record_id TEXT COLLATE "C" NOT NULL,
    action TEXT NOT NULL,
    previous_sealed BYTEA,
    PRIMARY KEY (job_id, record_id)
);
