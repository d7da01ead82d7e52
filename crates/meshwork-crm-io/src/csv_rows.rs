//! The streaming CSV reader: bytes in any supported encoding in, [`MappedRow`]s out.
//!
//! Records are parsed with `csv-core` into a buffer that grows up to
//! [`ReaderOptions::max_record_bytes`] and no further: a larger record is parsed on into a scratch
//! buffer and thrown away, becoming a [`RowError`], so a 2 GB file of one line costs a few MiB.
//! Memory is therefore bounded by the limit, never by the size of the file.
//!
//! Conventions: records are separated by `\n`, `\r\n` or `\r`; blank lines are skipped and not
//! counted; a record whose cells are all blank is skipped but counted (Excel leaves such rows);
//! quotes follow RFC 4180 (`""` inside a quoted cell is one quote); a row with fewer cells than
//! the header is read as if the missing ones were empty, one with more is rejected unless the
//! extra cells are blank.

use std::io::{self, Read};

use csv_core::{ReadRecordResult, ReaderBuilder};
use encoding_rs::{Encoding, UTF_8};

use crate::decode::{read_full, read_retrying, Utf8Stream};
use crate::layout::{resolve, Layout, RecordKind, ResolveError, Target};
use crate::row::{header_list, human_size, Field, FileError, MappedRow, RowError};

/// The default largest record: 16 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// How to read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderOptions {
    /// The file's encoding; `None` detects it (BOM, then UTF-8, then windows-1252).
    pub encoding: Option<&'static Encoding>,
    /// The cell delimiter; `None` picks the most frequent of `,` `;` tab `|` in the header.
    pub delimiter: Option<u8>,
    /// The largest record (CSV row, or vCard) kept, in bytes of decoded cell text; larger
    /// records become a [`RowError`] and are skipped. A record may also have at most
    /// `max_record_bytes / 8` cells.
    pub max_record_bytes: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            encoding: None,
            delimiter: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// The delimiters tried when sniffing, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// How many bytes of decoded text are read at a time.
const INPUT_BUFFER: usize = 64 * 1024;

/// A delimiter as written in messages.
pub(crate) fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".to_string(),
        b' ' => "space".to_string(),
        d if d.is_ascii_graphic() => format!("'{}'", d as char),
        d => format!("byte 0x{d:02X}"),
    }
}

/// Picks the delimiter of a file from its first record: the candidate occurring most often
/// outside quotes; `,` when none does.
fn sniff_delimiter(text: &[u8]) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut in_quotes = false;
    let mut started = false;
    for &b in text {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes && started => break,
            _ if !in_quotes => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
        started |= b != b'\n' && b != b'\r';
    }
    let mut best = 0;
    for i in 1..DELIMITERS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    DELIMITERS[best]
}

enum Record {
    /// The cells are in the reader's buffers; the record starts on this line.
    Cells {
        line: u64,
    },
    /// The record was larger than the limit and has been skipped.
    TooLarge {
        line: u64,
    },
    End,
}

/// Reads CSV records from a UTF-8 byte stream, one at a time, in bounded memory.
struct RecordReader<R> {
    src: R,
    core: csv_core::Reader,
    input: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// The cells of the current record, back to back.
    out: Vec<u8>,
    /// The end of each cell in `out`.
    ends: Vec<usize>,
    n_ends: usize,
    max_bytes: usize,
    max_cells: usize,
    /// The 1-based line of the next unread byte.
    line: u64,
}

