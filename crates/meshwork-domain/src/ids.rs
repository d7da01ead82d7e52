//! Typed identifiers. Each wraps a UUID (version 7, so ids sort by creation time) and cannot be
//! mixed up with another kind of id.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A person with an account on this server.
    UserId
);
id_type!(
    /// A workspace: the unit of tenancy, of encryption keys and of roles.
    WorkspaceId
);
id_type!(
    /// An API key (the id, never the secret).
    ApiKeyId
);
id_type!(
    /// An invitation to join a workspace.
    InviteId
);
id_type!(
    /// One entry of the audit log.
    AuditId
);
id_type!(
    /// A CRM record: a company, contact, deal, note, activity, communication, file, form, form
    /// submission, pipeline or custom-field definition.
    RecordId
);
id_type!(
    /// A durable background job (an import, an export).
    JobId
);
