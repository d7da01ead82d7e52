//! `meshwork-search` owns the search index: one tantivy index per workspace, kept on disk sealed
//! with the workspace key ([`SealedDirectory`]) and decrypted in memory, fed in change-feed order
//! (each commit records the last applied sequence number), and queried with the searcher's
//! principal set applied as a filter at query time ([`Access`]).
//!
//! It knows nothing of HTTP or of the store: the server turns records and documents into
//! [`IndexDoc`]s, tails the change feed, and computes principal sets with [`principal_closure`].
//! The query language is in [`query`]; matching rules are documented in `docs/search.md`.

#![forbid(unsafe_code)]

mod acl;
mod dir;
mod highlight;
mod index;
mod list;
pub mod query;
mod schema;

pub use acl::{group_principal, principal_closure, user_principal, Access, CRM, EVERYONE};
pub use dir::{CorruptFile, SealedDirectory};
pub use index::{
    Group, Hit, IndexDoc, IndexOp, SearchIndex, SearchOptions, SearchResults, WriterBudget,
    DOCUMENT_KIND, KINDS,
};
pub use list::{
    CursorError, FieldClause, ListCursor, ListPage, ListQuery, SortField, SortOrder, StageTotal,
    UnknownSort,
};
pub use query::{Clause, FilterField, ParsedQuery, QueryError};

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Corrupt(#[from] CorruptFile),
    #[error("search index at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl SearchError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// True when the index on disk cannot be used and should be rebuilt from the store.
    pub fn needs_rebuild(&self) -> bool {
        matches!(
            self,
            SearchError::Corrupt(_)
                | SearchError::Tantivy(
                    tantivy::TantivyError::DataCorruption(_)
                        | tantivy::TantivyError::SchemaError(_)
                        | tantivy::TantivyError::IncompatibleIndex(_)
                        | tantivy::TantivyError::OpenReadError(_)
                        | tantivy::TantivyError::OpenDirectoryError(_)
                )
        )
    }
}

pub type Result<T, E = SearchError> = std::result::Result<T, E>;
