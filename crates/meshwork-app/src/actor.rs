//! Who is acting: a signed-in person (by session) or a workspace API key. The HTTP edge
//! authenticates a request into an [`Actor`]; services take it to scope what they read and to
//! name the person in the audit log.

use meshwork_domain::{ApiKeyId, Role, UserId, WorkspaceId};

/// Who is making a request.
#[derive(Debug, Clone)]
pub enum Actor {
    User {
        id: UserId,
        session_hash: [u8; 32],
    },
    /// `role` is the key's effective role: its own, capped by its creator's current role in the
    /// workspace; `None` once the creator has left the workspace (the key then opens nothing).
    ApiKey {
        id: ApiKeyId,
        workspace: WorkspaceId,
        role: Option<Role>,
        created_by: UserId,
    },
}

impl Actor {
    /// The person behind the request (an API key's creator), for the audit log.
    pub fn user_id(&self) -> UserId {
        match self {
            Actor::User { id, .. } => *id,
            Actor::ApiKey { created_by, .. } => *created_by,
        }
    }
}

/// An actor already authorised in one workspace (the edge's `Authorized<P>`): what the audit log
/// and workspace services need to know of it.
pub trait InWorkspace {
    fn workspace(&self) -> WorkspaceId;
    fn actor(&self) -> &Actor;
    /// The actor's effective role there (an API key's, capped by its creator's current role).
    fn role(&self) -> Role;
}

/// Where a request came from, for the audit log, rate limiting and new-device alerts. The edge
/// fills it from the connection and the `User-Agent`; jobs and the CLI have none.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: String,
}
