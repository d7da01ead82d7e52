-- Sources: documents, principals and group memberships pushed by connectors or the push API.
-- Documents are sealed; principals are opaque blind-index strings (u:<hex>, g:<hex>); emails
-- appear only as blind indexes. Every row names its source, so disconnecting removes all of it.
CREATE TABLE source_documents (
    id TEXT COLLATE "C" PRIMARY KEY,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source TEXT COLLATE "C" NOT NULL,
    data_sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX source_documents_ws ON source_documents (workspace_id, id);
CREATE INDEX source_documents_source ON source_documents (workspace_id, source);

CREATE TABLE source_principals (
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source TEXT COLLATE "C" NOT NULL,
    principal TEXT COLLATE "C" NOT NULL,
    email_index BYTEA,
    PRIMARY KEY (workspace_id, source, principal)
);
CREATE INDEX source_principals_email ON source_principals (workspace_id, email_index);

CREATE TABLE source_memberships (
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source TEXT COLLATE "C" NOT NULL,
    group_principal TEXT COLLATE "C" NOT NULL,
    member TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (workspace_id, group_principal, member)
);
CREATE INDEX source_memberships_member ON source_memberships (workspace_id, member);
CREATE INDEX source_memberships_source ON source_memberships (workspace_id, source);
