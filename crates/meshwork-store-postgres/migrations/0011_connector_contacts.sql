-- The cards a contacts connector (CardDAV) brought into the CRM, one row per card: which
-- contact it is, whether the connector created it (only those may be removed with their card),
-- the card's ETag hash, the contact's version after the connector last wrote it, and, sealed,
-- the card's href and the field values last written (what a change in Meshwork is told from).
-- A row whose contact was deleted in Meshwork stays, so the card does not bring it back.
CREATE TABLE connector_contacts (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    card TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    created BOOLEAN NOT NULL,
    fingerprint TEXT NOT NULL,
    version BIGINT NOT NULL,
    state_sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, connector_id, card)
);
