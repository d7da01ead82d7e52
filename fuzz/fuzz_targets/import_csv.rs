//! The CSV import reader: any bytes, in any layout, give rows, row errors or a file error, never
//! a panic; rows hold only trimmed non-empty values and an error CSV can always be written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_crm_io::{CsvRows, ErrorCsv, Layout, Mapping, ReaderOptions, RecordKind};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the kind, layout and limit so one corpus covers them all.
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[usize::from(selector % 3)];
    let layout = match (selector / 3) % 4 {
        0 => Layout::HubSpot,
        1 => Layout::Salesforce,
        2 => Layout::Pipedrive,
        _ => Layout::Generic(Mapping::default()),
    };
    let options = ReaderOptions {
        max_record_bytes: if selector & 0x80 == 0 { 256 } else { 1 << 20 },
        ..ReaderOptions::default()
    };
    let Ok(rows) = CsvRows::open(bytes, kind, &layout, &options) else {
        return;
    };
    let mut errors = ErrorCsv::new(Vec::new(), rows.header()).expect("writing to memory");
    for item in rows {
        match item {
            Ok(row) => {
                for field in &row.fields {
                    assert!(!field.value.is_empty() && field.value.trim() == field.value);
                }
            }
            Err(e) => errors.write(&e).expect("writing to memory"),
        }
    }
    errors.finish().expect("writing to memory");
});
