//! Reading and writing CRM data files: CSV in the column layouts of HubSpot, Salesforce and
//! Pipedrive exports or a generic layout with a mapping file, vCard 3/4, error CSVs,
//! formula-safe CSV cells, and a deterministic test-data generator.
//!
//! This crate maps files to rows of (canonical target field, value) pairs and nothing more: it
//! does no database or network IO, knows nothing of encryption, depends on no other Meshwork
//! crate, and does not validate values. The caller checks each [`Field`] and reports a bad one
//! by its `column`, writing rejected rows with [`ErrorCsv`].
//!
//! Invariants:
//! - Memory is bounded by [`ReaderOptions::max_record_bytes`], never by the file: a record over
//!   the limit is skipped as it streams past and becomes a [`RowError`].
//! - Nothing is silently altered: a cell that is not valid text in the file's encoding rejects
//!   its row instead of becoming U+FFFD.
//! - Every cell of a CSV this crate writes for people goes through [`escape_formula`].
//!
//! The user-facing description of the formats is `docs/import.md`.

mod csv_rows;
mod decode;
mod error_csv;
mod generate;
mod layout;
mod row;
mod vcard;

pub use csv_rows::{CsvRows, ReaderOptions, DEFAULT_MAX_RECORD_BYTES};
pub use error_csv::{escape_formula, ErrorCsv, ERROR_COLUMNS};
pub use generate::{
    generate_hubspot_companies, generate_hubspot_contacts, generate_hubspot_deals,
    HUBSPOT_COMPANY_HEADER, HUBSPOT_CONTACT_HEADER, HUBSPOT_DEAL_HEADER,
};
pub use layout::{
    canonical_fields, is_valid_target, vendor_columns, Layout, Mapping, MappingError, RecordKind,
    UnknownName, CUSTOM_PREFIX, MAX_CUSTOM_KEY_LEN,
};
pub use row::{Field, FileError, MappedRow, RowError};
pub use vcard::{read_vcards, VcardRows};

/// The encodings a caller may name, re-exported so callers need not depend on `encoding_rs`.
pub use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};
