//! Rows of sources: documents, principals (users) and group memberships pushed by a connector or
//! the push API. Every row carries its source, so disconnecting a source removes all of it.
//! Principals appear here only as opaque strings (`u:<hex>`, `g:<hex>`, the hex of a blind index
//! of the source and its id), emails only as blind indexes, documents only sealed.

use meshwork_domain::{Millis, WorkspaceId};

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
}

/// A source user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePrincipalRow {
    pub principal: String,
    /// The blind index of the user's verified email, joining them to a Meshwork account.
    pub email_index: Option<[u8; 32]>,
}
