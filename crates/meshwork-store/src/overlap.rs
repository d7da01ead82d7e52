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

/// This side of a partnership with a workspace on another Meshwork server. Each server keeps
/// its own row; the two are tied by the link key both hold (sealed in `peer_sealed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePartnershipRow {
    pub id: String,
    /// The workspace of this server taking part.
    pub workspace_id: WorkspaceId,
    /// `inviter` or `invitee`.
    pub role: String,
    /// `pending`, `active`, `revoked` or `declined`.
    pub state: String,
    /// SHA-256 of the invitation's secret while it awaits acceptance (inviter side only).
    pub invite_hash: Option<Vec<u8>>,
    pub invite_expires_at: Option<Millis>,
    /// The partner's server URL, partnership id and workspace name, and the link key, sealed
    /// with the workspace key (absent while an invitation is pending).
    pub peer_sealed: Option<Vec<u8>>,
    /// What this side shares, as JSON owned by the server.
    pub settings: String,
    /// This side's view after its last run, sealed with the workspace key.
    pub view_sealed: Option<Vec<u8>>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Grows with each change; a run's view is stored only at the version it started from.
    pub version: i64,
}
