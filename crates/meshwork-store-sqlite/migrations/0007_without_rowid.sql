-- The CRM's narrow tables become WITHOUT ROWID tables, stored in their primary key's B-tree.
-- A rowid table with a composite primary key keeps two B-trees (the rows by rowid, and the
-- key's index); a bulk import writes a dedup key, a link, an import item and a change-feed
-- entry for almost every row, so this saves the writer one B-tree insert in each.
-- crm_records keeps its rowid: its rows carry the sealed document, too wide for WITHOUT ROWID.

CREATE TABLE crm_keys_new (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_kind TEXT NOT NULL,
    key_index BLOB NOT NULL,
    record_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, key_kind, key_index)
) STRICT, WITHOUT ROWID;
INSERT INTO crm_keys_new (workspace_id, key_kind, key_index, record_id)
    SELECT workspace_id, key_kind, key_index, record_id FROM crm_keys;
DROP TABLE crm_keys;
ALTER TABLE crm_keys_new RENAME TO crm_keys;
CREATE INDEX crm_keys_record ON crm_keys (record_id);

CREATE TABLE crm_links_new (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    from_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    to_id TEXT NOT NULL REFERENCES crm_records (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (from_id, to_id, role)
) STRICT, WITHOUT ROWID;
INSERT INTO crm_links_new (workspace_id, from_id, to_id, role)
    SELECT workspace_id, from_id, to_id, role FROM crm_links;
DROP TABLE crm_links;
ALTER TABLE crm_links_new RENAME TO crm_links;
CREATE INDEX crm_links_to ON crm_links (to_id, role);

CREATE TABLE import_items_new (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    previous_sealed BLOB,
    PRIMARY KEY (job_id, record_id)
) STRICT, WITHOUT ROWID;
INSERT INTO import_items_new (job_id, record_id, action, previous_sealed)
    SELECT job_id, record_id, action, previous_sealed FROM import_items;
DROP TABLE import_items;
ALTER TABLE import_items_new RENAME TO import_items;

CREATE TABLE changes_new (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO changes_new (workspace_id, seq, entity, entity_id, op, at)
    SELECT workspace_id, seq, entity, entity_id, op, at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
