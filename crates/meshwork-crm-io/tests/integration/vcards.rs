//! vCard 3.0 and 4.0 files become contact rows, one per card; a bad card is one error.

use meshwork_crm_io::{read_vcards, FileError, MappedRow, ReaderOptions, RowError};

use crate::pairs;

fn cards(text: &str) -> Vec<Result<MappedRow, RowError>> {
    read_vcards(text.as_bytes(), &ReaderOptions::default())
        .unwrap()
        .collect()
}

#[test]
fn a_vcard_3_card_with_folding_groups_and_several_emails_maps_to_contact_fields() {
    let text = "BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
N:Müller;Jürgen;;Dr.;\r\n\
FN:Dr. Jürgen Müller\r\n\
ORG:Acme GmbH;Research\r\n\
TITLE:Head of R\\&D\\, Europe\r\n\
EMAIL;TYPE=INTERNET,WORK:juergen@acme.de\r\n\
item1.EMAIL;TYPE=INTERNET:jm@example.\r\n com\r\n\
TEL;TYPE=CELL:+49 170 1234567\r\n\
UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n\
CATEGORIES:customer,vip\r\n\
NOTE:ignored\\nnote\r\n\
END:VCARD\r\n";
    let rows: Vec<MappedRow> = cards(text).into_iter().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].row, rows[0].line), (1, 1));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("last_name", "Müller"),
            ("first_name", "Jürgen"),
            ("full_name", "Dr. Jürgen Müller"),
            ("company_name", "Acme GmbH"),
            ("title", "Head of R&D, Europe"),
            ("email", "juergen@acme.de"),
            ("email", "jm@example.com"),
            ("phone", "+49 170 1234567"),
            (
                "external_id",
                "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"
            ),
            ("tags", "customer"),
            ("tags", "vip"),
        ]
    );
    assert_eq!(rows[0].fields[6].column, "EMAIL");
    assert!(rows[0].raw[0].starts_with("BEGIN:VCARD\nVERSION:3.0\n"));
}

#[test]
fn vcard_4_cards_with_tel_uris_and_quoted_params_are_read_in_order() {
    let text =
        "BEGIN:VCARD\nVERSION:4.0\nFN:Ana Lima\nEMAIL;TYPE=\"work,pref\";PREF=1:ana@lima.br\n\
TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+55-11-91234-5678\nEMAIL:ana.home@lima.br\nEND:VCARD\n\
\n\
BEGIN:VCARD\nVERSION:4.0\nFN:Bo Chen\nN:Chen;Bo;;;\nEND:VCARD\n";
    let rows: Vec<MappedRow> = cards(text).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        pairs(&rows[0]),
        [
            ("full_name", "Ana Lima"),
            ("email", "ana@lima.br"),
            ("phone", "+55-11-91234-5678"),
            ("email", "ana.home@lima.br")
        ]
    );
    assert_eq!((rows[1].row, rows[1].line), (2, 9));
    assert_eq!(
        pairs(&rows[1]),
        [
            ("full_name", "Bo Chen"),
            ("last_name", "Chen"),
            ("first_name", "Bo")
        ]
    );
}

#[test]
fn quoted_printable_values_with_soft_breaks_and_a_charset_are_decoded() {
    let text = "BEGIN:VCARD\nVERSION:2.1\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=\n=BCrgen\n\
FN;CHARSET=ISO-8859-1;QUOTED-PRINTABLE:J=FCrgen M=FCller\nEND:VCARD\n";
    let rows: Vec<MappedRow> = cards(text).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        pairs(&rows[0]),
        [
            ("last_name", "Müller"),
            ("first_name", "Jürgen"),
            ("full_name", "Jürgen Müller")
        ]
    );
}

#[test]
fn a_card_without_end_or_with_garbage_is_one_error_and_reading_goes_on() {
    let text = "BEGIN:VCARD\nVERSION:3.0\nFN:No End\n\
BEGIN:VCARD\nVERSION:3.0\nFN:Garbage\nthis is not a property\nEND:VCARD\n\
BEGIN:VCARD\nVERSION:5.0\nFN:Future\nEND:VCARD\n\
BEGIN:VCARD\nVERSION:3.0\nFN:Good\nEND:VCARD\n\
BEGIN:VCARD\nFN:Truncated\n";
    let items = cards(text);
    assert_eq!(items.len(), 5);
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 1 (line 1): the card has no END:VCARD: a new card begins on line 4"
    );
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 2 (line 4): line 7: \"this is not a property\" is not a vCard property (no \":\")"
    );
    let e = items[2].as_ref().unwrap_err();
    assert_eq!(e.column.as_deref(), Some("VERSION"));
    assert!(e.reason.contains("\"5.0\" is not supported"), "{e}");
    assert_eq!(items[3].as_ref().unwrap().get("full_name"), Some("Good"));
    let e = items[4].as_ref().unwrap_err();
    assert_eq!(
        e.to_string(),
        "row 5 (line 17): the card has no END:VCARD: the file ends first"
    );
    assert!(e.raw[0].contains("FN:Truncated"));
}

#[test]
fn an_over_limit_card_is_skipped_and_the_next_one_read() {
    let options = ReaderOptions {
        max_record_bytes: 1024,
        ..ReaderOptions::default()
    };
    let big = format!(
        "BEGIN:VCARD\nVERSION:3.0\nNOTE:{}\nEND:VCARD\nBEGIN:VCARD\nFN:Small\nEND:VCARD\n",
        "n".repeat(5000)
    );
    let items: Vec<_> = read_vcards(big.as_bytes(), &options).unwrap().collect();
    let e = items[0].as_ref().unwrap_err();
    assert_eq!(e.reason, "the card is larger than 1 KiB and was skipped");
    assert!(e.raw.is_empty());
    assert_eq!(items[1].as_ref().unwrap().get("full_name"), Some("Small"));
}

#[test]
fn a_file_that_is_not_a_vcard_is_a_file_error() {
    let err = read_vcards(&b"\n\nName,Email\n"[..], &ReaderOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a vCard file: line 3 is \"Name,Email\", expected BEGIN:VCARD"
    );
    assert!(matches!(
        read_vcards(&b""[..], &ReaderOptions::default()),
        Err(FileError::Empty)
    ));
    assert!(matches!(
        read_vcards(&b"\n \n"[..], &ReaderOptions::default()),
        Err(FileError::NoCards)
    ));
}

#[test]
fn a_utf16_vcard_with_bom_is_read() {
    let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë\r\nEND:VCARD\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let rows: Vec<_> = read_vcards(&bytes[..], &ReaderOptions::default())
        .unwrap()
        .collect();
    assert_eq!(rows[0].as_ref().unwrap().get("full_name"), Some("Zoë"));
}

#[test]
fn a_tel_value_with_a_multibyte_character_near_its_start_is_kept() {
    // Found by fuzzing: the "tel:" check once sliced inside a character.
    let text = "BEGIN:VCARD\nTEL:V\u{feff}D\nTEL:TeL:+1 555\nEND:VCARD\n";
    let rows: Vec<MappedRow> = cards(text).into_iter().map(Result::unwrap).collect();
    assert_eq!(
        pairs(&rows[0]),
        [("phone", "V\u{feff}D"), ("phone", "+1 555")]
    );
}