impl<R: Read> RecordReader<R> {
    fn new(mut src: R, delimiter: Option<u8>, max_bytes: usize) -> io::Result<(Self, u8)> {
        let mut input = vec![0; INPUT_BUFFER].into_boxed_slice();
        let len = read_full(&mut src, &mut input)?;
        let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(&input[..len]));
        let core = ReaderBuilder::new().delimiter(delimiter).build();
        let max_bytes = max_bytes.max(1);
        let reader = RecordReader {
            src,
            core,
            input,
            pos: 0,
            len,
            eof: len < INPUT_BUFFER,
            // One byte over the limit, so that a record of exactly the limit still fits.
            out: vec![0; (max_bytes + 1).min(4096)],
            ends: vec![0; 64],
            n_ends: 0,
            max_bytes,
            max_cells: (max_bytes / 8).max(64),
            line: 1,
        };
        Ok((reader, delimiter))
    }

    /// Refills the input buffer once it is used up; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        let n = read_retrying(&mut self.src, &mut self.input)?;
        self.pos = 0;
        self.len = n;
        self.eof = n == 0;
        Ok(n > 0)
    }

    fn next_record(&mut self) -> io::Result<Record> {
        // Blank lines between records are not records.
        loop {
            if !self.fill()? {
                return Ok(Record::End);
            }
            match self.input[self.pos] {
                b'\n' => self.line += 1,
                b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
        let line = self.line;
        let (mut n_out, mut n_ends, mut skipping) = (0usize, 0usize, false);
        loop {
            self.fill()?;
            let input = &self.input[self.pos..self.len];
            let (res, n_in, out, ends) =
                self.core
                    .read_record(input, &mut self.out[n_out..], &mut self.ends[n_ends..]);
            self.line += input[..n_in].iter().filter(|&&b| b == b'\n').count() as u64;
            self.pos += n_in;
            if !skipping {
                n_out += out;
                n_ends += ends;
            }
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if skipping => {}
                ReadRecordResult::OutputFull if self.out.len() > self.max_bytes => {
                    skipping = true;
                    (n_out, n_ends) = (0, 0);
                }
                ReadRecordResult::OutputFull => {
                    let size = (self.out.len() * 2).min(self.max_bytes + 1);
                    self.out.resize(size, 0);
                }
                ReadRecordResult::OutputEndsFull if skipping => {}
                ReadRecordResult::OutputEndsFull if self.ends.len() >= self.max_cells => {
                    skipping = true;
                    (n_out, n_ends) = (0, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let size = (self.ends.len() * 2).min(self.max_cells);
                    self.ends.resize(size, 0);
                }
                ReadRecordResult::Record if skipping => {
                    self.n_ends = 0;
                    return Ok(Record::TooLarge { line });
                }
                ReadRecordResult::Record => {
                    self.n_ends = n_ends;
                    return Ok(Record::Cells { line });
                }
                ReadRecordResult::End => return Ok(Record::End),
            }
        }
    }

    fn cell_count(&self) -> usize {
        self.n_ends
    }

    fn cell(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    fn buffer_bytes(&self) -> usize {
        self.input.len() + self.out.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }
}

/// The data rows of a CSV file, mapped to the fields of one record kind.
///
/// Iterating yields `Ok(MappedRow)` for each usable record and `Err(RowError)` for each
/// rejected one; after an `Err` with `fatal` set (the file could not be read further) the
/// iterator ends.
pub struct CsvRows<R: Read> {
    records: RecordReader<Utf8Stream<R>>,
    header: Vec<String>,
    targets: Vec<Option<Target>>,
    ignored: Vec<String>,
    encoding: &'static Encoding,
    delimiter: u8,
    row: u64,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("header", &self.header)
            .field("encoding", &self.encoding.name())
            .field("delimiter", &delimiter_name(self.delimiter))
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads the header of a CSV file and matches it to the layout.
    pub fn open(
        reader: R,
        kind: RecordKind,
        layout: &Layout,
        options: &ReaderOptions,
    ) -> Result<Self, FileError> {
        let (stream, raw_len) = Utf8Stream::open(reader, options.encoding)?;
        if raw_len == 0 {
            return Err(FileError::Empty);
        }
        let encoding = stream.encoding();
        let (mut records, delimiter) =
            RecordReader::new(stream, options.delimiter, options.max_record_bytes)?;
        let header = match records.next_record()? {
            Record::End => return Err(FileError::NoHeader),
            Record::TooLarge { line } => {
                return Err(FileError::HeaderTooLarge {
                    line,
                    limit: human_size(options.max_record_bytes),
                })
            }
            Record::Cells { .. } => (0..records.cell_count())
                .map(|i| {
                    std::str::from_utf8(records.cell(i))
                        .map(|s| s.trim_start_matches('\u{feff}').to_string())
                        .map_err(|_| FileError::HeaderNotText {
                            column: i + 1,
                            encoding: encoding.name(),
                        })
                })
                .collect::<Result<Vec<String>, FileError>>()?,
        };
        let targets = resolve(&header, kind, layout).map_err(|e| match e {
            ResolveError::Mapping(m) => FileError::Mapping(m),
            ResolveError::Duplicate(name, first, second) => FileError::DuplicateColumn {
                name,
                first,
                second,
            },
            ResolveError::Missing(column) => FileError::MissingColumn {
                column,
                header: header_list(&header),
            },
            ResolveError::NothingKnown => FileError::NoKnownColumns {
                layout: layout.name().to_string(),
                kind: kind.to_string(),
                delimiter: delimiter_name(delimiter),
                header: header_list(&header),
            },
        })?;
        let ignored = header
            .iter()
            .zip(&targets)
            .enumerate()
            .filter(|(_, (_, t))| t.is_none())
            .map(|(i, (h, _))| {
                if h.trim().is_empty() {
                    format!("(blank header, column {})", i + 1)
                } else {
                    h.clone()
                }
            })
            .collect();
        Ok(CsvRows {
            records,
            header,
            targets,
            ignored,
            encoding,
            delimiter,
            row: 0,
            done: false,
        })
    }

    /// The original header cells.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Header cells that map to nothing, in header order; a blank one is shown as
    /// `(blank header, column N)`.
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// The encoding the file is read in: "UTF-8", "UTF-16LE", "UTF-16BE", "windows-1252", ...
    pub fn encoding(&self) -> &'static str {
        self.encoding.name()
    }

    /// The cell delimiter in use.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The bytes of buffer the reader holds now; stays within about twice
    /// `max_record_bytes` plus 200 KiB whatever the file.
    pub fn buffer_bytes(&self) -> usize {
        self.records.buffer_bytes()
    }

    fn column_name(&self, i: usize) -> String {
        match self.header.get(i) {
            Some(h) if !h.trim().is_empty() => h.clone(),
            _ => format!("column {}", i + 1),
        }
    }

    /// Maps the record in the reader's buffers; `None` when all its cells are blank.
    fn map_record(&self, line: u64) -> Option<Result<MappedRow, RowError>> {
        let n = self.records.cell_count();
        let row = self.row;
        let mut raw = Vec::with_capacity(n);
        let mut bad = None;
        for i in 0..n {
            match std::str::from_utf8(self.records.cell(i)) {
                Ok(s) => raw.push(s.to_string()),
                Err(e) => {
                    bad.get_or_insert((i, e));
                    raw.push(String::from_utf8_lossy(self.records.cell(i)).into_owned());
                }
            }
        }
        if raw.iter().all(|c| c.trim().is_empty()) {
            return None;
        }
        let error = |column: Option<String>, reason: String| RowError {
            row,
            line,
            column,
            reason,
            raw: Vec::new(),
            fatal: false,
        };
        // Extra cells are an error only when they hold something: spreadsheets often write
        // trailing delimiters.
        if n > self.header.len()
            && raw[self.header.len()..]
                .iter()
                .any(|c| !c.trim().is_empty())
        {
            let reason = format!(
                "the row has {n} cells, the header has {}",
                self.header.len()
            );
            return Some(Err(RowError {
                raw,
                ..error(None, reason)
            }));
        }
        if let Some((i, e)) = bad {
            let reason = if self.encoding == UTF_8 {
                let offset = e.valid_up_to();
                let byte = self.records.cell(i)[offset];
                format!(
                    "the cell is not valid UTF-8 (byte 0x{byte:02X} after {offset} bytes); save the file as UTF-8 or choose its encoding"
                )
            } else {
                format!("the cell is not valid {} text", self.encoding.name())
            };
            return Some(Err(RowError {
                raw,
                ..error(Some(self.column_name(i)), reason)
            }));
        }
        let mut fields = Vec::new();
        for (i, (cell, target)) in raw.iter().zip(&self.targets).enumerate() {
            let Some(target) = target else {
                continue;
            };
            let mut push = |value: &str| {
                let value = value.trim();
                if !value.is_empty() {
                    fields.push(Field {
                        target: target.name.clone(),
                        column: self.header[i].clone(),
                        value: value.to_string(),
                    });
                }
            };
            if target.split {
                cell.split([';', ',']).for_each(&mut push);
            } else {
                push(cell);
            }
        }
        Some(Ok(MappedRow {
            row,
            line,
            fields,
            raw,
        }))
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<MappedRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.records.next_record() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(RowError {
                        row: self.row + 1,
                        line: self.records.line,
                        column: None,
                        reason: format!("error reading the file: {e}"),
                        raw: Vec::new(),
                        fatal: true,
                    }));
                }
                Ok(Record::End) => self.done = true,
                Ok(Record::TooLarge { line }) => {
                    self.row += 1;
                    return Some(Err(RowError {
                        row: self.row,
                        line,
                        column: None,
                        reason: format!(
                            "the row is larger than {} (or has more than {} cells) and was skipped",
                            human_size(self.records.max_bytes),
                            self.records.max_cells
                        ),
                        raw: Vec::new(),
                        fatal: false,
                    }));
                }
                Ok(Record::Cells { line }) => {
                    self.row += 1;
                    if let Some(item) = self.map_record(line) {
                        return Some(item);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_most_frequent_candidate_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2;3"), b';');
        assert_eq!(sniff_delimiter(b"\"a,b,c\";d;e\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc,d\n"), b'\t');
        assert_eq!(sniff_delimiter(b"\n\na|b|c\n,,,,,"), b'|');
        assert_eq!(sniff_delimiter(b"name\n"), b',');
    }
}
