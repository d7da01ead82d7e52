//! Encodings, delimiters and record boundaries: what a file's bytes mean.

use meshwork_crm_io::{
    CsvRows, FileError, Layout, Mapping, ReaderOptions, RecordKind, WINDOWS_1252,
};

use crate::{ok_rows, open, pairs, read};

const TEXT: &str = "First Name,Last Name\nJürgen,Müller\nZoë,Ørsted\n";

fn names(bytes: &[u8]) -> (Vec<(String, String)>, &'static str) {
    let rows = open(bytes, RecordKind::Contact, &Layout::HubSpot).unwrap();
    let encoding = rows.encoding();
    let rows = ok_rows(rows.collect());
    let names = rows
        .iter()
        .map(|r| {
            (
                r.get("first_name").unwrap().to_string(),
                r.get("last_name").unwrap().to_string(),
            )
        })
        .collect();
    (names, encoding)
}

fn expected() -> Vec<(String, String)> {
    vec![
        ("Jürgen".into(), "Müller".into()),
        ("Zoë".into(), "Ørsted".into()),
    ]
}

#[test]
fn utf8_with_and_without_bom_reads_the_same() {
    assert_eq!(names(TEXT.as_bytes()), (expected(), "UTF-8"));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(TEXT.as_bytes());
    assert_eq!(names(&bom), (expected(), "UTF-8"));
}

