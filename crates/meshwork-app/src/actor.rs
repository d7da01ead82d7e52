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

/// A person or an API key, each with its own allowance of API requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerKey {
    User(UserId),
    ApiKey(ApiKeyId),
}

impl Actor {
    /// The person behind the request (an API key's creator), for the audit log.
    pub fn user_id(&self) -> UserId {
        match self {
            Actor::User { id, .. } => *id,
            Actor::ApiKey { created_by, .. } => *created_by,
        }
    }

    /// Whose allowance of requests this one counts against (`AppState::caller_limiter`).
    pub fn limit_key(&self) -> CallerKey {
        match self {
            Actor::User { id, .. } => CallerKey::User(*id),
            Actor::ApiKey { id, .. } => CallerKey::ApiKey(*id),
        }
    }

    /// Who is acting, for the log: `user <id>` or `api key <id>` (never a secret).
    pub fn describe(&self) -> String {
        match self {
            Actor::User { id, .. } => format!("user {id}"),
            Actor::ApiKey { id, .. } => format!("api key {id}"),
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

/// A signed-in person acting in a workspace they belong to: what a page checks, as the API's
/// `Authorized` does, before it calls a workspace's services.
#[derive(Debug, Clone)]
pub struct Member {
    pub workspace: WorkspaceId,
    pub actor: Actor,
    pub role: Role,
    /// Whether the workspace withholds this owner's or admin's rights beyond a member's until
    /// they use two-factor authentication (OWASP ASVS 4.3.1).
    pub admin_withheld: bool,
}

impl InWorkspace for Member {
    fn workspace(&self) -> WorkspaceId {
        self.workspace
    }
    fn actor(&self) -> &Actor {
        &self.actor
    }
    fn role(&self) -> Role {
        self.role
    }
}

impl Member {
    /// `user` (signed in with the session `session_hash`) in `workspace`: refused as not found
    /// when they do not belong to it (outsiders learn nothing, not even that it exists), and
    /// refused when their role lacks `permission`.
    pub async fn of(
        state: &crate::AppState,
        user: UserId,
        session_hash: [u8; 32],
        workspace: WorkspaceId,
        permission: meshwork_domain::Permission,
    ) -> crate::AppResult<Self> {
        let role = state
            .store
            .role_of(workspace, user)
            .await?
            .ok_or_else(crate::AppError::not_found_workspace)?;
        let actor = Actor::User {
            id: user,
            session_hash,
        };
        let admin_withheld = role.at_least(Role::Admin)
            && crate::workspaces::admin_rights_withheld(state, workspace, &actor).await?;
        let member = Self {
            workspace,
            actor,
            role,
            admin_withheld,
        };
        member.require(permission)?;
        Ok(member)
    }

    /// Whether the member may use `permission` now: their role allows it, and it is not an
    /// admin's right the workspace withholds from them. Pages show controls by it.
    pub fn may(&self, permission: meshwork_domain::Permission) -> bool {
        self.role.allows(permission) && !(self.admin_withheld && permission.is_administrative())
    }

    /// Refuses `permission` when [`Member::may`] does not allow it, saying why.
    pub fn require(&self, permission: meshwork_domain::Permission) -> crate::AppResult<()> {
        if !self.role.allows(permission) {
            return Err(crate::AppError::new(
                meshwork_domain::ErrorCode::PermissionDenied,
                format!(
                    "your role ({}) does not allow {permission} in this workspace",
                    self.role
                ),
            ));
        }
        if !self.may(permission) {
            return Err(crate::workspaces::admin_mfa_refusal(permission));
        }
        Ok(())
    }
}

/// Where a request came from, for the audit log, rate limiting and new-device alerts. The edge
/// fills it from the connection and the `User-Agent`; jobs and the CLI have none.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: String,
}

impl ClientInfo {
    /// The key rate limits count this client under: its IPv4 address, or its IPv6 /64 (one
    /// subscriber holds a whole /64, so per-address buckets would be 2^64 fresh ones).
    pub fn rate_key(&self) -> Option<std::net::IpAddr> {
        self.ip.map(rate_key)
    }
}

/// The client's address (security finding 3): the connection's, unless it comes from one of
/// the `trusted` proxies; then the `X-Forwarded-For` list (`forwarded`, its headers joined by
/// commas) is read from the right, past every trusted proxy, and the first address that is not
/// one is the client. An entry that is not an address stops the walk at the proxy that added
/// it, so a client cannot write its own address into the header and be believed.
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => {
                v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(*ip)
            }
            v4 => *v4,
        };
        trusted.iter().any(|n| n.contains(&ip))
    };
    let (Some(list), true) = (forwarded, is_trusted(&peer)) else {
        return peer;
    };
    let mut client = peer;
    for entry in list.rsplit(',') {
        let entry = entry.trim();
        let Some(ip) = entry
            .parse::<std::net::IpAddr>()
            .ok()
            .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// See [`ClientInfo::rate_key`].
pub fn rate_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                std::net::IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let nets: Vec<ipnet::IpNet> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From a client directly: the header is the client's own claim, ignored.
        assert_eq!(
            client_address(ip("203.0.113.9"), Some("1.2.3.4"), &nets),
            ip("203.0.113.9")
        );
        // Through a trusted proxy: the address it saw.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("198.51.100.7"), &nets),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("::1"), Some("198.51.100.7"), &nets),
            ip("198.51.100.7")
        );
        // A client's forged entry on the left is not believed: the rightmost untrusted one is.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                Some("6.6.6.6, 198.51.100.7, 10.0.0.3"),
                &nets
            ),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the proxy that added it.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("nonsense, 10.0.0.3"), &nets),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("junk"), &nets),
            ip("10.0.0.2")
        );
        // No header: the proxy itself.
        assert_eq!(client_address(ip("10.0.0.2"), None, &nets), ip("10.0.0.2"));
        // No trusted proxies (the default): the header is never read.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("198.51.100.7"), &[]),
            ip("10.0.0.2")
        );
        // An IPv4-mapped peer counts as its IPv4 address.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), Some("198.51.100.7"), &nets),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_clients_share_their_64_bucket() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(rate_key(a), rate_key(b));
        assert_ne!(rate_key(a), rate_key(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(rate_key(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(rate_key(mapped), v4);
    }
}
