//! Large cells pass; over-limit records are skipped without being held in memory; I/O errors
//! end the reading.

use std::io::{self, Read};

use meshwork_crm_io::{CsvRows, Layout, ReaderOptions, RecordKind};

use crate::ok_rows;

/// A reader that produces `prefix`, then `count` bytes of `fill`, then `suffix`, without ever
/// holding the filler in memory.
struct Synthetic {
    prefix: io::Cursor<Vec<u8>>,
    fill: u8,
    left: u64,
    suffix: io::Cursor<Vec<u8>>,
}

impl Synthetic {
    fn new(prefix: &str, fill: u8, count: u64, suffix: &str) -> Self {
        Synthetic {
            prefix: io::Cursor::new(prefix.as_bytes().to_vec()),
            fill,
            left: count,
            suffix: io::Cursor::new(suffix.as_bytes().to_vec()),
        }
    }
}

impl Read for Synthetic {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.prefix.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.left > 0 {
            let n = buf.len().min(self.left as usize);
            buf[..n].fill(self.fill);
            self.left -= n as u64;
            return Ok(n);
        }
        self.suffix.read(buf)
    }
}

const MIB: usize = 1024 * 1024;

#[test]
fn a_10_mb_cell_passes_through_whole() {
    let reader = Synthetic::new(
        "Email,Last Name\na@b.c,\"",
        b'x',
        10_000_000,
        "\"\nd@e.f,Short\n",
    );
    let rows = CsvRows::open(
        reader,
        RecordKind::Contact,
        &Layout::HubSpot,
        &ReaderOptions::default(),
    )
    .unwrap();
    let rows = ok_rows(rows.collect());
    assert_eq!(rows.len(), 2);
    let big = rows[0].get("last_name").unwrap();
    assert_eq!(big.len(), 10_000_000);
    assert!(big.bytes().all(|b| b == b'x'));
    assert_eq!(rows[1].get("email"), Some("d@e.f"));
}

#[test]
fn a_64_mib_line_over_a_1_mib_limit_is_skipped_in_bounded_memory_and_the_next_row_parses() {
    let options = ReaderOptions {
        max_record_bytes: MIB,
        ..ReaderOptions::default()
    };
    let reader = Synthetic::new(
        "Email,Last Name\n",
        b'y',
        64 * MIB as u64,
        "\nnext@example.com,Next\n",
    );
    let mut rows = CsvRows::open(reader, RecordKind::Contact, &Layout::HubSpot, &options).unwrap();
    let err = rows.next().unwrap().unwrap_err();
    assert_eq!((err.row, err.line), (1, 2));
    assert_eq!(err.to_string(), "row 1 (line 2): the row is larger than 1 MiB (or has more than 131072 cells) and was skipped");
    assert!(err.raw.is_empty() && !err.fatal);
    assert!(
        rows.buffer_bytes() <= 2 * MIB + 200 * 1024,
        "buffers grew to {} bytes",
        rows.buffer_bytes()
    );
    let next = rows.next().unwrap().unwrap();
    assert_eq!((next.row, next.line), (2, 3));
    assert_eq!(next.get("email"), Some("next@example.com"));
    assert!(rows.next().is_none());
}

#[test]
fn an_unterminated_over_limit_quoted_cell_at_the_end_of_the_file_is_one_error() {
    let options = ReaderOptions {
        max_record_bytes: MIB,
        ..ReaderOptions::default()
    };
    let reader = Synthetic::new(
        "Email,Last Name\nok@example.com,Fine\nx@y.z,\"",
        b'\n',
        8 * MIB as u64,
        "",
    );
    let rows = CsvRows::open(reader, RecordKind::Contact, &Layout::HubSpot, &options).unwrap();
    let items: Vec<_> = rows.collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].as_ref().unwrap().get("email"),
        Some("ok@example.com")
    );
    assert_eq!(items[1].as_ref().unwrap_err().row, 2);
}

#[test]
fn a_row_of_a_million_empty_cells_is_over_the_cell_limit() {
    let options = ReaderOptions {
        max_record_bytes: MIB,
        ..ReaderOptions::default()
    };
    let reader = Synthetic::new("Email\nz@z.z,", b',', 1_000_000, "\nok@example.com\n");
    let items: Vec<_> = CsvRows::open(reader, RecordKind::Contact, &Layout::HubSpot, &options)
        .unwrap()
        .collect();
    assert!(items[0]
        .as_ref()
        .unwrap_err()
        .reason
        .contains("larger than 1 MiB"));
    assert_eq!(
        items[1].as_ref().unwrap().get("email"),
        Some("ok@example.com")
    );
}

#[test]
fn a_record_of_exactly_the_limit_passes_and_one_byte_more_does_not() {
    let options = ReaderOptions {
        max_record_bytes: 16,
        ..ReaderOptions::default()
    };
    // 8 + 8 = 16 bytes of cell text (the header has 14).
    let file = "Email,Last Name\nabcdefgh,12345678\nabcdefgh,123456789\nlast,x\n";
    let items: Vec<_> = CsvRows::open(
        file.as_bytes(),
        RecordKind::Contact,
        &Layout::HubSpot,
        &options,
    )
    .unwrap()
    .collect();
    assert_eq!(
        items[0].as_ref().unwrap().get("last_name"),
        Some("12345678")
    );
    assert!(items[1]
        .as_ref()
        .unwrap_err()
        .reason
        .contains("larger than 16 bytes"));
    assert_eq!(items[2].as_ref().unwrap().get("email"), Some("last"));
}

#[test]
fn a_header_over_the_limit_is_a_file_error() {
    let options = ReaderOptions {
        max_record_bytes: 1024,
        ..ReaderOptions::default()
    };
    let reader = Synthetic::new("", b'h', 4096, "\n");
    let err = CsvRows::open(reader, RecordKind::Contact, &Layout::HubSpot, &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the header (line 1) is larger than 1 KiB; is this a CSV file?"
    );
}

/// Gives `ok` bytes, then fails.
struct FailingReader {
    ok: io::Cursor<Vec<u8>>,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.ok.read(buf)? {
            0 => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "upload interrupted",
            )),
            n => Ok(n),
        }
    }
}

#[test]
fn an_io_error_mid_file_is_a_fatal_row_error_and_ends_the_rows() {
    let mut text = "Email\n".to_string();
    for i in 0..20_000 {
        text.push_str(&format!("u{i}@example.com\n"));
    }
    let reader = FailingReader {
        ok: io::Cursor::new(text.into_bytes()),
    };
    let items: Vec<_> = CsvRows::open(
        reader,
        RecordKind::Contact,
        &Layout::HubSpot,
        &ReaderOptions::default(),
    )
    .unwrap()
    .collect();
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(last.fatal);
    assert!(last.reason.contains("upload interrupted"), "{last}");
    assert_eq!(items.len(), 20_001);
    assert!(items[..20_000].iter().all(Result::is_ok));
}