#[test]
fn utf16le_and_utf16be_with_bom_are_transcoded() {
    let mut le = vec![0xFF, 0xFE];
    le.extend(TEXT.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(names(&le), (expected(), "UTF-16LE"));
    let mut be = vec![0xFE, 0xFF];
    be.extend(TEXT.encode_utf16().flat_map(u16::to_be_bytes));
    assert_eq!(names(&be), (expected(), "UTF-16BE"));
}

#[test]
fn latin1_bytes_are_read_as_windows_1252() {
    let (bytes, _, _) = WINDOWS_1252.encode(TEXT);
    assert!(bytes.contains(&0xFC), "ü is one byte in windows-1252");
    assert_eq!(names(&bytes), (expected(), "windows-1252"));
    // Bytes only windows-1252 has, like the euro sign at 0x80.
    let rows = ok_rows(read(
        b"Deal Name,Amount\nEuro \x80 deal,5\n",
        RecordKind::Deal,
        &Layout::HubSpot,
    ));
    assert_eq!(rows[0].get("name"), Some("Euro € deal"));
}

#[test]
fn an_invalid_utf8_byte_after_the_sniffed_prefix_rejects_only_its_row() {
    let mut file = b"First Name,Email\n".to_vec();
    for i in 0..10_000 {
        file.extend_from_slice(format!("Name{i},n{i}@example.com\n").as_bytes());
    }
    assert!(file.len() > 64 * 1024);
    file.extend_from_slice(b"M\xFCller,m@example.com\nLast,last@example.com\n");
    let items = read(&file, RecordKind::Contact, &Layout::HubSpot);
    assert_eq!(items.len(), 10_002);
    let err = items[10_000].as_ref().unwrap_err();
    assert_eq!(err.row, 10_001);
    assert_eq!(err.column.as_deref(), Some("First Name"));
    assert!(
        err.reason
            .contains("not valid UTF-8 (byte 0xFC after 1 bytes)"),
        "{err}"
    );
    assert_eq!(err.raw, ["M\u{FFFD}ller", "m@example.com"]);
    assert_eq!(
        items[10_001].as_ref().unwrap().get("first_name"),
        Some("Last")
    );
}

#[test]
fn an_explicit_encoding_overrides_detection() {
    let options = ReaderOptions {
        encoding: Some(WINDOWS_1252),
        ..ReaderOptions::default()
    };
    // Valid UTF-8 ("Ã¼" read as windows-1252) when the caller says so.
    let rows = CsvRows::open(
        "First Name\nü\n".as_bytes(),
        RecordKind::Contact,
        &Layout::HubSpot,
        &options,
    )
    .unwrap();
    assert_eq!(rows.encoding(), "windows-1252");
    let rows = ok_rows(rows.collect());
    assert_eq!(rows[0].get("first_name"), Some("Ã¼"));
}

#[test]
fn semicolon_tab_and_pipe_delimiters_are_sniffed_from_the_header() {
    for (d, file) in [
        (b';', "First Name;Last Name;Email\n\"Doe, Jane\";X;j@x.y\n"),
        (b'\t', "First Name\tLast Name\tEmail\nDoe, Jane\tX\tj@x.y\n"),
        (b'|', "First Name|Last Name|Email\nDoe, Jane|X|j@x.y\n"),
        (b',', "First Name,Last Name,Email\n\"Doe, Jane\",X,j@x.y\n"),
    ] {
        let rows = open(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot).unwrap();
        assert_eq!(rows.delimiter(), d);
        let rows = ok_rows(rows.collect());
        assert_eq!(
            pairs(&rows[0]),
            [
                ("first_name", "Doe, Jane"),
                ("last_name", "X"),
                ("email", "j@x.y")
            ]
        );
    }
    let options = ReaderOptions {
        delimiter: Some(b';'),
        ..ReaderOptions::default()
    };
    let rows = CsvRows::open(
        &b"First Name,Email;Last Name\na,b;c\n"[..],
        RecordKind::Contact,
        &Layout::HubSpot,
        &options,
    )
    .unwrap();
    assert_eq!(rows.header(), ["First Name,Email", "Last Name"]);
}

#[test]
fn quoted_newlines_keep_row_numbers_counting_records_and_lines_counting_lines() {
    let file = "First Name,Last Name\r\n\"Anna\r\nMaria\",Schmidt\r\n\r\nBen,\"Multi\nline\nname\"\r\nCara,Ortiz";
    let rows = ok_rows(read(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot));
    let got: Vec<(u64, u64, &str)> = rows
        .iter()
        .map(|r| (r.row, r.line, r.get("first_name").unwrap()))
        .collect();
    assert_eq!(
        got,
        [(1, 2, "Anna\r\nMaria"), (2, 5, "Ben"), (3, 8, "Cara")]
    );
    assert_eq!(rows[1].get("last_name"), Some("Multi\nline\nname"));
}

#[test]
fn short_rows_get_empty_cells_and_long_rows_are_rejected_naming_the_counts() {
    let file = "First Name,Last Name,Email\nAnna\nBen,B,b@x.y,extra,more\nCara,C,c@x.y, ,\n";
    let items = read(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot);
    assert_eq!(pairs(items[0].as_ref().unwrap()), [("first_name", "Anna")]);
    assert_eq!(items[0].as_ref().unwrap().raw, ["Anna"]);
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(
        err.to_string(),
        "row 2 (line 3): the row has 5 cells, the header has 3"
    );
    assert_eq!(err.raw, ["Ben", "B", "b@x.y", "extra", "more"]);
    assert!(!err.fatal);
    // Blank cells past the header (trailing delimiters) are harmless.
    assert_eq!(items[2].as_ref().unwrap().get("email"), Some("c@x.y"));
}

#[test]
fn values_are_trimmed_and_blank_cells_and_blank_rows_dropped() {
    let file = "First Name,Last Name,Email\n  Anna  , ,\t a@x.y \n,,\n , ,\nBen,,\n";
    let rows = ok_rows(read(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot));
    assert_eq!(rows.len(), 2);
    assert_eq!(
        pairs(&rows[0]),
        [("first_name", "Anna"), ("email", "a@x.y")]
    );
    assert_eq!(rows[0].raw, ["  Anna  ", " ", "\t a@x.y "]);
    // The all-blank rows still count.
    assert_eq!((rows[1].row, rows[1].line), (4, 5));
}

#[test]
fn empty_blank_and_header_only_files() {
    assert!(matches!(
        open(b"", RecordKind::Contact, &Layout::HubSpot),
        Err(FileError::Empty)
    ));
    assert!(matches!(
        open(b"\r\n\n\n", RecordKind::Contact, &Layout::HubSpot),
        Err(FileError::NoHeader)
    ));
    assert!(matches!(
        open(b"\xEF\xBB\xBF", RecordKind::Contact, &Layout::HubSpot),
        Err(FileError::NoHeader)
    ));
    assert_eq!(
        read(b"Email\n", RecordKind::Contact, &Layout::HubSpot).len(),
        0
    );
    assert_eq!(
        read(b"Email", RecordKind::Contact, &Layout::HubSpot).len(),
        0
    );
    let err = open(
        b"\xFF\xFF\n",
        RecordKind::Contact,
        &Layout::Generic(Mapping::default()),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("no column of the header"),
        "{err}"
    );
}

#[test]
fn a_header_cell_that_is_not_text_is_a_file_error() {
    // UTF-8 is chosen from the valid prefix... the header itself holds the bad byte only when
    // the encoding is forced.
    let options = ReaderOptions {
        encoding: Some(meshwork_crm_io::UTF_8),
        ..ReaderOptions::default()
    };
    let err = CsvRows::open(
        &b"Email,Na\xFFme\n"[..],
        RecordKind::Contact,
        &Layout::HubSpot,
        &options,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "header, column 2: the cell is not valid UTF-8 text; save the file as UTF-8 or choose its encoding"
    );
}
