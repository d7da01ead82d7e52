-- Saved views of a list (a name and the list's query, sealed with the workspace key): kept by
-- the member who saved them, or shared with the whole workspace. They go with their workspace
-- and with the account of the member who saved them.
CREATE TABLE saved_views (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shared INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data_sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX saved_views_list ON saved_views (workspace_id, kind, created_at);
