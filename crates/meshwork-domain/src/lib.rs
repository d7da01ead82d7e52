//! Meshwork's core vocabulary: identifiers, validated values (emails, names, passwords), roles and
//! the permission table, and the one table of error codes.
//!
//! This crate does no IO: it knows nothing of SQL, HTTP or files, so everything here is checked
//! by plain unit tests. Values are parsed at the edge into these types (`EmailAddress::parse`,
//! `Password::parse`) so that invalid states cannot reach the rest of the system.

pub mod error;
pub mod ids;
pub mod net;
pub mod role;
pub mod values;

pub use error::{ErrorCode, ErrorType, FieldError};
pub use ids::{ApiKeyId, AuditId, InviteId, JobId, RecordId, UserId, WorkspaceId};
pub use role::{Permission, Role};
pub use values::{
    EmailAddress, Password, PersonName, ProfileText, WorkspaceName, MAX_PICTURE_BYTES,
};

/// Milliseconds since the Unix epoch: the one time representation stored and exchanged.
pub type Millis = i64;
