//! What the readers produce: mapped rows, per-row errors and whole-file errors.

use std::fmt;
use std::io;

use crate::layout::MappingError;

/// One value of a row, bound for a target field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// A canonical field name (see [`crate::canonical_fields`]) or `custom.<key>`.
    pub target: String,
    /// The header cell the value came from (a vCard property name for vCards), for messages.
    pub column: String,
    /// The trimmed, non-empty value, not validated.
    pub value: String,
}

/// One record of a file, mapped to target fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRow {
    /// 1-based number of the record among the data records (the header is row 0). Counts CSV
    /// records, not lines: a quoted cell may span lines. For vCards: the card's number.
    pub row: u64,
    /// 1-based physical line on which the record starts.
    pub line: u64,
    /// The non-empty cells, trimmed, in header order. A target may appear several times.
    pub fields: Vec<Field>,
    /// The record's original cells, for the error CSV. For vCards: one cell, the card's text.
    pub raw: Vec<String>,
}

impl MappedRow {
    /// The first value for `target`, if any.
    pub fn get(&self, target: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.target == target)
            .map(|f| f.value.as_str())
    }

    /// Every value for `target`, in order.
    pub fn get_all<'a>(&'a self, target: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |f| f.target == target)
            .map(|f| f.value.as_str())
    }
}

/// A record that cannot be mapped. Reading goes on with the next record unless `fatal` is set,
/// in which case this is the last item the reader yields (an I/O error mid-file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The record's number (as in [`MappedRow::row`]); for a fatal error, the record being read.
    pub row: u64,
    /// 1-based line on which the record starts.
    pub line: u64,
    /// The header cell the problem is in, when it is in one cell.
    pub column: Option<String>,
    /// What is wrong, in lower case, without the row and column (see `Display`).
    pub reason: String,
    /// The record's original cells (empty when the record was too large to keep).
    pub raw: Vec<String>,
    /// Reading cannot go on: the file could not be read further.
    pub fatal: bool,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} (line {})", self.row, self.line)?;
        if let Some(column) = &self.column {
            write!(f, ", column {column:?}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for RowError {}

/// A file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has no header line: it holds only blank lines")]
    NoHeader,
    #[error("the header (line {line}) is larger than {limit}; is this a CSV file?")]
    HeaderTooLarge { line: u64, limit: String },
    #[error("header, column {column}: the cell is not valid {encoding} text; save the file as UTF-8 or choose its encoding")]
    HeaderNotText {
        column: usize,
        encoding: &'static str,
    },
    #[error("header: column {name:?} appears twice (columns {first} and {second}) and the mapping names it; rename one of them")]
    DuplicateColumn {
        name: String,
        first: usize,
        second: usize,
    },
    #[error(
        "the mapping names column {column:?}, which is not in the header; the header has: {header}"
    )]
    MissingColumn { column: String, header: String },
    #[error("no column of the header is known to the {layout} layout for {kind} records (delimiter {delimiter}); the header has: {header}; check the layout, or use a mapping file")]
    NoKnownColumns {
        layout: String,
        kind: String,
        delimiter: String,
        header: String,
    },
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("error reading the file: {0}")]
    Io(#[from] io::Error),
    #[error("the file holds no vCard: it has no BEGIN:VCARD line")]
    NoCards,
    #[error("not a vCard file: line {line} is {text:?}, expected BEGIN:VCARD")]
    NotVcard { line: u64, text: String },
}

/// `16 MiB`, `64 KiB` or `1000 bytes`, for messages about limits.
pub(crate) fn human_size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// The header cells as a short quoted list for messages.
pub(crate) fn header_list(header: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = header
        .iter()
        .take(SHOWN)
        .map(|h| format!("{h:?}"))
        .collect();
    if header.len() > SHOWN {
        out.push(format!("and {} more", header.len() - SHOWN));
    }
    if out.is_empty() {
        return "no cells".to_string();
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_errors_name_row_line_and_column() {
        let e = RowError {
            row: 17,
            line: 18,
            column: Some("Email".into()),
            reason: "\"bob@\" is not an email address".into(),
            raw: vec![],
            fatal: false,
        };
        assert_eq!(
            e.to_string(),
            r#"row 17 (line 18), column "Email": "bob@" is not an email address"#
        );
        let e = RowError {
            column: None,
            reason: "the row has 7 cells, the header has 5".into(),
            ..e
        };
        assert_eq!(
            e.to_string(),
            "row 17 (line 18): the row has 7 cells, the header has 5"
        );
    }

    #[test]
    fn sizes_are_written_in_the_largest_exact_unit() {
        assert_eq!(human_size(16 * 1024 * 1024), "16 MiB");
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
