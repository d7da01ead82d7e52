//! Rows of partner overlap (PartnerMesh): partnerships between two workspaces of this server,
//! populations (saved filters, or match-only lists) and the stored results of overlap runs.
//!
//! Nothing here holds an identifier in the clear: populations and results are sealed with their
//! workspace's key, and a match-only list's members are keyed hashes (pseudonyms), sealed again.
//! Share settings hold only population ids and share levels.

use meshwork_domain::{Millis, WorkspaceId};

/// A partnership: proposed by `inviter`, active once `invitee` accepts, revocable by either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnershipRow {
    pub id: String,
    pub inviter: WorkspaceId,
    pub invitee: WorkspaceId,
    /// `pending`, `active`, `declined` or `revoked`.
    pub state: String,
    /// What each side shares (population ids and levels) and its count threshold, as JSON owned
    /// by the server.
    pub inviter_settings: String,
    pub invitee_settings: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Grows with each change; updates name the version they replace, and results computed
    /// under an older version are refused.
    pub version: i64,
}

/// A population: a saved filter over the CRM, or a match-only list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulationRow {
    pub id: String,
    pub workspace_id: WorkspaceId,
    /// Name, kind, query or list summary, sealed.
    pub data_sealed: Vec<u8>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What one side of a partnership sees after a run, sealed with that side's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlapResultRow {
    pub partnership_id: String,
    pub workspace_id: WorkspaceId,
    pub data_sealed: Vec<u8>,
    pub computed_at: Millis,
}
