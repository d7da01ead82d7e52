//! The error CSV: the rejected rows of an import, as they were, plus where and why, so a user
//! can fix them in a spreadsheet and import the file again.
//!
//! Every cell goes through [`escape_formula`], because the file is made to be opened in a
//! spreadsheet and its cells came from somebody else's upload.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::row::RowError;

/// Makes a cell safe to open in a spreadsheet: a cell starting with `=`, `+`, `-`, `@`, tab or
/// carriage return gets a leading apostrophe, so it is shown as text instead of run as a
/// formula (OWASP, "CSV Injection"). Other cells are returned unchanged.
///
/// Negative numbers (`-5`) are escaped too; a spreadsheet shows them as text.
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// The columns the error CSV adds after the original header.
pub const ERROR_COLUMNS: [&str; 3] = ["_row", "_column", "_reason"];

/// Writes rejected rows: the original header plus `_row`, `_column`, `_reason`, then one line
/// per [`RowError`] with the row's original cells. A row with fewer cells than the header is
/// padded with empty cells; the cells of a row with more are written up to the header's width
/// and the rest are quoted in `_reason`, so the columns stay aligned.
pub struct ErrorCsv<W: Write> {
    out: csv::Writer<W>,
    width: usize,
    record: Vec<String>,
}

impl<W: Write> std::fmt::Debug for ErrorCsv<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorCsv")
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("error writing the error CSV: {other:?}")),
    }
}

impl<W: Write> ErrorCsv<W> {
    /// Starts an error CSV and writes its header.
    pub fn new(out: W, header: &[String]) -> Result<Self, io::Error> {
        let mut out = csv::WriterBuilder::new().flexible(false).from_writer(out);
        let cells = header
            .iter()
            .map(|h| escape_formula(h))
            .chain(ERROR_COLUMNS.iter().map(|&c| Cow::Borrowed(c)));
        out.write_record(cells.map(|c| c.into_owned()))
            .map_err(csv_error)?;
        Ok(ErrorCsv {
            out,
            width: header.len(),
            record: Vec::with_capacity(header.len() + 3),
        })
    }

    /// Writes one rejected row.
    pub fn write(&mut self, e: &RowError) -> io::Result<()> {
        self.record.clear();
        for i in 0..self.width {
            let cell = e.raw.get(i).map(String::as_str).unwrap_or("");
            self.record.push(escape_formula(cell).into_owned());
        }
        let mut reason = e.reason.clone();
        if e.raw.len() > self.width {
            let extra: Vec<String> = e.raw[self.width..]
                .iter()
                .map(|c| format!("{c:?}"))
                .collect();
            reason.push_str(&format!(" (cells past the header: {})", extra.join(", ")));
        }
        self.record.push(e.row.to_string());
        self.record
            .push(escape_formula(e.column.as_deref().unwrap_or("")).into_owned());
        self.record.push(escape_formula(&reason).into_owned());
        self.out.write_record(&self.record).map_err(csv_error)
    }

    /// Flushes the file and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_an_apostrophe_and_other_cells_are_borrowed() {
        for (cell, want) in [
            ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
            ("+1 555 0100", "'+1 555 0100"),
            ("-5", "'-5"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
        ] {
            assert_eq!(escape_formula(cell), want);
        }
        for cell in ["", "Müller", "a=b", " =x", "'quoted", "5-3"] {
            assert!(matches!(escape_formula(cell), Cow::Borrowed(c) if c == cell));
        }
    }
}
