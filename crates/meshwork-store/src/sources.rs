//! Rows of sources: documents, principals (users) and group memberships pushed by a connector or
//! the push API. Every row carries its source, so disconnecting a source removes all of it.
//! Principals appear here only as opaque strings (`u:<hex>`, `g:<hex>`, the hex of a blind index
//! of the source and its id), emails only as blind indexes, documents only sealed.

use meshwork_domain::{Millis, RecordId, UserId, WorkspaceId};

/// A source document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDocRow {
    /// Derived from the source and the document's id in it (a blind index), so a push of the same
    /// document always lands on the same row.
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub source: String,
    /// Title, text, URL, allowed principals and times, sealed.
    pub data_sealed: Vec<u8>,
    pub updated_at: Millis,
    /// What a connector last read of it (a hash of its version and readers); `None` for pushed
    /// documents.
    pub fingerprint: Option<String>,
}

/// A source user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePrincipalRow {
    pub principal: String,
    /// The blind index of the user's verified email, joining them to a Meshwork account.
    pub email_index: Option<[u8; 32]>,
}

/// A connector: a source Meshwork reads itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRow {
    pub id: String,
    pub workspace_id: WorkspaceId,
    /// The source name its rows carry.
    pub source: String,
    pub kind: String,
    /// Its settings, credentials included, sealed with the workspace key.
    pub settings_sealed: Vec<u8>,
    pub paused: bool,
    pub every_seconds: i64,
    pub next_sync_at: Millis,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A person's own mark on a source document (mm15's neighbour: user-side state that no sync
/// resets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentMarkRow {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub document_id: String,
    pub source: String,
    pub pinned: bool,
    /// The person's note, sealed.
    pub note_sealed: Option<Vec<u8>>,
    pub updated_at: Millis,
}

/// A CRM record a connector brought: a card's contact, a message's communication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRecordRow {
    pub workspace_id: WorkspaceId,
    pub connector_id: String,
    /// The item's id at the source as a keyed hash (never the href or Message-ID itself).
    pub item: String,
    pub record_id: RecordId,
    /// Whether the connector created the record (else it matched a contact by email).
    pub created: bool,
    /// A hash of the item's version when it was last read (a card's ETag).
    pub fingerprint: String,
    /// The record's version after the connector last wrote it.
    pub version: i64,
    /// The item's name and the field values last written, sealed.
    pub state_sealed: Vec<u8>,
    pub updated_at: Millis,
}

/// One sync of a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRunRow {
    /// The job's id.
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub connector_id: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// Counts as JSON (plain numbers only).
    pub counts: String,
    /// Problems met (they name items), sealed.
    pub report_sealed: Option<Vec<u8>>,
}
