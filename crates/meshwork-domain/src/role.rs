//! Roles and the permission table: the single place that says who may do what in a workspace.
//!
//! `docs/permissions.md` shows the same table for people; a test parses that file and fails if the
//! two disagree, so the documentation cannot drift from the code.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A member's role in one workspace, from most to least privileged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Rank for comparisons: higher is more privileged.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
            Role::Viewer => 0,
        }
    }

    /// Whether this role includes every right of `other` (used to cap what an actor may grant).
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// The permission table. Least privilege: a right is listed only for roles that need it.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            WorkspaceRead | MembersRead => true,
            WorkspaceRename | MembersInvite | MembersManage | ApiKeysRead | ApiKeysManage
            | ChangesRead | CrmBulk | CrmSchema | CrmImport | CrmExport | SourcesWrite
            | PartnersManage | JobsRead => {
                matches!(self, Owner | Admin)
            }
            CrmRead | SearchRead => true,
            CrmWrite | PartnersRead => matches!(self, Owner | Admin | Member),
            AuditRead | WorkspaceDelete | SupportManage | ProcessingManage | SecurityManage => {
                matches!(self, Owner)
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "\"{other}\" is not a role (expected owner, admin, member or viewer)"
            )),
        }
    }
}

/// Something a route may require. Each workspace route names exactly one of these in its
/// signature (see `meshwork-server`'s `Authorized<P>` extractor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    WorkspaceRead,
    WorkspaceRename,
    WorkspaceDelete,
    MembersRead,
    MembersInvite,
    MembersManage,
    ApiKeysRead,
    ApiKeysManage,
    AuditRead,
    ChangesRead,
    CrmRead,
    CrmWrite,
    CrmBulk,
    CrmSchema,
    CrmImport,
    CrmExport,
    SearchRead,
    SourcesWrite,
    PartnersRead,
    PartnersManage,
    JobsRead,
    SupportManage,
    ProcessingManage,
    /// The workspace's security rules (two-factor authentication required of admins).
    SecurityManage,
}

impl Permission {
    pub const ALL: [Permission; 24] = [
        Permission::WorkspaceRead,
        Permission::WorkspaceRename,
        Permission::WorkspaceDelete,
        Permission::MembersRead,
        Permission::MembersInvite,
        Permission::MembersManage,
        Permission::ApiKeysRead,
        Permission::ApiKeysManage,
        Permission::AuditRead,
        Permission::ChangesRead,
        Permission::CrmRead,
        Permission::CrmWrite,
        Permission::CrmBulk,
        Permission::CrmSchema,
        Permission::CrmImport,
        Permission::CrmExport,
        Permission::SearchRead,
        Permission::SourcesWrite,
        Permission::PartnersRead,
        Permission::PartnersManage,
        Permission::JobsRead,
        Permission::SupportManage,
        Permission::ProcessingManage,
        Permission::SecurityManage,
    ];

    /// The stable name used in `docs/permissions.md` and in the OpenAPI document's security scopes.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::WorkspaceRead => "workspace.read",
            Permission::WorkspaceRename => "workspace.rename",
            Permission::WorkspaceDelete => "workspace.delete",
            Permission::MembersRead => "members.read",
            Permission::MembersInvite => "members.invite",
            Permission::MembersManage => "members.manage",
            Permission::ApiKeysRead => "api_keys.read",
            Permission::ApiKeysManage => "api_keys.manage",
            Permission::AuditRead => "audit.read",
            Permission::ChangesRead => "changes.read",
            Permission::CrmRead => "crm.read",
            Permission::CrmWrite => "crm.write",
            Permission::CrmBulk => "crm.bulk",
            Permission::CrmSchema => "crm.schema",
            Permission::CrmImport => "crm.import",
            Permission::CrmExport => "crm.export",
            Permission::SearchRead => "search.read",
            Permission::SourcesWrite => "sources.write",
            Permission::PartnersRead => "partners.read",
            Permission::PartnersManage => "partners.manage",
            Permission::JobsRead => "jobs.read",
            Permission::SupportManage => "support.manage",
            Permission::ProcessingManage => "processing.manage",
            Permission::SecurityManage => "security.manage",
        }
    }

    /// Whether this is one of an admin's rights, beyond a member's: what a workspace that
    /// requires two-factor authentication of its admins guards with it (ASVS 4.3.1).
    pub fn is_administrative(self) -> bool {
        !Role::Member.allows(self)
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/permissions.md is the human copy of `Role::allows`; they must agree cell by cell.
    #[test]
    fn permission_doc_matches_code() {
        let doc = include_str!("../../../docs/permissions.md");
        let mut seen = Vec::new();
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 7 {
                continue;
            }
            let name = cells[1].trim_matches('`');
            let Some(permission) = Permission::parse(name) else {
                continue;
            };
            for (i, role) in Role::ALL.iter().enumerate() {
                let cell = cells[2 + i];
                let documented = cell == "yes";
                assert!(
                    cell == "yes" || cell == "no",
                    "docs/permissions.md: cell {role} of {name} must be yes or no, got {cell:?}"
                );
                assert_eq!(
                    documented,
                    role.allows(permission),
                    "docs/permissions.md says {role} {} {name}; the code disagrees",
                    if documented { "has" } else { "lacks" }
                );
            }
            seen.push(permission);
        }
        for p in Permission::ALL {
            assert!(seen.contains(&p), "docs/permissions.md has no row for {p}");
        }
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        for p in Permission::ALL {
            for (i, higher) in Role::ALL.iter().enumerate() {
                for lower in &Role::ALL[i..] {
                    if lower.allows(p) {
                        assert!(higher.allows(p), "{higher} lacks {p} which {lower} has");
                    }
                }
            }
        }
    }
}
