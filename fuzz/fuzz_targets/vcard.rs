//! The vCard reader: any bytes give cards, card errors or a file error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_crm_io::{read_vcards, ReaderOptions};

fuzz_target!(|data: &[u8]| {
    let options = ReaderOptions {
        max_record_bytes: 4096,
        ..ReaderOptions::default()
    };
    let Ok(cards) = read_vcards(data, &options) else {
        return;
    };
    let mut last = 0;
    for card in cards {
        let row = match card {
            Ok(row) => row.row,
            Err(e) => e.row,
        };
        assert!(row > last, "card numbers increase");
        last = row;
    }
});
