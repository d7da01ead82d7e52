//! The error CSV holds the rejected rows as they were, aligned to the header, formula-safe.

use meshwork_crm_io::{ErrorCsv, Layout, RecordKind, RowError};

use crate::{open, read};

#[test]
fn the_error_csv_has_the_header_plus_row_column_reason_and_escapes_formulas() {
    let header: Vec<String> = ["Name", "=Email", "Phone"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut out = ErrorCsv::new(Vec::new(), &header).unwrap();
    out.write(&RowError {
        row: 17,
        line: 18,
        column: Some("=Email".into()),
        reason: "\"bob@\" is not an email address".into(),
        raw: vec!["Bob, Jr.".into(), "bob@".into(), "+1 555 0100".into()],
        fatal: false,
    })
    .unwrap();
    out.write(&RowError {
        row: 18,
        line: 19,
        column: None,
        reason: "the row has 5 cells, the header has 3".into(),
        raw: vec![
            "=HYPERLINK(\"http://evil\")".into(),
            "a".into(),
            "b".into(),
            "c".into(),
            "@d".into(),
        ],
        fatal: false,
    })
    .unwrap();
    out.write(&RowError {
        row: 19,
        line: 25,
        column: None,
        reason: "-1 is negative".into(),
        raw: vec!["Cara".into()],
        fatal: false,
    })
    .unwrap();
    let text = String::from_utf8(out.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "Name,'=Email,Phone,_row,_column,_reason\n\
\"Bob, Jr.\",bob@,'+1 555 0100,17,'=Email,\"\"\"bob@\"\" is not an email address\"\n\
\"'=HYPERLINK(\"\"http://evil\"\")\",a,b,18,,\"the row has 5 cells, the header has 3 (cells past the header: \"\"c\"\", \"\"@d\"\")\"\n\
Cara,,,19,,'-1 is negative\n"
    );
}

#[test]
fn rejected_rows_from_a_file_round_trip_into_the_error_csv() {
    let file = "First Name,Email\nAnna,a@x.y,extra\nBen,b@x.y\n";
    let rows = open(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot).unwrap();
    let header = rows.header().to_vec();
    let mut out = ErrorCsv::new(Vec::new(), &header).unwrap();
    for e in read(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot)
        .into_iter()
        .filter_map(Result::err)
    {
        out.write(&e).unwrap();
    }
    let text = String::from_utf8(out.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "First Name,Email,_row,_column,_reason\n\
Anna,a@x.y,1,,\"the row has 3 cells, the header has 2 (cells past the header: \"\"extra\"\")\"\n"
    );
}
