//! The crate's tests through its public API, in one test binary to save link time: CSV layouts
//! and mappings, encodings, delimiters and record boundaries, limits, the error CSV, vCards and
//! the generator.

mod csv_encoding;
mod csv_layouts;
mod csv_limits;
mod error_csv;
mod generator;
mod roundtrip;
mod vcards;

use meshwork_crm_io::{CsvRows, FileError, Layout, MappedRow, ReaderOptions, RecordKind, RowError};

/// Reads a whole CSV file in memory.
pub fn read(bytes: &[u8], kind: RecordKind, layout: &Layout) -> Vec<Result<MappedRow, RowError>> {
    open(bytes, kind, layout).expect("the file opens").collect()
}

pub fn open<'a>(
    bytes: &'a [u8],
    kind: RecordKind,
    layout: &Layout,
) -> Result<CsvRows<&'a [u8]>, FileError> {
    CsvRows::open(bytes, kind, layout, &ReaderOptions::default())
}

/// The (target, value) pairs of a row.
pub fn pairs(row: &MappedRow) -> Vec<(&str, &str)> {
    row.fields
        .iter()
        .map(|f| (f.target.as_str(), f.value.as_str()))
        .collect()
}

/// The rows of a file that must have no row errors.
pub fn ok_rows(items: Vec<Result<MappedRow, RowError>>) -> Vec<MappedRow> {
    items
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("unexpected row error: {e}")))
        .collect()
}
